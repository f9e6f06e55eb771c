//! A packed batch (several examples to a row, each attending only to itself; kiln-data's
//! `TokenBatch::pack`) gives every example what transformers computes for it alone, and the
//! same gradients as the padded batch of the same examples.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::Gradients;
use kiln_data::{Encoding, TokenBatch};
use kiln_model::{BertClassifier, BertConfig, Checkpoint, HeadInit, Pooling};
use serde::Deserialize;

const TOLERANCE: f32 = 1e-4;

#[derive(Deserialize)]
struct Expected {
    examples: Vec<Example>,
    batch_token_type_ids: Vec<Vec<u32>>,
}

#[derive(Deserialize)]
struct Example {
    input_ids: Vec<u32>,
    pooler_output: Vec<f32>,
    mean_pooled: Vec<f32>,
    logits: Vec<f32>,
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// transformers' per-example outputs of the tiny seeded BERT (`make_fixtures.py`) and the
/// examples as kiln-data encodings.
fn expected() -> (Expected, Vec<Encoding>) {
    let text = std::fs::read_to_string(fixtures().join("tiny-bert/expected.json")).unwrap();
    let e: Expected = serde_json::from_str(&text).unwrap();
    let encodings = e
        .examples
        .iter()
        .zip(&e.batch_token_type_ids)
        .map(|(ex, types)| Encoding {
            input_ids: ex.input_ids.clone(),
            token_type_ids: types[..ex.input_ids.len()].to_vec(),
            truncated: false,
        })
        .collect();
    (e, encodings)
}

fn floats(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length differs");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn packing_puts_several_examples_in_a_row() {
    let (_, encodings) = expected();
    let refs: Vec<&Encoding> = encodings.iter().collect();
    let lengths: Vec<usize> = encodings.iter().map(Encoding::len).collect();
    assert_eq!(lengths, [6, 14, 26, 7, 13, 15]);
    // First-fit decreasing into rows of the longest (26): 26 | 15+7 | 14+6 | 13.
    assert_eq!(
        kiln_data::batch::pack_rows(&lengths, 26),
        vec![vec![2], vec![5, 3], vec![1, 0], vec![4]]
    );
    let batch = TokenBatch::pack(&refs, 0, 1, &Device::flex());
    assert_eq!(batch.input_ids.dims(), [4, 26]);
    let packing = batch.packing.expect("a packed batch");
    // Example 3 (7 tokens) follows example 5 (15 tokens) in row 1: positions restart at 0.
    let positions = packing.position_ids.into_data().convert::<i64>();
    let positions = positions.as_slice::<i64>().unwrap();
    assert_eq!(
        &positions[26..26 + 17],
        &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0, 1]
    );
    // Token 15 of row 1 (example 3's first) sees example 3 only.
    let attention = floats(packing.attention.reshape([4 * 26, 26]));
    let row = &attention[(26 + 15) * 26..(26 + 16) * 26];
    let expected: Vec<f32> = (0..26)
        .map(|k| f32::from(u8::from((15..22).contains(&k))))
        .collect();
    assert_eq!(row, &expected[..]);
}

#[test]
fn packed_batch_matches_transformers_example_by_example() {
    let device = Device::flex();
    let (e, encodings) = expected();
    let refs: Vec<&Encoding> = encodings.iter().collect();
    let checkpoint = Checkpoint::open(fixtures().join("tiny-bert")).unwrap();
    for pooling in [Pooling::Cls, Pooling::Mean] {
        let (model, _) = checkpoint
            .load_classifier(HeadInit::FromCheckpoint, pooling, &device)
            .unwrap();
        let batch = TokenBatch::pack(&refs, 0, 1, &device);
        let features = floats(model.features_of(batch.clone()));
        let logits = floats(model.forward_batch(batch));
        for (i, ex) in e.examples.iter().enumerate() {
            let want = match pooling {
                Pooling::Cls => &ex.pooler_output,
                Pooling::Mean => &ex.mean_pooled,
            };
            let d = max_abs_diff(&features[i * 32..(i + 1) * 32], want);
            assert!(d <= TOLERANCE, "{pooling:?} features of example {i}: {d}");
            if pooling == Pooling::Cls {
                let d = max_abs_diff(&logits[i * 3..(i + 1) * 3], &ex.logits);
                assert!(d <= TOLERANCE, "logits of example {i}: {d}");
            }
        }
    }
}

/// Every float parameter's gradient, by path.
struct Grads<'a> {
    grads: &'a Gradients,
    path: Vec<String>,
    out: BTreeMap<String, Vec<f32>>,
}

impl ModuleVisitor for Grads<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = param.val().grad(self.grads) {
            let g = g.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
            self.out.insert(self.path.join("."), g);
        }
    }
}

fn gradients(model: &BertClassifier, batch: TokenBatch) -> BTreeMap<String, Vec<f32>> {
    let logits = model.forward_batch(batch);
    let [n, c] = logits.dims();
    // A fixed, example-dependent weighting of the logits: every example's gradient counts.
    let weights: Vec<f32> = (0..n * c).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
    let weights = Tensor::<2>::from_data(TensorData::new(weights, [n, c]), &logits.device());
    let grads = (logits * weights).sum().backward();
    let mut visitor = Grads {
        grads: &grads,
        path: Vec::new(),
        out: BTreeMap::new(),
    };
    model.visit(&mut visitor);
    visitor.out
}

#[test]
fn packed_and_padded_batches_have_the_same_gradients() {
    let config = BertConfig::from_json_str(
        r#"{"vocab_size": 109, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
            "intermediate_size": 37, "max_position_embeddings": 64, "hidden_act": "gelu",
            "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}"#,
    )
    .unwrap();
    let (_, encodings) = expected();
    let refs: Vec<&Encoding> = encodings.iter().collect();
    for pooling in [Pooling::Cls, Pooling::Mean] {
        let device = Device::flex().autodiff();
        device.seed(7);
        let model = BertClassifier::new(&config, 3, pooling, &device).train();
        let padded = gradients(&model, TokenBatch::pad(&refs, 0, 1, &device));
        let packed = gradients(&model, TokenBatch::pack(&refs, 0, 1, &device));
        assert_eq!(
            padded.keys().collect::<Vec<_>>(),
            packed.keys().collect::<Vec<_>>()
        );
        assert!(padded.len() > 20, "{} gradients", padded.len());
        for (path, a) in &padded {
            let b = &packed[path];
            let scale = a.iter().fold(1e-3f32, |m, x| m.max(x.abs()));
            let d = max_abs_diff(a, b);
            assert!(
                d <= 1e-5 * scale.max(1.0),
                "{pooling:?} {path}: max abs diff {d} (largest |grad| {scale})"
            );
        }
    }
}
