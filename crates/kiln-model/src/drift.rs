//! How far fine-tuning moved an encoder from its pretrained weights: per part (embeddings, each
//! layer, pooler) the relative change ‖w − w₀‖ / ‖w₀‖ over that part's tensors — the weight side
//! of a forgetting report.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

use crate::bert::BertModel;

#[derive(Default)]
struct Collect {
    path: Vec<String>,
    values: BTreeMap<String, Vec<f32>>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let v = param
            .val()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        self.values.insert(self.path.join("."), v);
    }
}

/// Every float parameter of `module` as host f32 values, by module path
/// (`encoder.layer.0.attention.self_attention.query.weight`).
pub fn param_values<M: Module>(module: &M) -> BTreeMap<String, Vec<f32>> {
    let mut collect = Collect::default();
    module.visit(&mut collect);
    collect.values
}

/// The part of the encoder a parameter path belongs to: `embeddings`, `layer N`, `pooler`.
fn part(path: &str) -> String {
    let mut pieces = path.split('.');
    match (pieces.next(), pieces.next(), pieces.next()) {
        (Some("encoder"), Some("layer"), Some(n)) => format!("layer {n}"),
        (Some(first), _, _) => first.to_string(),
        _ => path.to_string(),
    }
}

/// ‖after − before‖ / ‖before‖ per part of the encoder, in order (embeddings, layer 0, …,
/// pooler); tensors the two encoders do not share (a pooler one of them lacks, another shape)
/// are left out.
pub fn weight_drift(before: &BertModel, after: &BertModel) -> Vec<(String, f64)> {
    let (a, b) = (param_values(before), param_values(after));
    // (Σ(w − w₀)², Σw₀²) per part, in first-seen order.
    let mut parts: Vec<(String, f64, f64)> = Vec::new();
    for (path, w0) in &a {
        let Some(w) = b.get(path).filter(|w| w.len() == w0.len()) else {
            continue;
        };
        let name = part(path);
        let (moved, base) = w.iter().zip(w0).fold((0.0, 0.0), |(m, s), (x, y)| {
            let d = f64::from(*x) - f64::from(*y);
            (m + d * d, s + f64::from(*y) * f64::from(*y))
        });
        match parts.iter_mut().find(|p| p.0 == name) {
            Some(p) => {
                p.1 += moved;
                p.2 += base;
            }
            None => parts.push((name, moved, base)),
        }
    }
    // Embeddings first, layers by number, the pooler last.
    let rank = |name: &str| match name.strip_prefix("layer ") {
        _ if name == "embeddings" => (0, 0),
        Some(n) => (1, n.parse::<usize>().unwrap_or(usize::MAX)),
        None => (2, 0),
    };
    parts.sort_by_key(|p| rank(&p.0));
    parts
        .into_iter()
        .map(|(name, moved, base)| {
            let relative = if base > 0.0 {
                (moved / base).sqrt()
            } else {
                0.0
            };
            (name, relative)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BertConfig;
    use burn::module::ModuleMapper;

    #[test]
    fn drift_is_relative_per_part_and_zero_when_unchanged() {
        let config = BertConfig::from_json_str(
            r#"{"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 2,
                "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16}"#,
        )
        .unwrap();
        let device = Device::flex();
        let model = BertModel::new(&config, true, &device);
        let same = weight_drift(&model, &model);
        let names: Vec<&str> = same.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["embeddings", "layer 0", "layer 1", "pooler"]);
        assert!(same.iter().all(|(_, d)| *d == 0.0));
        // Every weight scaled by 1.1: each part moved by exactly 10% of its norm.
        struct Scale;
        impl ModuleMapper for Scale {
            fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
                p.map(|t| t.mul_scalar(1.1))
            }
        }
        let scaled = model.clone().map(&mut Scale);
        for (name, d) in weight_drift(&model, &scaled) {
            assert!((d - 0.1).abs() < 1e-5, "{name}: {d}");
        }
    }
}
