//! How far fine-tuning moved an encoder from its pretrained weights: per part (embeddings, each
//! layer, pooler) the relative change ‖w − w₀‖ / ‖w₀‖ over that part's tensors — the weight side
//! of a forgetting report — and how far its representations moved: linear CKA (Kornblith et al.
//! 2019) between the two encoders' hidden states on the same probe examples, per layer.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

use crate::auto::Encoder;

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
        (Some("encoder" | "transformer"), Some("layer"), Some(n)) => format!("layer {n}"),
        // ModernBERT's `layers.N`.
        (Some("layers"), Some(n), _) => format!("layer {n}"),
        (Some(first), _, _) => first.to_string(),
        _ => path.to_string(),
    }
}

/// ‖after − before‖ / ‖before‖ per part of the encoder, in order (embeddings, layer 0, …,
/// pooler); tensors the two encoders do not share (a pooler one of them lacks, another shape)
/// are left out.
pub fn weight_drift(before: &Encoder, after: &Encoder) -> Vec<(String, f64)> {
    let (a, b) = (before.values(), after.values());
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

/// Linear CKA between two representations of the same `n` examples, row-major `[n, dx]` and
/// `[n, dy]`: with the columns centred, ‖YᵀX‖²_F / (‖XᵀX‖_F · ‖YᵀY‖_F). 1 for representations
/// equal up to rotation and scale, toward 0 for unrelated ones; `None` when either has no
/// variance (or there are fewer than two examples).
pub fn linear_cka(x: &[f64], y: &[f64], n: usize) -> Option<f64> {
    if n < 2 || !x.len().is_multiple_of(n) || !y.len().is_multiple_of(n) {
        return None;
    }
    let centred = |m: &[f64]| {
        let d = m.len() / n;
        let mut out = m.to_vec();
        for j in 0..d {
            let mean = (0..n).map(|i| m[i * d + j]).sum::<f64>() / n as f64;
            for i in 0..n {
                out[i * d + j] -= mean;
            }
        }
        (out, d)
    };
    let ((x, dx), (y, dy)) = (centred(x), centred(y));
    // ‖AᵀB‖²_F through the n×n Gram matrices: Σ_ij (AAᵀ)_ij (BBᵀ)_ij — cheaper when n < d.
    let gram = |m: &[f64], d: usize| {
        let mut g = vec![0.0; n * n];
        for i in 0..n {
            for k in i..n {
                let v: f64 = (0..d).map(|j| m[i * d + j] * m[k * d + j]).sum();
                g[i * n + k] = v;
                g[k * n + i] = v;
            }
        }
        g
    };
    let (gx, gy) = (gram(&x, dx), gram(&y, dy));
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
    let (xy, xx, yy) = (dot(&gx, &gy), dot(&gx, &gx), dot(&gy, &gy));
    (xx > 0.0 && yy > 0.0).then(|| xy / (xx.sqrt() * yy.sqrt()))
}

/// Linear CKA per part (`embeddings`, `layer 0`, …) between `before` and `after` on the probe
/// `batches` (padded token batches): each example's hidden states mean-pooled over its tokens.
pub fn representation_cka(
    before: &Encoder,
    after: &Encoder,
    batches: &[kiln_data::TokenBatch],
) -> Vec<(String, f64)> {
    let pooled = |model: &Encoder| {
        let mut parts: Vec<Vec<f64>> = Vec::new();
        for b in batches {
            let device = model.device();
            let b = b.clone().to_device(&device);
            let states =
                model.hidden_states(b.input_ids, b.token_type_ids, b.attention_mask.clone());
            parts.resize(states.len(), Vec::new());
            for (part, state) in parts.iter_mut().zip(states) {
                let rows = crate::bert::mean_pool(state, b.attention_mask.clone());
                let values = rows
                    .into_data()
                    .convert::<f64>()
                    .try_to_vec::<f64>()
                    .unwrap_or_default();
                part.extend(values);
            }
        }
        parts
    };
    let n: usize = batches.iter().map(|b| b.input_ids.dims()[0]).sum();
    let (a, b) = (pooled(before), pooled(after));
    a.iter()
        .zip(&b)
        .enumerate()
        .filter_map(|(i, (x, y))| {
            let name = match i {
                0 => "embeddings".to_string(),
                i => format!("layer {}", i - 1),
            };
            linear_cka(x, y, n).map(|c| (name, c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bert::BertModel;
    use crate::config::BertConfig;
    use burn::module::ModuleMapper;

    /// A 2-layer, 8-wide encoder.
    fn tiny_config() -> BertConfig {
        BertConfig::from_json_str(
            r#"{"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 2,
                "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16}"#,
        )
        .unwrap()
    }

    #[test]
    fn linear_cka_equals_numpys_and_ignores_rotation_and_scale() {
        let x = [1.0, 2.0, 3.0, 1.0, 0.0, 4.0, 2.0, 2.0, 5.0, 0.0];
        let y = [
            1.0, 0.0, 2.0, 2.0, 1.0, 0.0, 0.0, 3.0, 1.0, 1.0, 1.0, 1.0, 4.0, 0.0, 0.0,
        ];
        // numpy: ‖YcᵀXc‖²_F / (‖XcᵀXc‖_F ‖YcᵀYc‖_F) with the columns centred.
        let cka = linear_cka(&x, &y, 5).unwrap();
        assert!((cka - 0.9283905921046075).abs() < 1e-12, "{cka}");
        assert!((linear_cka(&x, &x, 5).unwrap() - 1.0).abs() < 1e-12);
        // A rotation by 30° and a scale by 3, plus a shift: the same representation.
        let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        let moved: Vec<f64> = x
            .chunks(2)
            .flat_map(|r| {
                [
                    3.0 * (c * r[0] - s * r[1]) + 7.0,
                    3.0 * (s * r[0] + c * r[1]) - 1.0,
                ]
            })
            .collect();
        assert!((linear_cka(&x, &moved, 5).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(linear_cka(&x, &[2.0; 5], 5), None, "no variance");
        assert_eq!(linear_cka(&x[..2], &y[..3], 1), None, "one example");
    }

    #[test]
    fn representations_of_an_unchanged_encoder_have_cka_one_per_layer() {
        let _rng = crate::rng_lock();
        let config = tiny_config();
        let device = Device::flex();
        device.seed(3);
        let model = Encoder::Bert(BertModel::new(&config, true, &device));
        let other = Encoder::Bert(BertModel::new(&config, true, &device));
        let encodings: Vec<kiln_data::Encoding> = (0..6u32)
            .map(|i| kiln_data::Encoding {
                input_ids: (0..3 + i % 4).map(|j| 2 + (i * 3 + j) % 17).collect(),
                token_type_ids: vec![0; 3 + i as usize % 4],
                truncated: false,
            })
            .collect();
        let refs: Vec<&kiln_data::Encoding> = encodings.iter().collect();
        let batches = [
            kiln_data::TokenBatch::pad(&refs[..4], 0, 1, &device),
            kiln_data::TokenBatch::pad(&refs[4..], 0, 1, &device),
        ];
        let same = representation_cka(&model, &model, &batches);
        let names: Vec<&str> = same.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["embeddings", "layer 0", "layer 1"]);
        assert!(same.iter().all(|(_, c)| (c - 1.0).abs() < 1e-9), "{same:?}");
        let apart = representation_cka(&model, &other, &batches);
        assert!(apart.iter().all(|(_, c)| *c < 0.999), "{apart:?}");
    }

    #[test]
    fn drift_is_relative_per_part_and_zero_when_unchanged() {
        let _rng = crate::rng_lock();
        let config = tiny_config();
        let device = Device::flex();
        let model = Encoder::Bert(BertModel::new(&config, true, &device));
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
