//! A run's history: the loop's state and what it records step by step, evaluation by
//! evaluation and phase by phase. The loop writes it, resume checkpoints save it (so a resumed
//! run continues the same history) and the report draws it; it depends on nothing but the
//! metrics type.

use serde::{Deserialize, Serialize};

use crate::task::TaskMetrics;

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
    pub valid: Option<TaskMetrics>,
}

/// One evaluation on the validation set: at an epoch's end, or every `eval_every`
/// optimizer steps. Every evaluation competes for the best model and counts for patience.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalPoint {
    /// The optimizer step after which the model was evaluated.
    pub step: u64,
    /// The (fractional) epoch at that step: 1.0 is the end of the first epoch.
    pub epoch: f64,
    /// Whether this is an epoch's closing evaluation.
    pub epoch_end: bool,
    pub metrics: TaskMetrics,
}

/// Seconds spent in each phase of the training loop, summed over the run. The device is
/// synchronised at each boundary, so an asynchronous backend's work lands in the phase that
/// queued it; what is left of the loop's wall time (checkpoints, logging) is in none of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseSeconds {
    /// Waiting for the next batch (the loader's workers tokenize nothing: they pad and stack).
    pub data_seconds: f64,
    /// Model forward and loss, up to the loss value on the host.
    pub forward_seconds: f64,
    /// Backpropagation and gradient accumulation.
    pub backward_seconds: f64,
    /// Averaging, clipping and the optimizer's update.
    pub optimizer_seconds: f64,
}

/// Throughput and size of a finished run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainStats {
    pub examples: usize,
    pub epochs: usize,
    pub steps: u64,
    /// Training loop time (validation excluded).
    pub wall_seconds: f64,
    pub samples_per_second: f64,
    pub tokens_per_second: f64,
    /// Where the training loop's time went.
    pub phases: PhaseSeconds,
}

/// The loop's own state: where the run stands and what it has recorded. A checkpoint saves it
/// whole, so a resumed run continues the same history.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainState {
    pub epochs_done: usize,
    /// Batches of the current epoch already consumed (0 at an epoch boundary).
    #[serde(default)]
    pub batch_in_epoch: usize,
    /// Optimizer steps taken (skipped ones included).
    pub steps: u64,
    /// Forward/backward passes taken (seeds dropout).
    pub micro_steps: u64,
    pub examples_seen: u64,
    pub tokens_seen: u64,
    pub train_seconds: f64,
    /// Where `train_seconds` went (data, forward, backward, optimizer).
    #[serde(default)]
    pub phases: PhaseSeconds,
    /// Sum and count of the current epoch's batch losses so far.
    #[serde(default)]
    pub epoch_loss_sum: f64,
    #[serde(default)]
    pub epoch_batches: usize,
    pub best_score: Option<f64>,
    pub best_epoch: Option<u64>,
    /// The optimizer step of the best evaluation.
    #[serde(default)]
    pub best_step: Option<u64>,
    /// Evaluations since the best one (patience counts these).
    #[serde(alias = "epochs_without_improvement")]
    pub evals_without_improvement: usize,
    #[serde(default)]
    pub bad_steps: u64,
    #[serde(default)]
    pub bad_steps_in_row: u64,
    pub steps_log: Vec<StepPoint>,
    pub epochs: Vec<EpochPoint>,
    /// Every evaluation so far (epoch ends and every-N-steps ones).
    #[serde(default)]
    pub evals: Vec<EvalPoint>,
    /// Digest of the run's options and examples: a checkpoint continues only the run that
    /// wrote it.
    #[serde(default)]
    pub fingerprint: Option<String>,
}

impl TrainState {
    /// Throughput and size of the run so far, over `examples` training examples.
    pub fn stats(&self, examples: usize) -> TrainStats {
        let wall = self.train_seconds.max(1e-9);
        TrainStats {
            examples,
            epochs: self.epochs_done,
            steps: self.steps,
            wall_seconds: self.train_seconds,
            samples_per_second: self.examples_seen as f64 / wall,
            tokens_per_second: self.tokens_seen as f64 / wall,
            phases: self.phases,
        }
    }
}
