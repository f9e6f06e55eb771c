//! kiln: fine-tune pretrained BERT-family transformers in Rust, on burn.
//!
//! This facade re-exports the workspace's crates (one job each) and owns what an application
//! needs around them: the backend features and device selection ([`backend`]), fetching real
//! checkpoints and data sets into a cache ([`fetch`]), the jobs behind the `kiln` CLI
//! ([`embed`], [`finetune`], [`predict`], [`distill`]) and the allocator settings tensor
//! workloads want ([`allocator`]).
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
pub mod datasets;
pub mod distill;
pub mod embed;
pub mod fetch;
pub mod finetune;
pub mod inspect;
pub mod predict;
