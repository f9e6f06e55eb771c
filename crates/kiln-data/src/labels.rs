//! The label map: label strings ↔ class indices.
//!
//! Built from the training set alone, so that a label that occurs only in validation or test data
//! is an error ([`DataError::UnknownLabel`]) instead of a class the model never saw. The order is
//! a function of the *set* of labels, never of the order examples come in, so that the same
//! training data always gives the same class indices (a saved model's output `i` keeps meaning
//! label `i`).

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::example::{Example, RawDataset, RawExample};
use crate::target::Target;

/// Class labels in index order: label `labels[i]` is class `i`.
///
/// Serialized as `{"labels": [...]}`; deserializing rejects duplicate or empty labels, because
/// either would make two classes indistinguishable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "LabelList")]
pub struct LabelMap {
    labels: Vec<String>,
}

/// The serialized form, checked before it becomes a [`LabelMap`].
#[derive(Deserialize)]
struct LabelList {
    labels: Vec<String>,
}

impl TryFrom<LabelList> for LabelMap {
    type Error = String;

    fn try_from(list: LabelList) -> Result<LabelMap, String> {
        let mut seen = BTreeSet::new();
        for label in &list.labels {
            if label.is_empty() {
                return Err("the label map holds an empty label".to_string());
            }
            if !seen.insert(label.as_str()) {
                return Err(format!("the label map holds `{label}` twice"));
            }
        }
        Ok(LabelMap {
            labels: list.labels,
        })
    }
}

impl LabelMap {
    /// The labels of `examples` (normally the training set) in canonical order; see
    /// [`LabelMap::from_labels`].
    pub fn from_examples(examples: &[RawExample]) -> LabelMap {
        let labels: BTreeSet<&str> = examples.iter().map(|e| e.label.as_str()).collect();
        LabelMap::from_labels(labels.into_iter().map(str::to_string).collect())
    }

    /// Deduplicates `labels` and sorts them canonically: numerically if every label is an
    /// integer (so `-1` < `1`, and `9` < `10`), otherwise by bytes (`neg` < `pos`). Integers
    /// equal in value but spelled differently (`1`, `01`) stay distinct labels, ordered by
    /// spelling.
    ///
    /// The given order is discarded on purpose: a label map from an explicit list and one from
    /// the data agree whenever they hold the same labels.
    pub fn from_labels(labels: Vec<String>) -> LabelMap {
        let mut labels: Vec<String> = labels
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let numbers: Option<Vec<i128>> = labels.iter().map(|l| l.parse().ok()).collect();
        if let Some(numbers) = numbers {
            let mut pairs: Vec<(i128, String)> = numbers.into_iter().zip(labels).collect();
            pairs.sort_by(|a, b| match a.0.cmp(&b.0) {
                Ordering::Equal => a.1.cmp(&b.1),
                other => other,
            });
            labels = pairs.into_iter().map(|(_, l)| l).collect();
        }
        LabelMap { labels }
    }

    /// This map followed by the labels of `more` it lacks, sorted the same way: indices past
    /// `self.len()` are labels this map never had (a held-out split's tags that training
    /// lacks), while every known label keeps its index.
    pub fn extended(&self, more: impl IntoIterator<Item = String>) -> LabelMap {
        let new: Vec<String> = more
            .into_iter()
            .filter(|l| self.index(l).is_none())
            .collect();
        let mut labels = self.labels.clone();
        labels.extend(LabelMap::from_labels(new).labels);
        LabelMap { labels }
    }

    /// The number of classes.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// All labels, in class-index order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The class index of `label`.
    pub fn index(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }

    /// The label of class `index`.
    pub fn name(&self, index: usize) -> Option<&str> {
        self.labels.get(index).map(String::as_str)
    }

    /// The labels of every set in `examples` (multi-label data; see [`label_set`]), in
    /// canonical order.
    pub fn from_label_sets(examples: &[RawExample], delimiter: &str) -> LabelMap {
        let labels: BTreeSet<String> = examples
            .iter()
            .flat_map(|e| label_set(&e.label, delimiter))
            .collect();
        LabelMap::from_labels(labels.into_iter().collect())
    }

    /// Replaces each example's label set (see [`label_set`]) by its class indices. A label
    /// outside the map is [`DataError::UnknownLabel`] and an empty set [`DataError::Parse`],
    /// both naming the file and line.
    pub fn encode_sets(
        &self,
        data: &RawDataset,
        delimiter: &str,
    ) -> Result<Vec<Example>, DataError> {
        data.examples
            .iter()
            .map(|e| {
                let mut classes = label_set(&e.label, delimiter)
                    .into_iter()
                    .map(|label| {
                        self.index(&label).ok_or_else(|| DataError::UnknownLabel {
                            path: data.path.clone(),
                            line: e.line,
                            label,
                            known: self.labels.clone(),
                        })
                    })
                    .collect::<Result<Vec<usize>, _>>()?;
                if classes.is_empty() {
                    return Err(DataError::Parse {
                        path: data.path.clone(),
                        line: e.line,
                        message: format!(
                            "the label set `{}` is empty (labels separated by `{delimiter}`)",
                            e.label
                        ),
                    });
                }
                classes.sort_unstable();
                classes.dedup();
                Ok(Example {
                    text: e.text.clone(),
                    text_pair: e.text_pair.clone(),
                    target: Target::Labels(classes),
                })
            })
            .collect()
    }

    /// Replaces each example's label by its class index. A label outside the map is
    /// [`DataError::UnknownLabel`], naming the file and line.
    pub fn encode(&self, data: &RawDataset) -> Result<Vec<Example>, DataError> {
        let indices: HashMap<&str, usize> = self
            .labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.as_str(), i))
            .collect();
        data.examples
            .iter()
            .map(|e| match indices.get(e.label.as_str()) {
                _ if e.label.contains(LIST_SEPARATOR) => Err(DataError::Parse {
                    path: data.path.clone(),
                    line: e.line,
                    message: "the label is a list: a classifier takes one label per example \
                              (--task multi-label reads lists)"
                        .into(),
                }),
                Some(&class) => Ok(Example {
                    text: e.text.clone(),
                    text_pair: e.text_pair.clone(),
                    target: Target::Class(class),
                }),
                None => Err(DataError::UnknownLabel {
                    path: data.path.clone(),
                    line: e.line,
                    label: e.label.clone(),
                    known: self.labels.clone(),
                }),
            })
            .collect()
    }
}

/// What a JSON reader puts between the items of a label that is an array (`["a", "b"]`), so
/// that an array label reaches [`label_set`] as a list whatever the delimiter (a control
/// character no label name holds).
pub const LIST_SEPARATOR: char = '\u{1f}';

/// The labels of a multi-label example: a JSON array's items, or the label split at
/// `delimiter` (`sports;politics`); each trimmed, empty ones dropped, duplicates kept once.
pub fn label_set(label: &str, delimiter: &str) -> Vec<String> {
    let items: Vec<&str> = if label.contains(LIST_SEPARATOR) || delimiter.is_empty() {
        label.split(LIST_SEPARATOR).collect()
    } else {
        label.split(delimiter).collect()
    };
    let mut seen = BTreeSet::new();
    items
        .into_iter()
        .map(str::trim)
        .filter(|l| !l.is_empty() && seen.insert(*l))
        .map(str::to_string)
        .collect()
}

/// Reads each example's label as a number (a regression target). A label that is not a
/// finite number is [`DataError::Parse`], naming the file and line.
pub fn encode_values(data: &RawDataset) -> Result<Vec<Example>, DataError> {
    data.examples
        .iter()
        .map(|e| {
            let value = e
                .label
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| DataError::Parse {
                    path: data.path.clone(),
                    line: e.line,
                    message: format!(
                        "label `{}` is not a finite number (a regression task needs numeric labels)",
                        e.label
                    ),
                })?;
            Ok(Example {
                text: e.text.clone(),
                text_pair: e.text_pair.clone(),
                target: Target::Value(value),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn raw(text: &str, label: &str, line: u64) -> RawExample {
        RawExample {
            text: text.to_string(),
            text_pair: None,
            label: label.to_string(),
            line,
        }
    }

    fn map(labels: &[&str]) -> LabelMap {
        LabelMap::from_labels(labels.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn integer_labels_sort_numerically() {
        assert_eq!(map(&["1", "-1"]).labels(), ["-1", "1"]);
        assert_eq!(
            map(&["10", "9", "0", "2", "1"]).labels(),
            ["0", "1", "2", "9", "10"]
        );
        assert_eq!(
            map(&["1", "01", "+1", "0"]).labels(),
            ["0", "+1", "01", "1"]
        );
    }

    #[test]
    fn other_labels_sort_by_bytes() {
        assert_eq!(
            map(&["pos", "neg", "Neutral"]).labels(),
            ["Neutral", "neg", "pos"]
        );
        // One non-integer makes the whole set lexicographic.
        assert_eq!(map(&["10", "9", "x"]).labels(), ["10", "9", "x"]);
        assert_eq!(map(&["1.5", "1"]).labels(), ["1", "1.5"]);
    }

    #[test]
    fn duplicates_collapse() {
        let m = map(&["b", "a", "b", "a"]);
        assert_eq!(m.labels(), ["a", "b"]);
        assert_eq!(m.len(), 2);
        assert!(!m.is_empty());
        assert!(map(&[]).is_empty());
    }

    /// Five classes in a scrambled order give one map, whatever the order.
    #[test]
    fn multi_class_is_deterministic() {
        let classes = [
            "very negative",
            "negative",
            "neutral",
            "positive",
            "very positive",
        ];
        let mut examples: Vec<RawExample> = (0..50)
            .map(|i| raw(&format!("text {i}"), classes[(i * 7) % 5], i as u64 + 1))
            .collect();
        let first = LabelMap::from_examples(&examples);
        assert_eq!(
            first.labels(),
            [
                "negative",
                "neutral",
                "positive",
                "very negative",
                "very positive"
            ]
        );
        for shift in 1..examples.len() {
            examples.rotate_left(shift);
            assert_eq!(LabelMap::from_examples(&examples), first);
        }
        examples.reverse();
        assert_eq!(LabelMap::from_examples(&examples), first);
        for (i, label) in first.labels().iter().enumerate() {
            assert_eq!(first.index(label), Some(i));
            assert_eq!(first.name(i), Some(label.as_str()));
        }
        assert_eq!(first.index("mixed"), None);
        assert_eq!(first.name(5), None);
    }

    #[test]
    fn encode_maps_labels_to_indices() {
        let train = RawDataset {
            path: PathBuf::from("train.csv"),
            examples: vec![
                raw("a", "2", 2),
                raw("b", "0", 3),
                raw("c", "1", 4),
                raw("d", "2", 5),
            ],
        };
        let labels = LabelMap::from_examples(&train.examples);
        let encoded = labels.encode(&train).unwrap();
        assert_eq!(
            encoded.iter().map(|e| e.target.clone()).collect::<Vec<_>>(),
            [2, 0, 1, 2].map(Target::Class)
        );
        assert_eq!(encoded[0].text, "a");
        assert_eq!(encoded[0].text_pair, None);
    }

    #[test]
    fn regression_labels_are_numbers_and_a_bad_one_is_named() {
        let data = RawDataset {
            path: PathBuf::from("scores.csv"),
            examples: vec![raw("a", " 2.5", 2), raw("b", "-1e-1", 3)],
        };
        let values: Vec<Target> = encode_values(&data)
            .unwrap()
            .iter()
            .map(|e| e.target.clone())
            .collect();
        assert_eq!(values, [Target::Value(2.5), Target::Value(-0.1)]);
        for bad in ["high", "NaN", "inf"] {
            let data = RawDataset {
                path: PathBuf::from("scores.csv"),
                examples: vec![raw("a", "1", 2), raw("b", bad, 9)],
            };
            let message = encode_values(&data).unwrap_err().to_string();
            assert!(
                message.contains("scores.csv:9:") && message.contains(&format!("`{bad}`")),
                "{message}"
            );
        }
    }

    #[test]
    fn encode_rejects_unknown_labels() {
        let labels = map(&["neg", "pos"]);
        let valid = RawDataset {
            path: PathBuf::from("dev.csv"),
            examples: vec![raw("a", "pos", 2), raw("b", "neutral", 7)],
        };
        let e = labels.encode(&valid).unwrap_err();
        assert!(
            matches!(&e, DataError::UnknownLabel { line: 7, label, .. } if label == "neutral"),
            "{e}"
        );
        let message = e.to_string();
        assert!(message.contains("dev.csv:7:"), "{message}");
        assert!(
            message.contains("`neutral`") && message.contains("neg, pos"),
            "{message}"
        );
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let labels = map(&["-1", "1"]);
        let json = serde_json::to_string(&labels).unwrap();
        assert_eq!(json, r#"{"labels":["-1","1"]}"#);
        let back: LabelMap = serde_json::from_str(&json).unwrap();
        assert_eq!(back, labels);
        // A saved order is kept as saved.
        let saved: LabelMap = serde_json::from_str(r#"{"labels":["pos","neg"]}"#).unwrap();
        assert_eq!(saved.index("neg"), Some(1));
        let e = serde_json::from_str::<LabelMap>(r#"{"labels":["a","a"]}"#).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        assert!(serde_json::from_str::<LabelMap>(r#"{"labels":[""]}"#).is_err());
    }
}
