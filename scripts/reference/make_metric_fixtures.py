#!/usr/bin/env python3
"""Reference values for kiln-metrics' regression metrics, from NumPy and SciPy.

Run from the repository root, in the reference venv (scripts/reference/requirements.txt):

    .venv-ref/bin/python scripts/reference/make_metric_fixtures.py

Writes tests/fixtures/entity-metrics.json: seeded tag sequences (truth and a perturbed
prediction) and seqeval 1.2.2's classification_report for them — default (conlleval-like)
mode, and strict mode with the IOB2 and IOBES schemes: per entity type and micro-averaged
precision, recall, F1 and support (zero_division 0).

Writes tests/fixtures/multilabel-metrics.json: seeded multi-hot truth and predictions and
scikit-learn's figures for them (zero_division=0): per-label precision, recall, F1 and support,
micro / macro / samples F1, micro precision and recall, subset accuracy and Hamming loss.

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
import seqeval
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2, IOBES

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "regression-metrics.json"
ENTITIES = ROOT / "tests" / "fixtures" / "entity-metrics.json"
MULTILABEL = ROOT / "tests" / "fixtures" / "multilabel-metrics.json"


def multilabel_cases():
    import sklearn
    from sklearn import metrics as m

    rng = np.random.default_rng(11)
    cases = []
    for name, n, labels, p_true, noise in [
        ("dense", 60, 5, 0.4, 0.2),
        ("sparse with an unused label", 40, 6, 0.15, 0.1),
        ("rows with no label", 30, 4, 0.1, 0.3),
    ]:
        truth = (rng.random((n, labels)) < p_true).astype(int)
        if name == "sparse with an unused label":
            truth[:, 5] = 0
        flip = rng.random((n, labels)) < noise
        pred = np.where(flip, 1 - truth, truth)
        if name == "sparse with an unused label":
            pred[:, 5] = 0
        kw = {"zero_division": 0}
        p, r, f, s = m.precision_recall_fscore_support(truth, pred, average=None, **kw)
        cases.append({
            "name": name,
            "truth": truth.tolist(),
            "pred": pred.tolist(),
            "precision": [float(x) for x in p],
            "recall": [float(x) for x in r],
            "f1": [float(x) for x in f],
            "support": [int(x) for x in s],
            "micro_f1": float(m.f1_score(truth, pred, average="micro", **kw)),
            "micro_precision": float(m.precision_score(truth, pred, average="micro", **kw)),
            "micro_recall": float(m.recall_score(truth, pred, average="micro", **kw)),
            "macro_f1": float(m.f1_score(truth, pred, average="macro", **kw)),
            "samples_f1": float(m.f1_score(truth, pred, average="samples", **kw)),
            "subset_accuracy": float(m.accuracy_score(truth, pred)),
            "hamming_loss": float(m.hamming_loss(truth, pred)),
        })
    return {"sklearn_version": sklearn.__version__, "cases": cases}


def tag_sequences(rng, prefixes, types, n):
    tags = ["O"] + [f"{p}-{t}" for p in prefixes for t in types]
    truth = [[str(rng.choice(tags)) for _ in range(int(rng.integers(1, 13)))] for _ in range(n)]
    # The prediction: the truth with a quarter of its tags replaced at random.
    pred = [[str(rng.choice(tags)) if rng.random() < 0.25 else t for t in sent] for sent in truth]
    return truth, pred


def report(truth, pred, **kw):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = classification_report(truth, pred, output_dict=True, zero_division=0, **kw)
    clean = lambda d: {k: float(v) if k != "support" else int(v) for k, v in d.items()}
    return {
        "types": {k: clean(v) for k, v in r.items() if not k.endswith(" avg")},
        "micro": clean(r["micro avg"]),
    }


def entity_cases():
    rng = np.random.default_rng(7)
    cases = []
    for name, prefixes, modes in [
        ("iob2", "BI", [("default", {}), ("strict-iob2", {"mode": "strict", "scheme": IOB2})]),
        ("iobes", "BIES", [("default", {}), ("strict-iobes", {"mode": "strict", "scheme": IOBES})]),
        ("iob1", "I", [("default", {})]),
    ]:
        truth, pred = tag_sequences(rng, prefixes, ["PER", "LOC", "ORG"], 40)
        for mode, kw in modes:
            cases.append({"name": f"{name} {mode}", "mode": mode, "truth": truth, "pred": pred,
                          **report(truth, pred, **kw)})
    return cases


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
    entities = entity_cases()
    ENTITIES.write_text(json.dumps({"seqeval_version": seqeval.__version__ if hasattr(seqeval, "__version__") else "1.2.2",
                                    "cases": entities}) + "\n")
    print(f"wrote {ENTITIES.relative_to(ROOT)} ({len(entities)} cases)", file=sys.stderr)
    MULTILABEL.write_text(json.dumps(multilabel_cases()) + "\n")
    print(f"wrote {MULTILABEL.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
