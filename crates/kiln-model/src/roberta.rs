//! RoBERTa and XLM-RoBERTa (`model_type` `roberta`, `xlm-roberta`), as transformers'
//! `modeling_roberta.py` builds them.
//!
//! transformers' `RobertaModel` is BERT's module tree ("Copied from BertModel") with two
//! differences, both in the embeddings: position ids count from `pad_token_id + 1`
//! (`create_position_ids_from_input_ids`) and there is a single token type. kiln's
//! [`BertModel`] built from a RoBERTa config does both ([`crate::bert::PositionIds`]), so the
//! encoder here *is* a `BertModel`, under the field name `roberta` as in the checkpoint
//! (`roberta.embeddings.word_embeddings.weight`, `roberta.encoder.layer.0.attention.self.query.weight`, …).
//! What is RoBERTa's own is the sequence head: `RobertaClassificationHead` reads the `<s>`
//! token's hidden state (no pooler) through dense + tanh, then `out_proj`. XLM-RoBERTa's
//! modeling file is this one under other class names.

use burn::nn::{Dropout, Linear};
use burn::prelude::*;

use kiln_data::TokenBatch;

use crate::bert::{dropout, linear, pool_tokens, BertModel, Pooling};
use crate::config::BertConfig;
use crate::dropout as host_dropout;

/// `RobertaClassificationHead`: dropout, dense, tanh, dropout, `out_proj`.
#[derive(Module, Debug)]
pub struct RobertaClassificationHead {
    pub dense: Linear,
    pub dropout: Dropout,
    pub out_proj: Linear,
}

impl RobertaClassificationHead {
    pub fn new(config: &BertConfig, num_labels: usize, device: &Device) -> Self {
        Self {
            dense: linear(config.hidden_size, config.hidden_size, device),
            dropout: dropout(config.classifier_dropout_prob()),
            out_proj: linear(config.hidden_size, num_labels, device),
        }
    }

    /// `[batch, hidden]` (the `<s>` token's hidden state, or a mean) → `[batch, num_labels]`.
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        let x = host_dropout::forward(&self.dropout, features);
        let x = self.dense.forward(x).tanh();
        let x = host_dropout::forward(&self.dropout, x);
        self.out_proj.forward(x)
    }
}

/// `RobertaForSequenceClassification` (and `XLMRobertaForSequenceClassification`): the encoder
/// without a pooler and [`RobertaClassificationHead`] on the `<s>` token, or on the mean of the
/// tokens with [`Pooling::Mean`].
#[derive(Module, Debug)]
pub struct RobertaForSequenceClassification {
    pub roberta: BertModel,
    pub classifier: RobertaClassificationHead,
    #[module(skip)]
    pub pooling: Pooling,
}

impl RobertaForSequenceClassification {
    pub fn new(config: &BertConfig, num_labels: usize, pooling: Pooling, device: &Device) -> Self {
        Self {
            roberta: BertModel::new(config, false, device),
            classifier: RobertaClassificationHead::new(config, num_labels, device),
            pooling,
        }
    }

    pub fn num_labels(&self) -> usize {
        self.classifier.out_proj.weight.dims()[1]
    }

    /// What the head reads of each example of `b` (padded or packed): `[examples, hidden]`.
    pub fn features_of(&self, b: TokenBatch) -> Tensor<2> {
        let hidden = self.roberta.encode_batch(&b);
        pool_tokens(hidden, &b, self.pooling)
    }

    /// Logits from features: `[examples, hidden]` → `[examples, num_labels]`.
    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        let features = features.cast(self.classifier.dense.weight.val().dtype());
        self.classifier.forward(features)
    }
}

/// `RobertaForTokenClassification` (and XLM-R's): the encoder without a pooler, dropout and a
/// linear layer on every token.
#[derive(Module, Debug)]
pub struct RobertaForTokenClassification {
    pub roberta: BertModel,
    pub dropout: Dropout,
    pub classifier: Linear,
}

impl RobertaForTokenClassification {
    pub fn new(config: &BertConfig, num_labels: usize, device: &Device) -> Self {
        Self {
            roberta: BertModel::new(config, false, device),
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
            self.roberta.encode_batch(&b),
            self.classifier.weight.val().dtype(),
        )
    }

    /// Logits from token rows: `[rows, hidden]` → `[rows, num_labels]`.
    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        self.classifier
            .forward(host_dropout::forward(&self.dropout, features))
    }
}
