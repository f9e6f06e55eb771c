//! Readers for labelled-text files: CSV, TSV, JSON Lines and JSON arrays.
//!
//! Every reader turns one file into a [`RawDataset`]: texts and labels as strings, each example
//! remembering its 1-based line for later error messages. Real-world files are messy, so the
//! readers accept the usual habits of spreadsheet exports and scripts:
//!
//! - a UTF-8 byte-order mark at the start (stripped, never part of the first column name);
//! - `\n`, `\r\n` and lone `\r` line ends;
//! - quoted CSV/TSV fields spanning several lines (the record's line is where it starts);
//! - blank lines, and CSV/TSV rows whose cells are all empty (`,,`, as spreadsheets append),
//!   are skipped;
//! - whitespace around texts, labels and column names is trimmed (inner whitespace and line
//!   breaks are kept);
//! - JSON labels may be strings, numbers or booleans (`1`, `1.0` and `"1"` all become `"1"`).
//!
//! Everything else is an error that names the file, the line and, where there is one, the column:
//! ragged rows, malformed quoting, invalid UTF-8, malformed JSON, missing columns and empty texts
//! or labels. No input makes a reader panic.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::error::DataError;
use crate::example::{RawDataset, RawExample};

/// The layout of a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// Tab-separated values with a header row (quoted fields allowed, as in CSV).
    Tsv,
    /// JSON Lines: one JSON object per line.
    Jsonl,
    /// One JSON array of objects; an example's `line` is the element's 1-based index.
    Json,
}

impl Format {
    /// Every format, in the order the CLI lists them.
    pub const ALL: [Format; 4] = [Format::Csv, Format::Tsv, Format::Jsonl, Format::Json];

    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Jsonl => "jsonl",
            Format::Json => "json",
        }
    }

    /// Guesses the format from the file's extension (case-insensitive): `.csv`; `.tsv` or
    /// `.tab`; `.jsonl` or `.ndjson`; `.json`.
    pub fn from_path(path: &Path) -> Result<Format, DataError> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let format = match extension.as_deref() {
            Some("csv") => Format::Csv,
            Some("tsv" | "tab") => Format::Tsv,
            Some("jsonl" | "ndjson") => Format::Jsonl,
            Some("json") => Format::Json,
            other => {
                let what = match other {
                    Some(e) => format!("the extension `.{e}`"),
                    None => "a file without an extension".to_string(),
                };
                return Err(DataError::Format {
                    path: path.to_path_buf(),
                    message: format!(
                        "cannot tell the format of {what}; name it with the `format` option ({})",
                        format_names()
                    ),
                });
            }
        };
        Ok(format)
    }
}

fn format_names() -> String {
    Format::ALL
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = DataError;

    /// Accepts `csv`, `tsv`, `jsonl` (or `ndjson`) and `json`, in any case.
    fn from_str(s: &str) -> Result<Format, DataError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "tsv" => Ok(Format::Tsv),
            "jsonl" | "ndjson" => Ok(Format::Jsonl),
            "json" => Ok(Format::Json),
            _ => Err(DataError::Invalid {
                what: "format".to_string(),
                message: format!("unknown format `{s}` (expected one of {})", format_names()),
            }),
        }
    }
}

/// Which format to read and which columns (CSV/TSV header names, JSON keys) hold what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// `None`: guess from the extension ([`Format::from_path`]).
    pub format: Option<Format>,
    /// Default `"text"`.
    pub text_column: String,
    /// The second text of a sentence-pair task; `None` for single texts.
    pub text_pair_column: Option<String>,
    /// Default `"label"`.
    pub label_column: String,
}

impl Default for ReadOptions {
    fn default() -> ReadOptions {
        ReadOptions {
            format: None,
            text_column: "text".to_string(),
            text_pair_column: None,
            label_column: "label".to_string(),
        }
    }
}

/// Reads a labelled-text file; see the module documentation for what it accepts.
///
/// Errors: [`DataError::Io`] if the file cannot be read, [`DataError::Format`] for an unknown
/// extension or a UTF-16 file, [`DataError::EmptyFile`] for a file with nothing but
/// whitespace, [`DataError::NoRows`] for a header without data, [`DataError::MissingColumn`]
/// for a CSV/TSV header without a requested column, [`DataError::InvalidUtf8`],
/// [`DataError::EmptyValue`] and [`DataError::Parse`] (each with the line).
pub fn read_file(path: &Path, options: &ReadOptions) -> Result<RawDataset, DataError> {
    let format = match options.format {
        Some(format) => format,
        None => Format::from_path(path)?,
    };
    check_options(options)?;
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let body = strip_bom(path, &bytes)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DataError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let examples = match format {
        Format::Csv => read_delimited(path, body, b',', options)?,
        Format::Tsv => read_delimited(path, body, b'\t', options)?,
        Format::Jsonl => read_jsonl(path, body, options)?,
        Format::Json => read_json_array(path, body, options)?,
    };
    if examples.is_empty() {
        return Err(DataError::NoRows {
            path: path.to_path_buf(),
        });
    }
    Ok(RawDataset {
        path: path.to_path_buf(),
        examples,
    })
}

/// Rejects column options that cannot describe any file: a column used twice would make the
/// label a copy of the text (or the pair a copy of the text).
fn check_options(options: &ReadOptions) -> Result<(), DataError> {
    let mut columns = vec![
        ("text_column", options.text_column.as_str()),
        ("label_column", options.label_column.as_str()),
    ];
    if let Some(pair) = &options.text_pair_column {
        columns.push(("text_pair_column", pair.as_str()));
    }
    for (i, (option, column)) in columns.iter().enumerate() {
        if column.trim().is_empty() {
            return Err(DataError::Invalid {
                what: option.to_string(),
                message: "the column name is empty".to_string(),
            });
        }
        if let Some((other, _)) = columns[..i].iter().find(|(_, c)| c == column) {
            return Err(DataError::Invalid {
                what: option.to_string(),
                message: format!(
                    "column `{column}` is already the {} column",
                    other.trim_end_matches("_column").replace('_', "-")
                ),
            });
        }
    }
    Ok(())
}

/// Strips a UTF-8 byte-order mark. A UTF-16 mark is an error: such files (as some Windows tools
/// save "Unicode text") would otherwise fail later as invalid UTF-8 with a less helpful message.
/// The lines of `body` with their 1-based numbers, line ends (`\n`, `\r\n`) removed; a line that
/// is not UTF-8 is an error naming it, met in order.
pub(crate) fn text_lines<'a>(
    path: &'a Path,
    body: &'a [u8],
) -> impl Iterator<Item = Result<(u64, &'a str), DataError>> + 'a {
    body.split(|&b| b == b'\n')
        .enumerate()
        .map(move |(i, raw)| {
            let line = i as u64 + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            std::str::from_utf8(raw)
                .map(|text| (line, text))
                .map_err(|_| DataError::InvalidUtf8 {
                    path: path.to_path_buf(),
                    line,
                })
        })
}

pub(crate) fn strip_bom<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a [u8], DataError> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return Ok(rest);
    }
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(DataError::Format {
            path: path.to_path_buf(),
            message: "the file is UTF-16 encoded; save it as UTF-8".to_string(),
        });
    }
    Ok(bytes)
}

/// Maps byte offsets to 1-based line numbers. A line ends at `\n`, or at a `\r` not followed
/// by `\n` (old Mac files), as text editors count them.
///
/// The csv crate's own record positions are not used for line numbers: a record's position is
/// where the reader stood after the previous record, i.e. before any skipped blank lines and
/// before the `\n` of a `\r\n` pair, which would put errors a line or more too early.
struct LineIndex {
    newlines: Vec<usize>,
}

impl LineIndex {
    fn new(body: &[u8]) -> LineIndex {
        let newlines = (0..body.len())
            .filter(|&i| body[i] == b'\n' || (body[i] == b'\r' && body.get(i + 1) != Some(&b'\n')))
            .collect();
        LineIndex { newlines }
    }

    fn line_of(&self, offset: usize) -> u64 {
        1 + self.newlines.partition_point(|&n| n < offset) as u64
    }
}

fn is_line_break(b: u8) -> bool {
    b == b'\r' || b == b'\n'
}

/// A quoting mistake found by [`scan_quotes`].
struct QuoteError {
    /// Offset where the faulty record starts.
    record_start: usize,
    /// Offset of the offending byte (the opening quote of an unterminated field).
    at: usize,
    unterminated: bool,
    byte: u8,
}

impl QuoteError {
    fn into_error(self, path: &Path, lines: &LineIndex) -> DataError {
        let line = lines.line_of(self.record_start);
        let at_line = lines.line_of(self.at);
        let message = if self.unterminated {
            format!(
                "the quoted field opened on line {at_line} is never closed \
                 (a `\"` inside a quoted field must be doubled: `\"\"`)"
            )
        } else {
            let found = if self.byte.is_ascii_graphic() {
                format!("`{}`", self.byte as char)
            } else {
                format!("byte 0x{:02X}", self.byte)
            };
            format!(
                "{found} after the closing quote of a quoted field on line {at_line} \
                 (a `\"` inside a quoted field must be doubled: `\"\"`)"
            )
        };
        DataError::Parse {
            path: path.to_path_buf(),
            line,
            message,
        }
    }
}

/// Finds the first quoting mistake, following the csv crate's record grammar (quotes open a
/// field only at its start, `""` is a literal quote, `\r`, `\n` and `\r\n` end records, empty
/// lines between records are skipped).
///
/// The csv crate itself never reports malformed quoting: it keeps text after a closing quote
/// (`"a"b` reads as `ab`) and lets an unterminated quote swallow the rest of the file. Both
/// silently corrupt data, so they are errors here. Spaces and tabs after a closing quote are
/// tolerated (`"a" ,b`; they are trimmed away later).
fn scan_quotes(body: &[u8], delimiter: u8) -> Option<QuoteError> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        RecordStart,
        FieldStart,
        Unquoted,
        Quoted,
        /// Just saw a `"` inside a quoted field: either half of `""` or the closing quote.
        QuoteInQuoted,
        /// Only whitespace seen since the closing quote.
        AfterQuote,
    }
    let mut state = State::RecordStart;
    let mut record_start = 0;
    let mut quote_open = 0;
    for (i, &b) in body.iter().enumerate() {
        if state == State::RecordStart {
            if is_line_break(b) {
                continue;
            }
            record_start = i;
            state = State::FieldStart;
        }
        state = match state {
            State::RecordStart | State::FieldStart => {
                if b == b'"' {
                    quote_open = i;
                    State::Quoted
                } else if b == delimiter {
                    State::FieldStart
                } else if is_line_break(b) {
                    State::RecordStart
                } else {
                    State::Unquoted
                }
            }
            State::Unquoted => {
                if b == delimiter {
                    State::FieldStart
                } else if is_line_break(b) {
                    State::RecordStart
                } else {
                    State::Unquoted
                }
            }
            State::Quoted => {
                if b == b'"' {
                    State::QuoteInQuoted
                } else {
                    State::Quoted
                }
            }
            State::QuoteInQuoted | State::AfterQuote => {
                if b == b'"' && state == State::QuoteInQuoted {
                    State::Quoted
                } else if b == delimiter {
                    State::FieldStart
                } else if is_line_break(b) {
                    State::RecordStart
                } else if b == b' ' || b == b'\t' {
                    State::AfterQuote
                } else {
                    return Some(QuoteError {
                        record_start,
                        at: i,
                        unterminated: false,
                        byte: b,
                    });
                }
            }
        };
    }
    (state == State::Quoted).then_some(QuoteError {
        record_start,
        at: quote_open,
        unterminated: true,
        byte: b'"',
    })
}

/// Reads delimited records and calls `visit` with each record's 1-based start line and its
/// fields (valid UTF-8, untrimmed). Records whose fields are all empty or whitespace are skipped.
///
/// Rows may have different lengths here (the csv crate runs with `flexible(true)`): callers
/// check the field count themselves, so that a whitespace-only line is skipped instead of being
/// reported as a one-field row, and so the message can name the expected count.
pub(crate) fn visit_delimited(
    path: &Path,
    body: &[u8],
    delimiter: u8,
    mut visit: impl FnMut(u64, &[&str]) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let lines = LineIndex::new(body);
    let mut quote_error = scan_quotes(body, delimiter);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .quoting(true)
        .double_quote(true)
        .from_reader(body);
    let mut record = csv::ByteRecord::new();
    loop {
        let before = usize::try_from(reader.position().byte()).unwrap_or(usize::MAX);
        let more = reader.read_byte_record(&mut record).map_err(|e| {
            // Reading from memory with flexible rows cannot fail; keep a message just in case.
            DataError::Parse {
                path: path.to_path_buf(),
                line: lines.line_of(before.min(body.len())),
                message: e.to_string(),
            }
        })?;
        if !more {
            break;
        }
        let mut start = record
            .position()
            .and_then(|p| usize::try_from(p.byte()).ok())
            .unwrap_or(before)
            .min(body.len());
        while start < body.len() && is_line_break(body[start]) {
            start += 1;
        }
        if quote_error
            .as_ref()
            .is_some_and(|q| start >= q.record_start)
        {
            break;
        }
        let line = lines.line_of(start);
        let mut fields = Vec::with_capacity(record.len());
        for field in record.iter() {
            fields.push(
                std::str::from_utf8(field).map_err(|_| DataError::InvalidUtf8 {
                    path: path.to_path_buf(),
                    line,
                })?,
            );
        }
        if fields.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        visit(line, &fields)?;
    }
    match quote_error.take() {
        Some(q) => Err(q.into_error(path, &lines)),
        None => Ok(()),
    }
}

/// Column positions in a CSV/TSV header.
struct Columns {
    width: usize,
    header_line: u64,
    text: usize,
    text_pair: Option<usize>,
    label: usize,
}

impl Columns {
    fn resolve(
        path: &Path,
        line: u64,
        header: &[&str],
        options: &ReadOptions,
    ) -> Result<Columns, DataError> {
        let names = header_names(header);
        let find = |column: &str| find_column(path, line, &names, column);
        Ok(Columns {
            width: names.len(),
            header_line: line,
            text: find(&options.text_column)?,
            text_pair: match &options.text_pair_column {
                Some(column) => Some(find(column)?),
                None => None,
            },
            label: find(&options.label_column)?,
        })
    }
}

/// A CSV/TSV header's column names, trimmed.
fn header_names(header: &[&str]) -> Vec<String> {
    header.iter().map(|h| h.trim().to_string()).collect()
}

/// The position of `column` in a header (`line` is the header's line).
fn find_column(path: &Path, line: u64, names: &[String], column: &str) -> Result<usize, DataError> {
    let mut positions = names
        .iter()
        .enumerate()
        .filter(|(_, n)| n.as_str() == column)
        .map(|(i, _)| i);
    let first = positions.next().ok_or_else(|| DataError::MissingColumn {
        path: path.to_path_buf(),
        column: column.to_string(),
        available: names.to_vec(),
    })?;
    if let Some(second) = positions.next() {
        return Err(DataError::Parse {
            path: path.to_path_buf(),
            line,
            message: format!(
                "the header names column `{column}` twice (fields {} and {})",
                first + 1,
                second + 1
            ),
        });
    }
    Ok(first)
}

/// A row whose field count differs from the header's.
fn ragged_row(
    path: &Path,
    line: u64,
    found: usize,
    header_line: u64,
    width: usize,
    delimiter: u8,
) -> DataError {
    DataError::Parse {
        path: path.to_path_buf(),
        line,
        message: format!(
            "{found} fields, but the header (line {header_line}) has {width}; quote fields that contain a {}",
            delimiter_name(delimiter)
        ),
    }
}

/// One CSV/TSV cell as a trimmed, non-empty string.
fn delimited_cell(path: &Path, line: u64, field: &str, column: &str) -> Result<String, DataError> {
    let value = field.trim();
    if value.is_empty() {
        return Err(DataError::EmptyValue {
            path: path.to_path_buf(),
            line,
            column: column.to_string(),
        });
    }
    Ok(value.to_string())
}

fn delimiter_name(delimiter: u8) -> &'static str {
    if delimiter == b'\t' {
        "tab"
    } else {
        "`,`"
    }
}

fn read_delimited(
    path: &Path,
    body: &[u8],
    delimiter: u8,
    options: &ReadOptions,
) -> Result<Vec<RawExample>, DataError> {
    let mut columns: Option<Columns> = None;
    let mut examples = Vec::new();
    visit_delimited(path, body, delimiter, |line, fields| {
        let Some(c) = &columns else {
            columns = Some(Columns::resolve(path, line, fields, options)?);
            return Ok(());
        };
        if fields.len() != c.width {
            return Err(ragged_row(
                path,
                line,
                fields.len(),
                c.header_line,
                c.width,
                delimiter,
            ));
        }
        let cell = |index: usize, column: &str| delimited_cell(path, line, fields[index], column);
        let text = cell(c.text, &options.text_column)?;
        let text_pair = match (c.text_pair, &options.text_pair_column) {
            (Some(index), Some(column)) => Some(cell(index, column)?),
            _ => None,
        };
        let label = cell(c.label, &options.label_column)?;
        examples.push(RawExample {
            text,
            text_pair,
            label,
            line,
        });
        Ok(())
    })?;
    Ok(examples)
}

/// Splits a `serde_json` error into its message and column: the message alone ends in
/// "at line L column C", where L would count from the start of the JSONL line, not the file.
fn json_error_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(message) => format!("invalid JSON at column {}: {message}", e.column()),
        None => format!("invalid JSON: {text}"),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn read_jsonl(
    path: &Path,
    body: &[u8],
    options: &ReadOptions,
) -> Result<Vec<RawExample>, DataError> {
    let mut examples = Vec::new();
    visit_jsonl(path, body, |line, object| {
        examples.push(example_from_object(path, line, "", object, options)?);
        Ok(())
    })?;
    Ok(examples)
}

/// Calls `visit` with each JSON Lines record's 1-based line and object; blank lines are skipped.
pub(crate) fn visit_jsonl(
    path: &Path,
    body: &[u8],
    mut visit: impl FnMut(u64, &Map<String, Value>) -> Result<(), DataError>,
) -> Result<(), DataError> {
    for (index, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line = index as u64 + 1;
        let text = std::str::from_utf8(raw).map_err(|_| DataError::InvalidUtf8 {
            path: path.to_path_buf(),
            line,
        })?;
        // A byte-order mark inside the file: JSON Lines files concatenated with `cat`.
        let text = text.trim_start_matches('\u{feff}');
        if text.trim().is_empty() {
            continue;
        }
        let parse = |message: String| DataError::Parse {
            path: path.to_path_buf(),
            line,
            message,
        };
        let value: Value = serde_json::from_str(text).map_err(|e| {
            let mut message = json_error_message(&e);
            if e.is_eof() {
                message.push_str(" (JSON Lines needs each object on a single line)");
            }
            parse(message)
        })?;
        let Value::Object(object) = value else {
            let mut message = format!("expected a JSON object, found {}", json_kind(&value));
            if value.is_array() {
                message
                    .push_str(" (for a file holding one JSON array, read it with format `json`)");
            }
            return Err(parse(message));
        };
        visit(line, &object)?;
    }
    Ok(())
}

fn read_json_array(
    path: &Path,
    body: &[u8],
    options: &ReadOptions,
) -> Result<Vec<RawExample>, DataError> {
    let mut examples = Vec::new();
    visit_json_array(path, body, |line, prefix, object| {
        examples.push(example_from_object(path, line, prefix, object, options)?);
        Ok(())
    })?;
    Ok(examples)
}

/// Calls `visit` with each element's 1-based index (its `line`), the `element N: ` prefix for
/// messages, and the element's object.
fn visit_json_array(
    path: &Path,
    body: &[u8],
    mut visit: impl FnMut(u64, &str, &Map<String, Value>) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        let mut message = json_error_message(&e);
        if message.contains("trailing characters") {
            message.push_str(" (one JSON object per line? read it with format `jsonl`)");
        }
        DataError::Parse {
            path: path.to_path_buf(),
            line: e.line() as u64,
            message,
        }
    })?;
    let Value::Array(items) = value else {
        return Err(DataError::Parse {
            path: path.to_path_buf(),
            line: 1,
            message: format!(
                "expected a JSON array of objects, found {}",
                json_kind(&value)
            ),
        });
    };
    for (index, item) in items.iter().enumerate() {
        let line = index as u64 + 1;
        let Value::Object(object) = item else {
            return Err(DataError::Parse {
                path: path.to_path_buf(),
                line,
                message: format!(
                    "element {line}: expected a JSON object, found {}",
                    json_kind(item)
                ),
            });
        };
        let prefix = format!("element {line}: ");
        visit(line, &prefix, object)?;
    }
    Ok(())
}

/// One record read by [`read_records`]: the requested columns' values (trimmed, non-empty), in
/// the order they were asked for, and the record's 1-based line (as [`RawExample::line`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub values: Vec<String>,
    pub line: u64,
}

/// Reads the given columns of every record of `bytes` (a file's contents, or standard input's)
/// without asking for a label column: what inference needs. `path` names the source in errors
/// (`<stdin>` for standard input).
///
/// Accepts what [`read_file`] accepts and fails as it does: an empty body, a header without rows,
/// a missing column, a ragged row, an empty cell or JSON value, malformed quoting or JSON — each
/// an error naming `path` and, where there is one, the line. Records are returned in file order;
/// blank lines (and CSV/TSV rows whose cells are all empty) are not records.
pub fn read_records(
    path: &Path,
    bytes: &[u8],
    format: Format,
    columns: &[&str],
) -> Result<Vec<Record>, DataError> {
    let body = strip_bom(path, bytes)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DataError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let mut records = Vec::new();
    match format {
        Format::Csv | Format::Tsv => {
            let delimiter = if format == Format::Tsv { b'\t' } else { b',' };
            // (header line, header width, position of each requested column)
            let mut header: Option<(u64, usize, Vec<usize>)> = None;
            visit_delimited(path, body, delimiter, |line, fields| {
                let Some((header_line, width, positions)) = &header else {
                    let names = header_names(fields);
                    let positions = columns
                        .iter()
                        .map(|c| find_column(path, line, &names, c))
                        .collect::<Result<Vec<_>, _>>()?;
                    header = Some((line, names.len(), positions));
                    return Ok(());
                };
                if fields.len() != *width {
                    return Err(ragged_row(
                        path,
                        line,
                        fields.len(),
                        *header_line,
                        *width,
                        delimiter,
                    ));
                }
                let values = positions
                    .iter()
                    .zip(columns)
                    .map(|(&i, column)| delimited_cell(path, line, fields[i], column))
                    .collect::<Result<Vec<_>, _>>()?;
                records.push(Record { values, line });
                Ok(())
            })?;
        }
        Format::Jsonl => visit_jsonl(path, body, |line, object| {
            let values = columns
                .iter()
                .map(|column| json_field(path, line, "", object, column))
                .collect::<Result<Vec<_>, _>>()?;
            records.push(Record { values, line });
            Ok(())
        })?,
        Format::Json => visit_json_array(path, body, |line, prefix, object| {
            let values = columns
                .iter()
                .map(|column| json_field(path, line, prefix, object, column))
                .collect::<Result<Vec<_>, _>>()?;
            records.push(Record { values, line });
            Ok(())
        })?,
    }
    if records.is_empty() {
        return Err(DataError::NoRows {
            path: path.to_path_buf(),
        });
    }
    Ok(records)
}

fn example_from_object(
    path: &Path,
    line: u64,
    prefix: &str,
    object: &Map<String, Value>,
    options: &ReadOptions,
) -> Result<RawExample, DataError> {
    let text = json_field(path, line, prefix, object, &options.text_column)?;
    let text_pair = match &options.text_pair_column {
        Some(column) => Some(json_field(path, line, prefix, object, column)?),
        None => None,
    };
    let label = match object.get(&options.label_column) {
        // A list of labels (multi-label data): its items, each read as a label, joined by
        // the separator that `labels::label_set` splits at.
        Some(Value::Array(items)) => {
            let mut labels = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let key = format!("{}[{i}]", options.label_column);
                let item = Map::from_iter([(key.clone(), item.clone())]);
                labels.push(json_field(path, line, prefix, &item, &key)?);
            }
            if labels.is_empty() {
                return Err(DataError::Parse {
                    path: path.to_path_buf(),
                    line,
                    message: format!(
                        "{prefix}`{}` is an empty list of labels",
                        options.label_column
                    ),
                });
            }
            labels.join(&crate::labels::LIST_SEPARATOR.to_string())
        }
        _ => json_field(path, line, prefix, object, &options.label_column)?,
    };
    Ok(RawExample {
        text,
        text_pair,
        label,
        line,
    })
}

/// One text or label of a JSON object as a trimmed, non-empty string.
///
/// Numbers and booleans are accepted and written out (`true`, `3`): labels are often numbers,
/// and a text that happens to be a number (`42`) is better read than rejected. Integral floats
/// lose their fraction (`1.0` → `"1"`) so that `1` and `1.0` are the same label. `null` and
/// empty strings are [`DataError::EmptyValue`]; arrays and objects are [`DataError::Parse`].
///
/// A missing key is a [`DataError::Parse`] rather than [`DataError::MissingColumn`], because
/// each JSON record has its own keys and only `Parse` carries the line.
fn json_field(
    path: &Path,
    line: u64,
    prefix: &str,
    object: &Map<String, Value>,
    key: &str,
) -> Result<String, DataError> {
    let parse = |message: String| DataError::Parse {
        path: path.to_path_buf(),
        line,
        message: format!("{prefix}{message}"),
    };
    let empty = || DataError::EmptyValue {
        path: path.to_path_buf(),
        line,
        column: key.to_string(),
    };
    let Some(value) = object.get(key) else {
        // Sorted, so that the message does not depend on the map's order.
        let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
        let keys: Vec<&str> = keys.into_iter().collect();
        return Err(parse(format!("no key `{key}` (keys: {})", keys.join(", "))));
    };
    let text = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => number_string(n),
        Value::Bool(b) => b.to_string(),
        Value::Null => return Err(empty()),
        Value::Array(_) | Value::Object(_) => {
            return Err(parse(format!(
                "`{key}` must be a string or a number, found {}",
                json_kind(value)
            )))
        }
    };
    if text.is_empty() {
        return Err(empty());
    }
    Ok(text)
}

/// A JSON number as a label string: integers as written, integral floats without the fraction.
pub(crate) fn number_string(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    match n.as_f64() {
        // Below 2^53 every integral f64 converts exactly.
        Some(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => (f as i64).to_string(),
        _ => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    use proptest::prelude::*;

    /// Writes `content` to `name` in a fresh temporary directory.
    fn file(name: &str, content: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(content)
            .unwrap();
        (dir, path)
    }

    fn read(name: &str, content: &[u8]) -> Result<RawDataset, DataError> {
        let (_dir, path) = file(name, content);
        read_file(&path, &ReadOptions::default())
    }

    fn read_ok(name: &str, content: &[u8]) -> Vec<(String, String, u64)> {
        match read(name, content) {
            Ok(data) => data
                .examples
                .into_iter()
                .map(|e| (e.text, e.label, e.line))
                .collect(),
            Err(e) => panic!("expected Ok, got: {e}"),
        }
    }

    fn read_err(name: &str, content: &[u8]) -> (DataError, String) {
        match read(name, content) {
            Ok(data) => panic!("expected an error, got {data:?}"),
            Err(e) => {
                let message = e.to_string();
                assert!(message.contains(name), "`{message}` does not name {name}");
                (e, message)
            }
        }
    }

    fn ex(text: &str, label: &str, line: u64) -> (String, String, u64) {
        (text.to_string(), label.to_string(), line)
    }

    // ---- formats ----

    #[test]
    fn format_from_extension() {
        for (name, format) in [
            ("a.csv", Format::Csv),
            ("a.CSV", Format::Csv),
            ("a.tsv", Format::Tsv),
            ("a.tab", Format::Tsv),
            ("a.jsonl", Format::Jsonl),
            ("a.ndjson", Format::Jsonl),
            ("a.json", Format::Json),
        ] {
            assert_eq!(
                Format::from_path(Path::new(name)).unwrap(),
                format,
                "{name}"
            );
        }
        for name in ["data.txt", "data"] {
            let message = Format::from_path(Path::new(name)).unwrap_err().to_string();
            assert!(message.contains(name), "{message}");
            assert!(message.contains("`format`"), "{message}");
        }
    }

    #[test]
    fn format_from_str_and_display() {
        for format in Format::ALL {
            assert_eq!(format.to_string().parse::<Format>().unwrap(), format);
        }
        assert_eq!("NDJSON".parse::<Format>().unwrap(), Format::Jsonl);
        let message = "xml".parse::<Format>().unwrap_err().to_string();
        assert!(
            message.contains("xml") && message.contains("csv"),
            "{message}"
        );
    }

    #[test]
    fn explicit_format_overrides_extension() {
        let (_dir, path) = file("data.txt", b"text,label\nhello,1\n");
        let options = ReadOptions {
            format: Some(Format::Csv),
            ..ReadOptions::default()
        };
        assert_eq!(read_file(&path, &options).unwrap().examples.len(), 1);
        let message = read_file(&path, &ReadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(message.contains("data.txt") && message.contains("`format`"));
    }

    // ---- CSV / TSV habits ----

    #[test]
    fn csv_basic_with_integer_and_string_labels() {
        let rows = read_ok("a.csv", b"text,label\nhello world,1\ngoodbye,neg\n");
        assert_eq!(
            rows,
            vec![ex("hello world", "1", 2), ex("goodbye", "neg", 3)]
        );
    }

    #[test]
    fn csv_bom_is_stripped_from_first_column_name() {
        let rows = read_ok("a.csv", b"\xEF\xBB\xBFtext,label\nhi,1\n");
        assert_eq!(rows, vec![ex("hi", "1", 2)]);
        // The BOM glued to a quoted first header.
        let rows = read_ok("a.csv", b"\xEF\xBB\xBF\"text\",label\nhi,1\n");
        assert_eq!(rows, vec![ex("hi", "1", 2)]);
    }

    #[test]
    fn csv_crlf_and_lone_cr_line_ends() {
        let rows = read_ok("a.csv", b"text,label\r\nhi,1\r\nho,0\r\n");
        assert_eq!(rows, vec![ex("hi", "1", 2), ex("ho", "0", 3)]);
        let rows = read_ok("a.csv", b"text,label\rhi,1\rho,0");
        assert_eq!(rows, vec![ex("hi", "1", 2), ex("ho", "0", 3)]);
    }

    #[test]
    fn csv_quoted_multiline_fields_keep_start_lines() {
        let content = b"text,label\n\"line one\nline two\",1\n\"a, \"\"quoted\"\" b\",0\n\"x\r\ny\r\n\",1\r\nlast,0\n";
        let rows = read_ok("a.csv", content);
        assert_eq!(
            rows,
            vec![
                ex("line one\nline two", "1", 2),
                ex("a, \"quoted\" b", "0", 4),
                ex("x\r\ny", "1", 5),
                ex("last", "0", 8),
            ]
        );
    }

    #[test]
    fn csv_blank_lines_and_empty_rows_are_skipped() {
        let content = b"\n\ntext,label\n\nhi,1\n   \n,\n\r\n\r\nho,0\n\n";
        let rows = read_ok("a.csv", content);
        assert_eq!(rows, vec![ex("hi", "1", 5), ex("ho", "0", 10)]);
    }

    #[test]
    fn csv_trims_ends_but_keeps_inner_whitespace() {
        let content = b" text , label \n  two  words\t, pos \n\"  quoted \n kept  \" ,\" 1 \"\n";
        let rows = read_ok("a.csv", content);
        assert_eq!(
            rows,
            vec![ex("two  words", "pos", 2), ex("quoted \n kept", "1", 3)]
        );
    }

    #[test]
    fn csv_extra_columns_and_custom_names() {
        let (_dir, path) = file(
            "pairs.csv",
            b"id,premise,hypothesis,gold\n1,a cat,an animal,entail\n",
        );
        let options = ReadOptions {
            format: None,
            text_column: "premise".into(),
            text_pair_column: Some("hypothesis".into()),
            label_column: "gold".into(),
        };
        let data = read_file(&path, &options).unwrap();
        assert_eq!(data.path, path);
        assert_eq!(
            data.examples,
            vec![RawExample {
                text: "a cat".into(),
                text_pair: Some("an animal".into()),
                label: "entail".into(),
                line: 2,
            }]
        );
    }

    #[test]
    fn tsv_with_quotes_and_commas() {
        let content = b"label\ttext\n1\thello, world\n0\t\"tab\there\"\n";
        let rows = read_ok("a.tsv", content);
        assert_eq!(
            rows,
            vec![ex("hello, world", "1", 2), ex("tab\there", "0", 3)]
        );
    }

    #[test]
    fn tsv_ragged_row() {
        let (e, message) = read_err("a.tsv", b"text\tlabel\nhi\t1\nno label\n");
        assert!(matches!(e, DataError::Parse { line: 3, .. }), "{message}");
        assert!(
            message.contains(":3:") && message.contains("tab"),
            "{message}"
        );
    }

    #[test]
    fn csv_ragged_row_names_line() {
        let (e, message) = read_err("a.csv", b"text,label\nok,1\nhello, world,1\n");
        assert!(matches!(e, DataError::Parse { line: 3, .. }), "{message}");
        assert!(message.contains("a.csv:3:"), "{message}");
        assert!(
            message.contains("3 fields") && message.contains("has 2"),
            "{message}"
        );
    }

    #[test]
    fn csv_ragged_row_after_multiline_field() {
        let (e, message) = read_err("a.csv", b"text,label\n\"a\nb\",1\nc\n");
        assert!(matches!(e, DataError::Parse { line: 4, .. }), "{message}");
    }

    // ---- CSV / TSV errors ----

    #[test]
    fn empty_files() {
        for content in [
            &b""[..],
            b"\xEF\xBB\xBF",
            b"  \n\r\n\t ",
            b"\xEF\xBB\xBF\n\n",
        ] {
            for name in ["a.csv", "a.tsv", "a.jsonl", "a.json"] {
                let (e, message) = read_err(name, content);
                assert!(
                    matches!(e, DataError::EmptyFile { .. }),
                    "{name}: {message}"
                );
            }
        }
    }

    #[test]
    fn header_only_is_no_rows() {
        for content in [&b"text,label\n"[..], b"text,label\n\n,\n  \n"] {
            let (e, message) = read_err("a.csv", content);
            assert!(matches!(e, DataError::NoRows { .. }), "{message}");
        }
        let (e, _) = read_err("a.csv", b",,\n,\n");
        assert!(matches!(e, DataError::NoRows { .. }));
    }

    #[test]
    fn missing_column_lists_available() {
        let (e, message) = read_err("a.csv", b"\xEF\xBB\xBFsentence,label\nhi,1\n");
        assert!(matches!(e, DataError::MissingColumn { .. }), "{message}");
        assert!(message.contains("`text`"), "{message}");
        assert!(message.contains("sentence, label"), "{message}");
        let (_dir, path) = file("b.csv", b"text,label\nhi,1\n");
        let options = ReadOptions {
            text_pair_column: Some("second".into()),
            ..ReadOptions::default()
        };
        let message = read_file(&path, &options).unwrap_err().to_string();
        assert!(
            message.contains("b.csv") && message.contains("`second`"),
            "{message}"
        );
    }

    #[test]
    fn duplicate_column_is_an_error() {
        let (e, message) = read_err("a.csv", b"text,label,text\nhi,1,ho\n");
        assert!(matches!(e, DataError::Parse { line: 1, .. }), "{message}");
        assert!(message.contains("`text` twice"), "{message}");
    }

    #[test]
    fn same_column_twice_in_options() {
        let (_dir, path) = file("a.csv", b"text,label\nhi,1\n");
        let options = ReadOptions {
            label_column: "text".into(),
            ..ReadOptions::default()
        };
        let e = read_file(&path, &options).unwrap_err();
        assert!(matches!(e, DataError::Invalid { .. }), "{e}");
    }

    #[test]
    fn empty_text_and_label_cells() {
        let (e, message) = read_err("a.csv", b"text,label\nok,1\n  ,1\n");
        assert!(
            matches!(e, DataError::EmptyValue { line: 3, .. }),
            "{message}"
        );
        assert!(
            message.contains("a.csv:3:") && message.contains("`text`"),
            "{message}"
        );
        let (e, message) = read_err("a.csv", b"text,label\nok,1\n\"a\nb\",\"\"\n");
        assert!(
            matches!(e, DataError::EmptyValue { line: 3, .. }),
            "{message}"
        );
        assert!(message.contains("`label`"), "{message}");
    }

    #[test]
    fn invalid_utf8_names_line() {
        let (e, message) = read_err("a.csv", b"text,label\nok,1\n\nbad \xFF\xFE,1\n");
        assert!(
            matches!(e, DataError::InvalidUtf8 { line: 4, .. }),
            "{message}"
        );
        assert!(message.contains("a.csv:4:"), "{message}");
        let (e, _) = read_err("a.csv", b"te\xC3xt,label\nok,1\n");
        assert!(matches!(e, DataError::InvalidUtf8 { line: 1, .. }));
        // Latin-1 text, as old exports have it.
        let (e, _) = read_err("a.tsv", b"text\tlabel\ncaf\xE9\t1\n");
        assert!(matches!(e, DataError::InvalidUtf8 { line: 2, .. }));
    }

    #[test]
    fn utf16_is_a_format_error() {
        let (e, message) = read_err("a.csv", b"\xFF\xFEt\0e\0x\0t\0");
        assert!(matches!(e, DataError::Format { .. }), "{message}");
        assert!(message.contains("UTF-16"), "{message}");
    }

    #[test]
    fn unterminated_quote_names_record_line() {
        let (e, message) = read_err("a.csv", b"text,label\nok,1\n\"never closed,1\nmore,0\n");
        assert!(matches!(e, DataError::Parse { line: 3, .. }), "{message}");
        assert!(
            message.contains("a.csv:3:") && message.contains("never closed"),
            "{message}"
        );
    }

    #[test]
    fn text_after_closing_quote_is_an_error() {
        let (e, message) = read_err("a.csv", b"text,label\n\"he said \"hi\" ok\",1\n");
        assert!(matches!(e, DataError::Parse { line: 2, .. }), "{message}");
        assert!(message.contains("`h` after the closing quote"), "{message}");
        // Spaces after the closing quote are fine.
        assert_eq!(
            read_ok("b.csv", b"text,label\n\"hi\"  ,1\n"),
            vec![ex("hi", "1", 2)]
        );
    }

    #[test]
    fn earlier_errors_come_before_a_later_quote_error() {
        let (e, message) = read_err("a.csv", b"text,label\n,1\n\"open,1\n");
        assert!(
            matches!(e, DataError::EmptyValue { line: 2, .. }),
            "{message}"
        );
    }

    #[test]
    fn stray_quote_inside_unquoted_field_is_literal() {
        let rows = read_ok("a.csv", b"text,label\na 5\" screen,1\n");
        assert_eq!(rows, vec![ex("a 5\" screen", "1", 2)]);
    }

    #[test]
    fn missing_file_is_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.csv");
        let e = read_file(&path, &ReadOptions::default()).unwrap_err();
        assert!(matches!(e, DataError::Io { .. }));
        assert!(e.to_string().contains("absent.csv"));
    }

    // ---- JSON Lines ----

    #[test]
    fn jsonl_labels_of_every_kind() {
        let content = b"\xEF\xBB\xBF{\"text\": \" a \", \"label\": 1}\r\n\n{\"text\": \"b\", \"label\": \"pos\"}\n  \n{\"text\": \"c\", \"label\": 1.0}\n{\"text\": \"d\", \"label\": true}\n{\"text\": \"e\", \"label\": -2, \"extra\": [1]}\n{\"text\": 42, \"label\": 0.5}";
        let rows = read_ok("a.jsonl", content);
        assert_eq!(
            rows,
            vec![
                ex("a", "1", 1),
                ex("b", "pos", 3),
                ex("c", "1", 5),
                ex("d", "true", 6),
                ex("e", "-2", 7),
                ex("42", "0.5", 8),
            ]
        );
    }

    #[test]
    fn jsonl_text_pair() {
        let (_dir, path) = file("p.jsonl", b"{\"a\":\"x\",\"b\":\"y\",\"label\":0}\n");
        let options = ReadOptions {
            text_column: "a".into(),
            text_pair_column: Some("b".into()),
            ..ReadOptions::default()
        };
        let data = read_file(&path, &options).unwrap();
        assert_eq!(data.examples[0].text_pair.as_deref(), Some("y"));
    }

    #[test]
    fn jsonl_malformed_line() {
        let (e, message) = read_err(
            "a.jsonl",
            b"{\"text\":\"a\",\"label\":1}\n{\"text\": oops}\n",
        );
        assert!(matches!(e, DataError::Parse { line: 2, .. }), "{message}");
        assert!(
            message.contains("a.jsonl:2:") && message.contains("column"),
            "{message}"
        );
        // Pretty-printed objects hint at the one-per-line rule.
        let (_, message) = read_err("b.jsonl", b"{\n\"text\": \"a\", \"label\": 1\n}\n");
        assert!(
            message.contains("b.jsonl:1:") && message.contains("single line"),
            "{message}"
        );
    }

    #[test]
    fn jsonl_non_object_line() {
        let (e, message) = read_err("a.jsonl", b"{\"text\":\"a\",\"label\":1}\n[1, 2]\n");
        assert!(matches!(e, DataError::Parse { line: 2, .. }), "{message}");
        assert!(message.contains("found an array"), "{message}");
        let (_, message) = read_err("a.jsonl", b"\"just a string\"\n");
        assert!(
            message.contains("a.jsonl:1:") && message.contains("a string"),
            "{message}"
        );
    }

    #[test]
    fn jsonl_missing_key_lists_keys() {
        let (e, message) = read_err(
            "a.jsonl",
            b"{\"text\":\"a\",\"label\":1}\n{\"sentence\":\"b\",\"label\":0}\n",
        );
        assert!(matches!(e, DataError::Parse { line: 2, .. }), "{message}");
        assert!(message.contains("a.jsonl:2:"), "{message}");
        assert!(
            message.contains("`text`") && message.contains("label, sentence"),
            "{message}"
        );
    }

    #[test]
    fn jsonl_null_and_empty_values() {
        let (e, message) = read_err("a.jsonl", b"{\"text\":\"a\",\"label\":null}\n");
        assert!(
            matches!(e, DataError::EmptyValue { line: 1, .. }),
            "{message}"
        );
        assert!(
            message.contains("a.jsonl:1:") && message.contains("`label`"),
            "{message}"
        );
        let (e, message) = read_err("a.jsonl", b"\n{\"text\":\"   \",\"label\":1}\n");
        assert!(
            matches!(e, DataError::EmptyValue { line: 2, .. }),
            "{message}"
        );
        assert!(message.contains("`text`"), "{message}");
        let (e, _) = read_err("a.jsonl", b"{\"text\":null,\"label\":1}\n");
        assert!(matches!(e, DataError::EmptyValue { .. }));
    }

    #[test]
    fn jsonl_object_valued_text() {
        let (e, message) = read_err("a.jsonl", b"{\"text\":{\"a\":1},\"label\":1}\n");
        assert!(matches!(e, DataError::Parse { line: 1, .. }), "{message}");
        assert!(message.contains("`text` must be a string"), "{message}");
    }

    #[test]
    fn jsonl_invalid_utf8() {
        let (e, message) = read_err(
            "a.jsonl",
            b"{\"text\":\"a\",\"label\":1}\n{\"text\":\"\xC0\",\"label\":1}\n",
        );
        assert!(
            matches!(e, DataError::InvalidUtf8 { line: 2, .. }),
            "{message}"
        );
    }

    #[test]
    fn jsonl_concatenated_with_boms() {
        let content =
            b"\xEF\xBB\xBF{\"text\":\"a\",\"label\":1}\n\xEF\xBB\xBF{\"text\":\"b\",\"label\":0}\n";
        assert_eq!(
            read_ok("a.jsonl", content),
            vec![ex("a", "1", 1), ex("b", "0", 2)]
        );
    }

    #[test]
    fn jsonl_only_blank_lines_after_bom() {
        let (e, _) = read_err("a.jsonl", b"\xEF\xBB\xBF\r\n \r\n");
        assert!(matches!(e, DataError::EmptyFile { .. }));
    }

    // ---- JSON arrays ----

    #[test]
    fn json_array() {
        let content = b"\xEF\xBB\xBF[\n {\"text\": \"a\", \"label\": 0},\n {\"text\": \"b\", \"label\": \"1\"}\n]\n";
        assert_eq!(
            read_ok("a.json", content),
            vec![ex("a", "0", 1), ex("b", "1", 2)]
        );
    }

    #[test]
    fn json_array_errors() {
        let (e, _) = read_err("a.json", b"[]");
        assert!(matches!(e, DataError::NoRows { .. }));
        let (e, message) = read_err("a.json", b"{\"text\": \"a\"}");
        assert!(matches!(e, DataError::Parse { line: 1, .. }), "{message}");
        let (e, message) = read_err("a.json", b"[{\"text\":\"a\",\"label\":0}, 3]");
        assert!(matches!(e, DataError::Parse { line: 2, .. }), "{message}");
        assert!(message.contains("element 2"), "{message}");
        let (e, message) = read_err("a.json", b"[{\"text\":\"a\"}]");
        assert!(matches!(e, DataError::Parse { line: 1, .. }), "{message}");
        assert!(message.contains("`label`"), "{message}");
        let (e, message) = read_err("a.json", b"[\n{\"text\":\"a\",\n\"label\":}]");
        assert!(matches!(e, DataError::Parse { line: 3, .. }), "{message}");
        let (_, message) = read_err(
            "b.json",
            b"{\"text\":\"a\",\"label\":0}\n{\"text\":\"b\",\"label\":1}\n",
        );
        assert!(message.contains("format `jsonl`"), "{message}");
    }

    #[test]
    fn number_strings() {
        let n = |s: &str| number_string(&serde_json::from_str(s).unwrap());
        assert_eq!(n("1"), "1");
        assert_eq!(n("-1"), "-1");
        assert_eq!(n("1.0"), "1");
        assert_eq!(n("-0.0"), "0");
        assert_eq!(n("2e0"), "2");
        assert_eq!(n("0.5"), "0.5");
        assert_eq!(n("18446744073709551615"), "18446744073709551615");
    }

    // ---- records without a label column ----

    #[test]
    fn records_read_the_asked_columns_in_order() {
        let path = Path::new("in.csv");
        let got = read_records(
            path,
            b"\xEF\xBB\xBFid,text\r\n1, hello \r\n,\r\n2,\"a,b\"\r\n",
            Format::Csv,
            &["text", "id"],
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                Record {
                    values: vec!["hello".into(), "1".into()],
                    line: 2
                },
                Record {
                    values: vec!["a,b".into(), "2".into()],
                    line: 4
                },
            ]
        );
        let got = read_records(Path::new("in.tsv"), b"text\nx\n", Format::Tsv, &["text"]).unwrap();
        assert_eq!(got[0].values, vec!["x"]);
        let got = read_records(
            Path::new("in.jsonl"),
            b"{\"text\": \"x\", \"id\": 7}\n\n{\"text\": \"y\", \"id\": \"b\"}\n",
            Format::Jsonl,
            &["text", "id"],
        )
        .unwrap();
        let values: Vec<(Vec<String>, u64)> = got.into_iter().map(|r| (r.values, r.line)).collect();
        assert_eq!(
            values,
            vec![
                (vec!["x".into(), "7".into()], 1),
                (vec!["y".into(), "b".into()], 3)
            ]
        );
        let got = read_records(
            Path::new("in.json"),
            b"[{\"text\": \"x\"}]",
            Format::Json,
            &["text"],
        )
        .unwrap();
        assert_eq!(
            got,
            vec![Record {
                values: vec!["x".into()],
                line: 1
            }]
        );
    }

    #[test]
    fn records_errors_name_the_source_and_line() {
        let err = |body: &[u8], format: Format| {
            read_records(Path::new("<stdin>"), body, format, &["text"])
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(b"review\nx\n", Format::Csv),
            "<stdin>: no column `text` (columns: review)"
        );
        assert_eq!(
            err(b"text,b\nx,1\ny\n", Format::Csv),
            "<stdin>:3: 1 fields, but the header (line 1) has 2; quote fields that contain a `,`"
        );
        assert_eq!(
            err(b"text,b\n ,1\n", Format::Csv),
            "<stdin>:2: column `text` is empty"
        );
        assert_eq!(
            err(b"text\n", Format::Csv),
            "<stdin>: no data rows (only a header, or only blank lines)"
        );
        assert_eq!(err(b"  \n", Format::Jsonl), "<stdin>: the file is empty");
        assert!(err(b"{\"text\": 1}\n{\"id\": 2}\n", Format::Jsonl)
            .starts_with("<stdin>:2: no key `text`"));
    }

    // ---- properties ----

    /// Bytes drawn mostly from the characters that drive the CSV and JSON grammars.
    fn messy_bytes() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"\"".to_vec()),
            Just(b",".to_vec()),
            Just(b"\t".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b" ".to_vec()),
            Just(b"\xEF\xBB\xBF".to_vec()),
            Just(b"text".to_vec()),
            Just(b"label".to_vec()),
            Just(b"{\"text\":".to_vec()),
            Just(b"\"label\":".to_vec()),
            Just(b"}".to_vec()),
            Just(b"[".to_vec()),
            Just(b"]".to_vec()),
            Just(b"null".to_vec()),
            Just(b"1".to_vec()),
            Just("é".as_bytes().to_vec()),
            any::<u8>().prop_map(|b| vec![b]),
        ];
        (any::<bool>(), prop::collection::vec(piece, 0..64)).prop_map(|(header, pieces)| {
            let mut bytes = if header {
                b"text,label\n".to_vec()
            } else {
                Vec::new()
            };
            bytes.extend(pieces.concat());
            bytes
        })
    }

    fn read_all_formats(content: &[u8]) {
        let (_dir, path) = file("fuzz.dat", content);
        for format in Format::ALL {
            let options = ReadOptions {
                format: Some(format),
                ..ReadOptions::default()
            };
            // Ok or Err, never a panic; errors always name the file.
            if let Err(e) = read_file(&path, &options) {
                assert!(e.to_string().contains("fuzz.dat"), "{e}");
            }
            if let Err(e) = read_records(&path, content, format, &["text", "id"]) {
                assert!(e.to_string().contains("fuzz.dat"), "{e}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic(content in prop::collection::vec(any::<u8>(), 0..512)) {
            read_all_formats(&content);
        }

        #[test]
        fn messy_csvish_input_never_panics(content in messy_bytes()) {
            read_all_formats(&content);
        }

        /// Whatever the csv crate writes, the reader reads back (modulo end trimming), at the
        /// line where each record starts.
        #[test]
        fn csv_round_trip(
            rows in prop::collection::vec(("[a-z\"\n\r, \t]{0,12}", "[a-z0-9]{1,4}"), 1..12),
            crlf in any::<bool>(),
            bom in any::<bool>(),
        ) {
            let rows: Vec<(String, String)> = rows
                .into_iter()
                .map(|(t, l)| (format!("x{t}y"), l))
                .collect();
            let mut writer = csv::WriterBuilder::new()
                .terminator(if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
                .from_writer(Vec::new());
            writer.write_record(["text", "label"]).unwrap();
            for (text, label) in &rows {
                writer.write_record([text, label]).unwrap();
            }
            let mut content = if bom { b"\xEF\xBB\xBF".to_vec() } else { Vec::new() };
            content.extend(writer.into_inner().unwrap());
            let (_dir, path) = file("round.csv", &content);
            let data = read_file(&path, &ReadOptions::default()).unwrap();
            let mut line = 2;
            prop_assert_eq!(data.examples.len(), rows.len());
            for (example, (text, label)) in data.examples.iter().zip(&rows) {
                prop_assert_eq!(&example.text, text);
                prop_assert_eq!(&example.label, label);
                prop_assert_eq!(example.line, line);
                line += 1 + text.replace("\r\n", "\n").matches(['\n', '\r']).count() as u64;
            }
        }
    }
}
