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
}

impl Task {
    /// transformers' `problem_type` for this task.
    pub fn problem_type(self) -> &'static str {
        match self {
            Task::Classification => "single_label_classification",
            Task::Regression => "regression",
        }
    }

    /// The task of a transformers `problem_type` (none: a classifier, as transformers assumes
    /// for `num_labels > 1`).
    pub fn from_problem_type(problem_type: Option<&str>) -> Option<Task> {
        match problem_type {
            None | Some("single_label_classification") => Some(Task::Classification),
            Some("regression") => Some(Task::Regression),
            Some(_) => None,
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Task::Classification => "classification",
            Task::Regression => "regression",
        })
    }
}

/// One example's target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Target {
    /// A class index (see `LabelMap`).
    Class(usize),
    /// A value in the data's units.
    Value(f32),
}

impl Target {
    pub fn class(&self) -> Option<usize> {
        match *self {
            Target::Class(c) => Some(c),
            Target::Value(_) => None,
        }
    }

    pub fn value(&self) -> Option<f32> {
        match *self {
            Target::Value(v) => Some(v),
            Target::Class(_) => None,
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

/// A batch's targets as tensors.
#[derive(Debug, Clone)]
pub enum Targets {
    /// `[examples]` class indices.
    Classes(Tensor<1, Int>),
    /// `[examples, 1]` standardised values.
    Values(Tensor<2>),
}

impl Targets {
    /// The targets of `items` (all of one kind: a data set is read for one task); values are
    /// standardised with `scale` when given.
    pub fn of(items: &[Target], scale: Option<ValueScale>, device: &Device) -> Targets {
        let n = items.len();
        match items.first() {
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

    pub fn to_device(self, device: &Device) -> Targets {
        match self {
            Targets::Classes(t) => Targets::Classes(t.to_device(device)),
            Targets::Values(t) => Targets::Values(t.to_device(device)),
        }
    }

    /// The class indices, for a classification batch.
    pub fn classes(&self) -> Option<&Tensor<1, Int>> {
        match self {
            Targets::Classes(t) => Some(t),
            Targets::Values(_) => None,
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
        let t = Targets::of(&[Target::Class(2), Target::Class(0)], None, &device);
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
            &device,
        ) else {
            panic!("values expected")
        };
        assert_eq!(v.dims(), [2, 1]);
        assert_eq!(v.into_data().try_to_vec::<f32>().unwrap(), vec![1.0, -0.5]);
    }
}
