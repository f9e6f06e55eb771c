//! ModernBERT (`model_type` `modernbert`), as transformers' `modeling_modernbert.py` builds it:
//! token embeddings + norm (no position table), pre-norm layers (`attn_norm`, the first layer's
//! an identity; `mlp_norm`), fused `Wqkv` with rotary position embeddings (RoPE, `rotate_half`
//! convention; one θ for global layers, another for local ones), GeGLU feed-forward (`Wi` gives
//! input and gate, `Wo`), no biases by default, global attention every
//! `global_attn_every_n_layers` layers and a sliding window (±`local_attention / 2`) in the
//! others, a `final_norm`, and `ModernBertPredictionHead` (dense, activation, norm) before the
//! classifier. Field names are the checkpoint's (`Wqkv`, `Wi`, `Wo`), hence the allowance below.
//!
//! Padded and packed batches run the same attention with masks (transformers' eager path); its
//! unpadded (varlen) kernels are a GPU speed device, which kiln's packing plays on CPU.
#![allow(non_snake_case)]

use burn::nn::{
    Dropout, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::prelude::*;
use burn::tensor::activation;

use kiln_data::TokenBatch;

use crate::bert::{
    attention_context, dropout, mask_to_bias, padding_bias, pool_tokens, token_rows, Pooling,
};
use crate::config::{BertConfig, HiddenAct};
use crate::dropout as host_dropout;

/// ModernBERT's settings beyond the fields it shares with BERT's config, with transformers'
/// defaults (`ModernBertConfig`).
#[derive(Debug, Clone, PartialEq)]
pub struct ModernBertSettings {
    pub norm_eps: f64,
    pub norm_bias: bool,
    pub attention_bias: bool,
    pub mlp_bias: bool,
    pub classifier_bias: bool,
    pub hidden_activation: HiddenAct,
    pub classifier_activation: HiddenAct,
    pub embedding_dropout: f64,
    pub attention_dropout: f64,
    pub mlp_dropout: f64,
    pub classifier_dropout: f64,
    /// Whether each layer attends globally (else within the sliding window).
    pub global_layers: Vec<bool>,
    pub global_rope_theta: f64,
    pub local_rope_theta: f64,
    /// Half the local window: a token sees those within this distance.
    pub sliding_window: usize,
    pub classifier_pooling: Pooling,
}

fn activation_named(field: &str, name: &str) -> Result<HiddenAct, String> {
    match name {
        "gelu" => Ok(HiddenAct::Gelu),
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(HiddenAct::GeluNew),
        "relu" => Ok(HiddenAct::Relu),
        other => Err(format!(
            "field `{field}` is `{other}`; kiln knows gelu, gelu_new/gelu_pytorch_tanh and relu"
        )),
    }
}

impl ModernBertSettings {
    /// Reads them from `config.json`'s fields (kept in `config.extra`); errors name the field.
    pub fn from_config(config: &BertConfig) -> Result<Self, String> {
        let extra = &config.extra;
        let number = |field: &str, default: f64| -> Result<f64, String> {
            match extra.get(field) {
                None | Some(serde_json::Value::Null) => Ok(default),
                Some(v) => v
                    .as_f64()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| {
                        format!("field `{field}` must be a non-negative number, got {v}")
                    }),
            }
        };
        let flag = |field: &str, default: bool| -> Result<bool, String> {
            match extra.get(field) {
                None => Ok(default),
                Some(v) => v
                    .as_bool()
                    .ok_or_else(|| format!("field `{field}` must be true or false, got {v}")),
            }
        };
        let text = |field: &str, default: &str| -> Result<String, String> {
            match extra.get(field) {
                None => Ok(default.to_string()),
                Some(v) => v
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("field `{field}` must be a string, got {v}")),
            }
        };
        let layers = config.num_hidden_layers;
        // transformers 5 writes `layer_types`; older configs give `global_attn_every_n_layers`.
        let global_layers = match extra.get("layer_types") {
            Some(serde_json::Value::Array(types)) => {
                let kinds = types
                    .iter()
                    .map(|t| match t.as_str() {
                        Some("full_attention") => Ok(true),
                        Some("sliding_attention") => Ok(false),
                        _ => Err(format!("field `layer_types` has `{t}`")),
                    })
                    .collect::<Result<Vec<bool>, String>>()?;
                if kinds.len() != layers {
                    return Err(format!(
                        "field `layer_types` has {} entries for {layers} layers",
                        kinds.len()
                    ));
                }
                kinds
            }
            _ => {
                let every = number("global_attn_every_n_layers", 3.0)? as usize;
                if every == 0 {
                    return Err("field `global_attn_every_n_layers` must be positive".into());
                }
                (0..layers).map(|i| i % every == 0).collect()
            }
        };
        // θ per layer type: `rope_parameters` (transformers 5) or the older flat fields.
        let theta = |kind: &str, flat: &str, default: f64| -> Result<f64, String> {
            let nested = extra
                .get("rope_parameters")
                .and_then(|p| p.get(kind))
                .and_then(|p| p.get("rope_theta"))
                .and_then(|t| t.as_f64());
            let value = match nested {
                Some(t) => t,
                None => number(flat, default)?,
            };
            if value > 0.0 {
                Ok(value)
            } else {
                Err(format!("field `{flat}` must be positive"))
            }
        };
        let pooling = text("classifier_pooling", "cls")?;
        Ok(Self {
            norm_eps: number("norm_eps", 1e-5)?,
            norm_bias: flag("norm_bias", false)?,
            attention_bias: flag("attention_bias", false)?,
            mlp_bias: flag("mlp_bias", false)?,
            classifier_bias: flag("classifier_bias", false)?,
            hidden_activation: activation_named(
                "hidden_activation",
                &text("hidden_activation", "gelu")?,
            )?,
            classifier_activation: activation_named(
                "classifier_activation",
                &text("classifier_activation", "gelu")?,
            )?,
            embedding_dropout: number("embedding_dropout", 0.0)?,
            // `attention_dropout` and `classifier_dropout` are fields of the shared config
            // (the first is DistilBERT's name for BERT's attention dropout).
            attention_dropout: config.attention_probs_dropout_prob,
            mlp_dropout: number("mlp_dropout", 0.0)?,
            classifier_dropout: config.classifier_dropout.unwrap_or(0.0),
            global_layers,
            global_rope_theta: theta("full_attention", "global_rope_theta", 160_000.0)?,
            local_rope_theta: theta("sliding_attention", "local_rope_theta", 10_000.0)?,
            sliding_window: number("local_attention", 128.0)? as usize / 2,
            classifier_pooling: pooling
                .parse()
                .map_err(|e| format!("field `classifier_pooling`: {e}"))?,
        })
    }
}

fn norm(width: usize, s: &ModernBertSettings, device: &Device) -> LayerNorm {
    LayerNormConfig::new(width)
        .with_epsilon(s.norm_eps)
        .with_bias(s.norm_bias)
        .init(device)
}

fn dense(d_in: usize, d_out: usize, bias: bool, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out)
        .with_bias(bias)
        .with_initializer(burn::nn::Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        })
        .init(device)
}

fn act(kind: HiddenAct, x: Tensor<3>) -> Tensor<3> {
    match kind {
        HiddenAct::Gelu => crate::activation::gelu(x),
        HiddenAct::GeluNew => activation::gelu_approximate(x),
        HiddenAct::Relu => activation::relu(x),
    }
}

/// `tok_embeddings`, `norm`, `drop` (positions enter through RoPE in attention).
#[derive(Module, Debug)]
pub struct ModernBertEmbeddings {
    pub tok_embeddings: Embedding,
    pub norm: LayerNorm,
    pub drop: Dropout,
}

/// Self-attention with RoPE; global, or within a sliding window.
#[derive(Module, Debug)]
pub struct ModernBertAttention {
    pub Wqkv: Linear,
    pub Wo: Linear,
    /// The attention probabilities' dropout (transformers' `attention_dropout`).
    pub attn_drop: Dropout,
    pub out_drop: Dropout,
    #[module(skip)]
    pub num_heads: usize,
}

impl ModernBertAttention {
    /// `x`: `[rows, seq, hidden]`; `rope`: this layer's RoPE cos and sin (`rope_tables`).
    fn forward(
        &self,
        x: Tensor<3>,
        rope: &(Tensor<4>, Tensor<4>),
        mask_bias: Tensor<4>,
    ) -> Tensor<3> {
        let [rows, seq, hidden] = x.dims();
        let head_dim = hidden / self.num_heads;
        let qkv = self
            .Wqkv
            .forward(x)
            .reshape([rows, seq, 3, self.num_heads, head_dim]);
        let part = |i: usize| {
            qkv.clone()
                .slice(s![.., .., i..i + 1, .., ..])
                .reshape([rows, seq, self.num_heads, head_dim])
                .swap_dims(1, 2)
        };
        let (cos, sin) = rope;
        let rotate = |t: Tensor<4>| t.clone() * cos.clone() + rotate_half(t) * sin.clone();
        let context = attention_context(
            rotate(part(0)),
            rotate(part(1)),
            part(2),
            mask_bias,
            &self.attn_drop,
        );
        host_dropout::forward(&self.out_drop, self.Wo.forward(context))
    }
}

/// cos and sin of each position × RoPE frequency, `[rows, 1, seq, head_dim]` (the frequencies
/// repeated over both halves, as transformers' `cat((freqs, freqs))`).
fn rope_tables(
    positions: Tensor<2, Int>,
    head_dim: usize,
    theta: f64,
    rows: usize,
) -> (Tensor<4>, Tensor<4>) {
    let device = positions.device();
    let [prow, seq] = positions.dims();
    let half = head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| (1.0 / theta.powf((2 * i) as f64 / head_dim as f64)) as f32)
        .collect();
    let inv_freq = Tensor::<1>::from_data(TensorData::new(inv_freq, [half]), &device);
    let freqs = positions
        .float()
        .reshape([prow, seq, 1])
        .matmul(inv_freq.reshape([1, 1, half]).expand([prow, 1, half]));
    let emb = Tensor::cat(vec![freqs.clone(), freqs], 2).reshape([prow, 1, seq, head_dim]);
    let emb = if prow == rows {
        emb
    } else {
        emb.expand([rows, 1, seq, head_dim])
    };
    (emb.clone().cos(), emb.sin())
}

/// `cat(-x2, x1)` over the last dimension's halves.
fn rotate_half(x: Tensor<4>) -> Tensor<4> {
    let [_, _, _, d] = x.dims();
    let x1 = x.clone().slice(s![.., .., .., 0..d / 2]);
    let x2 = x.slice(s![.., .., .., d / 2..d]);
    Tensor::cat(vec![x2.neg(), x1], 3)
}

/// GeGLU: `Wi` gives input and gate; `Wo(drop(act(input) · gate))`.
#[derive(Module, Debug)]
pub struct ModernBertMLP {
    pub Wi: Linear,
    pub Wo: Linear,
    pub drop: Dropout,
    #[module(skip)]
    pub act: HiddenAct,
}

impl ModernBertMLP {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let both = self.Wi.forward(x);
        let [_, _, width] = both.dims();
        let input = both.clone().slice(s![.., .., 0..width / 2]);
        let gate = both.slice(s![.., .., width / 2..width]);
        let inner = act(self.act, input) * gate;
        self.Wo.forward(host_dropout::forward(&self.drop, inner))
    }
}

/// Pre-norm layer: `x + attn(attn_norm(x))`, then `x + mlp(mlp_norm(x))`.
#[derive(Module, Debug)]
pub struct ModernBertEncoderLayer {
    /// `None` in the first layer (an identity: the embeddings were just normalised).
    pub attn_norm: Option<LayerNorm>,
    pub attn: ModernBertAttention,
    pub mlp_norm: LayerNorm,
    pub mlp: ModernBertMLP,
    /// Global attention, or the sliding window.
    #[module(skip)]
    pub global: bool,
}

impl ModernBertEncoderLayer {
    fn forward(&self, x: Tensor<3>, inputs: &LayerInputs) -> Tensor<3> {
        let normed = match &self.attn_norm {
            Some(n) => n.forward(x.clone()),
            None => x.clone(),
        };
        let (rope, mask) = if self.global {
            (&inputs.global_rope, inputs.global.clone())
        } else {
            (&inputs.local_rope, inputs.local.clone())
        };
        let x = x + self.attn.forward(normed, rope, mask);
        x.clone() + self.mlp.forward(self.mlp_norm.forward(x))
    }
}

/// What every layer of one forward shares: the additive attention biases (global layers',
/// and the sliding window's) and the RoPE tables at each θ, computed once per forward.
struct LayerInputs {
    global: Tensor<4>,
    local: Tensor<4>,
    global_rope: (Tensor<4>, Tensor<4>),
    local_rope: (Tensor<4>, Tensor<4>),
}

/// `ModernBertModel`: embeddings, layers, `final_norm`.
#[derive(Module, Debug)]
pub struct ModernBertModel {
    pub embeddings: ModernBertEmbeddings,
    pub layers: Vec<ModernBertEncoderLayer>,
    pub final_norm: LayerNorm,
    /// Half the local window.
    #[module(skip)]
    pub sliding_window: usize,
    /// RoPE's base in global and in local layers.
    #[module(skip)]
    pub rope_theta: (f64, f64),
    #[module(skip)]
    pub head_dim: usize,
}

impl ModernBertModel {
    pub fn new(config: &BertConfig, s: &ModernBertSettings, device: &Device) -> Self {
        let h = config.hidden_size;
        let layers = s
            .global_layers
            .iter()
            .enumerate()
            .map(|(i, &global)| ModernBertEncoderLayer {
                attn_norm: (i > 0).then(|| norm(h, s, device)),
                attn: ModernBertAttention {
                    Wqkv: dense(h, 3 * h, s.attention_bias, device),
                    Wo: dense(h, h, s.attention_bias, device),
                    attn_drop: dropout(s.attention_dropout),
                    out_drop: dropout(s.attention_dropout),
                    num_heads: config.num_attention_heads,
                },
                mlp_norm: norm(h, s, device),
                mlp: ModernBertMLP {
                    Wi: dense(h, 2 * config.intermediate_size, s.mlp_bias, device),
                    Wo: dense(config.intermediate_size, h, s.mlp_bias, device),
                    drop: dropout(s.mlp_dropout),
                    act: s.hidden_activation,
                },
                global,
            })
            .collect();
        Self {
            embeddings: ModernBertEmbeddings {
                tok_embeddings: EmbeddingConfig::new(config.vocab_size, h)
                    .with_initializer(burn::nn::Initializer::Normal {
                        mean: 0.0,
                        std: 0.02,
                    })
                    .init(device),
                norm: norm(h, s, device),
                drop: dropout(s.embedding_dropout),
            },
            layers,
            final_norm: norm(h, s, device),
            sliding_window: s.sliding_window,
            rope_theta: (s.global_rope_theta, s.local_rope_theta),
            head_dim: h / config.num_attention_heads,
        }
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// The window band: 0 within `sliding_window` of the diagonal, `MASK_BIAS` beyond;
    /// `[1, 1, seq, seq]`. Packed examples are contiguous, so row distance is position distance.
    fn band(&self, seq: usize, device: &Device) -> Tensor<4> {
        let index = Tensor::<1, Int>::arange(0..seq as i64, device);
        let distance = (index.clone().reshape([seq, 1]) - index.reshape([1, seq])).abs();
        let inside = distance
            .lower_equal_elem(self.sliding_window as i64)
            .float();
        mask_to_bias(inside).reshape([1, 1, seq, seq])
    }

    /// Each layer's input and the final state (`num_layers + 1` tensors, the last after
    /// `final_norm`); token types are ignored (ModernBERT has none).
    pub fn hidden_states(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Tensor<2>,
    ) -> Vec<Tensor<3>> {
        let [_, seq] = input_ids.dims();
        let device = input_ids.device();
        let positions = Tensor::<1, Int>::arange(0..seq as i64, &device).unsqueeze::<2>();
        let mut x = self.embed(input_ids);
        let global = padding_bias(attention_mask.cast(x.dtype()));
        let inputs = self.layer_inputs(positions, global, x.dims()[0]);
        let mut states = vec![x.clone()];
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x, &inputs);
            states.push(if i == last {
                self.final_norm.forward(x.clone())
            } else {
                x.clone()
            });
        }
        states
    }

    fn embed(&self, input_ids: Tensor<2, Int>) -> Tensor<3> {
        let e = &self.embeddings;
        host_dropout::forward(&e.drop, e.norm.forward(e.tok_embeddings.forward(input_ids)))
    }

    /// The last hidden state (after `final_norm`) of a padded or packed batch.
    pub fn encode_batch(&self, b: &TokenBatch) -> Tensor<3> {
        let x = self.embed(b.input_ids.clone());
        let [rows, seq, _] = x.dims();
        let device = x.device();
        let (positions, global) = match &b.packing {
            None => (
                Tensor::<1, Int>::arange(0..seq as i64, &device).unsqueeze::<2>(),
                padding_bias(b.attention_mask.clone().cast(x.dtype())),
            ),
            Some(packing) => (
                packing.position_ids.clone(),
                mask_to_bias(packing.attention.clone().cast(x.dtype()))
                    .reshape([rows, 1, seq, seq]),
            ),
        };
        let inputs = self.layer_inputs(positions, global, rows);
        let x = self
            .layers
            .iter()
            .fold(x, |x, layer| layer.forward(x, &inputs));
        self.final_norm.forward(x)
    }

    /// The biases and RoPE tables every layer of a forward over `rows` rows reads.
    fn layer_inputs(
        &self,
        positions: Tensor<2, Int>,
        global: Tensor<4>,
        rows: usize,
    ) -> LayerInputs {
        let [_, _, _, seq] = global.dims();
        let local = global.clone() + self.band(seq, &global.device()).cast(global.dtype());
        let (global_theta, local_theta) = self.rope_theta;
        LayerInputs {
            global_rope: rope_tables(positions.clone(), self.head_dim, global_theta, rows),
            local_rope: rope_tables(positions, self.head_dim, local_theta, rows),
            global,
            local,
        }
    }
}

/// `ModernBertPredictionHead`: dense, activation, norm.
#[derive(Module, Debug)]
pub struct ModernBertPredictionHead {
    pub dense: Linear,
    pub norm: LayerNorm,
    #[module(skip)]
    pub act: HiddenAct,
}

impl ModernBertPredictionHead {
    fn new(config: &BertConfig, s: &ModernBertSettings, device: &Device) -> Self {
        let h = config.hidden_size;
        Self {
            dense: dense(h, h, s.classifier_bias, device),
            norm: norm(h, s, device),
            act: s.classifier_activation,
        }
    }

    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let y = self.dense.forward(x);
        let y = match self.act {
            HiddenAct::Gelu => crate::activation::gelu(y),
            HiddenAct::GeluNew => activation::gelu_approximate(y),
            HiddenAct::Relu => activation::relu(y),
        };
        self.norm.forward(y)
    }
}

/// `ModernBertForSequenceClassification`: the first token (or the tokens' mean, as
/// `classifier_pooling` or `--pooling` says) through the prediction head, dropout and
/// `classifier`.
#[derive(Module, Debug)]
pub struct ModernBertForSequenceClassification {
    pub model: ModernBertModel,
    pub head: ModernBertPredictionHead,
    pub drop: Dropout,
    pub classifier: Linear,
    #[module(skip)]
    pub pooling: Pooling,
}

impl ModernBertForSequenceClassification {
    pub fn new(
        config: &BertConfig,
        s: &ModernBertSettings,
        num_labels: usize,
        pooling: Pooling,
        device: &Device,
    ) -> Self {
        Self {
            model: ModernBertModel::new(config, s, device),
            head: ModernBertPredictionHead::new(config, s, device),
            drop: dropout(s.classifier_dropout),
            classifier: dense(config.hidden_size, num_labels, true, device),
            pooling,
        }
    }

    pub fn num_labels(&self) -> usize {
        self.classifier.weight.dims()[1]
    }

    pub fn features_of(&self, b: TokenBatch) -> Tensor<2> {
        let hidden = self.model.encode_batch(&b);
        pool_tokens(hidden, &b, self.pooling)
    }

    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        let features = features.cast(self.classifier.weight.val().dtype());
        let x = self.head.forward(features);
        self.classifier
            .forward(host_dropout::forward(&self.drop, x))
    }
}

/// `ModernBertForTokenClassification`: every token through the prediction head, dropout and
/// `classifier`.
#[derive(Module, Debug)]
pub struct ModernBertForTokenClassification {
    pub model: ModernBertModel,
    pub head: ModernBertPredictionHead,
    pub drop: Dropout,
    pub classifier: Linear,
}

impl ModernBertForTokenClassification {
    pub fn new(
        config: &BertConfig,
        s: &ModernBertSettings,
        num_labels: usize,
        device: &Device,
    ) -> Self {
        Self {
            model: ModernBertModel::new(config, s, device),
            head: ModernBertPredictionHead::new(config, s, device),
            drop: dropout(s.classifier_dropout),
            classifier: dense(config.hidden_size, num_labels, true, device),
        }
    }

    pub fn num_labels(&self) -> usize {
        self.classifier.weight.dims()[1]
    }

    pub fn token_features_of(&self, b: TokenBatch) -> Tensor<2> {
        token_rows(
            self.model.encode_batch(&b),
            self.classifier.weight.val().dtype(),
        )
    }

    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        let x = self.head.forward(features);
        self.classifier
            .forward(host_dropout::forward(&self.drop, x))
    }
}
