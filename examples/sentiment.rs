//! The sentiment walkthrough, written against kiln's crates as a library user would: fetch
//! all-MiniLM-L6-v2 and the rotten-tomatoes snippets, split and tokenize, put a classification
//! head on the encoder, fine-tune with AdamW at 2e-5 for three epochs, print the validation
//! accuracy after each epoch, then the test accuracy.
//!
//! ```sh
//! cargo run --release --example sentiment            # a few minutes on 2 CPU cores
//! cargo run --release --example sentiment -- 400     # only the first 400 training examples
//! ```

use std::sync::Arc;

use anyhow::Result;
use kiln::burn::prelude::*;
use kiln::data::builtin::Builtin;
use kiln::data::pipeline::{encode_examples, load_splits, DataOptions, DataSource};
use kiln::data::TextTokenizer;
use kiln::fetch::{self, Artifact};
use kiln::model::{Checkpoint, HeadInit, Pooling};
use kiln::train::report::EpochPoint;
use kiln::train::{evaluate, train, Observer, TrainConfig, TrainData};

/// Prints the validation accuracy at the end of every epoch.
struct PrintEpochs;

impl Observer for PrintEpochs {
    fn epoch_end(&mut self, point: &EpochPoint, _is_best: bool) {
        if let Some(valid) = &point.valid {
            println!(
                "epoch {}: train loss {:.4}, validation accuracy {:.4}",
                point.epoch, point.train_loss, valid.accuracy
            );
        }
    }
}

fn main() -> Result<()> {
    // Keeps tensor-sized blocks in the heap between steps (see kiln::allocator).
    kiln::allocator::keep_freed_memory();
    let limit: Option<usize> = std::env::args().nth(1).map(|s| s.parse()).transpose()?;
    let cache = fetch::cache_dir();

    // 1. Data: the built-in set, split 80/10/10 stratified by label with a fixed seed.
    let data_dir = fetch::fetch(Artifact::RottenTomatoes, &cache)?;
    let source = DataSource::Builtin {
        set: Builtin::RottenTomatoes,
        dir: data_dir,
    };
    let mut splits = load_splits(&source, &DataOptions::default())?;
    if let Some(n) = limit {
        // Every k-th example, not the first n: the split keeps the file's order, which for this
        // data set is grouped by label.
        let step = (splits.train.len() / n.max(1)).max(1);
        splits.train = splits.train.iter().step_by(step).take(n).cloned().collect();
    }
    let labels = splits.labels.labels().to_vec();

    // 2. Tokenizer and model: the checkpoint's own tokenizer.json, and its encoder with a new
    //    two-class head (pooler over [CLS], as BertForSequenceClassification).
    let checkpoint = Checkpoint::open(fetch::fetch(Artifact::MiniLmL6, &cache)?)?;
    let tokenizer = TextTokenizer::from_file(checkpoint.tokenizer_path(), 128)?;
    let device = Device::flex();
    device.seed(42);
    let (model, _) =
        checkpoint.load_classifier(HeadInit::New(labels.len()), Pooling::Cls, &device)?;

    // 3. Fine-tune: AdamW at 2e-5, three epochs, batches of 32, linear decay after 10% warmup.
    let data = TrainData {
        train: Arc::new(encode_examples(&tokenizer, &splits.train)?),
        valid: Arc::new(encode_examples(&tokenizer, &splits.valid)?),
        labels: labels.clone(),
        pad_id: tokenizer.pad_id(),
        teacher_logits: None,
    };
    let config = TrainConfig {
        lr: 2e-5,
        epochs: 3,
        batch_size: 32,
        ..TrainConfig::default()
    };
    let outcome = train(model, &data, &config, &device, None, None, &mut PrintEpochs)?;

    // 4. The best epoch's model on the test split.
    let test = encode_examples(&tokenizer, &splits.test)?;
    let metrics = evaluate(
        &outcome.model,
        &test,
        &labels,
        &config.loss(),
        64,
        tokenizer.pad_id(),
        &device,
    );
    println!(
        "test accuracy {:.4}, macro-F1 {:.4} (best epoch {:?}, {:.0} training samples/s)",
        metrics.accuracy, metrics.macro_f1, outcome.best_epoch, outcome.stats.samples_per_second
    );
    Ok(())
}
