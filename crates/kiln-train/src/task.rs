//! What the trainer needs of a model: the [`TaskModel`] trait.
//!
//! The loop knows nothing of a model's fields. It hands a model a labelled batch and gets back
//! the loss to backpropagate and the outputs the metrics read; strategies speak about parameter
//! paths (see [`crate::params`]); the `frozen` strategy splits the model at [`TaskModel::features`]
//! / [`TaskModel::head`]. [`kiln_model::BertClassifier`] is the first implementation; an app's own
//! burn module (another head on kiln's encoder, or a model of its own) implements the trait and
//! trains through the same [`crate::Trainer::fit`].

use std::sync::Arc;

use burn::module::Module;
use burn::prelude::*;

use kiln_data::{Targets, TokenBatch};
use kiln_loss::{DistillationLoss, Loss};
use kiln_model::{BertClassifier, BertTokenClassifier, SequenceClassifier, TokenClassifier};

/// A labelled batch as the trainer hands it to a model: the tokens (padded, or packed several
/// examples to a row), one target per example, and which training examples they are (row `i`
/// is example `examples[i]` of the training set).
#[derive(Debug, Clone)]
pub struct TaskBatch {
    pub tokens: TokenBatch,
    /// Class indices `[examples]`, or standardised values `[examples, 1]`.
    pub targets: Targets,
    pub examples: Vec<usize>,
}

impl TaskBatch {
    pub fn to_device(self, device: &Device) -> Self {
        Self {
            tokens: self.tokens.to_device(device),
            targets: self.targets.to_device(device),
            examples: self.examples,
        }
    }
}

/// What one forward pass on a labelled batch gives back.
#[derive(Debug, Clone)]
pub struct TaskOutput {
    /// The batch's mean loss, to backpropagate.
    pub loss: Tensor<1>,
    /// `[examples, outputs]` (or `[examples × seq, outputs]` for a [`TaskModel::per_token`]
    /// model): what the metrics read (predictions are the row-wise argmax).
    pub logits: Tensor<2>,
}

/// A model the [`crate::Trainer`] can fine-tune and evaluate.
///
/// A model is a feature extractor and a head: [`features`](Self::features) turns a batch into one
/// row per example, [`head`](Self::head) turns those rows into outputs. The `frozen` strategy
/// computes the features once and trains the head alone; every other strategy runs
/// [`step`](Self::step), whose default is the run's [`Objective`] applied to the outputs.
/// Override `step` for a loss of your own.
///
/// A token model ([`per_token`](Self::per_token)) gives a row per token instead of per example:
/// `features` and `outputs` are `[rows × seq, …]`, row `r · seq + p` being the piece at row
/// `r`, position `p` of the batch (padded: row `r` is example `r`; packed: several examples
/// share a row), and the targets are [`Targets::Tags`] of the same layout.
pub trait TaskModel: Module + 'static {
    /// Outputs per example (a classifier's number of labels; 1 for a regression head; a
    /// token model's number of tags).
    fn num_outputs(&self) -> usize;

    /// Whether the model's rows are tokens (token classification) rather than examples.
    fn per_token(&self) -> bool {
        false
    }

    /// Whether [`features`](Self::features) takes packed batches (several examples to a row,
    /// `tokens.packing` set). A model that says no gets the same batches padded.
    fn accepts_packed(&self) -> bool {
        false
    }

    /// One row per example of `tokens`: `[examples, features]`.
    fn features(&self, tokens: TokenBatch) -> Tensor<2>;

    /// Outputs from features: `[examples, features]` → `[examples, outputs]`.
    fn head(&self, features: Tensor<2>) -> Tensor<2>;

    /// Outputs of a batch: `[examples, outputs]`.
    fn outputs(&self, tokens: TokenBatch) -> Tensor<2> {
        self.head(self.features(tokens))
    }

    /// The loss and outputs of a labelled batch.
    fn step(&self, batch: TaskBatch, objective: &Objective) -> TaskOutput {
        let logits = self.outputs(batch.tokens);
        let loss = objective.loss(logits.clone(), batch.targets, &batch.examples);
        TaskOutput { loss, logits }
    }
}

impl TaskModel for BertClassifier {
    fn num_outputs(&self) -> usize {
        self.num_labels()
    }

    fn accepts_packed(&self) -> bool {
        true
    }

    fn features(&self, tokens: TokenBatch) -> Tensor<2> {
        self.features_of(tokens)
    }

    fn head(&self, features: Tensor<2>) -> Tensor<2> {
        BertClassifier::head(self, features)
    }
}

impl TaskModel for BertTokenClassifier {
    fn num_outputs(&self) -> usize {
        self.num_labels()
    }

    fn per_token(&self) -> bool {
        true
    }

    /// Packed batches put several sentences in a row; their targets are laid out the same
    /// way (`Targets::tags_at`), so the loss needs no unpacking.
    fn accepts_packed(&self) -> bool {
        true
    }

    /// Every token's last hidden state: `[rows × seq, hidden]`.
    fn features(&self, tokens: TokenBatch) -> Tensor<2> {
        self.token_features_of(tokens)
    }

    fn head(&self, features: Tensor<2>) -> Tensor<2> {
        BertTokenClassifier::head(self, features)
    }
}

impl TaskModel for SequenceClassifier {
    fn num_outputs(&self) -> usize {
        self.num_labels()
    }

    fn accepts_packed(&self) -> bool {
        SequenceClassifier::accepts_packed(self)
    }

    fn features(&self, tokens: TokenBatch) -> Tensor<2> {
        self.features_of(tokens)
    }

    fn head(&self, features: Tensor<2>) -> Tensor<2> {
        SequenceClassifier::head(self, features)
    }
}

impl TaskModel for TokenClassifier {
    fn num_outputs(&self) -> usize {
        self.num_labels()
    }

    fn per_token(&self) -> bool {
        true
    }

    fn accepts_packed(&self) -> bool {
        TokenClassifier::accepts_packed(self)
    }

    fn features(&self, tokens: TokenBatch) -> Tensor<2> {
        self.token_features_of(tokens)
    }

    fn head(&self, features: Tensor<2>) -> Tensor<2> {
        TokenClassifier::head(self, features)
    }
}

/// The loss of outputs against targets, by kind of target: cross-entropy (label smoothing,
/// class weights) for classes, MSE — or Huber with `huber_delta` — for standardised values,
/// binary cross-entropy on logits (optionally `pos_weight` per label) for label sets
/// (transformers' three `problem_type`s), cross-entropy over the labelled pieces for tags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskLoss {
    pub classes: Loss,
    pub huber_delta: Option<f64>,
    pub pos_weight: Option<Vec<f32>>,
}

impl From<Loss> for TaskLoss {
    fn from(classes: Loss) -> Self {
        Self {
            classes,
            ..Self::default()
        }
    }
}

impl TaskLoss {
    /// The mean loss of `outputs` (`[examples, outputs]`) against `targets`. Returns `[1]`.
    pub fn forward(&self, outputs: Tensor<2>, targets: Targets) -> Tensor<1> {
        match targets {
            Targets::Classes(classes) => self.classes.forward(outputs, classes),
            Targets::Values(values) => {
                // In f32 whatever the model's precision, as for the cross-entropy.
                let outputs = outputs.cast(burn::tensor::FloatDType::F32);
                let values = values.cast(burn::tensor::FloatDType::F32);
                match self.huber_delta {
                    Some(delta) => kiln_loss::huber(outputs, values, delta),
                    None => kiln_loss::mse(outputs, values),
                }
            }
            Targets::Labels(hot) => kiln_loss::bce_with_logits(
                outputs.cast(burn::tensor::FloatDType::F32),
                hot.cast(burn::tensor::FloatDType::F32),
                self.pos_weight.as_deref(),
            ),
            // A row per piece, as the token model's output rows are.
            Targets::Tags(tags) => kiln_loss::cross_entropy_ignoring(
                outputs.cast(burn::tensor::FloatDType::F32),
                tags.flatten::<1>(0, 1),
            ),
        }
    }
}

/// The loss a run trains on (from [`crate::TrainConfig`]): the task's loss ([`TaskLoss`]), or
/// knowledge distillation against a teacher's logits for every training example.
#[derive(Debug, Clone)]
pub struct Objective {
    loss: TaskLoss,
    distillation: Option<(DistillationLoss, Arc<Vec<f32>>)>,
}

impl Objective {
    pub fn new(loss: impl Into<TaskLoss>) -> Self {
        Self {
            loss: loss.into(),
            distillation: None,
        }
    }

    /// Trains against `teacher_logits`, row-major `[training examples, outputs]`.
    pub fn with_teacher(mut self, loss: DistillationLoss, teacher_logits: Arc<Vec<f32>>) -> Self {
        self.distillation = Some((loss, teacher_logits));
        self
    }

    /// The loss the run validates with (the task's loss, as Hugging Face reports it).
    pub fn validation_loss(&self) -> &TaskLoss {
        &self.loss
    }

    /// The mean loss of `logits` (rows are the training examples `examples`) against `targets`.
    pub fn loss(&self, logits: Tensor<2>, targets: Targets, examples: &[usize]) -> Tensor<1> {
        match (&self.distillation, targets) {
            (Some((kd, teacher)), Targets::Classes(targets)) => {
                let n = logits.dims()[1];
                let mut values = Vec::with_capacity(examples.len() * n);
                for &i in examples {
                    values.extend_from_slice(&teacher[i * n..(i + 1) * n]);
                }
                let teacher = Tensor::<2>::from_data(
                    TensorData::new(values, [examples.len(), n]),
                    &logits.device(),
                );
                kd.forward(logits.cast(burn::tensor::FloatDType::F32), teacher, targets)
            }
            // Distillation is refused for value targets before training (`check_data`).
            (_, targets) => self.loss.forward(logits, targets),
        }
    }
}
