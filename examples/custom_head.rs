//! Fine-tuning a model kiln does not ship, through the same `Trainer`: all-MiniLM-L6-v2's
//! encoder (any family's: `load_encoder` reads `model_type`) under a head of the app's own —
//! mean and max pooling of the last hidden state side by side, then a small feed-forward
//! classifier. Implementing `TaskModel` (features, head) is all the trainer needs; strategies
//! find the encoder's layers by their paths (`encoder.Bert.encoder.layer.N.…`), so
//! `--strategy`-style recipes (here: the top two layers and the head) work unchanged.
//!
//! ```sh
//! cargo run --release --example custom_head                  # a few minutes on 2 CPU cores
//! cargo run --release --example custom_head -- --limit 400
//! ```

mod common;

use anyhow::Result;
use kiln::burn::nn::{Linear, LinearConfig};
use kiln::burn::prelude::*;
use kiln::burn::tensor::activation::gelu;
use kiln::data::pipeline::encode_examples;
use kiln::data::TokenBatch;
use kiln::model::{mean_pool, Encoder};
use kiln::train::{StrategyConfig, StrategyKind, TaskModel, TrainConfig, Trainer};

/// The encoder, and a head over [mean ‖ max] of its last hidden state.
#[derive(Module, Debug)]
struct MeanMaxClassifier {
    encoder: Encoder,
    hidden: Linear,
    out: Linear,
}

impl TaskModel for MeanMaxClassifier {
    fn num_outputs(&self) -> usize {
        self.out.weight.dims()[1]
    }

    /// Padded batches (the trainer pads for a model that does not accept packed ones).
    fn features(&self, b: TokenBatch) -> Tensor<2> {
        let hidden = self.encoder.encode_batch(&b);
        let [batch, seq, _] = hidden.dims();
        // Padding positions sit far below every real value, so max pooling never picks them.
        let pad = (b.attention_mask.clone() - 1.0).reshape([batch, seq, 1]) * 1e4;
        let max = (hidden.clone() + pad).max_dim(1).squeeze_dim(1);
        Tensor::cat(vec![mean_pool(hidden, b.attention_mask), max], 1)
    }

    fn head(&self, features: Tensor<2>) -> Tensor<2> {
        self.out.forward(gelu(self.hidden.forward(features)))
    }
}

fn main() -> Result<()> {
    kiln::allocator::keep_freed_memory();
    let args = common::Args::parse()?;
    let start = common::Start::load(&args)?;
    let (checkpoint, data) = (&start.checkpoint, &start.data);
    let device = Device::flex();
    device.seed(42);
    let (encoder, _) = checkpoint.load_encoder(&device)?;
    let width = checkpoint.config.hidden_size;
    let model = MeanMaxClassifier {
        encoder,
        hidden: LinearConfig::new(2 * width, width).init(&device),
        out: LinearConfig::new(width, data.labels.len()).init(&device),
    };
    let strategy = StrategyConfig {
        kind: StrategyKind::TopK,
        top_k: 2,
        ..StrategyConfig::default()
    };
    let config = TrainConfig {
        lr: 1e-4,
        epochs: args.epochs.unwrap_or(3),
        strategy,
        ..TrainConfig::default()
    };
    let trainer = Trainer::new(config);
    let evaluator = trainer.evaluator();
    let outcome = trainer.fit(model, data)?;
    println!("{}", outcome.plan);

    let test = encode_examples(&start.tokenizer, &start.splits.test)?;
    let metrics = evaluator.evaluate(&outcome.model, &test, &data.labels);
    println!(
        "custom head: test {} (best epoch {:?})",
        metrics.summary(),
        outcome.best_epoch
    );
    Ok(())
}
