//! The fine-tuning loop: bucketed batches → forward → loss → backward → (accumulate, clip) →
//! optimizer step with the scheduled, per-group learning rate → validation each epoch → early
//! stopping and the best model kept → checkpoints.
//!
//! Randomness is a pure function of the seed: batch order comes from `BucketSampler::epoch(e)`
//! and dropout is reseeded from (seed, micro-step) before every forward, so a run resumed from
//! an epoch checkpoint replays exactly what the uninterrupted run would have done.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use kiln_data::bucket::{BatchSize, BucketSampler, Sampler};
use kiln_data::loader::{planned_loader, ClassificationBatcher};
use kiln_data::pipeline::EncodedExample;
use kiln_data::TokenBatch;
use kiln_loss::{DistillationLoss, Loss};
use kiln_model::activation::is_cpu;
use kiln_model::dropout::mix;
use kiln_model::BertClassifier;

use crate::checkpoint::{self, Best, TrainState};
use crate::clip::{clip_global_norm, global_norm, scale_grads};
use crate::error::TrainError;
use crate::history::{EpochPoint, EvalPoint, StepPoint};
use crate::metrics::{argmax_rows, ClassificationMetrics, ConfusionMatrix};
use crate::optim::{lr_groups, module_lr, OptimizerSpec};
use crate::parallel::{data_parallel_step, shard_pools, shard_rows, ParallelStep, Shard};
use crate::schedule::{Schedule, ScheduleKind};
use crate::strategy::{Plan, Strategy, StrategyConfig, StrategyKind};

/// The validation metric that picks the best epoch and drives early stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SelectionMetric {
    #[default]
    Accuracy,
    MacroF1,
    Loss,
}

impl std::str::FromStr for SelectionMetric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "accuracy" => Ok(Self::Accuracy),
            "macro-f1" | "macro_f1" | "f1" => Ok(Self::MacroF1),
            "loss" => Ok(Self::Loss),
            other => Err(format!(
                "unknown metric `{other}` (accuracy, macro-f1, loss)"
            )),
        }
    }
}

impl SelectionMetric {
    /// Larger is better: the loss is negated.
    fn score(&self, m: &ClassificationMetrics) -> f64 {
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
    /// Deliberate faults for tests and drills (never set by the CLI).
    #[serde(skip)]
    pub faults: Faults,
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
            faults: Faults::default(),
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Config(m));
        if self.epochs == 0 {
            return bad("--epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("--batch-size must be at least 1".into());
        }
        if self.token_budget == Some(0) {
            return bad("--token-budget must be positive".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("--lr must be positive, got {}", self.lr));
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return bad(format!(
                "--warmup-ratio must be in [0, 1), got {}",
                self.warmup_ratio
            ));
        }
        if let Some(c) = self.grad_clip {
            if !(c.is_finite() && c > 0.0) {
                return bad(format!("--grad-clip must be positive, got {c}"));
            }
        }
        if self.keep_checkpoints == 0 || self.max_bad_steps == 0 || self.save_every_steps == Some(0)
        {
            return bad(
                "--keep-checkpoints, --max-bad-steps and --save-every must be at least 1".into(),
            );
        }
        if self.batch_shards == 0 {
            return bad("--batch-shards must be at least 1".into());
        }
        if self.bucket_chunk_batches == 0 {
            return bad("--bucket-chunk must be at least 1".into());
        }
        if self.grad_accum == 0 {
            return bad("--grad-accum must be at least 1".into());
        }
        if self.eval_batch_size == 0 || self.eval_every_steps == Some(0) {
            return bad("evaluation batch size and interval must be positive".into());
        }
        if !(self.min_delta.is_finite() && self.min_delta >= 0.0) {
            return bad(format!("--min-delta must be ≥ 0, got {}", self.min_delta));
        }
        self.optimizer.validate().map_err(TrainError::Config)?;
        self.strategy.validate().map_err(TrainError::Config)?;
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

    fn batch(&self) -> BatchSize {
        match self.token_budget {
            Some(t) => BatchSize::Tokens(t),
            None => BatchSize::Examples(self.batch_size),
        }
    }
}

/// Fault injection: make chosen micro-steps (0-based forward/backward passes) produce a NaN loss.
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

/// What a run reports as it goes (the CLI draws a progress bar and writes log.jsonl).
pub trait Observer {
    fn plan(&mut self, _epoch: usize, _plan: &Plan) {}
    fn epoch_start(&mut self, _epoch: usize, _optimizer_steps: usize) {}
    fn step(&mut self, _point: &StepPoint, _samples_per_second: f64) {}
    /// After every evaluation on the validation set (mid-epoch and at epoch ends); `is_best`
    /// when it beat every earlier one and its model is now the one kept.
    fn validation(&mut self, _point: &EvalPoint, _is_best: bool) {}
    fn epoch_end(&mut self, _point: &EpochPoint, _is_best: bool) {}
    fn message(&mut self, _text: &str) {}
    /// Polled at every optimizer-step boundary: true saves a checkpoint there and ends the run
    /// with `TrainError::Interrupted` (Ctrl-C).
    fn should_stop(&mut self) -> bool {
        false
    }
}

/// An observer that ignores everything (library use and tests).
pub struct Silent;
impl Observer for Silent {}

/// Throughput and size of a finished run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainStats {
    pub examples: usize,
    pub epochs: usize,
    pub steps: u64,
    /// Training loop time (validation excluded).
    pub wall_seconds: f64,
    pub samples_per_second: f64,
    pub tokens_per_second: f64,
    /// Where the training loop's time went.
    pub phases: PhaseSeconds,
}

/// Seconds spent in each phase of the training loop, summed over the run. The device is
/// synchronised at each boundary, so an asynchronous backend's work lands in the phase that
/// queued it; what is left of the loop's wall time (checkpoints, logging) is in none of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseSeconds {
    /// Waiting for the next batch (the loader's workers tokenize nothing: they pad and stack).
    pub data_seconds: f64,
    /// Model forward and loss, up to the loss value on the host.
    pub forward_seconds: f64,
    /// Backpropagation and gradient accumulation.
    pub backward_seconds: f64,
    /// Averaging, clipping and the optimizer's update.
    pub optimizer_seconds: f64,
}

/// Times consecutive phases: each `lap` ends the current phase (after the device finished it).
struct Lap<'a> {
    device: &'a Device,
    since: Instant,
}

impl<'a> Lap<'a> {
    fn start(device: &'a Device) -> Self {
        Self {
            device,
            since: Instant::now(),
        }
    }

    /// Starts the next phase now, accounting the time since the last lap nowhere.
    fn restart(&mut self) {
        self.since = Instant::now();
    }

    fn lap(&mut self, into: &mut f64) {
        // A failed sync surfaces at the next read of a tensor; timing is no place to report it.
        let _ = self.device.sync();
        let now = Instant::now();
        *into += (now - self.since).as_secs_f64();
        self.since = now;
    }
}

pub struct TrainOutcome {
    /// The best model on validation (or the last, without validation data), for inference.
    pub model: BertClassifier,
    pub steps: Vec<StepPoint>,
    pub epochs: Vec<EpochPoint>,
    /// Every evaluation on the validation set, in order.
    pub evals: Vec<EvalPoint>,
    /// The epoch (1-based) of the best evaluation.
    pub best_epoch: Option<u64>,
    /// The optimizer step of the best evaluation.
    pub best_step: Option<u64>,
    pub stopped_early: bool,
    /// Steps skipped because the loss or a gradient was not finite.
    pub bad_steps: u64,
    pub stats: TrainStats,
    pub plan: Plan,
}

/// One micro-batch's loss: a tensor to backpropagate, or a data-parallel step that already did.
enum MicroLoss {
    Single(Tensor<1>),
    Parallel(ParallelStep),
}

/// Pooled features of a frozen backbone, one row per example (the `frozen` strategy's cache).
struct FeatureCache {
    rows: Vec<f32>,
    hidden: usize,
}

impl FeatureCache {
    fn build(
        model: &BertClassifier,
        examples: &[EncodedExample],
        batch_size: usize,
        pad_id: u32,
        device: &Device,
    ) -> Self {
        let hidden = model.classifier.weight.dims()[0];
        let rows = rows_per_example(examples, batch_size, pad_id, device, hidden, |b| {
            model.features(b.input_ids, b.token_type_ids, b.attention_mask)
        });
        Self { rows, hidden }
    }

    fn batch(&self, indices: &[usize], device: &Device) -> Tensor<2> {
        let mut data = Vec::with_capacity(indices.len() * self.hidden);
        for &i in indices {
            data.extend_from_slice(&self.rows[i * self.hidden..(i + 1) * self.hidden]);
        }
        Tensor::from_data(TensorData::new(data, [indices.len(), self.hidden]), device)
    }
}

/// Runs `f` over the examples in length-sorted batches (little padding) and returns its
/// `width` outputs per example, row-major, back in input order.
fn rows_per_example(
    examples: &[EncodedExample],
    batch_size: usize,
    pad_id: u32,
    device: &Device,
    width: usize,
    f: impl Fn(TokenBatch) -> Tensor<2>,
) -> Vec<f32> {
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.sort_by_key(|&i| examples[i].len());
    let mut out = vec![0f32; examples.len() * width];
    for chunk in order.chunks(batch_size.max(1)) {
        let encodings: Vec<_> = chunk.iter().map(|&i| &examples[i].encoding).collect();
        let values = f(TokenBatch::pad(&encodings, pad_id, 1, device))
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        for (row, &i) in chunk.iter().enumerate() {
            out[i * width..(i + 1) * width]
                .copy_from_slice(&values[row * width..(row + 1) * width]);
        }
    }
    out
}

/// Logits of every example (in input order), from an inference-mode model.
pub fn predict_logits(
    model: &BertClassifier,
    examples: &[EncodedExample],
    batch_size: usize,
    pad_id: u32,
    device: &Device,
) -> Vec<f32> {
    rows_per_example(
        examples,
        batch_size,
        pad_id,
        device,
        model.num_labels(),
        |b| model.forward(b.input_ids, b.token_type_ids, b.attention_mask),
    )
}

/// How fast a model labelled a set of examples (one pass of `predict_logits`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InferenceSpeed {
    pub examples: usize,
    /// Real (non-padding) tokens.
    pub tokens: usize,
    pub batch_size: usize,
    pub seconds: f64,
    pub samples_per_second: f64,
    pub tokens_per_second: f64,
}

impl InferenceSpeed {
    pub fn new(examples: &[EncodedExample], batch_size: usize, seconds: f64) -> Self {
        let tokens = examples.iter().map(|e| e.len()).sum();
        let s = seconds.max(1e-9);
        Self {
            examples: examples.len(),
            tokens,
            batch_size,
            seconds,
            samples_per_second: examples.len() as f64 / s,
            tokens_per_second: tokens as f64 / s,
        }
    }
}

/// Logits of every example and the time the pass took.
pub fn timed_predict_logits(
    model: &BertClassifier,
    examples: &[EncodedExample],
    batch_size: usize,
    pad_id: u32,
    device: &Device,
) -> (Vec<f32>, InferenceSpeed) {
    let start = Instant::now();
    let logits = predict_logits(model, examples, batch_size, pad_id, device);
    (
        logits,
        InferenceSpeed::new(examples, batch_size, start.elapsed().as_secs_f64()),
    )
}

/// Metrics (and the mean loss) of `logits` against the examples' labels.
pub fn metrics_from_logits(
    logits: &[f32],
    examples: &[EncodedExample],
    labels: &[String],
    loss: &Loss,
    device: &Device,
) -> ClassificationMetrics {
    let n = labels.len();
    let truth: Vec<usize> = examples.iter().map(|e| e.label).collect();
    let predicted = argmax_rows(logits, n);
    let cm = ConfusionMatrix::from_predictions(&truth, &predicted, n);
    let loss_value = (!examples.is_empty()).then(|| {
        let logits = Tensor::<2>::from_data(
            TensorData::new(logits.to_vec(), [examples.len(), n]),
            device,
        );
        let targets: Vec<i64> = truth.iter().map(|&t| t as i64).collect();
        let targets =
            Tensor::<1, Int>::from_data(TensorData::new(targets, [examples.len()]), device);
        loss.forward(logits, targets).into_scalar::<f64>()
    });
    ClassificationMetrics::compute(&cm, labels, loss_value)
}

/// Evaluates an inference-mode model on `examples`.
pub fn evaluate(
    model: &BertClassifier,
    examples: &[EncodedExample],
    labels: &[String],
    loss: &Loss,
    batch_size: usize,
    pad_id: u32,
    device: &Device,
) -> ClassificationMetrics {
    let logits = predict_logits(model, examples, batch_size, pad_id, device);
    metrics_from_logits(&logits, examples, labels, loss, device)
}

/// Fine-tunes `model` (on any device; it is moved to `device`'s autodiff twin).
///
/// With `checkpoint_dir`, a checkpoint is written at the end of every epoch; with `resume`, the
/// run continues from one.
pub fn train(
    model: BertClassifier,
    data: &TrainData,
    config: &TrainConfig,
    device: &Device,
    checkpoint_dir: Option<&Path>,
    resume: Option<&Path>,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, TrainError> {
    train_on_devices(
        model,
        data,
        config,
        std::slice::from_ref(device),
        checkpoint_dir,
        resume,
        observer,
    )
}

/// [`train`], data-parallel over `devices` (see [`crate::parallel`]): the model, the optimizer,
/// validation and checkpoints live on the first; every batch is split over all of them. The
/// `frozen` strategy trains its head on the first device alone (its features are computed once).
pub fn train_on_devices(
    model: BertClassifier,
    data: &TrainData,
    config: &TrainConfig,
    devices: &[Device],
    checkpoint_dir: Option<&Path>,
    resume: Option<&Path>,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, TrainError> {
    config.validate()?;
    let Some(device) = devices.first() else {
        return Err(TrainError::Config("no training device".into()));
    };
    if data.train.is_empty() {
        return Err(TrainError::Config("no training examples".into()));
    }
    if config.distillation.is_some() {
        let want = data.train.len() * data.labels.len();
        match &data.teacher_logits {
            Some(t) if t.len() == want => {}
            Some(t) => {
                return Err(TrainError::Config(format!(
                    "teacher logits hold {} values; {} examples × {} labels need {want}",
                    t.len(),
                    data.train.len(),
                    data.labels.len()
                )))
            }
            None => {
                return Err(TrainError::Config(
                    "distillation needs the teacher's logits".into(),
                ))
            }
        }
    }
    if model.num_labels() != data.labels.len() {
        return Err(TrainError::Config(format!(
            "the model's head has {} outputs but the data has {} labels",
            model.num_labels(),
            data.labels.len()
        )));
    }
    let ad = device.clone().autodiff();
    // One shard of each batch per device; on a single CPU device, `batch_shards` shards side by
    // side, each with its share of the cores (see `crate::parallel`).
    let replicas: Vec<Device> = if config.strategy.kind == StrategyKind::Frozen {
        vec![ad.clone()]
    } else if devices.len() == 1 && is_cpu(device) {
        vec![ad.clone(); config.batch_shards]
    } else {
        devices.iter().map(|d| d.clone().autodiff()).collect()
    };
    // Threads for the shards (none when a batch is one shard).
    let pools = if replicas.len() > 1 {
        shard_pools(replicas.len())
    } else {
        Vec::new()
    };
    let loss_fn = config.loss();
    // `fork` keeps a plain module plain; `train` turns its parameters into autodiff leaves.
    let model = model.fork(&ad).train();
    let (strategy, mut model) = Strategy::prepare(config.strategy.clone(), model);

    let lengths: Vec<usize> = data.train.iter().map(|e| e.len()).collect();
    let sampler = BucketSampler::new(
        lengths,
        config.batch(),
        config.sampler.bucketing(),
        config.seed,
    )?
    .with_chunk_batches(config.bucket_chunk_batches);
    // Each epoch may plan a different number of batches under a token budget; the schedule
    // needs a total up front, so it uses epoch 0's count for every epoch.
    let batches_per_epoch = sampler.num_batches(0);
    let steps_per_epoch = batches_per_epoch.div_ceil(config.grad_accum);
    let total_steps = steps_per_epoch * config.epochs;
    let schedule = Schedule::new(
        config.schedule,
        config.lr,
        total_steps,
        config.warmup_ratio,
        config.warmup_steps,
    );

    // A resumed run loads its weights first: the plan and the optimizer's groups refer to the
    // loaded parameters.
    let mut state = TrainState::default();
    let mut best = Best::None;
    let resume = match resume {
        Some(root) => Some(checkpoint::find_latest(root, &mut |m| observer.message(m))?),
        None => None,
    };
    let fingerprint = run_fingerprint(config, data);
    if let Some(dir) = &resume {
        let (m, s, b) = checkpoint::load_model(dir, model)?;
        if s.fingerprint.as_ref().is_some_and(|f| *f != fingerprint) {
            return Err(TrainError::Config(format!(
                "checkpoint {} was written by a run with other data or other options; it cannot \
                 continue this one",
                dir.display()
            )));
        }
        // More epochs may follow a finished plan only where the steps already taken had the
        // learning rates this run would give them (a constant schedule, or fixed warmup steps).
        if let Some(p) = s
            .steps_log
            .iter()
            .find(|p| schedule.lr(p.step.saturating_sub(1) as usize) != p.lr)
        {
            return Err(TrainError::Config(format!(
                "checkpoint {}: step {} ran at learning rate {:e}, but this run's schedule gives \
                 it {:e}; a different number of epochs or steps would mix two schedules",
                dir.display(),
                p.step,
                p.lr,
                schedule.lr(p.step.saturating_sub(1) as usize)
            )));
        }
        model = m;
        state = s;
        best = b;
    }
    state.fingerprint = Some(fingerprint);
    let mut plan = strategy.plan(
        &model,
        state.epochs_done,
        config.lr,
        config.optimizer.weight_decay,
    );
    model = strategy.apply(model, &plan);
    let mut optim: ModuleOptimizer = config.optimizer.build(&plan);
    // Per-group learning-rate multipliers change only with the plan, not per step.
    let mut lr_groups = lr_groups(&plan);
    if let Some(dir) = &resume {
        optim = checkpoint::load_optimizer(dir, optim)?;
        observer.message(&format!(
            "resumed from {} (epoch {}, batch {} of it, step {})",
            dir.display(),
            state.epochs_done + 1,
            state.batch_in_epoch,
            state.steps
        ));
    }
    observer.plan(state.epochs_done, &plan);

    let frozen = config.strategy.kind == StrategyKind::Frozen;
    let (train_cache, valid_cache) = if frozen {
        let inference = model.valid();
        let start = Instant::now();
        let caches = (
            FeatureCache::build(
                &inference,
                &data.train,
                config.eval_batch_size,
                data.pad_id,
                device,
            ),
            FeatureCache::build(
                &inference,
                &data.valid,
                config.eval_batch_size,
                data.pad_id,
                device,
            ),
        );
        observer.message(&format!(
            "frozen backbone: features of {} + {} examples computed once in {:.1}s",
            data.train.len(),
            data.valid.len(),
            start.elapsed().as_secs_f64()
        ));
        (Some(caches.0), Some(caches.1))
    } else {
        (None, None)
    };

    let batcher = ClassificationBatcher {
        pad_id: data.pad_id,
        pad_to_multiple: config.pad_to_multiple,
        pack: config.sampler == Sampler::Packed,
    };
    let validate = |model: &BertClassifier| -> ClassificationMetrics {
        let inference = model.valid();
        match &valid_cache {
            Some(cache) => {
                let all: Vec<usize> = (0..data.valid.len()).collect();
                let logits = if all.is_empty() {
                    Vec::new()
                } else {
                    inference
                        .head(cache.batch(&all, device))
                        .into_data()
                        .convert::<f32>()
                        .try_to_vec::<f32>()
                        .unwrap_or_default()
                };
                metrics_from_logits(&logits, &data.valid, &data.labels, &loss_fn, device)
            }
            None => evaluate(
                &inference,
                &data.valid,
                &data.labels,
                &loss_fn,
                config.eval_batch_size,
                data.pad_id,
                device,
            ),
        }
    };

    let mut stopped_early = false;
    'epochs: for epoch in state.epochs_done..config.epochs {
        if strategy.changes_over_epochs() && epoch > 0 {
            let next = strategy.plan(&model, epoch, config.lr, config.optimizer.weight_decay);
            if next.trainable_ids() != plan.trainable_ids() {
                plan = next;
                lr_groups = crate::optim::lr_groups(&plan);
                model = strategy.apply(model, &plan);
                observer.plan(epoch, &plan);
            }
        }
        let plan_batches = sampler.epoch(epoch as u64);
        // Resuming inside an epoch: the batches before the checkpoint are skipped.
        let skip = state.batch_in_epoch;
        observer.epoch_start(epoch, plan_batches.len().div_ceil(config.grad_accum));
        let mut epoch_start = Instant::now();
        let mut accumulator = GradientsAccumulator::<BertClassifier>::new();
        let mut micro = 0usize;
        let mut micro_losses = 0.0;
        let mut group_ok = true;
        let mut window_examples = 0usize;
        let mut window_start = Instant::now();

        // Full-model strategies read batches through burn's data loader (the same plan, built
        // by its workers; each batch as one item per shard); the frozen strategy reads its
        // feature cache.
        let loader = (!frozen).then(|| {
            let shard_plan = plan_batches
                .iter()
                .skip(skip)
                .flat_map(|b| {
                    shard_rows(b.len(), replicas.len())
                        .into_iter()
                        .map(|r| b[r].to_vec())
                })
                .collect();
            planned_loader(
                data.train.clone(),
                shard_plan,
                batcher,
                config.num_workers,
                &ad,
            )
        });
        let total = plan_batches.len();
        let mut loader_iter = loader.as_ref().map(|l| l.iter());
        for (batch_index, indices) in plan_batches.iter().enumerate().skip(skip) {
            // Dropout masks are a function of (seed, micro-step): resumable, thread-independent.
            let dropout_seed = mix(config.seed, state.micro_steps);
            ad.seed(dropout_seed);
            let mut lap = Lap::start(&ad);
            // The loss of rows `rows` of this batch (all of them on one device, a shard of them
            // on several).
            let loss_of =
                |logits: Tensor<2>, targets: Tensor<1, Int>, rows: Range<usize>| -> Tensor<1> {
                    match (&config.distillation, &data.teacher_logits) {
                        (Some(kd), Some(teacher)) => {
                            let n = data.labels.len();
                            let mut values = Vec::with_capacity(rows.len() * n);
                            for &i in &indices[rows.clone()] {
                                values.extend_from_slice(&teacher[i * n..(i + 1) * n]);
                            }
                            let teacher = Tensor::<2>::from_data(
                                TensorData::new(values, [rows.len(), n]),
                                &logits.device(),
                            );
                            kd.forward(logits.cast(burn::tensor::FloatDType::F32), teacher, targets)
                        }
                        _ => loss_fn.forward(logits, targets),
                    }
                };
            let (micro_loss, examples, tokens) = match (&mut loader_iter, &train_cache) {
                (Some(it), _) => {
                    let mut shards = Vec::with_capacity(replicas.len());
                    for rows in shard_rows(indices.len(), replicas.len()) {
                        let b = it
                            .next()
                            .ok_or_else(|| TrainError::Data("the data loader ended early".into()))?
                            .map_err(|e| TrainError::Data(e.to_string()))?;
                        shards.push(Shard {
                            tokens: b.tokens,
                            targets: b.labels,
                            rows,
                        });
                    }
                    lap.lap(&mut state.phases.data_seconds);
                    let examples = indices.len();
                    let tokens: usize = shards.iter().flat_map(|s| &s.tokens.lengths).sum();
                    let micro_loss = match shards.pop() {
                        Some(shard) if shards.is_empty() => {
                            let logits = model.forward_batch(shard.tokens);
                            MicroLoss::Single(loss_of(logits, shard.targets, shard.rows))
                        }
                        last => {
                            shards.extend(last);
                            MicroLoss::Parallel(data_parallel_step(
                                &model,
                                &replicas,
                                &pools,
                                shards,
                                examples,
                                dropout_seed,
                                &loss_of,
                            ))
                        }
                    };
                    (micro_loss, examples, tokens)
                }
                (None, Some(cache)) => {
                    let features = cache.batch(indices, &ad);
                    let labels: Vec<i64> = indices
                        .iter()
                        .map(|&i| data.train[i].label as i64)
                        .collect();
                    let targets =
                        Tensor::<1, Int>::from_data(TensorData::new(labels, [indices.len()]), &ad);
                    let tokens = indices.iter().map(|&i| data.train[i].len()).sum();
                    lap.lap(&mut state.phases.data_seconds);
                    (
                        MicroLoss::Single(loss_of(model.head(features), targets, 0..indices.len())),
                        indices.len(),
                        tokens,
                    )
                }
                (None, None) => return Err(TrainError::Config("no training input".into())),
            };
            let fault = config.faults.nan_loss_at.contains(&state.micro_steps);
            let (loss_value, grads) = match micro_loss {
                MicroLoss::Single(loss) => {
                    let loss = if fault {
                        loss.mul_scalar(f64::NAN)
                    } else {
                        loss
                    };
                    let value = loss.clone().into_scalar::<f64>();
                    lap.lap(&mut state.phases.forward_seconds);
                    let grads = (value.is_finite() && group_ok)
                        .then(|| GradientsParams::from_grads(loss.backward(), &model));
                    (value, grads)
                }
                MicroLoss::Parallel(step) => {
                    state.phases.forward_seconds += step.forward_seconds;
                    state.phases.backward_seconds += step.backward_seconds;
                    lap.restart();
                    let value = if fault { f64::NAN } else { step.loss };
                    (value, (value.is_finite() && group_ok).then_some(step.grads))
                }
            };
            match grads {
                Some(grads) => {
                    accumulator.accumulate(&model, grads);
                    lap.lap(&mut state.phases.backward_seconds);
                }
                // A non-finite loss spoils the whole optimizer step it belongs to.
                None => group_ok = false,
            }
            micro += 1;
            state.micro_steps += 1;
            micro_losses += loss_value;
            state.epoch_loss_sum += loss_value;
            state.epoch_batches += 1;
            window_examples += examples;
            state.examples_seen += examples as u64;
            state.tokens_seen += tokens as u64;

            if micro == config.grad_accum || batch_index + 1 == total {
                let mut grads = accumulator.grads();
                let lr = schedule.lr(state.steps as usize);
                let mut applied = false;
                if group_ok {
                    if micro > 1 {
                        // Average, not sum: k micro-batches of n make the same step as one of k·n.
                        scale_grads(&model, &mut grads, 1.0 / micro as f64);
                    }
                    let norm = match config.grad_clip {
                        Some(max_norm) => clip_global_norm(&model, &mut grads, max_norm),
                        None => global_norm(&model, &grads),
                    };
                    if norm.is_finite() {
                        model = optim.step(module_lr(&lr_groups, lr), model, grads);
                        applied = true;
                    }
                }
                lap.lap(&mut state.phases.optimizer_seconds);
                state.steps += 1;
                if applied {
                    state.bad_steps_in_row = 0;
                } else {
                    // Skipped: the weights and the optimizer state stay as they were.
                    state.bad_steps += 1;
                    state.bad_steps_in_row += 1;
                    observer.message(&format!(
                        "step {}: non-finite loss or gradient, step skipped ({} in a row, {} in all)",
                        state.steps, state.bad_steps_in_row, state.bad_steps
                    ));
                    if state.bad_steps_in_row >= config.max_bad_steps as u64 {
                        return Err(TrainError::NonFinite {
                            epoch,
                            step: state.steps,
                            loss: micro_losses / micro as f64,
                            in_a_row: state.bad_steps_in_row,
                        });
                    }
                }
                let point = StepPoint {
                    step: state.steps,
                    epoch: epoch as f64 + (batch_index + 1) as f64 / total.max(1) as f64,
                    loss: micro_losses / micro as f64,
                    lr,
                };
                let elapsed = window_start.elapsed().as_secs_f64();
                observer.step(&point, window_examples as f64 / elapsed.max(1e-9));
                window_examples = 0;
                window_start = Instant::now();
                let step_epoch = point.epoch;
                state.steps_log.push(point);
                micro = 0;
                micro_losses = 0.0;
                group_ok = true;
                state.batch_in_epoch = batch_index + 1;

                if let Some(every) = config.eval_every_steps {
                    if state.steps % every as u64 == 0
                        && batch_index + 1 != total
                        && !data.valid.is_empty()
                    {
                        let point = EvalPoint {
                            step: state.steps,
                            epoch: step_epoch,
                            epoch_end: false,
                            metrics: validate(&model),
                        };
                        let is_best = record_evaluation(
                            &point,
                            config,
                            &mut state,
                            &mut best,
                            &model,
                            checkpoint_dir,
                        )?;
                        observer.validation(&point, is_best);
                        if patience_exhausted(config, &state) {
                            observer.message(&early_stop_message(config, &point));
                            stopped_early = true;
                            state.train_seconds += epoch_start.elapsed().as_secs_f64();
                            break 'epochs;
                        }
                    }
                }
                let stop = observer.should_stop();
                let periodic = config
                    .save_every_steps
                    .is_some_and(|n| state.steps % n as u64 == 0);
                if (stop || periodic) && batch_index + 1 != total {
                    state.train_seconds += epoch_start.elapsed().as_secs_f64();
                    epoch_start = Instant::now();
                    if let Some(dir) = checkpoint_dir {
                        let saved = checkpoint::save(
                            dir,
                            &model,
                            &optim,
                            &state,
                            &best,
                            config.keep_checkpoints,
                        )?;
                        best = best.saved_in(&saved);
                    }
                    if stop {
                        return Err(TrainError::Interrupted {
                            step: state.steps,
                            checkpoint: checkpoint_dir.map(|d| d.to_path_buf()),
                        });
                    }
                }
            }
        }
        state.train_seconds += epoch_start.elapsed().as_secs_f64();

        let valid = (!data.valid.is_empty()).then(|| EvalPoint {
            step: state.steps,
            epoch: epoch as f64 + 1.0,
            epoch_end: true,
            metrics: validate(&model),
        });
        let is_best = match &valid {
            Some(eval) => {
                let is_best =
                    record_evaluation(eval, config, &mut state, &mut best, &model, checkpoint_dir)?;
                observer.validation(eval, is_best);
                is_best
            }
            // Without validation data the last epoch's model is the one kept.
            None => {
                state.best_epoch = Some(epoch as u64 + 1);
                state.best_step = Some(state.steps);
                best = keep_current(&model, checkpoint_dir);
                true
            }
        };
        let point = EpochPoint {
            epoch: epoch as u64 + 1,
            train_loss: state.epoch_loss_sum / state.epoch_batches.max(1) as f64,
            valid: valid.map(|e| e.metrics),
        };
        observer.epoch_end(&point, is_best);
        state.epochs.push(point);
        state.epochs_done = epoch + 1;
        state.batch_in_epoch = 0;
        state.epoch_loss_sum = 0.0;
        state.epoch_batches = 0;
        if let Some(dir) = checkpoint_dir {
            let saved =
                checkpoint::save(dir, &model, &optim, &state, &best, config.keep_checkpoints)?;
            best = best.saved_in(&saved);
        }
        if observer.should_stop() && epoch + 1 < config.epochs {
            return Err(TrainError::Interrupted {
                step: state.steps,
                checkpoint: checkpoint_dir.map(|d| d.to_path_buf()),
            });
        }
        if patience_exhausted(config, &state) && epoch + 1 < config.epochs {
            if let Some(last) = state.evals.last() {
                observer.message(&early_stop_message(config, last));
            }
            stopped_early = true;
            break;
        }
    }

    let final_model = best.resolve(&model)?;
    // LoRA adapters are folded into plain weights, so the result is an ordinary BERT.
    let final_model = if config.strategy.kind == StrategyKind::Lora {
        final_model.materialize()
    } else {
        final_model
    };
    let wall = state.train_seconds.max(1e-9);
    Ok(TrainOutcome {
        model: final_model,
        stats: TrainStats {
            examples: data.train.len(),
            epochs: state.epochs_done,
            steps: state.steps,
            wall_seconds: state.train_seconds,
            samples_per_second: state.examples_seen as f64 / wall,
            tokens_per_second: state.tokens_seen as f64 / wall,
            phases: state.phases,
        },
        steps: state.steps_log,
        epochs: state.epochs,
        evals: state.evals,
        best_epoch: state.best_epoch,
        best_step: state.best_step,
        bad_steps: state.bad_steps,
        stopped_early,
        plan,
    })
}

/// Scores an evaluation against the best so far and counts it for patience. A new best model
/// is kept: in memory without a checkpoint directory; with one, on disk — mid-epoch in its own
/// file (the model moves on before the next checkpoint), at an epoch's end in the checkpoint
/// written right after.
fn record_evaluation(
    point: &EvalPoint,
    config: &TrainConfig,
    state: &mut TrainState,
    best: &mut Best,
    model: &BertClassifier,
    checkpoint_dir: Option<&Path>,
) -> Result<bool, TrainError> {
    let score = config.metric.score(&point.metrics);
    let is_best = state
        .best_score
        .is_none_or(|b| score > b + config.min_delta);
    if is_best {
        state.best_score = Some(score);
        // The epoch the evaluation belongs to, 1-based: step 30 of 40 in the second epoch is 2.
        state.best_epoch = Some(point.epoch.ceil() as u64);
        state.best_step = Some(point.step);
        state.evals_without_improvement = 0;
        *best = match checkpoint_dir {
            Some(dir) if !point.epoch_end => Best::File(checkpoint::save_best(dir, model)?),
            _ => keep_current(model, checkpoint_dir),
        };
    } else {
        state.evals_without_improvement += 1;
    }
    state.evals.push(point.clone());
    Ok(is_best)
}

/// The model as it is now becomes the best: with checkpoints, the epoch-end checkpoint that
/// follows copies it to disk; without, a copy stays in memory.
fn keep_current(model: &BertClassifier, checkpoint_dir: Option<&Path>) -> Best {
    match checkpoint_dir {
        Some(_) => Best::Current,
        None => Best::Memory(Box::new(model.valid())),
    }
}

fn patience_exhausted(config: &TrainConfig, state: &TrainState) -> bool {
    config
        .patience
        .is_some_and(|p| state.evals_without_improvement >= p)
}

fn early_stop_message(config: &TrainConfig, last: &EvalPoint) -> String {
    format!(
        "early stopping at step {} (epoch {:.2}): no {:?} improvement in {} evaluation(s)",
        last.step,
        last.epoch,
        config.metric,
        config.patience.unwrap_or(0)
    )
}

/// A digest of everything that decides a run's result: the options (less those that only say
/// where and how often to save, and the number of epochs, which the resume checks against the
/// learning rates already used) and the exact training and validation examples. A checkpoint
/// carries it, so that a resume with other data or options is refused instead of mixing runs.
fn run_fingerprint(config: &TrainConfig, data: &TrainData) -> String {
    let mut recipe = config.clone();
    recipe.epochs = 0;
    recipe.save_every_steps = None;
    recipe.keep_checkpoints = 1;
    recipe.num_workers = 1;
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(&recipe).unwrap_or_default());
    hasher.update(serde_json::to_vec(&data.labels).unwrap_or_default());
    for split in [&data.train, &data.valid] {
        hasher.update((split.len() as u64).to_le_bytes());
        for e in split.iter() {
            hasher.update((e.label as u64).to_le_bytes());
            hasher.update((e.encoding.input_ids.len() as u64).to_le_bytes());
            for (id, ty) in e.encoding.input_ids.iter().zip(&e.encoding.token_type_ids) {
                hasher.update(id.to_le_bytes());
                hasher.update(ty.to_le_bytes());
            }
        }
    }
    if let Some(t) = &data.teacher_logits {
        for v in t.iter() {
            hasher.update(v.to_le_bytes());
        }
    }
    format!("{:x}", hasher.finalize())
}
