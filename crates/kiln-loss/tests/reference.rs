//! Every case of `tests/fixtures/losses.json` (PyTorch 2.15, float32; made by
//! `scripts/reference/make_loss_fixtures.py`): loss value and d(loss)/d(logits), the gradient
//! from burn's autodiff on flex.
//!
//! Tolerance, for the value and for each gradient element: |ours − torch| ≤ max(1e-5, 1e-6·|torch|),
//! i.e. absolute 1e-5 for ordinary magnitudes, relative 1e-6 for the large-logit cases (losses ~1e4,
//! where float32 itself only resolves ~1e-3).

use std::path::PathBuf;

use burn::prelude::*;
use kiln_loss::{
    bce_with_logits, cross_entropy, cross_entropy_ignoring, huber, mse, DistillationLoss, Loss,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixtures {
    cross_entropy: Vec<CeCase>,
    distillation: Vec<KdCase>,
    mse: Vec<MseCase>,
    huber: Vec<HuberCase>,
    bce: Vec<BceCase>,
    token_ce: Vec<TokenCeCase>,
}

#[derive(Deserialize)]
struct TokenCeCase {
    name: String,
    logits: Vec<Vec<f32>>,
    targets: Vec<i64>,
    loss: f32,
    grad: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct HuberCase {
    name: String,
    predictions: Vec<Vec<f32>>,
    targets: Vec<Vec<f32>>,
    delta: f64,
    loss: f32,
    grad: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct BceCase {
    name: String,
    logits: Vec<Vec<f32>>,
    targets: Vec<Vec<f32>>,
    pos_weight: Option<Vec<f32>>,
    loss: f32,
    grad: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct CeCase {
    name: String,
    logits: Vec<Vec<f32>>,
    targets: Vec<i64>,
    label_smoothing: f64,
    class_weights: Option<Vec<f32>>,
    loss: f32,
    grad: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct KdCase {
    name: String,
    student: Vec<Vec<f32>>,
    teacher: Vec<Vec<f32>>,
    targets: Vec<i64>,
    temperature: f64,
    alpha: f64,
    label_smoothing: f64,
    class_weights: Option<Vec<f32>>,
    loss: f32,
    grad: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct MseCase {
    name: String,
    predictions: Vec<Vec<f32>>,
    targets: Vec<Vec<f32>>,
    loss: f32,
    grad: Vec<Vec<f32>>,
}

fn fixtures() -> Fixtures {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/losses.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("losses.json")
}

fn device() -> Device {
    Device::flex().autodiff()
}

fn matrix(rows: &[Vec<f32>], device: &Device) -> Tensor<2> {
    let cols = rows[0].len();
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), cols]), device)
}

fn ints(values: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
}

fn vector(values: &[f32], device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
}

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Largest |ours − torch| seen, and the largest as a fraction of its tolerance.
#[derive(Default, Debug)]
struct Worst {
    value_abs: f32,
    grad_abs: f32,
    tol_fraction: f32,
}

fn tolerance(reference: f32) -> f32 {
    f32::max(1e-5, 1e-6 * reference.abs())
}

impl Worst {
    fn check(&mut self, case: &str, what: &str, ours: &[f32], reference: &[f32]) {
        assert_eq!(ours.len(), reference.len(), "{case}: {what} length");
        for (i, (&o, &r)) in ours.iter().zip(reference).enumerate() {
            assert!(o.is_finite(), "{case}: {what}[{i}] = {o}");
            let diff = (o - r).abs();
            let tol = tolerance(r);
            assert!(
                diff <= tol,
                "{case}: {what}[{i}] = {o}, torch {r}, |Δ| {diff:e} > {tol:e}"
            );
            if what == "loss" {
                self.value_abs = self.value_abs.max(diff);
            } else {
                self.grad_abs = self.grad_abs.max(diff);
            }
            self.tol_fraction = self.tol_fraction.max(diff / tol);
        }
    }
}

/// Loss value and gradient w.r.t. `x`, computed by `f` on a fresh autodiff leaf.
fn value_and_grad(x: Tensor<2>, f: impl FnOnce(Tensor<2>) -> Tensor<1>) -> (Vec<f32>, Vec<f32>) {
    let x = x.require_grad();
    let loss = f(x.clone());
    assert_eq!(loss.dims(), [1]);
    let grads = loss.backward();
    let grad = x.grad(&grads).expect("gradient w.r.t. the logits");
    (floats(loss), floats(grad))
}

fn flat(rows: &[Vec<f32>]) -> Vec<f32> {
    rows.iter().flatten().copied().collect()
}

#[test]
fn cross_entropy_matches_pytorch() {
    let dev = device();
    let mut worst = Worst::default();
    let cases = fixtures().cross_entropy;
    assert!(cases.len() >= 8);
    for case in &cases {
        let targets = ints(&case.targets, &dev);
        let weights = case.class_weights.as_deref().map(|w| vector(w, &dev));
        let (value, grad) = value_and_grad(matrix(&case.logits, &dev), |logits| {
            cross_entropy(logits, targets.clone(), case.label_smoothing, weights)
        });
        worst.check(&case.name, "loss", &value, &[case.loss]);
        worst.check(&case.name, "grad", &grad, &flat(&case.grad));

        // The trainer-facing config builds the same weights on the logits' device.
        let config = Loss::CrossEntropy {
            label_smoothing: case.label_smoothing,
            class_weights: case.class_weights.clone(),
        };
        config.validate_for_classes(case.logits[0].len()).unwrap();
        let (value2, grad2) = value_and_grad(matrix(&case.logits, &dev), |logits| {
            config.forward(logits, targets)
        });
        assert_eq!(
            (value2, grad2),
            (value, grad),
            "{}: Loss::forward",
            case.name
        );
    }
    eprintln!("cross_entropy: {} cases, worst {worst:?}", cases.len());
}

#[test]
fn distillation_matches_pytorch() {
    let dev = device();
    let mut worst = Worst::default();
    let cases = fixtures().distillation;
    assert!(cases.len() >= 6);
    for case in &cases {
        let kd = DistillationLoss {
            temperature: case.temperature,
            alpha: case.alpha,
            label_smoothing: case.label_smoothing,
            class_weights: case.class_weights.clone(),
        };
        kd.validate_for_classes(case.student[0].len()).unwrap();
        let teacher = matrix(&case.teacher, &dev);
        let targets = ints(&case.targets, &dev);
        let (value, grad) = value_and_grad(matrix(&case.student, &dev), |student| {
            kd.forward(student, teacher, targets)
        });
        worst.check(&case.name, "loss", &value, &[case.loss]);
        worst.check(&case.name, "grad", &grad, &flat(&case.grad));
    }
    eprintln!("distillation: {} cases, worst {worst:?}", cases.len());
}

#[test]
fn mse_matches_pytorch() {
    let dev = device();
    let mut worst = Worst::default();
    let cases = fixtures().mse;
    assert!(!cases.is_empty(), "no mse cases in losses.json");
    for case in &cases {
        let targets = matrix(&case.targets, &dev);
        let (value, grad) = value_and_grad(matrix(&case.predictions, &dev), |p| mse(p, targets));
        worst.check(&case.name, "loss", &value, &[case.loss]);
        worst.check(&case.name, "grad", &grad, &flat(&case.grad));
    }
    eprintln!("mse: worst {worst:?}");
}

#[test]
fn huber_matches_pytorch() {
    let dev = device();
    let mut worst = Worst::default();
    let cases = fixtures().huber;
    assert!(cases.len() >= 2, "no huber cases in losses.json");
    for case in &cases {
        let targets = matrix(&case.targets, &dev);
        let (value, grad) = value_and_grad(matrix(&case.predictions, &dev), |p| {
            huber(p, targets, case.delta)
        });
        worst.check(&case.name, "loss", &value, &[case.loss]);
        worst.check(&case.name, "grad", &grad, &flat(&case.grad));
    }
    eprintln!("huber: worst {worst:?}");
}

#[test]
fn bce_with_logits_matches_pytorch() {
    let dev = device();
    let mut worst = Worst::default();
    let cases = fixtures().bce;
    assert!(cases.len() >= 4, "no bce cases in losses.json");
    for case in &cases {
        let targets = matrix(&case.targets, &dev);
        let (value, grad) = value_and_grad(matrix(&case.logits, &dev), |x| {
            bce_with_logits(x, targets, case.pos_weight.as_deref())
        });
        worst.check(&case.name, "loss", &value, &[case.loss]);
        worst.check(&case.name, "grad", &grad, &flat(&case.grad));
    }
    eprintln!("bce_with_logits: worst {worst:?}");
}

#[test]
fn token_cross_entropy_skips_ignored_pieces_as_pytorch_does() {
    let dev = device();
    let mut worst = Worst::default();
    let cases = fixtures().token_ce;
    assert!(!cases.is_empty(), "no token_ce cases in losses.json");
    for case in &cases {
        let targets = ints(&case.targets, &dev);
        let (value, grad) = value_and_grad(matrix(&case.logits, &dev), |x| {
            cross_entropy_ignoring(x, targets)
        });
        worst.check(&case.name, "loss", &value, &[case.loss]);
        worst.check(&case.name, "grad", &grad, &flat(&case.grad));
        // A target past the classes (a tag training never had) is skipped like -100.
        let classes = case.logits[0].len() as i64;
        let unseen: Vec<i64> = case
            .targets
            .iter()
            .map(|&t| if t == -100 { classes + 2 } else { t })
            .collect();
        let (value, _) = value_and_grad(matrix(&case.logits, &dev), |x| {
            cross_entropy_ignoring(x, ints(&unseen, &dev))
        });
        worst.check(&case.name, "loss, unseen tags", &value, &[case.loss]);
    }
    // Nothing labelled: no loss, no gradient (PyTorch would give NaN).
    let (value, grad) = value_and_grad(matrix(&[vec![1.0, 2.0]], &dev), |x| {
        cross_entropy_ignoring(x, ints(&[-100], &dev))
    });
    assert_eq!((value, grad), (vec![0.0], vec![0.0, 0.0]));
    eprintln!("cross_entropy_ignoring: worst {worst:?}");
}
