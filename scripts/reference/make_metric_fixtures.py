#!/usr/bin/env python3
"""Reference values for kiln-metrics' regression metrics, from NumPy and SciPy.

Run from the repository root, in the reference venv (scripts/reference/requirements.txt):

    .venv-ref/bin/python scripts/reference/make_metric_fixtures.py

Writes tests/fixtures/regression-metrics.json: for seeded cases (continuous values, many ties,
a constant side, perfect and inverse orders, two points), the predictions and targets and
MSE, MAE (NumPy, float64), Pearson's r (scipy.stats.pearsonr) and Spearman's rho
(scipy.stats.spearmanr, ties at their mean rank); null where SciPy's value is NaN (a constant
side). Floats are written as repr(float(x)).
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
import scipy
import scipy.stats

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "regression-metrics.json"


def value(x):
    x = float(x)
    return None if math.isnan(x) else x


def case(name, predictions, targets):
    p = np.asarray(predictions, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pearson = scipy.stats.pearsonr(p, t).statistic
            spearman = scipy.stats.spearmanr(p, t).statistic
    return {
        "name": name,
        "predictions": [float(x) for x in p],
        "targets": [float(x) for x in t],
        "mse": float(np.mean((p - t) ** 2)),
        "mae": float(np.mean(np.abs(p - t))),
        "pearson": value(pearson),
        "spearman": value(spearman),
    }


def main():
    rng = np.random.default_rng(42)
    t = rng.normal(size=200)
    cases = [
        case("noisy linear", t * 0.8 + rng.normal(scale=0.5, size=200), t),
        case("ties on both sides", rng.integers(0, 5, size=60), rng.integers(0, 4, size=60)),
        case("log counts", np.log1p(rng.poisson(3.0, size=50)), np.log1p(rng.poisson(3.0, size=50))),
        case("constant predictions", [2.5] * 10, rng.normal(size=10)),
        case("same order", [1.0, 2.0, 3.0, 10.0], [0.5, 0.6, 0.7, 0.8]),
        case("inverse order", [4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0]),
        case("two points", [1.0, 2.0], [3.0, 1.0]),
    ]
    OUT.write_text(
        json.dumps({"numpy_version": np.__version__, "scipy_version": scipy.__version__, "cases": cases}, indent=1)
        + "\n"
    )
    print(f"wrote {OUT.relative_to(ROOT)} ({len(cases)} cases)", file=sys.stderr)


if __name__ == "__main__":
    main()
