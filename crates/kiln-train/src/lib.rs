//! kiln-train: the fine-tuning engine.
//!
//! - [`strategy`]: full, head, frozen (cached features), top-k, gradual unfreezing, layer-wise
//!   learning-rate decay, LoRA — each a per-parameter plan printed before training.
//! - [`optim`]: AdamW / Adam / SGD from burn-optim with PyTorch defaults and no decay on biases
//!   and LayerNorm; per-group learning rates.
//! - [`schedule`]: constant / linear / cosine with warmup, HF's formulas.
//! - [`clip`]: global-norm gradient clipping.
//! - [`trainer`]: the loop (accumulation, validation, early stopping, best model, checkpoints,
//!   per-phase timing).
//! - [`parallel`]: one micro-batch split over several devices (data parallelism).
//! - [`metrics`]: accuracy, per-class precision / recall / F1, macro-F1, confusion matrix.
//! - [`history`]: the run's step, epoch and evaluation records (saved in checkpoints, drawn
//!   in the report).
//! - [`report`]: the self-contained HTML report.
//! - [`checkpoint`]: epoch checkpoints and resume.
//! - [`distill`]: `Distiller`, knowledge distillation from a teacher into a student.
//!
//! Depends on kiln-data, kiln-model and kiln-loss, never the other way round.

pub mod checkpoint;
pub mod clip;
pub mod distill;
pub mod error;
pub mod fused_adamw;
pub mod history;
pub mod metrics;
pub mod optim;
pub mod parallel;
pub mod params;
pub mod report;
pub mod schedule;
pub mod strategy;
pub mod trainer;

pub use distill::Distiller;
pub use error::TrainError;
pub use metrics::{ClassificationMetrics, ConfusionMatrix};
pub use strategy::{Plan, Strategy, StrategyConfig, StrategyKind};
pub use trainer::{
    evaluate, predict_logits, train, train_on_devices, Observer, SelectionMetric, Silent,
    TrainConfig, TrainData, TrainOutcome, TrainStats,
};
