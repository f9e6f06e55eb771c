//! kiln: fine-tune pretrained BERT-family transformers in Rust, on burn.
//!
//! This facade re-exports the workspace's crates (one job each) and owns what an application
//! needs around them: the backend features and device selection ([`backend`]), sentence
//! embeddings and a fine-tuned classifier's predictions ([`embed`], [`predict`]) and the
//! allocator settings tensor workloads want ([`allocator`]). With the `cli` feature (default)
//! it also holds the jobs behind the `kiln` binary: options in layers (`options`), data sets
//! by name (`datasets`, `inspect`), fine-tuning and distillation runs (`finetune`, `distill`),
//! hyperparameter sweeps over `kiln train` processes (`sweep`) and, through kiln-fetch, the offline packages that ship the real checkpoint and data sets
//! (`fetch`). An app leaves `cli` out and links no fetcher.
//!
//! Data flows one way: files → examples → batches ([`data`]) → model ([`model`]) → loss
//! ([`loss`]) → optimizer and metrics ([`train`]) → report.

pub use kiln_data as data;
pub use kiln_loss as loss;
pub use kiln_metrics as metrics;
pub use kiln_model as model;
pub use kiln_report as report;
pub use kiln_train as train;

pub use burn;

pub mod allocator;
pub mod backend;
pub mod embed;
pub mod predict;
pub mod tagger;
pub mod wise;

#[cfg(feature = "cli")]
pub mod datasets;
#[cfg(feature = "cli")]
pub mod distill;
#[cfg(feature = "cli")]
pub use kiln_fetch as fetch;
#[cfg(feature = "cli")]
pub mod finetune;
#[cfg(feature = "cli")]
pub mod inspect;
#[cfg(feature = "cli")]
pub mod options;
#[cfg(feature = "cli")]
pub mod sweep;
