//! kiln-train: the fine-tuning engine — strategies (frozen, head, top-k, gradual, LLRD, LoRA,
//! full), optimizers and schedules, global-norm clipping, accumulation, the epoch loop with
//! validation, early stopping, checkpoints and resume, and metrics.
//!
//! Not written yet: it arrives with the training issue (#4). It will depend on kiln-data,
//! kiln-model and kiln-loss, never the other way round.
