//! The sentiment walkthrough, written against kiln's crates as a library user would: the
//! rotten-tomatoes snippets split and tokenized, a two-class head on all-MiniLM-L6-v2's encoder,
//! a `Trainer` that fine-tunes it (AdamW at 2e-5, three epochs) and prints the validation
//! accuracy after each epoch, then the test accuracy of the best epoch's model.
//!
//! ```sh
//! cargo run --release --example sentiment                       # a few minutes on 2 CPU cores
//! cargo run --release --example sentiment -- --limit 400        # the first 400 training examples
//! cargo run --release --example sentiment -- --model DIR        # another checkpoint (CI: the tiny one)
//! ```

mod common;

use anyhow::Result;
use kiln::burn::prelude::*;
use kiln::data::builtin::Builtin;
use kiln::data::pipeline::{encode_examples, load_splits, DataOptions, DataSource};
use kiln::fetch::{self, Artifact};
use kiln::model::{Checkpoint, HeadInit, Pooling};
use kiln::train::history::EpochPoint;
use kiln::train::{Observer, TrainConfig, TrainData, Trainer};

/// Prints the validation accuracy at the end of every epoch.
struct PrintEpochs;

impl Observer for PrintEpochs {
    fn epoch_end(&mut self, point: &EpochPoint, _is_best: bool) {
        if let Some(valid) = &point.valid {
            println!("epoch {}: validation {}", point.epoch, valid.summary());
        }
    }
}

fn main() -> Result<()> {
    kiln::allocator::keep_freed_memory();
    let args = common::Args::parse()?;
    let cache = fetch::cache_dir();

    // 1. Data: the built-in set, split 80/10/10 stratified by label with a fixed seed.
    let dir = fetch::fetch(Artifact::RottenTomatoes, &cache)?;
    let source = DataSource::Builtin {
        set: Builtin::RottenTomatoes,
        dir,
    };
    let splits = args.limited(load_splits(&source, &DataOptions::default())?);

    // 2. The checkpoint's tokenizer, and its encoder with a new two-class head (the pooler over
    //    [CLS], as BertForSequenceClassification).
    let checkpoint = Checkpoint::open(args.model_or(Artifact::MiniLmL6, &cache)?)?;
    let tokenizer = kiln::inspect::tokenizer_for(&checkpoint, 128)?;
    let device = Device::flex();
    device.seed(42);
    let labels = splits.labels.labels().len();
    let (model, _) = checkpoint.load_classifier(HeadInit::New(labels), Pooling::Cls, &device)?;

    // 3. Fine-tune; the outcome holds the best epoch's model.
    let config = TrainConfig {
        lr: 2e-5,
        epochs: args.epochs.unwrap_or(3),
        ..TrainConfig::default()
    };
    let data = TrainData::encode(&tokenizer, &splits)?;
    let mut observer = PrintEpochs;
    let trainer = Trainer::new(config).observer(&mut observer);
    let evaluator = trainer.evaluator();
    let outcome = trainer.fit(model, &data)?;

    // 4. That model on the test split.
    let test = encode_examples(&tokenizer, &splits.test)?;
    let metrics = evaluator.evaluate(&outcome.model, &test, &data.labels);
    println!(
        "test {} (best epoch {:?}, {:.0} training samples/s)",
        metrics.summary(),
        outcome.best_epoch,
        outcome.stats.samples_per_second
    );
    Ok(())
}
