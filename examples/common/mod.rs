#![allow(dead_code)]
//! What the examples share: their few command-line options, so that CI can run each one small
//! (`--model tests/fixtures/tiny-bert --limit 64 --epochs 1`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use kiln::data::pipeline::Splits;

use kiln::fetch::{self, Artifact};

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
