//! `kiln interpolate`: weight-space ensembling (WiSE-FT, Wortsman et al. 2022). The fine-tuned
//! model's encoder becomes (1 − α)·pretrained + α·fine-tuned, its head unchanged; given several
//! α and a labelled validation file, each blend is scored on it and the best one is written.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;

use kiln_data::read::ReadOptions;
use kiln_model::interpolate::{interpolate, Interpolation};
use kiln_model::{Checkpoint, SequenceClassifier};
use kiln_train::SelectionMetric;

use crate::predict::Classifier;

/// The options of `kiln interpolate`.
#[derive(Debug, Clone, Args)]
pub struct InterpolateOptions {
    /// The pretrained checkpoint the model was fine-tuned from (a directory or a known name).
    #[arg(long)]
    pub pretrained: String,
    /// The fine-tuned model (kiln's OUT/model, or a …ForSequenceClassification directory).
    #[arg(long)]
    pub finetuned: PathBuf,
    /// Weight α of the fine-tuned encoder; 1 keeps the fine-tuned model, 0 puts its head on
    /// the pretrained encoder. Several (comma-separated, e.g. 0,0.25,0.5,0.75,1) with --valid:
    /// the one that scores best there is written.
    #[arg(long, default_value = "0.5", value_delimiter = ',', num_args = 1..)]
    pub alpha: Vec<f64>,
    /// Labelled validation file (CSV, TSV or JSONL, as kiln eval's --test) that picks α among
    /// several by the model's task metric (accuracy, mse, micro-f1).
    #[arg(long)]
    pub valid: Option<PathBuf>,
    /// Column (JSONL key) holding the text of --valid.
    #[arg(long, default_value = "text")]
    pub text_column: String,
    /// Column holding the label of --valid.
    #[arg(long, default_value = "label")]
    pub label_column: String,
    /// Column of the second text of --valid, for sentence-pair models.
    #[arg(long)]
    pub text_pair_column: Option<String>,
    /// Multi-label models: what separates the labels of one example in --valid.
    #[arg(long, default_value = ";")]
    pub label_delimiter: String,
    /// Where to write the interpolated model (Hugging Face layout; must not exist yet).
    #[arg(long)]
    pub out: PathBuf,
}

/// One α's score on the validation file.
#[derive(Debug, Clone, PartialEq)]
pub struct AlphaScore {
    pub alpha: f64,
    /// The task metric's value (as reported: an error stays positive).
    pub value: f64,
}

/// Writes the interpolated model (the best α's, when several are scored) and returns each α's
/// score (empty without --valid).
pub fn run(options: &InterpolateOptions, base_dir: &Path) -> Result<Vec<AlphaScore>> {
    if options.out.exists() {
        bail!(
            "--out {}: exists already; choose a new directory",
            options.out.display()
        );
    }
    if options.alpha.len() > 1 && options.valid.is_none() {
        bail!("several --alpha values need --valid FILE to choose between them");
    }
    let device = crate::backend::parse_device(crate::backend::default_device_name())?;
    let base = Checkpoint::open(base_dir)?;
    let (encoder, _) = base.load_encoder(&device)?;
    let tuned = Classifier::load(&options.finetuned, usize::MAX, device)?;
    let metric = SelectionMetric::default_for(tuned.task);
    let name = serde_json::to_value(metric)?
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut scores = Vec::new();
    let mut best: Option<(f64, f64, SequenceClassifier, Interpolation)> = None;
    for &alpha in &options.alpha {
        let (model, report) = interpolate(&encoder, tuned.model.clone(), alpha)?;
        let Some(valid) = &options.valid else {
            best = Some((alpha, 0.0, model, report));
            break;
        };
        let blended = Classifier {
            model,
            ..tuned.clone()
        };
        let read = ReadOptions {
            format: None,
            text_column: options.text_column.clone(),
            text_pair_column: options.text_pair_column.clone(),
            label_column: options.label_column.clone(),
        };
        let (metrics, _) = blended.evaluate_file(valid, &read, &options.label_delimiter, 64)?;
        let score = metric.score(&metrics);
        let value = metric.value(&metrics).unwrap_or(f64::NAN);
        eprintln!("alpha {alpha}: validation {name} {value:.4}");
        scores.push(AlphaScore { alpha, value });
        if best.as_ref().is_none_or(|(_, s, _, _)| score > *s) {
            best = Some((alpha, score, blended.model, report));
        }
    }
    let Some((alpha, _, model, report)) = best else {
        bail!("--alpha: no value given");
    };
    let config = Checkpoint::open(&options.finetuned)?.config;
    kiln_model::save_sequence_classifier(
        &model,
        &config,
        &tuned.labels,
        Some(tuned.tokenizer.path()),
        &options.out,
    )?;
    eprintln!(
        "wrote {}: encoder = {:.3}·{} + {alpha:.3}·{} ({} tensors{}), head as fine-tuned",
        options.out.display(),
        1.0 - alpha,
        options.pretrained,
        options.finetuned.display(),
        report.blended,
        if report.kept.is_empty() {
            String::new()
        } else {
            format!(
                "; kept as fine-tuned, absent from the pretrained model: {}",
                report.kept.join(", ")
            )
        }
    );
    Ok(scores)
}
