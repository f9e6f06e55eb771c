//! Weight-space ensembling (WiSE-FT, Wortsman et al. 2022): a fine-tuned classifier's encoder
//! moved back toward the pretrained encoder it started from, `(1 − α)·pretrained + α·fine-tuned`
//! tensor by tensor. The head, which the pretrained model does not have, stays the fine-tuned
//! one. α = 1 is the fine-tuned model; α = 0 is its head on the pretrained encoder. A pooler the
//! pretrained checkpoint lacks (the fine-tuned model then trained one from scratch) is kept as
//! fine-tuned.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;

use crate::auto::{Encoder, SequenceClassifier};
use crate::bert::BertClassifier;
use crate::deberta_v2::DebertaV2ForSequenceClassification;
use crate::distilbert::DistilBertForSequenceClassification;
use crate::electra::ElectraForSequenceClassification;
use crate::error::ModelError;
use crate::modernbert::ModernBertForSequenceClassification;
use crate::roberta::RobertaForSequenceClassification;

/// Blends each parameter with the pretrained one of the same path.
struct Blend {
    path: Vec<String>,
    pretrained: BTreeMap<String, Vec<f32>>,
    alpha: f64,
    blended: usize,
    kept: Vec<String>,
    problems: Vec<String>,
}

impl ModuleMapper for Blend {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.path.join(".");
        let Some(base) = self.pretrained.get(&path) else {
            if path.starts_with("pooler.") {
                self.kept.push(path);
            } else {
                self.problems
                    .push(format!("{path} is not in the pretrained encoder"));
            }
            return param;
        };
        let alpha = self.alpha;
        param.map(|tuned| {
            let shape = tuned.shape();
            if shape.num_elements() != base.len() {
                self.problems.push(format!(
                    "{path} has {} values in the fine-tuned model but {} in the pretrained one",
                    shape.num_elements(),
                    base.len()
                ));
                return tuned;
            }
            self.blended += 1;
            let base = Tensor::<D>::from_data(
                TensorData::new(base.clone(), shape),
                (&tuned.device(), tuned.dtype()),
            );
            base * (1.0 - alpha) + tuned * alpha
        })
    }
}

/// What [`interpolate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpolation {
    /// Encoder tensors blended.
    pub blended: usize,
    /// Fine-tuned tensors kept as they are because the pretrained encoder has none (its pooler).
    pub kept: Vec<String>,
}

/// `finetuned` with its encoder at `(1 − alpha)·pretrained + alpha·finetuned`; errors name every
/// tensor the two encoders do not share (another architecture, another size) and an `alpha`
/// outside [0, 1].
pub fn interpolate(
    pretrained: &Encoder,
    finetuned: SequenceClassifier,
    alpha: f64,
) -> Result<(SequenceClassifier, Interpolation), ModelError> {
    Ok(match finetuned {
        SequenceClassifier::Bert(m) => {
            let (bert, report) = interpolate_encoder(pretrained, m.bert, alpha)?;
            (BertClassifier { bert, ..m }.into(), report)
        }
        SequenceClassifier::Roberta(m) => {
            let (roberta, report) = interpolate_encoder(pretrained, m.roberta, alpha)?;
            (
                RobertaForSequenceClassification { roberta, ..m }.into(),
                report,
            )
        }
        SequenceClassifier::Electra(m) => {
            let (electra, report) = interpolate_encoder(pretrained, m.electra, alpha)?;
            (
                ElectraForSequenceClassification { electra, ..m }.into(),
                report,
            )
        }
        SequenceClassifier::DebertaV2(m) => {
            let (deberta, report) = interpolate_encoder(pretrained, m.deberta, alpha)?;
            (
                DebertaV2ForSequenceClassification { deberta, ..m }.into(),
                report,
            )
        }
        SequenceClassifier::ModernBert(m) => {
            let (model, report) = interpolate_encoder(pretrained, m.model, alpha)?;
            (
                ModernBertForSequenceClassification { model, ..m }.into(),
                report,
            )
        }
        SequenceClassifier::DistilBert(m) => {
            let (distilbert, report) = interpolate_encoder(pretrained, m.distilbert, alpha)?;
            (
                DistilBertForSequenceClassification { distilbert, ..m }.into(),
                report,
            )
        }
    })
}

/// `finetuned` at `(1 − alpha)·pretrained + alpha·finetuned`, tensor by tensor.
pub fn interpolate_encoder<M: Module>(
    pretrained: &Encoder,
    finetuned: M,
    alpha: f64,
) -> Result<(M, Interpolation), ModelError> {
    if !(0.0..=1.0).contains(&alpha) {
        return Err(ModelError::Invalid {
            what: "alpha".into(),
            message: format!("must be in [0, 1], got {alpha}"),
        });
    }
    let mut blend = Blend {
        path: Vec::new(),
        pretrained: pretrained.values(),
        alpha,
        blended: 0,
        kept: Vec::new(),
        problems: Vec::new(),
    };
    let encoder = finetuned.map(&mut blend);
    if !blend.problems.is_empty() {
        return Err(ModelError::Invalid {
            what: "pretrained".into(),
            message: format!(
                "not the encoder the model was fine-tuned from: {}",
                blend.problems.join("; ")
            ),
        });
    }
    Ok((
        encoder,
        Interpolation {
            blended: blend.blended,
            kept: blend.kept,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bert::BertModel;
    use crate::bert::Pooling;
    use crate::config::BertConfig;

    fn config(hidden: usize) -> BertConfig {
        BertConfig::from_json_str(&format!(
            r#"{{"vocab_size": 30, "hidden_size": {hidden}, "num_hidden_layers": 2,
                "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16}}"#
        ))
        .unwrap()
    }

    fn values<M: Module>(m: &M) -> BTreeMap<String, Vec<f32>> {
        crate::drift::param_values(m)
    }

    #[test]
    fn the_encoder_is_blended_and_the_head_kept() {
        let _rng = crate::rng_lock();
        let device = Device::flex();
        device.seed(1);
        let pretrained = Encoder::Bert(BertModel::new(&config(8), true, &device));
        device.seed(2);
        let tuned = BertClassifier::new(&config(8), 3, Pooling::Cls, &device);
        let (a, b) = (pretrained.values(), values(&tuned));
        for alpha in [0.0, 0.25, 1.0] {
            let (mixed, report) = interpolate(&pretrained, tuned.clone().into(), alpha).unwrap();
            let SequenceClassifier::Bert(mixed) = mixed else {
                panic!("the family changed")
            };
            assert_eq!(report.blended, a.len());
            assert!(report.kept.is_empty());
            let m = values(&mixed);
            for (path, got) in &m {
                let want: Vec<f32> = match path.strip_prefix("bert.") {
                    Some(inner) => a[inner]
                        .iter()
                        .zip(&b[path])
                        .map(|(x, y)| ((1.0 - alpha) * *x as f64 + alpha * *y as f64) as f32)
                        .collect(),
                    None => b[path].clone(),
                };
                let d = got
                    .iter()
                    .zip(&want)
                    .map(|(g, w)| (g - w).abs())
                    .fold(0f32, f32::max);
                assert!(d <= 1e-6, "alpha {alpha} {path}: {d}");
            }
        }
    }

    #[test]
    fn other_encoders_and_alphas_are_refused_and_a_missing_pooler_kept() {
        let _rng = crate::rng_lock();
        let device = Device::flex();
        let tuned = BertClassifier::new(&config(8), 3, Pooling::Cls, &device);
        let wider = Encoder::Bert(BertModel::new(&config(12), true, &device));
        let err = interpolate(&wider, tuned.clone().into(), 0.5)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("embeddings.word_embeddings.weight has 240 values in the fine-tuned"),
            "{err}"
        );
        let same = Encoder::Bert(BertModel::new(&config(8), true, &device));
        for alpha in [-0.1, 1.5, f64::NAN] {
            assert!(
                interpolate(&same, tuned.clone().into(), alpha).is_err(),
                "{alpha}"
            );
        }
        let no_pooler = Encoder::Bert(BertModel::new(&config(8), false, &device));
        let (_, report) = interpolate(&no_pooler, tuned.into(), 0.5).unwrap();
        assert_eq!(report.kept, ["pooler.dense.weight", "pooler.dense.bias"]);
    }
}
