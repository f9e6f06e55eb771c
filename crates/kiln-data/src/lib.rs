//! kiln-data: from files to batches — readers, label maps, splits, tokenization, padding and
//! bucketing. Knows nothing of models or training; produces `TokenBatch` tensors on a device.
//!
//! - [`tokenize`]: `TextTokenizer` over `tokenizer.json` with explicit truncation, no padding.
//! - [`batch`]: `TokenBatch::pad`, dynamic padding to the batch's longest sequence.

pub mod batch;
pub mod error;
pub mod tokenize;

pub use batch::TokenBatch;
pub use error::DataError;
pub use tokenize::{Encoding, TextTokenizer};
