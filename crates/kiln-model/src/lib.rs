//! kiln-model: the BERT-family encoder and its heads as burn modules, loaded from and saved to
//! Hugging Face checkpoints.
//!
//! - [`config`]: `BertConfig`, a mirror of HF's `config.json`.
//! - [`bert`]: embeddings, attention, layers, pooler, `BertModel`, `BertClassifier`, pooling.
//! - [`activation`]: GELU computed on the host for CPU devices (vectorised erf).
//! - [`dropout`]: dropout whose masks are drawn on the host for CPU devices (seeded per step).
//! - [`checkpoint`]: `Checkpoint::open(dir)` → load (safetensors or PyTorch `.bin`, with or
//!   without the `bert.` prefix) with a clear report of missing, unexpected and wrong-shaped
//!   tensors; `save_pretrained` writes HF layout atomically.
//!
//! This crate knows nothing of data sets, losses or training: it takes tensors and returns tensors.

pub mod activation;
pub mod bert;
pub mod config;
pub mod drift;
pub mod dropout;
pub mod error;
pub mod files;
#[cfg(feature = "hf-hub")]
pub mod hub;
pub mod interpolate;
pub mod pretrained;
pub mod simd;
pub mod student;

pub use bert::{mean_pool, BertClassifier, BertModel, BertOutput, BertTokenClassifier, Pooling};
pub use config::{BertConfig, HiddenAct};
pub use error::ModelError;
pub use pretrained::{save_pretrained, save_token_classifier, Checkpoint, HeadInit, LoadReport};
pub use student::{student_from_teacher, StudentInit};
