//! Dropout with masks drawn on the host for CPU devices.
//!
//! burn's `Dropout` draws its mask through the backend's generator; on the CPU backends that is a
//! scalar ChaCha stream producing one `f64` per element, then two multiplications (by the mask, by
//! 1/keep), each recorded for backpropagation. A profile of fine-tuning MiniLM on flex put the
//! random numbers alone at ~8% of a training step. Here the mask is filled on the host by a
//! wyrand stream (one 64-bit draw per two elements) as booleans (a quarter of an f32 mask's
//! memory, held until backward) and applied with `mask_fill` and one scaling. GPU devices keep
//! burn's `Dropout` (their generator runs on the device; a host mask would cross the bus on every
//! layer).
//!
//! The layer stays burn's `Dropout` module (same fields, same freeze/`valid()` behaviour); only
//! its forward goes through [`forward`].
//!
//! Each mask's stream is seeded from burn's generator (four 16-bit draws), so `device.seed(s)`
//! makes masks repeat exactly as it does for burn's `Dropout`. A thread that called [`seed`]
//! draws from its own counter instead: data-parallel workers, which would otherwise race for
//! burn's one process-wide generator.

use std::cell::Cell;

use burn::nn::Dropout;
use burn::prelude::*;
use burn::tensor::Distribution;

use crate::activation::is_cpu;

thread_local! {
    /// (seed, masks drawn since it was set), once [`seed`] was called on this thread.
    static STREAM: Cell<Option<(u64, u64)>> = const { Cell::new(None) };
}

/// Seeds this thread's dropout masks (and restarts their count): from now on they no longer come
/// from burn's generator.
pub fn seed(seed: u64) {
    STREAM.with(|s| s.set(Some((seed, 0))));
}

/// The seed of the next mask's stream.
fn next_stream_seed(device: &Device) -> u64 {
    if let Some((seed, drawn)) = STREAM.with(|s| s.get()) {
        STREAM.with(|s| s.set(Some((seed, drawn + 1))));
        return mix(seed, drawn);
    }
    // Four 16-bit draws: exact in every int dtype a backend may use.
    let draws = Tensor::<1, Int>::random(
        [4],
        Distribution::Uniform(0.0, 65536.0),
        &device.clone().without_autodiff(),
    );
    let words = draws
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap_or_default();
    words
        .iter()
        .fold(0u64, |acc, &w| (acc << 16) | (w as u64 & 0xffff))
}

/// splitmix64: decorrelates nearby (seed, counter) pairs.
pub fn mix(seed: u64, counter: u64) -> u64 {
    let mut z = seed ^ counter.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// wyrand: one multiply per 64 random bits, enough quality for Bernoulli masks.
struct WyRand(u64);

impl WyRand {
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = (self.0 as u128).wrapping_mul((self.0 ^ 0xe703_7ed1_a0b4_28db) as u128);
        (t >> 64) as u64 ^ t as u64
    }
}

/// `n` draws, each `true` (dropped) with probability 1 − `keep`.
pub fn host_dropped(stream_seed: u64, n: usize, keep: f64) -> Vec<bool> {
    // keep < 1 (prob > 0), so the threshold fits in u32 and `u < threshold` has probability keep
    // up to 2^-32.
    let threshold = (keep * 4_294_967_296.0) as u64;
    let mut rng = WyRand(stream_seed);
    let mut dropped = vec![false; n];
    let mut pairs = dropped.chunks_exact_mut(2);
    for pair in &mut pairs {
        let r = rng.next();
        pair[0] = (r & 0xffff_ffff) >= threshold;
        pair[1] = (r >> 32) >= threshold;
    }
    if let [last] = pairs.into_remainder() {
        *last = (rng.next() & 0xffff_ffff) >= threshold;
    }
    dropped
}

/// Whether `dropout` changes its input on `device`: burn's conditions (a frozen or `valid()`
/// layer, an inference device or p = 0 leave the input alone).
fn active(dropout: &Dropout, device: &Device) -> bool {
    dropout.training.is_enabled() && device.is_autodiff() && dropout.prob > 0.0
}

/// `dropout.forward(input)`, with the mask drawn on the host on CPU devices.
pub fn forward<const D: usize>(dropout: &Dropout, input: Tensor<D>) -> Tensor<D> {
    let device = input.device();
    if !active(dropout, &device) {
        return input;
    }
    if !is_cpu(&device) {
        return dropout.forward(input);
    }
    let keep = 1.0 - dropout.prob;
    let shape = input.shape();
    let stream_seed = next_stream_seed(&device);
    let dropped = host_dropped(stream_seed, shape.num_elements(), keep);
    let dropped = Tensor::<D, Bool>::from_data(TensorData::new(dropped, shape), &device);
    // A boolean mask (one byte an element) is what backpropagation keeps until the backward
    // pass: a quarter of an f32 mask's memory, and activations are most of a step's peak.
    input.mask_fill(dropped, 0.0).mul_scalar(1.0 / keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_drop_the_expected_share_and_replay_from_their_seed() {
        let n = 1_000_001;
        let dropped = host_dropped(7, n, 0.9);
        let share = dropped.iter().filter(|&&d| d).count() as f64 / n as f64;
        // Binomial sd at n = 1e6, p = 0.1 is 3e-4: 5 sd.
        assert!((share - 0.1).abs() < 1.5e-3, "dropped share {share}");
        // Same seed, same mask; another seed, another mask.
        assert_eq!(dropped, host_dropped(7, n, 0.9));
        assert_ne!(dropped, host_dropped(8, n, 0.9));
    }

    #[test]
    fn neighbouring_elements_are_independent() {
        // Pairs share one 64-bit draw: their joint drop rate must still be p².
        let n = 2_000_000;
        let dropped = host_dropped(11, n, 0.5);
        let both = dropped.chunks_exact(2).filter(|p| p[0] && p[1]).count();
        let share = both as f64 / (n / 2) as f64;
        assert!((share - 0.25).abs() < 2e-3, "both dropped {share}");
    }

    #[test]
    fn forward_on_a_training_device_drops_scales_and_backpropagates_through_the_mask() {
        let _rng = crate::rng_lock();
        use burn::nn::DropoutConfig;
        let device = Device::flex().autodiff();
        let layer = DropoutConfig::new(0.25).init();
        let n = 40_000;
        let input = Tensor::<1>::ones([n], &device).require_grad();
        seed(5);
        let out = forward(&layer, input.clone());
        let values: Vec<f32> = out.clone().into_data().try_to_vec::<f32>().unwrap();
        let kept = values.iter().filter(|&&v| v != 0.0).count() as f64 / n as f64;
        assert!((kept - 0.75).abs() < 0.015, "kept {kept}");
        assert!(values
            .iter()
            .all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
        // d(sum(out))/d(input) is the mask itself.
        let grads = out.sum().backward();
        let grad: Vec<f32> = input
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(grad, values);
        // Reseeding replays the masks; the next draw differs.
        seed(5);
        let again: Vec<f32> = forward(&layer, Tensor::<1>::ones([n], &device))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(again, values);
        let next: Vec<f32> = forward(&layer, Tensor::<1>::ones([n], &device))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_ne!(next, values);
    }

    #[test]
    fn an_unseeded_thread_follows_burns_generator() {
        let _rng = crate::rng_lock();
        // A fresh thread: its stream was never seeded, so `device.seed` decides the masks.
        std::thread::spawn(|| {
            use burn::nn::DropoutConfig;
            let device = Device::flex().autodiff();
            let layer = DropoutConfig::new(0.5).init();
            let draw = || -> Vec<f32> {
                forward(&layer, Tensor::<1>::ones([4096], &device))
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap()
            };
            device.seed(9);
            let (first, second) = (draw(), draw());
            assert_ne!(first, second);
            device.seed(9);
            assert_eq!((draw(), draw()), (first, second));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn inference_and_valid_layers_leave_the_input_alone() {
        use burn::nn::DropoutConfig;
        let layer = DropoutConfig::new(0.5).init();
        let plain = Device::flex();
        let x = Tensor::<1>::ones([1000], &plain);
        let y: Vec<f32> = forward(&layer, x).into_data().try_to_vec::<f32>().unwrap();
        assert!(y.iter().all(|&v| v == 1.0));
        let ad = Device::flex().autodiff();
        let y: Vec<f32> = forward(&layer.valid(), Tensor::<1>::ones([1000], &ad))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(y.iter().all(|&v| v == 1.0));
    }
}
