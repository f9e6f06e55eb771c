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
    #[error("the loss became {loss} at epoch {epoch}, step {step}; lower --lr or enable --grad-clip")]
    NonFinite { epoch: usize, step: u64, loss: f64 },
    #[error("{path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
}

impl From<kiln_data::DataError> for TrainError {
    fn from(e: kiln_data::DataError) -> Self {
        TrainError::Data(e.to_string())
    }
}
