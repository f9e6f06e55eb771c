//! Resume checkpoints: model, optimizer state, best model and the loop's state (steps, epoch,
//! position inside the epoch, history, early-stopping and bad-step counters) — what a run needs
//! to continue exactly. (A model's Hugging Face weights are `kiln_model::pretrained`'s.)
//!
//! Each checkpoint is a directory `ROOT/ckpt-STEP/` assembled under a temporary name, every file
//! fsynced, a `checksums.json` (sha256 of every file) written last, then renamed into place: a
//! crash never leaves a half-written checkpoint under a real name. The newest `keep` are kept.
//! Loading verifies the checksums and falls back to the previous checkpoint, with a message,
//! when the newest is damaged.
//!
//! The learning-rate schedule, the batch order and dropout are pure functions of (seed, step),
//! so the step counters are all the "scheduler and RNG state" a resume needs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use kiln_model::files::{sha256_file, staging_dir, swap_dir};

use crate::error::TrainError;
pub use crate::history::TrainState;

const MODEL: &str = "model.bpk";
const OPTIMIZER: &str = "optimizer.bpk";
const BEST: &str = "best.bpk";
const STATE: &str = "state.json";
const CHECKSUMS: &str = "checksums.json";
const PREFIX: &str = "ckpt-";

fn err(path: &Path, message: impl ToString) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

fn sha256(path: &Path) -> Result<String, TrainError> {
    sha256_file(path).map_err(|e| err(path, e))
}

/// Checkpoint directories under `root`, newest first.
pub fn list(root: &Path) -> Vec<PathBuf> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix(PREFIX)?.parse::<u64>().ok()?;
            Some((step, e.path()))
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found.into_iter().map(|(_, p)| p).collect()
}

/// Where the best model so far is. A run with checkpoints keeps it on disk, as Hugging Face's
/// Trainer does: a copy in memory would hold a second set of weights (91 MB for MiniLM) through
/// every later epoch.
#[derive(Debug, Clone, Default)]
pub enum Best<M> {
    /// No epoch has been scored yet.
    #[default]
    None,
    /// The model being trained, as it is now (until its next step).
    Current,
    /// A copy in memory (runs without a checkpoint directory).
    Memory(Box<M>),
    /// The `best.bpk` of a checkpoint.
    File(PathBuf),
}

impl<M: Module> Best<M> {
    /// The best model, for inference: `model` is the one being trained.
    pub fn resolve(self, model: &M) -> Result<M, TrainError> {
        match self {
            Best::None | Best::Current => Ok(model.valid()),
            Best::Memory(best) => Ok(*best),
            Best::File(path) => Ok(model
                .clone()
                .try_load_file(&path)
                .map_err(|e| err(&path, e))?
                .valid()),
        }
    }

    /// After a checkpoint was written to `dir`: the best model is in its `best.bpk` (the model
    /// being trained moves on, and older checkpoints get pruned).
    pub fn saved_in(self, dir: &Path) -> Self {
        match self {
            Best::Current | Best::File(_) => Best::File(dir.join(BEST)),
            other => other,
        }
    }
}

/// Writes a checkpoint for `state.steps` and prunes all but the newest `keep`.
pub fn save<M: Module>(
    root: &Path,
    model: &M,
    optim: &ModuleOptimizer,
    state: &TrainState,
    best: &Best<M>,
    keep: usize,
) -> Result<PathBuf, TrainError> {
    std::fs::create_dir_all(root).map_err(|e| err(root, e))?;
    let target = root.join(format!("{PREFIX}{:010}", state.steps));
    // Errors name the checkpoint being written and the file: the staging directory they
    // happen in is removed on the way out, and the earlier checkpoints stay as they were.
    let writing =
        |name: &str, e: &dyn std::fmt::Display| err(&target, format!("writing {name}: {e}"));
    // Made through kiln-model's helper so that the renamed checkpoint takes the umask.
    let staging = staging_dir(root, ".staging-").map_err(|e| err(root, e))?;
    let dir = staging.path();
    model
        .clone()
        .save_file(dir.join(MODEL))
        .map_err(|e| writing(MODEL, &e))?;
    optim
        .save(dir.join(OPTIMIZER))
        .map_err(|e| writing(OPTIMIZER, &e))?;
    match best {
        Best::None => {}
        Best::Current => {
            std::fs::copy(dir.join(MODEL), dir.join(BEST)).map_err(|e| writing(BEST, &e))?;
        }
        Best::Memory(best) => (**best)
            .clone()
            .save_file(dir.join(BEST))
            .map_err(|e| writing(BEST, &e))?,
        // Copied before any older checkpoint is pruned (below), so the source still exists.
        Best::File(from) => {
            std::fs::copy(from, dir.join(BEST))
                .map_err(|e| writing(BEST, &format!("copying {}: {e}", from.display())))?;
        }
    }
    let json = serde_json::to_vec_pretty(state).map_err(|e| writing(STATE, &e))?;
    std::fs::write(dir.join(STATE), json).map_err(|e| writing(STATE, &e))?;
    let mut sums = BTreeMap::new();
    for name in [MODEL, OPTIMIZER, BEST, STATE] {
        let path = dir.join(name);
        if path.is_file() {
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| writing(name, &e))?;
            sums.insert(name.to_string(), sha256(&path)?);
        }
    }
    let sums_path = dir.join(CHECKSUMS);
    std::fs::write(
        &sums_path,
        serde_json::to_vec_pretty(&sums).unwrap_or_default(),
    )
    .map_err(|e| writing(CHECKSUMS, &e))?;
    std::fs::File::open(&sums_path)
        .and_then(|f| f.sync_all())
        .map_err(|e| writing(CHECKSUMS, &e))?;

    let staged = staging.keep();
    swap_dir(&staged, &target).map_err(|e| err(&target, e))?;
    // Only now, with the new checkpoint complete, the oldest go.
    for old in list(root).into_iter().skip(keep.max(1)) {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(target)
}

/// Whether every file listed in the checkpoint's checksums is present and unchanged.
pub fn verify(dir: &Path) -> Result<(), String> {
    let text =
        std::fs::read_to_string(dir.join(CHECKSUMS)).map_err(|e| format!("no {CHECKSUMS}: {e}"))?;
    let sums: BTreeMap<String, String> =
        serde_json::from_str(&text).map_err(|e| format!("{CHECKSUMS}: {e}"))?;
    for required in [MODEL, OPTIMIZER, STATE] {
        if !sums.contains_key(required) {
            return Err(format!("{required} is not listed"));
        }
    }
    for (name, want) in &sums {
        let got = sha256(&dir.join(name)).map_err(|e| e.to_string())?;
        if &got != want {
            return Err(format!("{name} does not match its checksum"));
        }
    }
    Ok(())
}

/// The newest intact checkpoint under `root` (or `root` itself when it is one); damaged ones
/// are reported through `warn` and skipped.
pub fn find_latest(root: &Path, warn: &mut dyn FnMut(&str)) -> Result<PathBuf, TrainError> {
    let candidates = if root.join(STATE).is_file() {
        vec![root.to_path_buf()]
    } else {
        list(root)
    };
    if candidates.is_empty() {
        return Err(err(root, "no checkpoint to resume from"));
    }
    for dir in candidates {
        match verify(&dir) {
            Ok(()) => return Ok(dir),
            Err(problem) => warn(&format!(
                "checkpoint {} is damaged ({problem}); trying the previous one",
                dir.display()
            )),
        }
    }
    Err(err(root, "every checkpoint is damaged; cannot resume"))
}

/// Reads the model and the loop state of the checkpoint `dir` into `model`, which must be built
/// as in the run that wrote it, and says where its best model is.
pub fn load_model<M: Module>(dir: &Path, model: M) -> Result<(M, TrainState, Best<M>), TrainError> {
    let state = read_state(dir)?;
    let model = model
        .try_load_file(dir.join(MODEL))
        .map_err(|e| err(&dir.join(MODEL), e))?;
    let best = if dir.join(BEST).is_file() {
        Best::File(dir.join(BEST))
    } else {
        Best::None
    };
    Ok((model, state, best))
}

/// The loop state of the checkpoint `dir` (where it stands: epoch, step, history).
pub fn read_state(dir: &Path) -> Result<TrainState, TrainError> {
    let state_path = dir.join(STATE);
    let text = std::fs::read_to_string(&state_path).map_err(|e| err(&state_path, e))?;
    serde_json::from_str(&text).map_err(|e| err(&state_path, e))
}

/// Reads the optimizer state of the checkpoint `dir`; `optim` must have been built for the
/// loaded model.
pub fn load_optimizer(dir: &Path, optim: ModuleOptimizer) -> Result<ModuleOptimizer, TrainError> {
    let path = dir.join(OPTIMIZER);
    optim.load(&path).map_err(|e| err(&path, e))
}

/// The file that holds a best model found between checkpoints (a mid-epoch evaluation).
const BEST_BETWEEN: &str = "best.bpk";

/// Writes `model` as the best model so far to `ROOT/best.bpk` (staged, then renamed: a crash
/// keeps the previous one whole) and returns its path; the next checkpoint copies it.
pub fn save_best<M: Module>(root: &Path, model: &M) -> Result<PathBuf, TrainError> {
    std::fs::create_dir_all(root).map_err(|e| err(root, e))?;
    let target = root.join(BEST_BETWEEN);
    let staged = root.join(".best-staging.bpk");
    model
        .clone()
        .save_file(&staged)
        .map_err(|e| err(&staged, e))?;
    std::fs::File::open(&staged)
        .and_then(|f| f.sync_all())
        .map_err(|e| err(&staged, e))?;
    std::fs::rename(&staged, &target).map_err(|e| err(&target, e))?;
    Ok(target)
}
