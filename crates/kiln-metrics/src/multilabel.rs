//! Multi-label classification metrics, with scikit-learn's definitions and `zero_division=0`:
//! per-label precision, recall and F1; micro, macro and samples F1; subset accuracy (exact
//! match) and Hamming loss.

use serde::{Deserialize, Serialize};

/// One label's scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Examples that have the label.
    pub support: usize,
}

/// How well predicted label sets match the true ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiLabelMetrics {
    pub examples: usize,
    /// Per label, in label order.
    pub per_label: Vec<LabelScores>,
    pub micro_precision: f64,
    pub micro_recall: f64,
    pub micro_f1: f64,
    /// The mean of the per-label F1 scores.
    pub macro_f1: f64,
    /// The mean over examples of each example's F1 between its true and predicted sets.
    pub samples_f1: f64,
    /// Share of examples whose predicted set is exactly the true one.
    pub subset_accuracy: f64,
    /// Share of (example, label) decisions that are wrong.
    pub hamming_loss: f64,
    pub loss: Option<f64>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// F1 from precision and recall, 0 where both are 0 (scikit-learn's formula).
fn f1(precision: f64, recall: f64) -> f64 {
    let denominator = precision + recall;
    if denominator == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / denominator
    }
}

impl MultiLabelMetrics {
    /// `truth[i][l]` and `predicted[i][l]`: whether example `i` has label `l`. Every row has
    /// the same number of labels; an error names the first row that does not.
    pub fn new(
        truth: &[Vec<bool>],
        predicted: &[Vec<bool>],
        loss: Option<f64>,
    ) -> Result<Self, String> {
        if truth.len() != predicted.len() {
            return Err(format!(
                "{} true rows but {} predicted",
                truth.len(),
                predicted.len()
            ));
        }
        let labels = truth.first().map_or(0, Vec::len);
        let (mut tp, mut fp, mut fn_) = (vec![0; labels], vec![0; labels], vec![0; labels]);
        let (mut exact, mut wrong, mut samples_f1) = (0, 0, 0.0);
        for (i, (t, p)) in truth.iter().zip(predicted).enumerate() {
            if t.len() != labels || p.len() != labels {
                return Err(format!(
                    "row {}: {} true and {} predicted labels, expected {labels}",
                    i + 1,
                    t.len(),
                    p.len()
                ));
            }
            let (mut hits, mut true_n, mut pred_n) = (0, 0, 0);
            for l in 0..labels {
                match (t[l], p[l]) {
                    (true, true) => tp[l] += 1,
                    (false, true) => fp[l] += 1,
                    (true, false) => fn_[l] += 1,
                    (false, false) => {}
                }
                hits += usize::from(t[l] && p[l]);
                true_n += usize::from(t[l]);
                pred_n += usize::from(p[l]);
                wrong += usize::from(t[l] != p[l]);
            }
            exact += usize::from(t == p);
            samples_f1 += f1(ratio(hits, pred_n), ratio(hits, true_n));
        }
        let per_label: Vec<LabelScores> = (0..labels)
            .map(|l| {
                let precision = ratio(tp[l], tp[l] + fp[l]);
                let recall = ratio(tp[l], tp[l] + fn_[l]);
                LabelScores {
                    precision,
                    recall,
                    f1: f1(precision, recall),
                    support: tp[l] + fn_[l],
                }
            })
            .collect();
        let (all_tp, all_fp, all_fn) = (
            tp.iter().sum::<usize>(),
            fp.iter().sum::<usize>(),
            fn_.iter().sum::<usize>(),
        );
        let micro_precision = ratio(all_tp, all_tp + all_fp);
        let micro_recall = ratio(all_tp, all_tp + all_fn);
        let n = truth.len();
        Ok(Self {
            examples: n,
            macro_f1: if labels == 0 {
                0.0
            } else {
                per_label.iter().map(|s| s.f1).sum::<f64>() / labels as f64
            },
            per_label,
            micro_precision,
            micro_recall,
            micro_f1: f1(micro_precision, micro_recall),
            samples_f1: if n == 0 { 0.0 } else { samples_f1 / n as f64 },
            subset_accuracy: ratio(exact, n),
            hamming_loss: ratio(wrong, n * labels),
            loss,
        })
    }
}

/// Each probability at or above `threshold` is a predicted label (transformers' multi-label
/// examples use 0.5 on the sigmoid).
pub fn decide(probabilities: &[Vec<f32>], threshold: f32) -> Vec<Vec<bool>> {
    probabilities
        .iter()
        .map(|row| row.iter().map(|&p| p >= threshold).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Fixture {
        cases: Vec<Case>,
    }
    #[derive(Deserialize)]
    struct Case {
        name: String,
        truth: Vec<Vec<u8>>,
        pred: Vec<Vec<u8>>,
        precision: Vec<f64>,
        recall: Vec<f64>,
        f1: Vec<f64>,
        support: Vec<usize>,
        micro_f1: f64,
        micro_precision: f64,
        micro_recall: f64,
        macro_f1: f64,
        samples_f1: f64,
        subset_accuracy: f64,
        hamming_loss: f64,
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12
    }

    /// scikit-learn's figures on seeded label sets (tests/fixtures/multilabel-metrics.json, from
    /// scripts/reference/make_metric_fixtures.py): dense, sparse with a label nobody has, and
    /// rows with no label at all.
    #[test]
    fn metrics_equal_scikit_learn() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/multilabel-metrics.json"
        );
        let fixture: Fixture =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(fixture.cases.len() >= 3, "the fixture holds its cases");
        let bools = |rows: &[Vec<u8>]| -> Vec<Vec<bool>> {
            rows.iter()
                .map(|r| r.iter().map(|&x| x == 1).collect())
                .collect()
        };
        for case in &fixture.cases {
            let m = MultiLabelMetrics::new(&bools(&case.truth), &bools(&case.pred), None).unwrap();
            let name = &case.name;
            for (l, s) in m.per_label.iter().enumerate() {
                assert!(
                    close(s.precision, case.precision[l]),
                    "{name} label {l} precision"
                );
                assert!(close(s.recall, case.recall[l]), "{name} label {l} recall");
                assert!(close(s.f1, case.f1[l]), "{name} label {l} f1");
                assert_eq!(s.support, case.support[l], "{name} label {l} support");
            }
            for (what, ours, theirs) in [
                ("micro f1", m.micro_f1, case.micro_f1),
                ("micro precision", m.micro_precision, case.micro_precision),
                ("micro recall", m.micro_recall, case.micro_recall),
                ("macro f1", m.macro_f1, case.macro_f1),
                ("samples f1", m.samples_f1, case.samples_f1),
                ("subset accuracy", m.subset_accuracy, case.subset_accuracy),
                ("hamming loss", m.hamming_loss, case.hamming_loss),
            ] {
                assert!(close(ours, theirs), "{name} {what}: {ours} vs {theirs}");
            }
        }
    }

    #[test]
    fn ragged_rows_are_refused_and_thresholds_decide() {
        let err = MultiLabelMetrics::new(&[vec![true, false]], &[vec![true]], None).unwrap_err();
        assert!(err.contains("row 1"), "{err}");
        assert_eq!(
            decide(&[vec![0.5, 0.49, 0.9]], 0.5),
            vec![vec![true, false, true]]
        );
    }
}
