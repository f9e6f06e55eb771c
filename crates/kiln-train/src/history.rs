//! A run's history: what the loop records step by step and evaluation by evaluation. The loop
//! writes it, checkpoints save it (so a resumed run continues the same history) and the report
//! draws it; it depends on nothing but the metrics type.

use serde::{Deserialize, Serialize};

use crate::metrics::ClassificationMetrics;

/// One optimizer step of the training log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepPoint {
    /// The global step number.
    pub step: u64,
    /// The (fractional) epoch at this step.
    pub epoch: f64,
    /// The training loss of this step.
    pub loss: f64,
    /// The learning rate used at this step.
    pub lr: f64,
}

/// One epoch of the training log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochPoint {
    /// The epoch number.
    pub epoch: u64,
    /// The mean training loss over the epoch.
    pub train_loss: f64,
    /// The validation metrics after the epoch, if validation ran.
    pub valid: Option<ClassificationMetrics>,
}

/// One evaluation on the validation set: at an epoch's end, or every `eval_every_steps`
/// optimizer steps. Every evaluation competes for the best model and counts for patience.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalPoint {
    /// The optimizer step after which the model was evaluated.
    pub step: u64,
    /// The (fractional) epoch at that step: 1.0 is the end of the first epoch.
    pub epoch: f64,
    /// Whether this is an epoch's closing evaluation.
    pub epoch_end: bool,
    pub metrics: ClassificationMetrics,
}
