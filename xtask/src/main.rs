//! `cargo xtask <task>`: every developer task in one place (see README.md).
//!
//! - `cargo xtask test`      cargo fmt --check, fetch the real checkpoint and data sets (pip/npm),
//!   run the whole test suite in release mode (the ignored real-file tests too), clippy
//!   -D warnings, then check that the `wgpu` backend compiles.
//! - `cargo xtask bench [torch]` kiln and PyTorch + transformers (a venv it installs) fine-tune
//!   the same checkpoint on the same split with the same recipe, one after
//!   the other: training and inference speed, peak memory, accuracy, kiln's
//!   time per training phase (runs/bench/table.md, results.json).
//! - `cargo xtask bench data` tokenization throughput and padding share (kiln bench-data).
//! - `cargo xtask bench strategies` fine-tune with each strategy, accuracy and time side by side.
//! - `cargo xtask fetch …`   and every other `kiln` command (`embed`, …): run the release
//!   `kiln` binary with those arguments.
//! - `cargo xtask --features wgpu <command> …` builds `kiln` with extra backend features.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context, Result};
use kiln_metrics::{ClassificationMetrics, RunMetrics};
use serde_json::{json, Value};

mod quality;

const USAGE: &str = "usage: cargo xtask [--features F] <test [--offline] [--no-wgpu] | bench [torch] [--threads N] [--epochs N] [--device D] [--model DIR] | bench data|strategies | bench quality [--sets A,B] [--seeds 42,43] [--samplers packed,shuffled,bucketed:8] [--epochs N] [--no-torch] | train … | distill … | eval … | predict … | fetch [NAME…] | embed … | data …>";

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
                .map(|s| {
                    if s.contains('/') {
                        s.to_string()
                    } else {
                        format!("kiln/{s}")
                    }
                })
                .collect();
            vec!["--features".into(), list.join(",")]
        }
        None => Vec::new(),
    }
}

/// Builds the release `kiln` binary exactly as `cargo test --release --workspace` builds it
/// (same targets, so the same feature unification): burn is compiled once for both.
fn build(features: &Option<String>) -> Result<()> {
    if given_binary().is_some() {
        // A binary built elsewhere (say, at another commit) is run as it is.
        return Ok(());
    }
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--release",
        "--quiet",
        "--workspace",
        "--tests",
        "--examples",
    ]);
    cmd.args(feature_args(features));
    run(&mut cmd)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `$KILN_BINARY` when set: benchmarks then run that binary and build nothing, so a long
/// bench keeps measuring one commit while the working tree moves on.
fn given_binary() -> Option<PathBuf> {
    std::env::var_os("KILN_BINARY").map(PathBuf::from)
}

/// `target/release/kiln`, as `build` leaves it (or `$KILN_BINARY`).
fn kiln_binary() -> PathBuf {
    if let Some(binary) = given_binary() {
        return binary;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    target
        .join("release")
        .join(format!("kiln{}", std::env::consts::EXE_SUFFIX))
}

/// The freshly built `target/release/kiln ARGS`.
fn kiln(features: &Option<String>, args: &[String]) -> Result<Command> {
    build(features)?;
    let mut cmd = Command::new(kiln_binary());
    cmd.args(args);
    Ok(cmd)
}

fn test(features: &Option<String>, args: &[String]) -> Result<()> {
    let offline = args.iter().any(|a| a == "--offline");
    let wgpu = !args.iter().any(|a| a == "--no-wgpu");
    // Formatting first: it takes a second and fails the suite before any build.
    run(cargo().args(["fmt", "--all", "--check"]))
        .context("cargo fmt --all --check: run `cargo fmt --all`")?;
    // A build failure is the suite's failure, not a reason to leave out the real-file tests.
    build(features)?;
    let mut real = false;
    if !offline {
        // The real checkpoint and data sets make the parity and data tests meaningful; the
        // tests that need them are #[ignore]d and run here once the fetch has worked.
        match run(Command::new(kiln_binary()).arg("fetch")) {
            Ok(()) => real = true,
            Err(e) => eprintln!("xtask: could not fetch the real checkpoint and data sets ({e:#}); the tests that need them stay ignored"),
        }
    }
    let mut cmd = cargo();
    cmd.args(["test", "--release", "--workspace"]);
    cmd.args(feature_args(features));
    if real {
        cmd.args(["--", "--include-ignored"]);
    }
    run(&mut cmd)?;
    if real {
        run_examples()?;
    }
    run(cargo()
        .args(["clippy", "--release", "--workspace", "--all-targets"])
        .args(feature_args(features))
        .args(["--", "-D", "warnings"]))
    .context("clippy found warnings")?;
    if wgpu {
        // Optional features must keep compiling even where they cannot run (no GPU, no hub).
        run(cargo().args([
            "check",
            "--package",
            "kiln",
            "--features",
            "wgpu,hf-hub",
            "--all-targets",
        ]))?;
        // The GPU code path run, not only built: parity and a few training steps on the
        // machine's wgpu adapter (Mesa's lavapipe, software Vulkan, where there is no GPU).
        run(cargo().args([
            "test",
            "--release",
            "--package",
            "kiln",
            "--features",
            "wgpu",
            "--test",
            "wgpu",
        ]))
        .context(
            "the wgpu tests failed (no Vulkan driver? on Debian: apt-get install \
             mesa-vulkan-drivers; --no-wgpu leaves the wgpu build and tests out)",
        )?;
    }
    Ok(())
}

/// Runs every example under `examples/` end to end on the tiny test model (seconds each): an
/// example that no longer runs fails the suite, not its first reader.
fn run_examples() -> Result<()> {
    let binaries = kiln_binary()
        .parent()
        .context("the kiln binary has no directory")?
        .join("examples");
    let tiny = repo_root().join("tests/fixtures/tiny-bert");
    let small = ["--limit", "64", "--epochs", "1"];
    let exported = tempfile::tempdir()?;
    let runs: Vec<(&str, Vec<std::ffi::OsString>)> = vec![
        ("sentiment", vec![]),
        ("distill", vec![]),
        ("custom_head", vec![]),
        ("regression", vec![]),
        ("multi_label", vec![]),
        ("token_classification", vec![]),
        (
            "export_hf",
            vec![
                tiny.clone().into(),
                exported.path().join("model").into(),
                "a good movie".into(),
            ],
        ),
    ];
    let mut found: Vec<String> = std::fs::read_dir(repo_root().join("examples"))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs").map(String::from)
        })
        .collect();
    found.sort();
    let mut listed: Vec<String> = runs.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    if found != listed {
        bail!("examples/ holds {found:?} but `cargo xtask test` runs {listed:?}: list each one");
    }
    for (name, args) in runs {
        eprintln!("xtask: example {name} on the tiny model");
        let mut cmd = Command::new(binaries.join(name));
        match args.is_empty() {
            true => cmd.arg("--model").arg(&tiny).args(small),
            false => cmd.args(args),
        };
        run(&mut cmd).with_context(|| format!("example {name}"))?;
    }
    Ok(())
}

/// `cargo xtask bench [torch|data|strategies]`; options without a name go to `torch`.
fn bench(features: &Option<String>, args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("torch") => bench_torch(features, &args[1..]),
        None => bench_torch(features, args),
        Some(option) if option.starts_with('-') => bench_torch(features, args),
        Some("data") => {
            let mut rest = vec!["bench-data".to_string()];
            rest.extend(args.iter().skip(1).cloned());
            run(&mut kiln(features, &rest)?)
        }
        Some("strategies") => bench_strategies(features, &args[1..]),
        Some("quality") => quality::bench_quality(features, &args[1..]),
        Some(other) => {
            bail!("unknown benchmark `{other}` (available: torch, data, strategies, quality)")
        }
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
        let mut args: Vec<String> = [
            "train",
            "--strategy",
            strategy,
            "--lr",
            lr,
            "--pooling",
            pooling,
            "--overwrite",
            "--out",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(out.display().to_string());
        args.extend(extra.iter().cloned());
        run(&mut kiln(features, &args)?)?;
        let m = RunMetrics::of_run(&out)?;
        let test = |f: fn(&ClassificationMetrics) -> f64| {
            m.test
                .as_ref()
                .and_then(|t| t.classification())
                .map_or(f64::NAN, f)
        };
        rows.push(format!(
            "| {strategy} | {lr} | {pooling} | {} | {:.4} | {:.4} | {:.1} | {:.1} | {:.1} | {:.0} |",
            m.train.trainable_parameters,
            test(|t| t.accuracy),
            test(|t| t.macro_f1),
            m.total_wall_seconds,
            m.train.stats.wall_seconds,
            m.train.stats.samples_per_second,
            m.train.peak_rss_mib.unwrap_or(f64::NAN),
        ));
    }
    println!("| strategy | lr | pooling | trainable params | test accuracy | test macro-F1 | run seconds | training-loop seconds | training samples/s | peak RSS MiB |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}

/// Where `cargo xtask bench` puts the split, both runs and the results.
const BENCH_DIR: &str = "runs/bench";
/// Split seed, also the training seed of both sides.
const SEED: &str = "42";
const MAX_LEN: &str = "128";
/// Batch size of the timed inference pass, on both sides.
const INFER_BATCH_SIZE: &str = "64";

/// The recipe both sides train with (kiln's defaults, spelled out), in the flag names that
/// `kiln train` and compare_hf.py share.
fn bench_recipe(epochs: usize) -> Vec<String> {
    let epochs = epochs.to_string();
    [
        "--epochs",
        &epochs,
        "--batch-size",
        "32",
        "--lr",
        "5e-5",
        "--max-len",
        MAX_LEN,
        "--warmup-ratio",
        "0.1",
        "--grad-clip",
        "1.0",
        "--weight-decay",
        "0.01",
        "--seed",
        SEED,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Options of `cargo xtask bench [torch]`.
#[derive(Debug)]
struct BenchOptions {
    /// Threads of each side: kiln's RAYON_NUM_THREADS, PyTorch's torch.set_num_threads.
    threads: usize,
    /// Fewer than the recipe's 3 make a quick smoke run (accuracy then means little).
    epochs: usize,
    /// kiln's device (`--device wgpu` with `--features wgpu`); the PyTorch side stays on the CPU.
    device: Option<String>,
    /// The checkpoint both sides fine-tune: a directory in Hugging Face layout of any family
    /// kiln loads (transformers' `AutoModel…` loads it on the PyTorch side), or `minilm-l6`.
    model: Option<PathBuf>,
}

impl BenchOptions {
    fn parse(args: &[String]) -> Result<Self> {
        // A RAYON_NUM_THREADS the user set applies to both sides, so that they stay equal.
        let env_threads = std::env::var("RAYON_NUM_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0);
        let mut options = Self {
            threads: env_threads.unwrap_or(2),
            epochs: 3,
            device: None,
            model: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--threads" => options.threads = positive(args.next(), arg)?,
                "--epochs" => options.epochs = positive(args.next(), arg)?,
                "--device" => {
                    let device = args.next().filter(|d| !d.starts_with('-'));
                    options.device = Some(
                        device
                            .with_context(|| format!("--device needs a device name\n{USAGE}"))?
                            .clone(),
                    );
                }
                "--model" => {
                    let dir = args.next().filter(|d| !d.starts_with('-'));
                    let dir = PathBuf::from(dir.with_context(|| {
                        format!("--model needs a checkpoint directory\n{USAGE}")
                    })?);
                    if dir != Path::new("minilm-l6") && !dir.join("config.json").is_file() {
                        bail!(
                            "--model {}: no config.json there (a checkpoint directory in \
                             Hugging Face layout, or minilm-l6)",
                            dir.display()
                        );
                    }
                    options.model = (dir != Path::new("minilm-l6")).then_some(dir);
                }
                other => bail!("unknown option `{other}` for `bench torch`\n{USAGE}"),
            }
        }
        Ok(options)
    }
}

fn positive(value: Option<&String>, flag: &str) -> Result<usize> {
    value
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .with_context(|| format!("{flag} needs a positive whole number\n{USAGE}"))
}

/// The sets `cargo xtask bench` trains on: sentence-length reviews and short texts, where
/// per-step overhead decides the speed.
const BENCH_SETS: [&str; 2] = ["rotten-tomatoes", "uci-sentiment"];

/// One set's runs: kiln's default recipe, kiln with the `Trainer`'s default batching (plain
/// shuffled batches padded to their longest), and PyTorch + transformers' `Trainer` with its
/// default batching and with its length-grouped sampler (`group_by_length`, its fastest).
struct SetRuns {
    set: String,
    kiln: Value,
    kiln_equal: Value,
    pytorch: Value,
    pytorch_grouped: Value,
}

/// kiln against PyTorch + transformers on this machine, one after the other so that neither
/// slows the other: all-MiniLM-L6-v2 fine-tuned on kiln's seed-42 split of each set in
/// [`BENCH_SETS`] with one recipe — kiln with its default batching and again with PyTorch's
/// (equal batching), PyTorch with its own — then the first set's models timed over its 3,200
/// training examples (the inference workload); one table of speed, memory and accuracy against
/// the targets, plus kiln's time per training phase. Writes BENCH_DIR/{table.md,results.json}.
fn bench_torch(features: &Option<String>, args: &[String]) -> Result<()> {
    let options = BenchOptions::parse(args)?;
    let threads = options.threads.to_string();
    let recipe = bench_recipe(options.epochs);
    build(features)?;
    // What was built is what is measured: the commit is read now, not after the long runs.
    let setup = Setup::of_this_machine(options.threads);
    let device: Vec<&str> = options
        .device
        .as_deref()
        .map(|d| vec!["--device", d])
        .unwrap_or_default();
    let kiln = |args: &[&str]| {
        let mut cmd = Command::new(kiln_binary());
        cmd.args(args).env("RAYON_NUM_THREADS", &threads);
        cmd
    };

    let mut fetch = vec!["fetch", "minilm-l6"];
    fetch.extend(BENCH_SETS);
    let fetched = stdout_of(&mut kiln(&fetch))?;
    let checkpoint = fetched
        .lines()
        .find_map(|line| line.strip_prefix("minilm-l6\t"))
        .map(PathBuf::from)
        .with_context(|| format!("`kiln fetch` printed no path for minilm-l6:\n{fetched}"))?;
    // The venv goes into the cache minilm-l6 sits in (CACHE/models/minilm-l6, $KILN_CACHE).
    let cache = checkpoint
        .ancestors()
        .nth(2)
        .context("the checkpoint path has no cache directory above it")?;
    let python = bench_python(&cache.join("venv-bench"))?;
    let checkpoint = options.model.clone().unwrap_or(checkpoint);

    let mut sets = Vec::new();
    let mut kiln_eval = Value::Null;
    for (i, set) in BENCH_SETS.into_iter().enumerate() {
        let dir = Path::new(BENCH_DIR).join(set);
        let splits = dir.join("splits");
        let infer_file = splits.join("train.csv");
        run(kiln(&["data", "--data", set, "--seed", SEED, "--write-splits"]).arg(&splits))?;
        let train = |run_dir: &Path, batching: &[&str]| -> Result<Value> {
            run(kiln(&["train", "--data", set, "--overwrite"])
                .args(&device)
                .args(batching)
                .arg("--model")
                .arg(&checkpoint)
                .args(&recipe)
                .arg("--out")
                .arg(run_dir))?;
            // Through the typed record (a renamed field fails here), then as JSON for the
            // side-by-side table with PyTorch's file.
            Ok(serde_json::to_value(RunMetrics::of_run(run_dir)?)?)
        };
        let kiln_run = dir.join("kiln");
        let kiln_metrics = train(&kiln_run, &[])?;
        let kiln_equal = train(&dir.join("kiln-shuffled"), &["--sampler", "shuffled"])?;
        if i == 0 {
            let eval = stdout_of(
                kiln(&[
                    "eval",
                    "--max-len",
                    MAX_LEN,
                    "--batch-size",
                    INFER_BATCH_SIZE,
                ])
                .args(&device)
                .arg("--model")
                .arg(kiln_run.join("model"))
                .arg("--test")
                .arg(&infer_file),
            )?;
            kiln_eval = serde_json::from_str(&eval)
                .with_context(|| format!("`kiln eval` printed no JSON:\n{eval}"))?;
        }
        // --kiln-run: compare_hf.py warns if kiln's run used another recipe or other examples.
        let pytorch = |sampler: &str, infer: bool| -> Result<Value> {
            let json_path = dir.join(format!("pytorch-{sampler}.json"));
            let mut compare = Command::new(&python);
            compare
                .arg(repo_root().join("scripts/reference/compare_hf.py"))
                .arg("--splits")
                .arg(&splits)
                .args(&recipe)
                .args(["--threads", &threads, "--eval-batch-size", INFER_BATCH_SIZE])
                .args(["--sampler", sampler])
                .arg("--model-dir")
                .arg(&checkpoint)
                .arg("--kiln-run")
                .arg(&kiln_run)
                .arg("--json")
                .arg(&json_path)
                .env("OMP_NUM_THREADS", &threads);
            if infer {
                compare.arg("--infer-file").arg(&infer_file);
            }
            run(&mut compare)?;
            read_json(&json_path)
        };
        sets.push(SetRuns {
            set: set.to_string(),
            kiln: kiln_metrics,
            kiln_equal,
            pytorch: pytorch("shuffled", i == 0)?,
            pytorch_grouped: pytorch("group_by_length", false)?,
        });
    }

    let (table, results) = bench_report(&sets, &kiln_eval, &recipe, &setup);
    println!("\n{table}");
    let dir = Path::new(BENCH_DIR);
    std::fs::write(dir.join("table.md"), &table)?;
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    eprintln!(
        "xtask: wrote {0}/table.md and {0}/results.json",
        dir.display()
    );
    Ok(())
}

/// Runs `cmd` with its stderr on the console and returns its stdout.
fn stdout_of(cmd: &mut Command) -> Result<String> {
    eprintln!("xtask: running {cmd:?}");
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({})", out.status);
    }
    String::from_utf8(out.stdout).with_context(|| format!("{cmd:?} printed invalid UTF-8"))
}

fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The Python of a venv at `venv` holding scripts/bench/requirements.txt: created when missing,
/// installed again when that file changed since (the venv keeps a copy of it as the stamp).
fn bench_python(venv: &Path) -> Result<PathBuf> {
    let requirements_path = repo_root().join("scripts/bench/requirements.txt");
    let requirements = std::fs::read_to_string(&requirements_path)
        .with_context(|| format!("reading {}", requirements_path.display()))?;
    let python = venv.join("bin").join("python");
    let stamp = venv.join("kiln-requirements.txt");
    if python.exists()
        && std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == requirements)
    {
        return Ok(python);
    }
    if !python.exists() {
        let version = first_line_of("python3", &["--version"])
            .context("python3 not found: the PyTorch side of `cargo xtask bench` needs Python 3.11+ with venv and pip")?;
        // compare_hf.py reads kiln's config.toml with tomllib (Python 3.11+).
        let new_enough = Command::new("python3")
            .args(["-c", "import sys; sys.exit(sys.version_info < (3, 11))"])
            .status()
            .is_ok_and(|s| s.success());
        if !new_enough {
            bail!(
                "python3 is {version}: the PyTorch side of `cargo xtask bench` needs Python 3.11+"
            );
        }
        run(Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(venv))
        .context("could not create the venv (on Debian/Ubuntu: apt install python3-venv)")?;
    }
    run(Command::new(&python).args(["-m", "pip", "--version"]))
        .context("the venv has no pip (on Debian/Ubuntu: apt install python3-venv python3-pip)")?;
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "-r"])
        .arg(&requirements_path))
    .context("installing the PyTorch side into the venv (from PyPI)")?;
    std::fs::write(&stamp, &requirements)
        .with_context(|| format!("writing {}", stamp.display()))?;
    Ok(python)
}

/// The first line `program args` prints, or None if it does not run: for the description of the
/// machine, where a missing tool should not stop the benchmark.
fn first_line_of(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    })
}

/// CPU flags that decide which kernels run: gemm's and kiln's AVX-512 / AVX2+FMA paths, and
/// the bf16/int8/AMX units PyTorch's oneDNN may use.
const RELEVANT_CPU_FLAGS: [&str; 9] = [
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
];

/// What a benchmark ran on, and when.
struct Setup {
    cpu: Option<String>,
    /// The SIMD flags of /proc/cpuinfo that kiln's kernels (or PyTorch's) can use.
    cpu_flags: Vec<String>,
    logical_cpus: Option<usize>,
    kernel: Option<String>,
    threads: usize,
    kiln_commit: Option<String>,
    date: Option<String>,
}

impl Setup {
    fn of_this_machine(threads: usize) -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, name)| name.trim().to_string())
            });
        let cpu_flags = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                let flags = info.lines().find(|line| line.starts_with("flags"))?;
                let have: Vec<&str> = flags.split_once(':')?.1.split_whitespace().collect();
                Some(
                    RELEVANT_CPU_FLAGS
                        .iter()
                        .filter(|f| have.contains(f))
                        .map(|f| f.to_string())
                        .collect(),
                )
            })
            .unwrap_or_default();
        let root = repo_root().display().to_string();
        let kiln_commit =
            first_line_of("git", &["-C", &root, "rev-parse", "--short", "HEAD"]).map(|commit| {
                // Benchmarks of work in progress are common; the commit alone would misdescribe them.
                match first_line_of(
                    "git",
                    &["-C", &root, "status", "--porcelain", "--untracked-files=no"],
                ) {
                    Some(change) if !change.is_empty() => format!("{commit} + uncommitted changes"),
                    _ => commit,
                }
            });
        Self {
            cpu,
            cpu_flags,
            logical_cpus: std::thread::available_parallelism().ok().map(|n| n.get()),
            kernel: first_line_of("uname", &["-r"]),
            threads,
            kiln_commit,
            date: first_line_of("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        }
    }
}

impl Setup {
    /// Which of kiln's CPU kernels run here (gemm's x86-v4 and kiln's host loops dispatch at run
    /// time), with the flags that decided it.
    fn kernels(&self) -> String {
        let has = |f: &str| self.cpu_flags.iter().any(|x| x == f);
        let kiln = if has("avx512f") {
            "AVX-512 (matmul, AdamW, GELU)"
        } else if has("avx2") && has("fma") {
            "AVX2+FMA"
        } else {
            "baseline x86-64"
        };
        format!("kiln {kiln}; flags {}", self.cpu_flags.join(" "))
    }
}

/// The issue's target for one row of the comparison.
#[derive(Clone, Copy)]
enum Target {
    /// kiln / PyTorch at least this.
    AtLeast(f64),
    /// kiln / PyTorch at most this.
    AtMost(f64),
    /// kiln − PyTorch within ± this many points (a 0–1 metric × 100).
    WithinPoints(f64),
    /// Shown for context only.
    None,
}

impl Target {
    fn describe(self) -> String {
        match self {
            Target::AtLeast(t) => format!("≥ {t:.1}×"),
            Target::AtMost(t) => format!("≤ {t:.1}×"),
            Target::WithinPoints(t) => format!("± {t} point"),
            Target::None => "—".into(),
        }
    }
}

/// One row of the kiln vs PyTorch table.
struct Row {
    name: String,
    kiln: Option<f64>,
    pytorch: Option<f64>,
    decimals: usize,
    target: Target,
}

impl Row {
    /// kiln / PyTorch, or kiln − PyTorch in points for a `WithinPoints` row.
    fn comparison(&self) -> Option<f64> {
        let (kiln, pytorch) = (self.kiln?, self.pytorch?);
        match self.target {
            Target::WithinPoints(_) => Some(100.0 * (kiln - pytorch)),
            _ => (pytorch > 0.0).then(|| kiln / pytorch),
        }
    }

    fn met(&self) -> Option<bool> {
        let c = self.comparison()?;
        match self.target {
            Target::AtLeast(t) => Some(c >= t),
            Target::AtMost(t) => Some(c <= t),
            Target::WithinPoints(t) => Some(c.abs() <= t),
            Target::None => None,
        }
    }

    fn markdown(&self) -> String {
        let value =
            |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.*}", self.decimals));
        let comparison = match (self.comparison(), self.target) {
            (None, _) => "n/a".to_string(),
            (Some(points), Target::WithinPoints(_)) => format!("{points:+.2} points"),
            (Some(ratio), _) => format!("{ratio:.2}×"),
        };
        let met = match (self.met(), self.target) {
            (_, Target::None) => "",
            (Some(true), _) => "met",
            (Some(false), _) => "**not met**",
            (None, _) => "n/a",
        };
        format!(
            "| {} | {} | {} | {comparison} | {} | {met} |",
            self.name,
            value(self.kiln),
            value(self.pytorch),
            self.target.describe()
        )
    }

    fn json(&self) -> Value {
        let comparison_key = match self.target {
            Target::WithinPoints(_) => "kiln_minus_pytorch_points",
            _ => "kiln_over_pytorch",
        };
        json!({
            "metric": self.name, "kiln": self.kiln, "pytorch": self.pytorch,
            comparison_key: self.comparison(), "target": self.target.describe(), "met": self.met(),
        })
    }
}

/// The table (markdown) and results.json of `bench torch`, from each set's runs (kiln's
/// metrics.json files and compare_hf.py's --json) and `kiln eval`'s output on the first set.
/// A figure missing from them (an older kiln) is n/a.
fn bench_report(
    sets: &[SetRuns],
    kiln_eval: &Value,
    recipe: &[String],
    setup: &Setup,
) -> (String, Value) {
    let samples = |v: &Value| v["train"]["samples_per_second"].as_f64();
    let mut rows = Vec::new();
    for s in sets {
        let set = &s.set;
        rows.push(Row {
            name: format!(
                "{set}: training samples/s, default recipes (kiln packed, PyTorch shuffled)"
            ),
            kiln: samples(&s.kiln),
            pytorch: samples(&s.pytorch),
            decimals: 1,
            target: Target::AtLeast(1.3),
        });
        rows.push(Row {
            name: format!("{set}: training samples/s, equal batching (both shuffled)"),
            kiln: samples(&s.kiln_equal),
            pytorch: samples(&s.pytorch),
            decimals: 1,
            target: Target::AtLeast(1.0),
        });
        rows.push(Row {
            name: format!("{set}: training samples/s, fastest of each side (kiln packed, PyTorch group_by_length)"),
            kiln: samples(&s.kiln),
            pytorch: samples(&s.pytorch_grouped),
            decimals: 1,
            target: Target::None,
        });
        rows.push(Row {
            name: format!("{set}: test accuracy, default recipes (one seed)"),
            kiln: s.kiln["test"]["accuracy"].as_f64(),
            pytorch: s.pytorch["test"]["accuracy"].as_f64(),
            decimals: 4,
            target: Target::WithinPoints(1.0),
        });
    }
    let first = sets.first();
    let of_first = |f: fn(&SetRuns) -> Option<f64>| first.and_then(f);
    rows.push(Row {
        name: "training tokens/s (first set, default recipes)".into(),
        kiln: of_first(|s| s.kiln["train"]["tokens_per_second"].as_f64()),
        pytorch: of_first(|s| s.pytorch["train"]["tokens_per_second"].as_f64()),
        decimals: 0,
        target: Target::None,
    });
    rows.push(Row {
        name: "inference samples/s".into(),
        kiln: kiln_eval["inference"]["samples_per_second"].as_f64(),
        pytorch: of_first(|s| s.pytorch["inference"]["samples_per_second"].as_f64()),
        decimals: 1,
        target: Target::AtLeast(1.5),
    });
    rows.push(Row {
        name: "peak RSS MiB (training run)".into(),
        kiln: of_first(|s| s.kiln["train"]["peak_rss_mib"].as_f64()),
        pytorch: of_first(|s| s.pytorch["train"]["peak_rss_mib"].as_f64()),
        decimals: 0,
        target: Target::AtMost(0.5),
    });
    let null = Value::Null;
    let (kiln_train, pytorch) = first.map_or((&null, &null), |s| (&s.kiln, &s.pytorch));
    let text = |v: &Value| v.as_str().map(str::to_string);
    let unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    let torch_version = text(&pytorch["versions"]["torch"]);
    let transformers_version = text(&pytorch["versions"]["transformers"]);
    let python_version = text(&pytorch["versions"]["python"]);

    let mut md = String::from("## kiln vs PyTorch + transformers\n\n");
    md += "| | kiln | PyTorch | kiln/PyTorch | target | status |\n|---|---|---|---|---|---|\n";
    for row in &rows {
        md += &row.markdown();
        md.push('\n');
    }
    let kiln_loop = kiln_train["train"]["wall_seconds"].as_f64();
    let seconds = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.1} s"));
    let first_set = first.map_or("?", |s| s.set.as_str());
    md += &format!(
        "\n{first_set}, training loop (per-epoch validation and checkpoint saves excluded on both sides): kiln {}, PyTorch {}.\n",
        seconds(kiln_loop),
        seconds(pytorch["train"]["loop_seconds"].as_f64()),
    );

    // (key in metrics.json and results.json, name in the table, seconds)
    let phases: Option<Vec<(&str, &str, f64)>> = [
        ("forward", "forward"),
        ("backward", "backward"),
        ("optimizer", "optimizer step"),
        ("data", "data"),
    ]
    .into_iter()
    .map(|(key, name)| {
        kiln_train["train"]["phases"][&format!("{key}_seconds")]
            .as_f64()
            .map(|s| (key, name, s))
    })
    .collect();
    let phase_json = match (kiln_loop, phases) {
        (Some(wall), Some(mut phases)) => {
            let timed: f64 = phases.iter().map(|&(_, _, s)| s).sum();
            phases.push(("other", "other (loop − phases)", wall - timed));
            md += &format!(
                "\n| kiln training phase ({first_set}, default recipe) | seconds | share of the training loop |\n|---|---|---|\n"
            );
            let mut json = serde_json::Map::new();
            for (key, name, s) in phases {
                md += &format!("| {name} | {s:.1} | {:.1}% |\n", 100.0 * s / wall);
                json.insert(key.to_string(), json!({ "seconds": s, "share": s / wall }));
            }
            md += &format!("| training loop | {wall:.1} | 100% |\n");
            Value::Object(json)
        }
        _ => {
            md += "\nkiln's time per training phase: n/a (its metrics.json has no train.phases).\n";
            Value::Null
        }
    };

    let machine = format!(
        "{}, {} logical CPUs, Linux {}",
        unknown(&setup.cpu),
        setup
            .logical_cpus
            .map_or("?".to_string(), |n| n.to_string()),
        unknown(&setup.kernel)
    );
    let count = |v: &Value| v.as_u64().map_or("?".to_string(), |n| n.to_string());
    let examples: Vec<String> = sets
        .iter()
        .map(|s| {
            format!(
                "{} ({} training examples)",
                s.set,
                count(&s.kiln["train"]["examples"])
            )
        })
        .collect();
    md += &format!(
        "\n- Machine: {machine}\n- CPU kernels: {}\n- Threads: {} each (kiln: RAYON_NUM_THREADS; PyTorch: torch.set_num_threads)\n\
         - Versions: kiln {} (device {}); torch {}, transformers {}, Python {}\n\
         - Training: all-MiniLM-L6-v2 on kiln's seed-{SEED} split of {}, \
         AdamW with warmup + linear decay, `{}` on both sides; kiln's default batching (packed) \
         against the `Trainer`'s default (shuffled, padded to each batch's longest); kiln with \
         the `Trainer`'s batching (`--sampler shuffled`) for the equal-batching row; the \
         `Trainer` with `group_by_length` (length-grouped like kiln's `--sampler bucketed`) for \
         the fastest-of-each-side row\n\
         - Inference: each side's best model on {first_set} over {} examples (the training split), \
         length-sorted batches of {INFER_BATCH_SIZE} padded to their longest, tokenization excluded\n- Date: {}\n",
        setup.kernels(),
        setup.threads,
        unknown(&setup.kiln_commit),
        unknown(&text(&kiln_train["device"])),
        unknown(&torch_version),
        unknown(&transformers_version),
        unknown(&python_version),
        examples.join(" and "),
        recipe.join(" "),
        count(&pytorch["inference"]["examples"]),
        unknown(&setup.date),
    );

    let results = json!({
        "date": setup.date,
        "machine": {
            "cpu": setup.cpu, "cpu_flags": setup.cpu_flags, "logical_cpus": setup.logical_cpus,
            "kernel": setup.kernel,
        },
        "threads": setup.threads,
        "recipe": recipe.join(" "),
        "versions": {
            "kiln_commit": setup.kiln_commit, "torch": torch_version,
            "transformers": transformers_version, "python": python_version,
        },
        "comparison": rows.iter().map(Row::json).collect::<Vec<_>>(),
        "kiln_phases": phase_json,
        "sets": sets.iter().map(|s| json!({
            "set": s.set, "kiln": s.kiln, "kiln_equal_batching": s.kiln_equal,
            "pytorch": s.pytorch, "pytorch_group_by_length": s.pytorch_grouped,
        })).collect::<Vec<_>>(),
        "kiln_eval": kiln_eval,
    });
    (md, results)
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
            return if args.is_empty() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> Setup {
        Setup {
            cpu: Some("Test CPU".into()),
            cpu_flags: vec!["avx2".into(), "fma".into(), "avx512f".into()],
            logical_cpus: Some(2),
            kernel: Some("6.1.0".into()),
            threads: 2,
            kiln_commit: Some("abc1234".into()),
            date: Some("2026-01-01 00:00 UTC".into()),
        }
    }

    fn pytorch() -> Value {
        json!({
            "test": {"accuracy": 0.8375},
            "train": {"samples_per_second": 40.0, "tokens_per_second": 1000.0, "peak_rss_mib": 2000.0, "loop_seconds": 240.0},
            "inference": {"examples": 3200, "samples_per_second": 100.0},
            "versions": {"torch": "2.15.0", "transformers": "5.24.0", "python": "3.11.7"},
        })
    }

    fn runs(set: &str, kiln_train: Value, equal_samples: f64) -> SetRuns {
        SetRuns {
            set: set.into(),
            kiln: kiln_train,
            kiln_equal: json!({"train": {"samples_per_second": equal_samples}}),
            pytorch: pytorch(),
            pytorch_grouped: json!({"train": {"samples_per_second": 50.0}}),
        }
    }

    #[test]
    fn report_compares_against_the_targets_and_splits_the_training_loop() {
        let kiln_train = json!({
            "device": "flex",
            "test": {"accuracy": 0.8425},
            "train": {
                "examples": 3200, "wall_seconds": 200.0, "samples_per_second": 48.0, "tokens_per_second": 1300.0,
                "peak_rss_mib": 900.0,
                "phases": {"data_seconds": 10.0, "forward_seconds": 60.0, "backward_seconds": 100.0, "optimizer_seconds": 20.0},
            },
        });
        let short = json!({"test": {"accuracy": 0.8}, "train": {"examples": 2400, "samples_per_second": 60.0}});
        let kiln_eval =
            json!({"accuracy": 0.9, "inference": {"examples": 3200, "samples_per_second": 120.0}});
        let sets = [runs("rt", kiln_train, 36.0), runs("short", short, 44.0)];
        let (md, results) = bench_report(&sets, &kiln_eval, &bench_recipe(3), &setup());
        assert!(
            md.contains("| rt: training samples/s, default recipes (kiln packed, PyTorch shuffled) | 48.0 | 40.0 | 1.20× | ≥ 1.3× | **not met** |"),
            "{md}"
        );
        assert!(
            md.contains("| rt: training samples/s, equal batching (both shuffled) | 36.0 | 40.0 | 0.90× | ≥ 1.0× | **not met** |"),
            "{md}"
        );
        assert!(
            md.contains("| short: training samples/s, default recipes (kiln packed, PyTorch shuffled) | 60.0 | 40.0 | 1.50× | ≥ 1.3× | met |"),
            "{md}"
        );
        assert!(
            md.contains("| short: training samples/s, equal batching (both shuffled) | 44.0 | 40.0 | 1.10× | ≥ 1.0× | met |"),
            "{md}"
        );
        assert!(
            md.contains("| short: training samples/s, fastest of each side (kiln packed, PyTorch group_by_length) | 60.0 | 50.0 | 1.20× | — |  |"),
            "{md}"
        );
        assert!(
            md.contains("| inference samples/s | 120.0 | 100.0 | 1.20× | ≥ 1.5× | **not met** |"),
            "{md}"
        );
        assert!(
            md.contains("| peak RSS MiB (training run) | 900 | 2000 | 0.45× | ≤ 0.5× | met |"),
            "{md}"
        );
        assert!(
            md.contains("| rt: test accuracy, default recipes (one seed) | 0.8425 | 0.8375 | +0.50 points | ± 1 point | met |"),
            "{md}"
        );
        assert!(md.contains("| backward | 100.0 | 50.0% |"), "{md}");
        assert!(
            md.contains("| other (loop − phases) | 10.0 | 5.0% |"),
            "{md}"
        );
        assert!(
            md.contains("kiln abc1234 (device flex); torch 2.15.0"),
            "{md}"
        );
        assert!(
            md.contains(
                "- CPU kernels: kiln AVX-512 (matmul, AdamW, GELU); flags avx2 fma avx512f"
            ),
            "{md}"
        );
        assert!(
            md.contains("rt (3200 training examples) and short (2400 training examples)"),
            "{md}"
        );
        assert!(md.contains("`--epochs 3 --batch-size 32"), "{md}");
        assert!(md.contains("best model on rt over 3200 examples"), "{md}");
        assert!(
            md.contains(
                "| training tokens/s (first set, default recipes) | 1300 | 1000 | 1.30× | — |  |"
            ),
            "{md}"
        );
        assert_eq!(results["comparison"][9]["met"], json!(false));
        assert_eq!(
            results["comparison"][3]["kiln_minus_pytorch_points"]
                .as_f64()
                .map(|p| (p * 100.0).round()),
            Some(50.0)
        );
        assert_eq!(results["kiln_phases"]["optimizer"]["seconds"], json!(20.0));
        assert_eq!(results["machine"]["cpu_flags"][2], json!("avx512f"));
    }

    #[test]
    fn figures_an_older_kiln_lacks_are_not_available() {
        let kiln_train = json!({"test": {"accuracy": 0.8425}, "train": {"wall_seconds": 200.0, "samples_per_second": 48.0}});
        let (md, results) = bench_report(
            &[runs("rt", kiln_train, 30.0)],
            &json!({"accuracy": 0.9}),
            &bench_recipe(1),
            &setup(),
        );
        assert!(
            md.contains("| inference samples/s | n/a | 100.0 | n/a | ≥ 1.5× | n/a |"),
            "{md}"
        );
        assert!(md.contains("time per training phase: n/a"), "{md}");
        assert_eq!(results["kiln_phases"], Value::Null);
        assert_eq!(results["comparison"][5]["met"], Value::Null);
    }

    #[test]
    fn bench_options_are_checked() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let options = BenchOptions::parse(&args(&["--threads", "4", "--epochs", "1"])).unwrap();
        assert_eq!((options.threads, options.epochs), (4, 1));
        assert!(BenchOptions::parse(&args(&["--limit", "64"])).is_err());
        assert!(BenchOptions::parse(&args(&["--epochs"])).is_err());
        assert!(BenchOptions::parse(&args(&["--threads", "0"])).is_err());
        let on_gpu = BenchOptions::parse(&args(&["--device", "wgpu"])).unwrap();
        assert_eq!(on_gpu.device.as_deref(), Some("wgpu"));
        assert!(BenchOptions::parse(&args(&["--device"])).is_err());
        assert!(BenchOptions::parse(&args(&["--device", "--epochs", "1"])).is_err());
        let fixture = repo_root().join("tests/fixtures/tiny-roberta");
        let roberta = BenchOptions::parse(&args(&["--model", fixture.to_str().unwrap()])).unwrap();
        assert_eq!(roberta.model.as_deref(), Some(fixture.as_path()));
        assert!(BenchOptions::parse(&args(&["--model", "minilm-l6"]))
            .unwrap()
            .model
            .is_none());
        let err = BenchOptions::parse(&args(&["--model", "/nonexistent"])).unwrap_err();
        assert!(err.to_string().contains("no config.json"), "{err}");
    }
}
