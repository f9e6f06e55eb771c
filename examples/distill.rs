//! Distillation as a library user writes it: a fine-tuned 6-layer teacher, a 3-layer student
//! initialised from it (DistilBERT's recipe: embeddings, every other layer, pooler and head),
//! trained with (1−α)·CE + α·T²·KL on the teacher's logits; then both on the test split.
//!
//! ```sh
//! cargo xtask train                                   # the teacher: runs/minilm-l6-rotten-tomatoes-full/model
//! cargo run --release --example distill -- runs/minilm-l6-rotten-tomatoes-full/model 3
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use kiln::burn::prelude::*;
use kiln::data::builtin::Builtin;
use kiln::data::pipeline::{encode_examples, load_splits, DataOptions, DataSource};
use kiln::fetch::{self, Artifact};
use kiln::loss::DistillationLoss;
use kiln::model::{student_from_teacher, StudentInit};
use kiln::predict::Classifier;
use kiln::train::{evaluate, Distiller, Silent, TrainConfig, TrainData};

fn main() -> Result<()> {
    // Keeps tensor-sized blocks in the heap between steps (see kiln::allocator).
    kiln::allocator::keep_freed_memory();
    let mut args = std::env::args().skip(1);
    let teacher_dir = PathBuf::from(
        args.next()
            .context("usage: distill TEACHER_DIR [STUDENT_LAYERS]")?,
    );
    let layers: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);

    let device = Device::flex();
    device.seed(42);
    let teacher = Classifier::load(&teacher_dir, 128, device.clone())?;
    let teacher_config = kiln::model::Checkpoint::open(&teacher_dir)?.config;

    let dir = fetch::fetch(Artifact::RottenTomatoes, &fetch::cache_dir())?;
    let splits = load_splits(
        &DataSource::Builtin {
            set: Builtin::RottenTomatoes,
            dir,
        },
        &DataOptions::default(),
    )?;
    let data = TrainData {
        train: Arc::new(encode_examples(&teacher.tokenizer, &splits.train)?),
        valid: Arc::new(encode_examples(&teacher.tokenizer, &splits.valid)?),
        labels: teacher.labels.clone(),
        pad_id: teacher.tokenizer.pad_id(),
        teacher_logits: None,
    };

    let init =
        StudentInit::new(teacher_config.num_hidden_layers, layers).map_err(anyhow::Error::msg)?;
    let (student, _student_config) = student_from_teacher(&teacher.model, &teacher_config, &init);
    let distiller = Distiller::new(
        DistillationLoss {
            temperature: 2.0,
            alpha: 0.5,
            ..DistillationLoss::default()
        },
        TrainConfig {
            epochs: 3,
            lr: 5e-5,
            ..TrainConfig::default()
        },
    );
    let outcome = distiller.distill(student, &teacher.model, &data, &device, None, &mut Silent)?;

    let test = encode_examples(&teacher.tokenizer, &splits.test)?;
    let loss = distiller.config.loss();
    let pad = teacher.tokenizer.pad_id();
    let t = evaluate(&teacher.model, &test, &data.labels, &loss, 64, pad, &device);
    let s = evaluate(&outcome.model, &test, &data.labels, &loss, 64, pad, &device);
    println!(
        "teacher ({} layers): test accuracy {:.4}",
        teacher_config.num_hidden_layers, t.accuracy
    );
    println!(
        "student ({layers} layers {:?}): test accuracy {:.4} — {:.1}% of the teacher's",
        init.layer_map,
        s.accuracy,
        100.0 * s.accuracy / t.accuracy
    );
    Ok(())
}
