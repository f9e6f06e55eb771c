//! DistilBERT (`model_type` `distilbert`), as transformers' `modeling_distilbert.py` builds it:
//! its own module tree and key names (`distilbert.embeddings.*`,
//! `distilbert.transformer.layer.N.attention.{q_lin,k_lin,v_lin,out_lin}`, `sa_layer_norm`,
//! `ffn.{lin1,lin2}`, `output_layer_norm`), no token types, no pooler, and the
//! `pre_classifier` + ReLU sequence head.
//!
//! A DistilBERT layer is BERT's post-LN layer with one difference that matters in training:
//! no dropout after the attention's output projection (`out_lin`). The config's own names
//! (`dim`, `n_layers`, `n_heads`, `hidden_dim`, `activation`, `dropout`, `attention_dropout`)
//! are read into [`BertConfig`]'s fields and written back under DistilBERT's names on export.

use burn::nn::{Dropout, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear};
use burn::prelude::*;
use burn::tensor::activation;

use kiln_data::TokenBatch;

use crate::bert::{
    attention_context, dropout, linear, mask_to_bias, padding_bias, pool_tokens, token_rows,
    Pooling,
};
use crate::config::{BertConfig, HiddenAct};
use crate::dropout as host_dropout;

fn layer_norm(config: &BertConfig, device: &Device) -> LayerNorm {
    LayerNormConfig::new(config.hidden_size)
        .with_epsilon(config.layer_norm_eps)
        .init(device)
}

/// Word + position embeddings (no token types), LayerNorm, dropout.
#[derive(Module, Debug)]
pub struct DistilBertEmbeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    /// HF's `LayerNorm`.
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
}

impl DistilBertEmbeddings {
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        let table = |n: usize| {
            EmbeddingConfig::new(n, config.hidden_size)
                .with_initializer(burn::nn::Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                })
                .init(device)
        };
        Self {
            word_embeddings: table(config.vocab_size),
            position_embeddings: table(config.max_position_embeddings),
            layer_norm: layer_norm(config, device),
            dropout: dropout(config.hidden_dropout_prob),
        }
    }

    /// `input_ids` and each token's position (`[batch or 1, seq]`) → `[batch, seq, dim]`.
    pub fn forward(&self, input_ids: Tensor<2, Int>, positions: Tensor<2, Int>) -> Tensor<3> {
        let x =
            self.word_embeddings.forward(input_ids) + self.position_embeddings.forward(positions);
        host_dropout::forward(&self.dropout, self.layer_norm.forward(x))
    }
}

/// `MultiHeadSelfAttention`: q/k/v projections, softmax(QKᵀ/√d)V, `out_lin` (no dropout after
/// it, unlike BERT).
#[derive(Module, Debug)]
pub struct MultiHeadSelfAttention {
    pub q_lin: Linear,
    pub k_lin: Linear,
    pub v_lin: Linear,
    pub out_lin: Linear,
    pub dropout: Dropout,
    pub n_heads: usize,
}

impl MultiHeadSelfAttention {
    fn split_heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [batch, seq, dim] = x.dims();
        x.reshape([batch, seq, self.n_heads, dim / self.n_heads])
            .swap_dims(1, 2)
    }

    pub fn forward(&self, x: Tensor<3>, mask_bias: Tensor<4>) -> Tensor<3> {
        let q = self.split_heads(self.q_lin.forward(x.clone()));
        let k = self.split_heads(self.k_lin.forward(x.clone()));
        let v = self.split_heads(self.v_lin.forward(x));
        self.out_lin
            .forward(attention_context(q, k, v, mask_bias, &self.dropout))
    }
}

/// `FFN`: `lin1`, the activation, `lin2`, dropout.
#[derive(Module, Debug)]
pub struct Ffn {
    pub lin1: Linear,
    pub lin2: Linear,
    pub dropout: Dropout,
    #[module(skip)]
    pub activation: HiddenAct,
}

impl Ffn {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let inner = self.lin1.forward(x);
        let inner = match self.activation {
            HiddenAct::Gelu => crate::activation::gelu(inner),
            HiddenAct::GeluNew => activation::gelu_approximate(inner),
            HiddenAct::Relu => activation::relu(inner),
        };
        host_dropout::forward(&self.dropout, self.lin2.forward(inner))
    }
}

/// `TransformerBlock`: attention, residual, `sa_layer_norm`; FFN, residual, `output_layer_norm`.
#[derive(Module, Debug)]
pub struct TransformerBlock {
    pub attention: MultiHeadSelfAttention,
    pub sa_layer_norm: LayerNorm,
    pub ffn: Ffn,
    pub output_layer_norm: LayerNorm,
}

impl TransformerBlock {
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        let (dim, hidden) = (config.hidden_size, config.intermediate_size);
        Self {
            attention: MultiHeadSelfAttention {
                q_lin: linear(dim, dim, device),
                k_lin: linear(dim, dim, device),
                v_lin: linear(dim, dim, device),
                out_lin: linear(dim, dim, device),
                dropout: dropout(config.attention_probs_dropout_prob),
                n_heads: config.num_attention_heads,
            },
            sa_layer_norm: layer_norm(config, device),
            ffn: Ffn {
                lin1: linear(dim, hidden, device),
                lin2: linear(hidden, dim, device),
                dropout: dropout(config.hidden_dropout_prob),
                activation: config.hidden_act,
            },
            output_layer_norm: layer_norm(config, device),
        }
    }

    pub fn forward(&self, x: Tensor<3>, mask_bias: Tensor<4>) -> Tensor<3> {
        let attended = self
            .sa_layer_norm
            .forward(self.attention.forward(x.clone(), mask_bias) + x);
        self.output_layer_norm
            .forward(self.ffn.forward(attended.clone()) + attended)
    }
}

/// `Transformer`: HF's `transformer.layer.N`.
#[derive(Module, Debug)]
pub struct Transformer {
    pub layer: Vec<TransformerBlock>,
}

/// `DistilBertModel`: embeddings and the transformer (no pooler).
#[derive(Module, Debug)]
pub struct DistilBertModel {
    pub embeddings: DistilBertEmbeddings,
    pub transformer: Transformer,
}

impl DistilBertModel {
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        Self {
            embeddings: DistilBertEmbeddings::new(config, device),
            transformer: Transformer {
                layer: (0..config.num_hidden_layers)
                    .map(|_| TransformerBlock::new(config, device))
                    .collect(),
            },
        }
    }

    pub fn num_layers(&self) -> usize {
        self.transformer.layer.len()
    }

    /// The embeddings' output and every layer's (`num_layers + 1` tensors `[batch, seq,
    /// dim]`); token types are ignored (DistilBERT has none).
    pub fn hidden_states(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Tensor<2>,
    ) -> Vec<Tensor<3>> {
        let [_, seq] = input_ids.dims();
        let positions =
            Tensor::<1, Int>::arange(0..seq as i64, &input_ids.device()).unsqueeze::<2>();
        let mut x = self.embeddings.forward(input_ids, positions);
        let mask_bias = padding_bias(attention_mask.cast(x.dtype()));
        let mut states = vec![x.clone()];
        for layer in &self.transformer.layer {
            x = layer.forward(x, mask_bias.clone());
            states.push(x.clone());
        }
        states
    }

    /// The last hidden state of a batch as kiln-data builds it, padded or packed (positions
    /// restarting at each example, a same-example attention mask).
    pub fn encode_batch(&self, b: &TokenBatch) -> Tensor<3> {
        let (x, mask_bias) = match &b.packing {
            None => {
                let [_, seq] = b.input_ids.dims();
                let positions =
                    Tensor::<1, Int>::arange(0..seq as i64, &b.input_ids.device()).unsqueeze::<2>();
                let x = self.embeddings.forward(b.input_ids.clone(), positions);
                let bias = padding_bias(b.attention_mask.clone().cast(x.dtype()));
                (x, bias)
            }
            Some(packing) => {
                let x = self
                    .embeddings
                    .forward(b.input_ids.clone(), packing.position_ids.clone());
                let [rows, seq, _] = packing.attention.dims();
                let bias = mask_to_bias(packing.attention.clone().cast(x.dtype()))
                    .reshape([rows, 1, seq, seq]);
                (x, bias)
            }
        };
        self.transformer
            .layer
            .iter()
            .fold(x, |x, layer| layer.forward(x, mask_bias.clone()))
    }
}

/// The dropout DistilBERT's sequence head uses (`seq_classif_dropout`, 0.2 by default).
fn seq_classif_dropout(config: &BertConfig) -> f64 {
    config
        .extra
        .get("seq_classif_dropout")
        .and_then(|v| v.as_f64())
        .unwrap_or(0.2)
}

/// `DistilBertForSequenceClassification`: the first token's hidden state (or the tokens' mean
/// with [`Pooling::Mean`]) through `pre_classifier`, ReLU, dropout and `classifier`.
#[derive(Module, Debug)]
pub struct DistilBertForSequenceClassification {
    pub distilbert: DistilBertModel,
    pub pre_classifier: Linear,
    pub classifier: Linear,
    pub dropout: Dropout,
    #[module(skip)]
    pub pooling: Pooling,
}

impl DistilBertForSequenceClassification {
    pub fn new(config: &BertConfig, num_labels: usize, pooling: Pooling, device: &Device) -> Self {
        let dim = config.hidden_size;
        Self {
            distilbert: DistilBertModel::new(config, device),
            pre_classifier: linear(dim, dim, device),
            classifier: linear(dim, num_labels, device),
            dropout: dropout(seq_classif_dropout(config)),
            pooling,
        }
    }

    pub fn num_labels(&self) -> usize {
        self.classifier.weight.dims()[1]
    }

    /// What the head reads of each example of `b` (padded or packed): `[examples, dim]`.
    pub fn features_of(&self, b: TokenBatch) -> Tensor<2> {
        let hidden = self.distilbert.encode_batch(&b);
        pool_tokens(hidden, &b, self.pooling)
    }

    /// Logits from features: `[examples, dim]` → `[examples, num_labels]`.
    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        let features = features.cast(self.classifier.weight.val().dtype());
        let x = activation::relu(self.pre_classifier.forward(features));
        self.classifier
            .forward(host_dropout::forward(&self.dropout, x))
    }
}

/// `DistilBertForTokenClassification`: the encoder, dropout and a linear layer on every token.
#[derive(Module, Debug)]
pub struct DistilBertForTokenClassification {
    pub distilbert: DistilBertModel,
    pub dropout: Dropout,
    pub classifier: Linear,
}

impl DistilBertForTokenClassification {
    pub fn new(config: &BertConfig, num_labels: usize, device: &Device) -> Self {
        Self {
            distilbert: DistilBertModel::new(config, device),
            dropout: dropout(config.hidden_dropout_prob),
            classifier: linear(config.hidden_size, num_labels, device),
        }
    }

    pub fn num_labels(&self) -> usize {
        self.classifier.weight.dims()[1]
    }

    /// Every token's last hidden state of `b`, a row per token: `[rows × seq, dim]`.
    pub fn token_features_of(&self, b: TokenBatch) -> Tensor<2> {
        token_rows(
            self.distilbert.encode_batch(&b),
            self.classifier.weight.val().dtype(),
        )
    }

    /// Logits from token rows: `[rows, dim]` → `[rows, num_labels]`.
    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        self.classifier
            .forward(host_dropout::forward(&self.dropout, features))
    }
}
