//! kiln-loss: training objectives over logits — cross-entropy (label smoothing, class weights),
//! knowledge distillation (1−α)·CE + α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)), MSE and Huber for
//! regression heads, binary cross-entropy on logits (with `pos_weight`) for multi-label heads.
//! Takes tensors, returns scalar loss tensors (shape `[1]`); knows nothing of
//! models or data.
//!
//! Every loss reproduces its PyTorch counterpart (`F.cross_entropy`, `F.kl_div`, `F.mse_loss`,
//! `F.huber_loss`, `F.binary_cross_entropy_with_logits`, all with their default `reduction="mean"` / the documented `"batchmean"`) to float32
//! round-off, values and gradients alike; `tests/reference.rs` checks this against
//! `tests/fixtures/losses.json` (made by `scripts/reference/make_loss_fixtures.py`).
//!
//! Probabilities are never formed and then logged: everything goes through `log_softmax`, which
//! subtracts the row maximum first, so logits of magnitude 1e4 give finite losses and gradients.
//!
//! The functions panic on shape mismatches (programming errors). User-facing options (the CLI's
//! `label_smoothing`, `temperature`, `alpha`, `class_weights`) are checked up front by the
//! `validate*` methods, which return [`LossError`]s naming the option.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use serde::{Deserialize, Serialize};

/// An invalid loss option. Messages name the command-line flag the value came from.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LossError {
    #[error("label_smoothing must be in [0, 1), got {0}")]
    LabelSmoothing(f64),
    #[error("temperature must be finite and > 0, got {0}")]
    Temperature(f64),
    #[error("alpha must be in [0, 1], got {0}")]
    Alpha(f64),
    #[error("class_weights has {got} values but the model has {expected} classes")]
    ClassWeightsLength { expected: usize, got: usize },
    #[error("class_weights must be finite and >= 0, got {value} for class {class}")]
    ClassWeightInvalid { class: usize, value: f32 },
    #[error("class_weights are all zero; at least one class must have a positive weight")]
    ClassWeightsAllZero,
    #[error("class_weights is empty")]
    ClassWeightsEmpty,
}

/// `ε ∈ [0, 1)`: at ε = 1 the target would be the uniform distribution and carry no label
/// information. NaN fails the range check too.
pub fn validate_label_smoothing(label_smoothing: f64) -> Result<(), LossError> {
    if (0.0..1.0).contains(&label_smoothing) {
        Ok(())
    } else {
        Err(LossError::LabelSmoothing(label_smoothing))
    }
}

/// Weights must be finite and non-negative with at least one positive. `num_classes`, when known,
/// must equal their number. Zero weights are allowed (they drop a class from the loss), but see
/// [`cross_entropy`] for what happens to a batch in which every target has weight zero.
pub fn validate_class_weights(
    weights: &[f32],
    num_classes: Option<usize>,
) -> Result<(), LossError> {
    if weights.is_empty() {
        return Err(LossError::ClassWeightsEmpty);
    }
    if let Some(expected) = num_classes {
        if weights.len() != expected {
            return Err(LossError::ClassWeightsLength {
                expected,
                got: weights.len(),
            });
        }
    }
    if let Some((class, &value)) = weights
        .iter()
        .enumerate()
        .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
    {
        return Err(LossError::ClassWeightInvalid { class, value });
    }
    if weights.iter().all(|&w| w == 0.0) {
        return Err(LossError::ClassWeightsAllZero);
    }
    Ok(())
}

/// PyTorch's `F.cross_entropy(logits, targets, weight=class_weights, label_smoothing=ε,
/// reduction="mean")` for class-index targets. `logits`: `[batch, classes]`, `targets`:
/// `[batch]` class indices (not checked against `classes`: that would need a device read-back;
/// out-of-range indices give backend-dependent garbage, as in PyTorch on GPU). Returns `[1]`.
///
/// With `lp = log_softmax(logits)`, `w` the class weights (all ones when `None`), `C` classes:
///
/// ```text
/// loss = (1 − ε) · Σ_i w[y_i]·(−lp[i, y_i]) / Σ_i w[y_i]
///      +  ε / C  · Σ_i Σ_c w[c]·(−lp[i, c])  / Σ_i w[y_i]
/// ```
///
/// Two PyTorch details that are easy to get wrong, both reproduced here: the weighted "mean"
/// divides by the total weight of the batch's *targets* (not by the batch size), and the
/// smoothing term weights each class's log-probability by *that class's* weight yet is divided
/// by the same target-weight total. Without weights both denominators are the batch size.
///
/// If every target in the batch has weight zero, the denominator is zero and the loss is NaN —
/// exactly as in PyTorch. Callers that zero out classes should make sure that cannot happen.
pub fn cross_entropy(
    logits: Tensor<2>,
    targets: Tensor<1, Int>,
    label_smoothing: f64,
    class_weights: Option<Tensor<1>>,
) -> Tensor<1> {
    let [batch, num_classes] = logits.dims();
    let [n_targets] = targets.dims();
    assert_eq!(
        n_targets, batch,
        "cross_entropy: {n_targets} targets for {batch} rows of logits"
    );
    let eps = label_smoothing;
    let log_probs = log_softmax(logits, 1);
    // −lp[i, y_i]: [batch]
    let nll: Tensor<1> = log_probs
        .clone()
        .gather(1, targets.clone().unsqueeze_dim::<2>(1))
        .squeeze_dim::<1>(1)
        .neg();

    match class_weights {
        None => {
            let nll = nll.mean();
            if eps == 0.0 {
                return nll;
            }
            // Σ_i Σ_c −lp[i, c] / batch
            let smooth = log_probs.sum().neg().div_scalar(batch as f64);
            nll.mul_scalar(1.0 - eps) + smooth.mul_scalar(eps / num_classes as f64)
        }
        Some(weights) => {
            let [n_weights] = weights.dims();
            assert_eq!(
                n_weights, num_classes,
                "cross_entropy: {n_weights} class weights for {num_classes} classes"
            );
            let target_weights = weights.clone().select(0, targets); // w[y_i]: [batch]
            let norm = target_weights.clone().sum(); // [1]
            let nll = (nll * target_weights).sum() / norm.clone();
            if eps == 0.0 {
                return nll;
            }
            let smooth = (log_probs * weights.unsqueeze::<2>()).sum().neg() / norm;
            nll.mul_scalar(1.0 - eps) + smooth.mul_scalar(eps / num_classes as f64)
        }
    }
}

/// `T² · KL(softmax(teacher/T) ‖ softmax(student/T))` averaged over the batch: PyTorch's
/// `F.kl_div(F.log_softmax(s/T, -1), F.softmax(t/T, -1), reduction="batchmean") * T*T`.
///
/// The teacher's probabilities are taken as `exp(log_softmax)`: a class whose probability
/// underflows to 0 then contributes `0 · (finite)` = 0, as PyTorch's `xlogy` does, where
/// `p·log p` from `softmax` would give `0 · −∞` = NaN. The T² factor keeps the gradient's scale
/// independent of T (Hinton et al. 2015). The teacher is detached: no gradient reaches it.
pub fn distillation_kl(student: Tensor<2>, teacher: Tensor<2>, temperature: f64) -> Tensor<1> {
    assert_eq!(
        student.dims(),
        teacher.dims(),
        "distillation: student and teacher logits differ in shape"
    );
    let [batch, _] = student.dims();
    let log_p_student = log_softmax(student.div_scalar(temperature), 1);
    let log_p_teacher = log_softmax(teacher.detach().div_scalar(temperature), 1);
    let p_teacher = log_p_teacher.clone().exp();
    (p_teacher * (log_p_teacher - log_p_student))
        .sum()
        .mul_scalar(temperature * temperature / batch as f64)
}

/// Mean squared error over all elements, PyTorch's `F.mse_loss(predictions, targets)`
/// (regression heads). Both `[batch, outputs]`; returns `[1]`.
pub fn mse(predictions: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    assert_eq!(
        predictions.dims(),
        targets.dims(),
        "mse: predictions and targets differ in shape"
    );
    (predictions - targets).square().mean()
}

/// Huber loss averaged over all elements, PyTorch's `F.huber_loss(predictions, targets,
/// delta)`: ½·e² where |e| ≤ δ, δ·(|e| − ½·δ) beyond (regression robust to outliers). Both
/// `[batch, outputs]`; returns `[1]`.
pub fn huber(predictions: Tensor<2>, targets: Tensor<2>, delta: f64) -> Tensor<1> {
    assert_eq!(
        predictions.dims(),
        targets.dims(),
        "huber: predictions and targets differ in shape"
    );
    let error = (predictions - targets).abs();
    // |e| split at δ: the quadratic part up to δ, the linear part beyond it.
    let quadratic = error.clone().clamp_max(delta);
    let linear = error - quadratic.clone();
    (quadratic.square() * 0.5 + linear * delta).mean()
}

/// Binary cross-entropy on logits averaged over all elements, PyTorch's
/// `F.binary_cross_entropy_with_logits(logits, targets, pos_weight)` in its stable form
/// `(1 − y)·x + (1 + (w − 1)·y)·(log(1 + e^−|x|) + max(−x, 0))` (multi-label heads: one
/// independent sigmoid per label). `logits` and `targets` (0/1, or soft) are `[batch, labels]`;
/// `pos_weight`, one per label, weighs the positive term (rare labels); returns `[1]`.
pub fn bce_with_logits(
    logits: Tensor<2>,
    targets: Tensor<2>,
    pos_weight: Option<&[f32]>,
) -> Tensor<1> {
    assert_eq!(
        logits.dims(),
        targets.dims(),
        "bce_with_logits: logits and targets differ in shape"
    );
    let softplus_neg =
        logits.clone().abs().neg().exp().log1p() + logits.clone().neg().clamp_min(0.0);
    let positive_scale = match pos_weight {
        Some(w) => {
            let [_, labels] = logits.dims();
            assert_eq!(w.len(), labels, "bce_with_logits: one pos_weight per label");
            let w: Tensor<2> = weight_tensor(w, &logits).reshape([1, labels]);
            (targets.clone() * (w - 1.0)) + 1.0
        }
        None => targets.ones_like(),
    };
    ((targets.neg() + 1.0) * logits + positive_scale * softplus_neg).mean()
}

/// Class weights as a tensor on `like`'s device and in its float dtype (so a bf16 model's
/// logits are not mixed with f32 weights).
fn weight_tensor(weights: &[f32], like: &Tensor<2>) -> Tensor<1> {
    Tensor::from_data(
        TensorData::new(weights.to_vec(), [weights.len()]),
        (&like.device(), like.dtype()),
    )
}

/// Cross-entropy over the rows whose target is a class (`0 ≤ y < C`), the rest skipped —
/// PyTorch's `F.cross_entropy(..., ignore_index=-100)` for token classification, where padding,
/// special tokens and a word's later pieces carry -100. A target at or past `C` (a tag that
/// training never had, in a held-out split) is skipped too. The mean is over the kept rows;
/// with none kept the loss is 0 (PyTorch gives NaN), so a batch without a labelled piece adds
/// nothing. Returns `[1]`.
pub fn cross_entropy_ignoring(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [rows, classes] = logits.dims();
    let [n_targets] = targets.dims();
    assert_eq!(
        n_targets, rows,
        "cross_entropy_ignoring: {n_targets} targets for {rows} rows of logits"
    );
    let kept = targets
        .clone()
        .greater_equal_elem(0)
        .bool_and(targets.clone().lower_elem(classes as i64));
    let safe = targets.mask_fill(kept.clone().bool_not(), 0);
    let nll: Tensor<1> = log_softmax(logits, 1)
        .gather(1, safe.unsqueeze_dim::<2>(1))
        .squeeze_dim::<1>(1)
        .neg();
    let weight = kept.float().cast(nll.dtype());
    let count = weight.clone().sum().clamp_min(1.0);
    (nll * weight).sum() / count
}

/// Knowledge distillation from a teacher's logits:
/// `(1 − α) · CE(y, z_s) + α · T² · KL(softmax(z_t/T) ‖ softmax(z_s/T))`, the KL term with
/// reduction "batchmean" (see [`distillation_kl`]). The CE term is [`cross_entropy`] with this
/// struct's `label_smoothing` and `class_weights`, at temperature 1.
///
/// α = 0 is plain cross-entropy and α = 1 pure distillation; at those ends the unused term is
/// not computed at all (no wasted work, and its graph cannot leak NaN·0 into the gradient).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistillationLoss {
    /// Softmax temperature T > 0 for both teacher and student in the KL term.
    pub temperature: f64,
    /// Weight α ∈ [0, 1] of the distillation term.
    pub alpha: f64,
    /// Label smoothing ε ∈ [0, 1) of the cross-entropy term.
    pub label_smoothing: f64,
    /// Per-class weights of the cross-entropy term (`None`: unweighted).
    #[serde(default)]
    pub class_weights: Option<Vec<f32>>,
}

impl Default for DistillationLoss {
    /// T = 2, α = 0.5: common choices for distilling a fine-tuned BERT classifier.
    fn default() -> Self {
        Self {
            temperature: 2.0,
            alpha: 0.5,
            label_smoothing: 0.0,
            class_weights: None,
        }
    }
}

impl DistillationLoss {
    /// Checks every option except the class-weight count (which needs the model; see
    /// [`Self::validate_for_classes`]).
    pub fn validate(&self) -> Result<(), LossError> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(LossError::Temperature(self.temperature));
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(LossError::Alpha(self.alpha));
        }
        validate_label_smoothing(self.label_smoothing)?;
        if let Some(weights) = &self.class_weights {
            validate_class_weights(weights, None)?;
        }
        Ok(())
    }

    /// [`Self::validate`], plus the class weights' count against the model's classes.
    pub fn validate_for_classes(&self, num_classes: usize) -> Result<(), LossError> {
        self.validate()?;
        match &self.class_weights {
            Some(weights) => validate_class_weights(weights, Some(num_classes)),
            None => Ok(()),
        }
    }

    /// `student`, `teacher`: `[batch, classes]` logits; `targets`: `[batch]`. Returns `[1]`.
    /// The teacher's logits are detached, whether or not they come from an autodiff graph.
    pub fn forward(
        &self,
        student: Tensor<2>,
        teacher: Tensor<2>,
        targets: Tensor<1, Int>,
    ) -> Tensor<1> {
        let alpha = self.alpha;
        if alpha == 1.0 {
            return distillation_kl(student, teacher, self.temperature);
        }
        let weights = self
            .class_weights
            .as_deref()
            .map(|w| weight_tensor(w, &student));
        let hard = cross_entropy(student.clone(), targets, self.label_smoothing, weights);
        if alpha == 0.0 {
            return hard;
        }
        let soft = distillation_kl(student, teacher, self.temperature);
        hard.mul_scalar(1.0 - alpha) + soft.mul_scalar(alpha)
    }
}

/// The supervised objective a trainer holds (serialisable into run configs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Loss {
    /// [`cross_entropy`] with these options; the weight tensor is built on the logits' device.
    CrossEntropy {
        label_smoothing: f64,
        #[serde(default)]
        class_weights: Option<Vec<f32>>,
    },
}

impl Default for Loss {
    /// Plain cross-entropy.
    fn default() -> Self {
        Loss::CrossEntropy {
            label_smoothing: 0.0,
            class_weights: None,
        }
    }
}

impl Loss {
    /// Checks every option except the class-weight count (see [`Self::validate_for_classes`]).
    pub fn validate(&self) -> Result<(), LossError> {
        match self {
            Loss::CrossEntropy {
                label_smoothing,
                class_weights,
            } => {
                validate_label_smoothing(*label_smoothing)?;
                match class_weights {
                    Some(weights) => validate_class_weights(weights, None),
                    None => Ok(()),
                }
            }
        }
    }

    /// [`Self::validate`], plus the class weights' count against the model's classes.
    pub fn validate_for_classes(&self, num_classes: usize) -> Result<(), LossError> {
        self.validate()?;
        match self {
            Loss::CrossEntropy {
                class_weights: Some(weights),
                ..
            } => validate_class_weights(weights, Some(num_classes)),
            Loss::CrossEntropy { .. } => Ok(()),
        }
    }

    /// `logits`: `[batch, classes]`, `targets`: `[batch]`. Returns `[1]`.
    ///
    /// Half-precision logits are widened to f32 first: the log-softmax and the mean are where
    /// f16 loses most, and this is what autocast does in PyTorch.
    pub fn forward(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        let logits = logits.cast(burn::tensor::FloatDType::F32);
        match self {
            Loss::CrossEntropy {
                label_smoothing,
                class_weights,
            } => {
                let weights = class_weights.as_deref().map(|w| weight_tensor(w, &logits));
                cross_entropy(logits, targets, *label_smoothing, weights)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<(), LossError>) -> String {
        result.expect_err("should be rejected").to_string()
    }

    fn kd(temperature: f64, alpha: f64, label_smoothing: f64) -> DistillationLoss {
        DistillationLoss {
            temperature,
            alpha,
            label_smoothing,
            class_weights: None,
        }
    }

    #[test]
    fn label_smoothing_must_be_in_zero_one() {
        for ok in [0.0, 0.1, 0.999] {
            validate_label_smoothing(ok).unwrap();
        }
        for bad in [-0.1, 1.0, 1.5, f64::NAN, f64::INFINITY] {
            let msg = message(validate_label_smoothing(bad));
            assert!(msg.contains("label_smoothing"), "{msg}");
        }
        let loss = Loss::CrossEntropy {
            label_smoothing: 1.0,
            class_weights: None,
        };
        assert_eq!(loss.validate(), Err(LossError::LabelSmoothing(1.0)));
        assert!(message(kd(2.0, 0.5, -0.5).validate()).contains("label_smoothing"));
    }

    #[test]
    fn temperature_must_be_positive_and_finite() {
        kd(0.01, 0.5, 0.0).validate().unwrap();
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let msg = message(kd(bad, 0.5, 0.0).validate());
            assert!(msg.contains("temperature must"), "{msg}");
        }
    }

    #[test]
    fn alpha_must_be_in_zero_one() {
        for ok in [0.0, 0.5, 1.0] {
            kd(2.0, ok, 0.0).validate().unwrap();
        }
        for bad in [-0.01, 1.01, f64::NAN] {
            let msg = message(kd(2.0, bad, 0.0).validate());
            assert!(msg.contains("alpha must"), "{msg}");
        }
    }

    #[test]
    fn class_weights_are_checked() {
        validate_class_weights(&[0.2, 1.0, 3.0], Some(3)).unwrap();
        validate_class_weights(&[0.0, 1.0], None).unwrap();
        let cases: [(&[f32], Option<usize>, LossError); 6] = [
            (
                &[1.0, 1.0],
                Some(3),
                LossError::ClassWeightsLength {
                    expected: 3,
                    got: 2,
                },
            ),
            (
                &[1.0, -0.5],
                None,
                LossError::ClassWeightInvalid {
                    class: 1,
                    value: -0.5,
                },
            ),
            (
                &[f32::INFINITY],
                None,
                LossError::ClassWeightInvalid {
                    class: 0,
                    value: f32::INFINITY,
                },
            ),
            (&[0.0, 0.0], Some(2), LossError::ClassWeightsAllZero),
            (&[], None, LossError::ClassWeightsEmpty),
            (&[], Some(2), LossError::ClassWeightsEmpty),
        ];
        for (weights, classes, expected) in cases {
            let err = validate_class_weights(weights, classes).unwrap_err();
            assert_eq!(err, expected);
            assert!(err.to_string().contains("class_weights"), "{err}");
        }
        let nan = validate_class_weights(&[1.0, f32::NAN], None).unwrap_err();
        assert!(matches!(
            nan,
            LossError::ClassWeightInvalid { class: 1, .. }
        ));

        let loss = Loss::CrossEntropy {
            label_smoothing: 0.0,
            class_weights: Some(vec![1.0, 2.0]),
        };
        loss.validate().unwrap();
        loss.validate_for_classes(2).unwrap();
        assert!(message(loss.validate_for_classes(3)).contains("has 2 values but the model has 3"));
        let distill = DistillationLoss {
            class_weights: Some(vec![0.0]),
            ..DistillationLoss::default()
        };
        assert_eq!(distill.validate(), Err(LossError::ClassWeightsAllZero));
        assert_eq!(DistillationLoss::default().validate_for_classes(7), Ok(()));
    }
}
