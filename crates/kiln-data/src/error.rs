//! Errors of the data pipeline; each names the file (and line or record, and column) at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Unknown extension or `--format`, or options that do not fit the file.
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: the file is empty")]
    EmptyFile { path: PathBuf },
    #[error("{path}: no data rows (only a header, or only blank lines)")]
    NoRows { path: PathBuf },
    #[error("{path}: no column `{column}` (columns: {})", available.join(", "))]
    MissingColumn {
        path: PathBuf,
        column: String,
        available: Vec<String>,
    },
    /// Malformed CSV quoting, malformed JSON, wrong field count, …; `line` is 1-based
    /// (the physical line where the record starts; for JSONL the line of the record).
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}:{line}: invalid UTF-8")]
    InvalidUtf8 { path: PathBuf, line: u64 },
    /// An empty (or all-whitespace) text or label cell.
    #[error("{path}:{line}: column `{column}` is empty")]
    EmptyValue {
        path: PathBuf,
        line: u64,
        column: String,
    },
    #[error("{path}:{line}: label `{label}` never occurs in the training data (known labels: {})", known.join(", "))]
    UnknownLabel {
        path: PathBuf,
        line: u64,
        label: String,
        known: Vec<String>,
    },
    #[error("{path}: cannot load tokenizer: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("cannot tokenize {what}: {message}")]
    Encode { what: String, message: String },
    /// Bad options (ratios, augmentation specs, …); `what` names the option.
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
}
