//! Multi-label classification through the library: the topics of Reuters-21578 stories (the
//! `reuters-topics` set: 55 topics, a story has one or several). One sigmoid output per topic,
//! binary cross-entropy, the epoch with the best validation micro-F1 kept; then each topic's
//! threshold tuned on the validation set and the test set scored with them.
//!
//! ```sh
//! cargo run --release --example multi_label -- --limit 2000   # minutes on 2 CPU cores
//! cargo run --release --example multi_label -- --model DIR    # another checkpoint (CI: the tiny one)
//! ```

mod common;

use anyhow::Result;
use kiln::burn::prelude::*;
use kiln::data::builtin::Builtin;
use kiln::data::pipeline::encode_examples;
use kiln::fetch::Artifact;
use kiln::model::{HeadInit, Pooling};
use kiln::train::evaluate::tune_thresholds;
use kiln::train::{TrainConfig, Trainer};

fn main() -> Result<()> {
    kiln::allocator::keep_freed_memory();
    let args = common::Args::parse()?;
    let start = common::Start::of(Builtin::ReutersTopics, Artifact::ReutersTopics, &args)?;
    let topics = start.data.labels.len();
    println!(
        "{} training stories, {topics} topics",
        start.data.train.len()
    );

    let device = Device::flex();
    device.seed(42);
    let (model, _) =
        start
            .checkpoint
            .load_classifier(HeadInit::New(topics), Pooling::Cls, &device)?;
    let config = TrainConfig {
        epochs: args.epochs.unwrap_or(2),
        ..TrainConfig::default()
    };
    let trainer = Trainer::new(config.clone());
    let evaluator = trainer.evaluator();
    let outcome = trainer.fit(model, &start.data)?;
    for epoch in &outcome.epochs {
        if let Some(valid) = &epoch.valid {
            println!("epoch {}: validation {}", epoch.epoch, valid.summary());
        }
    }

    // Thresholds for each topic's best F1 on validation, then the test set read with them.
    let valid_outputs = evaluator.outputs(&outcome.model, &start.data.valid);
    let mut readout = config.readout(None, topics);
    readout.thresholds = tune_thresholds(&valid_outputs, &start.data.valid, topics);
    let test = encode_examples(&start.tokenizer, &start.splits.test)?;
    let at_half = evaluator.evaluate(&outcome.model, &test, &start.data.labels);
    let tuned = evaluator
        .readout(readout)
        .evaluate(&outcome.model, &test, &start.data.labels);
    println!("test at 0.5:          {}", at_half.summary());
    println!("test, tuned per topic: {}", tuned.summary());
    Ok(())
}
