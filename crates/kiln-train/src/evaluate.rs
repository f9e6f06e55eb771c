//! Inference over examples: outputs of every example, how fast, and the metrics against their
//! labels. [`Evaluator`] is the one-call form: a model and examples in, metrics out.

use std::time::Instant;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use kiln_data::pipeline::EncodedExample;
use kiln_data::{Target, Targets, TokenBatch, ValueScale};

use kiln_metrics::{RegressionMetrics, TaskMetrics};

use crate::metrics::{argmax_rows, ClassificationMetrics, ConfusionMatrix};
use crate::task::{TaskLoss, TaskModel};

/// Evaluates a model on labelled examples: `Evaluator::new().evaluate(&model, &examples,
/// &labels)` (the model in inference mode: `model.valid()`).
#[derive(Debug, Clone)]
pub struct Evaluator {
    batch_size: usize,
    /// Padding positions are masked, so the id changes no output; the tokenizer's id keeps the
    /// batches identical to a Hugging Face collator's.
    pad_id: u32,
    loss: TaskLoss,
    scale: Option<ValueScale>,
}

impl Default for Evaluator {
    fn default() -> Self {
        Self {
            batch_size: 64,
            pad_id: 0,
            loss: TaskLoss::default(),
            scale: None,
        }
    }
}

impl Evaluator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    pub fn pad_id(mut self, pad_id: u32) -> Self {
        self.pad_id = pad_id;
        self
    }

    /// The loss reported with the metrics (default: plain cross-entropy, or MSE for values).
    pub fn loss(mut self, loss: impl Into<TaskLoss>) -> Self {
        self.loss = loss.into();
        self
    }

    /// Regression: the training values' scale, which maps the model's outputs back to the
    /// data's units (see [`ValueScale`]).
    pub fn scale(mut self, scale: Option<ValueScale>) -> Self {
        self.scale = scale;
        self
    }

    /// Outputs of every example, row-major `[examples, outputs]`, in input order.
    pub fn outputs<M: TaskModel>(&self, model: &M, examples: &[EncodedExample]) -> Vec<f32> {
        let device = model_device(model);
        predict_logits(model, examples, self.batch_size, self.pad_id, &device)
    }

    /// Metrics of `model` on `examples`, whose classes index `labels` (none for values).
    pub fn evaluate<M: TaskModel>(
        &self,
        model: &M,
        examples: &[EncodedExample],
        labels: &[String],
    ) -> TaskMetrics {
        let logits = self.outputs(model, examples);
        self.metrics(&logits, examples, labels, &model_device(model))
    }

    /// Metrics (and the mean loss) of outputs `logits` against the examples' labels.
    pub fn metrics(
        &self,
        logits: &[f32],
        examples: &[EncodedExample],
        labels: &[String],
        device: &Device,
    ) -> TaskMetrics {
        metrics_from_logits(logits, examples, labels, &self.loss, self.scale, device)
    }
}

/// The device a model's parameters live on, without autodiff (the default device for a model
/// without any).
pub(crate) fn model_device<M: burn::module::Module>(model: &M) -> Device {
    model
        .devices()
        .into_iter()
        .next()
        .unwrap_or_default()
        .without_autodiff()
}

/// Outputs of every example (in input order) of an inference-mode model, batches of
/// `batch_size` built on `device`.
pub fn predict_logits<M: TaskModel>(
    model: &M,
    examples: &[EncodedExample],
    batch_size: usize,
    pad_id: u32,
    device: &Device,
) -> Vec<f32> {
    rows_per_example(examples, batch_size, pad_id, device, |b| model.outputs(b)).0
}

/// [`predict_logits`] and the time the pass took.
pub fn timed_predict_logits<M: TaskModel>(
    model: &M,
    examples: &[EncodedExample],
    batch_size: usize,
    pad_id: u32,
    device: &Device,
) -> (Vec<f32>, InferenceSpeed) {
    let start = Instant::now();
    let logits = predict_logits(model, examples, batch_size, pad_id, device);
    let seconds = start.elapsed().as_secs_f64();
    (logits, InferenceSpeed::new(examples, batch_size, seconds))
}

/// Runs `f` over the examples in length-sorted batches (little padding) and returns its
/// outputs, one row per example, row-major and back in input order, with the row width (taken
/// from the first batch's output; 0 for no examples).
pub(crate) fn rows_per_example(
    examples: &[EncodedExample],
    batch_size: usize,
    pad_id: u32,
    device: &Device,
    f: impl Fn(TokenBatch) -> Tensor<2>,
) -> (Vec<f32>, usize) {
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.sort_by_key(|&i| examples[i].len());
    let (mut out, mut width) = (Vec::new(), 0);
    for chunk in order.chunks(batch_size.max(1)) {
        let encodings: Vec<_> = chunk.iter().map(|&i| &examples[i].encoding).collect();
        let rows = f(TokenBatch::pad(&encodings, pad_id, 1, device));
        if out.is_empty() {
            width = rows.dims()[1];
            out = vec![0f32; examples.len() * width];
        }
        let values = rows
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        for (row, &i) in chunk.iter().enumerate() {
            out[i * width..(i + 1) * width]
                .copy_from_slice(&values[row * width..(row + 1) * width]);
        }
    }
    (out, width)
}

/// How fast a model labelled a set of examples (one pass of [`predict_logits`]).
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

/// Metrics (and the mean loss) of outputs `logits` against the examples' targets: classes
/// (argmax of each row), or values (each row's one output, mapped back to the data's units
/// with `scale`; the loss is on standardised values, as training computes it).
pub fn metrics_from_logits(
    logits: &[f32],
    examples: &[EncodedExample],
    labels: &[String],
    loss: &TaskLoss,
    scale: Option<ValueScale>,
    device: &Device,
) -> TaskMetrics {
    let targets: Vec<Target> = examples.iter().map(|e| e.target).collect();
    let width = if matches!(targets.first(), Some(Target::Value(_))) {
        1
    } else {
        labels.len()
    };
    let loss_value = (!examples.is_empty()).then(|| {
        let outputs = Tensor::<2>::from_data(
            TensorData::new(logits.to_vec(), [examples.len(), width]),
            device,
        );
        loss.forward(outputs, Targets::of(&targets, scale, device))
            .into_scalar::<f64>()
    });
    if width == 1 && matches!(targets.first(), Some(Target::Value(_))) {
        let restore = |v: f32| scale.map_or(f64::from(v), |s| s.restore(v));
        let predicted: Vec<f64> = logits.iter().map(|&v| restore(v)).collect();
        let truth: Vec<f64> = targets
            .iter()
            .map(|t| f64::from(t.value().unwrap_or(f32::NAN)))
            .collect();
        return RegressionMetrics::new(&predicted, &truth, loss_value).into();
    }
    let truth: Vec<usize> = targets.iter().map(|t| t.class().unwrap_or(0)).collect();
    let predicted = argmax_rows(logits, width);
    let cm = ConfusionMatrix::from_predictions(&truth, &predicted, width);
    ClassificationMetrics::compute(&cm, labels, loss_value).into()
}
