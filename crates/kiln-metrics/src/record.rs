//! `metrics.json`: the record of a finished run (written last, so a run without one did not
//! finish). One typed struct: the CLI writes it through serde, and whatever reads it back —
//! `cargo xtask`, the tests — fails on a missing or mistyped field instead of reading a `null`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::history::{EpochPoint, EvalPoint, StepPoint, TrainStats};
#[cfg(test)]
use crate::metrics::ClassificationMetrics;
use crate::task::TaskMetrics;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    /// The kept model on the test split; none when the run had no test split.
    pub test: Option<TaskMetrics>,
    /// The validation metrics at each epoch's end.
    pub valid: Vec<ValidEpoch>,
    /// Every evaluation on the validation set (epoch ends and every-N-steps ones), in order.
    pub evaluations: Vec<Evaluation>,
    /// The epoch (1-based) and optimizer step of the kept model.
    pub best_epoch: Option<u64>,
    pub best_step: Option<u64>,
    pub stopped_early: bool,
    pub labels: Vec<String>,
    /// Examples in each split.
    pub examples: SplitSizes,
    pub train: TrainFigures,
    pub strategy: String,
    pub model: String,
    pub data: String,
    pub device: String,
    /// The whole command's time (loading, training, evaluation, export).
    pub total_wall_seconds: f64,
    /// Distillation runs: the teacher and the student side by side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<DistillSide>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<DistillSide>,
    /// The student's test accuracy over the teacher's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<f64>,
    /// The student's inference speed over the teacher's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speedup: Option<f64>,
    /// How far training moved the encoder from its pretrained weights, per part (empty for a
    /// distilled student, whose shape is not the checkpoint's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<PartDrift>,
    /// Test sets beyond `test`, by name (penn-tagged: `oanc`, out of domain).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub extra_tests: std::collections::BTreeMap<String, TaskMetrics>,
}

/// The relative weight change ‖w − w₀‖ / ‖w₀‖ of one part of the encoder (`embeddings`,
/// `layer 3`, `pooler`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartDrift {
    pub part: String,
    pub relative_change: f64,
    /// Linear CKA between this part's output in the pretrained and the fine-tuned encoder on
    /// held-out probe examples (1 = the same representation up to rotation and scale); none
    /// for the pooler and where not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cka: Option<f64>,
}

/// Examples in each split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitSizes {
    pub train: usize,
    pub valid: usize,
    pub test: usize,
}

/// The headline figures of one evaluation: a classification's accuracy and macro-F1, a
/// regression's MSE, MAE, Pearson and Spearman (absent keys are the other task's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub macro_f1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mse: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mae: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pearson: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spearman: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub micro_f1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_f1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset_accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hamming_loss: Option<f64>,
    /// Token classification: micro-averaged entity F1 (entity tag sets only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_f1: Option<f64>,
    pub loss: Option<f64>,
}

impl From<&TaskMetrics> for Scores {
    fn from(m: &TaskMetrics) -> Self {
        match m {
            TaskMetrics::Classification(c) => Self {
                accuracy: Some(c.accuracy),
                macro_f1: Some(c.macro_f1),
                loss: c.loss,
                ..Self::default()
            },
            TaskMetrics::Regression(r) => Self {
                mse: Some(r.mse),
                mae: Some(r.mae),
                pearson: r.pearson,
                spearman: r.spearman,
                loss: r.loss,
                ..Self::default()
            },
            TaskMetrics::MultiLabel(m) => Self {
                micro_f1: Some(m.micro_f1),
                macro_f1: Some(m.macro_f1),
                samples_f1: Some(m.samples_f1),
                subset_accuracy: Some(m.subset_accuracy),
                hamming_loss: Some(m.hamming_loss),
                loss: m.loss,
                ..Self::default()
            },
            TaskMetrics::Token(m) => Self {
                accuracy: Some(m.accuracy()),
                macro_f1: Some(m.tokens.macro_f1),
                entity_f1: m.entity_f1(),
                loss: m.loss,
                ..Self::default()
            },
        }
    }
}

/// One epoch's closing validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidEpoch {
    pub epoch: u64,
    #[serde(flatten)]
    pub scores: Scores,
    pub train_loss: f64,
}

impl ValidEpoch {
    /// The record of an epoch that was validated; none for one that was not.
    pub fn of(point: &EpochPoint) -> Option<Self> {
        point.valid.as_ref().map(|m| Self {
            epoch: point.epoch,
            scores: Scores::from(m),
            train_loss: point.train_loss,
        })
    }
}

/// One evaluation on the validation set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub step: u64,
    pub epoch: f64,
    pub epoch_end: bool,
    #[serde(flatten)]
    pub scores: Scores,
}

impl From<&EvalPoint> for Evaluation {
    fn from(e: &EvalPoint) -> Self {
        Self {
            step: e.step,
            epoch: e.epoch,
            epoch_end: e.epoch_end,
            scores: Scores::from(&e.metrics),
        }
    }
}

/// The training loop's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainFigures {
    /// Examples, epochs, steps, loop time, throughput and where the time went.
    #[serde(flatten)]
    pub stats: TrainStats,
    /// The process's peak resident memory (Linux), MiB.
    pub peak_rss_mib: Option<f64>,
    pub trainable_parameters: usize,
    pub parameters: usize,
    /// Steps skipped for a non-finite loss or gradient.
    pub bad_steps: u64,
}

/// One side of a distillation run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistillSide {
    /// Where the model is (the teacher's directory, the student's export).
    pub model: String,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub precision: f64,
    pub recall: f64,
    pub parameters: usize,
    /// The model's weights on disk, MB; none when no file was found.
    pub size_mb: Option<f64>,
    pub inference_samples_per_second: f64,
}

/// Why a run's file could not be read: the file, and what (with the line) went wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ReadError {
    pub path: std::path::PathBuf,
    pub message: String,
}

/// One line of a run's `log.jsonl`, tagged by `kind`: written as the run goes (a step, an
/// evaluation, an epoch's end, the place a resumed run continued from), read by the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LogRecord {
    Step {
        #[serde(flatten)]
        point: StepPoint,
        samples_per_second: f64,
    },
    Validation {
        #[serde(flatten)]
        point: EvalPoint,
        /// It beat every earlier evaluation: its model is the one kept.
        best: bool,
    },
    Epoch {
        #[serde(flatten)]
        point: EpochPoint,
        best: bool,
    },
    /// A resumed run continues here (the lines before are the interrupted run's, trimmed to
    /// its checkpoint).
    Resume { step: u64, epoch: usize },
}

impl LogRecord {
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The records of a `log.jsonl`; the error names the file and the line. A torn last line (a
/// run killed mid-write) is left out.
pub fn read_log(path: &Path) -> Result<Vec<LogRecord>, ReadError> {
    let fail = |message: String| ReadError {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let complete = text.ends_with('\n');
    let mut records = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(record) => records.push(record),
            Err(_) if i + 1 == lines.len() && !complete => {}
            Err(e) => return Err(fail(format!("line {}: {e}", i + 1))),
        }
    }
    Ok(records)
}

/// A JSON file as `T`; the error names the file, and the line and column of a field that
/// does not fit.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ReadError> {
    let fail = |message: String| ReadError {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| fail(e.to_string()))
}

impl RunMetrics {
    /// Reads `path` (a run's `metrics.json`); the error names the file, and the line and
    /// column of a field that does not fit.
    pub fn read(path: &Path) -> Result<Self, ReadError> {
        read_json(path)
    }

    /// The run directory's `metrics.json`.
    pub fn of_run(dir: &Path) -> Result<Self, ReadError> {
        Self::read(&dir.join("metrics.json"))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ConfusionMatrix;

    fn example() -> RunMetrics {
        let labels = vec!["neg".to_string(), "pos".to_string()];
        let cm = ConfusionMatrix::from_predictions(&[0, 1, 1], &[0, 1, 0], 2);
        let test = ClassificationMetrics::compute(&cm, &labels, Some(0.5));
        RunMetrics {
            test: Some(test.into()),
            valid: vec![],
            evaluations: vec![],
            best_epoch: Some(1),
            best_step: Some(4),
            stopped_early: false,
            labels,
            examples: SplitSizes {
                train: 8,
                valid: 0,
                test: 3,
            },
            train: TrainFigures {
                stats: TrainStats {
                    examples: 8,
                    steps: 4,
                    samples_per_second: 12.5,
                    ..TrainStats::default()
                },
                peak_rss_mib: None,
                trainable_parameters: 10,
                parameters: 20,
                bad_steps: 0,
            },
            strategy: "full".into(),
            model: "tiny".into(),
            data: "rt".into(),
            device: "flex".into(),
            total_wall_seconds: 1.0,
            teacher: None,
            student: None,
            retention: None,
            speedup: None,
            drift: Vec::new(),
            extra_tests: Default::default(),
        }
    }

    #[test]
    fn the_record_keeps_the_keys_scripts_read_and_round_trips() {
        let m = example();
        let value: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        // Flattened: the loop's figures sit directly under "train", as scripts expect.
        assert_eq!(value["train"]["samples_per_second"], 12.5);
        assert_eq!(value["train"]["steps"], 4);
        assert!(value["train"]["phases"]["data_seconds"].is_number());
        assert!((value["test"]["accuracy"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!(value.get("teacher").is_none());
        let back: RunMetrics = serde_json::from_value(value).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn log_lines_round_trip_and_a_bad_line_is_named() {
        let step = LogRecord::Step {
            point: StepPoint {
                step: 3,
                epoch: 0.5,
                loss: 0.7,
                lr: 1e-5,
            },
            samples_per_second: 30.0,
        };
        let line = step.to_line();
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            (value["kind"].as_str(), value["step"].as_u64()),
            (Some("step"), Some(3))
        );
        let dir = std::env::temp_dir().join(format!("kiln-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.jsonl");
        // A torn last line is a killed run's, not an error.
        std::fs::write(&path, format!("{line}\n{{\"kind\": \"st")).unwrap();
        assert_eq!(read_log(&path).unwrap().len(), 1);
        std::fs::write(&path, format!("{line}\n{{\"kind\": \"nope\"}}\n{line}\n")).unwrap();
        let err = read_log(&path).unwrap_err().to_string();
        assert!(err.contains("log.jsonl") && err.contains("line 2"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_record_with_a_mistyped_field_is_refused_naming_it() {
        let dir = std::env::temp_dir().join(format!("kiln-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.json");
        let text = example()
            .to_json()
            .replace("\"steps\": 4", "\"steps\": \"four\"");
        std::fs::write(&path, text).unwrap();
        let err = RunMetrics::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("metrics.json") && err.contains("line"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
