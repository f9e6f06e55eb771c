//! DeBERTa-v2 and v3 (`model_type` `deberta-v2`), as transformers' `modeling_deberta_v2.py`
//! builds them: disentangled self-attention — content-to-content plus content-to-position
//! (`c2p`) and position-to-content (`p2c`) terms over relative positions, log-bucketed
//! (`position_buckets`) — with the relative embeddings shared by all layers
//! (`encoder.rel_embeddings`, normalised when `norm_rel_ebd` says `layer_norm`), projected by
//! each layer's own query/key projections (`share_att_key`, v3) or by `pos_query_proj` /
//! `pos_key_proj` (v2); optional absolute positions (`position_biased_input`, off in v3), token
//! types (`type_vocab_size` 0 in v3), `embed_proj`, and the `ContextPooler` (dense + activation
//! on the first token) before the classifier, and v2's `ConvLayer` after the first layer where
//! `conv_kernel_size` asks for it (DeBERTa-v2-xlarge; a model with it reads padded batches only,
//! since a convolution over a packed row would cross examples). The enhanced mask decoder is
//! for pre-training and not built.

use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{
    Dropout, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig,
    PaddingConfig1d,
};
use burn::prelude::*;
use burn::tensor::activation;

use kiln_data::TokenBatch;

use crate::bert::{
    dropout, linear, mask_to_bias, padding_bias, pool_tokens, token_rows, BertIntermediate,
    BertResidualOutput, Pooling,
};
use crate::config::{BertConfig, HiddenAct};
use crate::dropout as host_dropout;

/// DeBERTa-v2's settings beyond BERT's fields, with transformers' defaults (`DebertaV2Config`).
#[derive(Debug, Clone, PartialEq)]
pub struct DebertaSettings {
    pub relative_attention: bool,
    /// The relative distance beyond which positions share an embedding (−1 in the config:
    /// `max_position_embeddings`).
    pub max_relative_positions: usize,
    /// Log buckets of relative positions (v3: 256); 0 for none.
    pub position_buckets: usize,
    pub c2p: bool,
    pub p2c: bool,
    pub share_att_key: bool,
    pub norm_rel_ebd: bool,
    pub position_biased_input: bool,
    pub pooler_dropout: f64,
    pub pooler_hidden_act: HiddenAct,
    pub cls_dropout: f64,
    /// v2's convolution after the first layer: kernel size (0: none), groups, activation.
    pub conv_kernel_size: usize,
    pub conv_groups: usize,
    pub conv_act: ConvAct,
}

/// `conv_act`: tanh by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvAct {
    Tanh,
    Gelu,
    Relu,
}

impl DebertaSettings {
    /// From `config.json` (the fields beyond BERT's sit in `config.extra`); errors name the
    /// field.
    pub fn from_config(config: &BertConfig) -> Result<Self, String> {
        let extra = &config.extra;
        let int = |field: &str, default: i64| -> Result<i64, String> {
            match extra.get(field) {
                None | Some(serde_json::Value::Null) => Ok(default),
                Some(v) => v
                    .as_i64()
                    .ok_or_else(|| format!("field `{field}` must be a whole number, got {v}")),
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
        let conv_kernel_size = int("conv_kernel_size", 0)?.max(0) as usize;
        let conv_groups = int("conv_groups", 1)?;
        if conv_kernel_size > 0
            && (conv_kernel_size.is_multiple_of(2)
                || conv_groups < 1
                || !config.hidden_size.is_multiple_of(conv_groups as usize))
        {
            return Err(format!(
                "fields `conv_kernel_size` ({conv_kernel_size}) and `conv_groups` \
                 ({conv_groups}): the kernel must be odd and the groups divide `hidden_size`"
            ));
        }
        let conv_act = match extra
            .get("conv_act")
            .and_then(|v| v.as_str())
            .unwrap_or("tanh")
        {
            "tanh" => ConvAct::Tanh,
            "gelu" => ConvAct::Gelu,
            "relu" => ConvAct::Relu,
            other => return Err(format!("field `conv_act` is `{other}` (tanh, gelu, relu)")),
        };
        if let Some(size) = extra.get("attention_head_size").and_then(|v| v.as_u64()) {
            if size as usize * config.num_attention_heads != config.hidden_size {
                return Err(format!(
                    "field `attention_head_size` ({size}) × heads differs from `hidden_size`; \
                     kiln needs them equal"
                ));
            }
        }
        // `pos_att_type`: a list (transformers 4.x+) or a `p2c|c2p` string (older configs).
        let kinds: Vec<String> = match extra.get("pos_att_type") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::String(s)) => {
                s.split('|').map(|k| k.trim().to_lowercase()).collect()
            }
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|k| {
                    k.as_str()
                        .map(|k| k.trim().to_lowercase())
                        .ok_or_else(|| format!("field `pos_att_type` has `{k}`"))
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(format!("field `pos_att_type` is `{other}`")),
        };
        if let Some(bad) = kinds
            .iter()
            .find(|k| !["c2p", "p2c", "none", ""].contains(&k.as_str()))
        {
            return Err(format!(
                "field `pos_att_type` has `{bad}` (c2p and p2c are known)"
            ));
        }
        let max_relative = int("max_relative_positions", -1)?;
        let norm_rel_ebd = match extra.get("norm_rel_ebd") {
            None => false,
            Some(v) => v
                .as_str()
                .ok_or_else(|| format!("field `norm_rel_ebd` must be a string, got {v}"))?
                .to_lowercase()
                .split('|')
                .any(|k| k.trim() == "layer_norm"),
        };
        let act = match extra
            .get("pooler_hidden_act")
            .and_then(|v| v.as_str())
            .unwrap_or("gelu")
        {
            "gelu" => HiddenAct::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => HiddenAct::GeluNew,
            "relu" => HiddenAct::Relu,
            other => return Err(format!("field `pooler_hidden_act` is `{other}`")),
        };
        let probability = |field: &str, default: f64| -> Result<f64, String> {
            match extra.get(field) {
                None | Some(serde_json::Value::Null) => Ok(default),
                Some(v) => v
                    .as_f64()
                    .filter(|p| (0.0..1.0).contains(p))
                    .ok_or_else(|| format!("field `{field}` must be in [0, 1), got {v}")),
            }
        };
        Ok(Self {
            relative_attention: flag("relative_attention", false)?,
            max_relative_positions: if max_relative < 1 {
                config.max_position_embeddings
            } else {
                max_relative as usize
            },
            position_buckets: int("position_buckets", -1)?.max(0) as usize,
            c2p: kinds.iter().any(|k| k == "c2p"),
            p2c: kinds.iter().any(|k| k == "p2c"),
            share_att_key: flag("share_att_key", false)?,
            norm_rel_ebd,
            position_biased_input: flag("position_biased_input", true)?,
            pooler_dropout: probability("pooler_dropout", 0.0)?,
            pooler_hidden_act: act,
            cls_dropout: probability("cls_dropout", config.hidden_dropout_prob)?,
            conv_kernel_size,
            conv_groups: conv_groups.max(1) as usize,
            conv_act,
        })
    }

    /// Rows of the relative embedding table a layer reads: twice the bucket count, or twice
    /// the largest relative distance.
    fn att_span(&self) -> usize {
        if self.position_buckets > 0 {
            self.position_buckets
        } else {
            self.max_relative_positions
        }
    }
}

/// transformers' `make_log_bucket_position` for one relative position, in f32 as torch does.
fn log_bucket(relative: i64, bucket_size: usize, max_position: usize) -> i64 {
    let mid = (bucket_size / 2) as i64;
    let abs = if relative < mid && relative > -mid {
        mid - 1
    } else {
        relative.abs()
    };
    if abs <= mid {
        return relative;
    }
    let ratio = (abs as f32 / mid as f32).ln() / ((max_position - 1) as f32 / mid as f32).ln();
    let log_pos = (ratio * (mid - 1) as f32).ceil() + mid as f32;
    log_pos as i64 * relative.signum()
}

/// The (bucketed) relative position `i − j` of every query `i` and key `j` of a row of `seq`.
fn relative_positions(seq: usize, s: &DebertaSettings) -> Vec<i64> {
    let mut out = Vec::with_capacity(seq * seq);
    for i in 0..seq as i64 {
        for j in 0..seq as i64 {
            let r = i - j;
            out.push(if s.position_buckets > 0 && s.max_relative_positions > 0 {
                log_bucket(r, s.position_buckets, s.max_relative_positions)
            } else {
                r
            });
        }
    }
    out
}

/// Word (+ absolute position) (+ token type) embeddings, `embed_proj`, LayerNorm, the padding
/// zeroed, dropout.
#[derive(Module, Debug)]
pub struct DebertaV2Embeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Option<Embedding>,
    pub token_type_embeddings: Option<Embedding>,
    pub embed_proj: Option<Linear>,
    /// HF's `LayerNorm`.
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
}

impl DebertaV2Embeddings {
    fn forward(&self, b: &TokenBatch, positions: Tensor<2, Int>) -> Tensor<3> {
        let mut x = self.word_embeddings.forward(b.input_ids.clone());
        if let Some(table) = &self.position_embeddings {
            x = x + table.forward(positions);
        }
        if let Some(table) = &self.token_type_embeddings {
            x = x + table.forward(b.token_type_ids.clone());
        }
        if let Some(project) = &self.embed_proj {
            x = project.forward(x);
        }
        let x = self.layer_norm.forward(x);
        let [rows, seq, _] = x.dims();
        let mask = b
            .attention_mask
            .clone()
            .cast(x.dtype())
            .reshape([rows, seq, 1]);
        host_dropout::forward(&self.dropout, x * mask)
    }
}

/// `DisentangledSelfAttention`.
#[derive(Module, Debug)]
pub struct DisentangledSelfAttention {
    pub query_proj: Linear,
    pub key_proj: Linear,
    pub value_proj: Linear,
    pub pos_key_proj: Option<Linear>,
    pub pos_query_proj: Option<Linear>,
    pub dropout: Dropout,
    pub pos_dropout: Dropout,
    #[module(skip)]
    pub num_heads: usize,
    #[module(skip)]
    pub c2p: bool,
    #[module(skip)]
    pub p2c: bool,
}

impl DisentangledSelfAttention {
    fn heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [b, s, h] = x.dims();
        x.reshape([b, s, self.num_heads, h / self.num_heads])
            .swap_dims(1, 2)
    }

    /// `rel`: the relative embeddings `[2·span, hidden]`; `c2p_index` / `p2c_index`: each
    /// (query, key)'s row of them, `[rows, heads, seq, seq]`.
    fn forward(&self, x: Tensor<3>, mask_bias: Tensor<4>, rel: &Relative) -> Tensor<3> {
        let [rows, seq, hidden] = x.dims();
        let q = self.heads(self.query_proj.forward(x.clone()));
        let k = self.heads(self.key_proj.forward(x.clone()));
        let v = self.heads(self.value_proj.forward(x));
        let head_dim = hidden / self.num_heads;
        let factor = 1 + usize::from(self.c2p) + usize::from(self.p2c);
        let scale = ((head_dim * factor) as f64).sqrt().recip();
        let mut scores = q
            .clone()
            .matmul(k.clone().swap_dims(2, 3))
            .mul_scalar(scale);
        if let Some(table) = &rel.embeddings {
            let table = host_dropout::forward(&self.pos_dropout, table.clone());
            let [span2, _] = table.dims();
            let project = |proj: &Linear| {
                proj.forward(table.clone().unsqueeze::<3>())
                    .reshape([1, span2, self.num_heads, head_dim])
                    .swap_dims(1, 2)
                    .expand([rows, self.num_heads, span2, head_dim])
            };
            if self.c2p {
                let pos_key = project(self.pos_key_proj.as_ref().unwrap_or(&self.key_proj));
                let c2p = q
                    .matmul(pos_key.swap_dims(2, 3))
                    .gather(3, rel.c2p_index(rows, self.num_heads));
                scores = scores + c2p.mul_scalar(scale);
            }
            if self.p2c {
                let pos_query = project(self.pos_query_proj.as_ref().unwrap_or(&self.query_proj));
                let p2c = k
                    .matmul(pos_query.swap_dims(2, 3))
                    .gather(3, rel.p2c_index(rows, self.num_heads))
                    .swap_dims(2, 3);
                scores = scores + p2c.mul_scalar(scale);
            }
        }
        let probs =
            host_dropout::forward(&self.dropout, activation::softmax(scores + mask_bias, 3));
        probs.matmul(v).swap_dims(1, 2).reshape([rows, seq, hidden])
    }
}

/// What every layer of one forward shares: the relative embeddings and index tables.
struct Relative {
    embeddings: Option<Tensor<2>>,
    /// `clamp(r + span, 0, 2·span − 1)`, `[1, 1, seq, seq]`.
    c2p: Tensor<4, Int>,
    /// `clamp(−r + span, …)`, transposed as transformers gathers it.
    p2c: Tensor<4, Int>,
}

impl Relative {
    fn c2p_index(&self, rows: usize, heads: usize) -> Tensor<4, Int> {
        let [_, _, q, k] = self.c2p.dims();
        self.c2p.clone().expand([rows, heads, q, k])
    }
    fn p2c_index(&self, rows: usize, heads: usize) -> Tensor<4, Int> {
        let [_, _, q, k] = self.p2c.dims();
        self.p2c.clone().expand([rows, heads, q, k])
    }
}

/// `DebertaV2Attention`: disentangled self-attention, then dense, residual, LayerNorm (HF's
/// `attention.self` and `attention.output`).
#[derive(Module, Debug)]
pub struct DebertaV2Attention {
    pub self_attention: DisentangledSelfAttention,
    pub output: BertResidualOutput,
}

/// `DebertaV2Layer`: attention, intermediate, output — BERT's layout.
#[derive(Module, Debug)]
pub struct DebertaV2Layer {
    pub attention: DebertaV2Attention,
    pub intermediate: BertIntermediate,
    pub output: BertResidualOutput,
}

impl DebertaV2Layer {
    fn forward(&self, x: Tensor<3>, mask_bias: Tensor<4>, rel: &Relative) -> Tensor<3> {
        let context = self
            .attention
            .self_attention
            .forward(x.clone(), mask_bias, rel);
        let attended = self.attention.output.forward(context, x);
        let inner = self.intermediate.forward(attended.clone());
        self.output.forward(inner, attended)
    }
}

/// `ConvLayer`: a convolution over the sequence of the first layer's input, added to its output
/// (`LayerNorm(output + act(conv(input)))`), padding kept at zero.
#[derive(Module, Debug)]
pub struct ConvLayer {
    pub conv: Conv1d,
    /// HF's `LayerNorm`.
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
    #[module(skip)]
    pub act: ConvAct,
}

impl ConvLayer {
    /// `input`, `residual`: `[rows, seq, hidden]`; `mask`: `[rows, seq]`, 1 for real tokens.
    fn forward(&self, input: Tensor<3>, residual: Tensor<3>, mask: Tensor<2>) -> Tensor<3> {
        let [rows, seq, _] = input.dims();
        let mask = mask.cast(input.dtype()).reshape([rows, seq, 1]);
        let out = self.conv.forward(input.swap_dims(1, 2)).swap_dims(1, 2) * mask.clone();
        let out = host_dropout::forward(&self.dropout, out);
        let out = match self.act {
            ConvAct::Tanh => out.tanh(),
            ConvAct::Gelu => crate::activation::gelu(out),
            ConvAct::Relu => activation::relu(out),
        };
        self.layer_norm.forward(residual + out) * mask
    }
}

/// `DebertaV2Encoder`: the layers, the shared relative embeddings and their LayerNorm, v2's
/// convolution.
#[derive(Module, Debug)]
pub struct DebertaV2Encoder {
    pub layer: Vec<DebertaV2Layer>,
    pub rel_embeddings: Option<Embedding>,
    /// HF's `encoder.LayerNorm` (over the relative embeddings).
    pub layer_norm: Option<LayerNorm>,
    pub conv: Option<ConvLayer>,
}

/// `DebertaV2Model`: embeddings and encoder.
#[derive(Module, Debug)]
pub struct DebertaV2Model {
    pub embeddings: DebertaV2Embeddings,
    pub encoder: DebertaV2Encoder,
    #[module(skip)]
    pub settings: DebertaSettings,
}

impl DebertaV2Model {
    pub fn new(config: &BertConfig, s: &DebertaSettings, device: &Device) -> Self {
        let (h, width) = (config.hidden_size, config.embedding_width());
        let table = |rows: usize, width: usize| {
            EmbeddingConfig::new(rows, width)
                .with_initializer(burn::nn::Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                })
                .init(device)
        };
        let norm = |width: usize| {
            LayerNormConfig::new(width)
                .with_epsilon(config.layer_norm_eps)
                .init(device)
        };
        let with_rel = s.relative_attention;
        let layer = (0..config.num_hidden_layers)
            .map(|_| DebertaV2Layer {
                attention: DebertaV2Attention {
                    self_attention: DisentangledSelfAttention {
                        query_proj: linear(h, h, device),
                        key_proj: linear(h, h, device),
                        value_proj: linear(h, h, device),
                        pos_key_proj: (with_rel && !s.share_att_key && s.c2p)
                            .then(|| linear(h, h, device)),
                        pos_query_proj: (with_rel && !s.share_att_key && s.p2c)
                            .then(|| linear(h, h, device)),
                        dropout: dropout(config.attention_probs_dropout_prob),
                        pos_dropout: dropout(config.hidden_dropout_prob),
                        num_heads: config.num_attention_heads,
                        c2p: with_rel && s.c2p,
                        p2c: with_rel && s.p2c,
                    },
                    output: BertResidualOutput::new(config, h, device),
                },
                intermediate: BertIntermediate {
                    dense: linear(h, config.intermediate_size, device),
                    activation: config.hidden_act,
                },
                output: BertResidualOutput::new(config, config.intermediate_size, device),
            })
            .collect();
        Self {
            embeddings: DebertaV2Embeddings {
                word_embeddings: table(config.vocab_size, width),
                position_embeddings: s
                    .position_biased_input
                    .then(|| table(config.max_position_embeddings, width)),
                token_type_embeddings: (config.type_vocab_size > 0)
                    .then(|| table(config.type_vocab_size, width)),
                embed_proj: (width != h)
                    .then(|| LinearConfig::new(width, h).with_bias(false).init(device)),
                layer_norm: norm(h),
                dropout: dropout(config.hidden_dropout_prob),
            },
            encoder: DebertaV2Encoder {
                layer,
                rel_embeddings: with_rel.then(|| table(2 * s.att_span(), h)),
                layer_norm: (with_rel && s.norm_rel_ebd).then(|| norm(h)),
                conv: (s.conv_kernel_size > 0).then(|| {
                    let k = s.conv_kernel_size;
                    ConvLayer {
                        conv: Conv1dConfig::new(h, h, k)
                            .with_groups(s.conv_groups)
                            .with_padding(PaddingConfig1d::Explicit((k - 1) / 2, (k - 1) / 2))
                            .init(device),
                        layer_norm: norm(h),
                        dropout: dropout(config.hidden_dropout_prob),
                        act: s.conv_act,
                    }
                }),
            },
            settings: s.clone(),
        }
    }

    pub fn num_layers(&self) -> usize {
        self.encoder.layer.len()
    }

    /// Whether packed batches (several examples to a row) can run: not with v2's convolution,
    /// which would reach across examples.
    pub fn accepts_packed(&self) -> bool {
        self.encoder.conv.is_none()
    }

    /// The relative embeddings (normalised) and index tables of rows of `seq` tokens. Packed
    /// examples are contiguous, so row distance is their tokens' distance.
    fn relative(&self, seq: usize, device: &Device) -> Relative {
        let span = self.settings.att_span() as i64;
        let r = relative_positions(seq, &self.settings);
        let table = |values: Vec<i64>| {
            Tensor::<2, Int>::from_data(TensorData::new(values, [seq, seq]), device)
                .reshape([1, 1, seq, seq])
        };
        let c2p: Vec<i64> = r
            .iter()
            .map(|&r| (r + span).clamp(0, 2 * span - 1))
            .collect();
        // transformers gathers p2c by [key, query] and transposes: key a, query b reads row
        // clamp(−r(a, b) + span).
        let p2c: Vec<i64> = r
            .iter()
            .map(|&r| (-r + span).clamp(0, 2 * span - 1))
            .collect();
        let embeddings = self.encoder.rel_embeddings.as_ref().map(|e| {
            let w = e.weight.val().slice(s![0..2 * span as usize, ..]);
            match &self.encoder.layer_norm {
                Some(n) => n.forward(w),
                None => w,
            }
        });
        Relative {
            embeddings,
            c2p: table(c2p),
            p2c: table(p2c),
        }
    }

    /// The last hidden state of a padded or packed batch, and (when asked) every layer's.
    fn run(&self, b: &TokenBatch, keep_all: bool) -> Vec<Tensor<3>> {
        let [rows, seq] = b.input_ids.dims();
        let device = b.input_ids.device();
        let (positions, mask_bias) = match &b.packing {
            None => (
                Tensor::<1, Int>::arange(0..seq as i64, &device).unsqueeze::<2>(),
                padding_bias(b.attention_mask.clone()),
            ),
            Some(packing) => (
                packing.position_ids.clone(),
                mask_to_bias(packing.attention.clone()).reshape([rows, 1, seq, seq]),
            ),
        };
        let mut x = self.embeddings.forward(b, positions);
        let mask_bias = mask_bias.cast(x.dtype());
        let rel = self.relative(seq, &device);
        let mut states = vec![x.clone()];
        for (i, layer) in self.encoder.layer.iter().enumerate() {
            let input = x.clone();
            x = layer.forward(x, mask_bias.clone(), &rel);
            if let (0, Some(conv)) = (i, &self.encoder.conv) {
                x = conv.forward(input, x, b.attention_mask.clone());
            }
            if keep_all {
                states.push(x.clone());
            }
        }
        if !keep_all {
            states = vec![x];
        }
        states
    }

    pub fn encode_batch(&self, b: &TokenBatch) -> Tensor<3> {
        self.run(b, false).pop().expect("one state")
    }

    /// The embeddings' output and every layer's (`num_layers + 1` tensors).
    pub fn hidden_states(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        attention_mask: Tensor<2>,
    ) -> Vec<Tensor<3>> {
        let lengths = Vec::new();
        let b = TokenBatch {
            input_ids,
            token_type_ids,
            attention_mask,
            lengths,
            packing: None,
        };
        self.run(&b, true)
    }
}

/// `ContextPooler`: dropout, dense and the pooler's activation on the first token.
#[derive(Module, Debug)]
pub struct ContextPooler {
    pub dense: Linear,
    pub dropout: Dropout,
    #[module(skip)]
    pub act: HiddenAct,
}

impl ContextPooler {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let y = self.dense.forward(host_dropout::forward(&self.dropout, x));
        match self.act {
            HiddenAct::Gelu => crate::activation::gelu(y),
            HiddenAct::GeluNew => activation::gelu_approximate(y),
            HiddenAct::Relu => activation::relu(y),
        }
    }
}

/// `DebertaV2ForSequenceClassification`: the first token (or the tokens' mean with
/// [`Pooling::Mean`]) through the `ContextPooler`, dropout and `classifier`.
#[derive(Module, Debug)]
pub struct DebertaV2ForSequenceClassification {
    pub deberta: DebertaV2Model,
    pub pooler: ContextPooler,
    pub classifier: Linear,
    pub dropout: Dropout,
    #[module(skip)]
    pub pooling: Pooling,
}

impl DebertaV2ForSequenceClassification {
    pub fn new(
        config: &BertConfig,
        s: &DebertaSettings,
        num_labels: usize,
        pooling: Pooling,
        device: &Device,
    ) -> Self {
        let h = config.hidden_size;
        Self {
            deberta: DebertaV2Model::new(config, s, device),
            pooler: ContextPooler {
                dense: linear(h, h, device),
                dropout: dropout(s.pooler_dropout),
                act: s.pooler_hidden_act,
            },
            classifier: linear(h, num_labels, device),
            dropout: dropout(s.cls_dropout),
            pooling,
        }
    }

    pub fn num_labels(&self) -> usize {
        self.classifier.weight.dims()[1]
    }

    pub fn features_of(&self, b: TokenBatch) -> Tensor<2> {
        let hidden = self.deberta.encode_batch(&b);
        pool_tokens(hidden, &b, self.pooling)
    }

    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        let features = features.cast(self.classifier.weight.val().dtype());
        let pooled = self.pooler.forward(features);
        self.classifier
            .forward(host_dropout::forward(&self.dropout, pooled))
    }
}

/// `DebertaV2ForTokenClassification`: the encoder, dropout and a linear layer on every token.
#[derive(Module, Debug)]
pub struct DebertaV2ForTokenClassification {
    pub deberta: DebertaV2Model,
    pub dropout: Dropout,
    pub classifier: Linear,
}

impl DebertaV2ForTokenClassification {
    pub fn new(
        config: &BertConfig,
        s: &DebertaSettings,
        num_labels: usize,
        device: &Device,
    ) -> Self {
        Self {
            deberta: DebertaV2Model::new(config, s, device),
            dropout: dropout(config.hidden_dropout_prob),
            classifier: linear(config.hidden_size, num_labels, device),
        }
    }

    pub fn num_labels(&self) -> usize {
        self.classifier.weight.dims()[1]
    }

    pub fn token_features_of(&self, b: TokenBatch) -> Tensor<2> {
        token_rows(
            self.deberta.encode_batch(&b),
            self.classifier.weight.val().dtype(),
        )
    }

    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        self.classifier
            .forward(host_dropout::forward(&self.dropout, features))
    }
}
