//! Inference over examples: outputs of every example, how fast, and the metrics against their
//! labels. [`Evaluator`] is the one-call form: a model and examples in, metrics out.

use std::time::Instant;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use kiln_data::pipeline::EncodedExample;
use kiln_data::{Readout, Target, Targets, TokenBatch, ValueScale};

use kiln_metrics::{MultiLabelMetrics, RegressionMetrics, TaskMetrics};

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
    readout: Readout,
}

impl Default for Evaluator {
    fn default() -> Self {
        Self {
            batch_size: 64,
            pad_id: 0,
            loss: TaskLoss::default(),
            readout: Readout::default(),
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
        self.readout.scale = scale;
        self
    }

    /// How outputs read as predictions: the regression scale and the multi-label thresholds
    /// (see [`Readout`]).
    pub fn readout(mut self, readout: Readout) -> Self {
        self.readout = readout;
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
        metrics_from_logits(logits, examples, labels, &self.loss, &self.readout, device)
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
    let rows = Rows::of(model);
    rows_per_example(examples, batch_size, pad_id, device, rows, |b| {
        model.outputs(b)
    })
    .0
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

/// What a row of a model's outputs (or features) is: an example, or a token of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rows {
    PerExample,
    /// `len` rows per example, one per piece of its encoding (padding dropped).
    PerToken,
}

impl Rows {
    pub(crate) fn of<M: TaskModel>(model: &M) -> Self {
        if model.per_token() {
            Rows::PerToken
        } else {
            Rows::PerExample
        }
    }

    /// Where each example's rows start in the output [`rows_per_example`] lays out, and how
    /// many it has: one, or one per piece.
    pub(crate) fn spans(self, examples: &[EncodedExample]) -> Vec<(usize, usize)> {
        let mut at = 0;
        examples
            .iter()
            .map(|e| {
                let n = match self {
                    Rows::PerExample => 1,
                    Rows::PerToken => e.len(),
                };
                at += n;
                (at - n, n)
            })
            .collect()
    }
}

/// Runs `f` over the examples in length-sorted batches (little padding) and returns its
/// outputs row-major, back in input order — one row per example, or with [`Rows::PerToken`]
/// one per piece of each example (its padding rows dropped), example after example — with the
/// row width (taken from the first batch's output; 0 for no examples).
pub(crate) fn rows_per_example(
    examples: &[EncodedExample],
    batch_size: usize,
    pad_id: u32,
    device: &Device,
    rows: Rows,
    f: impl Fn(TokenBatch) -> Tensor<2>,
) -> (Vec<f32>, usize) {
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.sort_by_key(|&i| examples[i].len());
    let spans = rows.spans(examples);
    let total = spans.last().map_or(0, |&(start, n)| start + n);
    let (mut out, mut width) = (Vec::new(), 0);
    for chunk in order.chunks(batch_size.max(1)) {
        let encodings: Vec<_> = chunk.iter().map(|&i| &examples[i].encoding).collect();
        let batch = TokenBatch::pad(&encodings, pad_id, 1, device);
        let seq = batch.input_ids.dims()[1];
        let output = f(batch);
        if out.is_empty() {
            width = output.dims()[1];
            out = vec![0f32; total * width];
        }
        let values = output
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        for (row, &i) in chunk.iter().enumerate() {
            let (start, n) = spans[i];
            // A padded batch's row `row` starts at `row · seq` of the token rows.
            let from = if rows == Rows::PerToken {
                row * seq
            } else {
                row
            };
            out[start * width..(start + n) * width]
                .copy_from_slice(&values[from * width..(from + n) * width]);
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
/// (argmax of each row), values (each row's one output, mapped back to the data's units by
/// `readout`; the loss is on standardised values, as training computes it), or label sets
/// (each output past its threshold).
pub fn metrics_from_logits(
    logits: &[f32],
    examples: &[EncodedExample],
    labels: &[String],
    loss: &TaskLoss,
    readout: &Readout,
    device: &Device,
) -> TaskMetrics {
    if let Some(Target::Tags(_)) = examples.first().map(|e| &e.target) {
        return token_metrics(logits, examples, labels, loss, readout, device);
    }
    let scale = readout.scale;
    let targets: Vec<Target> = examples.iter().map(|e| e.target.clone()).collect();
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
        loss.forward(outputs, Targets::of(&targets, scale, width, device))
            .into_scalar::<f64>()
    });
    if let Some(Target::Labels(_)) = targets.first() {
        let truth: Vec<Vec<bool>> = targets.iter().map(|t| label_row(t, width)).collect();
        let predicted: Vec<Vec<bool>> = logits
            .chunks(width.max(1))
            .map(|row| readout.label_set(row))
            .collect();
        return MultiLabelMetrics::new(&truth, &predicted, loss_value)
            .expect("rows of one width")
            .into();
    }
    if width == 1 && matches!(targets.first(), Some(Target::Value(_))) {
        let predicted: Vec<f64> = logits.iter().map(|&v| readout.value(v)).collect();
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

/// Token classification's metrics from per-piece outputs (`logits`: every piece of every
/// example, example after example, as [`rows_per_example`] gives them): each labelled piece's
/// argmax against its tag; `labels` names every tag index, the model's outputs first and then
/// the split's tags training never had.
fn token_metrics(
    logits: &[f32],
    examples: &[EncodedExample],
    labels: &[String],
    loss: &TaskLoss,
    readout: &Readout,
    device: &Device,
) -> TaskMetrics {
    let pieces: usize = examples.iter().map(EncodedExample::len).sum();
    let width = logits.len() / pieces.max(1);
    let tags: Vec<i64> = examples
        .iter()
        .flat_map(|e| e.target.tags().unwrap_or(&[]).iter().copied())
        .collect();
    let loss_value = (pieces > 0 && tags.len() == pieces).then(|| {
        let outputs =
            Tensor::<2>::from_data(TensorData::new(logits.to_vec(), [pieces, width]), device);
        let targets =
            Tensor::<2, Int>::from_data(TensorData::new(tags.clone(), [1, pieces]), device);
        loss.forward(outputs, Targets::Tags(targets))
            .into_scalar::<f64>()
    });
    let predicted_all = argmax_rows(logits, width);
    let (mut truth, mut predicted) = (Vec::new(), Vec::new());
    let mut at = 0;
    for e in examples {
        let labels_of = e.target.tags().unwrap_or(&[]);
        let (mut t, mut p) = (Vec::new(), Vec::new());
        for (k, &tag) in labels_of.iter().enumerate() {
            if let Ok(tag) = usize::try_from(tag) {
                t.push(tag);
                p.push(predicted_all[at + k]);
            }
        }
        at += e.len();
        truth.push(t);
        predicted.push(p);
    }
    // Names for every index: the given tags, then numbers for any the caller did not name.
    let known = truth.iter().flatten().copied().max().map_or(0, |m| m + 1);
    let names: Vec<String> = (0..labels.len().max(width).max(known))
        .map(|i| labels.get(i).cloned().unwrap_or_else(|| i.to_string()))
        .collect();
    let score = |strict| {
        kiln_metrics::TokenMetrics::new(&truth, &predicted, &names, width, strict, loss_value)
    };
    // A held-out tag outside the strict scheme (one training never had: training's own are
    // checked before the run) is read in seqeval's default mode instead, which reads any tag;
    // the metrics name the mode they used.
    score(readout.strict_entities)
        .or_else(|_| score(false))
        .expect("a prediction per labelled piece")
        .into()
}

/// A label set as one 0/1 row of `width` labels.
fn label_row(target: &Target, width: usize) -> Vec<bool> {
    let mut row = vec![false; width];
    for &l in target.labels().unwrap_or(&[]) {
        if let Some(cell) = row.get_mut(l) {
            *cell = true;
        }
    }
    row
}

/// Per-label probability thresholds tuned on validation outputs: for each label, the threshold
/// from 0.05 to 0.95 in steps of 0.05 that gives the label the highest F1 on `examples`
/// (ties: the one closest to 0.5). A label without positives keeps 0.5.
pub fn tune_thresholds(logits: &[f32], examples: &[EncodedExample], labels: usize) -> Vec<f32> {
    let truth: Vec<Vec<bool>> = examples
        .iter()
        .map(|e| label_row(&e.target, labels))
        .collect();
    let probabilities: Vec<f32> = logits.iter().map(|&x| kiln_data::sigmoid(x)).collect();
    (0..labels)
        .map(|l| {
            if !truth.iter().any(|t| t[l]) {
                return 0.5;
            }
            let f1 = |threshold: f32| {
                let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
                for (i, t) in truth.iter().enumerate() {
                    match (probabilities[i * labels + l] > threshold, t[l]) {
                        (true, true) => tp += 1,
                        (true, false) => fp += 1,
                        (false, true) => fn_ += 1,
                        (false, false) => {}
                    }
                }
                2.0 * tp as f64 / (2 * tp + fp + fn_).max(1) as f64
            };
            let candidates = (1..20).map(|k| k as f32 * 0.05);
            candidates
                .max_by(|&a, &b| {
                    f1(a)
                        .total_cmp(&f1(b))
                        .then((b - 0.5).abs().total_cmp(&(a - 0.5).abs()))
                })
                .unwrap_or(0.5)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_data::Encoding;

    fn example(labels: &[usize]) -> EncodedExample {
        EncodedExample {
            encoding: Encoding {
                input_ids: vec![2, 3],
                token_type_ids: vec![0, 0],
                truncated: false,
            },
            target: Target::Labels(labels.to_vec()),
        }
    }

    fn logit(p: f32) -> f32 {
        (p / (1.0 - p)).ln()
    }

    #[test]
    fn thresholds_are_tuned_per_label_for_f1_and_read_back_into_label_sets() {
        // Label 0's positives score 0.35-0.38 and its negatives 0.12-0.15: 0.5 finds none,
        // 0.20-0.30 find them all (0.30 is nearest 0.5). Label 1 separates at 0.5 already; label 2
        // never occurs and keeps 0.5.
        let rows = [
            ([0.35, 0.9, 0.01], vec![0, 1]),
            ([0.38, 0.2, 0.01], vec![0]),
            ([0.15, 0.8, 0.01], vec![1]),
            ([0.12, 0.1, 0.01], vec![]),
        ];
        let examples: Vec<EncodedExample> = rows.iter().map(|(_, l)| example(l)).collect();
        let logits: Vec<f32> = rows.iter().flat_map(|(p, _)| p.map(logit)).collect();
        let tuned = tune_thresholds(&logits, &examples, 3);
        assert!((tuned[0] - 0.3).abs() < 1e-6, "{tuned:?}");
        assert_eq!(tuned[2], 0.5);
        // Of label 1's best thresholds (0.20 < t < 0.80 all give F1 1), the one nearest 0.5.
        assert!((tuned[1] - 0.5).abs() < 1e-6, "{tuned:?}");

        let readout = Readout {
            scale: None,
            thresholds: tuned,
            strict_entities: false,
        };
        let metrics = metrics_from_logits(
            &logits,
            &examples,
            &["a".into(), "b".into(), "c".into()],
            &TaskLoss::default(),
            &readout,
            &Device::default(),
        );
        let m = metrics.multi_label().unwrap();
        assert_eq!((m.micro_f1, m.subset_accuracy), (1.0, 1.0));
        let at_half = metrics_from_logits(
            &logits,
            &examples,
            &["a".into(), "b".into(), "c".into()],
            &TaskLoss::default(),
            &Readout::default(),
            &Device::default(),
        );
        assert!(at_half.multi_label().unwrap().per_label[0].recall == 0.0);
    }

    #[test]
    fn a_held_out_tag_outside_the_strict_scheme_is_read_in_the_default_mode_not_a_panic() {
        // Two trained tags (B-PER, O); the test sentence's third piece carries U-PER, which
        // training never had and IOB2's strict mode cannot read.
        let example = EncodedExample {
            encoding: Encoding {
                input_ids: vec![2, 5, 6, 3],
                token_type_ids: vec![0; 4],
                truncated: false,
            },
            target: Target::Tags(vec![
                kiln_data::tagged::IGNORE,
                0,
                2,
                kiln_data::tagged::IGNORE,
            ]),
        };
        // Per piece: B-PER, B-PER, O, O.
        let logits = [2.0, 0.0, 2.0, 0.0, 0.0, 2.0, 0.0, 2.0];
        let names = ["B-PER".to_string(), "O".to_string(), "U-PER".to_string()];
        let readout = Readout {
            strict_entities: true,
            ..Readout::default()
        };
        let m = metrics_from_logits(
            &logits,
            &[example],
            &names,
            &TaskLoss::default(),
            &readout,
            &Device::default(),
        );
        let t = m.token().unwrap();
        assert_eq!((t.tokens.examples, t.unseen_words), (2, 1));
        assert_eq!(t.accuracy(), 0.5);
        assert_eq!(
            t.entities.as_ref().unwrap().mode,
            kiln_metrics::EntityMode::Lenient
        );
    }
}
