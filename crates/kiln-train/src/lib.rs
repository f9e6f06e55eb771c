//! kiln-train: the fine-tuning engine.
//!
//! - [`strategy`]: full, head, frozen (cached features), top-k, gradual unfreezing, layer-wise
//!   learning-rate decay, LoRA — each a per-parameter plan printed before training.
//! - [`optim`]: AdamW / Adam / SGD from burn-optim with PyTorch defaults and no decay on biases
//!   and LayerNorm; per-group learning rates.
//! - [`schedule`]: constant / linear / cosine with warmup, HF's formulas.
//! - [`clip`]: global-norm gradient clipping.
//! - [`l2sp`]: L2-SP, the encoder pulled toward its pretrained weights (`l2_sp`).
//! - [`task`]: [`TaskModel`], what the trainer needs of a model (features, head, a loss
//!   step); [`kiln_model::BertClassifier`] implements it, and so can an app's own module.
//! - [`trainer`]: [`Trainer`], the job a user builds (config, devices, checkpoints, resume,
//!   observer) and `fit`s; [`TrainConfig`], the recipe.
//! - [`run`]: the loop as named steps (micro-step, optimizer step, step end, epoch end,
//!   finish): accumulation, validation, early stopping, best model, checkpoints, per-phase
//!   timing.
//! - [`evaluate`]: [`Evaluator`], outputs and metrics of a model on examples.
//! - [`parallel`]: one micro-batch split over several devices (data parallelism).
//! - [`metrics`], [`history`]: kiln-metrics' (accuracy, per-class precision / recall / F1,
//!   macro-F1, confusion matrix; the loop's state and the run's step, epoch, evaluation and
//!   phase records, saved in resume checkpoints and drawn in the report).
//! - [`resume`]: resume checkpoints (model, optimizer, loop state) and finding the newest.
//! - [`distill`]: `Distiller`, knowledge distillation from a teacher into a student.
//!
//! Depends on kiln-data, kiln-model, kiln-loss and kiln-metrics, never the other way round.

pub use kiln_metrics::{history, metrics};

pub mod clip;
pub mod config;
pub mod distill;
pub mod error;
pub mod evaluate;
pub mod fused_adamw;
pub mod l2sp;
pub mod observer;
pub mod optim;
pub mod parallel;
pub mod params;
pub mod resume;
pub mod run;
pub mod schedule;
pub mod strategy;
pub mod task;
pub mod trainer;

pub use distill::Distiller;
pub use error::TrainError;
pub use evaluate::{Evaluator, InferenceSpeed};
pub use history::TrainStats;
pub use kiln_metrics::{MultiLabelMetrics, RegressionMetrics, TaskMetrics, TokenMetrics};
pub use metrics::{ClassificationMetrics, ConfusionMatrix};
pub use strategy::{Plan, Strategy, StrategyConfig, StrategyKind};
pub use task::{Objective, TaskBatch, TaskLoss, TaskModel, TaskOutput};
pub use trainer::{
    Observer, SelectionMetric, Silent, TrainConfig, TrainData, TrainOutcome, Trainer,
};
