//! kiln's `AutoModelFor…`: one type per task over every encoder family, picked from
//! `config.json`'s `model_type` ([`crate::config::Family`]).
//!
//! Each variant is a family's own model, whose module tree is its checkpoint's (`bert.…`,
//! `roberta.…`); checkpoints are read and written through the variant itself, so the enum adds
//! no name to a tensor file. Inside a training run the variant's name is the first segment of a
//! parameter path (`Roberta.roberta.encoder.layer.0…`), which the trainer's path conventions
//! (`embeddings.`, `encoder.layer.N.`, `pooler.`, the rest is head) read through.

use burn::prelude::*;

use kiln_data::TokenBatch;

use crate::bert::{cast_params, BertClassifier, BertModel, BertTokenClassifier};
use crate::electra::{ElectraForSequenceClassification, ElectraForTokenClassification};
use crate::roberta::{RobertaForSequenceClassification, RobertaForTokenClassification};

/// A sequence classifier (or regression / multi-label head) of any family.
#[derive(Module, Debug)]
pub enum SequenceClassifier {
    Bert(BertClassifier),
    Roberta(RobertaForSequenceClassification),
    Electra(ElectraForSequenceClassification),
}

impl SequenceClassifier {
    pub fn num_labels(&self) -> usize {
        match self {
            Self::Bert(m) => m.num_labels(),
            Self::Roberta(m) => m.num_labels(),
            Self::Electra(m) => m.num_labels(),
        }
    }

    /// The encoder (embeddings and layers; the pooler where the family has one).
    pub fn encoder(&self) -> &BertModel {
        match self {
            Self::Bert(m) => &m.bert,
            Self::Roberta(m) => &m.roberta,
            Self::Electra(m) => &m.electra,
        }
    }

    /// What the head reads of each example of `b`, padded or packed: `[examples, features]`.
    pub fn features_of(&self, b: TokenBatch) -> Tensor<2> {
        match self {
            Self::Bert(m) => m.features_of(b),
            Self::Roberta(m) => m.features_of(b),
            Self::Electra(m) => m.features_of(b),
        }
    }

    /// Outputs from features: `[examples, features]` → `[examples, num_labels]`.
    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        match self {
            Self::Bert(m) => m.head(features),
            Self::Roberta(m) => m.head(features),
            Self::Electra(m) => m.head(features),
        }
    }

    /// Outputs of a batch, padded or packed: `[examples, num_labels]`.
    pub fn forward_batch(&self, b: TokenBatch) -> Tensor<2> {
        self.head(self.features_of(b))
    }

    /// Every float parameter converted to `dtype`.
    pub fn cast(self, dtype: burn::tensor::FloatDType) -> Self {
        cast_params(self, dtype)
    }
}

impl From<BertClassifier> for SequenceClassifier {
    fn from(m: BertClassifier) -> Self {
        Self::Bert(m)
    }
}

impl From<RobertaForSequenceClassification> for SequenceClassifier {
    fn from(m: RobertaForSequenceClassification) -> Self {
        Self::Roberta(m)
    }
}

/// A token classifier of any family: a row of outputs per token.
#[derive(Module, Debug)]
pub enum TokenClassifier {
    Bert(BertTokenClassifier),
    Roberta(RobertaForTokenClassification),
    Electra(ElectraForTokenClassification),
}

impl TokenClassifier {
    pub fn num_labels(&self) -> usize {
        match self {
            Self::Bert(m) => m.num_labels(),
            Self::Roberta(m) => m.num_labels(),
            Self::Electra(m) => m.num_labels(),
        }
    }

    pub fn encoder(&self) -> &BertModel {
        match self {
            Self::Bert(m) => &m.bert,
            Self::Roberta(m) => &m.roberta,
            Self::Electra(m) => &m.electra,
        }
    }

    /// Every token's features of `b`, padded or packed: `[rows × seq, hidden]`.
    pub fn token_features_of(&self, b: TokenBatch) -> Tensor<2> {
        match self {
            Self::Bert(m) => m.token_features_of(b),
            Self::Roberta(m) => m.token_features_of(b),
            Self::Electra(m) => m.token_features_of(b),
        }
    }

    /// Logits from token rows: `[rows, hidden]` → `[rows, num_labels]`.
    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        match self {
            Self::Bert(m) => m.head(features),
            Self::Roberta(m) => m.head(features),
            Self::Electra(m) => m.head(features),
        }
    }

    pub fn cast(self, dtype: burn::tensor::FloatDType) -> Self {
        cast_params(self, dtype)
    }
}

impl From<ElectraForSequenceClassification> for SequenceClassifier {
    fn from(m: ElectraForSequenceClassification) -> Self {
        Self::Electra(m)
    }
}

impl From<BertTokenClassifier> for TokenClassifier {
    fn from(m: BertTokenClassifier) -> Self {
        Self::Bert(m)
    }
}

impl From<RobertaForTokenClassification> for TokenClassifier {
    fn from(m: RobertaForTokenClassification) -> Self {
        Self::Roberta(m)
    }
}

impl From<ElectraForTokenClassification> for TokenClassifier {
    fn from(m: ElectraForTokenClassification) -> Self {
        Self::Electra(m)
    }
}
