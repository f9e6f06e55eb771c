//! ELECTRA's discriminator (`model_type` `electra`), as transformers' `modeling_electra.py`
//! builds it for fine-tuning.
//!
//! `ElectraModel` is BERT's module tree with embeddings of `embedding_size` (128 in
//! electra-small) projected to the hidden size by `embeddings_project`, and no pooler; kiln's
//! [`BertModel`] built from an ELECTRA config is exactly that, under the checkpoint's field name
//! `electra` (`electra.embeddings.word_embeddings.weight`, `electra.embeddings_project.weight`,
//! `electra.encoder.layer.0.attention.self.query.weight`, …). The sequence head is ELECTRA's
//! own: `ElectraClassificationHead`, GELU between two dense layers on the first token.

use burn::nn::{Dropout, Linear};
use burn::prelude::*;

use kiln_data::TokenBatch;

use crate::bert::{dropout, linear, pool_tokens, BertModel, Pooling};
use crate::config::BertConfig;
use crate::dropout as host_dropout;

/// `ElectraClassificationHead`: dropout, dense, GELU, dropout, `out_proj`.
#[derive(Module, Debug)]
pub struct ElectraClassificationHead {
    pub dense: Linear,
    pub dropout: Dropout,
    pub out_proj: Linear,
}

impl ElectraClassificationHead {
    pub fn new(config: &BertConfig, num_labels: usize, device: &Device) -> Self {
        Self {
            dense: linear(config.hidden_size, config.hidden_size, device),
            dropout: dropout(config.classifier_dropout_prob()),
            out_proj: linear(config.hidden_size, num_labels, device),
        }
    }

    /// `[batch, hidden]` → `[batch, num_labels]`. The activation is GELU (erf) whatever
    /// `hidden_act` says, as transformers hard-codes it.
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        let x = host_dropout::forward(&self.dropout, features);
        let x = crate::activation::gelu(self.dense.forward(x));
        let x = host_dropout::forward(&self.dropout, x);
        self.out_proj.forward(x)
    }
}

/// `ElectraForSequenceClassification`: the encoder and [`ElectraClassificationHead`] on the
/// first token, or on the mean of the tokens with [`Pooling::Mean`].
#[derive(Module, Debug)]
pub struct ElectraForSequenceClassification {
    pub electra: BertModel,
    pub classifier: ElectraClassificationHead,
    #[module(skip)]
    pub pooling: Pooling,
}

impl ElectraForSequenceClassification {
    pub fn new(config: &BertConfig, num_labels: usize, pooling: Pooling, device: &Device) -> Self {
        Self {
            electra: BertModel::new(config, false, device),
            classifier: ElectraClassificationHead::new(config, num_labels, device),
            pooling,
        }
    }

    pub fn num_labels(&self) -> usize {
        self.classifier.out_proj.weight.dims()[1]
    }

    /// What the head reads of each example of `b` (padded or packed): `[examples, hidden]`.
    pub fn features_of(&self, b: TokenBatch) -> Tensor<2> {
        let hidden = self.electra.encode_batch(&b);
        pool_tokens(hidden, &b, self.pooling)
    }

    /// Logits from features: `[examples, hidden]` → `[examples, num_labels]`.
    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        let features = features.cast(self.classifier.dense.weight.val().dtype());
        self.classifier.forward(features)
    }
}

/// `ElectraForTokenClassification`: the encoder, dropout and a linear layer on every token.
#[derive(Module, Debug)]
pub struct ElectraForTokenClassification {
    pub electra: BertModel,
    pub dropout: Dropout,
    pub classifier: Linear,
}

impl ElectraForTokenClassification {
    pub fn new(config: &BertConfig, num_labels: usize, device: &Device) -> Self {
        Self {
            electra: BertModel::new(config, false, device),
            dropout: dropout(config.classifier_dropout_prob()),
            classifier: linear(config.hidden_size, num_labels, device),
        }
    }

    pub fn num_labels(&self) -> usize {
        self.classifier.weight.dims()[1]
    }

    /// Every token's last hidden state of `b`, a row per token: `[rows × seq, hidden]`.
    pub fn token_features_of(&self, b: TokenBatch) -> Tensor<2> {
        crate::bert::token_rows(
            self.electra.encode_batch(&b),
            self.classifier.weight.val().dtype(),
        )
    }

    /// Logits from token rows: `[rows, hidden]` → `[rows, num_labels]`.
    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        self.classifier
            .forward(host_dropout::forward(&self.dropout, features))
    }
}
