//! Token classification through the library: part-of-speech tagging of Penn Treebank WSJ
//! sentences (the `penn-tagged` set), scored on held-out WSJ sentences and, out of domain, on
//! sentences of the Open American National Corpus. A tag per word, placed on the word's first
//! piece (the other pieces are left out of the loss, as transformers' run_ner does); a
//! sentence longer than a window is split at word boundaries instead of being cut.
//!
//! ```sh
//! cargo run --release --example token_classification -- --epochs 3   # minutes on 2 CPU cores
//! cargo run --release --example token_classification -- --model DIR  # another checkpoint (CI: the tiny one)
//! ```

mod common;

use std::sync::Arc;

use anyhow::Result;
use kiln::burn::prelude::*;
use kiln::data::builtin::Builtin;
use kiln::data::pipeline::{
    encode_tagged_split, load_tagged_splits, DataOptions, DataSource, TaggedSplits,
};
use kiln::data::tagged::{PieceLabels, TaggedOptions};
use kiln::data::Task;
use kiln::fetch::{self, Artifact};
use kiln::model::{Checkpoint, HeadInit};
use kiln::train::{TrainConfig, TrainData, Trainer};

/// OANC sentences scored out of domain (all 20,000 take a while on a CPU).
const OUT_OF_DOMAIN: usize = 2000;

fn main() -> Result<()> {
    kiln::allocator::keep_freed_memory();
    let args = common::Args::parse()?;
    let cache = fetch::cache_dir();
    let source = DataSource::Builtin {
        set: Builtin::PennTagged,
        dir: fetch::fetch(Artifact::PennTagged, &cache)?,
    };
    let options = DataOptions {
        task: Task::Token,
        ..DataOptions::default()
    };
    let mut splits: TaggedSplits =
        load_tagged_splits(&source, &options, &TaggedOptions::default())?;
    if let Some(n) = args.limit {
        splits.train.sentences.truncate(n);
    }
    for (_, set) in &mut splits.extra {
        set.sentences.truncate(OUT_OF_DOMAIN);
    }
    let checkpoint = Checkpoint::open(args.model_or(Artifact::MiniLmL6, &cache)?)?;
    let tokenizer = kiln::inspect::tokenizer_for(&checkpoint, 128)?;
    let encode = |set| encode_tagged_split(&tokenizer, set, &splits.tags, PieceLabels::FirstPiece);
    let (train, valid, test) = (
        encode(&splits.train)?,
        encode(&splits.valid)?,
        encode(&splits.test)?,
    );
    let tags = splits.tags.labels().to_vec();
    println!(
        "{} training sentences ({} windows), {} tags",
        train.sentences,
        train.examples.len(),
        tags.len()
    );
    let data = TrainData {
        train: Arc::new(train.examples),
        valid: Arc::new(valid.examples),
        labels: tags.clone(),
        scale: None,
        pad_id: tokenizer.pad_id(),
        teacher_logits: None,
    };

    let device = Device::flex();
    device.seed(42);
    let (model, _) = checkpoint.load_token_classifier(HeadInit::New(tags.len()), &device)?;
    let config = TrainConfig {
        epochs: args.epochs.unwrap_or(3),
        batch_size: 16,
        lr: 1e-4,
        ..TrainConfig::default()
    };
    let trainer = Trainer::new(config);
    let evaluator = trainer.evaluator().pad_id(tokenizer.pad_id());
    let outcome = trainer.fit(model, &data)?;
    for epoch in &outcome.epochs {
        if let Some(valid) = &epoch.valid {
            println!("epoch {}: validation {}", epoch.epoch, valid.summary());
        }
    }
    // Each set's targets name the training tags, then its own tags training never had.
    let test = evaluator.evaluate(&outcome.model, &test.examples, &test.tags);
    println!("test (WSJ): {}", test.summary());
    for (name, set) in &splits.extra {
        let set = encode(set)?;
        let scored = evaluator.evaluate(&outcome.model, &set.examples, &set.tags);
        println!(
            "{name} (out of domain, {} sentences): {}",
            set.sentences,
            scored.summary()
        );
    }
    Ok(())
}
