//! `kiln train`: the main job. Resolve the options (defaults < `--config FILE.toml` < flags),
//! load the checkpoint and the data, fine-tune with kiln-train, evaluate the best model on the
//! test set once, and write the run directory:
//!
//! ```text
//! OUT/config.toml    the resolved options
//! OUT/log.jsonl      one record per optimizer step and per epoch
//! OUT/metrics.json   test / valid / train figures (written last: a failed run has none)
//! OUT/model/         the fine-tuned model in Hugging Face layout
//! OUT/report.html    curves, test metrics and confusion matrix
//! OUT/checkpoints/   the last epoch checkpoint (for --resume)
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};

use kiln_data::pipeline::DataSource;
use kiln_metrics::{
    DistillSide, Evaluation, LogRecord, PartDrift, RunMetrics, SplitSizes, TrainFigures, ValidEpoch,
};
use kiln_model::{Checkpoint, HeadInit, Pooling};
use kiln_report::RunFiles;
use kiln_train::history::{EpochPoint, EvalPoint, StepPoint};
use kiln_train::metrics::ClassificationMetrics;
use kiln_train::strategy::Plan;
use kiln_train::trainer::{Observer, TrainConfig, TrainData, Trainer};

use crate::backend;
use crate::datasets::DataArgs;
use crate::fetch;
use crate::inspect::prepare;
use crate::options::Layered;

/// Every option of `kiln train`: the data (kiln's [`DataArgs`]), the recipe (kiln-train's
/// [`TrainConfig`], whose defaults live in its `Default`) and what only the command line decides
/// (model, device, run directory, console). One type is the flags, the `--config` file (keys
/// are the flag names: `batch-size = 32`) and the record a run saves as `OUT/config.toml`.
#[derive(Debug, Clone, Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TrainOptions {
    /// Checkpoint directory (Hugging Face layout) or a known name [default: minilm-l6].
    #[arg(long)]
    pub model: Option<String>,
    #[command(flatten)]
    #[serde(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub recipe: TrainConfig,
    /// How the head reads a sequence (cls, like BertForSequenceClassification; with mean the
    /// exported model predicts differently in transformers: see config.json's kiln_note).
    #[arg(long, value_enum, default_value_t)]
    pub pooling: Pooling,
    /// Training precision.
    #[arg(long, value_enum, default_value_t)]
    pub precision: Precision,
    /// The device; a comma-separated list trains data-parallel, each batch split over them.
    #[arg(long, alias = "devices", default_value = backend::default_device_name(), help = train_device_help())]
    pub device: String,
    /// Run directory [default: runs/MODEL-DATA-STRATEGY].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A progress line every N optimizer steps when stderr is not a terminal (terminals get a
    /// progress bar).
    #[arg(long, default_value_t = 50)]
    pub logging_steps: usize,
    /// Keep the resume checkpoints of a finished run (by default they are deleted once the
    /// best model is exported to OUT/model).
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub keep_checkpoints: bool,
    /// Continue the run in this directory from its newest intact checkpoint, with the run's
    /// own options (OUT/config.toml); flags that would change the run are refused.
    #[arg(long)]
    #[serde(skip)]
    pub resume: Option<PathBuf>,
    /// Replace a finished or interrupted run in --out.
    #[arg(long)]
    #[serde(skip)]
    pub overwrite: bool,
    /// Read options from a TOML file (keys are the flag names); flags win.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
}

/// What `kiln distill` adds to `kiln train`'s options (recorded with them in config.toml).
#[derive(Debug, Clone, Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DistillOptions {
    /// The fine-tuned teacher: a kiln run's model/ or any BertForSequenceClassification
    /// directory (required).
    #[arg(long)]
    pub teacher: Option<PathBuf>,
    /// Student depth K: the teacher's embeddings, every (L/K)-th encoder layer, pooler and head
    /// (DistilBERT's initialisation) [default: half the teacher's layers].
    #[arg(long)]
    pub student_layers: Option<usize>,
    /// Instead, any checkpoint with the teacher's vocabulary (it gets a new head).
    #[arg(long, conflicts_with = "student_layers")]
    pub student: Option<String>,
    /// Softmax temperature T of the distillation term.
    #[arg(long, default_value_t = 2.0)]
    pub temperature: f64,
    /// Weight α of the distillation term: (1−α)·CE + α·T²·KL.
    #[arg(long, default_value_t = 0.5)]
    pub alpha: f64,
    #[command(flatten)]
    #[serde(flatten)]
    pub train: TrainOptions,
}

/// `kiln train`'s flags as a command: [`TrainOptions`] with the recipe's defaults from
/// `TrainConfig::default()`, later flags overriding earlier ones (a file's options go first).
pub fn train_command() -> clap::Command {
    use clap::Args as _;
    TrainConfig::with_defaults(TrainOptions::augment_args(clap::Command::new("train")))
        .args_override_self(true)
}

fn train_device_help() -> String {
    format!(
        "Device: {}; a comma-separated list (--devices a,b) trains data-parallel, each batch split over them",
        backend::device_choices()
    )
}

/// The training precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    /// The whole model and optimizer state in bf16 (see the README).
    Bf16,
    /// Refused, with the reason: burn keeps no f32 master weights (not offered in --help).
    #[value(hide = true)]
    F16,
}

/// Options that cannot change a run's result: a resume may give them anew.
const RESUME_MAY_CHANGE: &[&str] = &[
    "save-every",
    "save-total-limit",
    "keep-checkpoints",
    "logging-steps",
    "out",
];

/// Options resolved into what the crates take.
pub struct Resolved {
    pub model: String,
    pub data: DataArgs,
    pub config: TrainConfig,
    pub pooling: Pooling,
    pub precision: Precision,
    pub device: String,
    pub out: PathBuf,
    pub logging_steps: usize,
    pub keep_checkpoints: bool,
    /// The options with every derived default written out (model, data set, run directory):
    /// what `config.toml` records.
    pub options: TrainOptions,
}

/// Fills the defaults that depend on other options (model, data set, run directory) and
/// checks every option.
pub fn resolve(options: TrainOptions) -> Result<Resolved> {
    let mut o = options;
    o.recipe.validate()?;
    match o.precision {
        Precision::F32 | Precision::Bf16 => {}
        // Measured: the second step's loss is NaN. burn keeps no f32 master weights, so AdamW's
        // state lives in f16, where ε = 1e-8 and the small second moments underflow to zero.
        Precision::F16 => bail!(
            "--precision f16 cannot train: burn 0.22 keeps no f32 master weights, and AdamW's \
             state in f16 underflows to NaN within two steps; use --precision bf16 (same range \
             as f32) or f32"
        ),
    }
    if o.logging_steps == 0 {
        bail!("--logging-steps must be at least 1");
    }
    let model = o.model.get_or_insert_with(|| "minilm-l6".into()).clone();
    let data_name = match (&o.data.data, &o.data.train) {
        (_, Some(train)) => train
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "data".into()),
        (Some(name), None) => name.clone(),
        (None, None) => {
            o.data.data = Some(crate::datasets::DEFAULT_DATA.to_string());
            crate::datasets::DEFAULT_DATA.to_string()
        }
    };
    let model_name = Path::new(&model)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    // A resumed run stays in its directory, wherever its record says it was started.
    let out = o
        .resume
        .clone()
        .or_else(|| o.out.clone())
        .unwrap_or_else(|| {
            PathBuf::from("runs").join(format!(
                "{model_name}-{data_name}-{}",
                o.recipe.strategy.kind
            ))
        });
    o.out = Some(out.clone());
    Ok(Resolved {
        model,
        data: o.data.clone(),
        config: o.recipe.clone(),
        pooling: o.pooling,
        precision: o.precision,
        device: o.device.clone(),
        out,
        logging_steps: o.logging_steps,
        keep_checkpoints: o.keep_checkpoints,
        options: o,
    })
}

/// A resumed run's options, checked against the run's own: `layers.options` are the flags
/// (and `--config` file) over the run's record (`DIR/config.toml`), `layers.saved` the record
/// alone. An option that would change the data, the model, the plan of batches or the recipe
/// is refused with every difference named; only options that cannot change the result may
/// differ. Checked before anything is loaded or written.
fn check_resume<T: Serialize>(dir: &Path, layers: &Layered<T>) -> Result<()> {
    let saved = layers
        .saved
        .as_ref()
        .context("a resumed run's options come with its record")?;
    let checkpoints = dir.join("checkpoints");
    let newest =
        kiln_train::resume::find_latest(&checkpoints, &mut |m| eprintln!("{m}")).map_err(|e| {
            anyhow::anyhow!(
                "--resume {}: no checkpoint to resume from ({e})",
                dir.display()
            )
        })?;
    let table = |options: &T| toml::Table::try_from(options).context("comparing options");
    let (before, after) = (table(saved)?, table(&layers.options)?);
    // An `out` other than the record's was given now: it must name this run.
    if let Some(out) = after
        .get("out")
        .filter(|out| before.get("out") != Some(*out))
    {
        if out.as_str() != dir.to_str() {
            bail!(
                "--out {} and --resume {} name different runs; a resumed run stays in its directory",
                out.as_str().unwrap_or_default(),
                dir.display()
            );
        }
    }
    let differences = option_differences(&before, &after);
    if !differences.is_empty() {
        bail!(
            "--resume {}: these options differ from the run's own ({}), and resuming with them \
             would mix two runs: {}. Drop them to continue the run as it was, or start a new run \
             with another --out",
            dir.display(),
            dir.join("config.toml").display(),
            differences.join("; ")
        );
    }
    eprintln!(
        "resuming {} from {} with the run's own options ({})",
        dir.display(),
        newest.display(),
        dir.join("config.toml").display()
    );
    Ok(())
}

/// `--key: the run had A, now B` for every option that differs and matters for the result.
fn option_differences(before: &toml::Table, after: &toml::Table) -> Vec<String> {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    let shown =
        |v: Option<&toml::Value>| v.map_or_else(|| "nothing".to_string(), |v| v.to_string());
    keys.into_iter()
        .filter(|k| !RESUME_MAY_CHANGE.contains(&k.as_str()))
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| {
            format!(
                "--{k}: the run had {}, now {}",
                shown(before.get(k)),
                shown(after.get(k))
            )
        })
        .collect()
}

/// Peak resident memory of this process (Linux `VmHWM`), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Progress bar (on a terminal) or a progress line every `logging_steps` steps (otherwise),
/// console lines and `log.jsonl`.
struct Console {
    bar: indicatif::ProgressBar,
    log: std::io::BufWriter<std::fs::File>,
    epochs: usize,
    logging_steps: usize,
    /// Optimizer steps per epoch, for the overall ETA.
    steps_per_epoch: usize,
    /// When this process's first step started, and the global step it started from.
    since: Option<(Instant, u64)>,
    /// Under `kiln sweep` (which sets [`SWEEP_GATE`]): the directory where the sweep lets the
    /// run go on after each evaluation, so its pruner judges every evaluation before the next
    /// step (a trial it stops, it kills).
    gate: Option<PathBuf>,
}

/// The environment variable through which `kiln sweep` hands a trial its gate directory.
pub const SWEEP_GATE: &str = "KILN_SWEEP_GATE";

/// The file the sweep writes when the evaluation after `step` may be followed by more steps.
pub fn gate_file(gate: &Path, step: u64) -> PathBuf {
    gate.join(format!("step-{step}"))
}

impl Console {
    fn log(&mut self, record: LogRecord) {
        let _ = self.log.write_all(record.to_line().as_bytes());
        let _ = self.log.write_all(b"\n");
        let _ = self.log.flush();
    }
    fn say(&self, line: &str) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }
    /// Seconds left in the whole run at this pace (the steps this process has taken so far).
    fn eta_seconds(&self, step: u64) -> Option<f64> {
        let (start, first) = self.since?;
        let done = step.checked_sub(first)?.max(1) as f64;
        let total = (self.steps_per_epoch * self.epochs) as u64;
        Some(start.elapsed().as_secs_f64() / done * total.saturating_sub(step) as f64)
    }
}

/// `1h02m`, `3m05s`, `42s`.
fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m{sec:02}s"),
        (h, min, _) => format!("{h}h{min:02}m"),
    }
}

impl Observer for Console {
    fn plan(&mut self, epoch: usize, plan: &Plan) {
        self.say(&format!("parameter plan (epoch {}):\n{plan}", epoch + 1));
    }
    fn epoch_start(&mut self, epoch: usize, optimizer_steps: usize) {
        self.steps_per_epoch = optimizer_steps;
        self.bar.reset();
        self.bar.set_length(optimizer_steps as u64);
        self.bar
            .set_prefix(format!("epoch {}/{}", epoch + 1, self.epochs));
    }
    fn step(&mut self, point: &StepPoint, samples_per_second: f64) {
        if self.since.is_none() {
            self.since = Some((Instant::now(), point.step.saturating_sub(1)));
        }
        self.bar.inc(1);
        self.bar.set_message(format!(
            "loss {:.4}  lr {:.2e}  {:.0} samples/s",
            point.loss, point.lr, samples_per_second
        ));
        if self.bar.is_hidden() && point.step.is_multiple_of(self.logging_steps as u64) {
            let eta = self
                .eta_seconds(point.step)
                .map(format_duration)
                .unwrap_or_else(|| "-".into());
            eprintln!(
                "step {}/{} (epoch {:.2}/{}): loss {:.4}  lr {:.2e}  {:.0} samples/s  eta {eta}",
                point.step,
                self.steps_per_epoch * self.epochs,
                point.epoch,
                self.epochs,
                point.loss,
                point.lr,
                samples_per_second
            );
        }
        self.log(LogRecord::Step {
            point: point.clone(),
            samples_per_second,
        });
    }
    fn validation(&mut self, point: &EvalPoint, is_best: bool) {
        let m = &point.metrics;
        if !point.epoch_end {
            self.say(&format!(
                "step {} (epoch {:.2}): valid {}  loss {:.4}{}",
                point.step,
                point.epoch,
                m.summary(),
                m.loss().unwrap_or(f64::NAN),
                if is_best { "  (best so far)" } else { "" }
            ));
        }
        self.log(LogRecord::Validation {
            point: point.clone(),
            best: is_best,
        });
        if let Some(gate) = &self.gate {
            let go = gate_file(gate, point.step);
            // Ctrl-C reaches the sweep and its trials together: stop waiting, checkpoint.
            while !go.exists() && !INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
    fn epoch_end(&mut self, point: &EpochPoint, is_best: bool) {
        let valid = point
            .valid
            .as_ref()
            .map(|m| {
                format!(
                    "valid {}  loss {:.4}",
                    m.summary(),
                    m.loss().unwrap_or(f64::NAN)
                )
            })
            .unwrap_or_else(|| "no validation data".into());
        self.say(&format!(
            "epoch {}/{}: train loss {:.4}  {valid}{}",
            point.epoch,
            self.epochs,
            point.train_loss,
            if is_best { "  (best so far)" } else { "" }
        ));
        self.log(LogRecord::Epoch {
            point: point.clone(),
            best: is_best,
        });
    }
    fn message(&mut self, text: &str) {
        self.say(text);
    }
    fn should_stop(&mut self) -> bool {
        INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
    }
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Ctrl-C once: finish the current step, save a checkpoint, exit cleanly. Twice: exit now.
fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
            eprintln!("\ninterrupted again: exiting without a checkpoint");
            std::process::exit(130);
        }
        eprintln!(
            "\ninterrupt: saving a checkpoint at the next step (Ctrl-C again to quit at once)"
        );
    });
}

/// What a run writes into its directory (and `--overwrite` removes).
const RUN_FILES: &[&str] = &["metrics.json", "log.jsonl", "report.html", "config.toml"];
const RUN_DIRS: &[&str] = &["checkpoints", "model"];

/// Refuses to mix runs: an `--out` holding a finished or an interrupted run needs `--resume`
/// (interrupted) or `--overwrite`; `--overwrite` removes the old run's files first.
fn prepare_out(out: &Path, overwrite: bool, resuming: bool) -> Result<()> {
    if !resuming {
        if out.join("metrics.json").exists() && !overwrite {
            bail!(
                "{} holds a finished run (metrics.json); pass --overwrite to replace it or choose another --out",
                out.display()
            );
        }
        let leftovers: Vec<&str> = RUN_FILES
            .iter()
            .chain(RUN_DIRS)
            .copied()
            .filter(|f| out.join(f).exists())
            .collect();
        if !leftovers.is_empty() && !overwrite {
            bail!(
                "{} holds an unfinished run ({}); pass --resume {} to continue it, --overwrite to \
                 start over, or choose another --out",
                out.display(),
                leftovers.join(", "),
                out.display()
            );
        }
        if overwrite {
            for name in RUN_FILES {
                remove_if_present(&out.join(name), false)?;
            }
            for name in RUN_DIRS {
                remove_if_present(&out.join(name), true)?;
            }
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    // Find an unwritable or full disk now, not after an hour of training.
    // The probe goes whether or not it fit: a partial one would fill a full disk further.
    let probe = out.join(".kiln-write-probe");
    let written = std::fs::write(&probe, vec![0u8; 1 << 20]);
    std::fs::remove_file(&probe).ok();
    written.with_context(|| format!("{} is not writable (1 MiB probe)", out.display()))
}

fn remove_if_present(path: &Path, dir: bool) -> Result<()> {
    let removed = if dir {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("--overwrite: removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// A resumed run's log.jsonl keeps what happened up to its checkpoint: records of the steps
/// after it (done before the interruption, done again now) are dropped, so the log never
/// holds a step twice. A `resume` record marks the place.
fn trim_log_for_resume(
    log: &Path,
    checkpoint_state: &kiln_train::resume::TrainState,
) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(log) else {
        return Ok(());
    };
    let keep = |record: &serde_json::Value| -> bool {
        match record["kind"].as_str() {
            Some("epoch") => record["epoch"]
                .as_u64()
                .is_some_and(|e| e <= checkpoint_state.epochs_done as u64),
            Some("resume") => true,
            _ => record["step"]
                .as_u64()
                .is_none_or(|s| s <= checkpoint_state.steps),
        }
    };
    let mut kept = String::new();
    for line in text.lines() {
        // A torn last line (the process was killed mid-write) is dropped too.
        if let Ok(record) = serde_json::from_str::<serde_json::Value>(line) {
            if keep(&record) {
                kept.push_str(line);
                kept.push('\n');
            }
        }
    }
    let resume = LogRecord::Resume {
        step: checkpoint_state.steps,
        epoch: checkpoint_state.epochs_done,
    };
    kept.push_str(&resume.to_line());
    kept.push('\n');
    write_atomic(log, kept.as_bytes())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    kiln_model::files::write_atomic(path, bytes).map_err(Into::into)
}

/// Which evaluation picked the exported model, in words.
fn describe_best<M>(outcome: &kiln_train::TrainOutcome<M>) -> String {
    let mid_epoch = outcome.evals.iter().any(|e| !e.epoch_end);
    match (outcome.best_epoch, outcome.best_step) {
        (Some(epoch), Some(step)) if mid_epoch => format!("step {step} (epoch {epoch})"),
        (Some(epoch), _) => format!("epoch {epoch}"),
        _ => "the last step".into(),
    }
}

/// Runs `kiln train` (its options with their files applied: [`crate::options::layered`]);
/// prints a summary and returns the run directory.
pub fn run(layers: Layered<TrainOptions>) -> Result<PathBuf> {
    if let Some(dir) = &layers.options.resume {
        check_resume(dir, &layers)?;
    }
    run_job(layers.options, None)
}

/// Runs `kiln distill`: the same job with a student and the teacher's cached logits.
pub fn run_distill(layers: Layered<DistillOptions>) -> Result<PathBuf> {
    let options = &layers.options;
    let Some(teacher) = options.teacher.clone() else {
        bail!("kiln distill needs --teacher DIR: the fine-tuned model to distil");
    };
    if let Some(dir) = &options.train.resume {
        if layers.saved.as_ref().is_some_and(|s| s.teacher.is_none()) {
            bail!(
                "--resume {}: that run is a `kiln train` run; resume it with kiln train",
                dir.display()
            );
        }
        check_resume(dir, &layers)?;
    }
    let teacher_name = teacher.display().to_string();
    if options
        .train
        .model
        .as_ref()
        .is_some_and(|m| *m != teacher_name)
    {
        bail!("kiln distill takes --teacher and --student-layers / --student, not --model");
    }
    let mut train = options.train.clone();
    if train.out.is_none() && train.resume.is_none() {
        let name = teacher
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = teacher
            .parent()
            .and_then(|p| p.file_name())
            .map(|s| s.to_string_lossy().into_owned());
        let stem = if name == "model" {
            parent.unwrap_or(name)
        } else {
            name
        };
        train.out = Some(PathBuf::from("runs").join(format!("{stem}-distilled")));
    }
    train.model = Some(teacher_name);
    let distill = Distill {
        teacher,
        options: options.clone(),
    };
    run_job(train, Some(distill))
}

/// A distillation's own options, with the teacher it names.
struct Distill {
    teacher: PathBuf,
    options: DistillOptions,
}

/// The teacher side of a distillation run.
struct TeacherSide {
    model: kiln_model::SequenceClassifier,
    dir: PathBuf,
    logits: Vec<f32>,
}

fn run_job(options: TrainOptions, distill: Option<Distill>) -> Result<PathBuf> {
    let resume = options.resume.clone();
    let overwrite = options.overwrite;
    if resume.is_some() && overwrite {
        bail!("--resume continues a run and --overwrite replaces it: give one of them");
    }
    // Everything that can be refused is checked before any data is read or file written.
    let r = resolve(options)?;
    let record = match &distill {
        None => toml::to_string_pretty(&r.options),
        Some(d) => toml::to_string_pretty(&DistillOptions {
            train: r.options.clone(),
            ..d.options.clone()
        }),
    }
    .context("writing the resolved config")?;
    let mut devices = backend::parse_devices(&r.device)?;
    let started = Instant::now();
    prepare_out(&r.out, overwrite, resume.is_some())?;

    // With distillation, `--model` is the teacher: its tokenizer serves both models.
    let model_dir = fetch::resolve_model(&r.model)?;
    let checkpoint = Checkpoint::open(&model_dir)?;
    let tokenizer = r.data.tokenizer(&checkpoint)?;
    let source: DataSource = r.data.source()?;
    let prepared = prepare(&r.data, r.config.seed, &source, &tokenizer)?;
    eprint!("{}", prepared.summary);
    let task = r.data.task();
    if distill.is_some() && task != kiln_data::Task::Classification {
        bail!("kiln distill trains classifiers: --task {task} has no logits to distil");
    }
    let labels = prepared.labels.clone();
    let outputs = labels.len();
    if let Some(w) = &r.config.class_weights {
        if w.len() != labels.len() {
            bail!(
                "--class-weights has {} values but the data has {} labels ({})",
                w.len(),
                labels.len(),
                labels.join(", ")
            );
        }
    }

    for device in &mut devices {
        if r.precision == Precision::Bf16 {
            device
                .configure(burn::tensor::FloatDType::BF16)
                .map_err(|e| anyhow::anyhow!("--precision bf16 on {device:?}: {e:?}"))?;
        }
        device.seed(r.config.seed);
    }
    let device = devices[0].clone();
    let mut config = r.config.clone();
    let (model, model_config, report, teacher) = match &distill {
        None if task == kiln_data::Task::Token => {
            let (model, report) =
                checkpoint.load_token_classifier_auto(HeadInit::New(outputs), &device)?;
            (Head::Tokens(model), checkpoint.config.clone(), report, None)
        }
        None => {
            let (model, report) =
                checkpoint.load_sequence_classifier(HeadInit::New(outputs), r.pooling, &device)?;
            (
                Head::Sequence(model),
                checkpoint.config.clone(),
                report,
                None,
            )
        }
        Some(d) => {
            let teacher = crate::predict::Classifier::load(
                &d.teacher,
                checkpoint.config.max_tokens(),
                device.clone(),
            )?;
            if teacher.labels != labels {
                bail!(
                    "the teacher {} knows labels [{}] but the data has [{}]",
                    d.teacher.display(),
                    teacher.labels.join(", "),
                    labels.join(", ")
                );
            }
            let (student, student_config, report) = match &d.options.student {
                Some(spec) => {
                    let student_ckpt = Checkpoint::open(fetch::resolve_model(spec)?)?;
                    if student_ckpt.config.vocab_size != checkpoint.config.vocab_size {
                        bail!(
                            "--student {spec} has a vocabulary of {} but the teacher's has {}: they must share a tokenizer",
                            student_ckpt.config.vocab_size,
                            checkpoint.config.vocab_size
                        );
                    }
                    let (m, report) = student_ckpt.load_sequence_classifier(
                        HeadInit::New(labels.len()),
                        r.pooling,
                        &device,
                    )?;
                    (m, student_ckpt.config.clone(), report)
                }
                None => {
                    let depth = checkpoint.config.num_hidden_layers;
                    let k = d.options.student_layers.unwrap_or((depth / 2).max(1));
                    let init = kiln_model::StudentInit::new(depth, k).map_err(|e| {
                        anyhow::anyhow!("{}", e.replacen("student_layers", "--student-layers", 1))
                    })?;
                    let kiln_model::SequenceClassifier::Bert(bert_teacher) = &teacher.model else {
                        bail!(
                            "--student-layers builds a student from a BERT teacher's layers; {} is a `{}` model: give the student with --student DIR",
                            d.teacher.display(),
                            checkpoint.config.model_type
                        );
                    };
                    let (m, c) =
                        kiln_model::student_from_teacher(bert_teacher, &checkpoint.config, &init);
                    let m = kiln_model::SequenceClassifier::from(m);
                    eprintln!("student: {k} of the teacher's {depth} layers ({:?}), embeddings, pooler and head copied", init.layer_map);
                    (m, c, kiln_model::LoadReport::default())
                }
            };
            let (logits, computed) = crate::distill::teacher_logits(
                &teacher.model,
                &d.teacher,
                &prepared.train,
                config.eval_batch_size,
                tokenizer.pad_id(),
                &device,
                &crate::distill::cache_root(),
            )?;
            if !computed {
                eprintln!("teacher logits: read from the cache (same teacher, same token ids)");
            }
            config.distillation = Some(kiln_loss::DistillationLoss {
                temperature: d.options.temperature,
                alpha: d.options.alpha,
                label_smoothing: config.label_smoothing,
                class_weights: config.class_weights.clone(),
            });
            config.validate()?;
            let teacher = TeacherSide {
                model: teacher.model,
                dir: d.teacher.clone(),
                logits,
            };
            (
                Head::Sequence(student),
                student_config,
                report,
                Some(teacher),
            )
        }
    };
    let job = Job {
        r,
        record,
        devices,
        device,
        started,
        resume,
        model_dir,
        checkpoint,
        tokenizer,
        source,
        prepared,
        task,
        labels,
        config,
        model_config,
        report,
        teacher,
    };
    match model {
        Head::Sequence(model) => finish(job, model),
        Head::Tokens(model) => finish(job, model),
    }
}

/// The model a run trains: a head on the whole sequence or on every token.
#[allow(clippy::large_enum_variant)] // one per run
enum Head {
    Sequence(kiln_model::SequenceClassifier),
    Tokens(kiln_model::TokenClassifier),
}

/// A run with its data read and its model about to train.
struct Job {
    r: Resolved,
    record: String,
    devices: Vec<burn::prelude::Device>,
    device: burn::prelude::Device,
    started: Instant,
    resume: Option<PathBuf>,
    model_dir: PathBuf,
    checkpoint: Checkpoint,
    tokenizer: kiln_data::TextTokenizer,
    source: DataSource,
    prepared: crate::inspect::PreparedData,
    task: kiln_data::Task,
    labels: Vec<String>,
    config: TrainConfig,
    model_config: kiln_model::BertConfig,
    report: kiln_model::LoadReport,
    teacher: Option<TeacherSide>,
}

/// What `kiln train` does with a model beyond training it: the encoder it measures drift on,
/// the export.
trait RunModel: kiln_train::TaskModel + Clone {
    fn encoder(&self) -> kiln_model::Encoder;
    fn export(
        &self,
        config: &kiln_model::BertConfig,
        labels: &[String],
        tokenizer: &Path,
        dir: &Path,
    ) -> Result<()>;
}

impl RunModel for kiln_model::SequenceClassifier {
    fn encoder(&self) -> kiln_model::Encoder {
        kiln_model::SequenceClassifier::encoder(self)
    }
    fn export(
        &self,
        config: &kiln_model::BertConfig,
        labels: &[String],
        tokenizer: &Path,
        dir: &Path,
    ) -> Result<()> {
        Ok(kiln_model::save_sequence_classifier(
            self,
            config,
            labels,
            Some(tokenizer),
            dir,
        )?)
    }
}

impl RunModel for kiln_model::TokenClassifier {
    fn encoder(&self) -> kiln_model::Encoder {
        kiln_model::TokenClassifier::encoder(self)
    }
    fn export(
        &self,
        config: &kiln_model::BertConfig,
        labels: &[String],
        tokenizer: &Path,
        dir: &Path,
    ) -> Result<()> {
        Ok(kiln_model::save_token_classifier(
            self,
            config,
            labels,
            Some(tokenizer),
            dir,
        )?)
    }
}

/// Trains `model`, evaluates the best one on the test set(s), exports it and writes the run's
/// files.
fn finish<M: RunModel>(job: Job, model: M) -> Result<PathBuf> {
    let Job {
        r,
        record,
        devices,
        device,
        started,
        resume,
        model_dir,
        checkpoint,
        tokenizer,
        source,
        prepared,
        task,
        labels,
        config,
        model_config,
        report,
        teacher,
    } = job;
    // burn has no autocast: half precision means the whole model in that dtype (weights and
    // optimizer state), with the loss computed in f32.
    let model = match r.precision {
        Precision::Bf16 => kiln_model::bert::cast_params(model, burn::tensor::FloatDType::BF16),
        Precision::F32 | Precision::F16 => model,
    };
    eprintln!(
        "model: {} ({} tensors loaded{}), new {}-class head, pooling {:?}, device {}",
        model_dir.display(),
        report.applied,
        if report.has_pooler {
            ", with pooler"
        } else {
            ", no pooler"
        },
        labels.len(),
        r.pooling,
        r.device
    );
    if !report.ignored.is_empty() {
        const SHOWN: usize = 6;
        let more = report.ignored.len().saturating_sub(SHOWN);
        eprintln!(
            "  left out of the checkpoint: {}{}",
            report.ignored[..report.ignored.len().min(SHOWN)].join(", "),
            if more > 0 {
                format!(", … ({more} more)")
            } else {
                String::new()
            }
        );
    }

    let checkpoints = r.out.join("checkpoints");
    match &resume {
        // A resumed run keeps its config.toml (the merged options equal it) and its log up to
        // the checkpoint it continues from.
        Some(_) => {
            let newest = kiln_train::resume::find_latest(&checkpoints, &mut |_| {})?;
            trim_log_for_resume(
                &r.out.join("log.jsonl"),
                &kiln_train::resume::read_state(&newest)?,
            )?;
        }
        None => write_atomic(&r.out.join("config.toml"), record.as_bytes())?,
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(r.out.join("log.jsonl"))
        .with_context(|| format!("opening {}", r.out.join("log.jsonl").display()))?;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut console = Console {
        bar,
        log: std::io::BufWriter::new(log),
        epochs: r.config.epochs,
        logging_steps: r.logging_steps,
        steps_per_epoch: 0,
        since: None,
        gate: std::env::var_os(SWEEP_GATE).map(PathBuf::from),
    };

    let scale = prepared.scale;
    let data = TrainData {
        train: Arc::new(prepared.train),
        valid: Arc::new(prepared.valid),
        labels: if task == kiln_data::Task::Regression {
            Vec::new()
        } else {
            labels.clone()
        },
        scale,
        pad_id: tokenizer.pad_id(),
        teacher_logits: teacher.as_ref().map(|t| Arc::new(t.logits.clone())),
    };
    let resume_dir = resume.as_ref().map(|_| checkpoints.clone());
    install_interrupt_handler();
    let mut trainer = Trainer::new(config.clone())
        .devices(&devices)
        .checkpoints(&checkpoints)
        .observer(&mut console);
    if let Some(dir) = resume_dir {
        trainer = trainer.resume(dir);
    }
    let outcome = trainer.fit(model, &data)?;
    console.bar.finish_and_clear();

    let best = describe_best(&outcome);
    // Multi-label with --tune-thresholds: each label's threshold for its best F1 on the
    // validation set, used on test and saved with the model.
    let mut readout = r.config.readout(scale, data.labels.len());
    if r.config.tune_thresholds && !data.valid.is_empty() {
        let outputs = Trainer::new(r.config.clone())
            .evaluator()
            .pad_id(tokenizer.pad_id())
            .outputs(&outcome.model, &data.valid);
        readout.thresholds =
            kiln_train::evaluate::tune_thresholds(&outputs, &data.valid, data.labels.len());
        let shown: Vec<String> = data
            .labels
            .iter()
            .zip(&readout.thresholds)
            .map(|(l, t)| format!("{l} {t:.2}"))
            .collect();
        eprintln!("thresholds tuned on validation: {}", shown.join(", "));
    }
    // An empty test split only happens with --test-ratio 0 (kiln-data refuses an empty one
    // otherwise): no test metrics rather than zeros.
    let evaluator = Trainer::new(r.config.clone())
        .evaluator()
        .pad_id(tokenizer.pad_id())
        .readout(readout.clone());
    let test = (!prepared.test.is_empty())
        .then(|| evaluator.evaluate(&outcome.model, &prepared.test, &prepared.test_labels));
    match &test {
        Some(test) => eprintln!(
            "test: {}  ({} examples; model of {best})",
            test.summary(),
            test.examples()
        ),
        None => eprintln!("test: no test set (--test-ratio 0 and no --test file); model of {best}"),
    }
    // Test sets beyond the split (penn-tagged: OANC, out of domain).
    let mut extra_tests = std::collections::BTreeMap::new();
    for (name, set) in &prepared.extra {
        let m = evaluator.evaluate(&outcome.model, &set.examples, &set.tags);
        eprintln!(
            "{name}: {}  ({} sentences, {} windows)",
            m.summary(),
            set.sentences,
            set.examples.len()
        );
        extra_tests.insert(name.clone(), m);
    }

    // ModernBERT's config carries its pooling (classifier_pooling), which transformers follows.
    if r.pooling == Pooling::Mean && checkpoint.family() != kiln_model::Family::ModernBert {
        eprintln!(
            "note: the exported model pools by mean over tokens (--pooling mean); transformers' \
             BertForSequenceClassification applies the pooler to [CLS] instead, so it predicts \
             differently there — serve it with kiln (see kiln_note in model/config.json)"
        );
    }
    // Pairs cut otherwise than transformers' default are served the same way by kiln
    // predict/eval (transformers takes `truncation=` per call).
    let mut model_config = model_config;
    // transformers' token heads have no problem_type; the architecture says it. kiln
    // predict/eval read the pieces a tag went on and the entity mode as training did.
    if task == kiln_data::Task::Token {
        model_config.extra.insert(
            "kiln_piece_labels".into(),
            serde_json::to_value(r.data.piece_labels)?,
        );
        if r.config.strict_entities {
            model_config
                .extra
                .insert("kiln_strict_entities".into(), serde_json::Value::Bool(true));
        }
    } else {
        model_config.extra.insert(
            "problem_type".into(),
            serde_json::Value::String(task.problem_type().into()),
        );
    }
    // A regression head learns standardised values: predictions are mapped back with these.
    if let Some(s) = scale {
        model_config.extra.insert(
            "kiln_value_scale".into(),
            serde_json::json!({"mean": s.mean, "std": s.std}),
        );
    }
    // A multi-label head's decision thresholds, one per label.
    if task == kiln_data::Task::MultiLabel {
        model_config.extra.insert(
            "kiln_thresholds".into(),
            serde_json::json!(readout.thresholds),
        );
    }
    if r.data.truncation != kiln_data::Truncation::default() {
        model_config.extra.insert(
            "kiln_truncation".into(),
            serde_json::Value::String(r.data.truncation.to_string()),
        );
    }
    outcome.model.export(
        &model_config,
        &labels,
        tokenizer.path(),
        &r.out.join("model"),
    )?;
    // The run's peak memory, read before the drift measurement below holds host copies.
    let peak_rss = peak_rss_mib();
    // How far the encoder moved from the checkpoint it started from (not for a distilled
    // student: its shape is not the checkpoint's).
    let drift = match &teacher {
        Some(_) => Vec::new(),
        None => {
            let (pretrained, _) = checkpoint.load_encoder(&device)?;
            // Representations compared on held-out examples: the test split, else validation.
            let probe = if prepared.test.is_empty() {
                &data.valid[..]
            } else {
                &prepared.test[..]
            };
            let tuned = outcome.model.encoder();
            let cka = probe_cka(&pretrained, &tuned, probe, tokenizer.pad_id(), &device);
            kiln_model::drift::weight_drift(&pretrained, &tuned)
                .into_iter()
                .map(|(part, relative_change)| PartDrift {
                    cka: cka.iter().find(|(p, _)| *p == part).map(|(_, c)| *c),
                    part,
                    relative_change,
                })
                .collect()
        }
    };
    if !drift.is_empty() {
        let parts: Vec<String> = drift
            .iter()
            .map(|d| format!("{} {:.2}%", d.part, 100.0 * d.relative_change))
            .collect();
        eprintln!(
            "weight change from the pretrained encoder: {}",
            parts.join(", ")
        );
        let similar: Vec<String> = drift
            .iter()
            .filter_map(|d| d.cka.map(|c| format!("{} {c:.3}", d.part)))
            .collect();
        if !similar.is_empty() {
            eprintln!(
                "representation similarity to the pretrained encoder (linear CKA): {}",
                similar.join(", ")
            );
        }
    }
    let mut metrics = RunMetrics {
        test: test.clone(),
        valid: outcome.epochs.iter().filter_map(ValidEpoch::of).collect(),
        evaluations: outcome.evals.iter().map(Evaluation::from).collect(),
        best_epoch: outcome.best_epoch,
        best_step: outcome.best_step,
        stopped_early: outcome.stopped_early,
        labels: labels.clone(),
        examples: SplitSizes {
            train: data.train.len(),
            valid: data.valid.len(),
            test: prepared.test.len(),
        },
        train: TrainFigures {
            stats: outcome.stats.clone(),
            peak_rss_mib: peak_rss,
            trainable_parameters: outcome.plan.trainable_count(),
            parameters: outcome.plan.total_count(),
            bad_steps: outcome.bad_steps,
        },
        strategy: r.config.strategy.kind.to_string(),
        model: r.model.clone(),
        data: source.to_string(),
        device: r.device.clone(),
        total_wall_seconds: started.elapsed().as_secs_f64(),
        teacher: None,
        student: None,
        retention: None,
        speedup: None,
        drift,
        extra_tests,
    };

    let test_classes = test.as_ref().and_then(|t| t.classification());
    if let (Some(t), Some(test)) = (&teacher, test_classes) {
        // Teacher vs student on the same test set and machine.
        let teacher_test = evaluator.evaluate(&t.model, &prepared.test, &data.labels);
        let Some(teacher_test) = teacher_test.classification() else {
            bail!("the teacher's test metrics are not a classifier's");
        };
        fn count<N: burn::module::Module>(m: &N) -> usize {
            kiln_train::params::collect_params(m)
                .iter()
                .map(|p| p.numel)
                .sum()
        }
        let size_mb = |dir: &Path| -> Option<f64> {
            ["model.safetensors", "pytorch_model.bin"]
                .iter()
                .find_map(|f| std::fs::metadata(dir.join(f)).ok())
                .map(|m| m.len() as f64 / 1e6)
        };
        let speed = |sps: f64| sps;
        let (batch, pad) = (r.config.eval_batch_size, tokenizer.pad_id());
        let teacher_sps =
            crate::distill::inference_speed(&t.model, &prepared.test, batch, pad, &device);
        let student_sps =
            crate::distill::inference_speed(&outcome.model, &prepared.test, batch, pad, &device);
        let side = |dir: &Path, m: &ClassificationMetrics, params: usize, sps: f64| {
            Some(DistillSide {
                model: dir.display().to_string(),
                accuracy: m.accuracy,
                macro_f1: m.macro_f1,
                precision: m.precision,
                recall: m.recall,
                parameters: params,
                size_mb: size_mb(dir),
                inference_samples_per_second: sps,
            })
        };
        let (teacher_sps, student_sps) = (speed(teacher_sps), speed(student_sps));
        let (teacher_params, student_params) = (count(&t.model), count(&outcome.model));
        let student_dir = r.out.join("model");
        metrics.teacher = side(&t.dir, teacher_test, teacher_params, teacher_sps);
        metrics.student = side(&student_dir, test, student_params, student_sps);
        metrics.retention = Some(test.accuracy / teacher_test.accuracy.max(1e-12));
        metrics.speedup = Some(student_sps / teacher_sps.max(1e-12));
        eprintln!(
            "teacher: accuracy {:.4}, {} parameters, {:.1} samples/s; student: accuracy {:.4} ({:.1}% of the teacher's), {} parameters, {:.1} samples/s ({:.2}× faster)",
            teacher_test.accuracy,
            teacher_params,
            teacher_sps,
            test.accuracy,
            100.0 * test.accuracy / teacher_test.accuracy.max(1e-12),
            student_params,
            student_sps,
            student_sps / teacher_sps.max(1e-12)
        );
    }
    // The page is drawn from the run's files (log.jsonl as written, the record about to be
    // written), as `kiln report DIR` draws it again later.
    let html = RunFiles {
        metrics: metrics.clone(),
        log: kiln_metrics::read_log(&r.out.join("log.jsonl"))?,
        config: record.clone(),
    }
    .render();
    write_atomic(&r.out.join("report.html"), html.as_bytes())?;
    // Last: a run without metrics.json did not finish.
    write_atomic(&r.out.join("metrics.json"), metrics.to_json().as_bytes())?;
    if r.keep_checkpoints {
        eprintln!(
            "kept the resume checkpoints in {} (--keep-checkpoints)",
            checkpoints.display()
        );
    } else {
        // The best model is exported; the checkpoints (model, optimizer state and best model:
        // hundreds of MB) only served a resume, and a finished run is not resumed.
        remove_if_present(&checkpoints, true)?;
    }
    eprintln!(
        "wrote {}/{{metrics.json, model/, report.html, log.jsonl, config.toml}}",
        r.out.display()
    );
    Ok(r.out)
}

/// Examples a run's representation drift is measured on (the first of the held-out split).
const PROBE_EXAMPLES: usize = 256;

/// Linear CKA per encoder part between the pretrained and the fine-tuned encoder on the first
/// [`PROBE_EXAMPLES`] of `probe`, in padded batches of 32.
fn probe_cka(
    pretrained: &kiln_model::Encoder,
    tuned: &kiln_model::Encoder,
    probe: &[kiln_data::pipeline::EncodedExample],
    pad_id: u32,
    device: &burn::prelude::Device,
) -> Vec<(String, f64)> {
    let probe = &probe[..probe.len().min(PROBE_EXAMPLES)];
    let batches: Vec<kiln_data::TokenBatch> = probe
        .chunks(32)
        .map(|chunk| {
            let encodings: Vec<_> = chunk.iter().map(|e| &e.encoding).collect();
            kiln_data::TokenBatch::pad(&encodings, pad_id, 1, device)
        })
        .collect();
    kiln_model::drift::representation_cka(pretrained, tuned, &batches)
}
