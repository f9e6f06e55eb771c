//! `kiln data` (what a run would see: splits, labels, lengths, padding) and `kiln bench-data`
//! (tokenization throughput and the padding that bucketing saves).

use std::time::Instant;

use anyhow::Result;

use kiln_data::bucket::{
    label_concentration, packed_padding_share, padding_share, BatchSize, BucketSampler,
};
use kiln_data::pipeline::{
    encode_examples, encode_tagged_split, load_splits, load_tagged_splits, DataSource, DataSummary,
    EncodedExample, EncodedTagged, SplitSummary, Splits, TaggedSplits,
};
use kiln_data::TextTokenizer;
use kiln_model::Checkpoint;

use crate::datasets::{builtin, DataArgs};

/// The model's tokenizer with `max_len` capped at the model's positions (with a note).
pub fn tokenizer_for(checkpoint: &Checkpoint, max_len: usize) -> Result<TextTokenizer> {
    let positions = checkpoint.config.max_tokens();
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
    /// The texts (classification, regression, multi-label).
    pub splits: Option<Splits>,
    /// The tagged sentences (token classification).
    pub tagged: Option<TaggedSplits>,
    /// The model's outputs: classes, or tags (none for regression).
    pub labels: Vec<String>,
    /// Regression: the training values' scale.
    pub scale: Option<kiln_data::ValueScale>,
    pub train: Vec<EncodedExample>,
    pub valid: Vec<EncodedExample>,
    pub test: Vec<EncodedExample>,
    /// What the test targets' indices name: `labels`, then (tags) the test split's tags
    /// training never had.
    pub test_labels: Vec<String>,
    /// Further test sets (penn-tagged: the OANC sentences, out of domain).
    pub extra: Vec<(String, EncodedTagged)>,
    pub summary: DataSummary,
}

/// Reads, splits and tokenizes tagged sentences (--task token): an example per window.
fn prepare_tagged(
    args: &DataArgs,
    seed: u64,
    source: &DataSource,
    tokenizer: &TextTokenizer,
) -> Result<PreparedData> {
    if args.augment.is_some() {
        anyhow::bail!("--augment edits texts; it is not for --task token");
    }
    if args.text_pair_column.is_some() {
        anyhow::bail!("--text-pair-column pairs texts; --task token tags the words of one text");
    }
    let tagged = load_tagged_splits(source, &args.options(seed), &args.tagged.options())?;
    let encode = |d| encode_tagged_split(tokenizer, d, &tagged.tags, args.piece_labels);
    let (train, valid, test) = (
        encode(&tagged.train)?,
        encode(&tagged.valid)?,
        encode(&tagged.test)?,
    );
    let extra = tagged
        .extra
        .iter()
        .map(|(name, d)| Ok((name.clone(), encode(d)?)))
        .collect::<Result<Vec<_>>>()?;
    let trained = tagged.tags.len();
    let splits = [("validation", &valid), ("test", &test)];
    for (name, split) in splits
        .into_iter()
        .chain(extra.iter().map(|(n, e)| (n.as_str(), e)))
    {
        let unseen = split.unseen_tags(trained);
        if !unseen.is_empty() {
            eprintln!(
                "note: the {name} sentences have tags training never had ({}): their words count \
                 as errors",
                unseen.join(", ")
            );
        }
    }
    let n = trained;
    let summary = DataSummary {
        source: source.to_string(),
        labels: tagged.tags.labels().to_vec(),
        max_len: tokenizer.max_len(),
        train: SplitSummary::new(&train.examples, n),
        valid: SplitSummary::new(&valid.examples, n),
        test: SplitSummary::new(&test.examples, n),
    };
    Ok(PreparedData {
        labels: tagged.tags.labels().to_vec(),
        scale: None,
        test_labels: test.tags.clone(),
        train: train.examples,
        valid: valid.examples,
        test: test.examples,
        extra,
        splits: None,
        tagged: Some(tagged),
        summary,
    })
}

/// Reads, splits (drawn with `seed`), augments and tokenizes the data `args` name.
pub fn prepare(
    args: &DataArgs,
    seed: u64,
    source: &DataSource,
    tokenizer: &TextTokenizer,
) -> Result<PreparedData> {
    if args.task() == kiln_data::Task::Token {
        return prepare_tagged(args, seed, source, tokenizer);
    }
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
    // A regression head has one output, named as transformers names it.
    let labels = match args.task() {
        kiln_data::Task::Regression => vec!["LABEL_0".to_string()],
        _ => splits.labels.labels().to_vec(),
    };
    Ok(PreparedData {
        scale: splits.value_scale(),
        test_labels: labels.clone(),
        labels,
        train,
        valid,
        test,
        extra: Vec::new(),
        splits: Some(splits),
        tagged: None,
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
        // A tagged sentence has no one label: concentration is not defined (all alike).
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

/// Writes tagged splits as JSONL files (`{"tokens": [...], "tags": [...]}` a sentence per line,
/// as `--tagged-format jsonl` reads them), each atomically; further test sets as NAME.jsonl.
pub fn write_tagged_splits(tagged: &TaggedSplits, dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let named = [
        ("train", &tagged.train),
        ("valid", &tagged.valid),
        ("test", &tagged.test),
    ];
    let extra = tagged.extra.iter().map(|(n, d)| (n.as_str(), d));
    for (name, data) in named.into_iter().chain(extra) {
        let mut text = String::new();
        for s in &data.sentences {
            let line = serde_json::json!({"tokens": s.words, "tags": s.tags});
            text.push_str(&line.to_string());
            text.push('\n');
        }
        kiln_model::files::write_atomic(&dir.join(format!("{name}.jsonl")), text.as_bytes())?;
    }
    Ok(())
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
                // Tagged sentences are written by write_tagged_splits.
                kiln_data::Target::Tags(_) => String::new(),
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
