//! Optimizers (burn-optim; AdamW's CPU step fused, `fused_adamw`) with PyTorch's defaults and
//! HF Trainer's parameter groups, and the per-group learning rates of one step.

use burn::module::ParamGroup;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::optim::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::fused_adamw::FusedAdamW;
use crate::strategy::Plan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam with decoupled weight decay (PyTorch's AdamW).
    #[default]
    #[cfg_attr(feature = "clap", value(name = "adamw"))]
    AdamW,
    Adam,
    /// With momentum (and optionally Nesterov's).
    Sgd,
}

/// Optimizer settings; defaults are PyTorch's (AdamW: β 0.9/0.999, ε 1e-8) with HF Trainer's
/// weight decay habit made explicit (0.01, never on biases or LayerNorm).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(default, rename_all = "kebab-case")]
pub struct OptimizerSpec {
    /// The optimizer.
    #[cfg_attr(
        feature = "clap",
        arg(id = "optimizer", long = "optimizer", value_enum)
    )]
    #[serde(rename = "optimizer")]
    pub kind: OptimizerKind,
    /// Decoupled weight decay (never on biases and LayerNorm).
    #[cfg_attr(feature = "clap", arg(long))]
    pub weight_decay: f64,
    /// AdamW's β₁.
    #[cfg_attr(feature = "clap", arg(long))]
    pub adam_beta1: f64,
    /// AdamW's β₂.
    #[cfg_attr(feature = "clap", arg(long))]
    pub adam_beta2: f64,
    /// AdamW's ε.
    #[cfg_attr(feature = "clap", arg(long))]
    pub adam_epsilon: f64,
    /// SGD momentum (dampening 0, as PyTorch).
    #[cfg_attr(feature = "clap", arg(long))]
    pub momentum: f64,
    /// SGD with Nesterov momentum.
    #[cfg_attr(feature = "clap", arg(long, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set))]
    pub nesterov: bool,
}

impl Default for OptimizerSpec {
    fn default() -> Self {
        Self {
            kind: OptimizerKind::AdamW,
            weight_decay: 0.01,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            momentum: 0.9,
            nesterov: false,
        }
    }
}

impl OptimizerSpec {
    /// Checks every option's range; the error names the field.
    pub fn validate(&self) -> Result<(), TrainError> {
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(TrainError::invalid(
                "weight_decay",
                format!("must be ≥ 0, got {}", self.weight_decay),
            ));
        }
        for (name, b) in [
            ("adam_beta1", self.adam_beta1),
            ("adam_beta2", self.adam_beta2),
        ] {
            if !(0.0..1.0).contains(&b) {
                return Err(TrainError::invalid(
                    name,
                    format!("must be in [0, 1), got {b}"),
                ));
            }
        }
        if self.adam_epsilon.is_nan() || self.adam_epsilon <= 0.0 {
            return Err(TrainError::invalid(
                "adam_epsilon",
                format!("must be positive, got {}", self.adam_epsilon),
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(TrainError::invalid(
                "momentum",
                format!("must be in [0, 1), got {}", self.momentum),
            ));
        }
        Ok(())
    }

    /// The optimizer for `plan`: decaying parameters in the default group, biases and LayerNorm
    /// parameters in a second group without decay.
    pub fn build(&self, plan: &Plan) -> ModuleOptimizer {
        // By path, not id: paths survive a checkpoint round trip whatever ids the loaded
        // parameters carry.
        let no_decay: Vec<String> = plan
            .params
            .iter()
            .filter(|p| !p.decay)
            .map(|p| p.info.path.clone())
            .collect();
        let group = ParamGroup::from_paths(no_decay);
        match self.kind {
            OptimizerKind::AdamW => {
                let adamw = |wd: f64| {
                    FusedAdamW::new(
                        self.adam_beta1 as f32,
                        self.adam_beta2 as f32,
                        self.adam_epsilon as f32,
                        wd as f32,
                    )
                };
                ModuleOptimizer::from(adamw(self.weight_decay)).with_group(group, adamw(0.0), None)
            }
            OptimizerKind::Adam => {
                let config = |wd: f64| {
                    AdamConfig::new()
                        .with_beta_1(self.adam_beta1 as f32)
                        .with_beta_2(self.adam_beta2 as f32)
                        .with_epsilon(self.adam_epsilon as f32)
                        .with_weight_decay((wd > 0.0).then(|| WeightDecayConfig::new(wd as f32)))
                };
                config(self.weight_decay)
                    .init()
                    .with_group(group, config(0.0).build(), None)
            }
            OptimizerKind::Sgd => {
                let momentum = (self.momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(self.momentum)
                        .with_dampening(0.0)
                        .with_nesterov(self.nesterov)
                });
                let config = |wd: f64| {
                    SgdConfig::new()
                        .with_momentum(momentum.clone())
                        .with_weight_decay((wd > 0.0).then(|| WeightDecayConfig::new(wd as f32)))
                };
                config(self.weight_decay)
                    .init()
                    .with_group(group, config(0.0).build(), None)
            }
        }
    }
}

/// A scheduler that always answers the same rate: burn builds a per-group
/// `ModuleLearningRate` only from schedulers, and kiln's schedule is a pure function of the step.
#[derive(Clone)]
struct FixedLr(f64);

impl LrScheduler for FixedLr {
    fn step(&mut self) -> f64 {
        self.0
    }
    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new()
    }
    fn load_record(&mut self, _record: LrSchedulerRecord) {}
}

/// The plan's parameter groups whose rate differs from the base rate (layer-wise decay), built
/// once per plan.
pub fn lr_groups(plan: &Plan) -> Vec<(f64, ParamGroup)> {
    plan.lr_groups()
        .into_iter()
        .filter(|(mult, _)| (mult - 1.0).abs() > 1e-15)
        .map(|(mult, paths)| (mult, ParamGroup::from_paths(paths)))
        .collect()
}

/// Learning rates for one step: `lr`, times each group's multiplier.
pub fn module_lr(groups: &[(f64, ParamGroup)], lr: f64) -> ModuleLearningRate {
    let mut scheduler = ModuleLrScheduler::new(FixedLr(lr));
    for (mult, group) in groups {
        scheduler = scheduler.with_group(group.clone(), FixedLr(lr * mult));
    }
    scheduler.step()
}
