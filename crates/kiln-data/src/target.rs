//! What a model learns to predict: the [`Task`] a data set's label column is read for, each
//! example's [`Target`], a batch's [`Targets`] and the standardisation of regression values
//! ([`ValueScale`]).

use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// What the label column holds, and so which head, loss and metrics a run uses (Hugging Face's
/// `problem_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// One class per example (`single_label_classification`): cross-entropy, accuracy and F1.
    #[default]
    Classification,
    /// One number per example (`regression`): MSE (or Huber) on standardised values; MSE,
    /// MAE, Pearson and Spearman in the data's units.
    Regression,
    /// A set of classes per example (`multi_label_classification`): one sigmoid per label,
    /// binary cross-entropy, a decision threshold; micro/macro/samples F1.
    MultiLabel,
    /// A tag per word (`BertForTokenClassification`): part-of-speech tags, named entities.
    /// Cross-entropy over the labelled word pieces; token accuracy and, for entity tag sets,
    /// entity-level F1.
    Token,
}

impl Task {
    /// transformers' `problem_type` for this task.
    pub fn problem_type(self) -> &'static str {
        match self {
            Task::Classification => "single_label_classification",
            Task::Regression => "regression",
            Task::MultiLabel => "multi_label_classification",
            // transformers has no problem_type for token heads; kiln names the task so.
            Task::Token => "token_classification",
        }
    }

    /// The task of a transformers `problem_type` (none: a classifier, as transformers assumes
    /// for `num_labels > 1`).
    pub fn from_problem_type(problem_type: Option<&str>) -> Option<Task> {
        match problem_type {
            None | Some("single_label_classification") => Some(Task::Classification),
            Some("regression") => Some(Task::Regression),
            Some("multi_label_classification") => Some(Task::MultiLabel),
            Some(_) => None,
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Task::Classification => "classification",
            Task::Regression => "regression",
            Task::MultiLabel => "multi-label",
            Task::Token => "token",
        })
    }
}

/// One example's target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Target {
    /// A class index (see `LabelMap`).
    Class(usize),
    /// A value in the data's units.
    Value(f32),
    /// The example's classes: label indices, ascending, each once.
    Labels(Vec<usize>),
    /// Token classification: a label per word piece of the example's encoding — a tag index,
    /// or [`crate::tagged::IGNORE`] for pieces the loss and the metrics skip (special tokens,
    /// a word's later pieces). An index past the trained tags is a tag training never had.
    Tags(Vec<i64>),
}

impl Target {
    pub fn class(&self) -> Option<usize> {
        match *self {
            Target::Class(c) => Some(c),
            _ => None,
        }
    }

    pub fn value(&self) -> Option<f32> {
        match *self {
            Target::Value(v) => Some(v),
            _ => None,
        }
    }

    /// A multi-label example's classes.
    pub fn labels(&self) -> Option<&[usize]> {
        match self {
            Target::Labels(l) => Some(l),
            _ => None,
        }
    }

    /// A tagged example's label per piece.
    pub fn tags(&self) -> Option<&[i64]> {
        match self {
            Target::Tags(t) => Some(t),
            _ => None,
        }
    }

    /// The task this kind of target is for.
    pub fn task(&self) -> Task {
        match self {
            Target::Class(_) => Task::Classification,
            Target::Value(_) => Task::Regression,
            Target::Labels(_) => Task::MultiLabel,
            Target::Tags(_) => Task::Token,
        }
    }
}

/// The mean and standard deviation of the training targets: a regression head learns
/// `(y − mean) / std` (unit scale, whatever the data's units) and its outputs are mapped back
/// with `mean + std · output`. Stored with the exported model so predictions come back in the
/// data's units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ValueScale {
    pub mean: f64,
    /// Population standard deviation (scikit-learn's `StandardScaler`); 1 for constant data.
    pub std: f64,
}

impl ValueScale {
    /// The scale of `values`; `None` for no values.
    pub fn of(values: impl IntoIterator<Item = f32>) -> Option<ValueScale> {
        let values: Vec<f64> = values.into_iter().map(f64::from).collect();
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let std = var.sqrt();
        Some(ValueScale {
            mean,
            std: if std > 0.0 && std.is_finite() {
                std
            } else {
                1.0
            },
        })
    }

    pub fn standardise(&self, value: f32) -> f32 {
        ((f64::from(value) - self.mean) / self.std) as f32
    }

    pub fn restore(&self, output: f32) -> f64 {
        self.mean + self.std * f64::from(output)
    }
}

/// How a model's outputs read as predictions beyond a row's argmax: a regression output is
/// mapped back to the data's units with `scale`; a multi-label output is a label when its
/// sigmoid probability exceeds the label's threshold (transformers' examples: `p > 0.5`).
/// Saved with an exported model (`config.json`) so eval and predict read outputs as training
/// did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Readout {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<ValueScale>,
    /// Multi-label: a probability threshold per label; labels past the end use 0.5.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<f32>,
    /// Token classification: read entities in seqeval's strict mode (IOB2, or IOBES for a tag
    /// set with `E-`/`S-` tags) rather than its default mode.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict_entities: bool,
}

impl Readout {
    /// Label `label`'s probability threshold.
    pub fn threshold(&self, label: usize) -> f32 {
        self.thresholds.get(label).copied().unwrap_or(0.5)
    }

    /// The labels a row of multi-label outputs (logits) predicts: `sigmoid(x) > threshold`.
    pub fn label_set(&self, logits: &[f32]) -> Vec<bool> {
        logits
            .iter()
            .enumerate()
            .map(|(l, &x)| sigmoid(x) > self.threshold(l))
            .collect()
    }

    /// A regression output in the data's units.
    pub fn value(&self, output: f32) -> f64 {
        self.scale.map_or(f64::from(output), |s| s.restore(output))
    }
}

/// The logistic function, in f64 so that a threshold compares exactly for any logit.
pub fn sigmoid(x: f32) -> f32 {
    (1.0 / (1.0 + (-f64::from(x)).exp())) as f32
}

/// A batch's targets as tensors.
#[derive(Debug, Clone)]
pub enum Targets {
    /// `[examples]` class indices.
    Classes(Tensor<1, Int>),
    /// `[examples, 1]` standardised values.
    Values(Tensor<2>),
    /// `[examples, labels]`: 1 where the example has the label, else 0.
    Labels(Tensor<2>),
    /// `[rows, seq]`, laid out as the batch's tokens are (an example per row, or several
    /// packed to a row): each piece's tag index, [`crate::tagged::IGNORE`] on padding and
    /// where the target says so. Row-major, as a token model's output rows are.
    Tags(Tensor<2, Int>),
}

impl Targets {
    /// The targets of `items` (all of one kind: a data set is read for one task); values are
    /// standardised with `scale` when given; label sets become rows of `labels` 0/1 entries.
    pub fn of(
        items: &[Target],
        scale: Option<ValueScale>,
        labels: usize,
        device: &Device,
    ) -> Targets {
        let n = items.len();
        match items.first() {
            Some(Target::Tags(_)) => {
                let seq = items
                    .iter()
                    .filter_map(Target::tags)
                    .map(<[i64]>::len)
                    .max();
                Targets::tags(items, seq.unwrap_or(0), device)
            }
            Some(Target::Labels(_)) => {
                let mut hot = vec![0f32; n * labels];
                for (i, t) in items.iter().enumerate() {
                    for &l in t.labels().unwrap_or(&[]) {
                        if l < labels {
                            hot[i * labels + l] = 1.0;
                        }
                    }
                }
                Targets::Labels(Tensor::from_data(TensorData::new(hot, [n, labels]), device))
            }
            Some(Target::Value(_)) => {
                let values: Vec<f32> = items
                    .iter()
                    .map(|t| {
                        let v = t.value().unwrap_or(f32::NAN);
                        scale.map_or(v, |s| s.standardise(v))
                    })
                    .collect();
                Targets::Values(Tensor::from_data(TensorData::new(values, [n, 1]), device))
            }
            _ => {
                let classes: Vec<i64> = items
                    .iter()
                    .map(|t| t.class().map_or(-1, |c| c as i64))
                    .collect();
                Targets::Classes(Tensor::from_data(TensorData::new(classes, [n]), device))
            }
        }
    }

    /// Tagged examples' targets padded to `seq` pieces (the batch's padded length) with
    /// [`crate::tagged::IGNORE`].
    pub fn tags(items: &[Target], seq: usize, device: &Device) -> Targets {
        let starts: Vec<usize> = (0..items.len()).map(|e| e * seq).collect();
        Targets::tags_at(items, &starts, [items.len(), seq], device)
    }

    /// Tagged examples' targets laid out as a packed batch holds their tokens: example `e`'s
    /// labels from flat index `starts[e]` of a `[rows, seq]` grid (see `Packing::starts`),
    /// [`crate::tagged::IGNORE`] everywhere else.
    pub fn tags_at(
        items: &[Target],
        starts: &[usize],
        [rows, seq]: [usize; 2],
        device: &Device,
    ) -> Targets {
        let mut tags = vec![crate::tagged::IGNORE; rows * seq];
        for (t, &start) in items.iter().zip(starts) {
            let t = t.tags().unwrap_or(&[]);
            let n = t.len().min(tags.len().saturating_sub(start));
            tags[start..start + n].copy_from_slice(&t[..n]);
        }
        Targets::Tags(Tensor::from_data(
            TensorData::new(tags, [rows, seq]),
            device,
        ))
    }

    pub fn to_device(self, device: &Device) -> Targets {
        match self {
            Targets::Classes(t) => Targets::Classes(t.to_device(device)),
            Targets::Values(t) => Targets::Values(t.to_device(device)),
            Targets::Labels(t) => Targets::Labels(t.to_device(device)),
            Targets::Tags(t) => Targets::Tags(t.to_device(device)),
        }
    }

    /// The class indices, for a classification batch.
    pub fn classes(&self) -> Option<&Tensor<1, Int>> {
        match self {
            Targets::Classes(t) => Some(t),
            _ => None,
        }
    }
}

/// Stratification bins for regression splits: each value's decile among `values` (ties share
/// a bin), so every split spans the whole range as a stratified split spans every class.
pub fn value_bins(values: &[f32], bins: usize) -> Vec<usize> {
    let mut sorted: Vec<f32> = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    let bins = bins.max(1);
    let cuts: Vec<f32> = (1..bins)
        .map(|i| sorted[(i * sorted.len() / bins).min(sorted.len().saturating_sub(1))])
        .collect();
    values
        .iter()
        .map(|v| cuts.partition_point(|c| c.total_cmp(v).is_le()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_is_the_population_mean_and_sd_and_restores_what_it_standardises() {
        let s = ValueScale::of([1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(s.mean, 2.5);
        assert!((s.std - 1.25f64.sqrt()).abs() < 1e-12);
        let z = s.standardise(4.0);
        assert!((s.restore(z) - 4.0).abs() < 1e-6);
        assert_eq!(ValueScale::of([7.0, 7.0]).unwrap().std, 1.0);
        assert_eq!(ValueScale::of([]), None);
    }

    #[test]
    fn bins_cut_at_quantiles_and_ties_share_a_bin() {
        let values: Vec<f32> = (0..10).map(|v| v as f32).collect();
        assert_eq!(value_bins(&values, 5), vec![0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
        assert_eq!(value_bins(&[3.0, 3.0, 3.0], 10), vec![9, 9, 9]);
        assert_eq!(value_bins(&[2.0, 1.0], 2), vec![1, 0]);
    }

    #[test]
    fn targets_become_class_indices_or_standardised_values() {
        let device = Device::default();
        let t = Targets::of(&[Target::Class(2), Target::Class(0)], None, 3, &device);
        let classes = t.classes().unwrap().clone().into_data();
        assert_eq!(
            classes.convert::<i64>().try_to_vec::<i64>().unwrap(),
            vec![2, 0]
        );
        let scale = ValueScale {
            mean: 1.0,
            std: 2.0,
        };
        let Targets::Values(v) = Targets::of(
            &[Target::Value(3.0), Target::Value(0.0)],
            Some(scale),
            1,
            &device,
        ) else {
            panic!("values expected")
        };
        assert_eq!(v.dims(), [2, 1]);
        assert_eq!(v.into_data().try_to_vec::<f32>().unwrap(), vec![1.0, -0.5]);
        let sets = [Target::Labels(vec![0, 2]), Target::Labels(vec![1])];
        let Targets::Labels(hot) = Targets::of(&sets, None, 3, &device) else {
            panic!("label rows expected")
        };
        assert_eq!(
            hot.into_data().try_to_vec::<f32>().unwrap(),
            vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
        );
        let tagged = [
            Target::Tags(vec![-100, 3, -100]),
            Target::Tags(vec![-100, 1]),
        ];
        let Targets::Tags(rows) = Targets::tags(&tagged, 4, &device) else {
            panic!("tag rows expected")
        };
        assert_eq!(rows.dims(), [2, 4]);
        assert_eq!(
            rows.into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .unwrap(),
            vec![-100, 3, -100, -100, -100, 1, -100, -100]
        );
        let Targets::Tags(rows) = Targets::of(&tagged, None, 4, &device) else {
            panic!("tag rows expected")
        };
        assert_eq!(rows.dims(), [2, 3]);
    }
}
