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

/// A padded batch with its labels.
#[derive(Debug, Clone)]
pub struct ClassificationBatch {
    pub tokens: TokenBatch,
    /// `[batch]` class indices.
    pub labels: Tensor<1, Int>,
}

/// Pads examples to the batch's longest (rounded up to `pad_to_multiple`), or packs them
/// several to a row.
#[derive(Debug, Clone, Copy)]
pub struct ClassificationBatcher {
    pub pad_id: u32,
    pub pad_to_multiple: usize,
    /// `TokenBatch::pack` instead of `TokenBatch::pad`.
    pub pack: bool,
}

impl ClassificationBatcher {
    fn build(&self, items: &[&EncodedExample], device: &Device) -> ClassificationBatch {
        let encodings: Vec<_> = items.iter().map(|e| &e.encoding).collect();
        let tokens = if self.pack {
            TokenBatch::pack(&encodings, self.pad_id, self.pad_to_multiple, device)
        } else {
            TokenBatch::pad(&encodings, self.pad_id, self.pad_to_multiple, device)
        };
        let labels: Vec<i64> = items.iter().map(|e| e.label as i64).collect();
        let n = labels.len();
        ClassificationBatch {
            tokens,
            labels: Tensor::from_data(TensorData::new(labels, [n]), device),
        }
    }
}

impl Batcher<EncodedExample, ClassificationBatch> for ClassificationBatcher {
    fn batch(&self, items: Vec<EncodedExample>, device: &Device) -> ClassificationBatch {
        let refs: Vec<&EncodedExample> = items.iter().collect();
        self.build(&refs, device)
    }
}

/// One planned batch (the output of `BucketSampler`), as a single dataset item.
#[derive(Debug, Clone)]
pub struct PlannedBatch(pub Vec<EncodedExample>);

impl Batcher<PlannedBatch, ClassificationBatch> for ClassificationBatcher {
    fn batch(&self, items: Vec<PlannedBatch>, device: &Device) -> ClassificationBatch {
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
    batcher: ClassificationBatcher,
    num_workers: usize,
    device: &Device,
) -> Arc<dyn DataLoader<ClassificationBatch>> {
    let plan: Vec<Vec<usize>> = sampler.epoch(epoch).into_iter().skip(skip).collect();
    planned_loader(examples, plan, batcher, num_workers, device)
}

/// Loader over the batches of `plan` (lists of example indices), in plan order.
pub fn planned_loader(
    examples: Arc<Vec<EncodedExample>>,
    plan: Vec<Vec<usize>>,
    batcher: ClassificationBatcher,
    num_workers: usize,
    device: &Device,
) -> Arc<dyn DataLoader<ClassificationBatch>> {
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
    batcher: ClassificationBatcher,
    device: &Device,
) -> Arc<dyn DataLoader<ClassificationBatch>> {
    DataLoaderBuilder::new(batcher)
        .batch_size(batch_size.max(1))
        .set_device(device.clone())
        .build(EncodedDataset { examples })
}

fn out_of_range(message: String) -> DatasetError {
    DatasetError::new(std::io::Error::other(message))
}
