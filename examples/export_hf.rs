//! Load a Hugging Face checkpoint, put a fresh classification head on it, and save it back in
//! Hugging Face layout — the round trip a kiln user relies on to hand a model to `transformers`.
//!
//! ```sh
//! cargo run --release --example export_hf -- tests/fixtures/tiny-bert /tmp/exported "good movie" "bad plot"
//! ```
//! prints the logits kiln computes for each text as one JSON line; `scripts/reference/check_export.py`
//! loads the saved directory with `transformers` and checks it computes the same.

use std::path::PathBuf;

use anyhow::{Context, Result};
use kiln::burn::prelude::*;
use kiln::data::{TextTokenizer, TokenBatch};
use kiln::model::{save_pretrained, Checkpoint, HeadInit, Pooling};

fn main() -> Result<()> {
    // Keeps tensor-sized blocks in the heap between steps (see kiln::allocator).
    kiln::allocator::keep_freed_memory();
    let mut args = std::env::args().skip(1);
    let usage = "usage: export_hf MODEL_DIR OUT_DIR TEXT...";
    let model_dir = PathBuf::from(args.next().context(usage)?);
    let out_dir = PathBuf::from(args.next().context(usage)?);
    let texts: Vec<String> = args.collect();

    let device = Device::flex();
    device.seed(0);
    let checkpoint = Checkpoint::open(&model_dir)?;
    let labels = vec!["negative".to_string(), "positive".to_string()];
    let (model, report) =
        checkpoint.load_classifier(HeadInit::New(labels.len()), Pooling::Cls, &device)?;
    eprintln!(
        "loaded {} tensors from {}",
        report.applied,
        report.weights.display()
    );
    save_pretrained(
        &model,
        &checkpoint.config,
        &labels,
        Some(&checkpoint.tokenizer_path()),
        &out_dir,
    )?;
    eprintln!("saved {}", out_dir.display());

    let tokenizer = TextTokenizer::from_file(out_dir.join("tokenizer.json"), 128)?;
    for text in &texts {
        let encoding = tokenizer.encode(text, None)?;
        let batch = TokenBatch::pad(&[&encoding], tokenizer.pad_id(), 1, &device);
        let logits = model.forward(batch.input_ids, batch.token_type_ids, batch.attention_mask);
        let logits = logits
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        println!("{}", serde_json::json!({"text": text, "logits": logits}));
    }
    Ok(())
}
