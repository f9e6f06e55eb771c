//! The [`Trainer`]: a fine-tuning job built once from a [`TrainConfig`] (plus devices, a
//! checkpoint directory, a run to resume, an observer) whose [`fit`](Trainer::fit) trains any
//! [`TaskModel`] on [`TrainData`]. The loop itself is [`crate::run`]; the recipe's types are
//! [`crate::config`]'s, re-exported here.

use std::path::PathBuf;

use burn::prelude::*;

use crate::error::TrainError;
use crate::evaluate::{model_device, Evaluator};
use crate::task::TaskModel;

pub use crate::config::{Faults, SelectionMetric, TrainConfig, TrainData};
pub use crate::observer::{Observer, Silent};
pub use crate::run::TrainOutcome;

/// A fine-tuning job: `Trainer::new(config)`, then any of `.devices(..)`, `.checkpoints(dir)`,
/// `.resume(dir)`, `.observer(..)`, then [`fit`](Self::fit).
///
/// ```no_run
/// # use kiln_train::{Trainer, TrainConfig, TrainData};
/// # fn demo(model: kiln_model::BertClassifier, data: TrainData) -> Result<(), kiln_train::TrainError> {
/// let outcome = Trainer::new(TrainConfig { lr: 2e-5, ..TrainConfig::default() })
///     .checkpoints("runs/sentiment/checkpoints")
///     .fit(model, &data)?;
/// let metrics = Trainer::new(TrainConfig::default())
///     .evaluator()
///     .evaluate(&outcome.model, &data.valid, &data.labels);
/// # Ok(()) }
/// ```
pub struct Trainer<'a> {
    config: TrainConfig,
    devices: Vec<Device>,
    checkpoints: Option<PathBuf>,
    resume: Option<PathBuf>,
    observer: Option<&'a mut dyn Observer>,
    faults: Faults,
}

impl<'a> Trainer<'a> {
    pub fn new(config: TrainConfig) -> Self {
        Self {
            config,
            devices: Vec::new(),
            checkpoints: None,
            resume: None,
            observer: None,
            faults: Faults::default(),
        }
    }

    /// Trains on `device` (default: the device the model is on).
    pub fn device(self, device: &Device) -> Self {
        self.devices(std::slice::from_ref(device))
    }

    /// Data-parallel over `devices` (see [`crate::parallel`]): the model, the optimizer,
    /// validation and checkpoints live on the first; every batch is split over all of them.
    pub fn devices(mut self, devices: &[Device]) -> Self {
        self.devices = devices.to_vec();
        self
    }

    /// Writes a resume checkpoint into `dir` at every epoch end (and every
    /// `save_every` steps).
    pub fn checkpoints(mut self, dir: impl Into<PathBuf>) -> Self {
        self.checkpoints = Some(dir.into());
        self
    }

    /// Continues the run whose checkpoints are in `dir` (the newest intact one).
    pub fn resume(mut self, dir: impl Into<PathBuf>) -> Self {
        self.resume = Some(dir.into());
        self
    }

    /// Reports the run's progress to `observer`.
    pub fn observer(mut self, observer: &'a mut dyn Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    #[doc(hidden)]
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// An [`Evaluator`] with this run's evaluation batch size and loss.
    pub fn evaluator(&self) -> Evaluator {
        Evaluator::new()
            .batch_size(self.config.eval_batch_size)
            .loss(self.config.loss())
    }

    /// Fine-tunes `model` on `data` (moved to the first device's autodiff twin) and returns the
    /// best model in inference mode with the run's history.
    pub fn fit<M: TaskModel>(
        self,
        model: M,
        data: &TrainData,
    ) -> Result<TrainOutcome<M>, TrainError> {
        let devices = match self.devices.is_empty() {
            true => vec![model_device(&model)],
            false => self.devices,
        };
        let mut silent = Silent;
        let observer: &mut dyn Observer = match self.observer {
            Some(o) => o,
            None => &mut silent,
        };
        crate::run::fit(
            model,
            data,
            &crate::run::Job {
                config: &self.config,
                devices: &devices,
                checkpoint_dir: self.checkpoints.as_deref(),
                resume: self.resume.as_deref(),
                faults: &self.faults,
            },
            observer,
        )
    }
}
