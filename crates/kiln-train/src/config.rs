//! The recipe and its inputs: [`TrainConfig`] (every option that shapes a run, checked by
//! `validate`, whose errors name the field), [`TrainData`] (tokenized training and validation
//! examples) and the selection metric. The builder ([`crate::Trainer`]) and the loop
//! ([`crate::run`]) both read these; this module reads neither.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use kiln_data::bucket::{BatchSize, Sampler};
use kiln_data::pipeline::{encode_examples, EncodedExample, Splits};
use kiln_data::TextTokenizer;
use kiln_loss::{DistillationLoss, Loss};

use crate::error::TrainError;
use crate::metrics::ClassificationMetrics;
use crate::optim::OptimizerSpec;
use crate::schedule::{Schedule, ScheduleKind};
use crate::strategy::StrategyConfig;
use crate::task::Objective;

/// The validation metric that picks the best epoch and drives early stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum SelectionMetric {
    #[default]
    Accuracy,
    #[cfg_attr(feature = "clap", value(alias = "macro_f1", alias = "f1"))]
    MacroF1,
    /// Lower is better.
    Loss,
}

impl SelectionMetric {
    /// Larger is better: the loss is negated.
    pub(crate) fn score(&self, m: &ClassificationMetrics) -> f64 {
        match self {
            Self::Accuracy => m.accuracy,
            Self::MacroF1 => m.macro_f1,
            Self::Loss => -m.loss.unwrap_or(f64::INFINITY),
        }
    }
}

/// Everything that shapes a training run (the resolved config is saved with the run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Bucketed batches of at most this many tokens (padded length × examples) instead of a fixed count.
    pub token_budget: Option<usize>,
    /// How batches are formed: packed (default), length-bucketed or plainly shuffled.
    pub sampler: Sampler,
    /// With bucketing, batches' worth of examples sorted together (see `BucketSampler`).
    pub bucket_chunk_batches: usize,
    /// On a single CPU device, each batch runs as this many shards side by side, each on its
    /// share of the cores, and their gradients are averaged: the same step, with every core
    /// busy (dropout masks are drawn per shard, so the count is part of the recipe).
    pub batch_shards: usize,
    pub lr: f64,
    pub schedule: ScheduleKind,
    pub warmup_ratio: f64,
    pub warmup_steps: Option<usize>,
    pub optimizer: OptimizerSpec,
    /// Global-norm clipping threshold; none when absent.
    pub grad_clip: Option<f64>,
    /// Micro-batches whose (averaged) gradients make one optimizer step.
    pub grad_accum: usize,
    pub label_smoothing: f64,
    pub class_weights: Option<Vec<f32>>,
    pub strategy: StrategyConfig,
    pub metric: SelectionMetric,
    /// Stop after this many evaluations in a row without improvement (epoch ends, plus every
    /// `eval_every_steps` steps when set); none = never stop early.
    pub patience: Option<usize>,
    pub min_delta: f64,
    /// Also validate every N optimizer steps (the epoch-end validation always happens). Every
    /// evaluation competes for the best model and counts for patience, as with Hugging Face's
    /// `eval_strategy="steps"` + `load_best_model_at_end`.
    pub eval_every_steps: Option<usize>,
    pub eval_batch_size: usize,
    pub seed: u64,
    /// Data-loader worker threads building batches.
    pub num_workers: usize,
    pub pad_to_multiple: usize,
    /// Also checkpoint every N optimizer steps (the epoch-end checkpoint always happens); a run
    /// killed at any moment resumes from the newest one exactly.
    pub save_every_steps: Option<usize>,
    /// Checkpoints kept (older ones are deleted once a newer one is complete).
    pub keep_checkpoints: usize,
    /// A step whose loss or gradient is NaN/infinite is skipped and counted; this many in a row
    /// stop the run.
    pub max_bad_steps: usize,
    /// Knowledge distillation: train against `TrainData::teacher_logits` with
    /// (1−α)·CE + α·T²·KL (validation still reports plain cross-entropy).
    pub distillation: Option<DistillationLoss>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 3,
            batch_size: 32,
            token_budget: None,
            sampler: Sampler::default(),
            bucket_chunk_batches: kiln_data::bucket::MEGA_CHUNK_BATCHES,
            batch_shards: 2,
            lr: 5e-5,
            schedule: ScheduleKind::Linear,
            warmup_ratio: 0.1,
            warmup_steps: None,
            optimizer: OptimizerSpec::default(),
            grad_clip: Some(1.0),
            grad_accum: 1,
            label_smoothing: 0.0,
            class_weights: None,
            strategy: StrategyConfig::default(),
            metric: SelectionMetric::Accuracy,
            patience: None,
            min_delta: 0.0,
            eval_every_steps: None,
            eval_batch_size: 64,
            seed: 42,
            num_workers: 1,
            pad_to_multiple: 1,
            distillation: None,
            save_every_steps: None,
            keep_checkpoints: 2,
            max_bad_steps: 5,
        }
    }
}

impl TrainConfig {
    /// Checks every option's range; the error names the field.
    pub fn validate(&self) -> Result<(), TrainError> {
        let at_least_one = [
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("batch_shards", self.batch_shards),
            ("bucket_chunk_batches", self.bucket_chunk_batches),
            ("grad_accum", self.grad_accum),
            ("eval_batch_size", self.eval_batch_size),
            ("keep_checkpoints", self.keep_checkpoints),
            ("max_bad_steps", self.max_bad_steps),
        ];
        for (field, value) in at_least_one {
            if value == 0 {
                return Err(TrainError::invalid(field, "must be at least 1"));
            }
        }
        let some_at_least_one = [
            ("token_budget", self.token_budget),
            ("eval_every_steps", self.eval_every_steps),
            ("save_every_steps", self.save_every_steps),
        ];
        for (field, value) in some_at_least_one {
            if value == Some(0) {
                return Err(TrainError::invalid(field, "must be at least 1"));
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(TrainError::invalid(
                "lr",
                format!("must be positive, got {}", self.lr),
            ));
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return Err(TrainError::invalid(
                "warmup_ratio",
                format!("must be in [0, 1), got {}", self.warmup_ratio),
            ));
        }
        if let Some(c) = self.grad_clip {
            if !(c.is_finite() && c > 0.0) {
                return Err(TrainError::invalid(
                    "grad_clip",
                    format!("must be positive, got {c}"),
                ));
            }
        }
        if !(self.min_delta.is_finite() && self.min_delta >= 0.0) {
            return Err(TrainError::invalid(
                "min_delta",
                format!("must be ≥ 0, got {}", self.min_delta),
            ));
        }
        self.optimizer.validate()?;
        self.strategy.validate()?;
        self.loss().validate().map_err(TrainError::Loss)?;
        if let Some(d) = &self.distillation {
            d.validate().map_err(TrainError::Loss)?;
        }
        Ok(())
    }

    pub fn loss(&self) -> Loss {
        Loss::CrossEntropy {
            label_smoothing: self.label_smoothing,
            class_weights: self.class_weights.clone(),
        }
    }

    /// The run's objective: cross-entropy, or distillation against `teacher_logits`.
    pub fn objective(&self, teacher_logits: Option<&Arc<Vec<f32>>>) -> Objective {
        let objective = Objective::new(self.loss());
        match (&self.distillation, teacher_logits) {
            (Some(kd), Some(t)) => objective.with_teacher(kd.clone(), t.clone()),
            _ => objective,
        }
    }

    /// The learning rate of every optimizer step, given the steps one epoch takes.
    pub fn schedule(&self, steps_per_epoch: usize) -> Schedule {
        Schedule::new(
            self.schedule,
            self.lr,
            steps_per_epoch * self.epochs,
            self.warmup_ratio,
            self.warmup_steps,
        )
    }

    pub(crate) fn batch(&self) -> BatchSize {
        match self.token_budget {
            Some(t) => BatchSize::Tokens(t),
            None => BatchSize::Examples(self.batch_size),
        }
    }
}

/// Fault injection for tests and drills: chosen micro-steps (0-based forward/backward passes)
/// produce a NaN loss. Set through [`Trainer::faults`], never part of a run's options.
#[doc(hidden)]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    pub nan_loss_at: Vec<u64>,
}

/// Tokenized training and validation examples.
#[derive(Debug, Clone)]
pub struct TrainData {
    pub train: Arc<Vec<EncodedExample>>,
    pub valid: Arc<Vec<EncodedExample>>,
    pub labels: Vec<String>,
    pub pad_id: u32,
    /// A teacher's logits for every training example, row-major `[train.len(), labels]`
    /// (computed once; see `TrainConfig::distillation`).
    pub teacher_logits: Option<Arc<Vec<f32>>>,
}

impl TrainData {
    /// The training and validation splits of `splits`, tokenized (no teacher logits).
    pub fn encode(tokenizer: &TextTokenizer, splits: &Splits) -> Result<Self, TrainError> {
        Ok(Self {
            train: Arc::new(encode_examples(tokenizer, &splits.train)?),
            valid: Arc::new(encode_examples(tokenizer, &splits.valid)?),
            labels: splits.labels.labels().to_vec(),
            pad_id: tokenizer.pad_id(),
            teacher_logits: None,
        })
    }
}

/// Checks that `data` fits `config` and a model with `outputs` outputs.
pub(crate) fn check_data(
    config: &TrainConfig,
    data: &TrainData,
    outputs: usize,
) -> Result<(), TrainError> {
    if data.train.is_empty() {
        return Err(TrainError::invalid("train", "holds no examples"));
    }
    if config.distillation.is_some() {
        let want = data.train.len() * data.labels.len();
        match &data.teacher_logits {
            Some(t) if t.len() == want => {}
            Some(t) => {
                return Err(TrainError::invalid(
                    "teacher_logits",
                    format!(
                        "hold {} values; {} examples × {} labels need {want}",
                        t.len(),
                        data.train.len(),
                        data.labels.len()
                    ),
                ))
            }
            None => {
                return Err(TrainError::invalid(
                    "teacher_logits",
                    "are missing: distillation needs the teacher's logits",
                ))
            }
        }
    }
    if outputs != data.labels.len() {
        return Err(TrainError::invalid(
            "labels",
            format!(
                "the model has {outputs} outputs but the data has {} labels",
                data.labels.len()
            ),
        ));
    }
    Ok(())
}
