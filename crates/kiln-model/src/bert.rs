//! A whole BERT encoder in one file: embeddings, post-LN transformer layers, pooler and a
//! sequence-classification head, as burn modules.
//!
//! Struct and field names mirror Hugging Face's module tree (`encoder.layer.N.attention.self.query`,
//! `attention.output.dense`, `attention.output.LayerNorm`, `intermediate.dense`,
//! `output.dense`, `output.LayerNorm`), as candle-transformers' bert.rs does, so a checkpoint's
//! keys are module paths up to the renames Rust forces: `self` (a keyword) is `self_attention`,
//! `LayerNorm` is `layer_norm` (see `pretrained.rs`, which maps both ways with the same two).

use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
    Linear, LinearConfig,
};
use burn::prelude::*;
use burn::tensor::activation;
use burn::tensor::ops::AttentionModuleOptions;

use kiln_data::TokenBatch;

use crate::config::{BertConfig, Family, HiddenAct};
use crate::dropout;

/// Additive attention bias for padding positions. BERT's original value: large enough that
/// exp() underflows to exactly 0 in f32, small enough to stay finite in f16/bf16.
const MASK_BIAS: f32 = -10_000.0;

/// HF initialises new weights with N(0, 0.02) (`initializer_range`).
fn hf_init() -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: 0.02,
    }
}

pub(crate) fn linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    let mut layer = LinearConfig::new(d_in, d_out)
        .with_initializer(hf_init())
        .init(device);
    // HF zeroes biases at init.
    layer.bias = Some(burn::module::Param::from_tensor(Tensor::zeros(
        [d_out],
        device,
    )));
    layer
}

fn layer_norm(config: &BertConfig, device: &Device) -> LayerNorm {
    LayerNormConfig::new(config.hidden_size)
        .with_epsilon(config.layer_norm_eps)
        .init(device)
}

pub(crate) fn dropout(prob: f64) -> Dropout {
    DropoutConfig::new(prob).init()
}

/// How a token's position id is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PositionIds {
    /// BERT: `0, 1, 2, …` in every row.
    #[default]
    FromZero,
    /// RoBERTa (`create_position_ids_from_input_ids`): real tokens count from
    /// `padding_idx + 1`, padding tokens sit at `padding_idx`.
    AfterPadding { padding_idx: usize },
}

impl PositionIds {
    /// The family's counting, from its config.
    pub fn of(config: &BertConfig) -> Self {
        match config.family() {
            Ok(Family::Roberta | Family::XlmRoberta) => Self::AfterPadding {
                padding_idx: config.pad_token_id,
            },
            _ => Self::FromZero,
        }
    }
}

/// Word + position + token-type embeddings, then LayerNorm and dropout.
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    pub token_type_embeddings: Embedding,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
    #[module(skip)]
    pub positions: PositionIds,
}

impl BertEmbeddings {
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        let embedding = |n: usize| {
            EmbeddingConfig::new(n, config.embedding_width())
                .with_initializer(hf_init())
                .init(device)
        };
        Self {
            word_embeddings: embedding(config.vocab_size),
            position_embeddings: embedding(config.max_position_embeddings),
            token_type_embeddings: embedding(config.type_vocab_size),
            layer_norm: LayerNormConfig::new(config.embedding_width())
                .with_epsilon(config.layer_norm_eps)
                .init(device),
            dropout: dropout(config.hidden_dropout_prob),
            positions: PositionIds::of(config),
        }
    }

    /// `input_ids`, `token_type_ids`: `[batch, seq]` → `[batch, seq, hidden]`, each row's
    /// tokens at positions `0..seq` (counted as the family counts them).
    pub fn forward(&self, input_ids: Tensor<2, Int>, token_type_ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, seq_len] = input_ids.dims();
        let device = input_ids.device();
        let index = Tensor::<1, Int>::arange(0..seq_len as i64, &device).unsqueeze::<2>();
        let positions = match self.positions {
            PositionIds::FromZero => index,
            // HF's cumsum(ids != pad) · (ids != pad) + pad, which for right-padded rows is
            // (index + 1) · real + pad.
            PositionIds::AfterPadding { padding_idx } => {
                let real = input_ids.clone().not_equal_elem(padding_idx as i64).int();
                (index.add_scalar(1) * real).add_scalar(padding_idx as i64)
            }
        };
        self.embed(input_ids, token_type_ids, positions)
    }

    /// As `forward`, with each token's position given from 0 (`[batch or 1, seq]`): a packed
    /// row restarts them at each example.
    pub fn forward_at(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        positions: Tensor<2, Int>,
    ) -> Tensor<3> {
        let positions = match self.positions {
            PositionIds::FromZero => positions,
            PositionIds::AfterPadding { padding_idx } => {
                positions.add_scalar(padding_idx as i64 + 1)
            }
        };
        self.embed(input_ids, token_type_ids, positions)
    }

    fn embed(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        positions: Tensor<2, Int>,
    ) -> Tensor<3> {
        // A one-type model (RoBERTa) reads every token as type 0, whatever a pair's
        // tokenizer says of the second text.
        let token_type_ids = if self.token_type_embeddings.weight.dims()[0] == 1 {
            token_type_ids.zeros_like()
        } else {
            token_type_ids
        };
        let x = self.word_embeddings.forward(input_ids)
            + self.token_type_embeddings.forward(token_type_ids)
            + self.position_embeddings.forward(positions);
        dropout::forward(&self.dropout, self.layer_norm.forward(x))
    }
}

/// Multi-head self-attention softmax(QKᵀ/√d)V (HF's `BertSelfAttention`).
#[derive(Module, Debug)]
pub struct BertSelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub dropout: Dropout,
    pub num_heads: usize,
    pub head_dim: usize,
}

impl BertSelfAttention {
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        let h = config.hidden_size;
        Self {
            query: linear(h, h, device),
            key: linear(h, h, device),
            value: linear(h, h, device),
            dropout: dropout(config.attention_probs_dropout_prob),
            num_heads: config.num_attention_heads,
            head_dim: config.head_dim(),
        }
    }

    /// `[batch, seq, hidden]` → `[batch, heads, seq, head_dim]`.
    fn split_heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [batch, seq, _] = x.dims();
        x.reshape([batch, seq, self.num_heads, self.head_dim])
            .swap_dims(1, 2)
    }

    /// The attention context `[batch, seq, hidden]`. `mask_bias`: `[batch, 1, 1, seq]` (or
    /// `[batch, 1, seq, seq]` for a packed batch), 0 where a query may attend to a key and
    /// `MASK_BIAS` where it may not.
    pub fn forward(&self, x: Tensor<3>, mask_bias: Tensor<4>) -> Tensor<3> {
        let q = self.split_heads(self.query.forward(x.clone()));
        let k = self.split_heads(self.key.forward(x.clone()));
        let v = self.split_heads(self.value.forward(x));
        attention_context(q, k, v, mask_bias, &self.dropout)
    }
}

/// softmax(QKᵀ/√d + bias)V over heads: `[batch, heads, seq, head_dim]` each → `[batch, seq,
/// heads × head_dim]`, the probabilities through `dropout` in training.
pub(crate) fn attention_context(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask_bias: Tensor<4>,
    dropout: &Dropout,
) -> Tensor<3> {
    let [batch, heads, seq, head_dim] = q.dims();
    let scale = (head_dim as f64).sqrt().recip();
    let context = if q.device().is_autodiff() {
        // Training: the probabilities go through dropout, so they are computed here.
        let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale) + mask_bias;
        let probs = dropout::forward(dropout, activation::softmax(scores, 3));
        probs.matmul(v)
    } else {
        // Inference: the backend's fused softmax(QKᵀ·scale + bias)V (flex tiles it and never
        // materialises the probabilities as a tensor).
        let options = AttentionModuleOptions {
            scale: Some(scale),
            softcap: None,
            is_causal: false,
        };
        burn::tensor::module::attention(q, k, v, None, Some(mask_bias), options)
    };
    context
        .swap_dims(1, 2)
        .reshape([batch, seq, heads * head_dim])
}

/// Dense, dropout, residual and LayerNorm after a sublayer (HF's `BertSelfOutput`; its
/// `BertOutput` has the same shape with the intermediate size in).
#[derive(Module, Debug)]
pub struct BertResidualOutput {
    pub dense: Linear,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
}

impl BertResidualOutput {
    pub fn new(config: &BertConfig, d_in: usize, device: &Device) -> Self {
        Self {
            dense: linear(d_in, config.hidden_size, device),
            layer_norm: layer_norm(config, device),
            dropout: dropout(config.hidden_dropout_prob),
        }
    }

    /// `LayerNorm(dropout(dense(hidden)) + residual)`.
    pub fn forward(&self, hidden: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        let out = dropout::forward(&self.dropout, self.dense.forward(hidden));
        self.layer_norm.forward(out + residual)
    }
}

/// Self-attention, then its output projection, residual and post-LN (HF's `BertAttention`:
/// `self` + `output`).
#[derive(Module, Debug)]
pub struct BertAttention {
    /// HF's `attention.self` (`self` is a Rust keyword).
    pub self_attention: BertSelfAttention,
    pub output: BertResidualOutput,
}

impl BertAttention {
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        Self {
            self_attention: BertSelfAttention::new(config, device),
            output: BertResidualOutput::new(config, config.hidden_size, device),
        }
    }

    pub fn forward(&self, x: Tensor<3>, mask_bias: Tensor<4>) -> Tensor<3> {
        let context = self.self_attention.forward(x.clone(), mask_bias);
        self.output.forward(context, x)
    }
}

/// The feed-forward's first half: dense and the activation (HF's `BertIntermediate`).
#[derive(Module, Debug)]
pub struct BertIntermediate {
    pub dense: Linear,
    #[module(skip)]
    pub activation: HiddenAct,
}

impl BertIntermediate {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let inner = self.dense.forward(x);
        match self.activation {
            HiddenAct::Gelu => crate::activation::gelu(inner),
            HiddenAct::GeluNew => activation::gelu_approximate(inner),
            HiddenAct::Relu => activation::relu(inner),
        }
    }
}

/// One transformer layer: attention, then intermediate + output (dense, residual, LN).
#[derive(Module, Debug)]
pub struct BertLayer {
    pub attention: BertAttention,
    pub intermediate: BertIntermediate,
    pub output: BertResidualOutput,
}

impl BertLayer {
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        Self {
            attention: BertAttention::new(config, device),
            intermediate: BertIntermediate {
                dense: linear(config.hidden_size, config.intermediate_size, device),
                activation: config.hidden_act,
            },
            output: BertResidualOutput::new(config, config.intermediate_size, device),
        }
    }

    pub fn forward(&self, x: Tensor<3>, mask_bias: Tensor<4>) -> Tensor<3> {
        let attended = self.attention.forward(x, mask_bias);
        let inner = self.intermediate.forward(attended.clone());
        self.output.forward(inner, attended)
    }
}

#[derive(Module, Debug)]
pub struct BertEncoder {
    /// HF's `encoder.layer.N`.
    pub layer: Vec<BertLayer>,
}

/// Dense + tanh over the [CLS] hidden state.
#[derive(Module, Debug)]
pub struct BertPooler {
    pub dense: Linear,
}

impl BertPooler {
    pub fn forward(&self, hidden: Tensor<3>) -> Tensor<2> {
        let [batch, _, h] = hidden.dims();
        self.forward_cls(hidden.slice(s![.., 0..1, ..]).reshape([batch, h]))
    }

    /// From the [CLS] hidden states themselves: `[batch, hidden]`.
    pub fn forward_cls(&self, cls: Tensor<2>) -> Tensor<2> {
        self.dense.forward(cls).tanh()
    }
}

/// What `BertModel::forward` returns.
#[derive(Debug, Clone)]
pub struct BertOutput {
    /// `[batch, seq, hidden]`.
    pub last_hidden_state: Tensor<3>,
    /// `[batch, hidden]`, when the model has a pooler.
    pub pooler_output: Option<Tensor<2>>,
}

/// The encoder: embeddings, `num_hidden_layers` layers and an optional pooler
/// (sentence-transformers checkpoints ship without one). ELECTRA's encoder is this one with
/// narrower embeddings and `embeddings_project` to the hidden size (HF's `ElectraModel`).
#[derive(Module, Debug)]
pub struct BertModel {
    pub embeddings: BertEmbeddings,
    pub embeddings_project: Option<Linear>,
    pub encoder: BertEncoder,
    pub pooler: Option<BertPooler>,
}

impl BertModel {
    /// A randomly initialised encoder (HF's initialisation: N(0, 0.02), zero biases).
    pub fn new(config: &BertConfig, with_pooler: bool, device: &Device) -> Self {
        let width = config.embedding_width();
        Self {
            embeddings: BertEmbeddings::new(config, device),
            embeddings_project: (width != config.hidden_size)
                .then(|| linear(width, config.hidden_size, device)),
            encoder: BertEncoder {
                layer: (0..config.num_hidden_layers)
                    .map(|_| BertLayer::new(config, device))
                    .collect(),
            },
            pooler: with_pooler.then(|| BertPooler {
                dense: linear(config.hidden_size, config.hidden_size, device),
            }),
        }
    }

    pub fn num_layers(&self) -> usize {
        self.encoder.layer.len()
    }

    /// `attention_mask`: `[batch, seq]`, 1.0 for real tokens and 0.0 for padding.
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        attention_mask: Tensor<2>,
    ) -> BertOutput {
        let last_hidden_state = self.encode(input_ids, token_type_ids, attention_mask);
        let pooler_output = self
            .pooler
            .as_ref()
            .map(|p| p.forward(last_hidden_state.clone()));
        BertOutput {
            last_hidden_state,
            pooler_output,
        }
    }

    /// The last hidden state alone (no pooler).
    pub fn encode(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        attention_mask: Tensor<2>,
    ) -> Tensor<3> {
        let x = self.project(self.embeddings.forward(input_ids, token_type_ids));
        // The mask arrives as f32; the model may run in f16/bf16.
        let mask_bias = padding_bias(attention_mask.cast(x.dtype()));
        self.layers(x, mask_bias)
    }

    /// The embeddings' output and every layer's, in order (transformers'
    /// `output_hidden_states`): `num_layers + 1` tensors `[batch, seq, hidden]`.
    pub fn hidden_states(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        attention_mask: Tensor<2>,
    ) -> Vec<Tensor<3>> {
        let mut x = self.project(self.embeddings.forward(input_ids, token_type_ids));
        let mask_bias = padding_bias(attention_mask.cast(x.dtype()));
        let mut states = vec![x.clone()];
        for layer in &self.encoder.layer {
            x = layer.forward(x, mask_bias.clone());
            states.push(x.clone());
        }
        states
    }

    /// The last hidden state of a packed batch (kiln-data's `TokenBatch::pack`): positions
    /// restart at each example and `attention` (`[rows, seq, seq]`, 1 where a query may see a
    /// key) keeps examples that share a row from seeing each other.
    pub fn encode_packed(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        position_ids: Tensor<2, Int>,
        attention: Tensor<3>,
    ) -> Tensor<3> {
        let x = self.project(
            self.embeddings
                .forward_at(input_ids, token_type_ids, position_ids),
        );
        let [rows, seq, _] = attention.dims();
        let mask_bias = mask_to_bias(attention.cast(x.dtype())).reshape([rows, 1, seq, seq]);
        self.layers(x, mask_bias)
    }

    /// The last hidden state of a batch as kiln-data builds it: padded (`encode`) or packed
    /// (`encode_packed`).
    pub fn encode_batch(&self, b: &TokenBatch) -> Tensor<3> {
        match &b.packing {
            None => self.encode(
                b.input_ids.clone(),
                b.token_type_ids.clone(),
                b.attention_mask.clone(),
            ),
            Some(packing) => self.encode_packed(
                b.input_ids.clone(),
                b.token_type_ids.clone(),
                packing.position_ids.clone(),
                packing.attention.clone(),
            ),
        }
    }

    /// ELECTRA's projection of narrow embeddings to the hidden size; the identity elsewhere.
    fn project(&self, embedded: Tensor<3>) -> Tensor<3> {
        match &self.embeddings_project {
            Some(project) => project.forward(embedded),
            None => embedded,
        }
    }

    fn layers(&self, mut x: Tensor<3>, mask_bias: Tensor<4>) -> Tensor<3> {
        for layer in &self.encoder.layer {
            x = layer.forward(x, mask_bias.clone());
        }
        x
    }
}

/// 1 (attend) → 0, 0 (masked) → `MASK_BIAS`, elementwise.
pub(crate) fn mask_to_bias<const D: usize>(mask: Tensor<D>) -> Tensor<D> {
    mask.neg().add_scalar(1.0).mul_scalar(MASK_BIAS)
}

/// `[batch, seq]` mask (1 real, 0 pad) → `[batch, 1, 1, seq]` additive bias, built once per
/// forward and shared by every layer.
pub fn padding_bias(attention_mask: Tensor<2>) -> Tensor<4> {
    let [batch, seq] = attention_mask.dims();
    mask_to_bias(attention_mask).reshape([batch, 1, 1, seq])
}

/// What a sequence head reads of each example of `b` (padded or packed): its first token, or
/// the mean of its tokens.
pub fn pool_tokens(hidden: Tensor<3>, b: &TokenBatch, pooling: Pooling) -> Tensor<2> {
    match pooling {
        Pooling::Cls => first_tokens(hidden, b),
        Pooling::Mean => mean_tokens(hidden, b),
    }
}

/// Each example's first token ([CLS], `<s>`) of a last hidden state laid out as `b`, padded or
/// packed: `[examples, hidden]`.
pub fn first_tokens(hidden: Tensor<3>, b: &TokenBatch) -> Tensor<2> {
    let [rows, seq, h] = hidden.dims();
    match &b.packing {
        None => hidden.slice(s![.., 0..1, ..]).reshape([rows, h]),
        Some(packing) => {
            let device = hidden.device();
            hidden
                .reshape([rows * seq, h])
                .select(0, packing.first_tokens(&device))
        }
    }
}

/// Each example's mean over its real tokens of a last hidden state laid out as `b`, padded or
/// packed: `[examples, hidden]`.
pub fn mean_tokens(hidden: Tensor<3>, b: &TokenBatch) -> Tensor<2> {
    match &b.packing {
        None => mean_pool(hidden, b.attention_mask.clone()),
        Some(packing) => {
            let [rows, seq, h] = hidden.dims();
            let tokens = hidden.reshape([rows * seq, h]);
            let weights = packing.mean_weights(&b.lengths, &tokens.device());
            weights.cast(tokens.dtype()).matmul(tokens)
        }
    }
}

/// Mean of the hidden states over real tokens: `[batch, seq, hidden]`, `[batch, seq]` → `[batch, hidden]`.
pub fn mean_pool(hidden: Tensor<3>, attention_mask: Tensor<2>) -> Tensor<2> {
    let [batch, seq, h] = hidden.dims();
    let mask = attention_mask.cast(hidden.dtype()).reshape([batch, seq, 1]);
    let summed = (hidden * mask.clone()).sum_dim(1).reshape([batch, h]);
    // clamp: a row with no real token must not divide by zero (sentence-transformers does the same).
    let counts = mask.sum_dim(1).reshape([batch, 1]).clamp_min(1e-9);
    summed / counts
}

/// How the classification head reads a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The pooler's output (dense + tanh over [CLS]) as in `BertForSequenceClassification`;
    /// the raw [CLS] hidden state when the checkpoint has no pooler.
    #[default]
    Cls,
    /// The last hidden state averaged over real tokens (sentence-transformers' pooling).
    Mean,
}

impl std::str::FromStr for Pooling {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cls" => Ok(Self::Cls),
            "mean" => Ok(Self::Mean),
            other => Err(format!(
                "unknown pooling `{other}` (expected `cls` or `mean`)"
            )),
        }
    }
}

/// Sequence classifier: encoder, pooling, dropout, linear layer (HF's `BertForSequenceClassification`
/// when pooling is `Cls`).
#[derive(Module, Debug)]
pub struct BertClassifier {
    pub bert: BertModel,
    pub dropout: Dropout,
    pub classifier: Linear,
    #[module(skip)]
    pub pooling: Pooling,
}

impl BertClassifier {
    pub fn new(config: &BertConfig, num_labels: usize, pooling: Pooling, device: &Device) -> Self {
        Self {
            bert: BertModel::new(config, true, device),
            dropout: dropout(config.classifier_dropout_prob()),
            classifier: linear(config.hidden_size, num_labels, device),
            pooling,
        }
    }

    /// A fresh head for `num_labels` classes on an existing encoder.
    pub fn with_new_head(
        bert: BertModel,
        config: &BertConfig,
        num_labels: usize,
        pooling: Pooling,
        device: &Device,
    ) -> Self {
        Self {
            bert,
            dropout: dropout(config.classifier_dropout_prob()),
            classifier: linear(config.hidden_size, num_labels, device),
            pooling,
        }
    }

    pub fn num_labels(&self) -> usize {
        self.classifier.weight.dims()[1]
    }

    /// The pooled sequence representation the head reads: `[batch, hidden]`.
    pub fn features(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        attention_mask: Tensor<2>,
    ) -> Tensor<2> {
        let hidden = self
            .bert
            .encode(input_ids, token_type_ids, attention_mask.clone());
        self.pool(hidden, attention_mask)
    }

    /// The pooled representation of each example of `batch`, packed or not: `[examples, hidden]`.
    pub fn features_of(&self, b: TokenBatch) -> Tensor<2> {
        if b.packing.is_none() {
            return self.features(b.input_ids, b.token_type_ids, b.attention_mask);
        }
        let hidden = self.bert.encode_batch(&b);
        match (self.pooling, &self.bert.pooler) {
            (Pooling::Mean, _) => mean_tokens(hidden, &b),
            (Pooling::Cls, Some(pooler)) => pooler.forward_cls(first_tokens(hidden, &b)),
            (Pooling::Cls, None) => first_tokens(hidden, &b),
        }
    }

    /// Logits `[examples, num_labels]` of `batch`, packed or not.
    pub fn forward_batch(&self, batch: TokenBatch) -> Tensor<2> {
        self.head(self.features_of(batch))
    }

    /// Pools a last hidden state as this head does.
    pub fn pool(&self, hidden: Tensor<3>, attention_mask: Tensor<2>) -> Tensor<2> {
        match (self.pooling, &self.bert.pooler) {
            (Pooling::Mean, _) => mean_pool(hidden, attention_mask),
            (Pooling::Cls, Some(pooler)) => pooler.forward(hidden),
            (Pooling::Cls, None) => {
                let [batch, _, h] = hidden.dims();
                hidden.slice(s![.., 0..1, ..]).reshape([batch, h])
            }
        }
    }

    /// Logits from pooled features: `[batch, hidden]` → `[batch, num_labels]`.
    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        let features = features.cast(self.classifier.weight.val().dtype());
        self.classifier
            .forward(dropout::forward(&self.dropout, features))
    }

    /// Every float parameter converted to `dtype` (half-precision training and inference).
    pub fn cast(self, dtype: burn::tensor::FloatDType) -> Self {
        cast_params(self, dtype)
    }

    /// Logits `[batch, num_labels]`.
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        attention_mask: Tensor<2>,
    ) -> Tensor<2> {
        self.head(self.features(input_ids, token_type_ids, attention_mask))
    }
}

/// A last hidden state as one row per token (row `r · seq + p` is row `r`, position `p`), in
/// the head's `dtype`: `[rows, seq, hidden]` → `[rows × seq, hidden]`.
pub(crate) fn token_rows(hidden: Tensor<3>, dtype: burn::tensor::DType) -> Tensor<2> {
    let [rows, seq, width] = hidden.dims();
    hidden.cast(dtype).reshape([rows * seq, width])
}

/// Every float parameter of `module` converted to `dtype`.
pub fn cast_params<M: Module>(module: M, dtype: burn::tensor::FloatDType) -> M {
    struct Cast(burn::tensor::FloatDType);
    impl burn::module::ModuleMapper for Cast {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<Tensor<D>>,
        ) -> burn::module::Param<Tensor<D>> {
            let dtype = self.0;
            param.map(|t| t.cast(dtype))
        }
    }
    module.map(&mut Cast(dtype))
}

/// Token classifier: the encoder without a pooler, dropout, and a linear layer on every token's
/// last hidden state (HF's `BertForTokenClassification`, module for module).
#[derive(Module, Debug)]
pub struct BertTokenClassifier {
    pub bert: BertModel,
    pub dropout: Dropout,
    pub classifier: Linear,
}

impl BertTokenClassifier {
    pub fn new(config: &BertConfig, num_labels: usize, device: &Device) -> Self {
        Self {
            bert: BertModel::new(config, false, device),
            dropout: dropout(config.classifier_dropout_prob()),
            classifier: linear(config.hidden_size, num_labels, device),
        }
    }

    pub fn num_labels(&self) -> usize {
        self.classifier.weight.dims()[1]
    }

    /// Logits of every token: `[batch, seq, num_labels]`.
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        attention_mask: Tensor<2>,
    ) -> Tensor<3> {
        let [batch, seq] = input_ids.dims();
        let features = self.token_features(input_ids, token_type_ids, attention_mask);
        self.head(features).reshape([batch, seq, self.num_labels()])
    }

    /// Every token's last hidden state, a row per token: `[batch × seq, hidden]` (row
    /// `b · seq + p` is example `b`'s token `p`).
    pub fn token_features(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        attention_mask: Tensor<2>,
    ) -> Tensor<2> {
        token_rows(
            self.bert.encode(input_ids, token_type_ids, attention_mask),
            self.classifier.weight.val().dtype(),
        )
    }

    /// Every token's last hidden state of a batch, packed (several examples to a row: see
    /// kiln-data's `TokenBatch::pack`) or padded: `[rows × seq, hidden]`, row `r · seq + p`
    /// being the token at row `r`, position `p`.
    pub fn token_features_of(&self, b: TokenBatch) -> Tensor<2> {
        token_rows(
            self.bert.encode_batch(&b),
            self.classifier.weight.val().dtype(),
        )
    }

    /// Logits from token rows: dropout and the linear layer, `[rows, hidden]` → `[rows,
    /// num_labels]`.
    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        self.classifier
            .forward(dropout::forward(&self.dropout, features))
    }
}
