//! AdamW whose CPU step is one pass over each parameter.
//!
//! burn's `AdamW` updates a parameter in about thirteen element-wise tensor operations, each
//! allocating and filling a new tensor the size of the parameter (for the word embeddings, 47 MB
//! and above glibc's mmap threshold, so page-faulted anew each time): a fifth of a CPU training
//! step (BENCHMARKS.md). On a CPU device, where tensors live in host memory, [`FusedAdamW`] does
//! the same arithmetic, in the same order and precision, in one parallel loop (compiled for
//! AVX-512/AVX2 at run time, `kiln_model::simd`). Elsewhere (GPUs, non-f32 parameters) it is
//! burn's `AdamW`. Its state is burn's `AdamWState`, so optimizer records and checkpoints are
//! the same either way.

use burn::optim::{AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::tensor::{DType, Device, Tensor, TensorData};
use kiln_model::activation::is_cpu;
use kiln_model::simd::vectorized;
use rayon::prelude::*;

/// Elements per parallel task: small parameters (biases, LayerNorm) stay on one thread.
const CHUNK: usize = 1 << 15;

/// AdamW (decoupled weight decay, bias-corrected moments) as burn-optim defines it.
#[derive(Clone)]
pub struct FusedAdamW {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
    /// burn's own AdamW with the same settings, for tensors that do not live on the host.
    fallback: AdamW,
}

impl FusedAdamW {
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32) -> Self {
        let fallback = AdamWConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .with_weight_decay(weight_decay)
            .build();
        Self {
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
            fallback,
        }
    }
}

fn host_values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .try_into_vec::<f32>()
        .expect("an f32 tensor holds f32 values")
}

impl Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let f32_state = state.as_ref().is_none_or(|s| {
            s.momentum.moment_1.dtype() == DType::F32
                && s.momentum.moment_2.dtype() == DType::F32
                && s.momentum.max_moment_2.is_none()
        });
        let device: Device = tensor.device();
        if !(is_cpu(&device)
            && tensor.dtype() == DType::F32
            && grad.dtype() == DType::F32
            && f32_state)
        {
            return self.fallback.step(lr, tensor, grad, state);
        }
        let shape = tensor.shape();
        let mut param = host_values(tensor);
        let grad = host_values(grad);
        let (time, mut m, mut v) = match state {
            Some(s) => (
                s.momentum.time + 1,
                host_values(s.momentum.moment_1),
                host_values(s.momentum.moment_2),
            ),
            None => (1, vec![0.0; param.len()], vec![0.0; param.len()]),
        };

        // Every operation below is one of burn's AdamW tensor operations on the same f32 values
        // with the same scalars (burn passes `1 - lr·wd` and `lr` as f64 and the backend rounds
        // them to f32), so both give the same numbers (tested).
        let (b1, b2, eps) = (self.beta_1, self.beta_2, self.epsilon);
        let (f1, f2) = (1.0 - b1, 1.0 - b2);
        let power = i32::try_from(time).unwrap_or(i32::MAX);
        let (c1, c2) = (1f32 - b1.powi(power), 1f32 - b2.powi(power));
        let decay_rate = lr * self.weight_decay as f64;
        let keep = (decay_rate != 0.0).then_some((1.0 - decay_rate) as f32);
        let update = Update {
            b1,
            b2,
            f1,
            f2,
            c1,
            c2,
            eps,
            keep,
            lr: lr as f32,
        };
        param
            .par_chunks_mut(CHUNK)
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .zip(grad.par_chunks(CHUNK))
            .for_each(|(((p, m), v), g)| update.apply(p, m, v, g));

        let tensor = |values: Vec<f32>| {
            Tensor::<D>::from_data(TensorData::new(values, shape.clone()), &device)
        };
        let momentum = AdaptiveMomentumState::new(time, tensor(m), tensor(v));
        (tensor(param), Some(AdamWState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        AdamW::to_device(state, device)
    }
}

/// One step's constants; `apply` updates a chunk of parameter, moments and gradient in place.
struct Update {
    b1: f32,
    b2: f32,
    f1: f32,
    f2: f32,
    c1: f32,
    c2: f32,
    eps: f32,
    /// `1 - lr·wd`, or `None` without weight decay (burn then leaves the parameter as it is).
    keep: Option<f32>,
    lr: f32,
}

impl Update {
    fn apply(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        let Self {
            b1,
            b2,
            f1,
            f2,
            c1,
            c2,
            eps,
            keep,
            lr,
        } = *self;
        let elements = p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g);
        vectorized(|| match keep {
            Some(keep) => elements.for_each(|(((p, m), v), &g)| {
                *m = *m * b1 + g * f1;
                *v = *v * b2 + (g * g) * f2;
                *p = *p * keep - (*m / c1) / ((*v / c2).sqrt() + eps) * lr;
            }),
            None => elements.for_each(|(((p, m), v), &g)| {
                *m = *m * b1 + g * f1;
                *v = *v * b2 + (g * g) * f2;
                *p -= (*m / c1) / ((*v / c2).sqrt() + eps) * lr;
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn random(shape: [usize; 2], device: &Device) -> Tensor<2> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
    }

    fn values(t: &Tensor<2>) -> Vec<f32> {
        t.to_data().try_into_vec::<f32>().unwrap()
    }

    /// Ten steps with changing rates and gradients, with and without weight decay, on a tensor
    /// large enough to be split over threads: the fused step gives burn's numbers.
    #[test]
    fn fused_steps_match_burns_adamw() {
        let device = Device::default();
        assert!(is_cpu(&device), "the test is about the fused (host) path");
        for weight_decay in [0.0f32, 0.01] {
            let fused = FusedAdamW::new(0.9, 0.999, 1e-8, weight_decay);
            let reference = AdamWConfig::new()
                .with_beta_1(0.9)
                .with_beta_2(0.999)
                .with_epsilon(1e-8)
                .with_weight_decay(weight_decay)
                .build();
            let start = random([300, 257], &device);
            let (mut p_fused, mut s_fused) = (start.clone(), None);
            let (mut p_ref, mut s_ref) = (start, None);
            for step in 0..10 {
                let grad = random([300, 257], &device).mul_scalar(0.1 * (step + 1) as f64);
                let lr = 5e-5 * (step as f64 + 1.0) / 3.0;
                (p_fused, s_fused) = fused.step(lr, p_fused, grad.clone(), s_fused);
                (p_ref, s_ref) = reference.step(lr, p_ref, grad, s_ref);
                let (sf, sr) = (s_fused.as_ref().unwrap(), s_ref.as_ref().unwrap());
                assert_eq!(sf.momentum.time, sr.momentum.time);
                for (what, a, b) in [
                    ("parameter", values(&p_fused), values(&p_ref)),
                    (
                        "first moment",
                        values(&sf.momentum.moment_1),
                        values(&sr.momentum.moment_1),
                    ),
                    (
                        "second moment",
                        values(&sf.momentum.moment_2),
                        values(&sr.momentum.moment_2),
                    ),
                ] {
                    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                        assert!(
                            x.to_bits() == y.to_bits(),
                            "{what}[{i}] after step {step} (wd {weight_decay}): fused {x} vs burn {y}"
                        );
                    }
                }
            }
        }
    }
}
