//! Distillation as a library user writes it: fine-tune all-MiniLM-L6-v2 on rotten-tomatoes as
//! the teacher, build a student from every other layer of it (DistilBERT's recipe: embeddings,
//! alternate layers, pooler and head), train the student on (1−α)·CE + α·T²·KL against the
//! teacher's logits, and compare both on the test split.
//!
//! ```sh
//! cargo run --release --example distill                  # ~15 minutes on 2 CPU cores
//! cargo run --release --example distill -- --limit 400   # a smaller training set
//! ```

mod common;

use anyhow::Result;
use kiln::burn::prelude::*;
use kiln::data::pipeline::encode_examples;
use kiln::loss::DistillationLoss;
use kiln::model::{student_from_teacher, HeadInit, Pooling, StudentInit};
use kiln::train::{Distiller, TrainConfig, Trainer};

fn main() -> Result<()> {
    kiln::allocator::keep_freed_memory();
    let args = common::Args::parse()?;
    let start = common::Start::load(&args)?;
    let (checkpoint, data) = (&start.checkpoint, &start.data);
    let device = Device::flex();
    device.seed(42);
    let recipe = TrainConfig {
        epochs: args.epochs.unwrap_or(3),
        ..TrainConfig::default()
    };

    // 1. The teacher: the checkpoint fine-tuned as in the sentiment example.
    let head = HeadInit::New(data.labels.len());
    let (base, _) = checkpoint.load_classifier(head, Pooling::Cls, &device)?;
    let teacher = Trainer::new(recipe.clone()).fit(base, data)?.model;

    // 2. The student: half the teacher's layers, then distilled against its logits.
    let layers = checkpoint.config.num_hidden_layers;
    let init = StudentInit::new(layers, layers.div_ceil(2)).map_err(anyhow::Error::msg)?;
    let (student, _) = student_from_teacher(&teacher, &checkpoint.config, &init);
    let loss = DistillationLoss {
        temperature: 2.0,
        alpha: 0.5,
        ..DistillationLoss::default()
    };
    let distiller = Distiller::new(loss, recipe);
    let student = distiller.distill(student, &teacher, data)?.model;

    // 3. Both on the test split.
    let test = encode_examples(&start.tokenizer, &start.splits.test)?;
    let evaluator = distiller.trainer().evaluator();
    let (_, t) = evaluator.evaluate(&teacher, &test, &data.labels).main();
    let (_, s) = evaluator.evaluate(&student, &test, &data.labels).main();
    println!("teacher ({layers} layers): test accuracy {t:.4}");
    println!(
        "student (layers {:?}): test accuracy {s:.4}, {:.1}% of the teacher's",
        init.layer_map,
        100.0 * s / t
    );
    Ok(())
}
