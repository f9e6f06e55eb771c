//! kiln-model: the encoder families (BERT, RoBERTa / XLM-R, ELECTRA, DistilBERT, DeBERTa-v2/v3,
//! ModernBERT) and their heads as burn modules, loaded from and saved to Hugging Face
//! checkpoints in each family's own layout.
//!
//! - [`auto`]: `SequenceClassifier`, `TokenClassifier`, `Encoder` — one type per task over every
//!   family, picked from `config.json`'s `model_type` (`Family`).
//! - [`roberta`], [`electra`], [`distilbert`], [`deberta_v2`], [`modernbert`]: one file per
//!   Hugging Face modeling file, struct and field names as the checkpoint's keys.
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
pub mod auto;
pub mod bert;
pub mod config;
pub mod deberta_v2;
pub mod distilbert;
pub mod drift;
pub mod dropout;
pub mod electra;
pub mod error;
pub mod files;
#[cfg(feature = "hf-hub")]
pub mod hub;
pub mod interpolate;
pub mod modernbert;
pub mod pretrained;
pub mod roberta;
pub mod simd;
pub mod student;

/// burn seeds one global generator: unit tests that seed it, or draw from it by initialising a
/// model, take this lock, so that no test's draws land between another's `seed` and its use.
#[cfg(test)]
pub(crate) fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub use auto::{Encoder, SequenceClassifier, TokenClassifier};
pub use bert::{mean_pool, BertClassifier, BertModel, BertOutput, BertTokenClassifier, Pooling};
pub use config::{BertConfig, Family, HiddenAct};
pub use deberta_v2::{
    DebertaSettings, DebertaV2ForSequenceClassification, DebertaV2ForTokenClassification,
    DebertaV2Model,
};
pub use distilbert::{
    DistilBertForSequenceClassification, DistilBertForTokenClassification, DistilBertModel,
};
pub use electra::{ElectraForSequenceClassification, ElectraForTokenClassification};
pub use error::ModelError;
pub use modernbert::{
    ModernBertForSequenceClassification, ModernBertForTokenClassification, ModernBertModel,
    ModernBertSettings,
};
pub use pretrained::{
    save_pretrained, save_sequence_classifier, save_token_classifier, Checkpoint, HeadInit,
    LoadReport,
};
pub use roberta::{RobertaForSequenceClassification, RobertaForTokenClassification};
pub use student::{student_from_teacher, StudentInit};
