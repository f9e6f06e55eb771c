//! `Distiller`: knowledge distillation for an app that brings its own teacher and student
//! (any two `BertClassifier`s with the same labels and tokenizer).
//!
//! The teacher runs once over the training set (in inference mode); the student then trains on
//! (1−α)·CE(y, z_s) + α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) with the usual loop.

use std::path::Path;
use std::sync::Arc;

use burn::prelude::*;
use kiln_loss::DistillationLoss;
use kiln_model::BertClassifier;

use crate::error::TrainError;
use crate::trainer::{predict_logits, train, Observer, TrainConfig, TrainData, TrainOutcome};

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

    /// The teacher's logits over `data.train`, row-major `[examples, labels]`.
    pub fn teacher_logits(
        &self,
        teacher: &BertClassifier,
        data: &TrainData,
        device: &Device,
    ) -> Vec<f32> {
        predict_logits(
            teacher,
            &data.train,
            self.config.eval_batch_size,
            data.pad_id,
            device,
        )
    }

    /// Trains `student` against `teacher` (computing the teacher's logits first unless `data`
    /// already carries them).
    pub fn distill(
        &self,
        student: BertClassifier,
        teacher: &BertClassifier,
        data: &TrainData,
        device: &Device,
        checkpoint_dir: Option<&Path>,
        observer: &mut dyn Observer,
    ) -> Result<TrainOutcome, TrainError> {
        if teacher.num_labels() != data.labels.len() {
            return Err(TrainError::Config(format!(
                "the teacher has {} outputs but the data has {} labels",
                teacher.num_labels(),
                data.labels.len()
            )));
        }
        let mut data = data.clone();
        if data.teacher_logits.is_none() {
            data.teacher_logits = Some(Arc::new(self.teacher_logits(teacher, &data, device)));
        }
        let config = TrainConfig {
            distillation: Some(self.loss.clone()),
            ..self.config.clone()
        };
        train(
            student,
            &data,
            &config,
            device,
            checkpoint_dir,
            None,
            observer,
        )
    }
}
