//! Regression through the library: predict how many favourites a 2016 US election tweet got
//! (ln(1 + favourites), the `election-tweets` set) from its text. One output on the encoder;
//! the `Trainer` standardises the targets, trains on MSE, keeps the epoch with the lowest
//! validation MSE, and the evaluator reports MSE, MAE, Pearson and Spearman in the data's units.
//!
//! ```sh
//! cargo run --release --example regression                   # a few minutes on 2 CPU cores
//! cargo run --release --example regression -- --model DIR     # another checkpoint (CI: the tiny one)
//! ```

mod common;

use anyhow::Result;
use kiln::burn::prelude::*;
use kiln::data::builtin::Builtin;
use kiln::data::pipeline::encode_examples;
use kiln::fetch::Artifact;
use kiln::model::{HeadInit, Pooling};
use kiln::train::{TrainConfig, Trainer};

fn main() -> Result<()> {
    kiln::allocator::keep_freed_memory();
    let args = common::Args::parse()?;
    let start = common::Start::of(Builtin::ElectionTweets, Artifact::ElectionTweets, &args)?;
    let scale = start
        .data
        .scale
        .expect("a regression set has a value scale");
    println!(
        "{} training tweets; ln(1 + favourites) has mean {:.3}, std {:.3}",
        start.data.train.len(),
        scale.mean,
        scale.std
    );

    // One output: a regression head (transformers' num_labels=1, problem_type "regression").
    let device = Device::flex();
    device.seed(42);
    let (model, _) = start
        .checkpoint
        .load_classifier(HeadInit::New(1), Pooling::Cls, &device)?;
    let config = TrainConfig {
        epochs: args.epochs.unwrap_or(3),
        ..TrainConfig::default()
    };
    let trainer = Trainer::new(config);
    let evaluator = trainer.evaluator().scale(Some(scale));
    let outcome = trainer.fit(model, &start.data)?;
    for epoch in &outcome.epochs {
        if let Some(valid) = &epoch.valid {
            println!("epoch {}: validation {}", epoch.epoch, valid.summary());
        }
    }

    let test = encode_examples(&start.tokenizer, &start.splits.test)?;
    let metrics = evaluator.evaluate(&outcome.model, &test, &[]);
    println!(
        "test {} (best epoch {:?})",
        metrics.summary(),
        outcome.best_epoch
    );
    Ok(())
}
