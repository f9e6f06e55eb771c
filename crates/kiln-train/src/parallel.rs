//! Synchronous data parallelism: one micro-batch split over several devices.
//!
//! This is burn-train's `MultiDevice(OptimMainDevice)` strategy taken apart for kiln's own loop
//! (burn's `Learner` would take over the loop, which owns global-norm clipping, averaging
//! accumulation and mid-epoch checkpoints): the model lives on the first device with the
//! optimizer; each step every device gets a `fork` of it (the weights, a fresh autodiff graph,
//! the same parameter ids), runs forward and backward on its slice of the batch in its own
//! thread, and the gradients come back to the first device through `GradientsParams::to_device`
//! and burn's `GradientsAccumulator`. Unlike burn-train, which sums the devices' gradients (n
//! devices act like n× the learning rate), each shard's loss is weighted by its share of the
//! batch, so the sum is the gradient of the whole batch's mean loss: a step on n devices is the
//! step one device would take on the same batch (up to float summation order).
//!
//! burn 0.22's collective all-reduce (`burn::tensor::distributed`) runs only on CUDA (NCCL); the
//! path here works on every backend.

use std::ops::Range;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;

use kiln_data::TokenBatch;
use kiln_model::dropout::mix;
use kiln_model::BertClassifier;

/// The loss of a shard: its logits, its targets and the rows of the batch it holds.
pub type ShardLoss<'a> = dyn Fn(Tensor<2>, Tensor<1, Int>, Range<usize>) -> Tensor<1> + Sync + 'a;

/// What one data-parallel micro-step produced.
pub struct ParallelStep {
    /// The batch's mean loss (the weighted sum of the shards' losses).
    pub loss: f64,
    /// The batch's gradients, on the first device.
    pub grads: GradientsParams,
    /// The first device's forward and backward time (the others run alongside).
    pub forward_seconds: f64,
    pub backward_seconds: f64,
}

/// Contiguous row ranges, one per device, sizes differing by at most one; devices beyond the
/// batch's size get none.
pub fn shard_rows(rows: usize, devices: usize) -> Vec<Range<usize>> {
    let devices = devices.max(1);
    let (base, extra) = (rows / devices, rows % devices);
    let mut start = 0;
    (0..devices)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let range = start..start + len;
            start += len;
            range
        })
        .filter(|r| !r.is_empty())
        .collect()
}

fn rows_of(
    batch: &TokenBatch,
    targets: &Tensor<1, Int>,
    rows: &Range<usize>,
    device: &Device,
) -> (TokenBatch, Tensor<1, Int>) {
    let (start, len) = (rows.start, rows.len());
    let tokens = TokenBatch {
        input_ids: batch
            .input_ids
            .clone()
            .narrow(0, start, len)
            .to_device(device),
        token_type_ids: batch
            .token_type_ids
            .clone()
            .narrow(0, start, len)
            .to_device(device),
        attention_mask: batch
            .attention_mask
            .clone()
            .narrow(0, start, len)
            .to_device(device),
        lengths: batch.lengths[rows.clone()].to_vec(),
        packing: None,
    };
    (
        tokens,
        targets.clone().narrow(0, start, len).to_device(device),
    )
}

/// Forward and backward of `batch` split over `devices` (autodiff devices; `model` lives on the
/// first). `seed` seeds each shard's dropout (shard i draws from `mix(seed, i)`).
pub fn data_parallel_step(
    model: &BertClassifier,
    devices: &[Device],
    batch: &TokenBatch,
    targets: &Tensor<1, Int>,
    seed: u64,
    loss_of: &ShardLoss<'_>,
) -> ParallelStep {
    let main = &devices[0];
    let total = targets.dims()[0].max(1);
    let shards = shard_rows(targets.dims()[0], devices.len());
    let results: Vec<(GradientsParams, f64, f64, f64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = shards
            .iter()
            .zip(devices)
            .enumerate()
            .map(|(i, (rows, device))| {
                let replica = model.clone().fork(device);
                let (tokens, shard_targets) = rows_of(batch, targets, rows, device);
                let weight = rows.len() as f64 / total as f64;
                let rows = rows.clone();
                scope.spawn(move || {
                    // Dropout masks: kiln's are per thread; burn's generator (GPU devices) is one
                    // per process, so there the masks depend on the threads' interleaving.
                    let shard_seed = mix(seed, i as u64);
                    kiln_model::dropout::seed(shard_seed);
                    device.seed(shard_seed);
                    let start = Instant::now();
                    let logits = replica.forward(
                        tokens.input_ids,
                        tokens.token_type_ids,
                        tokens.attention_mask,
                    );
                    let loss = loss_of(logits, shard_targets, rows).mul_scalar(weight);
                    let value = loss.clone().into_scalar::<f64>();
                    let forward = start.elapsed().as_secs_f64();
                    let grads = GradientsParams::from_grads(loss.backward(), &replica);
                    let _ = device.sync();
                    (
                        grads,
                        value,
                        forward,
                        start.elapsed().as_secs_f64() - forward,
                    )
                })
            })
            .collect();
        // Joined in device order: the gradients are summed in a fixed order.
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    let gather = Instant::now();
    let mut accumulator = GradientsAccumulator::<BertClassifier>::new();
    let mut loss = 0.0;
    let (mut forward_seconds, mut backward_seconds) = (0.0, 0.0);
    for (i, (grads, value, forward, backward)) in results.into_iter().enumerate() {
        accumulator.accumulate(model, grads.to_device(main, model));
        loss += value;
        if i == 0 {
            (forward_seconds, backward_seconds) = (forward, backward);
        }
    }
    let grads = accumulator.grads();
    let _ = main.sync();
    ParallelStep {
        loss,
        grads,
        forward_seconds,
        backward_seconds: backward_seconds + gather.elapsed().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::shard_rows;

    #[test]
    fn shards_cover_every_row_once_and_differ_by_at_most_one() {
        for rows in 0..40 {
            for devices in 1..6 {
                let shards = shard_rows(rows, devices);
                let lens: Vec<usize> = shards.iter().map(|r| r.len()).collect();
                assert_eq!(lens.iter().sum::<usize>(), rows);
                assert!(shards.len() <= devices && shards.iter().all(|r| !r.is_empty()));
                assert!(lens.iter().max().unwrap_or(&0) - lens.iter().min().unwrap_or(&0) <= 1);
                for pair in shards.windows(2) {
                    assert_eq!(pair[0].end, pair[1].start);
                }
            }
        }
    }
}
