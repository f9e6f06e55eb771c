//! What a run reports as it goes: the [`Observer`] a caller hands the [`crate::Trainer`].

use crate::history::{EpochPoint, EvalPoint, StepPoint};
use crate::strategy::Plan;

/// What a run reports as it goes (the CLI draws a progress bar and writes log.jsonl).
pub trait Observer {
    fn plan(&mut self, _epoch: usize, _plan: &Plan) {}
    fn epoch_start(&mut self, _epoch: usize, _optimizer_steps: usize) {}
    fn step(&mut self, _point: &StepPoint, _samples_per_second: f64) {}
    /// After every evaluation on the validation set (mid-epoch and at epoch ends); `is_best`
    /// when it beat every earlier one and its model is now the one kept.
    fn validation(&mut self, _point: &EvalPoint, _is_best: bool) {}
    fn epoch_end(&mut self, _point: &EpochPoint, _is_best: bool) {}
    fn message(&mut self, _text: &str) {}
    /// Polled at every optimizer-step boundary: true saves a checkpoint there and ends the run
    /// with `TrainError::Interrupted` (Ctrl-C).
    fn should_stop(&mut self) -> bool {
        false
    }
}

/// An observer that ignores everything (library use and tests).
pub struct Silent;
impl Observer for Silent {}
