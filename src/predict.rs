//! `kiln eval` and `kiln predict`: a fine-tuned model (kiln's `model/` or any
//! BertForSequenceClassification checkpoint) on new data.
//!
//! `kiln predict` reads its texts from `--text` arguments, a plain text file (one text per
//! line), a CSV/TSV/JSONL/JSON file (the `--text-column`, optionally `--text-pair-column` and
//! `--id-column`), or standard input (`--input -`), and prints one JSON line per input record,
//! in input order:
//!
//! ```text
//! {"index":0,"id":"r1","label":"pos","probabilities":{"neg":0.08,"pos":0.92}}
//! {"index":0,"label":"pos","top_k":[{"label":"pos","probability":0.92}]}      (--top-k 1)
//! ```
//!
//! `index` is the record's 0-based position: the n-th `--text`; for line input the 0-based line
//! number (blank and whitespace-only lines print nothing but still count, so `index + 1` is the
//! line in the file); for structured input the n-th record (the header, blank lines and
//! all-empty CSV rows are not records). `id` (with `--id-column`) is that column's value as a
//! string; `text` and `text_pair` appear with `--echo-text`. `probabilities` lists every label
//! in the model's label order.
//!
//! A regression model (`problem_type: "regression"` in its config.json) prints its value in
//! the data's units instead (the head's output mapped back with `kiln_value_scale`):
//!
//! ```text
//! {"index":0,"value":3.217}
//! ```
//!
//! A multi-label model (`problem_type: "multi_label_classification"`) prints the labels whose
//! probability (sigmoid) exceeds their threshold (`kiln_thresholds`, 0.5 when absent) and every
//! label's probability:
//!
//! ```text
//! {"index":0,"labels":["politics","sports"],"probabilities":{"business":0.03,"politics":0.91,"sports":0.78}}
//! ```

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::prelude::*;
use serde::ser::{Serialize, SerializeMap, Serializer};

use kiln_data::pipeline::encode_examples;
use kiln_data::read::{read_file, read_records, Format, ReadOptions};
use kiln_data::{encode_values, LabelMap, Readout, Target, Task, TextTokenizer, ValueScale};
use kiln_model::{Checkpoint, HeadInit, Pooling, SequenceClassifier};
use kiln_train::evaluate::{
    metrics_from_logits, predict_logits, timed_predict_logits, InferenceSpeed,
};
use kiln_train::{TaskLoss, TaskMetrics};

/// A fine-tuned sequence model (a classifier, or a regression head) with its labels and
/// tokenizer.
#[derive(Clone)]
pub struct Classifier {
    pub model: SequenceClassifier,
    pub labels: Vec<String>,
    /// From config.json's `problem_type`.
    pub task: Task,
    /// How outputs read: a regression head's scale (`kiln_value_scale`), a multi-label
    /// head's thresholds (`kiln_thresholds`).
    pub readout: Readout,
    pub tokenizer: TextTokenizer,
    pub device: Device,
}

impl Classifier {
    /// Loads a fine-tuned checkpoint; the pooling it was trained with comes from `kiln_pooling`
    /// in its config (cls when absent, as transformers does).
    pub fn load(dir: &Path, max_len: usize, device: Device) -> Result<Self> {
        let checkpoint = Checkpoint::open(dir)?;
        // kiln's record of the pooling; else ModernBERT's own `classifier_pooling` (a model
        // transformers fine-tuned pools as its config says); else cls, as transformers.
        let pooling_field = match checkpoint.config.extra.get("kiln_pooling") {
            None if checkpoint.family() == kiln_model::Family::ModernBert => "classifier_pooling",
            _ => "kiln_pooling",
        };
        let pooling = checkpoint
            .config
            .extra
            .get(pooling_field)
            .and_then(|v| v.as_str())
            .map(|s| s.parse::<Pooling>())
            .transpose()
            .map_err(|e| anyhow::anyhow!("{}: {pooling_field}: {e}", dir.display()))?
            .unwrap_or_default();
        let Some(labels) = checkpoint.config.labels() else {
            bail!(
                "{}: config.json has no id2label: not a fine-tuned classifier",
                dir.join("config.json").display()
            );
        };
        let (model, _) =
            checkpoint.load_sequence_classifier(HeadInit::FromCheckpoint, pooling, &device)?;
        let max_len = max_len.min(checkpoint.config.max_tokens());
        // Pairs are cut as in training (`kiln_truncation`; longest-first when absent).
        let truncation = checkpoint
            .config
            .extra
            .get("kiln_truncation")
            .and_then(|v| v.as_str())
            .map(|s| s.parse::<kiln_data::Truncation>())
            .transpose()
            .map_err(|e| anyhow::anyhow!("{}: kiln_truncation: {e}", dir.display()))?
            .unwrap_or_default();
        let tokenizer = TextTokenizer::from_file(checkpoint.tokenizer_path(), max_len)?
            .with_truncation(truncation)?;
        let config_path = dir.join("config.json");
        let problem_type = checkpoint
            .config
            .extra
            .get("problem_type")
            .and_then(|v| v.as_str());
        let architectures = checkpoint.config.architectures.clone().unwrap_or_default();
        if architectures
            .iter()
            .any(|a| a.ends_with("ForTokenClassification"))
        {
            bail!(
                "{}: a token classifier ({}), not a sequence classifier: kiln predict and kiln \
                 eval serve it as a tagger, this command needs a sequence classifier",
                config_path.display(),
                architectures.join(", ")
            );
        }
        let Some(task) = Task::from_problem_type(problem_type) else {
            bail!(
                "{}: problem_type `{}` is not one kiln serves (single_label_classification, \
                 regression, multi_label_classification)",
                config_path.display(),
                problem_type.unwrap_or_default()
            );
        };
        let scale = match checkpoint.config.extra.get("kiln_value_scale") {
            Some(v) => Some(
                serde_json::from_value::<ValueScale>(v.clone()).map_err(|e| {
                    anyhow::anyhow!("{}: kiln_value_scale: {e}", config_path.display())
                })?,
            ),
            None => None,
        };
        let thresholds = match checkpoint.config.extra.get("kiln_thresholds") {
            Some(v) => serde_json::from_value::<Vec<f32>>(v.clone())
                .ok()
                .filter(|t| t.len() == labels.len() && t.iter().all(|t| *t > 0.0 && *t < 1.0))
                .with_context(|| {
                    format!(
                        "{}: kiln_thresholds must be {} probabilities, one per label",
                        config_path.display(),
                        labels.len()
                    )
                })?,
            None => Vec::new(),
        };
        if task == Task::Regression && labels.len() != 1 {
            bail!(
                "{}: a regression model has one output, but id2label names {}",
                config_path.display(),
                labels.len()
            );
        }
        Ok(Self {
            model,
            labels,
            task,
            readout: Readout {
                scale,
                thresholds,
                strict_entities: false,
            },
            tokenizer,
            device,
        })
    }

    /// The model's raw outputs per text or text pair, row-major `[inputs, outputs]`.
    fn outputs(&self, inputs: &[(&str, Option<&str>)], batch_size: usize) -> Result<Vec<f32>> {
        let examples: Vec<kiln_data::Example> = inputs
            .iter()
            .map(|&(t, pair)| kiln_data::Example {
                text: t.to_string(),
                text_pair: pair.map(str::to_string),
                target: Target::Class(0),
            })
            .collect();
        let encoded = encode_examples(&self.tokenizer, &examples)?;
        Ok(predict_logits(
            &self.model,
            &encoded,
            batch_size,
            self.tokenizer.pad_id(),
            &self.device,
        ))
    }

    /// A regression model's value per text or text pair, in the data's units.
    pub fn predict_values(
        &self,
        inputs: &[(&str, Option<&str>)],
        batch_size: usize,
    ) -> Result<Vec<f64>> {
        Ok(self
            .outputs(inputs, batch_size)?
            .into_iter()
            .map(|v| self.readout.value(v))
            .collect())
    }

    /// A multi-label model's label probabilities (sigmoid of each output) per text or text
    /// pair, in input order.
    pub fn predict_label_sets(
        &self,
        inputs: &[(&str, Option<&str>)],
        batch_size: usize,
    ) -> Result<Vec<Vec<f32>>> {
        let n = self.labels.len().max(1);
        Ok(self
            .outputs(inputs, batch_size)?
            .chunks(n)
            .map(|row| row.iter().map(|&x| kiln_data::sigmoid(x)).collect())
            .collect())
    }

    /// Class probabilities per text (softmax of the logits), in input order.
    pub fn predict(&self, texts: &[&str], batch_size: usize) -> Result<Vec<Vec<f32>>> {
        let pairs: Vec<(&str, Option<&str>)> = texts.iter().map(|&t| (t, None)).collect();
        self.predict_pairs(&pairs, batch_size)
    }

    /// Class probabilities per text or text pair (softmax of the logits), in input order.
    pub fn predict_pairs(
        &self,
        inputs: &[(&str, Option<&str>)],
        batch_size: usize,
    ) -> Result<Vec<Vec<f32>>> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let n = self.labels.len();
        let logits = self.outputs(inputs, batch_size)?;
        Ok(logits
            .chunks(n)
            .map(|row| {
                let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let exp: Vec<f32> = row.iter().map(|x| (x - max).exp()).collect();
                let sum: f32 = exp.iter().sum();
                exp.iter().map(|e| e / sum).collect()
            })
            .collect())
    }

    /// Metrics on a labelled file: its labels must be among the model's (a classifier; sets of
    /// them, split at `label_delimiter`, for a multi-label model), or numbers (a regression
    /// model). Also says how long the model's forward pass over the file took (tokenizing
    /// excluded).
    pub fn evaluate_file(
        &self,
        path: &Path,
        read: &ReadOptions,
        label_delimiter: &str,
        batch_size: usize,
    ) -> Result<(TaskMetrics, InferenceSpeed)> {
        let raw = read_file(path, read)?;
        // The model's own label order (deserializing keeps it; building from labels would sort).
        let map = || -> Result<LabelMap> {
            Ok(serde_json::from_value(
                serde_json::json!({ "labels": self.labels }),
            )?)
        };
        let (examples, labels) = match self.task {
            Task::Classification => (map()?.encode(&raw)?, self.labels.as_slice()),
            Task::MultiLabel => (
                map()?.encode_sets(&raw, label_delimiter)?,
                self.labels.as_slice(),
            ),
            Task::Regression => (encode_values(&raw)?, &[][..]),
            Task::Token => bail!("a token classifier is not served by kiln eval"),
        };
        let encoded = encode_examples(&self.tokenizer, &examples)?;
        let loss = TaskLoss::default();
        let (logits, speed) = timed_predict_logits(
            &self.model,
            &encoded,
            batch_size,
            self.tokenizer.pad_id(),
            &self.device,
        );
        Ok((
            metrics_from_logits(
                &logits,
                &encoded,
                labels,
                &loss,
                &self.readout,
                &self.device,
            ),
            speed,
        ))
    }
}

/// The layout of `kiln predict --input`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// Plain text, one text per line.
    Lines,
    /// CSV, TSV, JSONL or JSON with a header row / keys.
    Table(Format),
}

impl std::str::FromStr for InputFormat {
    type Err = String;
    /// `lines` (or `txt`), or one of kiln_data's formats (`csv`, `tsv`, `jsonl`, `json`).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "lines" | "txt" => Ok(InputFormat::Lines),
            _ => s.parse::<Format>().map(InputFormat::Table).map_err(|_| {
                format!("unknown format `{s}` (expected lines, csv, tsv, jsonl or json)")
            }),
        }
    }
}

impl InputFormat {
    /// The format of `path` when `--format` is not given: standard input (`-`) is lines; files
    /// with a CSV/TSV/JSONL/JSON extension (`.csv`, `.tsv`, `.tab`, `.jsonl`, `.ndjson`,
    /// `.json`) are those; every other file (`.txt`, no extension, …) is lines, as before.
    pub fn of(path: &Path) -> InputFormat {
        if is_stdin(path) {
            return InputFormat::Lines;
        }
        Format::from_path(path).map_or(InputFormat::Lines, InputFormat::Table)
    }
}

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// What `kiln predict` reads and how it prints.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PredictArgs {
    /// Input file: CSV, TSV, JSONL or JSON (by extension or --format; header row / keys), or
    /// plain text with one text per line (.txt and any other extension, or --format lines;
    /// blank lines are skipped); `-` reads standard input (lines unless --format says otherwise).
    #[arg(long, conflicts_with = "text")]
    pub input: Option<PathBuf>,
    /// One text to label (repeatable).
    #[arg(long)]
    pub text: Vec<String>,
    /// The --input layout: lines, csv, tsv, jsonl or json [default: from the extension; lines for
    /// `-` and for extensions that are none of those].
    #[arg(long, requires = "input")]
    pub format: Option<InputFormat>,
    /// Column (CSV/TSV header name, JSON key) holding the text, for structured input [default:
    /// text].
    #[arg(long)]
    pub text_column: Option<String>,
    /// Column holding the second text of a sentence pair, for structured input.
    #[arg(long)]
    pub text_pair_column: Option<String>,
    /// Column whose value each output line carries as `id` (a string), for structured input.
    #[arg(long)]
    pub id_column: Option<String>,
    /// Print the K most probable labels with their probabilities (`top_k`, most probable first)
    /// instead of every label's probability; K above the number of labels prints them all.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Repeat each input's text (and text_pair) in its output line.
    #[arg(long)]
    pub echo_text: bool,
}

/// One input of `kiln predict`, with what its output line carries back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRecord {
    /// 0-based position: see the module documentation.
    pub index: usize,
    pub id: Option<String>,
    pub text: String,
    pub text_pair: Option<String>,
}

impl PredictArgs {
    /// The inputs, in order. Errors name the file (`<stdin>` for standard input) and the line.
    pub fn read(&self) -> Result<Vec<InputRecord>> {
        if let Some(k) = self.top_k {
            if k == 0 {
                bail!("--top-k 0: must be at least 1");
            }
        }
        let structured_only = [
            ("--text-column", self.text_column.is_some()),
            ("--text-pair-column", self.text_pair_column.is_some()),
            ("--id-column", self.id_column.is_some()),
        ];
        let format = self
            .input
            .as_deref()
            .map(|p| self.format.unwrap_or_else(|| InputFormat::of(p)));
        let table = match format {
            Some(InputFormat::Table(format)) => Some(format),
            _ => None,
        };
        if table.is_none() {
            if let Some((flag, _)) = structured_only.iter().find(|(_, given)| *given) {
                let why = match &self.input {
                    Some(path) => format!("{} is read as plain text lines", name(path)),
                    None => "--text gives plain texts".to_string(),
                };
                bail!("{flag} needs a CSV, TSV, JSONL or JSON --input (pass --format if the extension does not say it), but {why}");
            }
        }
        let Some(path) = &self.input else {
            if self.text.is_empty() {
                bail!("give --input FILE (`-` for standard input) or --text \"…\"");
            }
            return Ok(self
                .text
                .iter()
                .enumerate()
                .map(|(index, text)| InputRecord {
                    index,
                    id: None,
                    text: text.clone(),
                    text_pair: None,
                })
                .collect());
        };
        let bytes = read_input_bytes(path)?;
        let source = PathBuf::from(name(path));
        match table {
            None => line_records(&source, &bytes),
            Some(format) => {
                let text_column = self.text_column.as_deref().unwrap_or("text");
                let mut columns = vec![text_column];
                columns.extend(self.text_pair_column.as_deref());
                columns.extend(self.id_column.as_deref());
                let records = read_records(&source, &bytes, format, &columns)?;
                let pair = self.text_pair_column.is_some();
                let id = self.id_column.is_some();
                Ok(records
                    .into_iter()
                    .enumerate()
                    .map(|(index, record)| {
                        let mut values = record.values.into_iter();
                        let text = values.next().unwrap_or_default();
                        let text_pair = if pair { values.next() } else { None };
                        let id = if id { values.next() } else { None };
                        InputRecord {
                            index,
                            id,
                            text,
                            text_pair,
                        }
                    })
                    .collect())
            }
        }
    }

    /// How output lines look.
    pub fn output(&self) -> OutputOptions {
        OutputOptions {
            top_k: self.top_k,
            echo_text: self.echo_text,
        }
    }
}

/// The name of an input in messages: the path, or `<stdin>`.
fn name(path: &Path) -> String {
    if is_stdin(path) {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

fn read_input_bytes(path: &Path) -> Result<Vec<u8>> {
    if is_stdin(path) {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .context("reading <stdin>")?;
        Ok(bytes)
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    }
}

/// Plain text input: one text per line (without its `\n` or `\r\n`, otherwise as written).
/// Empty and whitespace-only lines are skipped but counted: a record's `index` is its 0-based
/// line number. A UTF-8 byte-order mark is dropped; invalid UTF-8 is an error naming the line.
pub fn line_records(source: &Path, bytes: &[u8]) -> Result<Vec<InputRecord>> {
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        bail!(
            "{}: the input is UTF-16 encoded; save it as UTF-8",
            source.display()
        );
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut records = Vec::new();
    for (index, raw) in body.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text = std::str::from_utf8(raw)
            .map_err(|_| anyhow::anyhow!("{}:{}: invalid UTF-8", source.display(), index + 1))?;
        if text.trim().is_empty() {
            continue;
        }
        records.push(InputRecord {
            index,
            id: None,
            text: text.to_string(),
            text_pair: None,
        });
    }
    if records.is_empty() {
        bail!(
            "{}: no text to label (the input is empty or only blank lines)",
            source.display()
        );
    }
    Ok(records)
}

/// How `kiln predict` prints each line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputOptions {
    /// `Some(k)`: a `top_k` list of the k most probable labels instead of `probabilities`.
    pub top_k: Option<usize>,
    /// Include `text` (and `text_pair`).
    pub echo_text: bool,
}

/// Every label's probability, as a JSON object in the model's label order.
struct LabelProbabilities<'a> {
    labels: &'a [String],
    probabilities: &'a [f32],
}

impl Serialize for LabelProbabilities<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.labels.len()))?;
        for (label, p) in self.labels.iter().zip(self.probabilities) {
            map.serialize_entry(label, p)?;
        }
        map.end()
    }
}

#[derive(serde::Serialize)]
struct Ranked<'a> {
    label: &'a str,
    probability: f32,
}

/// What every output line says of its input record: its index, its id, and its text(s) with
/// `--echo-text`.
#[derive(serde::Serialize)]
struct Echo<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text_pair: Option<&'a str>,
}

impl<'a> Echo<'a> {
    fn of(record: &'a InputRecord, options: OutputOptions) -> Self {
        Self {
            index: record.index,
            id: record.id.as_deref(),
            text: options.echo_text.then_some(record.text.as_str()),
            text_pair: options
                .echo_text
                .then_some(record.text_pair.as_deref())
                .flatten(),
        }
    }
}

#[derive(serde::Serialize)]
struct PredictionLine<'a> {
    #[serde(flatten)]
    record: Echo<'a>,
    label: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    probabilities: Option<LabelProbabilities<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<Vec<Ranked<'a>>>,
}

/// Label indices from most to least probable (ties: the model's label order).
fn ranking(probabilities: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
    order
}

/// One output line (without the newline) for `record`.
pub fn prediction_line(
    labels: &[String],
    record: &InputRecord,
    probabilities: &[f32],
    options: OutputOptions,
) -> Result<String> {
    let order = ranking(probabilities);
    let best = *order.first().context("the model has no labels")?;
    let line = PredictionLine {
        record: Echo::of(record, options),
        label: &labels[best],
        probabilities: match options.top_k {
            None => Some(LabelProbabilities {
                labels,
                probabilities,
            }),
            Some(_) => None,
        },
        top_k: options.top_k.map(|k| {
            order
                .iter()
                .take(k)
                .map(|&i| Ranked {
                    label: &labels[i],
                    probability: probabilities[i],
                })
                .collect()
        }),
    };
    Ok(serde_json::to_string(&line)?)
}

#[derive(serde::Serialize)]
struct ValueLine<'a> {
    #[serde(flatten)]
    record: Echo<'a>,
    value: f64,
}

/// One output line of a regression model (without the newline) for `record`.
pub fn value_line(record: &InputRecord, value: f64, options: OutputOptions) -> Result<String> {
    let line = ValueLine {
        record: Echo::of(record, options),
        value,
    };
    Ok(serde_json::to_string(&line)?)
}

#[derive(serde::Serialize)]
struct LabelSetLine<'a> {
    #[serde(flatten)]
    record: Echo<'a>,
    labels: Vec<&'a str>,
    probabilities: LabelProbabilities<'a>,
}

/// One output line of a multi-label model (without the newline) for `record`: the labels
/// whose probability exceeds its threshold, and every label's probability.
pub fn label_set_line(
    labels: &[String],
    readout: &Readout,
    record: &InputRecord,
    probabilities: &[f32],
    options: OutputOptions,
) -> Result<String> {
    let line = LabelSetLine {
        record: Echo::of(record, options),
        labels: labels
            .iter()
            .zip(probabilities)
            .enumerate()
            .filter(|&(l, (_, &p))| p > readout.threshold(l))
            .map(|(_, (label, _))| label.as_str())
            .collect(),
        probabilities: LabelProbabilities {
            labels,
            probabilities,
        },
    };
    Ok(serde_json::to_string(&line)?)
}

/// Inputs per model call in [`write_predictions`]: output starts after the first chunk, and
/// only one chunk's tokens are held at a time.
pub(crate) const CHUNK: usize = 4096;

/// Labels `records` and writes one JSON line per record, in input order.
pub fn write_predictions(
    classifier: &Classifier,
    records: &[InputRecord],
    options: OutputOptions,
    batch_size: usize,
    out: &mut impl Write,
) -> Result<()> {
    for chunk in records.chunks(CHUNK) {
        let inputs: Vec<(&str, Option<&str>)> = chunk
            .iter()
            .map(|r| (r.text.as_str(), r.text_pair.as_deref()))
            .collect();
        // One line per record, by task.
        let lines: Vec<String> = match classifier.task {
            Task::MultiLabel => chunk
                .iter()
                .zip(classifier.predict_label_sets(&inputs, batch_size)?)
                .map(|(record, p)| {
                    label_set_line(&classifier.labels, &classifier.readout, record, &p, options)
                })
                .collect::<Result<_>>()?,
            Task::Regression => chunk
                .iter()
                .zip(classifier.predict_values(&inputs, batch_size)?)
                .map(|(record, value)| value_line(record, value, options))
                .collect::<Result<_>>()?,
            Task::Classification => chunk
                .iter()
                .zip(classifier.predict_pairs(&inputs, batch_size)?)
                .map(|(record, p)| prediction_line(&classifier.labels, record, &p, options))
                .collect::<Result<_>>()?,
            Task::Token => bail!("a token classifier is not served by kiln predict"),
        };
        for line in lines {
            out.write_all(line.as_bytes())
                .context("writing to stdout")?;
            out.write_all(b"\n").context("writing to stdout")?;
        }
    }
    out.flush().context("writing to stdout")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["neg", "neutral", "pos"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn record() -> InputRecord {
        InputRecord {
            index: 7,
            id: Some("r7".into()),
            text: "a text".into(),
            text_pair: None,
        }
    }

    #[test]
    fn lines_count_blank_and_whitespace_lines_and_strip_line_ends() {
        let records = line_records(
            Path::new("in.txt"),
            b"\xEF\xBB\xBFfirst\r\n\n   \t\nfourth\n",
        )
        .unwrap();
        let got: Vec<(usize, &str)> = records.iter().map(|r| (r.index, r.text.as_str())).collect();
        assert_eq!(got, vec![(0, "first"), (3, "fourth")]);
        let e = line_records(Path::new("in.txt"), b"ok\n\xFF\xFE\x00bad\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "in.txt:2: invalid UTF-8");
        let e = line_records(Path::new("<stdin>"), b" \n\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("<stdin>: no text"), "{e}");
    }

    #[test]
    fn output_lines_default_and_top_k() {
        let p = [0.2f32, 0.5, 0.3];
        let line = prediction_line(&labels(), &record(), &p, OutputOptions::default()).unwrap();
        assert_eq!(
            line,
            r#"{"index":7,"id":"r7","label":"neutral","probabilities":{"neg":0.2,"neutral":0.5,"pos":0.3}}"#
        );
        let line = prediction_line(
            &labels(),
            &record(),
            &p,
            OutputOptions {
                top_k: Some(2),
                echo_text: true,
            },
        )
        .unwrap();
        assert_eq!(
            line,
            r#"{"index":7,"id":"r7","text":"a text","label":"neutral","top_k":[{"label":"neutral","probability":0.5},{"label":"pos","probability":0.3}]}"#
        );
        // Ties keep the model's label order, so `label` is the first of `top_k`.
        let tie = [0.4f32, 0.2, 0.4];
        let line = prediction_line(
            &labels(),
            &record(),
            &tie,
            OutputOptions {
                top_k: Some(9),
                echo_text: false,
            },
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["label"], "neg");
        let ranked: Vec<&str> = v["top_k"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["label"].as_str().unwrap())
            .collect();
        assert_eq!(ranked, vec!["neg", "pos", "neutral"]);
    }

    #[test]
    fn input_format_names_and_defaults() {
        assert_eq!("lines".parse::<InputFormat>().unwrap(), InputFormat::Lines);
        assert_eq!(
            "TSV".parse::<InputFormat>().unwrap(),
            InputFormat::Table(Format::Tsv)
        );
        assert!("xml".parse::<InputFormat>().unwrap_err().contains("lines"));
        assert_eq!(InputFormat::of(Path::new("-")), InputFormat::Lines);
        assert_eq!(InputFormat::of(Path::new("a.txt")), InputFormat::Lines);
        assert_eq!(InputFormat::of(Path::new("texts")), InputFormat::Lines);
        assert_eq!(
            InputFormat::of(Path::new("a.jsonl")),
            InputFormat::Table(Format::Jsonl)
        );
    }

    #[test]
    fn structured_columns_and_flag_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, "id,review,other\nr1,good film,x\n\nr2,bad film,y\n").unwrap();
        let args = PredictArgs {
            input: Some(path.clone()),
            text_column: Some("review".into()),
            id_column: Some("id".into()),
            ..PredictArgs::default()
        };
        let got: Vec<(usize, Option<String>, String)> = args
            .read()
            .unwrap()
            .into_iter()
            .map(|r| (r.index, r.id, r.text))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, Some("r1".into()), "good film".into()),
                (1, Some("r2".into()), "bad film".into())
            ]
        );
        let missing = PredictArgs {
            input: Some(path.clone()),
            ..PredictArgs::default()
        };
        let e = missing.read().unwrap_err().to_string();
        assert!(e.contains("in.csv") && e.contains("`text`"), "{e}");
        let lines = PredictArgs {
            input: Some(path),
            format: Some(InputFormat::Lines),
            id_column: Some("id".into()),
            ..PredictArgs::default()
        };
        let e = lines.read().unwrap_err().to_string();
        assert!(e.contains("--id-column"), "{e}");
        let zero = PredictArgs {
            text: vec!["x".into()],
            top_k: Some(0),
            ..PredictArgs::default()
        };
        assert!(zero.read().unwrap_err().to_string().contains("--top-k"));
    }
}
