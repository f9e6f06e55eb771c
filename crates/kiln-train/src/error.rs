//! Errors of a training run.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// An option out of range or options that do not fit together; the message names the flag.
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Loss(#[from] kiln_loss::LossError),
    #[error("data: {0}")]
    Data(String),
    #[error("{in_a_row} steps in a row had a non-finite loss or gradient (last: step {step} of epoch {}, loss {loss}); lower --lr, enable --grad-clip, or raise --max-bad-steps", epoch + 1)]
    NonFinite {
        epoch: usize,
        step: u64,
        loss: f64,
        in_a_row: u64,
    },
    /// A stop was requested (Ctrl-C); the run can continue from the checkpoint.
    #[error("interrupted at step {step}{}", match checkpoint { Some(c) => format!("; checkpoint saved in {}, continue with --resume", c.display()), None => String::new() })]
    Interrupted {
        step: u64,
        checkpoint: Option<PathBuf>,
    },
    #[error("{path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
}

impl From<kiln_data::DataError> for TrainError {
    fn from(e: kiln_data::DataError) -> Self {
        TrainError::Data(e.to_string())
    }
}
