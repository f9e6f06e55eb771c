//! The encoder computes what transformers computes: last hidden state, pooler, mean pooling and
//! classifier logits of a tiny seeded BERT, against fixtures written by
//! `scripts/reference/make_fixtures.py` (transformers, eager attention, float32).
//!
//! The inputs are the token ids transformers saw, so this test covers the model alone; the
//! tokenizer has its own parity test in kiln-data.

use std::path::PathBuf;

use burn::prelude::*;
use kiln_model::{mean_pool, Checkpoint, HeadInit, Pooling};
use serde::Deserialize;

const TOLERANCE: f32 = 1e-4;

#[derive(Deserialize)]
struct Expected {
    examples: Vec<Example>,
    batch_input_ids: Vec<Vec<i64>>,
    batch_token_type_ids: Vec<Vec<i64>>,
    batch_attention_mask: Vec<Vec<i64>>,
}

#[derive(Deserialize)]
struct Example {
    input_ids: Vec<i64>,
    last_hidden_state: Vec<Vec<f32>>,
    pooler_output: Vec<f32>,
    mean_pooled: Vec<f32>,
    logits: Vec<f32>,
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn expected() -> Expected {
    let text = std::fs::read_to_string(fixtures().join("tiny-bert/expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn tensor2<T: burn::tensor::Element>(rows: &[Vec<T>], device: &Device) -> TensorData {
    let _ = device;
    let (b, s) = (rows.len(), rows[0].len());
    TensorData::new(rows.iter().flatten().cloned().collect::<Vec<T>>(), [b, s])
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length differs");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

struct Outputs {
    hidden: Vec<f32>,
    seq: usize,
    pooled: Option<Vec<f32>>,
    mean: Vec<f32>,
    logits: Option<Vec<f32>>,
}

fn run(dir: &str, head: bool) -> Outputs {
    let device = Device::flex();
    let e = expected();
    let checkpoint = Checkpoint::open(fixtures().join(dir)).unwrap();
    let ids = Tensor::<2, Int>::from_data(tensor2(&e.batch_input_ids, &device), &device);
    let types = Tensor::<2, Int>::from_data(tensor2(&e.batch_token_type_ids, &device), &device);
    let mask_i: Vec<Vec<f32>> = e
        .batch_attention_mask
        .iter()
        .map(|r| r.iter().map(|&m| m as f32).collect())
        .collect();
    let mask = Tensor::<2>::from_data(tensor2(&mask_i, &device), &device);
    let seq = e.batch_input_ids[0].len();
    let init = if head {
        HeadInit::FromCheckpoint
    } else {
        HeadInit::New(3)
    };
    let (model, _) = checkpoint
        .load_classifier(init, Pooling::Cls, &device)
        .unwrap();
    let out = model.bert.forward(ids.clone(), types.clone(), mask.clone());
    let logits = head.then(|| {
        model
            .forward(ids, types, mask.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    });
    Outputs {
        hidden: out
            .last_hidden_state
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap(),
        seq,
        pooled: out
            .pooler_output
            .map(|p| p.into_data().try_to_vec::<f32>().unwrap()),
        mean: mean_pool(out.last_hidden_state, mask)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap(),
        logits,
    }
}

fn check_encoder(out: &Outputs) {
    let e = expected();
    let h = 32;
    let mut worst = 0.0f32;
    for (i, ex) in e.examples.iter().enumerate() {
        for (t, row) in ex.last_hidden_state.iter().enumerate() {
            let start = (i * out.seq + t) * h;
            worst = worst.max(max_abs_diff(&out.hidden[start..start + h], row));
        }
        assert_eq!(ex.last_hidden_state.len(), ex.input_ids.len());
        worst = worst.max(max_abs_diff(&out.mean[i * h..(i + 1) * h], &ex.mean_pooled));
    }
    assert!(worst <= TOLERANCE, "hidden/mean max abs diff {worst}");
}

#[test]
fn tiny_bert_safetensors_matches_transformers() {
    let out = run("tiny-bert", true);
    check_encoder(&out);
    let e = expected();
    let pooled = out.pooled.as_ref().expect("tiny-bert has a pooler");
    let logits = out.logits.as_ref().unwrap();
    for (i, ex) in e.examples.iter().enumerate() {
        let d = max_abs_diff(&pooled[i * 32..(i + 1) * 32], &ex.pooler_output);
        assert!(d <= TOLERANCE, "pooler example {i}: {d}");
        let d = max_abs_diff(&logits[i * 3..(i + 1) * 3], &ex.logits);
        assert!(d <= TOLERANCE, "logits example {i}: {d}");
    }
}

#[test]
fn tiny_bert_pytorch_bin_matches_transformers() {
    let out = run("tiny-bert-bin", true);
    check_encoder(&out);
    let e = expected();
    let logits = out.logits.unwrap();
    for (i, ex) in e.examples.iter().enumerate() {
        let d = max_abs_diff(&logits[i * 3..(i + 1) * 3], &ex.logits);
        assert!(d <= TOLERANCE, "logits example {i}: {d}");
    }
}

#[test]
fn checkpoint_without_prefix_or_pooler_loads() {
    let out = run("tiny-bert-nopooler", false);
    assert!(
        out.pooled.is_none(),
        "no pooler in the checkpoint, none in the model"
    );
    check_encoder(&out);
}
