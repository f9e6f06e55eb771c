//! kiln-metrics: what a run measured, in types every part of kiln shares.
//!
//! - [`metrics`]: the confusion matrix and the classification metrics computed from it
//!   (scikit-learn's definitions).
//! - [`regression`]: MSE, MAE, Pearson and Spearman (SciPy's definitions).
//! - [`multilabel`]: per-label, micro, macro and samples F1, subset accuracy, Hamming loss
//!   (scikit-learn's definitions).
//! - [`entities`]: entity-level precision / recall / F1 of tag sequences (seqeval's default
//!   and strict modes).
//! - [`token`]: token classification — token accuracy, per-tag scores and, for entity tag
//!   sets, entity-level scores.
//! - [`task`]: [`TaskMetrics`], one evaluation's metrics whatever the task.
//! - [`history`]: the loop's state and the run's step, epoch, evaluation and phase records —
//!   written by the training loop, saved in resume checkpoints, drawn by the report.
//! - [`record`]: a run's files as types: `metrics.json` ([`RunMetrics`]) and the lines of
//!   `log.jsonl` ([`LogRecord`]). The CLI writes them; `cargo xtask`, the report and the tests
//!   read them.
//! - [`sweep`]: a hyperparameter sweep's record (`sweep.json`, [`SweepRecord`]): each trial's
//!   options, metric per evaluation, status and cost.
//!
//! No tensors and no burn: an app (or a script's Rust twin) reads a run's files with this crate
//! alone, and it builds in seconds.

pub mod entities;
pub mod history;
pub mod metrics;
pub mod multilabel;
pub mod record;
pub mod regression;
pub mod sweep;
pub mod task;
pub mod token;

pub use entities::{EntityMetrics, EntityMode, Scheme};
pub use history::{EpochPoint, EvalPoint, PhaseSeconds, StepPoint, TrainState, TrainStats};
pub use metrics::{argmax_rows, ClassMetrics, ClassificationMetrics, ConfusionMatrix};
pub use multilabel::MultiLabelMetrics;
pub use record::{
    read_log, DistillSide, Evaluation, LogRecord, PartDrift, ReadError, RunMetrics, Scores,
    SplitSizes, TrainFigures, ValidEpoch,
};
pub use regression::RegressionMetrics;
pub use sweep::{ParamValue, SweepRecord, TrialEvaluation, TrialRecord, TrialStatus};
pub use task::TaskMetrics;
pub use token::TokenMetrics;
