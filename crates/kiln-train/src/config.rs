//! The recipe and its inputs: [`TrainConfig`] (every option that shapes a run, checked by
//! `validate`, whose errors name the field), [`TrainData`] (tokenized training and validation
//! examples) and the selection metric. The builder ([`crate::Trainer`]) and the loop
//! ([`crate::run`]) both read these; this module reads neither.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use kiln_data::bucket::{BatchSize, Sampler};
use kiln_data::pipeline::{encode_examples, EncodedExample, Splits};
use kiln_data::{TextTokenizer, ValueScale};
use kiln_loss::{DistillationLoss, Loss};

use crate::error::TrainError;
use crate::optim::OptimizerSpec;
use crate::schedule::{Schedule, ScheduleKind};
use crate::strategy::StrategyConfig;
use crate::task::{Objective, TaskLoss};
use kiln_metrics::TaskMetrics;

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
    /// Regression: mean squared error (lower is better).
    Mse,
    /// Regression: mean absolute error (lower is better).
    Mae,
    /// Regression: Pearson's r.
    Pearson,
    /// Regression: Spearman's ρ.
    Spearman,
    /// Multi-label: F1 over every (example, label) decision.
    MicroF1,
    /// Multi-label: the mean over examples of each example's F1.
    SamplesF1,
    /// Multi-label: share of examples whose predicted set is exactly right.
    SubsetAccuracy,
    /// Token classification with an entity tag set: micro-averaged entity F1 (seqeval).
    EntityF1,
}

impl SelectionMetric {
    /// The metric a task selects by when none is given: accuracy for classification (token
    /// accuracy for tags), MSE for regression, micro-F1 for label sets.
    pub fn default_for(task: kiln_data::Task) -> Self {
        match task {
            kiln_data::Task::Classification => Self::Accuracy,
            kiln_data::Task::Regression => Self::Mse,
            kiln_data::Task::MultiLabel => Self::MicroF1,
            kiln_data::Task::Token => Self::Accuracy,
        }
    }

    /// Whether the metric is measured for `task`.
    pub fn fits(&self, task: kiln_data::Task) -> bool {
        use kiln_data::Task;
        match self {
            Self::Loss => true,
            Self::MacroF1 => task != Task::Regression,
            Self::Accuracy => matches!(task, Task::Classification | Task::Token),
            Self::EntityF1 => task == Task::Token,
            Self::Mse | Self::Mae | Self::Pearson | Self::Spearman => task == Task::Regression,
            Self::MicroF1 | Self::SamplesF1 | Self::SubsetAccuracy => task == Task::MultiLabel,
        }
    }

    /// Whether smaller values are better (losses and errors).
    pub fn lower_is_better(&self) -> bool {
        matches!(self, Self::Loss | Self::Mse | Self::Mae)
    }

    /// The metric's value in `m`, as reported (an error stays positive); none when `m` lacks it.
    pub fn value(&self, m: &TaskMetrics) -> Option<f64> {
        let score = self.score(m);
        score.is_finite().then(|| {
            if self.lower_is_better() {
                -score
            } else {
                score
            }
        })
    }

    /// Larger is better: losses and errors are negated; a figure the metrics lack (another
    /// task's, an undefined correlation) scores lowest.
    pub fn score(&self, m: &TaskMetrics) -> f64 {
        let value = match (self, m) {
            (Self::Loss, m) => m.loss().map(|l| -l),
            (Self::Accuracy, TaskMetrics::Classification(c)) => Some(c.accuracy),
            (Self::MacroF1, TaskMetrics::Classification(c)) => Some(c.macro_f1),
            (Self::Mse, TaskMetrics::Regression(r)) => Some(-r.mse),
            (Self::Mae, TaskMetrics::Regression(r)) => Some(-r.mae),
            (Self::Pearson, TaskMetrics::Regression(r)) => r.pearson,
            (Self::Spearman, TaskMetrics::Regression(r)) => r.spearman,
            (Self::MacroF1, TaskMetrics::MultiLabel(m)) => Some(m.macro_f1),
            (Self::MicroF1, TaskMetrics::MultiLabel(m)) => Some(m.micro_f1),
            (Self::SamplesF1, TaskMetrics::MultiLabel(m)) => Some(m.samples_f1),
            (Self::SubsetAccuracy, TaskMetrics::MultiLabel(m)) => Some(m.subset_accuracy),
            (Self::Accuracy, TaskMetrics::Token(t)) => Some(t.accuracy()),
            (Self::MacroF1, TaskMetrics::Token(t)) => Some(t.tokens.macro_f1),
            (Self::EntityF1, TaskMetrics::Token(t)) => t.entity_f1(),
            _ => None,
        };
        value.unwrap_or(f64::NEG_INFINITY)
    }
}

/// Everything that shapes a training run. One type is the library's recipe, the command
/// line's flags (behind the `clap` feature: each field is `--field-name`, its doc the help)
/// and the record a run saves (serde, keys = the flag names); the defaults live in `Default`
/// only (the CLI shows and applies them from there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(default, rename_all = "kebab-case")]
pub struct TrainConfig {
    /// Passes over the training set.
    #[cfg_attr(feature = "clap", arg(long))]
    pub epochs: usize,
    /// Examples per optimizer step (per micro-batch with grad_accum).
    #[cfg_attr(feature = "clap", arg(long))]
    pub batch_size: usize,
    /// Bucketed batches of at most this many (padded) tokens instead of batch_size examples.
    #[cfg_attr(feature = "clap", arg(long))]
    pub token_budget: Option<usize>,
    /// How batches are drawn: packed (random batches, several examples to a row, each
    /// attending only to itself), bucketed (similar lengths together) or shuffled (random
    /// batches padded to their longest).
    #[cfg_attr(feature = "clap", arg(long, value_enum))]
    pub sampler: Sampler,
    /// bucketed: batches' worth of examples sorted by length together (50 as fairseq / HF's
    /// group_by_length); smaller pads more but mixes lengths (and labels that go with them)
    /// more, 1 is a plain shuffle. `kiln data` shows both costs.
    #[cfg_attr(feature = "clap", arg(long))]
    pub bucket_chunk: usize,
    /// On a CPU device, each batch runs as N shards side by side, each on its share of the
    /// cores: the same step with every core busy; dropout masks are drawn per shard, so N is
    /// part of the recipe. 1 = one shard.
    #[cfg_attr(feature = "clap", arg(long))]
    pub batch_shards: usize,
    /// Peak learning rate.
    #[cfg_attr(feature = "clap", arg(long))]
    pub lr: f64,
    /// The learning rate after warmup.
    #[cfg_attr(feature = "clap", arg(long, value_enum))]
    pub schedule: ScheduleKind,
    /// Share of the steps spent warming up.
    #[cfg_attr(feature = "clap", arg(long))]
    pub warmup_ratio: f64,
    /// Warmup steps (instead of warmup_ratio).
    #[cfg_attr(feature = "clap", arg(long))]
    pub warmup_steps: Option<usize>,
    #[cfg_attr(feature = "clap", command(flatten))]
    #[serde(flatten)]
    pub optimizer: OptimizerSpec,
    /// L2-SP strength λ: the encoder is pulled toward its pretrained weights by λ/2·‖w − w₀‖²
    /// instead of weight decay (the head keeps weight decay); 0 turns it off.
    #[cfg_attr(feature = "clap", arg(long))]
    pub l2_sp: f64,
    /// Global gradient-norm clip (HF's max_grad_norm); 0 turns it off.
    #[cfg_attr(feature = "clap", arg(long))]
    pub grad_clip: f64,
    /// Micro-batches whose (averaged) gradients make one optimizer step.
    #[cfg_attr(feature = "clap", arg(long))]
    pub grad_accum: usize,
    /// Label smoothing ε of the cross-entropy, as PyTorch's.
    #[cfg_attr(feature = "clap", arg(long))]
    pub label_smoothing: f64,
    /// Comma-separated weights of the cross-entropy, one per label in label order.
    #[cfg_attr(feature = "clap", arg(long, value_delimiter = ',', action = clap::ArgAction::Set))]
    pub class_weights: Option<Vec<f32>>,
    /// Regression: Huber loss with this δ (on standardised values) instead of MSE.
    #[cfg_attr(feature = "clap", arg(long))]
    pub huber_delta: Option<f64>,
    /// Multi-label: comma-separated weights of each label's positive term in the binary
    /// cross-entropy (PyTorch's pos_weight; #negatives/#positives evens out a rare label).
    #[cfg_attr(feature = "clap", arg(long, value_delimiter = ',', action = clap::ArgAction::Set))]
    pub pos_weight: Option<Vec<f32>>,
    /// Multi-label: a label is predicted when its probability exceeds this.
    #[cfg_attr(feature = "clap", arg(long))]
    pub threshold: f64,
    /// Multi-label: after training, tune each label's threshold for its F1 on the validation
    /// set; the thresholds are saved with the model and used on test.
    #[cfg_attr(feature = "clap", arg(long, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set))]
    pub tune_thresholds: bool,
    /// Token classification: score entities in seqeval's strict mode (IOB2, or IOBES when the
    /// tags have E-/S-) instead of its default (conlleval) mode.
    #[cfg_attr(feature = "clap", arg(long, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set))]
    pub strict_entities: bool,
    #[cfg_attr(feature = "clap", command(flatten))]
    #[serde(flatten)]
    pub strategy: StrategyConfig,
    /// Validation metric for the best model and early stopping [default: accuracy for
    /// classification and token (token accuracy), mse for regression, micro-f1 for
    /// multi-label].
    #[cfg_attr(feature = "clap", arg(long, value_enum))]
    pub metric: Option<SelectionMetric>,
    /// Stop after this many evaluations in a row without improvement (epoch ends, plus every
    /// eval_every steps when set); none = never stop early.
    #[cfg_attr(feature = "clap", arg(long))]
    pub patience: Option<usize>,
    /// The least gain in the metric that counts as an improvement.
    #[cfg_attr(feature = "clap", arg(long))]
    pub min_delta: f64,
    /// Also validate every N optimizer steps (the epoch-end validation always happens); every
    /// evaluation competes for the best model and counts for patience, as with Hugging Face's
    /// `eval_strategy="steps"` + `load_best_model_at_end`.
    #[cfg_attr(feature = "clap", arg(long))]
    pub eval_every: Option<usize>,
    /// Examples per forward pass at validation.
    #[cfg_attr(feature = "clap", arg(long))]
    pub eval_batch_size: usize,
    /// Seeds the split, the batch order, dropout, augmentation and the new head.
    #[cfg_attr(feature = "clap", arg(long))]
    pub seed: u64,
    /// Data-loader worker threads building batches.
    #[cfg_attr(feature = "clap", arg(long))]
    pub num_workers: usize,
    /// Pad each batch's length up to a multiple of this.
    #[cfg_attr(feature = "clap", arg(long))]
    pub pad_to_multiple: usize,
    /// Also checkpoint every N optimizer steps (the epoch-end checkpoint always happens); a run
    /// killed at any moment resumes from the newest one exactly.
    #[cfg_attr(feature = "clap", arg(long))]
    pub save_every: Option<usize>,
    /// Checkpoints kept while training (older ones are deleted once a newer one is complete).
    #[cfg_attr(feature = "clap", arg(long))]
    pub save_total_limit: usize,
    /// Stop after this many consecutive steps with a non-finite loss or gradient; fewer are
    /// skipped and counted.
    #[cfg_attr(feature = "clap", arg(long))]
    pub max_bad_steps: usize,
    /// Knowledge distillation: train against `TrainData::teacher_logits` with
    /// (1−α)·CE + α·T²·KL (validation still reports plain cross-entropy). Set by the
    /// distillation job, not an option of its own.
    #[cfg_attr(feature = "clap", arg(skip))]
    #[serde(skip)]
    pub distillation: Option<DistillationLoss>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 3,
            batch_size: 32,
            token_budget: None,
            sampler: Sampler::default(),
            bucket_chunk: kiln_data::bucket::MEGA_CHUNK_BATCHES,
            batch_shards: 2,
            lr: 5e-5,
            schedule: ScheduleKind::Linear,
            warmup_ratio: 0.1,
            warmup_steps: None,
            optimizer: OptimizerSpec::default(),
            l2_sp: 0.0,
            grad_clip: 1.0,
            grad_accum: 1,
            label_smoothing: 0.0,
            class_weights: None,
            huber_delta: None,
            pos_weight: None,
            threshold: 0.5,
            tune_thresholds: false,
            strict_entities: false,
            strategy: StrategyConfig::default(),
            metric: None,
            patience: None,
            min_delta: 0.0,
            eval_every: None,
            eval_batch_size: 64,
            seed: 42,
            num_workers: 1,
            pad_to_multiple: 1,
            distillation: None,
            save_every: None,
            save_total_limit: 2,
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
            ("bucket_chunk", self.bucket_chunk),
            ("grad_accum", self.grad_accum),
            ("eval_batch_size", self.eval_batch_size),
            ("save_total_limit", self.save_total_limit),
            ("max_bad_steps", self.max_bad_steps),
        ];
        for (field, value) in at_least_one {
            if value == 0 {
                return Err(TrainError::invalid(field, "must be at least 1"));
            }
        }
        let some_at_least_one = [
            ("token_budget", self.token_budget),
            ("eval_every", self.eval_every),
            ("save_every", self.save_every),
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
        if !(self.l2_sp.is_finite() && self.l2_sp >= 0.0) {
            return Err(TrainError::invalid(
                "l2_sp",
                format!("must be ≥ 0 (0 = off), got {}", self.l2_sp),
            ));
        }
        if !(self.grad_clip.is_finite() && self.grad_clip >= 0.0) {
            return Err(TrainError::invalid(
                "grad_clip",
                format!("must be ≥ 0 (0 = off), got {}", self.grad_clip),
            ));
        }
        if !(self.min_delta.is_finite() && self.min_delta >= 0.0) {
            return Err(TrainError::invalid(
                "min_delta",
                format!("must be ≥ 0, got {}", self.min_delta),
            ));
        }
        if let Some(delta) = self.huber_delta {
            if !(delta.is_finite() && delta > 0.0) {
                return Err(TrainError::invalid(
                    "huber_delta",
                    format!("must be positive, got {delta}"),
                ));
            }
        }
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(TrainError::invalid(
                "threshold",
                format!("must be a probability in (0, 1), got {}", self.threshold),
            ));
        }
        if let Some(w) = self
            .pos_weight
            .as_ref()
            .and_then(|w| w.iter().find(|w| !(w.is_finite() && **w > 0.0)))
        {
            return Err(TrainError::invalid(
                "pos_weight",
                format!("weights must be positive, got {w}"),
            ));
        }
        self.optimizer.validate()?;
        self.strategy.validate()?;
        self.loss().classes.validate().map_err(TrainError::Loss)?;
        if let Some(d) = &self.distillation {
            d.validate().map_err(TrainError::Loss)?;
        }
        Ok(())
    }

    /// The task's loss: cross-entropy with these options for classes, MSE or Huber for values.
    pub fn loss(&self) -> TaskLoss {
        TaskLoss {
            classes: Loss::CrossEntropy {
                label_smoothing: self.label_smoothing,
                class_weights: self.class_weights.clone(),
            },
            huber_delta: self.huber_delta,
            pos_weight: self.pos_weight.clone(),
        }
    }

    /// How validation reads outputs: `scale` for values, [`TrainConfig::threshold`] for every
    /// label of a multi-label head with `labels` outputs.
    pub fn readout(
        &self,
        scale: Option<kiln_data::ValueScale>,
        labels: usize,
    ) -> kiln_data::Readout {
        kiln_data::Readout {
            scale,
            thresholds: vec![self.threshold as f32; labels],
            strict_entities: self.strict_entities,
        }
    }

    /// The metric that selects the best model for `task`.
    pub fn selection_metric(&self, task: kiln_data::Task) -> SelectionMetric {
        self.metric
            .unwrap_or_else(|| SelectionMetric::default_for(task))
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

    /// The clipping threshold, none when off.
    pub(crate) fn clip_norm(&self) -> Option<f64> {
        (self.grad_clip > 0.0).then_some(self.grad_clip)
    }

    pub(crate) fn batch(&self) -> BatchSize {
        match self.token_budget {
            Some(t) => BatchSize::Tokens(t),
            None => BatchSize::Examples(self.batch_size),
        }
    }
}

#[cfg(feature = "clap")]
impl TrainConfig {
    /// `command` (which holds these flags, e.g. through `#[command(flatten)]`) with each flag's
    /// default taken from `TrainConfig::default()`: shown in `--help` and applied when the flag
    /// is absent, so the defaults live in one place.
    pub fn with_defaults(command: clap::Command) -> clap::Command {
        defaults_from(&Self::default(), command)
    }
}

/// Sets the default of every flag of `command` whose name is a key of `value`'s serde form (a
/// flat record whose keys are the flags' names) to that value, as the flag spells it.
#[cfg(feature = "clap")]
pub fn defaults_from<T: Serialize>(value: &T, command: clap::Command) -> clap::Command {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(value) else {
        return command;
    };
    command.mut_args(|arg| {
        let text = arg
            .get_long()
            .and_then(|long| fields.get(long))
            .and_then(flag_text);
        match text {
            Some(text) => arg.default_value(text).required(false),
            None => arg,
        }
    })
}

/// A serde value as a flag spells it (strings bare, lists comma-separated); none for null.
#[cfg(feature = "clap")]
fn flag_text(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::Null | Value::Object(_) => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(flag_text)
                .collect::<Vec<_>>()
                .join(","),
        ),
        other => Some(other.to_string()),
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
    /// Regression: the training values' scale; the model learns standardised values.
    pub scale: Option<ValueScale>,
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
            scale: splits.value_scale(),
            pad_id: tokenizer.pad_id(),
            teacher_logits: None,
        })
    }
}

impl TrainData {
    /// The task the targets are for (a regression set's examples carry values).
    pub fn task(&self) -> kiln_data::Task {
        self.train
            .first()
            .map_or(kiln_data::Task::Classification, |e| e.target.task())
    }

    /// What the mean loss over training examples `examples` averages: the examples, or for
    /// tags their labelled pieces (read on the host, so weighing shards costs no device sync).
    pub fn loss_units(&self, examples: &[usize]) -> usize {
        examples
            .iter()
            .map(|&i| match self.train[i].target.tags() {
                Some(tags) => tags.iter().filter(|&&t| t >= 0).count(),
                None => 1,
            })
            .sum()
    }

    /// Outputs a model needs: one per label, or one value.
    pub fn num_outputs(&self) -> usize {
        match self.task() {
            kiln_data::Task::Classification
            | kiln_data::Task::MultiLabel
            | kiln_data::Task::Token => self.labels.len(),
            kiln_data::Task::Regression => 1,
        }
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
    let task = data.task();
    let metric = config.selection_metric(task);
    if !metric.fits(task) {
        return Err(TrainError::invalid(
            "metric",
            format!("{metric:?} is not measured for {task}"),
        ));
    }
    if metric == SelectionMetric::EntityF1
        && kiln_metrics::token::entity_mode(&data.labels, false).is_none()
    {
        return Err(TrainError::invalid(
            "metric",
            "entity-f1 needs an entity tag set (B-/I-/E-/S- tags); these tags have none",
        ));
    }
    if config.strict_entities {
        if task != kiln_data::Task::Token {
            return Err(TrainError::invalid(
                "strict_entities",
                format!("reads entities off tags; not for a {task} task"),
            ));
        }
        if let Some(why) = kiln_metrics::token::strict_mode_error(&data.labels) {
            return Err(TrainError::invalid("strict_entities", why));
        }
    }
    if task != kiln_data::Task::Classification {
        if config.distillation.is_some() {
            return Err(TrainError::invalid(
                "distillation",
                format!("distils a single-label classifier's logits; not a {task} task"),
            ));
        }
        if config.class_weights.is_some() || config.label_smoothing != 0.0 {
            return Err(TrainError::invalid(
                "class_weights",
                format!("and label_smoothing are cross-entropy options, not for a {task} task"),
            ));
        }
    }
    if task != kiln_data::Task::MultiLabel
        && (config.pos_weight.is_some() || config.tune_thresholds)
    {
        return Err(TrainError::invalid(
            "pos_weight",
            format!("and tune_thresholds are multi-label options, not for a {task} task"),
        ));
    }
    if let Some(w) = &config.pos_weight {
        if w.len() != data.labels.len() {
            return Err(TrainError::invalid(
                "pos_weight",
                format!("holds {} weights for {} labels", w.len(), data.labels.len()),
            ));
        }
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
    if outputs != data.num_outputs() {
        let wants = match task {
            kiln_data::Task::Classification | kiln_data::Task::MultiLabel => {
                format!("{} labels", data.labels.len())
            }
            kiln_data::Task::Token => format!("{} tags", data.labels.len()),
            kiln_data::Task::Regression => "one value per example".to_string(),
        };
        return Err(TrainError::invalid(
            "labels",
            format!("the model has {outputs} outputs but the data has {wants}"),
        ));
    }
    Ok(())
}
