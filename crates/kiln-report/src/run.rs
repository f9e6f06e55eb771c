//! A run directory's files → the report page: `metrics.json` for the figures and the facts,
//! `log.jsonl` for the curves, `config.toml` shown as it is.

use std::path::Path;

use kiln_metrics::{read_log, EpochPoint, EvalPoint, LogRecord, ReadError, RunMetrics, StepPoint};

use crate::page::{render, ReportInput};

/// What a finished run left on disk, read back.
#[derive(Debug, Clone)]
pub struct RunFiles {
    pub metrics: RunMetrics,
    pub log: Vec<LogRecord>,
    /// `config.toml` as written (empty when the run has none).
    pub config: String,
}

impl RunFiles {
    /// Reads `DIR/metrics.json`, `DIR/log.jsonl` and `DIR/config.toml`; the error names the
    /// file (and the line).
    pub fn read(dir: &Path) -> Result<Self, ReadError> {
        Ok(Self {
            metrics: RunMetrics::of_run(dir)?,
            log: read_log(&dir.join("log.jsonl"))?,
            config: std::fs::read_to_string(dir.join("config.toml")).unwrap_or_default(),
        })
    }

    /// The report page.
    pub fn render(&self) -> String {
        let history = History::of(&self.log);
        let m = &self.metrics;
        render(&ReportInput {
            title: &title(m),
            facts: &facts(m),
            steps: &history.steps,
            epochs: &history.epochs,
            evals: &history.evals,
            best_epoch: m.best_epoch,
            best_step: m.best_step,
            test: m.test.as_ref(),
            config_json: &self.config,
            drift: &m.drift,
            labels: &m.labels,
        })
    }
}

/// The curves' points, from the log's records in order.
struct History {
    steps: Vec<StepPoint>,
    epochs: Vec<EpochPoint>,
    evals: Vec<EvalPoint>,
}

impl History {
    fn of(log: &[LogRecord]) -> Self {
        let mut history = Self {
            steps: Vec::new(),
            epochs: Vec::new(),
            evals: Vec::new(),
        };
        for record in log {
            match record {
                LogRecord::Step { point, .. } => history.steps.push(point.clone()),
                LogRecord::Validation { point, .. } => history.evals.push(point.clone()),
                LogRecord::Epoch { point, .. } => history.epochs.push(point.clone()),
                // A resumed run's log was trimmed to its checkpoint: every step is there once.
                LogRecord::Resume { .. } => {}
            }
        }
        history
    }
}

fn title(m: &RunMetrics) -> String {
    match &m.teacher {
        Some(_) => format!("kiln distillation: {} → student on {}", m.model, m.data),
        None => format!("kiln fine-tuning: {} on {}", m.model, m.data),
    }
}

/// The table under the title.
fn facts(m: &RunMetrics) -> Vec<(String, String)> {
    let s = &m.train.stats;
    let p = &s.phases;
    let mut facts: Vec<(String, String)> = vec![
        ("model".into(), m.model.clone()),
        ("data".into(), m.data.clone()),
        ("labels".into(), m.labels.join(", ")),
        (
            "examples (train / valid / test)".into(),
            format!(
                "{} / {} / {}",
                m.examples.train, m.examples.valid, m.examples.test
            ),
        ),
        ("strategy".into(), m.strategy.clone()),
        (
            "trainable parameters".into(),
            format!("{} of {}", m.train.trainable_parameters, m.train.parameters),
        ),
        (
            "epochs / optimizer steps".into(),
            format!("{} / {}", s.epochs, s.steps),
        ),
        ("training time".into(), format!("{:.1} s", s.wall_seconds)),
        (
            "throughput".into(),
            format!(
                "{:.1} samples/s, {:.0} tokens/s",
                s.samples_per_second, s.tokens_per_second
            ),
        ),
        (
            "training time by phase".into(),
            format!(
                "forward {:.1} s, backward {:.1} s, optimizer {:.1} s, data {:.1} s",
                p.forward_seconds, p.backward_seconds, p.optimizer_seconds, p.data_seconds
            ),
        ),
        (
            "peak memory".into(),
            m.train
                .peak_rss_mib
                .map_or_else(|| "-".into(), |v| format!("{v:.0} MiB")),
        ),
        (
            "skipped steps (non-finite loss or gradient)".into(),
            m.train.bad_steps.to_string(),
        ),
        ("device".into(), m.device.clone()),
    ];
    if let (Some(t), Some(st)) = (&m.teacher, &m.student) {
        let size = |s: Option<f64>| s.map_or_else(|| "-".into(), |v| format!("{v:.1} MB"));
        let kept = 100.0 * st.accuracy / t.accuracy.max(1e-12);
        let (ts, ss) = (
            t.inference_samples_per_second,
            st.inference_samples_per_second,
        );
        facts.extend([
            ("teacher".into(), t.model.clone()),
            (
                "test accuracy: teacher / student".into(),
                format!("{:.4} / {:.4} ({kept:.1}% kept)", t.accuracy, st.accuracy),
            ),
            (
                "test macro-F1: teacher / student".into(),
                format!("{:.4} / {:.4}", t.macro_f1, st.macro_f1),
            ),
            (
                "parameters: teacher / student".into(),
                format!("{} / {}", t.parameters, st.parameters),
            ),
            (
                "size on disk: teacher / student".into(),
                format!("{} / {}", size(t.size_mb), size(st.size_mb)),
            ),
            (
                "inference: teacher / student".into(),
                format!("{ts:.1} / {ss:.1} samples/s ({:.2}×)", ss / ts.max(1e-12)),
            ),
        ]);
    }
    facts
}
