//! burn integration: tokenized splits as burn `Dataset`s, a `Batcher` that pads to the batch's
//! longest example, and data loaders — fixed-size shuffled batches, or length-bucketed batches
//! planned by `BucketSampler` (each planned batch is one dataset item, so burn's workers build
//! whole batches in parallel while the plan, and so the padding, stays kiln's).

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::{Dataset, DatasetError};
use burn::prelude::*;

use crate::batch::TokenBatch;
use crate::bucket::BucketSampler;
use crate::pipeline::EncodedExample;
use crate::target::{Target, Targets, ValueScale};

/// A padded (or packed) batch with its targets.
#[derive(Debug, Clone)]
pub struct LabelledBatch {
    pub tokens: TokenBatch,
    /// Class indices, or standardised values.
    pub targets: Targets,
}

/// Pads examples to the batch's longest (rounded up to `pad_to_multiple`), or packs them
/// several to a row; regression values are standardised with `scale`.
#[derive(Debug, Clone, Copy)]
pub struct TaskBatcher {
    pub pad_id: u32,
    pub pad_to_multiple: usize,
    /// `TokenBatch::pack` instead of `TokenBatch::pad`.
    pub pack: bool,
    /// The training targets' scale (regression); `None` leaves values as they are.
    pub scale: Option<ValueScale>,
    /// Multi-label: the number of labels (the width of a batch's 0/1 target rows).
    pub labels: usize,
}

impl TaskBatcher {
    fn build(&self, items: &[&EncodedExample], device: &Device) -> LabelledBatch {
        let encodings: Vec<_> = items.iter().map(|e| &e.encoding).collect();
        let tokens = if self.pack {
            TokenBatch::pack(&encodings, self.pad_id, self.pad_to_multiple, device)
        } else {
            TokenBatch::pad(&encodings, self.pad_id, self.pad_to_multiple, device)
        };
        let targets: Vec<Target> = items.iter().map(|e| e.target.clone()).collect();
        let targets = match (targets.first(), &tokens.packing) {
            // A label per piece, where the batch put the piece: packed several examples to a
            // row, or padded (to a multiple, perhaps).
            (Some(Target::Tags(_)), Some(packing)) => {
                let dims = tokens.input_ids.dims();
                Targets::tags_at(&targets, &packing.starts, dims, device)
            }
            (Some(Target::Tags(_)), None) => {
                Targets::tags(&targets, tokens.input_ids.dims()[1], device)
            }
            _ => Targets::of(&targets, self.scale, self.labels, device),
        };
        LabelledBatch { tokens, targets }
    }
}

impl Batcher<EncodedExample, LabelledBatch> for TaskBatcher {
    fn batch(&self, items: Vec<EncodedExample>, device: &Device) -> LabelledBatch {
        let refs: Vec<&EncodedExample> = items.iter().collect();
        self.build(&refs, device)
    }
}

/// One planned batch (the output of `BucketSampler`), as a single dataset item.
#[derive(Debug, Clone)]
pub struct PlannedBatch(pub Vec<EncodedExample>);

impl Batcher<PlannedBatch, LabelledBatch> for TaskBatcher {
    fn batch(&self, items: Vec<PlannedBatch>, device: &Device) -> LabelledBatch {
        let refs: Vec<&EncodedExample> = items.iter().flat_map(|b| b.0.iter()).collect();
        self.build(&refs, device)
    }
}

/// A tokenized split as a burn dataset of examples.
#[derive(Debug, Clone)]
pub struct EncodedDataset {
    pub examples: Arc<Vec<EncodedExample>>,
}

impl Dataset<EncodedExample> for EncodedDataset {
    fn get(&self, index: usize) -> Result<EncodedExample, DatasetError> {
        self.examples
            .get(index)
            .cloned()
            .ok_or_else(|| out_of_range(format!("index {index} out of range")))
    }
    fn len(&self) -> usize {
        self.examples.len()
    }
}

/// A batch plan over a split as a burn dataset: item `i` is the `i`-th planned batch.
#[derive(Debug, Clone)]
pub struct PlannedDataset {
    pub examples: Arc<Vec<EncodedExample>>,
    pub plan: Vec<Vec<usize>>,
}

impl Dataset<PlannedBatch> for PlannedDataset {
    fn get(&self, index: usize) -> Result<PlannedBatch, DatasetError> {
        let batch = self
            .plan
            .get(index)
            .ok_or_else(|| out_of_range(format!("batch {index} out of range")))?;
        batch
            .iter()
            .map(|&i| {
                self.examples
                    .get(i)
                    .cloned()
                    .ok_or_else(|| out_of_range(format!("example {i} out of range")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(PlannedBatch)
    }
    fn len(&self) -> usize {
        self.plan.len()
    }
}

/// Loader over the batches `sampler` plans for `epoch`, skipping the first `skip` (to resume
/// inside an epoch). Batches come out in plan order.
pub fn bucketed_loader(
    examples: Arc<Vec<EncodedExample>>,
    sampler: &BucketSampler,
    epoch: u64,
    skip: usize,
    batcher: TaskBatcher,
    num_workers: usize,
    device: &Device,
) -> Arc<dyn DataLoader<LabelledBatch>> {
    let plan: Vec<Vec<usize>> = sampler.epoch(epoch).into_iter().skip(skip).collect();
    planned_loader(examples, plan, batcher, num_workers, device)
}

/// Loader over the batches of `plan` (lists of example indices), in plan order.
pub fn planned_loader(
    examples: Arc<Vec<EncodedExample>>,
    plan: Vec<Vec<usize>>,
    batcher: TaskBatcher,
    num_workers: usize,
    device: &Device,
) -> Arc<dyn DataLoader<LabelledBatch>> {
    let dataset = PlannedDataset { examples, plan };
    let mut builder = DataLoaderBuilder::new(batcher)
        .batch_size(1)
        .set_device(device.clone());
    if num_workers > 1 {
        builder = builder.num_workers(num_workers);
    }
    builder.build(dataset)
}

/// Loader in the data's own order (evaluation), `batch_size` examples a batch.
pub fn sequential_loader(
    examples: Arc<Vec<EncodedExample>>,
    batch_size: usize,
    batcher: TaskBatcher,
    device: &Device,
) -> Arc<dyn DataLoader<LabelledBatch>> {
    DataLoaderBuilder::new(batcher)
        .batch_size(batch_size.max(1))
        .set_device(device.clone())
        .build(EncodedDataset { examples })
}

fn out_of_range(message: String) -> DatasetError {
    DatasetError::new(std::io::Error::other(message))
}
