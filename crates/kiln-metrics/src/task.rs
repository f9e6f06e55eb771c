//! What one evaluation measured, whatever the task: [`TaskMetrics`].
//!
//! Serialized untagged, so a classification run's files keep the shape they always had
//! (`"accuracy": …` at the top of an evaluation) and a regression run's hold `"mse": …`; a
//! reader tells them apart by their fields.

use serde::{Deserialize, Serialize};

use crate::metrics::ClassificationMetrics;
use crate::multilabel::MultiLabelMetrics;
use crate::regression::RegressionMetrics;
use crate::token::TokenMetrics;

/// The metrics of one evaluation pass, by task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TaskMetrics {
    /// Single-label classification (one class per example).
    Classification(ClassificationMetrics),
    /// Regression (one value per example), in the data's units.
    Regression(RegressionMetrics),
    /// Multi-label classification (a set of classes per example).
    MultiLabel(MultiLabelMetrics),
    /// Token classification (a tag per word).
    Token(TokenMetrics),
}

impl From<TokenMetrics> for TaskMetrics {
    fn from(m: TokenMetrics) -> Self {
        Self::Token(m)
    }
}

impl From<MultiLabelMetrics> for TaskMetrics {
    fn from(m: MultiLabelMetrics) -> Self {
        Self::MultiLabel(m)
    }
}

impl From<ClassificationMetrics> for TaskMetrics {
    fn from(m: ClassificationMetrics) -> Self {
        Self::Classification(m)
    }
}

impl From<RegressionMetrics> for TaskMetrics {
    fn from(m: RegressionMetrics) -> Self {
        Self::Regression(m)
    }
}

impl TaskMetrics {
    /// Examples evaluated.
    pub fn examples(&self) -> u64 {
        match self {
            Self::Classification(m) => m.examples,
            Self::Regression(m) => m.examples as u64,
            Self::MultiLabel(m) => m.examples as u64,
            Self::Token(m) => m.sentences as u64,
        }
    }

    /// The mean loss of the pass, when it was computed.
    pub fn loss(&self) -> Option<f64> {
        match self {
            Self::Classification(m) => m.loss,
            Self::Regression(m) => m.loss,
            Self::MultiLabel(m) => m.loss,
            Self::Token(m) => m.loss,
        }
    }

    pub fn classification(&self) -> Option<&ClassificationMetrics> {
        match self {
            Self::Classification(m) => Some(m),
            _ => None,
        }
    }

    pub fn regression(&self) -> Option<&RegressionMetrics> {
        match self {
            Self::Regression(m) => Some(m),
            _ => None,
        }
    }

    pub fn multi_label(&self) -> Option<&MultiLabelMetrics> {
        match self {
            Self::MultiLabel(m) => Some(m),
            _ => None,
        }
    }

    pub fn token(&self) -> Option<&TokenMetrics> {
        match self {
            Self::Token(m) => Some(m),
            _ => None,
        }
    }

    /// The task's headline figure and its name: accuracy for classification, MSE for
    /// regression, micro-F1 for label sets, token accuracy for tags.
    pub fn main(&self) -> (&'static str, f64) {
        match self {
            Self::Classification(m) => ("accuracy", m.accuracy),
            Self::Regression(m) => ("MSE", m.mse),
            Self::MultiLabel(m) => ("micro-F1", m.micro_f1),
            Self::Token(m) => ("token accuracy", m.accuracy()),
        }
    }

    /// The figures a console line shows, e.g. `accuracy 0.8425  macro-F1 0.8424` or
    /// `MSE 1.2034  MAE 0.8812  Pearson 0.6120  Spearman 0.5977`.
    pub fn summary(&self) -> String {
        match self {
            Self::Classification(m) => {
                format!("accuracy {:.4}  macro-F1 {:.4}", m.accuracy, m.macro_f1)
            }
            Self::Regression(m) => {
                let corr = |r: Option<f64>| r.map_or("n/a".to_string(), |r| format!("{r:.4}"));
                format!(
                    "MSE {:.4}  MAE {:.4}  Pearson {}  Spearman {}",
                    m.mse,
                    m.mae,
                    corr(m.pearson),
                    corr(m.spearman)
                )
            }
            Self::MultiLabel(m) => format!(
                "micro-F1 {:.4}  macro-F1 {:.4}  samples-F1 {:.4}  subset accuracy {:.4}",
                m.micro_f1, m.macro_f1, m.samples_f1, m.subset_accuracy
            ),
            Self::Token(m) => {
                let mut line = format!(
                    "token accuracy {:.4}  macro-F1 {:.4}",
                    m.accuracy(),
                    m.tokens.macro_f1
                );
                if let Some(e) = &m.entities {
                    line += &format!(
                        "  entity P {:.4}  R {:.4}  F1 {:.4}",
                        e.micro.precision, e.micro.recall, e.micro.f1
                    );
                }
                if m.unseen_words > 0 {
                    line += &format!(
                        "  ({} words tagged {} that training never had)",
                        m.unseen_words,
                        m.unseen_tags.join(", ")
                    );
                }
                line
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ConfusionMatrix;

    #[test]
    fn each_task_reads_back_as_itself_and_classification_keeps_its_json_shape() {
        let cm = ConfusionMatrix::from_predictions(&[0, 1, 1], &[0, 1, 0], 2);
        let labels = ["neg".to_string(), "pos".to_string()];
        let c = ClassificationMetrics::compute(&cm, &labels, Some(0.5));
        let json = serde_json::to_value(TaskMetrics::from(c.clone())).unwrap();
        assert_eq!(json, serde_json::to_value(&c).unwrap());
        let back: TaskMetrics = serde_json::from_value(json).unwrap();
        assert_eq!(back, TaskMetrics::Classification(c));

        let r = RegressionMetrics::new(&[1.0, 2.0, 4.0], &[1.5, 2.0, 3.0], Some(0.2));
        let json = serde_json::to_string(&TaskMetrics::from(r.clone())).unwrap();
        assert!(json.contains("\"mse\""), "{json}");
        let back: TaskMetrics = serde_json::from_str(&json).unwrap();
        assert_eq!(back.regression(), Some(&r));
        assert_eq!(back.main().0, "MSE");
        assert_eq!(back.loss(), Some(0.2));
        assert_eq!(back.examples(), 3);

        let truth = [vec![true, false], vec![true, true]];
        let predicted = [vec![true, false], vec![false, true]];
        let m = MultiLabelMetrics::new(&truth, &predicted, Some(0.3)).unwrap();
        let json = serde_json::to_string(&TaskMetrics::from(m.clone())).unwrap();
        let back: TaskMetrics = serde_json::from_str(&json).unwrap();
        assert_eq!(back.multi_label(), Some(&m), "{json}");
        assert_eq!(back.main().0, "micro-F1");

        let tags = ["O".to_string(), "B-PER".to_string()];
        let t =
            TokenMetrics::new(&[vec![1, 0]], &[vec![1, 1]], &tags, 2, false, Some(0.4)).unwrap();
        let json = serde_json::to_string(&TaskMetrics::from(t.clone())).unwrap();
        let back: TaskMetrics = serde_json::from_str(&json).unwrap();
        assert_eq!(back.token(), Some(&t), "{json}");
        assert_eq!(back.main(), ("token accuracy", 0.5));
        assert!(
            back.summary().contains("entity P 0.5000"),
            "{}",
            back.summary()
        );
    }
}
