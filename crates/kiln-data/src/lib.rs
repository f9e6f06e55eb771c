//! kiln-data: from files to batches — readers, label maps, splits, tokenization, padding and
//! bucketing. Knows nothing of models or training; produces `TokenBatch` tensors on a device.
//!
//! Data flows down this list:
//! - [`read`]: CSV / TSV / JSONL / JSON files → `RawDataset` (text, optional pair, label string,
//!   line), surviving BOMs, CRLF, quoted line breaks, blank lines; errors name file:line and column.
//! - [`builtin`]: the built-in sets (rotten-tomatoes, pang-lee, uci-sentiment, reuters-r52) from their
//!   packages' raw formats; the task sets election-tweets (regression) and penn-tagged
//!   (part-of-speech tags).
//! - [`tagged`]: word-level tags for token classification (CoNLL, JSONL tokens/tags,
//!   word/TAG) → `TaggedDataset`; errors name file:line.
//! - [`labels`]: `LabelMap`, built from the training data in a deterministic order.
//! - [`split`]: seeded stratified train / valid / test splits.
//! - [`augment`]: seeded EDA-style augmentation (delete, swap, insert, whole-word masking).
//! - [`pipeline`]: source → splits → encoded examples → summary.
//! - [`tokenize`]: `TextTokenizer` over `tokenizer.json` with explicit truncation, no padding.
//! - [`bucket`]: `BucketSampler`, length-bucketed (or plain) seeded batch plans per epoch.
//! - [`batch`]: `TokenBatch::pad`, dynamic padding to the batch's longest sequence.
//! - [`loader`]: burn `Dataset`s, the `Batcher`, and data loaders.

pub mod augment;
pub mod batch;
pub mod bucket;
pub mod builtin;
pub mod error;
pub mod example;
pub mod labels;
pub mod loader;
pub mod pipeline;
pub mod read;
pub mod split;
pub mod tagged;
pub mod target;
pub mod tokenize;

pub use batch::TokenBatch;
pub use error::DataError;
pub use example::{Example, RawDataset, RawExample};
pub use labels::{encode_values, LabelMap};
pub use target::{sigmoid, Readout, Target, Targets, Task, ValueScale};
pub use tokenize::{Encoding, TextTokenizer, Truncation, WordPieces};
