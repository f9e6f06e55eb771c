//! `Distiller`: knowledge distillation for an app that brings its own teacher and student
//! (any two [`TaskModel`]s with the same labels and tokenizer).
//!
//! The teacher runs once over the training set (in inference mode); the student then trains on
//! (1−α)·CE(y, z_s) + α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) with the usual loop.

use std::sync::Arc;

use kiln_loss::DistillationLoss;

use crate::error::TrainError;
use crate::evaluate::Evaluator;
use crate::task::TaskModel;
use crate::trainer::{TrainConfig, TrainData, TrainOutcome, Trainer};

#[derive(Debug, Clone)]
pub struct Distiller {
    pub loss: DistillationLoss,
    /// The student's training recipe (its `distillation` field is set from `loss`).
    pub config: TrainConfig,
}

impl Distiller {
    pub fn new(loss: DistillationLoss, config: TrainConfig) -> Self {
        Self { loss, config }
    }

    /// The teacher's logits over `data.train`, row-major `[examples, labels]` (the teacher in
    /// inference mode).
    pub fn teacher_logits<T: TaskModel>(&self, teacher: &T, data: &TrainData) -> Vec<f32> {
        Evaluator::new()
            .batch_size(self.config.eval_batch_size)
            .pad_id(data.pad_id)
            .outputs(teacher, &data.train)
    }

    /// The student's [`Trainer`]: the recipe with the distillation loss set. Add devices,
    /// checkpoints or an observer, then [`fit`](Trainer::fit) the student on
    /// [`with_teacher`](Self::with_teacher)'s data.
    pub fn trainer<'a>(&self) -> Trainer<'a> {
        Trainer::new(TrainConfig {
            distillation: Some(self.loss.clone()),
            ..self.config.clone()
        })
    }

    /// `data` with the teacher's logits (computed unless `data` already carries them).
    pub fn with_teacher<T: TaskModel>(
        &self,
        teacher: &T,
        data: &TrainData,
    ) -> Result<TrainData, TrainError> {
        if teacher.num_outputs() != data.labels.len() {
            return Err(TrainError::invalid(
                "labels",
                format!(
                    "the teacher has {} outputs but the data has {} labels",
                    teacher.num_outputs(),
                    data.labels.len()
                ),
            ));
        }
        let mut data = data.clone();
        if data.teacher_logits.is_none() {
            data.teacher_logits = Some(Arc::new(self.teacher_logits(teacher, &data)));
        }
        Ok(data)
    }

    /// Trains `student` against `teacher`: [`with_teacher`](Self::with_teacher), then
    /// [`trainer`](Self::trainer)'s `fit`.
    pub fn distill<S: TaskModel, T: TaskModel>(
        &self,
        student: S,
        teacher: &T,
        data: &TrainData,
    ) -> Result<TrainOutcome<S>, TrainError> {
        let data = self.with_teacher(teacher, data)?;
        self.trainer().fit(student, &data)
    }
}
