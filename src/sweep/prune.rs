//! Early stopping of weak trials from their validation metric, evaluation by evaluation.
//!
//! Evaluations are counted per trial (the first validation is 1, whether it closes an epoch
//! or comes from `eval-every`), so rungs are in evaluations, the resource every trial reports.
//! - ASHA (asynchronous successive halving, Li et al. 2020, as Ray Tune's `ASHAScheduler`):
//!   rungs at evaluations g, g·η, g·η², … (g: the grace, Ray's `grace_period`); a trial
//!   reaching a rung goes on only if its value is not below the (1 − 1/η) quantile of the
//!   values other trials recorded at that rung.
//! - Median stopping (Optuna's `MedianPruner`): from evaluation g on, once `startup` trials
//!   completed, a trial whose best value so far is worse than the median of the completed
//!   trials' values at the same evaluation stops.
//!
//! Decisions read only the record, so a resumed sweep decides as the first session would.

use kiln_metrics::{TrialRecord, TrialStatus};

/// How weak trials are stopped.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum PrunerKind {
    /// Asynchronous successive halving.
    #[default]
    Asha,
    /// Optuna's median stopping rule.
    Median,
    /// Every trial runs to its end.
    None,
}

/// A pruner with its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pruner {
    pub kind: PrunerKind,
    /// ASHA's reduction factor η (≥ 2): a third of the trials go on from each rung with 3.
    pub eta: usize,
    /// The first evaluation at which a trial may be stopped (ASHA's first rung); early
    /// evaluations, inside a warmup, say little.
    pub grace: usize,
    /// Median: completed trials needed before any trial is stopped.
    pub startup: usize,
}

impl Pruner {
    /// Whether `trial`, which has just recorded its `evaluations.len()`-th evaluation, stops
    /// there. `others` are the sweep's other trials; `score` turns a value into
    /// larger-is-better.
    pub fn should_stop(
        &self,
        trial: &TrialRecord,
        others: &[&TrialRecord],
        score: impl Fn(f64) -> f64,
    ) -> bool {
        let n = trial.evaluations.len();
        let Some(last) = trial.evaluations.last() else {
            return false;
        };
        if n < self.grace.max(1) {
            return false;
        }
        match self.kind {
            PrunerKind::None => false,
            PrunerKind::Asha => {
                if !is_rung(n, self.eta, self.grace) {
                    return false;
                }
                let recorded: Vec<f64> = others
                    .iter()
                    .filter_map(|t| t.evaluations.get(n - 1))
                    .map(|e| score(e.value))
                    .collect();
                match quantile(recorded, 1.0 - 1.0 / self.eta as f64) {
                    Some(cutoff) => score(last.value) < cutoff,
                    None => false,
                }
            }
            PrunerKind::Median => {
                let complete: Vec<f64> = others
                    .iter()
                    .filter(|t| t.status == TrialStatus::Complete)
                    .filter_map(|t| t.evaluations.get(n - 1))
                    .map(|e| score(e.value))
                    .collect();
                let finished = others
                    .iter()
                    .filter(|t| t.status == TrialStatus::Complete)
                    .count();
                if finished < self.startup.max(1) {
                    return false;
                }
                let best_so_far = trial
                    .evaluations
                    .iter()
                    .map(|e| score(e.value))
                    .fold(f64::NEG_INFINITY, f64::max);
                match quantile(complete, 0.5) {
                    Some(median) => best_so_far < median,
                    None => false,
                }
            }
        }
    }
}

/// Evaluation `n` (1-based) is a rung of ASHA with factor `eta` and first rung `grace`: g,
/// g·η, g·η², …
pub fn is_rung(n: usize, eta: usize, grace: usize) -> bool {
    let mut rung = grace.max(1);
    while rung < n {
        rung *= eta.max(2);
    }
    rung == n
}

/// The `q` quantile of `values` with linear interpolation (NumPy's default); none when empty.
/// Non-finite values (a diverged trial) are left out.
fn quantile(mut values: Vec<f64>, q: f64) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (values.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(values[lo] + (values[hi] - values[lo]) * (pos - lo as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_metrics::TrialEvaluation;
    use std::collections::BTreeMap;

    fn trial(id: usize, status: TrialStatus, values: &[f64]) -> TrialRecord {
        let mut t = TrialRecord::new(id, BTreeMap::new(), 0.0);
        t.status = status;
        t.evaluations = values
            .iter()
            .enumerate()
            .map(|(i, &value)| TrialEvaluation {
                step: 10 * (i as u64 + 1),
                epoch: 0.25 * (i + 1) as f64,
                value,
            })
            .collect();
        t
    }

    const ASHA: Pruner = Pruner {
        kind: PrunerKind::Asha,
        eta: 3,
        grace: 1,
        startup: 0,
    };

    #[test]
    fn rungs_are_powers_of_eta() {
        let rungs: Vec<usize> = (1..=30).filter(|&n| is_rung(n, 3, 1)).collect();
        assert_eq!(rungs, [1, 3, 9, 27]);
        let rungs: Vec<usize> = (1..=9).filter(|&n| is_rung(n, 2, 1)).collect();
        assert_eq!(rungs, [1, 2, 4, 8]);
        let rungs: Vec<usize> = (1..=20).filter(|&n| is_rung(n, 3, 2)).collect();
        assert_eq!(rungs, [2, 6, 18]);
    }

    #[test]
    fn quantiles_interpolate_as_numpy() {
        assert_eq!(quantile(vec![], 0.5), None);
        assert_eq!(quantile(vec![3.0], 0.9), Some(3.0));
        assert_eq!(quantile(vec![1.0, 2.0, 3.0, 4.0], 0.5), Some(2.5));
        // numpy.percentile([1, 2, 3, 4], 66.67) = 3.0001
        let q = quantile(vec![4.0, 1.0, 3.0, 2.0], 2.0 / 3.0).unwrap();
        assert!((q - 3.0).abs() < 1e-9, "{q}");
        assert_eq!(quantile(vec![f64::NAN, 1.0], 0.5), Some(1.0));
    }

    #[test]
    fn asha_stops_below_the_rungs_top_third_and_only_at_rungs() {
        let id = |x: f64| x;
        let a = trial(0, TrialStatus::Complete, &[0.60, 0.70, 0.80]);
        let b = trial(1, TrialStatus::Complete, &[0.50, 0.65, 0.70]);
        let c = trial(2, TrialStatus::Pruned, &[0.40]);
        let others = [&a, &b, &c];
        // The first trial at a rung always goes on.
        assert!(!ASHA.should_stop(&trial(3, TrialStatus::Running, &[0.1]), &[], id));
        // Rung 1's cutoff: the 2/3 quantile of 0.4, 0.5, 0.6 = 0.5333.
        assert!(ASHA.should_stop(&trial(3, TrialStatus::Running, &[0.53]), &others, id));
        assert!(!ASHA.should_stop(&trial(3, TrialStatus::Running, &[0.54]), &others, id));
        // Evaluation 2 is no rung (η = 3): never stopped there.
        assert!(!ASHA.should_stop(&trial(3, TrialStatus::Running, &[0.6, 0.0]), &others, id));
        // Rung 3: cutoff from a and b alone (c never got there): 0.70 + (0.80 − 0.70)·2/3.
        assert!(ASHA.should_stop(
            &trial(3, TrialStatus::Running, &[0.6, 0.9, 0.76]),
            &others,
            id
        ));
        assert!(!ASHA.should_stop(
            &trial(3, TrialStatus::Running, &[0.6, 0.0, 0.77]),
            &others,
            id
        ));
    }

    #[test]
    fn asha_follows_the_metrics_direction() {
        // A loss: smaller is better; scores are negated values.
        let neg = |x: f64| -x;
        let a = trial(0, TrialStatus::Complete, &[0.2]);
        let b = trial(1, TrialStatus::Complete, &[0.4]);
        let pruner = Pruner { eta: 2, ..ASHA };
        // Cutoff: the median of scores −0.4, −0.2 = −0.3: a loss above 0.3 stops.
        assert!(pruner.should_stop(&trial(2, TrialStatus::Running, &[0.35]), &[&a, &b], neg));
        assert!(!pruner.should_stop(&trial(2, TrialStatus::Running, &[0.25]), &[&a, &b], neg));
    }

    #[test]
    fn median_waits_for_startup_trials_then_compares_best_so_far() {
        let id = |x: f64| x;
        let median = Pruner {
            kind: PrunerKind::Median,
            eta: 3,
            grace: 1,
            startup: 2,
        };
        let a = trial(0, TrialStatus::Complete, &[0.5, 0.6]);
        let b = trial(1, TrialStatus::Complete, &[0.7, 0.8]);
        let pruned = trial(2, TrialStatus::Pruned, &[0.9, 0.95]);
        let weak = trial(3, TrialStatus::Running, &[0.55, 0.65]);
        // One complete trial is fewer than the startup.
        assert!(!median.should_stop(&weak, &[&a, &pruned], id));
        // Median at evaluation 2 of the complete trials: 0.7; pruned trials do not count.
        assert!(median.should_stop(&weak, &[&a, &b, &pruned], id));
        let fine = trial(3, TrialStatus::Running, &[0.72, 0.65]);
        assert!(!median.should_stop(&fine, &[&a, &b, &pruned], id));
        // Not before the grace: evaluation 2 is the first that may stop a trial.
        let patient = Pruner { grace: 3, ..median };
        assert!(!patient.should_stop(&weak, &[&a, &b, &pruned], id));
    }

    #[test]
    fn asha_with_a_grace_stops_from_its_first_rung_on() {
        let id = |x: f64| x;
        let a = trial(0, TrialStatus::Complete, &[0.9, 0.9, 0.9]);
        let graceful = Pruner { grace: 2, ..ASHA };
        // Evaluation 1 is inside the grace: never stopped there, however weak.
        assert!(!graceful.should_stop(&trial(1, TrialStatus::Running, &[0.1]), &[&a], id));
        assert!(graceful.should_stop(&trial(1, TrialStatus::Running, &[0.1, 0.5]), &[&a], id));
    }

    #[test]
    fn no_pruner_never_stops() {
        let none = Pruner {
            kind: PrunerKind::None,
            ..ASHA
        };
        let a = trial(0, TrialStatus::Complete, &[0.9]);
        assert!(!none.should_stop(&trial(1, TrialStatus::Running, &[0.0]), &[&a], |x| x));
    }
}
