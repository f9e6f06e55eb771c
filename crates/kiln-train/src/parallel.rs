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

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;

use kiln_model::dropout::mix;

use crate::task::{Objective, TaskBatch, TaskModel};

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

/// One rayon pool per shard, kept for the whole run, splitting the process's threads between
/// them: each shard's ops run on its own cores (on a CPU, every core works on a shard instead
/// of waiting out the ops too small to split), and on the same threads step after step, so
/// their memory stays in the same allocator arenas. Empty when a pool cannot be built (the
/// shards then share the global pool).
pub fn shard_pools(shards: usize) -> Vec<rayon::ThreadPool> {
    let threads = (rayon::current_num_threads() / shards.max(1)).max(1);
    (0..shards)
        .map(|_| rayon::ThreadPoolBuilder::new().num_threads(threads).build())
        .collect::<Result<_, _>>()
        .unwrap_or_default()
}

/// Forward and backward of a micro-batch split into `shards` (each padded or packed on its
/// own), shard i on `devices[i]` (autodiff devices; `model` lives on the first) in `pools[i]`
/// (see [`shard_pools`]). Shard i's loss is a mean over `units[i]` (its examples, or its
/// labelled pieces for tags: see `TrainData::loss_units`) and weighs in by its share of them,
/// so that the shards add up to the whole micro-batch's mean. `seed` seeds each shard's
/// dropout (shard i draws from `mix(seed, i)`).
pub fn data_parallel_step<M: TaskModel>(
    model: &M,
    devices: &[Device],
    pools: &[rayon::ThreadPool],
    shards: Vec<TaskBatch>,
    units: &[usize],
    seed: u64,
    objective: &Objective,
) -> ParallelStep {
    let main = &devices[0];
    let total = units.iter().sum::<usize>().max(1);
    let results: Vec<(GradientsParams, f64, f64, f64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = shards
            .into_iter()
            .zip(devices)
            .enumerate()
            .map(|(i, (shard, device))| {
                let replica = model.clone().fork(device);
                let weight = units[i] as f64 / total as f64;
                let shard = shard.to_device(device);
                scope.spawn(move || {
                    let run = move || {
                        // Dropout masks: kiln's are per thread; burn's generator (GPU devices) is
                        // one per process, so there the masks depend on the threads' interleaving.
                        let shard_seed = mix(seed, i as u64);
                        kiln_model::dropout::seed(shard_seed);
                        device.seed(shard_seed);
                        let start = Instant::now();
                        let loss = replica.step(shard, objective).loss.mul_scalar(weight);
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
                    };
                    match pools.get(i) {
                        Some(pool) => pool.install(run),
                        None => run(),
                    }
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
    let mut accumulator = GradientsAccumulator::<M>::new();
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
