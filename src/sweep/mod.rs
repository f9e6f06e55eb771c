//! `kiln sweep`: hyperparameter search over `kiln train`'s options. Each trial is an ordinary
//! run directory trained by its own `kiln train` process (as many at once as `--parallel`);
//! the sweep watches each trial's `log.jsonl`, stops weak trials at their evaluations
//! ([`prune`]) and draws the next trials from the search space ([`space`]: grid, random or
//! TPE). Everything it knows is in the sweep directory, rewritten after every change, so a
//! killed sweep resumes where it stopped:
//!
//! ```text
//! SWEEP/sweep.toml        the sweep's options (--resume reads them)
//! SWEEP/space.toml        the search space, as given
//! SWEEP/sweep.json        every trial: options, metric per evaluation, status, steps, time
//! SWEEP/trials/NNN.toml   trial NNN's options (a kiln train --config file)
//! SWEEP/trials/NNN/       trial NNN's run directory (its config.toml reproduces it)
//! SWEEP/trials/NNN.log    what the trial printed
//! SWEEP/best.toml         the best complete trial's options (kiln train --config SWEEP/best.toml)
//! SWEEP/sweep.html        the trials' table and plots
//! SWEEP/refit/            with --refit: the best options trained again, an ordinary run
//! ```

pub mod prune;
pub mod space;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};

use kiln_metrics::{
    read_log, LogRecord, ParamValue, RunMetrics, SweepRecord, TaskMetrics, TrialEvaluation,
    TrialRecord, TrialStatus,
};
use kiln_train::SelectionMetric;

use crate::finetune::{gate_file, train_command, SWEEP_GATE};
use crate::options::table_flags;
pub use prune::{Pruner, PrunerKind};
pub use space::{Dimension, SearchSpace};

/// How trials are drawn from the space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SamplerKind {
    /// Every combination of the `choice` and `int` options, in order.
    Grid,
    /// Independent uniform draws (log-uniform where asked).
    Random,
    /// Tree-structured Parzen estimators (Bergstra et al. 2011) after --startup-trials random
    /// ones, as Optuna's default.
    #[default]
    Tpe,
}

/// Every option of `kiln sweep`; saved as `SWEEP/sweep.toml` (keys are the flags' names).
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SweepOptions {
    /// The search space: a TOML file of kiln train's options (keys are its flags' names); a
    /// plain value is fixed, a table is searched: `lr = { log-uniform = [1e-5, 1e-3] }`,
    /// `{ uniform = [a, b] }`, `{ int = [a, b] }` or `{ choice = [...] }`.
    #[arg(long, required_unless_present = "resume")]
    pub space: Option<PathBuf>,
    /// The sweep directory [default: sweeps/SPACE-FILE-NAME].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Trials to run (a grid stops at its last combination).
    #[arg(long, default_value_t = 16)]
    pub trials: usize,
    /// How trials are drawn.
    #[arg(long, value_enum, default_value_t)]
    pub sampler: SamplerKind,
    /// TPE: trials drawn at random before TPE takes over.
    #[arg(long, default_value_t = 5)]
    pub startup_trials: usize,
    /// How weak trials are stopped at their evaluations (epoch ends, and every eval-every
    /// steps when the space sets it).
    #[arg(long, value_enum, default_value_t)]
    pub pruner: PrunerKind,
    /// ASHA's reduction factor η: rungs at evaluations g, g·η, g·η², …; the top 1/η go on.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(2..))]
    pub eta: u64,
    /// The first evaluation at which a trial may be stopped (g; Ray Tune's grace_period):
    /// ASHA's first rung, and where the median rule starts.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    #[serde(default = "one")]
    pub grace: u64,
    /// Median pruner: complete trials needed before any trial is stopped.
    #[arg(long, default_value_t = 3)]
    pub median_startup: usize,
    /// The validation metric trials are compared by (also each trial's --metric) [default:
    /// the task's: accuracy, mse, micro-f1].
    #[arg(long, value_enum)]
    pub metric: Option<SelectionMetric>,
    /// Trials that run at once, each its own process.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub parallel: u64,
    /// Threads per trial [default: the machine's cores / --parallel].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seeds the sampler (each trial's own seed is the space's `seed` option).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Train the best options again, as SWEEP/refit (e.g. with more epochs: --refit-epochs).
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub refit: bool,
    /// --refit with this many epochs instead of the trials'.
    #[arg(long)]
    pub refit_epochs: Option<usize>,
    /// Continue the sweep in this directory with its own options (SWEEP/sweep.toml):
    /// finished trials are kept, interrupted ones continue from their checkpoints.
    #[arg(long, conflicts_with_all = ["space", "out", "trials", "sampler", "startup_trials",
        "pruner", "eta", "grace", "median_startup", "metric", "seed", "refit_epochs"])]
    #[serde(skip)]
    pub resume: Option<PathBuf>,
}

fn one() -> u64 {
    1
}

/// Set by Ctrl-C: no new trials; the running ones (which got the signal too) checkpoint and
/// stop, and the sweep saves its record and exits.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// A trial's process while it runs.
struct Running {
    id: usize,
    child: Child,
    started: Instant,
    /// Its seconds before this launch (a resumed trial's earlier sessions).
    seconds_before: f64,
    /// Evaluations already judged by the pruner.
    judged: usize,
    /// Its recipe's epochs (from its config.toml), for the planned steps.
    epochs: Option<f64>,
}

/// A sweep in its directory.
pub struct Sweep {
    dir: PathBuf,
    options: SweepOptions,
    space: SearchSpace,
    grid: Option<Vec<BTreeMap<String, ParamValue>>>,
    record: SweepRecord,
    /// Known from the options, or from the first evaluation's task.
    metric: Option<SelectionMetric>,
    /// The `kiln` binary that trains the trials.
    program: PathBuf,
    threads: usize,
    clock: Instant,
    elapsed_before: f64,
}

/// Runs the sweep `options` describe (or resumes one) with `program` (a `kiln` binary) training
/// the trials; returns the sweep directory.
pub fn run(options: SweepOptions, program: &Path) -> Result<PathBuf> {
    let mut sweep = Sweep::open(options, program)?;
    install_interrupt_handler();
    sweep.run_trials()?;
    sweep.finish()
}

fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: exiting now (the trials stop at once)");
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: the running trials save a checkpoint and stop; then the sweep stops (Ctrl-C again to quit at once)");
    });
}

impl Sweep {
    /// Creates the sweep directory (or reads it back with `--resume`) and checks the space's
    /// options against `kiln train`'s before any trial runs.
    pub fn open(options: SweepOptions, program: &Path) -> Result<Self> {
        let (dir, options, resuming) = match &options.resume {
            Some(dir) => (dir.clone(), read_options(dir)?, true),
            None => {
                let space = options.space.as_ref().context("--space is required")?;
                let dir = options.out.clone().unwrap_or_else(|| {
                    let stem = space.file_stem().unwrap_or_default().to_string_lossy();
                    PathBuf::from("sweeps").join(stem.as_ref())
                });
                create_sweep_dir(&dir, space, &options)?;
                (dir, options, false)
            }
        };
        let space = SearchSpace::read(&dir.join("space.toml"))?;
        check_space(&space, options.metric)?;
        let grid = match options.sampler {
            SamplerKind::Grid => Some(space.grid()?),
            _ => None,
        };
        let record_path = dir.join("sweep.json");
        let record = if resuming && record_path.exists() {
            SweepRecord::read(&record_path)?
        } else {
            SweepRecord {
                metric: options.metric.map(metric_name).unwrap_or_default(),
                maximize: !options.metric.is_some_and(|m| m.lower_is_better()),
                elapsed_s: 0.0,
                trials: Vec::new(),
            }
        };
        let metric = match options.metric {
            Some(m) => Some(m),
            None => fixed_metric(&space)?.or_else(|| parse_metric(&record.metric)),
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = options
            .threads
            .unwrap_or((cores / options.parallel as usize).max(1));
        if resuming {
            let done = record
                .trials
                .iter()
                .filter(|t| t.status != TrialStatus::Running)
                .count();
            eprintln!(
                "resuming the sweep in {}: {done} trials ended, {} to go on",
                dir.display(),
                record.trials.len() - done
            );
        }
        Ok(Self {
            elapsed_before: record.elapsed_s,
            dir,
            options,
            space,
            grid,
            record,
            metric,
            program: program.to_path_buf(),
            threads,
            clock: Instant::now(),
        })
    }

    /// The trials the sweep runs in all.
    fn budget(&self) -> usize {
        match &self.grid {
            Some(grid) => self.options.trials.min(grid.len()),
            None => self.options.trials,
        }
    }

    fn elapsed(&self) -> f64 {
        self.elapsed_before + self.clock.elapsed().as_secs_f64()
    }

    fn trial_dir(&self, id: usize) -> PathBuf {
        self.dir.join("trials").join(format!("{id:03}"))
    }

    /// Where the sweep lets trial `id` go on after each evaluation it judged (none without a
    /// pruner: the trial never waits).
    fn gate_dir(&self, id: usize) -> Option<PathBuf> {
        (self.options.pruner != PrunerKind::None)
            .then(|| self.dir.join("trials").join(format!("{id:03}.gate")))
    }

    fn save(&mut self) -> Result<()> {
        self.record.elapsed_s = self.elapsed();
        kiln_model::files::write_atomic(
            &self.dir.join("sweep.json"),
            self.record.to_json().as_bytes(),
        )?;
        Ok(())
    }

    /// The next trial's options: the grid's next combination, a random draw, or TPE's
    /// proposal from the trials scored so far.
    fn draw(&self, id: usize) -> Result<BTreeMap<String, ParamValue>> {
        if let Some(grid) = &self.grid {
            return Ok(grid[id].clone());
        }
        let scored: Vec<(&BTreeMap<String, ParamValue>, f64)> = self
            .record
            .trials
            .iter()
            .filter(|t| matches!(t.status, TrialStatus::Complete | TrialStatus::Pruned))
            .filter_map(|t| Some((&t.params, self.score(t.best?))))
            .filter(|(_, s)| s.is_finite())
            .collect();
        match self.options.sampler {
            SamplerKind::Tpe if id >= self.options.startup_trials && !scored.is_empty() => {
                self.space.tpe(self.options.seed, id, &scored)
            }
            _ => Ok(self.space.random(self.options.seed, id)),
        }
    }

    /// Larger is better.
    fn score(&self, value: f64) -> f64 {
        if self.record.maximize {
            value
        } else {
            -value
        }
    }

    /// Starts trial `id` (new, or one an earlier session left running).
    fn launch(&mut self, id: usize) -> Result<Running> {
        let trial = &self.record.trials[id];
        let mut table = self.space.trial_table(&trial.params);
        if let Some(metric) = self.options.metric {
            table.insert("metric".into(), toml::Value::String(metric_name(metric)));
        }
        let options_file = self.dir.join("trials").join(format!("{id:03}.toml"));
        let text = format!(
            "# kiln sweep {}: trial {id}\n{}",
            self.dir.display(),
            toml::to_string(&table).context("writing the trial's options")?
        );
        kiln_model::files::write_atomic(&options_file, text.as_bytes())?;
        let run_dir = self.trial_dir(id);
        let log_path = self.dir.join("trials").join(format!("{id:03}.log"));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut command = Command::new(&self.program);
        command.arg("train");
        if resumable(&run_dir) {
            command.arg("--resume").arg(&run_dir);
        } else {
            // Whatever an interrupted start left (no checkpoint yet) is replaced.
            command
                .arg("--config")
                .arg(&options_file)
                .arg("--out")
                .arg(&run_dir)
                .arg("--overwrite");
        }
        // Evaluations an earlier session let pass are not judged again.
        let mut judged = 0;
        if let Some(gate) = self.gate_dir(id) {
            std::fs::create_dir_all(&gate)
                .with_context(|| format!("creating {}", gate.display()))?;
            judged = std::fs::read_dir(&gate)?.count();
            command.env(SWEEP_GATE, &gate);
        }
        command
            .env("RAYON_NUM_THREADS", self.threads.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        die_with_parent(&mut command);
        let child = command.spawn().with_context(|| {
            format!(
                "starting trial {id}: {} train (the kiln binary)",
                self.program.display()
            )
        })?;
        let trial = &mut self.record.trials[id];
        if trial.evaluations.is_empty() && trial.steps == 0 {
            trial.started_s = self.elapsed_before + self.clock.elapsed().as_secs_f64();
        }
        eprintln!("trial {id}: {}", describe(&trial.params));
        Ok(Running {
            id,
            child,
            started: Instant::now(),
            seconds_before: trial.seconds,
            judged,
            epochs: None,
        })
    }

    /// Runs trials until the budget is spent (or Ctrl-C).
    fn run_trials(&mut self) -> Result<()> {
        let mut running: Vec<Running> = Vec::new();
        loop {
            while !INTERRUPTED.load(Ordering::SeqCst)
                && running.len() < self.options.parallel as usize
            {
                let interrupted = self
                    .record
                    .trials
                    .iter()
                    .find(|t| {
                        t.status == TrialStatus::Running && running.iter().all(|r| r.id != t.id)
                    })
                    .map(|t| t.id);
                let id = match interrupted {
                    Some(id) => id,
                    None if self.record.trials.len() < self.budget() => {
                        let id = self.record.trials.len();
                        let params = self.draw(id)?;
                        self.record
                            .trials
                            .push(TrialRecord::new(id, params, self.elapsed()));
                        id
                    }
                    None => break,
                };
                let trial = self.launch(id)?;
                running.push(trial);
                self.save()?;
            }
            if running.is_empty() {
                break;
            }
            // A trial waits at its gate for the verdict on each evaluation: poll often.
            std::thread::sleep(Duration::from_millis(100));
            let mut changed = false;
            let mut i = 0;
            while i < running.len() {
                changed |= self.observe(&mut running[i])?;
                let stop = self.judge(&mut running[i])?;
                let exited = running[i].child.try_wait()?;
                if stop.is_none() && exited.is_none() {
                    i += 1;
                    continue;
                }
                let mut r = running.swap_remove(i);
                if let Some(at) = stop {
                    let _ = r.child.kill();
                    let _ = r.child.wait();
                    self.end_pruned(&r, at);
                } else if let Some(status) = exited {
                    self.observe(&mut r)?;
                    self.end_exited(&r, status.success());
                }
                if self.record.trials[r.id].status != TrialStatus::Running {
                    // Ended: its verdicts are no longer needed (an interrupted trial keeps
                    // them, so a resumed sweep does not judge those evaluations again).
                    if let Some(gate) = self.gate_dir(r.id) {
                        let _ = std::fs::remove_dir_all(gate);
                    }
                }
                changed = true;
            }
            if changed {
                self.save()?;
            }
        }
        self.save()?;
        if INTERRUPTED.load(Ordering::SeqCst) {
            bail!(
                "interrupted: {} of {} trials ended; continue with kiln sweep --resume {}",
                self.record
                    .trials
                    .iter()
                    .filter(|t| t.status != TrialStatus::Running)
                    .count(),
                self.budget(),
                self.dir.display()
            );
        }
        Ok(())
    }

    /// Reads the trial's log: its evaluations and steps so far. True when something changed.
    fn observe(&mut self, r: &mut Running) -> Result<bool> {
        let run_dir = self.trial_dir(r.id);
        let log = run_dir.join("log.jsonl");
        if !log.exists() {
            return Ok(false);
        }
        if r.epochs.is_none() {
            r.epochs = recipe_epochs(&run_dir);
        }
        // A log being rewritten (a resume trims it) may not parse this once: next poll.
        let Ok(records) = read_log(&log) else {
            return Ok(false);
        };
        let mut evaluations = Vec::new();
        let mut last_step = None;
        for record in &records {
            match record {
                LogRecord::Validation { point, .. } => {
                    let metric = self.metric_for(&point.metrics);
                    evaluations.push(TrialEvaluation {
                        step: point.step,
                        epoch: point.epoch,
                        value: metric.value(&point.metrics).unwrap_or(f64::NAN),
                    });
                }
                LogRecord::Step { point, .. } => last_step = Some((point.step, point.epoch)),
                _ => {}
            }
        }
        let maximize = self.record.maximize;
        let trial = &mut self.record.trials[r.id];
        let changed = trial.evaluations != evaluations
            || last_step.is_some_and(|(step, _)| step != trial.steps);
        if let Some((step, epoch)) = last_step {
            trial.steps = step;
            if let (Some(epochs), true) = (r.epochs, epoch > 0.0) {
                trial.planned_steps = Some((step as f64 / epoch * epochs).round() as u64);
            }
        }
        trial.evaluations = evaluations;
        trial.best = best_value(&trial.evaluations, maximize);
        trial.seconds = r.seconds_before + r.started.elapsed().as_secs_f64();
        Ok(changed)
    }

    /// The sweep's metric, fixed by the first evaluation seen when no option named it.
    fn metric_for(&mut self, metrics: &TaskMetrics) -> SelectionMetric {
        if let Some(m) = self.metric {
            return m;
        }
        let task = match metrics {
            TaskMetrics::Classification(_) => kiln_data::Task::Classification,
            TaskMetrics::Regression(_) => kiln_data::Task::Regression,
            TaskMetrics::MultiLabel(_) => kiln_data::Task::MultiLabel,
            TaskMetrics::Token(_) => kiln_data::Task::Token,
        };
        let m = SelectionMetric::default_for(task);
        self.metric = Some(m);
        self.record.metric = metric_name(m);
        self.record.maximize = !m.lower_is_better();
        m
    }

    /// The first evaluation not judged yet at which the pruner stops the trial; each one that
    /// passes opens the trial's gate for it.
    fn judge(&self, r: &mut Running) -> Result<Option<usize>> {
        let trial = &self.record.trials[r.id];
        let pruner = Pruner {
            kind: self.options.pruner,
            eta: self.options.eta as usize,
            grace: self.options.grace as usize,
            startup: self.options.median_startup,
        };
        let others: Vec<&TrialRecord> =
            self.record.trials.iter().filter(|t| t.id != r.id).collect();
        while r.judged < trial.evaluations.len() {
            r.judged += 1;
            let mut upto = trial.clone();
            upto.evaluations.truncate(r.judged);
            if pruner.should_stop(&upto, &others, |v| self.score(v)) {
                return Ok(Some(r.judged));
            }
            if let Some(gate) = self.gate_dir(r.id) {
                let step = trial.evaluations[r.judged - 1].step;
                let go = gate_file(&gate, step);
                std::fs::write(&go, b"").with_context(|| format!("writing {}", go.display()))?;
            }
        }
        Ok(None)
    }

    fn end_pruned(&mut self, r: &Running, at: usize) {
        let trial = &mut self.record.trials[r.id];
        trial.evaluations.truncate(at);
        trial.best = best_value(&trial.evaluations, self.record.maximize);
        trial.status = TrialStatus::Pruned;
        trial.seconds = r.seconds_before + r.started.elapsed().as_secs_f64();
        // A pruned trial is never resumed: its checkpoints are only disk.
        let _ = std::fs::remove_dir_all(
            self.dir
                .join("trials")
                .join(format!("{:03}", r.id))
                .join("checkpoints"),
        );
        eprintln!(
            "trial {}: pruned at evaluation {at} ({} {})",
            r.id,
            self.record.metric,
            fmt_opt(trial.evaluations.last().map(|e| e.value))
        );
    }

    fn end_exited(&mut self, r: &Running, success: bool) {
        let run_dir = self.trial_dir(r.id);
        let log_path = self.dir.join("trials").join(format!("{:03}.log", r.id));
        let metric = self.metric;
        let trial = &mut self.record.trials[r.id];
        trial.seconds = r.seconds_before + r.started.elapsed().as_secs_f64();
        if success {
            trial.status = TrialStatus::Complete;
            if let (Ok(m), Some(metric)) = (RunMetrics::of_run(&run_dir), metric) {
                trial.test = m.test.as_ref().and_then(|t| metric.value(t));
            }
            eprintln!(
                "trial {}: complete, best validation {} {}{}",
                r.id,
                self.record.metric,
                fmt_opt(trial.best),
                trial
                    .test
                    .map(|t| format!(", test {t:.4}"))
                    .unwrap_or_default()
            );
        } else if INTERRUPTED.load(Ordering::SeqCst) {
            // Stopped by the user's Ctrl-C: it goes on with --resume.
        } else {
            trial.status = TrialStatus::Failed;
            trial.error = Some(last_error(&log_path));
            eprintln!(
                "trial {}: failed: {} (see {})",
                r.id,
                trial.error.as_deref().unwrap_or_default(),
                log_path.display()
            );
        }
    }

    /// The page, the best options and (with --refit) the refit run.
    fn finish(&mut self) -> Result<PathBuf> {
        let title = format!("kiln sweep — {}", self.dir.display());
        kiln_model::files::write_atomic(
            &self.dir.join("sweep.html"),
            kiln_report::render_sweep(&self.record, &title).as_bytes(),
        )?;
        print_table(&self.record);
        let (run, planned) = self.record.compute();
        if planned > 0 {
            println!(
                "compute: {run} of {planned} optimizer steps ({:.0}% saved by pruning); {:.0} s",
                100.0 * (1.0 - run as f64 / planned as f64),
                self.record.elapsed_s
            );
        }
        let Some(best) = self.record.best_trial().cloned() else {
            bail!(
                "no trial completed: see {} and the trials' logs in {}",
                self.dir.join("sweep.html").display(),
                self.dir.join("trials").display()
            );
        };
        let mut table = self.space.trial_table(&best.params);
        if let Some(metric) = self.metric {
            table.insert("metric".into(), toml::Value::String(metric_name(metric)));
        }
        let best_path = self.dir.join("best.toml");
        let text = format!(
            "# kiln sweep {}: trial {} had the best validation {} ({}).\n# Train with: kiln train --config {}\n{}",
            self.dir.display(),
            best.id,
            self.record.metric,
            fmt_opt(best.best),
            best_path.display(),
            toml::to_string(&table).context("writing the best options")?
        );
        kiln_model::files::write_atomic(&best_path, text.as_bytes())?;
        println!("best: trial {} → {}", best.id, best_path.display());
        if self.options.refit {
            self.refit(&best_path)?;
        }
        Ok(self.dir.clone())
    }

    /// Trains the best options again as SWEEP/refit, in the foreground.
    fn refit(&self, best: &Path) -> Result<()> {
        let out = self.dir.join("refit");
        if out.join("metrics.json").exists() {
            println!("refit: done before ({})", out.display());
            return Ok(());
        }
        let mut command = Command::new(&self.program);
        command.arg("train");
        if resumable(&out) {
            command.arg("--resume").arg(&out);
        } else {
            command
                .arg("--config")
                .arg(best)
                .arg("--out")
                .arg(&out)
                .arg("--overwrite");
            if let Some(epochs) = self.options.refit_epochs {
                command.arg("--epochs").arg(epochs.to_string());
            }
        }
        die_with_parent(&mut command);
        let status = command
            .status()
            .with_context(|| format!("starting {} train", self.program.display()))?;
        if !status.success() {
            bail!("the refit run failed ({}): see above", out.display());
        }
        Ok(())
    }
}

/// The best finite value among `evaluations` in the metric's direction.
fn best_value(evaluations: &[TrialEvaluation], maximize: bool) -> Option<f64> {
    evaluations
        .iter()
        .map(|e| e.value)
        .filter(|v| v.is_finite())
        .reduce(|a, b| if (a > b) == maximize { a } else { b })
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.4}"))
}

fn describe(params: &BTreeMap<String, ParamValue>) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_table(record: &SweepRecord) {
    let best = record.best_trial().map(|t| t.id);
    println!(
        "{:>5}  {:<9}  {:>8}  {:>8}  {:>7}  {:>6}  options",
        "trial", "status", "best", "test", "steps", "sec"
    );
    for t in &record.trials {
        let status = match t.status {
            TrialStatus::Complete => "complete",
            TrialStatus::Pruned => "pruned",
            TrialStatus::Failed => "failed",
            TrialStatus::Running => "running",
        };
        println!(
            "{:>5}  {:<9}  {:>8}  {:>8}  {:>7}  {:>6.0}  {}{}",
            t.id,
            status,
            fmt_opt(t.best),
            fmt_opt(t.test),
            t.steps,
            t.seconds,
            describe(&t.params),
            if Some(t.id) == best { "  ← best" } else { "" }
        );
    }
}

fn metric_name(metric: SelectionMetric) -> String {
    use clap::ValueEnum;
    metric
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

fn parse_metric(name: &str) -> Option<SelectionMetric> {
    use clap::ValueEnum;
    SelectionMetric::from_str(name, true).ok()
}

/// The space's own `metric` option, when it fixes one.
fn fixed_metric(space: &SearchSpace) -> Result<Option<SelectionMetric>> {
    match space.fixed.get("metric") {
        None => Ok(None),
        Some(toml::Value::String(name)) => parse_metric(name).map(Some).with_context(|| {
            format!(
                "{}: `metric` = {name}: no such metric",
                space.path.display()
            )
        }),
        Some(other) => bail!(
            "{}: `metric` = {other}: expected a name",
            space.path.display()
        ),
    }
}

/// The space's options are kiln train's, each value (every choice, both ends of a range)
/// passes its option's parser, and nothing in it takes a place the sweep decides.
fn check_space(space: &SearchSpace, metric: Option<SelectionMetric>) -> Result<()> {
    let command = train_command();
    for probe in space.probes() {
        table_flags(&command, &probe, &space.path)?;
    }
    for key in ["out", "device", "devices"] {
        if space.fixed.contains_key(key) || space.dims.contains_key(key) {
            bail!(
                "{}: `{key}` is the sweep's to decide (each trial is SWEEP/trials/NNN on the default device)",
                space.path.display()
            );
        }
    }
    if space.dims.contains_key("metric") {
        bail!(
            "{}: `metric` cannot be searched: trials are compared by one metric",
            space.path.display()
        );
    }
    if let (Some(m), Some(fixed)) = (metric, fixed_metric(space)?) {
        if m != fixed {
            bail!(
                "--metric {} differs from the space's `metric` = {}",
                metric_name(m),
                metric_name(fixed)
            );
        }
    }
    Ok(())
}

fn create_sweep_dir(dir: &Path, space: &Path, options: &SweepOptions) -> Result<()> {
    if dir.join("sweep.toml").exists() {
        bail!(
            "{} holds a sweep already; continue it with --resume {}, or choose another --out",
            dir.display(),
            dir.display()
        );
    }
    let text =
        std::fs::read_to_string(space).with_context(|| format!("reading {}", space.display()))?;
    // Checked before anything is written, with the errors naming the user's file.
    let parsed = SearchSpace::parse(&text, space)?;
    check_space(&parsed, options.metric)?;
    std::fs::create_dir_all(dir.join("trials"))
        .with_context(|| format!("creating {}", dir.display()))?;
    kiln_model::files::write_atomic(&dir.join("space.toml"), text.as_bytes())?;
    let record = toml::to_string(options).context("writing the sweep's options")?;
    kiln_model::files::write_atomic(&dir.join("sweep.toml"), record.as_bytes())?;
    Ok(())
}

fn read_options(dir: &Path) -> Result<SweepOptions> {
    let path = dir.join("sweep.toml");
    if !path.is_file() {
        bail!(
            "--resume {}: {} is missing: no sweep was started there",
            dir.display(),
            path.display()
        );
    }
    let text = std::fs::read_to_string(&path)?;
    toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))
}

/// A run directory `kiln train --resume` can continue: its options and an intact checkpoint
/// (one killed while its first checkpoint was being written starts over).
fn resumable(run_dir: &Path) -> bool {
    let intact = kiln_train::resume::find_latest(&run_dir.join("checkpoints"), &mut |_| {}).is_ok();
    intact && run_dir.join("config.toml").is_file() && !run_dir.join("metrics.json").exists()
}

/// The `epochs` of a run's resolved options (its config.toml).
fn recipe_epochs(run_dir: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(run_dir.join("config.toml")).ok()?;
    let table: toml::Table = toml::from_str(&text).ok()?;
    table.get("epochs")?.as_integer().map(|e| e as f64)
}

/// The trial's error line (kiln prints one `error: …` line), else its last line.
fn last_error(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .rev()
        .find(|l| l.starts_with("error:"))
        .or(lines.last())
        .map_or_else(|| "exited without a word".into(), |l| l.to_string())
}

/// A trial must not outlive its sweep: a killed sweep that left trials running would have
/// them write into directories the resumed sweep starts again.
fn die_with_parent(command: &mut Command) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: prctl and getppid are async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent died before the request took effect.
                if libc::getppid() != parent {
                    return Err(std::io::Error::other("the sweep exited"));
                }
                Ok(())
            });
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = command;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_options_record_reads_back() {
        let options = SweepOptions {
            space: Some("space.toml".into()),
            out: Some("sweeps/x".into()),
            trials: 8,
            sampler: SamplerKind::Random,
            startup_trials: 5,
            pruner: PrunerKind::Median,
            eta: 3,
            grace: 2,
            median_startup: 2,
            metric: Some(SelectionMetric::MacroF1),
            parallel: 2,
            threads: Some(1),
            seed: 4,
            refit: true,
            refit_epochs: Some(3),
            resume: None,
        };
        let text = toml::to_string(&options).unwrap();
        let back: SweepOptions = toml::from_str(&text).unwrap();
        assert_eq!(toml::to_string(&back).unwrap(), text);
        assert!(text.contains("sampler = \"random\""), "{text}");
        assert!(text.contains("metric = \"macro-f1\""), "{text}");
    }

    #[test]
    fn metric_names_are_the_flags() {
        assert_eq!(metric_name(SelectionMetric::MicroF1), "micro-f1");
        assert_eq!(parse_metric("micro-f1"), Some(SelectionMetric::MicroF1));
        assert_eq!(parse_metric(""), None);
    }

    #[test]
    fn a_space_with_a_foreign_key_or_value_is_refused_naming_the_file() {
        for (text, words) in [
            (
                "lr = { log-uniform = [1e-5, 1e-3] }\nwarmup = 3\n",
                "`warmup` is not an option of kiln train",
            ),
            ("strategy = { choice = [\"full\", \"magic\"] }\n", "magic"),
            (
                "lr = { log-uniform = [1e-5, 1e-3] }\nout = \"x\"\n",
                "`out` is the sweep's",
            ),
            (
                "metric = { choice = [\"accuracy\", \"loss\"] }\n",
                "cannot be searched",
            ),
        ] {
            let space = SearchSpace::parse(text, Path::new("my-space.toml")).unwrap();
            let e = format!("{:#}", check_space(&space, None).unwrap_err());
            assert!(e.contains("my-space.toml"), "{e}");
            assert!(e.contains(words), "{text}: {e}");
        }
        let fine = SearchSpace::parse(
            "data = \"rotten-tomatoes\"\nlr = { log-uniform = [1e-5, 1e-3] }\nstrategy = { choice = [\"full\", \"lora\"] }\n",
            Path::new("s.toml"),
        )
        .unwrap();
        check_space(&fine, None).unwrap();
    }

    /// The spaces the README's figures come from stay valid `kiln train` options.
    #[test]
    fn the_committed_spaces_check() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/sweeps");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let space = SearchSpace::read(&path).unwrap();
            check_space(&space, None).unwrap();
            checked += 1;
        }
        assert_eq!(checked, 3);
    }

    #[test]
    fn the_error_line_of_a_failed_trial_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("000.log");
        std::fs::write(&log, "loading\nerror: --lr must be positive\n\n").unwrap();
        assert_eq!(last_error(&log), "error: --lr must be positive");
        std::fs::write(&log, "killed somewhere\n").unwrap();
        assert_eq!(last_error(&log), "killed somewhere");
    }
}
