//! Errors of a training run.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// An option out of range, or data that does not fit the options or the model; `field` is
    /// the `TrainConfig` field (`lr`, `strategy.top_k`) or the `TrainData` part (`train`,
    /// `labels`, `teacher_logits`) at fault.
    #[error("{field} {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    /// A checkpoint that cannot continue this run (other data, other options, another
    /// schedule).
    #[error("{path}: {problem}")]
    Mismatch { path: PathBuf, problem: String },
    #[error(transparent)]
    Loss(#[from] kiln_loss::LossError),
    #[error(transparent)]
    Data(#[from] kiln_data::DataError),
    /// The data loader failed to build a batch.
    #[error("data loader: {0}")]
    Loader(String),
    #[error("{in_a_row} steps in a row had a non-finite loss or gradient (last: step {step} of epoch {}, loss {loss}); lower lr, set grad_clip, or raise max_bad_steps", epoch + 1)]
    NonFinite {
        epoch: usize,
        step: u64,
        loss: f64,
        in_a_row: u64,
    },
    /// A stop was requested (Ctrl-C); the run can continue from the checkpoint.
    #[error("interrupted at step {step}{}", match checkpoint { Some(c) => format!("; checkpoint saved in {}, the run can resume from it", c.display()), None => String::new() })]
    Interrupted {
        step: u64,
        checkpoint: Option<PathBuf>,
    },
    #[error("{path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
}

impl TrainError {
    pub fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        TrainError::Invalid {
            field,
            problem: problem.into(),
        }
    }
}
