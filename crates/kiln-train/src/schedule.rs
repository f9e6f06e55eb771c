//! Learning-rate schedules, stepped once per optimizer step, with HF Trainer's exact formulas
//! (`get_{constant,linear,cosine}_schedule_with_warmup`): during warmup the rate rises linearly
//! from 0 (so the very first step uses lr 0, as in transformers), then stays, decays linearly to
//! 0, or follows half a cosine to 0.
//!
//! A schedule is a pure function of the step, so resuming needs only the step count.

use serde::{Deserialize, Serialize};

/// The learning rate after warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// Held at the peak.
    Constant,
    /// Down to 0 in a straight line.
    #[default]
    Linear,
    /// Down to 0 along half a cosine.
    Cosine,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub base_lr: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
}

impl Schedule {
    /// Warmup as a share of the total steps (HF: `ceil(ratio × total)`), or as a step count.
    pub fn new(
        kind: ScheduleKind,
        base_lr: f64,
        total_steps: usize,
        warmup_ratio: f64,
        warmup_steps: Option<usize>,
    ) -> Self {
        let warmup =
            warmup_steps.unwrap_or_else(|| (warmup_ratio * total_steps as f64).ceil() as usize);
        Self {
            kind,
            base_lr,
            warmup_steps: warmup,
            total_steps,
        }
    }

    /// The multiplier of the base rate at optimizer step `step` (0-based).
    pub fn factor(&self, step: usize) -> f64 {
        let (s, w, t) = (
            step as f64,
            self.warmup_steps as f64,
            self.total_steps as f64,
        );
        if step < self.warmup_steps {
            return s / w.max(1.0);
        }
        match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Linear => ((t - s) / (t - w).max(1.0)).max(0.0),
            ScheduleKind::Cosine => {
                let progress = (s - w) / (t - w).max(1.0);
                (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
            }
        }
    }

    pub fn lr(&self, step: usize) -> f64 {
        self.base_lr * self.factor(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_with_warmup_matches_transformers() {
        // transformers.get_linear_schedule_with_warmup(opt, 2, 10): lambdas for steps 0..11.
        let s = Schedule::new(ScheduleKind::Linear, 1.0, 10, 0.0, Some(2));
        let want = [
            0.0, 0.5, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0.0, 0.0,
        ];
        for (step, w) in want.iter().enumerate() {
            assert!(
                (s.factor(step) - w).abs() < 1e-12,
                "step {step}: {} vs {w}",
                s.factor(step)
            );
        }
    }

    #[test]
    fn warmup_ratio_rounds_up_like_hf() {
        let s = Schedule::new(ScheduleKind::Linear, 5e-5, 375, 0.1, None);
        assert_eq!(s.warmup_steps, 38);
    }

    #[test]
    fn cosine_and_constant() {
        let s = Schedule::new(ScheduleKind::Cosine, 2.0, 10, 0.0, Some(0));
        assert!((s.lr(0) - 2.0).abs() < 1e-12);
        assert!((s.lr(5) - 1.0).abs() < 1e-12);
        assert!(s.lr(10).abs() < 1e-12);
        let c = Schedule::new(ScheduleKind::Constant, 3.0, 10, 0.0, Some(4));
        assert_eq!(c.lr(2), 1.5);
        assert_eq!(c.lr(9), 3.0);
    }
}
