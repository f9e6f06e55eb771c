//! Properties that need no PyTorch reference: the α ends of distillation, KD of a model with
//! itself, stability at huge logits, the teacher's detachment and config (de)serialisation.

use burn::prelude::*;
use kiln_loss::{cross_entropy, distillation_kl, mse, DistillationLoss, Loss};

fn device() -> Device {
    Device::flex().autodiff()
}

fn matrix(rows: &[&[f32]], device: &Device) -> Tensor<2> {
    let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), rows[0].len()]), device)
}

fn ints(values: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
}

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

const STUDENT: [&[f32]; 3] = [
    &[1.5, -0.3, 0.2, 2.0],
    &[-1.0, 0.0, 3.1, 0.4],
    &[0.7, 0.7, -2.2, 0.1],
];
const TEACHER: [&[f32]; 3] = [
    &[2.5, -1.0, 0.0, 1.0],
    &[0.0, 0.3, 4.0, -0.5],
    &[1.2, 0.1, -3.0, 0.9],
];
const TARGETS: [i64; 3] = [3, 2, 0];

fn value_and_grad(x: &[&[f32]], f: impl FnOnce(Tensor<2>) -> Tensor<1>) -> (Vec<f32>, Vec<f32>) {
    let x = matrix(x, &device()).require_grad();
    let loss = f(x.clone());
    let grads = loss.backward();
    (floats(loss), floats(x.grad(&grads).unwrap()))
}

fn kd(temperature: f64, alpha: f64) -> DistillationLoss {
    DistillationLoss {
        temperature,
        alpha,
        label_smoothing: 0.1,
        class_weights: Some(vec![0.5, 1.0, 2.0, 1.5]),
    }
}

#[test]
fn alpha_zero_is_exactly_cross_entropy() {
    let dev = device();
    let ce = value_and_grad(&STUDENT, |s| {
        let w = Tensor::from_data(TensorData::new(vec![0.5f32, 1.0, 2.0, 1.5], [4]), &dev);
        cross_entropy(s, ints(&TARGETS, &dev), 0.1, Some(w))
    });
    let distilled = value_and_grad(&STUDENT, |s| {
        kd(3.0, 0.0).forward(s, matrix(&TEACHER, &dev), ints(&TARGETS, &dev))
    });
    assert_eq!(distilled, ce);
}

#[test]
fn alpha_one_is_exactly_t_squared_kl() {
    let dev = device();
    let kl = value_and_grad(&STUDENT, |s| {
        distillation_kl(s, matrix(&TEACHER, &dev), 3.0)
    });
    let distilled = value_and_grad(&STUDENT, |s| {
        kd(3.0, 1.0).forward(s, matrix(&TEACHER, &dev), ints(&TARGETS, &dev))
    });
    assert_eq!(distilled, kl);
    assert!(kl.0[0] > 0.0);
}

#[test]
fn self_distillation_costs_nothing() {
    let dev = device();
    for temperature in [0.5, 1.0, 4.0] {
        let (value, grad) = value_and_grad(&STUDENT, |s| {
            kd(temperature, 1.0).forward(s, matrix(&STUDENT, &dev), ints(&TARGETS, &dev))
        });
        assert_eq!(value, [0.0], "T = {temperature}");
        assert!(
            grad.iter().all(|g| g.abs() < 1e-7),
            "T = {temperature}: {grad:?}"
        );
    }
}

#[test]
fn mixing_interpolates_the_two_terms() {
    let dev = device();
    let at = |alpha: f64| {
        let loss = kd(2.0, alpha).forward(
            matrix(&STUDENT, &dev),
            matrix(&TEACHER, &dev),
            ints(&TARGETS, &dev),
        );
        floats(loss)[0]
    };
    let (ce, kl, mixed) = (at(0.0), at(1.0), at(0.3));
    assert!(
        (mixed - (0.7 * ce + 0.3 * kl)).abs() < 1e-5,
        "{mixed} vs {ce}, {kl}"
    );
}

#[test]
fn teacher_gets_no_gradient() {
    let dev = device();
    let student = matrix(&STUDENT, &dev).require_grad();
    let teacher = matrix(&TEACHER, &dev).require_grad();
    let loss = kd(2.0, 0.5).forward(student.clone(), teacher.clone(), ints(&TARGETS, &dev));
    let grads = loss.backward();
    assert!(student.grad(&grads).is_some());
    assert!(
        teacher.grad(&grads).is_none(),
        "teacher logits must be detached"
    );
}

#[test]
fn teacher_may_come_from_an_inference_device() {
    // A teacher run without autodiff (the usual case) feeds an autodiff student's loss.
    let teacher = matrix(&TEACHER, &Device::flex());
    let (value, grad) = value_and_grad(&STUDENT, |s| {
        kd(2.0, 0.5).forward(s, teacher, ints(&TARGETS, &device()))
    });
    let reference = value_and_grad(&STUDENT, |s| {
        kd(2.0, 0.5).forward(s, matrix(&TEACHER, &device()), ints(&TARGETS, &device()))
    });
    assert_eq!((value, grad), reference);
}

#[test]
fn huge_logits_stay_finite() {
    let dev = device();
    let huge: [&[f32]; 3] = [
        &[1e4, -1e4, 0.0, 5e3],
        &[-1e4, -1e4, -1e4, 1e4],
        &[3e4, -3e4, 3e4, -3e4],
    ];
    let flipped: [&[f32]; 3] = [
        &[-1e4, 1e4, 0.0, -5e3],
        &[1e4, -1e4, 1e4, -1e4],
        &[-3e4, 3e4, 0.0, 3e4],
    ];
    let finite = |(value, grad): (Vec<f32>, Vec<f32>)| {
        assert!(
            value.iter().chain(&grad).all(|x| x.is_finite()),
            "{value:?} {grad:?}"
        );
        value[0]
    };
    let ce = finite(value_and_grad(&huge, |s| {
        Loss::CrossEntropy {
            label_smoothing: 0.1,
            class_weights: Some(vec![1.0, 2.0, 0.5, 1.0]),
        }
        .forward(s, ints(&TARGETS, &dev))
    }));
    assert!(ce > 1e3, "{ce}");
    for temperature in [1.0, 4.0] {
        for alpha in [0.0, 0.5, 1.0] {
            finite(value_and_grad(&huge, |s| {
                kd(temperature, alpha).forward(s, matrix(&flipped, &dev), ints(&TARGETS, &dev))
            }));
        }
    }
    // Confidently right (rows 0, 1) and a two-way tie (row 2): every other class's
    // probability underflows to 0, yet the loss is exactly (0 + 0 + ln 2) / 3.
    let right = finite(value_and_grad(&huge, |s| {
        cross_entropy(s, ints(&[0, 3, 0], &dev), 0.0, None)
    }));
    assert!(
        (right - std::f32::consts::LN_2 / 3.0).abs() < 1e-6,
        "{right}"
    );
}

#[test]
fn mse_is_mean_of_squares() {
    let dev = device();
    let p = matrix(&[&[1.0, 2.0], &[3.0, -1.0]], &dev);
    let t = matrix(&[&[0.0, 2.0], &[1.0, 1.0]], &dev);
    assert_eq!(floats(mse(p, t)), [(1.0 + 0.0 + 4.0 + 4.0) / 4.0]);
}

#[test]
fn configs_round_trip_through_json() {
    let loss = Loss::CrossEntropy {
        label_smoothing: 0.1,
        class_weights: Some(vec![0.2, 1.0, 3.0]),
    };
    let json = serde_json::to_string(&loss).unwrap();
    assert_eq!(
        json,
        r#"{"kind":"cross_entropy","label_smoothing":0.1,"class_weights":[0.2,1.0,3.0]}"#
    );
    assert_eq!(serde_json::from_str::<Loss>(&json).unwrap(), loss);
    let plain: Loss =
        serde_json::from_str(r#"{"kind":"cross_entropy","label_smoothing":0.0}"#).unwrap();
    assert_eq!(plain, Loss::default());

    let kd = kd(2.0, 0.5);
    let json = serde_json::to_string(&kd).unwrap();
    assert_eq!(serde_json::from_str::<DistillationLoss>(&json).unwrap(), kd);
}
