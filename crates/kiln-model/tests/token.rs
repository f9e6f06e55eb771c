//! `BertTokenClassifier` computes what transformers' `BertForTokenClassification` computes: on a
//! tiny seeded checkpoint (`tests/fixtures/tiny-bert-token`, written by
//! `scripts/reference/make_fixtures.py tiny-token`), the per-token logits of a padded batch, the
//! cross-entropy over labelled pieces (`-100` ignored, as `run_ner.py` labels them) and its
//! gradient for the head, within 1e-4.

use std::path::PathBuf;

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use kiln_model::{Checkpoint, HeadInit};
use serde::Deserialize;

const TOLERANCE: f32 = 1e-4;

#[derive(Deserialize)]
struct Expected {
    input_ids: Vec<Vec<i64>>,
    token_type_ids: Vec<Vec<i64>>,
    attention_mask: Vec<Vec<i64>>,
    labels: Vec<Vec<i64>>,
    logits: Vec<Vec<Vec<f32>>>,
    loss: f32,
    classifier_weight_grad: Vec<Vec<f32>>,
    classifier_bias_grad: Vec<f32>,
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny-bert-token")
}

fn ints(rows: &[Vec<i64>], device: &Device) -> Tensor<2, Int> {
    let (b, s) = (rows.len(), rows[0].len());
    Tensor::from_data(
        TensorData::new(rows.iter().flatten().copied().collect::<Vec<i64>>(), [b, s]),
        device,
    )
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

#[test]
fn token_logits_loss_and_head_gradients_match_transformers() {
    let expected: Expected =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("expected.json")).unwrap())
            .unwrap();
    let mut checkpoint = Checkpoint::open(fixture()).unwrap();
    assert_eq!(
        checkpoint.config.labels().unwrap(),
        ["B-ANI", "B-LOC", "I-ANI", "I-LOC", "O"]
    );
    // transformers computed the fixture in eval mode: no dropout here either.
    checkpoint.config.hidden_dropout_prob = 0.0;
    checkpoint.config.attention_probs_dropout_prob = 0.0;
    checkpoint.config.classifier_dropout = Some(0.0);
    let device = Device::flex().autodiff();
    let (model, report) = checkpoint
        .load_token_classifier(HeadInit::FromCheckpoint, &device)
        .unwrap();
    assert!(!report.has_pooler && model.bert.pooler.is_none());
    assert_eq!(model.num_labels(), 5);
    let model = model.train();

    let mask: Tensor<2> = ints(&expected.attention_mask, &device).float();
    let logits = model.forward(
        ints(&expected.input_ids, &device),
        ints(&expected.token_type_ids, &device),
        mask,
    );
    let [b, s, c] = logits.dims();
    let want: Vec<f32> = expected
        .logits
        .iter()
        .flatten()
        .flatten()
        .copied()
        .collect();
    let d = max_abs_diff(&values(logits.clone()), &want);
    assert!(d <= TOLERANCE, "logits: max abs diff {d}");

    // Cross-entropy over the labelled pieces only.
    let labels: Vec<i64> = expected.labels.iter().flatten().copied().collect();
    let kept: Vec<i64> = (0..labels.len() as i64)
        .filter(|&i| labels[i as usize] != -100)
        .collect();
    let targets: Vec<i64> = kept.iter().map(|&i| labels[i as usize]).collect();
    let n = kept.len();
    let rows = logits.reshape([b * s, c]).select(
        0,
        Tensor::<1, Int>::from_data(TensorData::new(kept, [n]), &device),
    );
    let picked = log_softmax(rows, 1).gather(
        1,
        Tensor::<1, Int>::from_data(TensorData::new(targets, [n]), &device).reshape([n, 1]),
    );
    let loss = picked.mean().neg();
    let value = values(loss.clone())[0];
    assert!(
        (value - expected.loss).abs() <= TOLERANCE,
        "loss {value} vs {}",
        expected.loss
    );
    let grads = loss.backward();
    let grad = |p: &Param<Tensor<2>>| values(p.val().grad(&grads).unwrap());
    // burn keeps the weight as [hidden, labels]; PyTorch as [labels, hidden].
    let weight = grad(&model.classifier.weight);
    let hidden = weight.len() / c;
    let torch_t: Vec<f32> = (0..hidden)
        .flat_map(|h| (0..c).map(move |l| (h, l)))
        .map(|(h, l)| expected.classifier_weight_grad[l][h])
        .collect();
    let d = max_abs_diff(&weight, &torch_t);
    assert!(d <= TOLERANCE, "classifier.weight grad: max abs diff {d}");
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
    let d = max_abs_diff(&bias, &expected.classifier_bias_grad);
    assert!(d <= TOLERANCE, "classifier.bias grad: max abs diff {d}");
}
