//! `kiln eval` and `kiln predict`: a fine-tuned model (kiln's `model/` or any
//! BertForSequenceClassification checkpoint) on new data.

use std::path::Path;

use anyhow::{bail, Result};
use burn::prelude::*;

use kiln_data::pipeline::encode_examples;
use kiln_data::read::{read_file, ReadOptions};
use kiln_data::{LabelMap, TextTokenizer};
use kiln_loss::Loss;
use kiln_model::{BertClassifier, Checkpoint, HeadInit, Pooling};
use kiln_train::metrics::ClassificationMetrics;
use kiln_train::trainer::{metrics_from_logits, predict_logits, timed_predict_logits, InferenceSpeed};

/// A classifier with its labels and tokenizer.
pub struct Classifier {
    pub model: BertClassifier,
    pub labels: Vec<String>,
    pub tokenizer: TextTokenizer,
    pub device: Device,
}

impl Classifier {
    /// Loads a fine-tuned checkpoint; the pooling it was trained with comes from `kiln_pooling`
    /// in its config (cls when absent, as transformers does).
    pub fn load(dir: &Path, max_len: usize, device: Device) -> Result<Self> {
        let checkpoint = Checkpoint::open(dir)?;
        let pooling = checkpoint
            .config
            .extra
            .get("kiln_pooling")
            .and_then(|v| v.as_str())
            .map(|s| s.parse::<Pooling>())
            .transpose()
            .map_err(|e| anyhow::anyhow!("{}: kiln_pooling: {e}", dir.display()))?
            .unwrap_or_default();
        let Some(labels) = checkpoint.config.labels() else {
            bail!("{}: config.json has no id2label: not a fine-tuned classifier", dir.join("config.json").display());
        };
        let (model, _) = checkpoint.load_classifier(HeadInit::FromCheckpoint, pooling, &device)?;
        let max_len = max_len.min(checkpoint.config.max_position_embeddings);
        let tokenizer = TextTokenizer::from_file(checkpoint.tokenizer_path(), max_len)?;
        Ok(Self { model, labels, tokenizer, device })
    }

    /// Class probabilities per text (softmax of the logits), in input order.
    pub fn predict(&self, texts: &[&str], batch_size: usize) -> Result<Vec<Vec<f32>>> {
        let examples: Vec<kiln_data::Example> = texts
            .iter()
            .map(|t| kiln_data::Example { text: t.to_string(), text_pair: None, label: 0 })
            .collect();
        let encoded = encode_examples(&self.tokenizer, &examples)?;
        let n = self.labels.len();
        let logits = predict_logits(&self.model, &encoded, batch_size, self.tokenizer.pad_id(), &self.device);
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

    /// Metrics on a labelled file; its labels must be among the model's.
    /// Also says how long the model's forward pass over the file took (tokenizing excluded).
    pub fn evaluate_file(&self, path: &Path, read: &ReadOptions, batch_size: usize) -> Result<(ClassificationMetrics, InferenceSpeed)> {
        let raw = read_file(path, read)?;
        // The model's own label order (deserializing keeps it; building from labels would sort).
        let map: LabelMap = serde_json::from_value(serde_json::json!({ "labels": self.labels }))?;
        let examples = map.encode(&raw)?;
        let encoded = encode_examples(&self.tokenizer, &examples)?;
        let loss = Loss::CrossEntropy { label_smoothing: 0.0, class_weights: None };
        let (logits, speed) = timed_predict_logits(&self.model, &encoded, batch_size, self.tokenizer.pad_id(), &self.device);
        Ok((metrics_from_logits(&logits, &encoded, &self.labels, &loss, &self.device), speed))
    }
}
