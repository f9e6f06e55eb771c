//! A hyperparameter sweep's record (`SWEEP/sweep.json`): each trial's sampled options, its
//! validation metric at every evaluation, how it ended and what it cost. `kiln sweep` writes it
//! after every change (a killed sweep resumes from it), the report draws it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::record::ReadError;

/// A sampled option value, as it goes into the trial's TOML options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl ParamValue {
    /// The value as a number (for plots); none for text.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Bool(b) => Some(f64::from(u8::from(*b))),
            Self::Int(i) => Some(*i as f64),
            Self::Float(f) => Some(*f),
            Self::Text(_) => None,
        }
    }
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) if x.abs() >= 1e-3 && x.abs() < 1e4 => write!(f, "{}", fmt_short(*x)),
            Self::Float(x) => write!(f, "{x:.3e}"),
            Self::Text(s) => write!(f, "{s}"),
        }
    }
}

/// Up to four significant digits, no trailing zeros.
fn fmt_short(x: f64) -> String {
    let digits = (3 - x.abs().log10().floor() as i32).clamp(0, 8) as usize;
    let s = format!("{x:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Where a trial stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialStatus {
    /// Started and not ended (a sweep killed now restarts it on `--resume`).
    Running,
    /// Trained to the end (or to its own early stop).
    Complete,
    /// Stopped by the pruner after a weak evaluation.
    Pruned,
    /// The run failed; `error` says why.
    Failed,
}

/// One evaluation of a trial on the validation set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialEvaluation {
    /// The optimizer step after which it ran.
    pub step: u64,
    /// The (fractional) epoch at that step.
    pub epoch: f64,
    /// The sweep's metric.
    pub value: f64,
}

/// One trial: an ordinary `kiln train` run directory (`trials/ID`) with these options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    pub id: usize,
    /// The sampled options, by flag name.
    pub params: BTreeMap<String, ParamValue>,
    pub status: TrialStatus,
    /// The metric at each evaluation, in order.
    pub evaluations: Vec<TrialEvaluation>,
    /// The best validation value (the kept model's, for a complete trial).
    pub best: Option<f64>,
    /// The kept model's test-set value of the metric (complete trials with a test split).
    pub test: Option<f64>,
    /// Optimizer steps run.
    pub steps: u64,
    /// Optimizer steps the trial's recipe plans (its epochs × steps per epoch).
    pub planned_steps: Option<u64>,
    /// When it started, seconds from the sweep's start (the sweep's clock keeps running
    /// across resumes).
    pub started_s: f64,
    /// Wall seconds it ran.
    pub seconds: f64,
    /// A failed trial's error (its last line on stderr).
    pub error: Option<String>,
}

impl TrialRecord {
    pub fn new(id: usize, params: BTreeMap<String, ParamValue>, started_s: f64) -> Self {
        Self {
            id,
            params,
            status: TrialStatus::Running,
            evaluations: Vec::new(),
            best: None,
            test: None,
            steps: 0,
            planned_steps: None,
            started_s,
            seconds: 0.0,
            error: None,
        }
    }
}

/// Every trial of a sweep and how they compare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRecord {
    /// The metric trials are compared by (a `--metric` name: accuracy, mse, …).
    pub metric: String,
    /// Whether larger values of the metric are better.
    pub maximize: bool,
    /// Seconds the sweep has run, over all its sessions.
    pub elapsed_s: f64,
    pub trials: Vec<TrialRecord>,
}

impl SweepRecord {
    /// `a` is better than `b` in the sweep's direction.
    pub fn better(&self, a: f64, b: f64) -> bool {
        if self.maximize {
            a > b
        } else {
            a < b
        }
    }

    /// The complete trial with the best validation value (the first of equals).
    pub fn best_trial(&self) -> Option<&TrialRecord> {
        let mut best: Option<&TrialRecord> = None;
        for t in &self.trials {
            let (TrialStatus::Complete, Some(v)) = (t.status, t.best) else {
                continue;
            };
            if best.is_none_or(|b| self.better(v, b.best.unwrap_or(f64::NAN))) {
                best = Some(t);
            }
        }
        best
    }

    /// Optimizer steps run over all trials, and what running every trial to its end would
    /// have taken (a failed trial counts what it ran on both sides).
    pub fn compute(&self) -> (u64, u64) {
        self.trials.iter().fold((0, 0), |(run, planned), t| {
            let full = match t.status {
                TrialStatus::Pruned => t.planned_steps.unwrap_or(t.steps).max(t.steps),
                _ => t.steps,
            };
            (run + t.steps, planned + full)
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads `path` (a sweep's `sweep.json`); the error names the file and the line.
    pub fn read(path: &Path) -> Result<Self, ReadError> {
        crate::record::read_json(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(id: usize, status: TrialStatus, best: Option<f64>, steps: u64) -> TrialRecord {
        TrialRecord {
            status,
            best,
            steps,
            planned_steps: Some(100),
            ..TrialRecord::new(id, BTreeMap::new(), 0.0)
        }
    }

    #[test]
    fn the_best_trial_is_a_complete_one_in_the_metrics_direction() {
        let mut r = SweepRecord {
            metric: "accuracy".into(),
            maximize: true,
            elapsed_s: 0.0,
            trials: vec![
                trial(0, TrialStatus::Complete, Some(0.7), 100),
                trial(1, TrialStatus::Pruned, Some(0.9), 30),
                trial(2, TrialStatus::Complete, Some(0.8), 100),
                trial(3, TrialStatus::Failed, None, 5),
            ],
        };
        assert_eq!(r.best_trial().map(|t| t.id), Some(2));
        r.maximize = false;
        assert_eq!(r.best_trial().map(|t| t.id), Some(0));
        // Pruned trials count their planned steps on the "every trial to the end" side.
        assert_eq!(r.compute(), (235, 305));
    }

    #[test]
    fn a_record_reads_back() {
        let mut t = trial(0, TrialStatus::Pruned, Some(0.5), 10);
        t.params.insert("lr".into(), ParamValue::Float(3e-5));
        t.params.insert("batch-size".into(), ParamValue::Int(16));
        t.params
            .insert("strategy".into(), ParamValue::Text("lora".into()));
        t.evaluations.push(TrialEvaluation {
            step: 10,
            epoch: 0.5,
            value: 0.5,
        });
        let r = SweepRecord {
            metric: "accuracy".into(),
            maximize: true,
            elapsed_s: 12.5,
            trials: vec![t],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.json");
        std::fs::write(&path, r.to_json()).unwrap();
        assert_eq!(SweepRecord::read(&path).unwrap(), r);
        std::fs::write(&path, "{\"metric\": 3}").unwrap();
        let e = SweepRecord::read(&path).unwrap_err().to_string();
        assert!(e.starts_with(&path.display().to_string()), "{e}");
    }

    #[test]
    fn values_print_short() {
        assert_eq!(ParamValue::Float(3e-5).to_string(), "3.000e-5");
        assert_eq!(ParamValue::Float(0.1).to_string(), "0.1");
        assert_eq!(ParamValue::Float(0.123456).to_string(), "0.1235");
        assert_eq!(ParamValue::Int(16).to_string(), "16");
    }
}
