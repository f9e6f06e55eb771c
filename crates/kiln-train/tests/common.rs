//! Shared helpers: a tiny BERT and synthetic, learnable data.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::module::Module;
use burn::prelude::*;
use kiln_data::pipeline::EncodedExample;
use kiln_data::Encoding;
use kiln_model::{BertClassifier, BertConfig, Pooling};
use kiln_train::TrainData;

/// burn seeds one global generator: tests that initialise models or use dropout take this lock
/// so that a concurrent test cannot draw from the stream between `seed` and use.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn tiny_config(dropout: f64) -> BertConfig {
    BertConfig::from_json_str(&format!(
        r#"{{"vocab_size": 40, "hidden_size": 16, "num_hidden_layers": 3, "num_attention_heads": 2,
            "intermediate_size": 32, "max_position_embeddings": 32, "hidden_dropout_prob": {dropout},
            "attention_probs_dropout_prob": {dropout}}}"#
    ))
    .unwrap()
}

pub fn tiny_model(dropout: f64, pooling: Pooling, device: &Device) -> BertClassifier {
    device.seed(11);
    BertClassifier::new(&tiny_config(dropout), 2, pooling, device)
}

/// A constructor of a tiny model of some family (dropout, device).
pub type ModelOf = fn(f64, &Device) -> kiln_model::SequenceClassifier;

/// A tiny RoBERTa config (positions after `<pad>` = 1, one token type).
pub fn tiny_roberta_config(dropout: f64) -> BertConfig {
    BertConfig::from_json_str(&format!(
        r#"{{"model_type": "roberta", "vocab_size": 40, "hidden_size": 16, "num_hidden_layers": 3,
            "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 34,
            "type_vocab_size": 1, "pad_token_id": 1, "layer_norm_eps": 1e-5,
            "hidden_dropout_prob": {dropout}, "attention_probs_dropout_prob": {dropout}}}"#
    ))
    .unwrap()
}

/// A tiny RoBERTa sequence classifier (two classes) as the trainer sees any family's model.
pub fn tiny_roberta(dropout: f64, device: &Device) -> kiln_model::SequenceClassifier {
    device.seed(11);
    kiln_model::RobertaForSequenceClassification::new(
        &tiny_roberta_config(dropout),
        2,
        Pooling::Cls,
        device,
    )
    .into()
}

/// A tiny ELECTRA sequence classifier: embeddings of 8 projected to the hidden 16.
pub fn tiny_electra(dropout: f64, device: &Device) -> kiln_model::SequenceClassifier {
    let config = BertConfig::from_json_str(&format!(
        r#"{{"model_type": "electra", "vocab_size": 40, "embedding_size": 8, "hidden_size": 16,
            "num_hidden_layers": 3, "num_attention_heads": 2, "intermediate_size": 32,
            "max_position_embeddings": 32, "hidden_dropout_prob": {dropout},
            "attention_probs_dropout_prob": {dropout}}}"#
    ))
    .unwrap();
    device.seed(11);
    kiln_model::ElectraForSequenceClassification::new(&config, 2, Pooling::Cls, device).into()
}

/// A tiny DistilBERT sequence classifier (its own module tree: `transformer.layer.N`).
pub fn tiny_distilbert(dropout: f64, device: &Device) -> kiln_model::SequenceClassifier {
    let config = BertConfig::from_json_str(&format!(
        r#"{{"model_type": "distilbert", "vocab_size": 40, "dim": 16, "n_layers": 3,
            "n_heads": 2, "hidden_dim": 32, "max_position_embeddings": 32, "dropout": {dropout},
            "attention_dropout": {dropout}}}"#
    ))
    .unwrap();
    device.seed(11);
    kiln_model::DistilBertForSequenceClassification::new(&config, 2, Pooling::Cls, device).into()
}

/// A tiny ModernBERT sequence classifier: RoPE, GeGLU, a sliding window of ±2 in every
/// second layer.
pub fn tiny_modernbert(dropout: f64, device: &Device) -> kiln_model::SequenceClassifier {
    let config = BertConfig::from_json_str(&format!(
        r#"{{"model_type": "modernbert", "vocab_size": 40, "hidden_size": 16, "num_hidden_layers": 3,
            "num_attention_heads": 2, "intermediate_size": 24, "max_position_embeddings": 32,
            "global_attn_every_n_layers": 2, "local_attention": 4, "embedding_dropout": {dropout},
            "mlp_dropout": {dropout}, "attention_dropout": {dropout}}}"#
    ))
    .unwrap();
    let settings = kiln_model::ModernBertSettings::from_config(&config).unwrap();
    device.seed(11);
    kiln_model::ModernBertForSequenceClassification::new(
        &config,
        &settings,
        2,
        Pooling::Cls,
        device,
    )
    .into()
}

/// A tiny DeBERTa-v3-style sequence classifier: relative attention over log buckets (both
/// position terms, shared keys), no absolute positions, no token types.
pub fn tiny_deberta(dropout: f64, device: &Device) -> kiln_model::SequenceClassifier {
    let config = BertConfig::from_json_str(&format!(
        r#"{{"model_type": "deberta-v2", "vocab_size": 40, "hidden_size": 16, "num_hidden_layers": 3,
            "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 32,
            "relative_attention": true, "position_buckets": 4, "pos_att_type": ["p2c", "c2p"],
            "share_att_key": true, "norm_rel_ebd": "layer_norm", "position_biased_input": false,
            "type_vocab_size": 0, "layer_norm_eps": 1e-7, "hidden_dropout_prob": {dropout},
            "attention_probs_dropout_prob": {dropout}}}"#
    ))
    .unwrap();
    let settings = kiln_model::DebertaSettings::from_config(&config).unwrap();
    device.seed(11);
    kiln_model::DebertaV2ForSequenceClassification::new(&config, &settings, 2, Pooling::Cls, device)
        .into()
}

/// `n` examples: class 0 uses tokens 5..15, class 1 tokens 20..30, lengths 3..12.
pub fn synthetic(n: usize, seed: u64) -> Vec<EncodedExample> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    (0..n)
        .map(|i| {
            let label = i % 2;
            let len = 3 + next() % 10;
            let base = if label == 0 { 5 } else { 20 };
            let mut ids = vec![2u32];
            ids.extend((0..len).map(|_| (base + next() % 10) as u32));
            ids.push(3);
            EncodedExample {
                encoding: Encoding {
                    token_type_ids: vec![0; ids.len()],
                    input_ids: ids,
                    truncated: false,
                },
                target: kiln_data::Target::Class(label),
            }
        })
        .collect()
}

pub fn data(train: usize, valid: usize) -> TrainData {
    TrainData {
        train: Arc::new(synthetic(train, 1)),
        valid: Arc::new(synthetic(valid, 2)),
        labels: vec!["a".into(), "b".into()],
        scale: None,
        pad_id: 0,
        teacher_logits: None,
    }
}

/// Every float parameter's values by module path.
pub fn values<M: Module>(model: &M) -> BTreeMap<String, Vec<f32>> {
    kiln_model::drift::param_values(model)
}

/// Largest |a − b| and largest |a − start| over every parameter: how far two trained models are
/// apart, and how far training moved the first.
pub fn gaps(
    a: &BTreeMap<String, Vec<f32>>,
    b: &BTreeMap<String, Vec<f32>>,
    start: &BTreeMap<String, Vec<f32>>,
) -> (f32, f32) {
    let (mut apart, mut moved) = (0f32, 0f32);
    for (path, v) in a {
        for ((x, y), s) in v.iter().zip(&b[path]).zip(&start[path]) {
            apart = apart.max((x - y).abs());
            moved = moved.max((x - s).abs());
        }
    }
    (apart, moved)
}

/// A tiny BERT with one output: a regression head.
pub fn tiny_regressor(dropout: f64, device: &Device) -> BertClassifier {
    device.seed(11);
    BertClassifier::new(&tiny_config(dropout), 1, Pooling::Mean, device)
}

/// [`synthetic`] examples with values instead of classes: about 3 for the low tokens, about
/// 7 for the high ones, plus a tenth of the length (in data units, not standardised).
pub fn synthetic_values(n: usize, seed: u64) -> Vec<EncodedExample> {
    synthetic(n, seed)
        .into_iter()
        .map(|mut e| {
            let base = if e.target.class() == Some(0) {
                3.0
            } else {
                7.0
            };
            e.target = kiln_data::Target::Value(base + 0.1 * e.len() as f32);
            e
        })
        .collect()
}

pub fn regression_data(train: usize, valid: usize) -> TrainData {
    let train = synthetic_values(train, 1);
    let scale = kiln_data::ValueScale::of(train.iter().filter_map(|e| e.target.value()));
    TrainData {
        train: Arc::new(train),
        valid: Arc::new(synthetic_values(valid, 2)),
        labels: Vec::new(),
        scale,
        pad_id: 0,
        teacher_logits: None,
    }
}

/// A tiny BERT with three sigmoid outputs: a multi-label head.
pub fn tiny_multi_label(dropout: f64, pooling: Pooling, device: &Device) -> BertClassifier {
    device.seed(11);
    BertClassifier::new(&tiny_config(dropout), 3, pooling, device)
}

/// [`synthetic`] examples with label sets over 3 labels: {0} for the low tokens, {1, 2} for
/// the high ones.
pub fn synthetic_sets(n: usize, seed: u64) -> Vec<EncodedExample> {
    synthetic(n, seed)
        .into_iter()
        .map(|mut e| {
            let mut set = vec![e.target.class().unwrap_or(0)];
            if set[0] == 1 {
                set.push(2);
            }
            e.target = kiln_data::Target::Labels(set);
            e
        })
        .collect()
}

pub fn multi_label_data(train: usize, valid: usize) -> TrainData {
    TrainData {
        train: Arc::new(synthetic_sets(train, 1)),
        valid: Arc::new(synthetic_sets(valid, 2)),
        labels: vec!["low".into(), "high".into(), "also-high".into()],
        scale: None,
        pad_id: 0,
        teacher_logits: None,
    }
}

pub fn tiny_tagger(dropout: f64, device: &Device) -> kiln_model::BertTokenClassifier {
    device.seed(11);
    kiln_model::BertTokenClassifier::new(&tiny_config(dropout), 3, device)
}

/// Tagged sentences over [`TAGS`]: each piece's tag follows from its token and the one before
/// (low tokens 5..15 are `O`; a high token 20..30 is `B-HI` after a low one, `I-HI` after a
/// high one), so a model needs attention to tell `B-` from `I-`. [CLS], [SEP] and every
/// token 14 (a "later piece of a word") carry the ignore label.
pub fn synthetic_tags(n: usize, seed: u64) -> Vec<EncodedExample> {
    synthetic(n, seed)
        .into_iter()
        .enumerate()
        .map(|(k, mut e)| {
            let ids = &mut e.encoding.input_ids;
            let body = ids.len() - 1;
            // Mix the ranges: every third token (shifted per sentence) is high.
            for (p, id) in ids[1..body].iter_mut().enumerate() {
                let high = (p + k) % 3 == 0;
                *id = if high { 20 + *id % 10 } else { 5 + *id % 10 };
            }
            let tags = (0..ids.len())
                .map(|p| match p {
                    0 => kiln_data::tagged::IGNORE,
                    p if p == body => kiln_data::tagged::IGNORE,
                    _ if ids[p] == 14 => kiln_data::tagged::IGNORE,
                    _ if ids[p] < 20 => 0,
                    _ if ids[p - 1] >= 20 => 2,
                    _ => 1,
                })
                .collect();
            e.target = kiln_data::Target::Tags(tags);
            e
        })
        .collect()
}

pub const TAGS: [&str; 3] = ["O", "B-HI", "I-HI"];

pub fn tagged_data(train: usize, valid: usize) -> TrainData {
    TrainData {
        train: Arc::new(synthetic_tags(train, 1)),
        valid: Arc::new(synthetic_tags(valid, 2)),
        labels: TAGS.iter().map(|s| s.to_string()).collect(),
        scale: None,
        pad_id: 0,
        teacher_logits: None,
    }
}
