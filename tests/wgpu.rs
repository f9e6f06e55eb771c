//! The GPU code path, on whatever adapter wgpu finds — Mesa's lavapipe (software Vulkan) on the
//! CI machines, which .ci/run installs: the tiny checkpoint's logits equal transformers' (the
//! fixture of the flex parity test) within 1e-4, padded and packed; and a few SGD steps through
//! the `Trainer` on wgpu end within 1e-5 of the same steps on flex (a sequence head, and a token
//! head on packed batches). Built and run by
//! `cargo xtask test` with `--features wgpu` (not part of a default build).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use kiln::burn::module::Module;
use kiln::burn::prelude::*;
use kiln::data::pipeline::EncodedExample;
use kiln::data::{Encoding, TokenBatch};
use kiln::model::{Checkpoint, HeadInit, Pooling};
use kiln::train::optim::{OptimizerKind, OptimizerSpec};
use kiln::train::schedule::ScheduleKind;
use kiln::train::{TrainConfig, TrainData, Trainer};
use serde::Deserialize;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn wgpu() -> Device {
    kiln::backend::parse_device("wgpu").expect("this build has wgpu")
}

#[derive(Deserialize)]
struct Expected {
    examples: Vec<Example>,
}
#[derive(Deserialize)]
struct Example {
    input_ids: Vec<u32>,
    token_type_ids: Vec<u32>,
    logits: Vec<f32>,
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn logits_on_wgpu_equal_transformers_padded_and_packed() {
    let expected: Expected =
        serde_json::from_str(&std::fs::read_to_string(fixture("tiny-bert/expected.json")).unwrap())
            .unwrap();
    assert!(expected.examples.len() >= 4);
    let device = wgpu();
    let checkpoint = Checkpoint::open(fixture("tiny-bert")).unwrap();
    let (model, _) = checkpoint
        .load_classifier(HeadInit::FromCheckpoint, Pooling::Cls, &device)
        .unwrap();
    let encodings: Vec<Encoding> = expected
        .examples
        .iter()
        .map(|e| Encoding {
            input_ids: e.input_ids.clone(),
            token_type_ids: e.token_type_ids.clone(),
            truncated: false,
        })
        .collect();
    let refs: Vec<&Encoding> = encodings.iter().collect();
    let want: Vec<f32> = expected
        .examples
        .iter()
        .flat_map(|e| e.logits.clone())
        .collect();
    for (what, batch) in [
        ("padded", TokenBatch::pad(&refs, 0, 1, &device)),
        ("packed", TokenBatch::pack(&refs, 0, 1, &device)),
    ] {
        let logits = model
            .forward_batch(batch)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        let d = max_abs_diff(&logits, &want);
        assert!(d <= 1e-4, "{what} logits on wgpu: max abs diff {d}");
    }
}

fn values<M: Module>(model: &M) -> BTreeMap<String, Vec<f32>> {
    kiln::model::drift::param_values(model)
}

/// 24 examples of 3 classes over tiny-bert's vocabulary, lengths 4..11.
fn examples() -> Vec<EncodedExample> {
    (0..24)
        .map(|i| {
            let label = i % 3;
            let mut ids = vec![2u32];
            ids.extend((0..2 + i % 8).map(|j| 14 + ((label * 20 + i * 3 + j * 7) % 60) as u32));
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

/// SGD with momentum at a constant rate, one shard: the steps the device tests compare.
fn sgd(batch_size: usize) -> TrainConfig {
    TrainConfig {
        epochs: 1,
        batch_size,
        lr: 0.05,
        schedule: ScheduleKind::Constant,
        warmup_ratio: 0.0,
        batch_shards: 1,
        optimizer: OptimizerSpec {
            kind: OptimizerKind::Sgd,
            momentum: 0.9,
            weight_decay: 0.0,
            ..OptimizerSpec::default()
        },
        ..TrainConfig::default()
    }
}

/// A fixture checkpoint without dropout, so both devices take the same steps (their random
/// streams differ).
fn without_dropout(name: &str) -> Checkpoint {
    let mut checkpoint = Checkpoint::open(fixture(name)).unwrap();
    checkpoint.config.hidden_dropout_prob = 0.0;
    checkpoint.config.attention_probs_dropout_prob = 0.0;
    checkpoint.config.classifier_dropout = Some(0.0);
    checkpoint
}

/// Asserts that training moved the weights and that flex and wgpu ended within 1e-5.
fn assert_same_steps(
    start: &BTreeMap<String, Vec<f32>>,
    flex: &BTreeMap<String, Vec<f32>>,
    gpu: &BTreeMap<String, Vec<f32>>,
) {
    let (mut apart, mut moved) = (0f32, 0f32);
    for (path, a) in flex {
        apart = apart.max(max_abs_diff(a, &gpu[path]));
        moved = moved.max(max_abs_diff(a, &start[path]));
    }
    assert!(moved > 1e-3, "training moved the weights by {moved}");
    assert!(
        apart <= 1e-5,
        "wgpu and flex ended {apart} apart (training moved them by {moved})"
    );
}

#[test]
fn sgd_steps_on_wgpu_equal_the_same_steps_on_flex() {
    let data = TrainData {
        train: Arc::new(examples()),
        valid: Arc::new(examples()[..6].to_vec()),
        labels: vec!["negative".into(), "neutral".into(), "positive".into()],
        scale: None,
        pad_id: 0,
        teacher_logits: None,
    };
    let checkpoint = without_dropout("tiny-bert");
    let train = |device: Device| {
        let (model, _) = checkpoint
            .load_classifier(HeadInit::FromCheckpoint, Pooling::Cls, &device)
            .unwrap();
        let start = values(&model);
        let outcome = Trainer::new(sgd(8))
            .device(&device)
            .fit(model, &data)
            .unwrap();
        assert_eq!(outcome.stats.steps, 3);
        (start, values(&outcome.model))
    };
    let (start, flex) = train(Device::flex());
    let (_, gpu) = train(wgpu());
    assert_same_steps(&start, &flex, &gpu);
}

#[test]
fn token_classification_steps_on_wgpu_equal_the_same_steps_on_flex() {
    // Packed batches (the default sampler), labels on every other piece and -100 elsewhere: the
    // ignore-index cross-entropy's masks and gathers on the GPU path. One step of all 24
    // sentences: three momentum steps of 8 compound the devices' float differences to 2.0e-5
    // (measured), past the 1e-5 the sequence head's test holds.
    let tagged: Vec<EncodedExample> = examples()
        .into_iter()
        .map(|mut e| {
            let n = e.encoding.input_ids.len();
            let tags = (0..n)
                .map(|p| match p {
                    p if p == 0 || p == n - 1 || p % 2 == 0 => kiln_data::tagged::IGNORE,
                    p => (e.encoding.input_ids[p] % 5) as i64,
                })
                .collect();
            e.target = kiln_data::Target::Tags(tags);
            e
        })
        .collect();
    let data = TrainData {
        valid: Arc::new(tagged[..6].to_vec()),
        train: Arc::new(tagged),
        labels: ["B-ANI", "B-LOC", "I-ANI", "I-LOC", "O"]
            .map(String::from)
            .to_vec(),
        scale: None,
        pad_id: 0,
        teacher_logits: None,
    };
    // The transformers-made token checkpoint's own head: the same start on both devices.
    let checkpoint = without_dropout("tiny-bert-token");
    let train = |device: Device| {
        let (model, _) = checkpoint
            .load_token_classifier(HeadInit::FromCheckpoint, &device)
            .unwrap();
        let start = values(&model);
        let outcome = Trainer::new(sgd(24))
            .device(&device)
            .fit(model, &data)
            .unwrap();
        let valid = outcome.epochs[0].valid.as_ref().unwrap();
        (
            start,
            values(&outcome.model),
            valid.token().unwrap().accuracy(),
        )
    };
    let (start, flex, flex_accuracy) = train(Device::flex());
    let (gpu_start, gpu, gpu_accuracy) = train(wgpu());
    assert_eq!(gpu_start, start);
    assert_same_steps(&start, &flex, &gpu);
    assert_eq!(flex_accuracy, gpu_accuracy);
}
