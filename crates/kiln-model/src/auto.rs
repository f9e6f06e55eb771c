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
use crate::deberta_v2::{
    DebertaV2ForSequenceClassification, DebertaV2ForTokenClassification, DebertaV2Model,
};
use crate::distilbert::{
    DistilBertForSequenceClassification, DistilBertForTokenClassification, DistilBertModel,
};
use crate::electra::{ElectraForSequenceClassification, ElectraForTokenClassification};
use crate::modernbert::{
    ModernBertForSequenceClassification, ModernBertForTokenClassification, ModernBertModel,
};
use crate::roberta::{RobertaForSequenceClassification, RobertaForTokenClassification};

/// `$body` for the model inside whichever family's variant `$self` holds (every family's
/// task model has the same methods).
macro_rules! each_family {
    ($self:ident, $m:ident => $body:expr) => {
        match $self {
            Self::Bert($m) => $body,
            Self::Roberta($m) => $body,
            Self::Electra($m) => $body,
            Self::DistilBert($m) => $body,
            Self::ModernBert($m) => $body,
            Self::DebertaV2($m) => $body,
        }
    };
}

/// A sequence classifier (or regression / multi-label head) of any family.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one per model, never in a collection
pub enum SequenceClassifier {
    Bert(BertClassifier),
    Roberta(RobertaForSequenceClassification),
    Electra(ElectraForSequenceClassification),
    DistilBert(DistilBertForSequenceClassification),
    ModernBert(ModernBertForSequenceClassification),
    DebertaV2(DebertaV2ForSequenceClassification),
}

impl SequenceClassifier {
    /// Whether packed batches can run (all but DeBERTa-v2 with its convolution layer).
    pub fn accepts_packed(&self) -> bool {
        match self {
            Self::DebertaV2(m) => m.deberta.accepts_packed(),
            _ => true,
        }
    }

    pub fn num_labels(&self) -> usize {
        each_family!(self, m => m.num_labels())
    }

    /// The encoder (embeddings and layers; the pooler where the family has one), a handle
    /// sharing the model's tensors.
    pub fn encoder(&self) -> Encoder {
        match self {
            Self::Bert(m) => Encoder::Bert(m.bert.clone()),
            Self::Roberta(m) => Encoder::Bert(m.roberta.clone()),
            Self::Electra(m) => Encoder::Bert(m.electra.clone()),
            Self::DistilBert(m) => Encoder::DistilBert(m.distilbert.clone()),
            Self::ModernBert(m) => Encoder::ModernBert(m.model.clone()),
            Self::DebertaV2(m) => Encoder::DebertaV2(m.deberta.clone()),
        }
    }

    /// What the head reads of each example of `b`, padded or packed: `[examples, features]`.
    pub fn features_of(&self, b: TokenBatch) -> Tensor<2> {
        each_family!(self, m => m.features_of(b))
    }

    /// Outputs from features: `[examples, features]` → `[examples, num_labels]`.
    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        each_family!(self, m => m.head(features))
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
#[allow(clippy::large_enum_variant)] // one per model, never in a collection
pub enum TokenClassifier {
    Bert(BertTokenClassifier),
    Roberta(RobertaForTokenClassification),
    Electra(ElectraForTokenClassification),
    DistilBert(DistilBertForTokenClassification),
    ModernBert(ModernBertForTokenClassification),
    DebertaV2(DebertaV2ForTokenClassification),
}

impl TokenClassifier {
    /// Whether packed batches can run (all but DeBERTa-v2 with its convolution layer).
    pub fn accepts_packed(&self) -> bool {
        match self {
            Self::DebertaV2(m) => m.deberta.accepts_packed(),
            _ => true,
        }
    }

    pub fn num_labels(&self) -> usize {
        each_family!(self, m => m.num_labels())
    }

    pub fn encoder(&self) -> Encoder {
        match self {
            Self::Bert(m) => Encoder::Bert(m.bert.clone()),
            Self::Roberta(m) => Encoder::Bert(m.roberta.clone()),
            Self::Electra(m) => Encoder::Bert(m.electra.clone()),
            Self::DistilBert(m) => Encoder::DistilBert(m.distilbert.clone()),
            Self::ModernBert(m) => Encoder::ModernBert(m.model.clone()),
            Self::DebertaV2(m) => Encoder::DebertaV2(m.deberta.clone()),
        }
    }

    /// Every token's features of `b`, padded or packed: `[rows × seq, hidden]`.
    pub fn token_features_of(&self, b: TokenBatch) -> Tensor<2> {
        each_family!(self, m => m.token_features_of(b))
    }

    /// Logits from token rows: `[rows, hidden]` → `[rows, num_labels]`.
    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        each_family!(self, m => m.head(features))
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

impl From<DistilBertForSequenceClassification> for SequenceClassifier {
    fn from(m: DistilBertForSequenceClassification) -> Self {
        Self::DistilBert(m)
    }
}

impl From<DistilBertForTokenClassification> for TokenClassifier {
    fn from(m: DistilBertForTokenClassification) -> Self {
        Self::DistilBert(m)
    }
}

/// An encoder of any family without its head: BERT's module tree (which RoBERTa and ELECTRA
/// share), or DistilBERT's.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one per model, never in a collection
pub enum Encoder {
    Bert(BertModel),
    DistilBert(DistilBertModel),
    ModernBert(ModernBertModel),
    DebertaV2(DebertaV2Model),
}

impl Encoder {
    pub fn num_layers(&self) -> usize {
        match self {
            Self::Bert(m) => m.num_layers(),
            Self::DistilBert(m) => m.num_layers(),
            Self::ModernBert(m) => m.num_layers(),
            Self::DebertaV2(m) => m.num_layers(),
        }
    }

    /// The last hidden state of a padded or packed batch: `[rows, seq, hidden]`.
    pub fn encode_batch(&self, b: &TokenBatch) -> Tensor<3> {
        match self {
            Self::Bert(m) => m.encode_batch(b),
            Self::DistilBert(m) => m.encode_batch(b),
            Self::ModernBert(m) => m.encode_batch(b),
            Self::DebertaV2(m) => m.encode_batch(b),
        }
    }

    /// The embeddings' output and every layer's, in order (`num_layers + 1` tensors).
    pub fn hidden_states(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        attention_mask: Tensor<2>,
    ) -> Vec<Tensor<3>> {
        match self {
            Self::Bert(m) => m.hidden_states(input_ids, token_type_ids, attention_mask),
            Self::DistilBert(m) => m.hidden_states(input_ids, attention_mask),
            Self::ModernBert(m) => m.hidden_states(input_ids, attention_mask),
            Self::DebertaV2(m) => m.hidden_states(input_ids, token_type_ids, attention_mask),
        }
    }

    /// Every float parameter by its path inside the family's encoder (no variant segment).
    pub fn values(&self) -> std::collections::BTreeMap<String, Vec<f32>> {
        match self {
            Self::Bert(m) => crate::drift::param_values(m),
            Self::DistilBert(m) => crate::drift::param_values(m),
            Self::ModernBert(m) => crate::drift::param_values(m),
            Self::DebertaV2(m) => crate::drift::param_values(m),
        }
    }

    pub fn device(&self) -> Device {
        match self {
            Self::Bert(m) => m.embeddings.word_embeddings.weight.device(),
            Self::DistilBert(m) => m.embeddings.word_embeddings.weight.device(),
            Self::ModernBert(m) => m.embeddings.tok_embeddings.weight.device(),
            Self::DebertaV2(m) => m.embeddings.word_embeddings.weight.device(),
        }
    }
}

impl From<ModernBertForSequenceClassification> for SequenceClassifier {
    fn from(m: ModernBertForSequenceClassification) -> Self {
        Self::ModernBert(m)
    }
}

impl From<ModernBertForTokenClassification> for TokenClassifier {
    fn from(m: ModernBertForTokenClassification) -> Self {
        Self::ModernBert(m)
    }
}

impl From<DebertaV2ForSequenceClassification> for SequenceClassifier {
    fn from(m: DebertaV2ForSequenceClassification) -> Self {
        Self::DebertaV2(m)
    }
}

impl From<DebertaV2ForTokenClassification> for TokenClassifier {
    fn from(m: DebertaV2ForTokenClassification) -> Self {
        Self::DebertaV2(m)
    }
}
