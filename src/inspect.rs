//! `kiln data` (what a run would see: splits, labels, lengths, padding) and `kiln bench-data`
//! (tokenization throughput and the padding that bucketing saves).

use std::time::Instant;

use anyhow::Result;

use kiln_data::bucket::{
    label_concentration, packed_padding_share, padding_share, BatchSize, BucketSampler,
};
use kiln_data::pipeline::{
    encode_examples, load_splits, DataSource, DataSummary, EncodedExample, SplitSummary, Splits,
};
use kiln_data::TextTokenizer;
use kiln_model::Checkpoint;

use crate::datasets::{builtin, DataArgs};

/// The model's tokenizer with `max_len` capped at the model's positions (with a note).
pub fn tokenizer_for(checkpoint: &Checkpoint, max_len: usize) -> Result<TextTokenizer> {
    let positions = checkpoint.config.max_position_embeddings;
    let max_len = if max_len > positions {
        eprintln!("note: --max-len {max_len} is above the model's {positions} positions; using {positions}");
        positions
    } else {
        max_len
    };
    Ok(TextTokenizer::from_file(
        checkpoint.tokenizer_path(),
        max_len,
    )?)
}

/// Splits (augmented when asked), encoded, with their summary.
pub struct PreparedData {
    pub splits: Splits,
    pub train: Vec<EncodedExample>,
    pub valid: Vec<EncodedExample>,
    pub test: Vec<EncodedExample>,
    pub summary: DataSummary,
}

/// Reads, splits (drawn with `seed`), augments and tokenizes the data `args` name.
pub fn prepare(
    args: &DataArgs,
    seed: u64,
    source: &DataSource,
    tokenizer: &TextTokenizer,
) -> Result<PreparedData> {
    let mut splits = load_splits(source, &args.options(seed))?;
    for warning in splits.unmeasured_labels() {
        eprintln!("warning: {warning}");
    }
    if let Some(augment) = args.augment_config() {
        let mask = ["[MASK]", "<mask>"]
            .into_iter()
            .find(|t| tokenizer.token_to_id(t).is_some())
            .unwrap_or("[MASK]");
        splits.augment_train(&augment, mask, seed);
    }
    let train = encode_examples(tokenizer, &splits.train)?;
    let valid = encode_examples(tokenizer, &splits.valid)?;
    let test = encode_examples(tokenizer, &splits.test)?;
    let n = splits.labels.len();
    let summary = DataSummary {
        source: source.to_string(),
        labels: splits.labels.labels().to_vec(),
        max_len: tokenizer.max_len(),
        train: SplitSummary::new(&train, n),
        valid: SplitSummary::new(&valid, n),
        test: SplitSummary::new(&test, n),
    };
    Ok(PreparedData {
        splits,
        train,
        valid,
        test,
        summary,
    })
}

/// Padding share and label concentration (see [`label_concentration`]) of a batch plan over
/// `examples`, averaged over the first `epochs` epochs; `chunk_batches` 0 = a plain shuffle,
/// `packed` = each batch packed several examples to a row.
pub fn plan_stats(
    examples: &[EncodedExample],
    batch: BatchSize,
    chunk_batches: usize,
    packed: bool,
    seed: u64,
    epochs: u64,
) -> Result<(f64, f64)> {
    let lengths: Vec<usize> = examples.iter().map(|e| e.len()).collect();
    // Classes, a regression value's decile, or a label set's first label (a set's rarest
    // member would be another choice): any can go with length.
    let labels: Vec<usize> = match examples.first().map(|e| &e.target) {
        Some(kiln_data::Target::Value(_)) => {
            let values: Vec<f32> = examples.iter().filter_map(|e| e.target.value()).collect();
            kiln_data::target::value_bins(&values, 10)
        }
        _ => examples
            .iter()
            .map(|e| {
                e.target
                    .class()
                    .or_else(|| e.target.labels().and_then(|s| s.first().copied()))
                    .unwrap_or(0)
            })
            .collect(),
    };
    let sampler = BucketSampler::new(lengths.clone(), batch, chunk_batches > 0, seed)?
        .with_chunk_batches(chunk_batches);
    let (mut padding, mut concentration) = (0.0, 0.0);
    for epoch in 0..epochs.max(1) {
        let plan = sampler.epoch(epoch);
        padding += if packed {
            packed_padding_share(&lengths, &plan)
        } else {
            padding_share(&lengths, &plan, 1)
        };
        concentration += label_concentration(&labels, &plan);
    }
    let n = epochs.max(1) as f64;
    Ok((padding / n, concentration / n))
}

/// Padding share of one epoch of `examples` under a batch plan.
pub fn epoch_padding(
    examples: &[EncodedExample],
    batch: BatchSize,
    bucketing: bool,
    seed: u64,
    multiple: usize,
) -> Result<f64> {
    let lengths: Vec<usize> = examples.iter().map(|e| e.len()).collect();
    let sampler = BucketSampler::new(lengths.clone(), batch, bucketing, seed)?;
    Ok(padding_share(&lengths, &sampler.epoch(0), multiple))
}

/// One row of `kiln bench-data`.
#[derive(Debug, serde::Serialize)]
pub struct DataBench {
    pub data: String,
    pub max_len: usize,
    pub examples: usize,
    pub tokens: usize,
    pub examples_per_second: f64,
    pub tokens_per_second: f64,
    pub padding_random: f64,
    pub padding_bucketed: f64,
    pub padding_token_budget: f64,
    pub token_budget: usize,
}

/// Tokenization throughput (best of `repeat` passes over every example of the set) and the
/// training split's padding share at `batch_size`: random batches, length-bucketed batches, and
/// bucketed batches under a token budget of `batch_size × p95 length`.
pub fn bench_data(
    name: &str,
    checkpoint: &Checkpoint,
    max_len: usize,
    batch_size: usize,
    repeat: usize,
) -> Result<DataBench> {
    let source = builtin(name)?;
    let tokenizer = tokenizer_for(checkpoint, max_len)?;
    let args_seed = 42;
    let splits = load_splits(
        &source,
        &kiln_data::pipeline::DataOptions {
            seed: args_seed,
            ..Default::default()
        },
    )?;
    let all: Vec<_> = splits
        .train
        .iter()
        .chain(&splits.valid)
        .chain(&splits.test)
        .cloned()
        .collect();
    let mut best = f64::INFINITY;
    let mut tokens = 0;
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        let encoded = encode_examples(&tokenizer, &all)?;
        best = best.min(start.elapsed().as_secs_f64());
        tokens = encoded.iter().map(|e| e.len()).sum();
    }
    let train = encode_examples(&tokenizer, &splits.train)?;
    let p95 = SplitSummary::new(&train, splits.labels.len()).length_p95;
    let budget = batch_size * p95.max(1);
    Ok(DataBench {
        data: name.to_string(),
        max_len: tokenizer.max_len(),
        examples: all.len(),
        tokens,
        examples_per_second: all.len() as f64 / best,
        tokens_per_second: tokens as f64 / best,
        padding_random: epoch_padding(
            &train,
            BatchSize::Examples(batch_size),
            false,
            args_seed,
            1,
        )?,
        padding_bucketed: epoch_padding(
            &train,
            BatchSize::Examples(batch_size),
            true,
            args_seed,
            1,
        )?,
        padding_token_budget: epoch_padding(&train, BatchSize::Tokens(budget), true, args_seed, 1)?,
        token_budget: budget,
    })
}

/// Writes the splits as CSV files (text[, text_pair], label name), each atomically.
/// Label sets are written joined by `label_delimiter`.
pub fn write_splits(splits: &Splits, dir: &std::path::Path, label_delimiter: &str) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let pairs = splits
        .train
        .iter()
        .chain(&splits.valid)
        .chain(&splits.test)
        .any(|e| e.text_pair.is_some());
    for (name, examples) in [
        ("train", &splits.train),
        ("valid", &splits.valid),
        ("test", &splits.test),
    ] {
        let mut writer = csv::Writer::from_writer(Vec::new());
        if pairs {
            writer.write_record(["text", "text_pair", "label"])?;
        } else {
            writer.write_record(["text", "label"])?;
        }
        for e in examples.iter() {
            let label = match &e.target {
                kiln_data::Target::Class(c) => {
                    splits.labels.name(*c).unwrap_or_default().to_string()
                }
                kiln_data::Target::Value(v) => v.to_string(),
                kiln_data::Target::Labels(set) => set
                    .iter()
                    .map(|&l| splits.labels.name(l).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(label_delimiter),
            };
            let label = label.as_str();
            if pairs {
                writer.write_record([
                    e.text.as_str(),
                    e.text_pair.as_deref().unwrap_or(""),
                    label,
                ])?;
            } else {
                writer.write_record([e.text.as_str(), label])?;
            }
        }
        let bytes = writer.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
        kiln_model::files::write_atomic(&dir.join(format!("{name}.csv")), &bytes)?;
    }
    Ok(())
}
