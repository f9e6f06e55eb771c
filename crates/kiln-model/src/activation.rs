//! GELU computed on the host for CPU devices.
//!
//! flex evaluates GELU's error function with libm's scalar `erff`, element by element, forward
//! and again backward: profiles of MiniLM put it at ~21% of an inference pass and ~10% of a
//! training step (BENCHMARKS.md). Here, on CPU devices, GELU and its derivative come from one
//! branch-free pass (a rational erf and a polynomial exp that the compiler vectorises) over the
//! input, split across rayon's threads. Other devices keep burn's `gelu`.
//!
//! On an autodiff device the result is `g + (x − detach(x))·d` with `g = gelu(x)` and
//! `d = gelu'(x)` as constants: the second term is exactly zero forward, and backward it gives
//! the gradient `d·grad` — burn's autodiff needs no custom op.

use crate::simd::vectorized;
use burn::prelude::*;
use burn::tensor::{activation, DType};
use rayon::prelude::*;

/// Whether work for `device` may be done on the host: CPU backends, whose tensors live there. The
/// dispatch enum's variants depend on the backend features the final binary enables, which this
/// crate cannot see: its `Debug` name can.
pub fn is_cpu(device: &Device) -> bool {
    let name = format!("{:?}", device.clone().without_autodiff().as_dispatch());
    name.starts_with("Flex") || name.starts_with("NdArray")
}

/// erf(x) for f32, branch-free: a rational minimax approximation on [-4, 4] (erf is ±1 in f32
/// beyond). Max abs error below 5e-7 against libm (tested below).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.954_600_1e-3;
    p = p * x2 + -1.609_603_3e-2;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329e-3;
    q = q * x2 + -1.426_474e-2;
    x * p / q
}

/// e^x for x ≤ 0 (clamped below at -87), branch-free: 2^k·e^r with r in [-ln2/2, ln2/2] and a
/// degree-7 polynomial for e^r. Relative error ~2e-7.
#[inline(always)]
fn exp_non_positive(x: f32) -> f32 {
    let x = x.clamp(-87.0, 0.0);
    // Round to nearest without a libm call: adding 1.5·2^23 pushes the fraction out.
    const ROUND: f32 = 12_582_912.0;
    let k = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - k * 0.693_145_75 - k * 1.428_606_8e-6;
    let mut p = 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    p * f32::from_bits(((k as i32 + 127) << 23) as u32)
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1/√(2π).
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;
/// Elements per rayon task: small tensors stay on one thread.
const CHUNK: usize = 1 << 15;

/// Φ(x), the standard normal CDF.
#[inline(always)]
fn normal_cdf(x: f32) -> f32 {
    0.5 * (1.0 + erf(x * FRAC_1_SQRT_2))
}

/// gelu of every value, in place: gelu(x) = x·Φ(x) (HF's exact "gelu").
pub fn gelu_in_place(values: &mut [f32]) {
    values
        .par_chunks_mut(CHUNK)
        .for_each(|chunk| vectorized(|| chunk.iter_mut().for_each(|v| *v *= normal_cdf(*v))));
}

/// (gelu(x), gelu'(x)) of every value.
pub fn gelu_with_grad(values: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut out = vec![0f32; values.len()];
    let mut grad = vec![0f32; values.len()];
    out.par_chunks_mut(CHUNK)
        .zip(grad.par_chunks_mut(CHUNK))
        .zip(values.par_chunks(CHUNK))
        .for_each(|((out, grad), x)| {
            vectorized(|| {
                for ((o, g), &x) in out.iter_mut().zip(grad.iter_mut()).zip(x) {
                    // gelu(x) = x·Φ(x), gelu'(x) = Φ(x) + x·φ(x): one erf for both.
                    let cdf = normal_cdf(x);
                    *o = x * cdf;
                    *g = cdf + x * FRAC_1_SQRT_2PI * exp_non_positive(-0.5 * x * x);
                }
            })
        });
    (out, grad)
}

/// GELU (the exact, erf-based one), on the host for f32 tensors on CPU devices.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    if x.dtype() != DType::F32 || !is_cpu(&device) {
        return activation::gelu(x);
    }
    let shape = x.shape();
    if !device.is_autodiff() {
        // The input is not needed afterwards: no clone, so the backend may hand over its buffer.
        let mut values = x
            .into_data()
            .try_into_vec::<f32>()
            .expect("an f32 tensor holds f32 values");
        gelu_in_place(&mut values);
        return Tensor::from_data(TensorData::new(values, shape), &device);
    }
    let Ok(values) = x.clone().into_data().try_into_vec::<f32>() else {
        return activation::gelu(x);
    };
    let (out, grad) = gelu_with_grad(&values);
    let out = Tensor::<D>::from_data(TensorData::new(out, shape.clone()), &device);
    let grad = Tensor::<D>::from_data(TensorData::new(grad, shape), &device);
    // Zero forward, `grad` backward: the value is `out`, the derivative gelu'(x).
    out + (x.clone() - x.detach()) * grad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> impl Iterator<Item = f32> {
        (-120_000..=120_000).map(|i| i as f32 * 1e-4)
    }

    #[test]
    fn erf_matches_libm() {
        let worst = grid()
            .map(|x| (erf(x) - libm::erff(x)).abs())
            .fold(0f32, f32::max);
        assert!(worst < 5e-7, "max |erf - libm::erff| = {worst}");
        // Beyond the clamp, ±1 within the same tolerance.
        assert!((erf(-30.0) + 1.0).abs() < 5e-7 && (erf(30.0) - 1.0).abs() < 5e-7);
    }

    #[test]
    fn exp_matches_std() {
        let worst = (0..=870_000)
            .map(|i| -(i as f32) * 1e-4)
            .map(|x| ((exp_non_positive(x) - x.exp()) / x.exp().max(f32::MIN_POSITIVE)).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-6, "max relative error {worst}");
    }

    #[test]
    fn gelu_and_its_derivative_match_the_definitions() {
        let xs: Vec<f32> = grid().collect();
        let (out, grad) = gelu_with_grad(&xs);
        for ((&x, &y), &g) in xs.iter().zip(&out).zip(&grad) {
            let x64 = x as f64;
            let cdf = 0.5 * (1.0 + libm::erf(x64 / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * x64 * x64).exp() / (2.0 * std::f64::consts::PI).sqrt();
            assert!(
                (y as f64 - x64 * cdf).abs() < 2e-6,
                "gelu({x}) = {y}, want {}",
                x64 * cdf
            );
            assert!(
                (g as f64 - (cdf + x64 * pdf)).abs() < 2e-6,
                "gelu'({x}) = {g}, want {}",
                cdf + x64 * pdf
            );
        }
        let mut in_place = xs.clone();
        gelu_in_place(&mut in_place);
        assert_eq!(in_place, out);
    }

    #[test]
    fn on_a_training_device_the_value_is_gelu_and_the_gradient_its_derivative() {
        let device = Device::flex().autodiff();
        let xs: Vec<f32> = (-40..40).map(|i| i as f32 * 0.17).collect();
        // Two leaves, so that the two graphs stay apart.
        let leaf = || {
            Tensor::<1>::from_data(TensorData::new(xs.clone(), [xs.len()]), &device).require_grad()
        };
        let (x, x_burn) = (leaf(), leaf());
        let y = gelu(x.clone());
        let reference = activation::gelu(x_burn.clone());
        let ours: Vec<f32> = y.clone().into_data().try_to_vec::<f32>().unwrap();
        let burns: Vec<f32> = reference.clone().into_data().try_to_vec::<f32>().unwrap();
        for (a, b) in ours.iter().zip(&burns) {
            assert!((a - b).abs() < 1e-6, "{a} vs burn's {b}");
        }
        let ours_grad: Vec<f32> = x
            .grad(&y.sum().backward())
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let burns_grad: Vec<f32> = x_burn
            .grad(&reference.sum().backward())
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (a, b) in ours_grad.iter().zip(&burns_grad) {
            assert!((a - b).abs() < 1e-6, "gradient {a} vs burn's {b}");
        }
        // An inference device takes the in-place path.
        let plain = Tensor::<1>::from_data(TensorData::new(xs, [80]), &Device::flex());
        let inferred: Vec<f32> = gelu(plain).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(inferred, ours);
    }
}
