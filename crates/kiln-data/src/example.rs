//! Labelled texts as the pipeline passes them on.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::target::Target;

/// One labelled text as read from a file: the label is still the file's string (`"1"`, `"pos"`),
/// and `line` remembers where it came from for error messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawExample {
    pub text: String,
    /// The second text of a sentence-pair task (`--text-pair-column`).
    pub text_pair: Option<String>,
    pub label: String,
    /// 1-based line (CSV/TSV: where the record starts; JSONL: the record's line; JSON arrays:
    /// the element's 1-based index).
    pub line: u64,
}

/// A set of raw examples and the file they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDataset {
    pub path: PathBuf,
    pub examples: Vec<RawExample>,
}

/// A labelled text with its target: a class index (see `LabelMap`) or a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub text: String,
    pub text_pair: Option<String>,
    pub target: Target,
}
