//! Fine-tuning strategies: which parameters train, at which learning rate, and when.
//!
//! Every strategy is expressed the same way — a per-parameter plan (trainable or frozen, learning
//! rate multiplier, weight decay) computed from module paths — and applied with burn's own
//! `set_require_grad_group`; LoRA uses burn's `apply_lora`, merged back with `materialize`.

use std::collections::HashSet;
use std::fmt;

use burn::module::Lora;
use burn::module::{Module, ParamGroup, ParamId};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::params::{
    collect_params, is_head, is_no_decay, is_pooler, layer_of, num_layers, ParamInfo,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum StrategyKind {
    /// Every parameter trains.
    #[default]
    Full,
    /// Only the classifier trains; the backbone (pooler included) is frozen but still runs in
    /// training mode (dropout on), as `requires_grad=False` does in PyTorch.
    Head,
    /// Feature extraction: the backbone's pooled outputs are computed once (eval mode) and
    /// cached; only the classifier trains, on the cache.
    Frozen,
    /// The last `top_k` encoder layers, the pooler and the classifier train.
    #[cfg_attr(feature = "clap", value(alias = "topk"))]
    TopK,
    /// Head (and pooler) first, then one more encoder layer from the top every
    /// `unfreeze_every` epochs, and finally the embeddings (ULMFiT).
    Gradual,
    /// Everything trains; layer l's rate is lr·γ^(depth−l) (embeddings l=0, head l=depth).
    Llrd,
    /// LoRA adapters on the attention and feed-forward weights, plus the pooler and classifier.
    Lora,
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self).ok();
        write!(f, "{}", s.as_ref().and_then(|v| v.as_str()).unwrap_or("?"))
    }
}

/// A strategy with its options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(default, rename_all = "kebab-case")]
pub struct StrategyConfig {
    /// Which parameters train, at which rate, and when.
    #[cfg_attr(feature = "clap", arg(id = "strategy", long = "strategy", value_enum))]
    #[serde(rename = "strategy")]
    pub kind: StrategyKind,
    /// top-k: encoder layers that train.
    #[cfg_attr(feature = "clap", arg(long))]
    pub top_k: usize,
    /// gradual: epochs between unfreezing one more layer.
    #[cfg_attr(feature = "clap", arg(long))]
    pub unfreeze_every: usize,
    /// llrd: per-layer decay γ of the learning rate.
    #[cfg_attr(feature = "clap", arg(long))]
    pub llrd_decay: f64,
    /// lora: rank of the adapters.
    #[cfg_attr(feature = "clap", arg(long))]
    pub lora_rank: usize,
    /// lora: scaling α of the adapters (the update is scaled by α/rank).
    #[cfg_attr(feature = "clap", arg(long))]
    pub lora_alpha: f64,
}

impl Default for StrategyConfig {
    fn default() -> Self {
        Self {
            kind: StrategyKind::Full,
            top_k: 2,
            unfreeze_every: 1,
            llrd_decay: 0.9,
            lora_rank: 8,
            lora_alpha: 16.0,
        }
    }
}

impl StrategyConfig {
    /// Checks every option's range; the error names the field.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.kind == StrategyKind::TopK && self.top_k == 0 {
            return Err(TrainError::invalid("top_k", "must be at least 1"));
        }
        if self.unfreeze_every == 0 {
            return Err(TrainError::invalid("unfreeze_every", "must be at least 1"));
        }
        if !(self.llrd_decay > 0.0 && self.llrd_decay <= 1.0) {
            return Err(TrainError::invalid(
                "llrd_decay",
                format!("must be in (0, 1], got {}", self.llrd_decay),
            ));
        }
        if self.lora_rank == 0 {
            return Err(TrainError::invalid("lora_rank", "must be at least 1"));
        }
        if !(self.lora_alpha.is_finite() && self.lora_alpha > 0.0) {
            return Err(TrainError::invalid(
                "lora_alpha",
                format!("must be positive, got {}", self.lora_alpha),
            ));
        }
        Ok(())
    }
}

/// One parameter's place in the plan.
#[derive(Debug, Clone)]
pub struct ParamPlan {
    pub info: ParamInfo,
    pub trainable: bool,
    pub lr_mult: f64,
    pub decay: bool,
    /// Human-readable group (embeddings, layer 3, pooler, classifier, lora).
    pub group: String,
}

/// The whole plan at one epoch, printable before training.
#[derive(Debug, Clone)]
pub struct Plan {
    pub params: Vec<ParamPlan>,
    pub base_lr: f64,
    pub weight_decay: f64,
}

impl Plan {
    /// With L2-SP (`anchored`), the encoder's parameters take no weight decay: the penalty
    /// toward their pretrained values replaces it; the head keeps its decay.
    pub fn anchored(mut self, anchored: bool) -> Self {
        if anchored {
            for p in &mut self.params {
                if !is_head(&p.info.path) {
                    p.decay = false;
                }
            }
        }
        self
    }

    pub fn trainable_count(&self) -> usize {
        self.params
            .iter()
            .filter(|p| p.trainable)
            .map(|p| p.info.numel)
            .sum()
    }
    pub fn total_count(&self) -> usize {
        self.params.iter().map(|p| p.info.numel).sum()
    }
    pub fn trainable_ids(&self) -> Vec<ParamId> {
        self.params
            .iter()
            .filter(|p| p.trainable)
            .map(|p| p.info.id)
            .collect()
    }
    pub fn frozen_ids(&self) -> Vec<ParamId> {
        self.params
            .iter()
            .filter(|p| !p.trainable)
            .map(|p| p.info.id)
            .collect()
    }
    /// Distinct learning-rate multipliers with the paths of the parameters that use them
    /// (trainable only). Paths, not ids, so that groups survive a checkpoint round trip.
    pub fn lr_groups(&self) -> Vec<(f64, Vec<String>)> {
        let mut groups: Vec<(f64, Vec<String>)> = Vec::new();
        for p in self.params.iter().filter(|p| p.trainable) {
            match groups
                .iter_mut()
                .find(|(m, _)| (*m - p.lr_mult).abs() < 1e-15)
            {
                Some((_, paths)) => paths.push(p.info.path.clone()),
                None => groups.push((p.lr_mult, vec![p.info.path.clone()])),
            }
        }
        groups
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One row per (group, trainable, lr, decay), in model order.
        let mut rows: Vec<(String, bool, f64, bool, usize, usize)> = Vec::new();
        for p in &self.params {
            let lr = if p.trainable {
                self.base_lr * p.lr_mult
            } else {
                0.0
            };
            match rows.iter_mut().find(|r| {
                r.0 == p.group && r.1 == p.trainable && (r.2 - lr).abs() < 1e-18 && r.3 == p.decay
            }) {
                Some(r) => {
                    r.4 += 1;
                    r.5 += p.info.numel;
                }
                None => rows.push((p.group.clone(), p.trainable, lr, p.decay, 1, p.info.numel)),
            }
        }
        writeln!(
            f,
            "  {:<16} {:<9} {:>10} {:>6} {:>7} {:>11}",
            "group", "state", "lr", "wd", "tensors", "params"
        )?;
        for (group, trainable, lr, decay, tensors, numel) in rows {
            let state = if trainable { "trainable" } else { "frozen" };
            let lr = if trainable {
                format!("{lr:.3e}")
            } else {
                "-".into()
            };
            let wd = if trainable && decay {
                format!("{}", self.weight_decay)
            } else {
                "0".into()
            };
            writeln!(
                f,
                "  {group:<16} {state:<9} {lr:>10} {wd:>6} {tensors:>7} {numel:>11}"
            )?;
        }
        let (t, n) = (self.trainable_count(), self.total_count());
        write!(
            f,
            "  trainable parameters: {t} of {n} ({:.2}%)",
            100.0 * t as f64 / n.max(1) as f64
        )
    }
}

/// A strategy bound to a model: knows the LoRA adapters it attached, if any.
#[derive(Debug, Clone)]
pub struct Strategy {
    pub config: StrategyConfig,
    num_layers: usize,
    adapters: HashSet<ParamId>,
}

/// Where a strategy's training inputs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputSource {
    /// Token batches from the data loader, through the whole model.
    Tokens,
    /// The model's features computed once in inference mode; only the head runs in training.
    CachedFeatures,
}

/// Attention and feed-forward weight matrices: where LoRA adapters go.
/// Every dense weight of the encoder layers: BERT's tree (RoBERTa's, ELECTRA's),
/// DistilBERT's (`transformer.layer.N.attention.q_lin`, `ffn.lin1`, …) and ModernBERT's
/// (`model.layers.N.attn.Wqkv`, `mlp.Wi`, …).
const LORA_TARGETS: &str = r"(model\.layers\.\d+\.(attn\.(Wqkv|Wo)|mlp\.(Wi|Wo))|encoder\.layer\.\d+\.(attention\.(self_attention\.(query|key|value|query_proj|key_proj|value_proj)|output\.dense)|intermediate\.dense|output\.dense)|transformer\.layer\.\d+\.(attention\.(q_lin|k_lin|v_lin|out_lin)|ffn\.(lin1|lin2)))\.weight$";

impl Strategy {
    /// Binds the strategy to `model`; for LoRA this attaches the adapters (burn's `apply_lora`
    /// freezes every base parameter; the plan then unfreezes the head).
    pub fn prepare<M: Module>(config: StrategyConfig, model: M) -> (Self, M) {
        let num_layers = num_layers(&collect_params(&model));
        let mut adapters = HashSet::new();
        let model = if config.kind == StrategyKind::Lora {
            let group = ParamGroup::from_regex(LORA_TARGETS).expect("static regex");
            let before: HashSet<ParamId> = collect_params(&model).iter().map(|p| p.id).collect();
            let model = model
                .apply_lora(Lora::new(config.lora_rank, config.lora_alpha).set_param_group(group));
            adapters = collect_params(&model)
                .into_iter()
                .filter(|p| !before.contains(&p.id))
                .map(|p| p.id)
                .collect();
            model
        } else {
            model
        };
        (
            Self {
                config,
                num_layers,
                adapters,
            },
            model,
        )
    }

    /// Whether the parameter at `path` trains during `epoch` (0-based).
    fn trains(&self, info: &ParamInfo, epoch: usize) -> bool {
        let path = info.path.as_str();
        let l = layer_of(path, self.num_layers);
        let top = self.num_layers + 1;
        match self.config.kind {
            StrategyKind::Full | StrategyKind::Llrd => true,
            StrategyKind::Head | StrategyKind::Frozen => is_head(path),
            StrategyKind::TopK => l + self.config.top_k.min(self.num_layers) >= top,
            StrategyKind::Gradual => {
                // Epochs 0..every: head + pooler; then one more layer per `every` epochs.
                let unfrozen = epoch / self.config.unfreeze_every;
                l + unfrozen >= top
            }
            StrategyKind::Lora => {
                self.adapters.contains(&info.id) || is_head(path) || is_pooler(path)
            }
        }
    }

    fn lr_mult(&self, path: &str) -> f64 {
        match self.config.kind {
            StrategyKind::Llrd => {
                let depth = self.num_layers + 1;
                let l = layer_of(path, self.num_layers);
                self.config.llrd_decay.powi((depth - l) as i32)
            }
            _ => 1.0,
        }
    }

    fn group_name(&self, info: &ParamInfo) -> String {
        let path = info.path.as_str();
        if self.adapters.contains(&info.id) {
            return "lora adapters".into();
        }
        if is_head(path) {
            return "classifier".into();
        }
        if is_pooler(path) {
            return "pooler".into();
        }
        match layer_of(path, self.num_layers) {
            0 => "embeddings".into(),
            l if l <= self.num_layers => format!("layer {}", l - 1),
            _ => "other".into(),
        }
    }

    /// The plan for `epoch`.
    pub fn plan<M: Module>(
        &self,
        model: &M,
        epoch: usize,
        base_lr: f64,
        weight_decay: f64,
    ) -> Plan {
        let params = collect_params(model)
            .into_iter()
            .map(|info| ParamPlan {
                trainable: self.trains(&info, epoch),
                lr_mult: self.lr_mult(&info.path),
                decay: !is_no_decay(&info.path),
                group: self.group_name(&info),
                info,
            })
            .collect();
        Plan {
            params,
            base_lr,
            weight_decay,
        }
    }

    /// Sets `require_grad` on every parameter as the plan says (`train` makes a change on a
    /// module already in training take effect).
    pub fn apply<M: Module>(&self, model: M, plan: &Plan) -> M {
        model
            .set_require_grad_group(ParamGroup::from_ids(plan.frozen_ids()), false)
            .set_require_grad_group(ParamGroup::from_ids(plan.trainable_ids()), true)
            .train()
    }

    /// Whether the plan can change between epochs (gradual unfreezing).
    pub fn changes_over_epochs(&self) -> bool {
        self.config.kind == StrategyKind::Gradual
    }

    /// Where the training inputs come from: `frozen` trains its head on features computed
    /// once; every other strategy runs the whole model on token batches.
    pub fn inputs(&self) -> InputSource {
        match self.config.kind {
            StrategyKind::Frozen => InputSource::CachedFeatures,
            _ => InputSource::Tokens,
        }
    }

    /// The trained model as the run hands it back: LoRA's adapters are folded into plain
    /// weights, so the result is an ordinary model of the same type.
    pub fn finish<M: Module>(&self, model: M) -> M {
        match self.config.kind {
            StrategyKind::Lora => model.materialize(),
            _ => model,
        }
    }
}
