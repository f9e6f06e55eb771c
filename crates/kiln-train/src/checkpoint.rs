//! Training checkpoints: model, optimizer state, best model and the loop's state (steps, epoch,
//! history, early-stopping counters), written at each epoch's end into a staging directory that
//! replaces `DIR/last` in one rename, so a crash never leaves a half-written checkpoint.
//!
//! The learning-rate schedule, the batch order and dropout are pure functions of (seed, step),
//! so the step counters are all the "scheduler and RNG state" a resume needs.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};

use kiln_model::BertClassifier;

use crate::error::TrainError;
use crate::report::{EpochPoint, StepPoint};

/// The loop's own state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainState {
    pub epochs_done: usize,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Forward/backward passes taken (seeds dropout).
    pub micro_steps: u64,
    pub examples_seen: u64,
    pub tokens_seen: u64,
    pub train_seconds: f64,
    pub best_score: Option<f64>,
    pub best_epoch: Option<u64>,
    pub epochs_without_improvement: usize,
    pub steps_log: Vec<StepPoint>,
    pub epochs: Vec<EpochPoint>,
}

const MODEL: &str = "model.bpk";
const OPTIMIZER: &str = "optimizer.bpk";
const BEST: &str = "best.bpk";
const STATE: &str = "state.json";

fn err(path: &Path, message: impl ToString) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// The checkpoint directory inside a run's checkpoint root.
pub fn last_dir(root: &Path) -> PathBuf {
    root.join("last")
}

/// Writes a checkpoint to `root/last`, replacing the previous one only once complete.
pub fn save(
    root: &Path,
    model: &BertClassifier,
    optim: &ModuleOptimizer,
    state: &TrainState,
    best: Option<&BertClassifier>,
) -> Result<(), TrainError> {
    std::fs::create_dir_all(root).map_err(|e| err(root, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(root)
        .map_err(|e| err(root, e))?;
    let dir = staging.path();
    model.clone().save_file(dir.join(MODEL)).map_err(|e| err(&dir.join(MODEL), e))?;
    optim.save(dir.join(OPTIMIZER)).map_err(|e| err(&dir.join(OPTIMIZER), e))?;
    if let Some(best) = best {
        best.clone().save_file(dir.join(BEST)).map_err(|e| err(&dir.join(BEST), e))?;
    }
    let json = serde_json::to_vec_pretty(state).map_err(|e| err(&dir.join(STATE), e))?;
    std::fs::write(dir.join(STATE), json).map_err(|e| err(&dir.join(STATE), e))?;
    for entry in std::fs::read_dir(dir).map_err(|e| err(dir, e))? {
        let path = entry.map_err(|e| err(dir, e))?.path();
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| err(&path, e))?;
    }
    let target = last_dir(root);
    let old = root.join(".previous");
    let _ = std::fs::remove_dir_all(&old);
    if target.exists() {
        std::fs::rename(&target, &old).map_err(|e| err(&target, e))?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, &target).map_err(|e| err(&target, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

fn checkpoint_dir(root: &Path) -> PathBuf {
    if root.join(STATE).is_file() {
        root.to_path_buf()
    } else {
        last_dir(root)
    }
}

/// Reads the model, the loop state and the best model from `root/last` (or `root` itself when
/// it is a checkpoint) into `model`, which must be built as in the run that wrote it.
pub fn load_model(
    root: &Path,
    model: BertClassifier,
) -> Result<(BertClassifier, TrainState, Option<BertClassifier>), TrainError> {
    let dir = checkpoint_dir(root);
    let state_path = dir.join(STATE);
    let text = std::fs::read_to_string(&state_path)
        .map_err(|e| err(&state_path, format!("no checkpoint to resume: {e}")))?;
    let state: TrainState = serde_json::from_str(&text).map_err(|e| err(&state_path, e))?;
    let model = model
        .try_load_file(dir.join(MODEL))
        .map_err(|e| err(&dir.join(MODEL), e))?;
    let best = if dir.join(BEST).is_file() {
        Some(
            model
                .clone()
                .try_load_file(dir.join(BEST))
                .map_err(|e| err(&dir.join(BEST), e))?
                .valid(),
        )
    } else {
        None
    };
    Ok((model, state, best))
}

/// Reads the optimizer state; `optim` must have been built for the loaded model.
pub fn load_optimizer(root: &Path, optim: ModuleOptimizer) -> Result<ModuleOptimizer, TrainError> {
    let path = checkpoint_dir(root).join(OPTIMIZER);
    optim.load(&path).map_err(|e| err(&path, e))
}
