//! Errors of model loading and saving; each names the file or tensor at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid BERT config: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{dir}: no weights found (expected model.safetensors or pytorch_model.bin)")]
    NoWeights { dir: PathBuf },
    #[error("{path}: cannot read weights: {message}")]
    Weights { path: PathBuf, message: String },
    #[error("{path}: the checkpoint does not fit the model described by config.json:\n{details}")]
    Mismatch { path: PathBuf, details: String },
    #[error("{path}: cannot save: {message}")]
    Save { path: PathBuf, message: String },
    /// An argument that does not fit (`what` names it: a field or a model).
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
}
