#![allow(dead_code)]
//! What the examples share: their few command-line options, so that CI can run each one small
//! (`--model tests/fixtures/tiny-bert --limit 64 --epochs 1`), and the data they start from.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use kiln::data::builtin::Builtin;
use kiln::data::pipeline::{load_splits, DataOptions, DataSource, Splits};
use kiln::data::TextTokenizer;
use kiln::fetch::{self, Artifact};
use kiln::model::Checkpoint;
use kiln::train::TrainData;

/// `--model DIR`, `--limit N` (training examples), `--epochs N`, and positional arguments.
#[derive(Debug, Default)]
pub struct Args {
    pub model: Option<PathBuf>,
    pub limit: Option<usize>,
    pub epochs: Option<usize>,
    pub positional: Vec<String>,
}

impl Args {
    pub fn parse() -> Result<Self> {
        Self::from(std::env::args().skip(1))
    }

    pub fn from(args: impl IntoIterator<Item = String>) -> Result<Self> {
        let mut parsed = Self::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value =
                |flag: &str| args.next().with_context(|| format!("{flag} needs a value"));
            match arg.as_str() {
                "--model" => parsed.model = Some(value("--model")?.into()),
                "--limit" => parsed.limit = Some(value("--limit")?.parse().context("--limit")?),
                "--epochs" => parsed.epochs = Some(value("--epochs")?.parse().context("--epochs")?),
                flag if flag.starts_with("--") => bail!("unknown option {flag}"),
                _ => parsed.positional.push(arg),
            }
        }
        Ok(parsed)
    }

    /// `--model`, or `default` fetched into `cache`.
    pub fn model_or(&self, default: Artifact, cache: &Path) -> Result<PathBuf> {
        match &self.model {
            Some(dir) => Ok(dir.clone()),
            None => fetch::fetch(default, cache),
        }
    }

    /// `splits` with at most `--limit` training examples: every k-th, not the first n (the split
    /// keeps the file's order, which for some sets is grouped by label).
    pub fn limited(&self, mut splits: Splits) -> Splits {
        if let Some(n) = self.limit {
            let step = (splits.train.len() / n.max(1)).max(1);
            splits.train = splits.train.iter().step_by(step).take(n).cloned().collect();
        }
        splits
    }
}

/// What the distill and custom-head examples start from (the sentiment walkthrough spells
/// these steps out): the rotten-tomatoes split, the checkpoint, its tokenizer and the encoded
/// training and validation sets.
pub struct Start {
    pub splits: Splits,
    pub checkpoint: Checkpoint,
    pub tokenizer: TextTokenizer,
    pub data: TrainData,
}

impl Start {
    pub fn load(args: &Args) -> Result<Self> {
        Self::of(Builtin::RottenTomatoes, Artifact::RottenTomatoes, args)
    }

    /// `set` (fetched as `artifact`) read for its own task (classes, values or label sets).
    pub fn of(set: Builtin, artifact: Artifact, args: &Args) -> Result<Self> {
        let cache = fetch::cache_dir();
        let dir = fetch::fetch(artifact, &cache)?;
        let source = DataSource::Builtin { set, dir };
        let options = DataOptions {
            task: set.task(),
            ..DataOptions::default()
        };
        let splits = args.limited(load_splits(&source, &options)?);
        let checkpoint = Checkpoint::open(args.model_or(Artifact::MiniLmL6, &cache)?)?;
        let tokenizer = kiln::inspect::tokenizer_for(&checkpoint, 128)?;
        let data = TrainData::encode(&tokenizer, &splits)?;
        Ok(Self {
            splits,
            checkpoint,
            tokenizer,
            data,
        })
    }
}
