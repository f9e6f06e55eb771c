//! `BertConfig`: the fields of a Hugging Face `config.json` that a BERT encoder needs.
//!
//! Field names mirror `transformers.BertConfig` so that a `config.json` deserialises as-is;
//! fields kiln does not use are kept in `extra` and written back unchanged on save.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// Most parameters (tensor elements) a config may describe: 4e9, 16 GB in f32, ten times
/// the largest BERT-family encoders. Beyond it the config is taken as corrupt rather than
/// allocated (an allocation failure aborts the process, it cannot be reported).
const MAX_PARAMETERS: u128 = 4_000_000_000;
/// Most encoder layers a config may describe (the deepest BERT-family encoders have 48).
const MAX_LAYERS: usize = 1024;

/// The hidden activation named by `hidden_act`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HiddenAct {
    /// GELU with the exact erf formulation (`"gelu"`), BERT's default.
    #[serde(rename = "gelu")]
    Gelu,
    /// GELU with the tanh approximation (`"gelu_new"`, `"gelu_pytorch_tanh"`).
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluNew,
    #[serde(rename = "relu")]
    Relu,
}

fn d_vocab() -> usize {
    30522
}
fn d_hidden() -> usize {
    768
}
fn d_layers() -> usize {
    12
}
fn d_heads() -> usize {
    12
}
fn d_intermediate() -> usize {
    3072
}
fn d_act() -> HiddenAct {
    HiddenAct::Gelu
}
fn d_dropout() -> f64 {
    0.1
}
fn d_positions() -> usize {
    512
}
fn d_type_vocab() -> usize {
    2
}
fn d_eps() -> f64 {
    1e-12
}
fn d_position_type() -> String {
    "absolute".to_string()
}

/// Mirror of Hugging Face's `BertConfig` (defaults are transformers' defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    #[serde(default = "d_vocab")]
    pub vocab_size: usize,
    // The aliases are DistilBERT's names for the same sizes (`DistilBertConfig`), written
    // back under those names on export (`to_json`).
    #[serde(default = "d_hidden", alias = "dim")]
    pub hidden_size: usize,
    #[serde(default = "d_layers", alias = "n_layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "d_heads", alias = "n_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "d_intermediate", alias = "hidden_dim")]
    pub intermediate_size: usize,
    #[serde(default = "d_act", alias = "activation")]
    pub hidden_act: HiddenAct,
    #[serde(default = "d_dropout", alias = "dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "d_dropout", alias = "attention_dropout")]
    pub attention_probs_dropout_prob: f64,
    #[serde(default = "d_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "d_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default = "d_position_type")]
    pub position_embedding_type: String,
    /// ELECTRA's embedding width, projected to `hidden_size` when it differs (`None`:
    /// ELECTRA's default 128, the hidden size for other families).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_size: Option<usize>,
    /// Dropout before the classifier; `None` means "use `hidden_dropout_prob`", as in transformers.
    #[serde(default)]
    pub classifier_dropout: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    #[serde(default = "d_model_type")]
    pub model_type: String,
    /// Class index (as a decimal string, as JSON object keys must be) to label name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id2label: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label2id: Option<BTreeMap<String, usize>>,
    /// Every other field of the source `config.json`, written back unchanged.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn d_model_type() -> String {
    "bert".to_string()
}

/// The encoder families kiln loads, told apart by `config.json`'s `model_type` (kiln's own
/// `AutoModel…` dispatch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `bert`: BERT, MiniLM, BGE, E5, GTE.
    Bert,
    /// `roberta`: BERT's layers, position ids counted after `pad_token_id`, one token type,
    /// `RobertaClassificationHead`.
    Roberta,
    /// `xlm-roberta`: RoBERTa's architecture with a SentencePiece vocabulary.
    XlmRoberta,
    /// `electra` (the discriminator): BERT's layers over embeddings of `embedding_size`
    /// projected to the hidden size, no pooler, `ElectraClassificationHead`.
    Electra,
    /// `distilbert`: its own key names, no token types, no pooler, `pre_classifier` + ReLU.
    DistilBert,
    /// `modernbert`: RoPE, GeGLU, pre-norm, global and sliding-window layers, prediction head.
    ModernBert,
    /// `deberta-v2` (DeBERTa-v2 and v3): disentangled attention over relative positions,
    /// `ContextPooler`.
    DebertaV2,
}

impl Family {
    /// The family a `model_type` names, if kiln loads it.
    pub fn from_model_type(model_type: &str) -> Option<Self> {
        match model_type {
            "bert" => Some(Self::Bert),
            "roberta" => Some(Self::Roberta),
            "xlm-roberta" => Some(Self::XlmRoberta),
            "electra" => Some(Self::Electra),
            "distilbert" => Some(Self::DistilBert),
            "modernbert" => Some(Self::ModernBert),
            "deberta-v2" => Some(Self::DebertaV2),
            _ => None,
        }
    }

    /// The `model_type`s kiln loads, for error messages.
    pub const SUPPORTED: &'static str =
        "`bert` (BERT, MiniLM, BGE, E5, GTE), `roberta`, `xlm-roberta`, `electra`, `distilbert`, `modernbert`, `deberta-v2`";

    /// The prefix of the encoder's tensors in a task model's checkpoint (`bert.`, `roberta.`).
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Bert => "bert",
            Self::Roberta | Self::XlmRoberta => "roberta",
            Self::Electra => "electra",
            Self::DistilBert => "distilbert",
            Self::ModernBert => "model",
            Self::DebertaV2 => "deberta",
        }
    }

    /// Hugging Face's class name for a task model of this family (`ForSequenceClassification`,
    /// `ForTokenClassification`).
    pub fn architecture(self, task: &str) -> String {
        let family = match self {
            Self::Bert => "Bert",
            Self::Roberta => "Roberta",
            Self::XlmRoberta => "XLMRoberta",
            Self::Electra => "Electra",
            Self::DistilBert => "DistilBert",
            Self::ModernBert => "ModernBert",
            Self::DebertaV2 => "DebertaV2",
        };
        format!("{family}{task}")
    }
}

impl Default for BertConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every field has a default")
    }
}

impl BertConfig {
    /// Reads and validates `config.json`.
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json_str(&text).map_err(|e| match e {
            ModelError::Config { message, .. } => ModelError::Config {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates config JSON; errors name the offending field.
    pub fn from_json_str(text: &str) -> Result<Self, ModelError> {
        // serde_path_to_error names the field at fault ("vocab_size: invalid type ...").
        let de = &mut serde_json::Deserializer::from_str(text);
        let config: BertConfig =
            serde_path_to_error::deserialize(de).map_err(|e| ModelError::Config {
                path: "config.json".into(),
                message: if e.path().iter().next().is_some() {
                    format!("field `{}`: {}", e.path(), e.inner())
                } else {
                    e.inner().to_string()
                },
            })?;
        config.validate().map_err(|message| ModelError::Config {
            path: "config.json".into(),
            message,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        for (name, value) in positive {
            // DeBERTa-v3 has no token types.
            if name == "type_vocab_size" && self.family() == Ok(Family::DebertaV2) {
                continue;
            }
            if value == 0 {
                return Err(format!("field `{name}` must be positive, got 0"));
            }
        }
        if let Some(width) = self.embedding_size {
            let elements = width as u128 * self.vocab_size as u128;
            if width == 0 || elements > MAX_PARAMETERS {
                return Err(format!(
                    "field `embedding_size` ({width}) must be positive and make a word table \
                     (× `vocab_size` {}) of at most {MAX_PARAMETERS} elements",
                    self.vocab_size
                ));
            }
        }
        // Sizes that parse but describe an absurd model (a corrupt or hostile config.json:
        // `vocab_size: 1000000000000`) would make loading allocate terabytes, which aborts the
        // process instead of returning an error; refuse them here, naming the fields.
        let matrices = [
            (
                "vocab_size",
                self.vocab_size,
                "hidden_size",
                self.hidden_size,
            ),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                "hidden_size",
                self.hidden_size,
            ),
            (
                "type_vocab_size",
                self.type_vocab_size,
                "hidden_size",
                self.hidden_size,
            ),
            (
                "hidden_size",
                self.hidden_size,
                "hidden_size",
                self.hidden_size,
            ),
            (
                "intermediate_size",
                self.intermediate_size,
                "hidden_size",
                self.hidden_size,
            ),
        ];
        for (a, x, b, y) in matrices {
            let elements = x as u128 * y as u128;
            if elements > MAX_PARAMETERS {
                return Err(format!(
                    "fields `{a}` ({x}) × `{b}` ({y}) make a tensor of {elements} elements, above \
                     the limit of {MAX_PARAMETERS}; the config is probably corrupt"
                ));
            }
        }
        // Layers are built eagerly (each ~20 KB of module structure before any weight is
        // allocated), so a huge count exhausts memory even with tiny tensors.
        if self.num_hidden_layers > MAX_LAYERS {
            return Err(format!(
                "field `num_hidden_layers` ({}) is above the limit of {MAX_LAYERS}; the config is \
                 probably corrupt",
                self.num_hidden_layers
            ));
        }
        let parameters = self.parameter_count();
        if parameters > MAX_PARAMETERS {
            return Err(format!(
                "the model described would have about {parameters} parameters (`num_hidden_layers` \
                 {}, `hidden_size` {}, `intermediate_size` {}, `vocab_size` {}), above the limit \
                 of {MAX_PARAMETERS}; the config is probably corrupt",
                self.num_hidden_layers, self.hidden_size, self.intermediate_size, self.vocab_size
            ));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "field `hidden_size` ({}) must be a multiple of `num_attention_heads` ({})",
                self.hidden_size, self.num_attention_heads
            ));
        }
        let probs = [
            ("hidden_dropout_prob", Some(self.hidden_dropout_prob)),
            (
                "attention_probs_dropout_prob",
                Some(self.attention_probs_dropout_prob),
            ),
            ("classifier_dropout", self.classifier_dropout),
        ];
        for (name, value) in probs {
            if let Some(p) = value {
                if !(0.0..1.0).contains(&p) {
                    return Err(format!("field `{name}` must be in [0, 1), got {p}"));
                }
            }
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err(format!(
                "field `layer_norm_eps` must be a positive number, got {}",
                self.layer_norm_eps
            ));
        }
        // Another family's config parses as BERT's (most fields share names) and would fail
        // later, on missing tensors: name the family instead.
        self.family()?;
        if self.family() == Ok(Family::ModernBert) {
            crate::modernbert::ModernBertSettings::from_config(self)?;
        }
        if self.family() == Ok(Family::DebertaV2) {
            crate::deberta_v2::DebertaSettings::from_config(self)?;
        }
        if self.family() == Ok(Family::DistilBert)
            && self.extra.get("sinusoidal_pos_embds") == Some(&serde_json::Value::Bool(true))
        {
            // transformers freezes sinusoidal position tables; kiln would train them.
            return Err(
                "field `sinusoidal_pos_embds` is true: kiln fine-tunes DistilBERT with \
                        learned position embeddings only"
                    .into(),
            );
        }
        if self.position_embedding_type != "absolute" {
            return Err(format!(
                "field `position_embedding_type` is `{}`; only `absolute` is supported",
                self.position_embedding_type
            ));
        }
        if self.pad_token_id >= self.vocab_size {
            return Err(format!(
                "field `pad_token_id` ({}) is outside the vocabulary ({})",
                self.pad_token_id, self.vocab_size
            ));
        }
        if let Some(map) = &self.id2label {
            for key in map.keys() {
                if key.parse::<usize>().is_err() {
                    return Err(format!("field `id2label` has a non-integer key `{key}`"));
                }
            }
        }
        Ok(())
    }

    /// Parameters of the encoder this config describes, saturating (it runs on an unvalidated
    /// config, where any size may be `usize::MAX`).
    fn parameter_count(&self) -> u128 {
        let [h, i, l, v, p, t] = [
            self.hidden_size,
            self.intermediate_size,
            self.num_hidden_layers,
            self.vocab_size,
            self.max_position_embeddings,
            self.type_vocab_size,
        ]
        .map(|x| x as u128);
        let mul = u128::saturating_mul;
        // Q, K, V, output (weights + biases), intermediate and output dense, two LayerNorms.
        let per_layer = mul(4, mul(h, h).saturating_add(h))
            .saturating_add(mul(mul(2, h), i))
            .saturating_add(i)
            .saturating_add(mul(5, h));
        let embeddings = mul(v.saturating_add(p).saturating_add(t).saturating_add(2), h);
        let pooler = mul(h, h).saturating_add(h);
        embeddings
            .saturating_add(mul(per_layer, l))
            .saturating_add(pooler)
    }

    /// The encoder family `model_type` names; an error naming the field for any other.
    pub fn family(&self) -> Result<Family, String> {
        Family::from_model_type(&self.model_type).ok_or_else(|| {
            format!(
                "field `model_type` is `{}`: kiln loads model_type {}; {} is not one kiln can \
                 load",
                self.model_type,
                Family::SUPPORTED,
                self.architectures
                    .as_ref()
                    .and_then(|a| a.first())
                    .map_or("this family".to_string(), |a| format!("`{a}`"))
            )
        })
    }

    /// The longest sequence (specials included) the position table takes: RoBERTa's positions
    /// start after `pad_token_id`, so 514 positions hold 512 tokens.
    pub fn max_tokens(&self) -> usize {
        match self.family() {
            Ok(Family::Roberta | Family::XlmRoberta) => self
                .max_position_embeddings
                .saturating_sub(self.pad_token_id + 1)
                .max(1),
            _ => self.max_position_embeddings,
        }
    }

    /// config.json as transformers reads it for this family: DistilBERT's sizes under its own
    /// names (`dim`, `n_layers`, …), without the BERT fields it lacks.
    pub fn to_json(&self) -> serde_json::Result<String> {
        let mut value = serde_json::to_value(self)?;
        let (renamed, dropped): (&[(&str, &str)], &[&str]) = match self.family() {
            Ok(Family::DistilBert) => (
                &[
                    ("hidden_size", "dim"),
                    ("num_hidden_layers", "n_layers"),
                    ("num_attention_heads", "n_heads"),
                    ("intermediate_size", "hidden_dim"),
                    ("hidden_act", "activation"),
                    ("hidden_dropout_prob", "dropout"),
                    ("attention_probs_dropout_prob", "attention_dropout"),
                ],
                &[
                    "type_vocab_size",
                    "layer_norm_eps",
                    "position_embedding_type",
                ],
            ),
            Ok(Family::ModernBert) => (
                &[("attention_probs_dropout_prob", "attention_dropout")],
                &[
                    "type_vocab_size",
                    "layer_norm_eps",
                    "position_embedding_type",
                    "hidden_act",
                    "hidden_dropout_prob",
                ],
            ),
            _ => (&[], &[]),
        };
        if let Some(map) = value.as_object_mut() {
            for (bert, own) in renamed {
                if let Some(v) = map.remove(*bert) {
                    map.insert(own.to_string(), v);
                }
            }
            for bert_only in dropped {
                map.remove(*bert_only);
            }
        }
        serde_json::to_string_pretty(&value)
    }

    /// The width of the embedding tables: ELECTRA's `embedding_size` (128 when absent, as
    /// transformers' `ElectraConfig`), the hidden size for every other family.
    pub fn embedding_width(&self) -> usize {
        match self.family() {
            Ok(Family::Electra) => self.embedding_size.unwrap_or(128),
            Ok(Family::DebertaV2) => self.embedding_size.unwrap_or(self.hidden_size),
            _ => self.hidden_size,
        }
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// The labels in class-index order, if the config names them (`id2label`).
    pub fn labels(&self) -> Option<Vec<String>> {
        let map = self.id2label.as_ref()?;
        let mut pairs: Vec<(usize, &String)> = map
            .iter()
            .filter_map(|(k, v)| k.parse::<usize>().ok().map(|i| (i, v)))
            .collect();
        pairs.sort();
        // Indices must be exactly 0..n for the head to line up with them.
        if pairs.iter().enumerate().any(|(i, (j, _))| i != *j) {
            return None;
        }
        Some(pairs.into_iter().map(|(_, v)| v.clone()).collect())
    }

    /// Sets `id2label`/`label2id` (and `num_labels` in the extra fields, as transformers writes it).
    pub fn set_labels(&mut self, labels: &[String]) {
        self.id2label = Some(
            labels
                .iter()
                .enumerate()
                .map(|(i, l)| (i.to_string(), l.clone()))
                .collect(),
        );
        self.label2id = Some(
            labels
                .iter()
                .enumerate()
                .map(|(i, l)| (l.clone(), i))
                .collect(),
        );
        self.extra.remove("num_labels");
    }

    /// Dropout probability in front of the classifier.
    pub fn classifier_dropout_prob(&self) -> f64 {
        self.classifier_dropout.unwrap_or(self.hidden_dropout_prob)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_config_gets_transformers_defaults() {
        let c =
            BertConfig::from_json_str(r#"{"hidden_size": 64, "num_attention_heads": 4}"#).unwrap();
        assert_eq!(c.vocab_size, 30522);
        assert_eq!(c.head_dim(), 16);
        assert_eq!(c.hidden_act, HiddenAct::Gelu);
        assert_eq!(c.layer_norm_eps, 1e-12);
    }

    #[test]
    fn unknown_fields_are_kept() {
        let c =
            BertConfig::from_json_str(r#"{"gradient_checkpointing": false, "foo": [1]}"#).unwrap();
        assert_eq!(c.extra.get("foo").unwrap(), &serde_json::json!([1]));
        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(back["foo"], serde_json::json!([1]));
    }

    #[test]
    fn activations_parse() {
        for (name, act) in [
            ("gelu", HiddenAct::Gelu),
            ("gelu_new", HiddenAct::GeluNew),
            ("gelu_pytorch_tanh", HiddenAct::GeluNew),
            ("relu", HiddenAct::Relu),
        ] {
            let c = BertConfig::from_json_str(&format!(r#"{{"hidden_act": "{name}"}}"#)).unwrap();
            assert_eq!(c.hidden_act, act);
        }
        let err = BertConfig::from_json_str(r#"{"hidden_act": "swish"}"#).unwrap_err();
        assert!(err.to_string().contains("swish"), "{err}");
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let cases = [
            (
                r#"{"hidden_size": 30, "num_attention_heads": 4}"#,
                "hidden_size",
            ),
            (r#"{"num_hidden_layers": 0}"#, "num_hidden_layers"),
            (r#"{"hidden_dropout_prob": 1.5}"#, "hidden_dropout_prob"),
            (
                r#"{"position_embedding_type": "relative_key"}"#,
                "position_embedding_type",
            ),
            (r#"{"id2label": {"x": "a"}}"#, "id2label"),
            (
                r#"{"model_type": "funnel", "architectures": ["FunnelForMaskedLM"]}"#,
                "`model_type` is `funnel`",
            ),
            (r#"{"vocab_size": "many"}"#, "vocab_size"),
            (
                r#"{"model_type": "distilbert", "sinusoidal_pos_embds": true}"#,
                "sinusoidal_pos_embds",
            ),
            (
                r#"{"model_type": "electra", "embedding_size": 0}"#,
                "embedding_size",
            ),
            (
                r#"{"model_type": "modernbert", "hidden_activation": "swish"}"#,
                "hidden_activation",
            ),
            (
                r#"{"model_type": "modernbert", "num_hidden_layers": 2,
                    "layer_types": ["full_attention"]}"#,
                "layer_types",
            ),
            (
                r#"{"model_type": "modernbert", "classifier_pooling": "max"}"#,
                "classifier_pooling",
            ),
            (
                r#"{"model_type": "deberta-v2", "conv_kernel_size": 4}"#,
                "conv_kernel_size",
            ),
            (
                r#"{"model_type": "deberta-v2", "pos_att_type": ["c2p", "p2p"]}"#,
                "pos_att_type",
            ),
            (r#"[1, 2]"#, "config.json"),
        ];
        for (json, field) in cases {
            let err = BertConfig::from_json_str(json).unwrap_err().to_string();
            assert!(
                err.contains(field),
                "error for {json} should name {field}: {err}"
            );
        }
    }

    #[test]
    fn labels_round_trip() {
        let mut c = BertConfig::default();
        c.set_labels(&["neg".into(), "pos".into()]);
        assert_eq!(
            c.labels().unwrap(),
            vec!["neg".to_string(), "pos".to_string()]
        );
        assert_eq!(c.label2id.as_ref().unwrap()["pos"], 1);
    }
}
