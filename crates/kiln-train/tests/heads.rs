//! The regression and multi-label heads compute what transformers' `BertForSequenceClassification`
//! computes with `problem_type` "regression" and "multi_label_classification": on tiny-bert's
//! encoder with seeded head weights (`tests/fixtures/sequence-heads.json`, written by
//! `scripts/reference/make_fixtures.py sequence-heads`), the logits of a padded batch, the
//! task's loss (`TaskLoss`: MSE, BCE-with-logits) and the head's gradients, within 1e-4.

use std::path::PathBuf;

use burn::module::Param;
use burn::prelude::*;
use kiln_data::{Encoding, Targets, TokenBatch};
use kiln_model::{Checkpoint, HeadInit, Pooling};
use kiln_train::{TaskLoss, TaskModel};
use serde::Deserialize;

const TOLERANCE: f32 = 1e-4;

#[derive(Deserialize)]
struct Head {
    problem_type: String,
    labels: Vec<Vec<f32>>,
    classifier_weight: Vec<Vec<f32>>,
    classifier_bias: Vec<f32>,
    logits: Vec<Vec<f32>>,
    loss: f32,
    classifier_weight_grad: Vec<Vec<f32>>,
    classifier_bias_grad: Vec<f32>,
}

#[derive(Deserialize)]
struct Fixture {
    input_ids: Vec<Vec<u32>>,
    token_type_ids: Vec<Vec<u32>>,
    regression: Head,
    multi_label: Head,
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length differs");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// PyTorch's `[out, in]` weight as burn's `[in, out]`, row-major.
fn transposed(rows: &[Vec<f32>]) -> Vec<f32> {
    let (out, inputs) = (rows.len(), rows[0].len());
    (0..inputs)
        .flat_map(|i| (0..out).map(move |o| rows[o][i]))
        .collect()
}

fn check(head: &Head, fixture: &Fixture, targets: impl Fn(Tensor<2>) -> Targets) {
    let mut checkpoint = Checkpoint::open(fixtures().join("tiny-bert")).unwrap();
    // transformers computed the fixture in eval mode: no dropout here either.
    checkpoint.config.hidden_dropout_prob = 0.0;
    checkpoint.config.attention_probs_dropout_prob = 0.0;
    checkpoint.config.classifier_dropout = Some(0.0);
    let device = Device::flex().autodiff();
    let outputs = head.classifier_bias.len();
    let (mut model, _) = checkpoint
        .load_classifier(HeadInit::New(outputs), Pooling::Cls, &device)
        .unwrap();
    let hidden = head.classifier_weight[0].len();
    model.classifier.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(transposed(&head.classifier_weight), [hidden, outputs]),
        &device,
    ));
    model.classifier.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(head.classifier_bias.clone(), [outputs]),
        &device,
    )));
    let model = model.train();

    let encodings: Vec<Encoding> = fixture
        .input_ids
        .iter()
        .zip(&fixture.token_type_ids)
        .map(|(ids, types)| Encoding {
            input_ids: ids.clone(),
            token_type_ids: types.clone(),
            truncated: false,
        })
        .collect();
    let refs: Vec<&Encoding> = encodings.iter().collect();
    let tokens = TokenBatch::pad(&refs, 0, 1, &device);
    let logits = model.outputs(tokens);
    let want: Vec<f32> = head.logits.iter().flatten().copied().collect();
    let d = max_abs_diff(&values(logits.clone()), &want);
    assert!(
        d <= TOLERANCE,
        "{}: logits max abs diff {d}",
        head.problem_type
    );

    let n = head.labels.len();
    let labels: Tensor<2> = Tensor::from_data(
        TensorData::new(
            head.labels.iter().flatten().copied().collect::<Vec<f32>>(),
            [n, outputs],
        ),
        &device,
    );
    let loss = TaskLoss::default().forward(logits, targets(labels));
    let value = values(loss.clone())[0];
    assert!(
        (value - head.loss).abs() <= TOLERANCE,
        "{}: loss {value} vs {}",
        head.problem_type,
        head.loss
    );
    let grads = loss.backward();
    let weight = values(model.classifier.weight.val().grad(&grads).unwrap());
    let d = max_abs_diff(&weight, &transposed(&head.classifier_weight_grad));
    assert!(
        d <= TOLERANCE,
        "{}: weight grad max abs diff {d}",
        head.problem_type
    );
    let bias = values(
        model
            .classifier
            .bias
            .as_ref()
            .unwrap()
            .val()
            .grad(&grads)
            .unwrap(),
    );
    let d = max_abs_diff(&bias, &head.classifier_bias_grad);
    assert!(
        d <= TOLERANCE,
        "{}: bias grad max abs diff {d}",
        head.problem_type
    );
}

#[test]
fn regression_and_multi_label_heads_match_transformers() {
    let fixture: Fixture = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("sequence-heads.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(fixture.regression.problem_type, "regression");
    check(&fixture.regression, &fixture, Targets::Values);
    assert_eq!(
        fixture.multi_label.problem_type,
        "multi_label_classification"
    );
    check(&fixture.multi_label, &fixture, Targets::Labels);
}
