//! Classification metrics: the confusion matrix and what is computed from it.
//!
//! The numbers follow scikit-learn exactly, so that a run can be checked against a Python
//! baseline:
//!
//! * per class, `precision_recall_fscore_support(y_true, y_pred, labels=range(n),
//!   average=None, zero_division=0)`: precision `tp / (tp + fp)`, recall `tp / (tp + fn)`,
//!   F1 `2·tp / (2·tp + fp + fn)`, and `0.0` wherever a denominator is zero;
//! * macro precision, recall and F1 are the unweighted means of the per-class values over
//!   **every** class of the label set, including classes that have no support in this split
//!   (which then count with F1 = 0 and pull the mean down). This is what scikit-learn does when
//!   the label set is passed with `labels=`; without it scikit-learn would average over the
//!   labels present in `y_true ∪ y_pred` only. A fixed label set makes numbers comparable across
//!   splits and epochs;
//! * macro F1 is the mean of the per-class F1 scores (`f1_score(average="macro")`), not the
//!   harmonic mean of macro precision and macro recall;
//! * accuracy is `trace / total`, and `0.0` for an empty matrix (never NaN).

use serde::{Deserialize, Serialize};

/// A confusion matrix: `counts[t][p]` is the number of examples of true class `t` that were
/// predicted as class `p`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    /// `counts[true][predicted]`; square, `num_classes × num_classes`.
    pub counts: Vec<Vec<u64>>,
}

impl ConfusionMatrix {
    /// An all-zero `num_classes × num_classes` matrix.
    pub fn new(num_classes: usize) -> Self {
        ConfusionMatrix {
            counts: vec![vec![0; num_classes]; num_classes],
        }
    }

    /// The number of classes (rows).
    pub fn num_classes(&self) -> usize {
        self.counts.len()
    }

    /// Counts one example of true class `truth` predicted as `predicted`.
    ///
    /// # Panics
    /// If either index is not below [`ConfusionMatrix::num_classes`].
    pub fn add(&mut self, truth: usize, predicted: usize) {
        let n = self.num_classes();
        assert!(
            truth < n && predicted < n,
            "confusion matrix: class index out of range (truth {truth}, predicted {predicted}, {n} classes)"
        );
        self.counts[truth][predicted] += 1;
    }

    /// The matrix of paired `truth[i]`, `predicted[i]` class indices.
    ///
    /// # Panics
    /// If the slices differ in length or an index is not below `num_classes`.
    pub fn from_predictions(truth: &[usize], predicted: &[usize], num_classes: usize) -> Self {
        assert_eq!(
            truth.len(),
            predicted.len(),
            "confusion matrix: {} true labels but {} predictions",
            truth.len(),
            predicted.len()
        );
        let mut cm = ConfusionMatrix::new(num_classes);
        for (&t, &p) in truth.iter().zip(predicted) {
            cm.add(t, p);
        }
        cm
    }

    /// The number of examples counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// The number of correctly classified examples (the diagonal).
    pub fn correct(&self) -> u64 {
        (0..self.num_classes()).map(|i| self.get(i, i)).sum()
    }

    /// `counts[truth][predicted]`, or 0 outside the matrix (a deserialized matrix might be
    /// ragged; the metrics treat missing cells as zero instead of panicking).
    pub fn get(&self, truth: usize, predicted: usize) -> u64 {
        self.counts
            .get(truth)
            .and_then(|row| row.get(predicted))
            .copied()
            .unwrap_or(0)
    }

    /// Adds `other`'s counts to this matrix (e.g. the matrices of several batches).
    ///
    /// # Panics
    /// If the two matrices are not the same size.
    pub fn merge(&mut self, other: &Self) {
        assert_eq!(
            self.num_classes(),
            other.num_classes(),
            "confusion matrix: cannot merge {} classes into {}",
            other.num_classes(),
            self.num_classes()
        );
        for (row, other_row) in self.counts.iter_mut().zip(&other.counts) {
            assert_eq!(row.len(), other_row.len(), "confusion matrix: ragged rows");
            for (c, o) in row.iter_mut().zip(other_row) {
                *c += o;
            }
        }
    }
}

/// Precision, recall and F1 of one class (one-vs-rest), with its support.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// The class label.
    pub label: String,
    /// `tp / (tp + fp)`; 0 when the class is never predicted.
    pub precision: f64,
    /// `tp / (tp + fn)`; 0 when the class has no support.
    pub recall: f64,
    /// `2·tp / (2·tp + fp + fn)`; 0 when that denominator is 0.
    pub f1: f64,
    /// The number of examples whose true class this is.
    pub support: u64,
}

/// Everything reported about one evaluation pass; see the module docs for the definitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    /// The number of examples evaluated (the matrix total).
    pub examples: u64,
    /// The mean loss over the pass, if one was computed.
    pub loss: Option<f64>,
    /// `trace / total`; 0 when there were no examples.
    pub accuracy: f64,
    /// Macro-averaged precision (unweighted mean over all classes).
    pub precision: f64,
    /// Macro-averaged recall (unweighted mean over all classes).
    pub recall: f64,
    /// Macro-averaged F1 (unweighted mean of the per-class F1 scores).
    pub macro_f1: f64,
    /// One entry per class, in class-index order.
    pub per_class: Vec<ClassMetrics>,
    /// The confusion matrix counts, `confusion[true][predicted]`.
    pub confusion: Vec<Vec<u64>>,
    /// Class labels in index order (the same order as `per_class` and `confusion`).
    pub labels: Vec<String>,
}

/// `num / den`, or 0 when `den` is 0 (scikit-learn's `zero_division=0`).
fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// The mean of `values`, 0 for none.
fn mean(values: impl ExactSizeIterator<Item = f64>) -> f64 {
    let n = values.len();
    if n == 0 {
        0.0
    } else {
        values.sum::<f64>() / n as f64
    }
}

impl ClassificationMetrics {
    /// Computes the metrics of `cm`, with class `i` named `labels[i]`.
    ///
    /// The classes are all `max(cm.num_classes(), labels.len())` of them: a label beyond the
    /// matrix is a class that never occurred and was never predicted (it still counts in the
    /// macro averages, with zeros), and a class beyond `labels` is named by its index.
    pub fn compute(cm: &ConfusionMatrix, labels: &[String], loss: Option<f64>) -> Self {
        let n = cm.num_classes().max(labels.len());
        let names: Vec<String> = (0..n)
            .map(|i| labels.get(i).cloned().unwrap_or_else(|| i.to_string()))
            .collect();
        let row_sum = |t: usize| (0..n).map(|p| cm.get(t, p)).sum::<u64>();
        let col_sum = |p: usize| (0..n).map(|t| cm.get(t, p)).sum::<u64>();

        let per_class: Vec<ClassMetrics> = names
            .iter()
            .enumerate()
            .map(|(i, label)| {
                let tp = cm.get(i, i);
                let support = row_sum(i);
                let predicted = col_sum(i);
                let fn_ = support - tp;
                let fp = predicted - tp;
                ClassMetrics {
                    label: label.clone(),
                    precision: ratio(tp, predicted),
                    recall: ratio(tp, support),
                    f1: ratio(2 * tp, 2 * tp + fp + fn_),
                    support,
                }
            })
            .collect();

        let total = cm.total();
        ClassificationMetrics {
            examples: total,
            loss,
            accuracy: ratio(cm.correct(), total),
            precision: mean(per_class.iter().map(|c| c.precision)),
            recall: mean(per_class.iter().map(|c| c.recall)),
            macro_f1: mean(per_class.iter().map(|c| c.f1)),
            confusion: (0..n)
                .map(|t| (0..n).map(|p| cm.get(t, p)).collect())
                .collect(),
            per_class,
            labels: names,
        }
    }

    /// The confusion matrix these metrics were computed from.
    pub fn confusion_matrix(&self) -> ConfusionMatrix {
        ConfusionMatrix {
            counts: self.confusion.clone(),
        }
    }
}

/// The index of the largest logit in each row of row-major `[batch × num_classes]` logits.
///
/// Ties go to the lowest index (like `numpy.argmax`). NaN logits are never chosen; a row of
/// nothing but NaN gives 0. `num_classes == 0` gives no rows.
///
/// # Panics
/// If `logits.len()` is not a multiple of `num_classes`.
pub fn argmax_rows(logits: &[f32], num_classes: usize) -> Vec<usize> {
    if num_classes == 0 {
        assert!(logits.is_empty(), "argmax_rows: logits for zero classes");
        return Vec::new();
    }
    assert!(
        logits.len().is_multiple_of(num_classes),
        "argmax_rows: {} logits is not a whole number of rows of {num_classes}",
        logits.len()
    );
    logits
        .chunks_exact(num_classes)
        .map(|row| {
            let mut best: Option<(usize, f32)> = None;
            for (i, &v) in row.iter().enumerate() {
                if v.is_nan() {
                    continue;
                }
                if best.is_none_or(|(_, b)| v > b) {
                    best = Some((i, v));
                }
            }
            best.map_or(0, |(i, _)| i)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[track_caller]
    fn assert_close(actual: f64, expected: f64) {
        assert!(close(actual, expected), "{actual} != {expected}");
    }

    #[track_caller]
    fn assert_all_close(actual: &[f64], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len());
        for (a, e) in actual.iter().zip(expected) {
            assert_close(*a, *e);
        }
    }

    fn column(m: &ClassificationMetrics, f: impl Fn(&ClassMetrics) -> f64) -> Vec<f64> {
        m.per_class.iter().map(f).collect()
    }

    #[test]
    fn confusion_matrix_basics() {
        let mut cm = ConfusionMatrix::new(3);
        assert_eq!(cm.total(), 0);
        cm.add(0, 0);
        cm.add(0, 2);
        cm.add(2, 2);
        assert_eq!(cm.counts, vec![vec![1, 0, 1], vec![0, 0, 0], vec![0, 0, 1]]);
        assert_eq!(cm.total(), 3);
        assert_eq!(cm.correct(), 2);

        let other = ConfusionMatrix::from_predictions(&[1, 1, 0], &[1, 0, 0], 3);
        assert_eq!(
            other.counts,
            vec![vec![1, 0, 0], vec![1, 1, 0], vec![0, 0, 0]]
        );
        cm.merge(&other);
        assert_eq!(cm.counts, vec![vec![2, 0, 1], vec![1, 1, 0], vec![0, 0, 1]]);
        assert_eq!(cm.total(), 6);

        let json = serde_json::to_string(&cm).unwrap();
        assert_eq!(json, r#"{"counts":[[2,0,1],[1,1,0],[0,0,1]]}"#);
        assert_eq!(serde_json::from_str::<ConfusionMatrix>(&json).unwrap(), cm);
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn add_out_of_range_panics() {
        ConfusionMatrix::new(2).add(0, 2);
    }

    #[test]
    #[should_panic(expected = "cannot merge")]
    fn merge_size_mismatch_panics() {
        ConfusionMatrix::new(2).merge(&ConfusionMatrix::new(3));
    }

    #[test]
    #[should_panic(expected = "predictions")]
    fn from_predictions_length_mismatch_panics() {
        ConfusionMatrix::from_predictions(&[0, 1], &[0], 2);
    }

    #[test]
    fn binary_by_hand() {
        // truth:     1 1 1 1 0 0 0 0 0 0
        // predicted: 1 1 1 0 0 0 0 0 1 1
        // class 1: tp 3, fp 2, fn 1 → P 3/5, R 3/4, F1 6/9
        // class 0: tp 4, fp 1, fn 2 → P 4/5, R 4/6, F1 8/11
        let truth = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0];
        let pred = [1, 1, 1, 0, 0, 0, 0, 0, 1, 1];
        let cm = ConfusionMatrix::from_predictions(&truth, &pred, 2);
        assert_eq!(cm.counts, vec![vec![4, 2], vec![1, 3]]);
        let m = ClassificationMetrics::compute(&cm, &labels(&["neg", "pos"]), Some(0.5));
        assert_eq!(m.examples, 10);
        assert_eq!(m.loss, Some(0.5));
        assert_close(m.accuracy, 0.7);
        assert_all_close(&column(&m, |c| c.precision), &[4.0 / 5.0, 3.0 / 5.0]);
        assert_all_close(&column(&m, |c| c.recall), &[4.0 / 6.0, 3.0 / 4.0]);
        assert_all_close(&column(&m, |c| c.f1), &[8.0 / 11.0, 6.0 / 9.0]);
        assert_eq!(m.per_class[0].support, 6);
        assert_eq!(m.per_class[1].support, 4);
        assert_eq!(m.per_class[1].label, "pos");
        assert_close(m.precision, 0.7);
        assert_close(m.recall, (4.0 / 6.0 + 0.75) / 2.0);
        assert_close(m.macro_f1, (8.0 / 11.0 + 6.0 / 9.0) / 2.0);
        // scikit-learn 1.9.1: f1_score(truth, pred, average="macro") = 0.696969696969697,
        // precision_recall_fscore_support(..., average=None)
        //   = ([0.8, 0.6], [0.6666666666666666, 0.75], [0.7272727272727273, 0.6666666666666666])
        assert_close(m.macro_f1, 0.696969696969697);
        assert_all_close(
            &column(&m, |c| c.f1),
            &[0.7272727272727273, 0.6666666666666666],
        );
        assert_eq!(m.confusion, cm.counts);
        assert_eq!(m.labels, labels(&["neg", "pos"]));
        assert_eq!(m.confusion_matrix(), cm);
    }

    #[test]
    fn three_classes_one_never_predicted() {
        // Class 2 ("c") has support 2 but is never predicted: P = 0 (zero_division), R = 0, F1 = 0.
        let truth = [0, 0, 0, 1, 1, 2, 2, 1];
        let pred = [0, 1, 0, 1, 1, 0, 1, 1];
        let cm = ConfusionMatrix::from_predictions(&truth, &pred, 3);
        assert_eq!(cm.counts, vec![vec![2, 1, 0], vec![0, 3, 0], vec![1, 1, 0]]);
        let m = ClassificationMetrics::compute(&cm, &labels(&["a", "b", "c"]), None);
        // class 0: tp 2, fp 1, fn 1 → P 2/3, R 2/3, F1 2/3
        // class 1: tp 3, fp 2, fn 0 → P 3/5, R 1,   F1 6/8
        assert_close(m.accuracy, 5.0 / 8.0);
        assert_all_close(&column(&m, |c| c.precision), &[2.0 / 3.0, 0.6, 0.0]);
        assert_all_close(&column(&m, |c| c.recall), &[2.0 / 3.0, 1.0, 0.0]);
        assert_all_close(&column(&m, |c| c.f1), &[2.0 / 3.0, 0.75, 0.0]);
        assert_eq!(
            m.per_class.iter().map(|c| c.support).collect::<Vec<_>>(),
            vec![3, 3, 2]
        );
        // scikit-learn 1.9.1, labels=[0, 1, 2], zero_division=0:
        //   precision_score(average="macro") = 0.4222222222222222
        //   recall_score(average="macro")    = 0.5555555555555555
        //   f1_score(average="macro")        = 0.47222222222222215
        assert!((m.precision - 0.4222222222222222).abs() < 1e-15);
        assert!((m.recall - 0.5555555555555555).abs() < 1e-15);
        assert!((m.macro_f1 - 0.47222222222222215).abs() < 1e-15);
        assert_eq!(m.loss, None);
    }

    #[test]
    fn four_classes_one_without_support() {
        // Class 3 ("d") never occurs in the truth but is predicted once: P 0, R 0 (no support),
        // F1 0; it still counts in the macro averages because it is in the label set.
        let truth = [0, 0, 1, 1, 1, 2, 2, 2, 2, 0];
        let pred = [0, 3, 1, 1, 2, 2, 2, 2, 1, 0];
        let cm = ConfusionMatrix::from_predictions(&truth, &pred, 4);
        let m = ClassificationMetrics::compute(&cm, &labels(&["a", "b", "c", "d"]), Some(1.25));
        // class 0: tp 2, fp 0, fn 1 → P 1,   R 2/3, F1 4/5
        // class 1: tp 2, fp 1, fn 1 → P 2/3, R 2/3, F1 2/3
        // class 2: tp 3, fp 1, fn 1 → P 3/4, R 3/4, F1 3/4
        // class 3: tp 0, fp 1, fn 0 → P 0,   R 0,   F1 0
        assert_close(m.accuracy, 0.7);
        assert_all_close(&column(&m, |c| c.precision), &[1.0, 2.0 / 3.0, 0.75, 0.0]);
        assert_all_close(
            &column(&m, |c| c.recall),
            &[2.0 / 3.0, 2.0 / 3.0, 0.75, 0.0],
        );
        assert_all_close(&column(&m, |c| c.f1), &[0.8, 2.0 / 3.0, 0.75, 0.0]);
        assert_eq!(m.per_class[3].support, 0);
        // scikit-learn 1.9.1, labels=[0, 1, 2, 3], zero_division=0:
        //   precision_score(average="macro") = 0.6041666666666666
        //   recall_score(average="macro")    = 0.5208333333333333
        //   f1_score(average="macro")        = 0.5541666666666667
        assert!((m.precision - 0.6041666666666666).abs() < 1e-15);
        assert!((m.recall - 0.5208333333333333).abs() < 1e-15);
        assert!((m.macro_f1 - 0.5541666666666667).abs() < 1e-15);
    }

    #[test]
    fn labels_beyond_the_matrix_count_as_empty_classes() {
        let cm = ConfusionMatrix::from_predictions(&[0, 1], &[0, 1], 2);
        let m = ClassificationMetrics::compute(&cm, &labels(&["x", "y", "z"]), None);
        assert_eq!(m.per_class.len(), 3);
        assert_eq!(
            m.confusion,
            vec![vec![1, 0, 0], vec![0, 1, 0], vec![0, 0, 0]]
        );
        assert_close(m.accuracy, 1.0);
        assert_close(m.macro_f1, 2.0 / 3.0);

        // And classes beyond the labels are named by index.
        let m = ClassificationMetrics::compute(&cm, &labels(&["x"]), None);
        assert_eq!(m.labels, labels(&["x", "1"]));
        assert_close(m.macro_f1, 1.0);
    }

    #[test]
    fn empty_matrix_is_all_zero_never_nan() {
        let m = ClassificationMetrics::compute(
            &ConfusionMatrix::new(3),
            &labels(&["a", "b", "c"]),
            None,
        );
        assert_eq!(m.examples, 0);
        for v in [m.accuracy, m.precision, m.recall, m.macro_f1] {
            assert_eq!(v, 0.0);
        }
        for c in &m.per_class {
            assert_eq!((c.precision, c.recall, c.f1, c.support), (0.0, 0.0, 0.0, 0));
        }
        let none = ClassificationMetrics::compute(&ConfusionMatrix::new(0), &[], None);
        assert_eq!((none.accuracy, none.macro_f1), (0.0, 0.0));
        assert!(none.per_class.is_empty());
        // Serializes to valid JSON (no NaN).
        let json = serde_json::to_string(&m).unwrap();
        let back: ClassificationMetrics = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn ragged_matrix_does_not_panic() {
        let cm = ConfusionMatrix {
            counts: vec![vec![3], vec![1, 2]],
        };
        let m = ClassificationMetrics::compute(&cm, &labels(&["a", "b"]), None);
        assert_eq!(m.confusion, vec![vec![3, 0], vec![1, 2]]);
        assert_close(m.accuracy, 5.0 / 6.0);
    }

    #[test]
    fn argmax_rows_ties_and_nan() {
        let logits = [
            0.1,
            0.9,
            0.3, //
            2.0,
            2.0,
            1.0, // tie → lowest index
            -1.0,
            -3.0,
            -0.5, //
            f32::NAN,
            0.2,
            0.1, // NaN ignored
            f32::NAN,
            f32::NAN,
            f32::NAN, // all NaN → 0
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
            f32::INFINITY,
        ];
        assert_eq!(argmax_rows(&logits, 3), vec![1, 0, 2, 1, 0, 2]);
        assert_eq!(argmax_rows(&[], 3), Vec::<usize>::new());
        assert_eq!(argmax_rows(&[], 0), Vec::<usize>::new());
        assert_eq!(argmax_rows(&[5.0, 1.0], 1), vec![0, 0]);
    }

    #[test]
    #[should_panic(expected = "whole number of rows")]
    fn argmax_rows_ragged_panics() {
        argmax_rows(&[1.0, 2.0, 3.0], 2);
    }
}
