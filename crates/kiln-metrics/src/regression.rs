//! Regression metrics: mean squared and absolute error, Pearson's r and Spearman's ρ, with
//! SciPy's definitions (Spearman's ρ is Pearson's r of the ranks, tied values sharing their
//! mean rank; both undefined — `None` — when a side is constant).

use serde::{Deserialize, Serialize};

/// How well predicted values match the targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    pub examples: usize,
    pub mse: f64,
    pub mae: f64,
    /// Pearson's r; `None` when the predictions or the targets are constant.
    pub pearson: Option<f64>,
    /// Spearman's ρ; `None` when the predictions or the targets are constant.
    pub spearman: Option<f64>,
    /// The model's loss on these examples, when it was computed.
    pub loss: Option<f64>,
}

impl RegressionMetrics {
    /// The metrics of `predictions` against `targets` (pairs beyond the shorter are ignored;
    /// callers pass one prediction per target). All figures are 0 / `None` for no examples.
    pub fn new(predictions: &[f64], targets: &[f64], loss: Option<f64>) -> Self {
        let n = predictions.len().min(targets.len());
        let (p, t) = (&predictions[..n], &targets[..n]);
        let errors = p.iter().zip(t).map(|(p, t)| p - t);
        let (mse, mae) = if n == 0 {
            (0.0, 0.0)
        } else {
            let (sq, abs) = errors.fold((0.0, 0.0), |(sq, abs), e| (sq + e * e, abs + e.abs()));
            (sq / n as f64, abs / n as f64)
        };
        Self {
            examples: n,
            mse,
            mae,
            pearson: pearson(p, t),
            spearman: spearman(p, t),
            loss,
        }
    }
}

/// Pearson's correlation of `x` and `y` (equal lengths); `None` with fewer than two points or
/// a constant side.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len().min(y.len());
    if n < 2 {
        return None;
    }
    let mean = |v: &[f64]| v[..n].iter().sum::<f64>() / n as f64;
    let (mx, my) = (mean(x), mean(y));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x[..n].iter().zip(&y[..n]) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    // Rounding can take |r| a hair past 1 (SciPy clips too).
    Some((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

/// Spearman's rank correlation: Pearson's r of the ranks, ties at their mean rank.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len().min(y.len());
    pearson(&ranks(&x[..n]), &ranks(&y[..n]))
}

/// 1-based ranks of `values`, tied values sharing the mean of their ranks (SciPy's `rankdata`
/// with `method="average"`). NaNs rank last, in input order.
pub fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end hold equal values: ranks start+1 ..= end, mean (start+1+end)/2.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Fixture {
        cases: Vec<Case>,
    }
    #[derive(serde::Deserialize)]
    struct Case {
        name: String,
        predictions: Vec<f64>,
        targets: Vec<f64>,
        mse: f64,
        mae: f64,
        pearson: Option<f64>,
        spearman: Option<f64>,
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * (1.0 + b.abs())
    }

    /// Every case of tests/fixtures/regression-metrics.json (NumPy and SciPy's values, made by
    /// scripts/reference/make_metric_fixtures.py) within 1e-12.
    #[test]
    fn metrics_equal_numpy_and_scipy() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/regression-metrics.json"
        );
        let fixture: Fixture =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(fixture.cases.len() >= 7, "the fixture holds its cases");
        for case in &fixture.cases {
            let m = RegressionMetrics::new(&case.predictions, &case.targets, None);
            let name = &case.name;
            assert_eq!(m.examples, case.targets.len(), "{name}");
            assert!(
                close(m.mse, case.mse),
                "{name}: mse {} vs {}",
                m.mse,
                case.mse
            );
            assert!(
                close(m.mae, case.mae),
                "{name}: mae {} vs {}",
                m.mae,
                case.mae
            );
            for (what, got, want) in [
                ("pearson", m.pearson, case.pearson),
                ("spearman", m.spearman, case.spearman),
            ] {
                match (got, want) {
                    (Some(g), Some(w)) => assert!(close(g, w), "{name}: {what} {g} vs {w}"),
                    (None, None) => {}
                    _ => panic!("{name}: {what} {got:?} vs SciPy's {want:?}"),
                }
            }
        }
    }

    #[test]
    fn ties_share_their_mean_rank() {
        assert_eq!(
            ranks(&[3.0, 1.0, 3.0, 2.0, 3.0]),
            vec![4.0, 1.0, 4.0, 2.0, 4.0]
        );
        assert_eq!(ranks(&[]), Vec::<f64>::new());
        let none = RegressionMetrics::new(&[], &[], None);
        assert_eq!((none.examples, none.mse, none.pearson), (0, 0.0, None));
    }
}
