//! Hugging Face checkpoints in and out: `config.json` + `model.safetensors` or
//! `pytorch_model.bin` (+ `tokenizer.json`), with or without the `bert.` prefix.
//!
//! Tensor files are read and written by burn-store; this file maps HF names to the module tree
//! of `bert.rs`, checks that every tensor found a home, and stages every saved file so that it
//! appears whole, with the user's umask, and (for weights) byte-identical for identical weights.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot, ModuleStore,
    PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
};
use serde::{Deserialize, Serialize};

use crate::auto::{Encoder, SequenceClassifier, TokenClassifier};
use crate::bert::{BertClassifier, BertTokenClassifier, Pooling};
use crate::config::{BertConfig, Family};
use crate::deberta_v2::{
    DebertaSettings, DebertaV2ForSequenceClassification, DebertaV2ForTokenClassification,
};
use crate::distilbert::{DistilBertForSequenceClassification, DistilBertForTokenClassification};
use crate::electra::{ElectraForSequenceClassification, ElectraForTokenClassification};
use crate::error::ModelError;
use crate::files::{staging_dir, swap_dir, write_atomic, write_atomic_with};
use crate::modernbert::{
    ModernBertForSequenceClassification, ModernBertForTokenClassification, ModernBertSettings,
};
use crate::roberta::{RobertaForSequenceClassification, RobertaForTokenClassification};

pub const CONFIG_FILE: &str = "config.json";
pub const SAFETENSORS_FILE: &str = "model.safetensors";
pub const PYTORCH_FILE: &str = "pytorch_model.bin";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";
pub const SPECIAL_TOKENS_FILE: &str = "special_tokens_map.json";
pub const VOCAB_FILE: &str = "vocab.txt";

/// HF tensor names → module paths in a family's task model (whose encoder field is `bert` or
/// `roberta`, like HF's): the module tree is HF's, so only the renames Rust forces remain.
fn hf_to_kiln(family: Family) -> KeyRemapper {
    let prefix = format!("{}.${{1}}.", family.prefix());
    KeyRemapper::from_patterns(vec![
        // Encoder-only checkpoints (BertModel, RobertaModel; sentence-transformers) carry no
        // `bert.` / `roberta.` prefix.
        (encoder_keys(family), prefix.as_str()),
        (r"\.attention\.self\.", ".attention.self_attention."),
        (r"\.LayerNorm\.", ".layer_norm."),
    ])
    .expect("static patterns compile")
}

/// The top-level names of an encoder-only checkpoint (`BertModel`, `DistilBertModel`,
/// `ModernBertModel`), which a task model keeps under its encoder's field.
fn encoder_keys(family: Family) -> &'static str {
    match family {
        Family::ModernBert => r"^(embeddings|layers|final_norm)\.",
        // DeBERTa's `pooler` is its task head's `ContextPooler`, beside the encoder.
        Family::DebertaV2 => r"^(embeddings|encoder)\.",
        _ => r"^(embeddings|encoder|pooler|transformer)\.",
    }
}

/// Module paths → HF `BertForSequenceClassification` names: the same renames, reversed.
fn kiln_to_hf() -> KeyRemapper {
    KeyRemapper::from_patterns(vec![
        (r"\.attention\.self_attention\.", ".attention.self."),
        (r"\.layer_norm\.", ".LayerNorm."),
    ])
    .expect("static patterns compile")
}

/// Tensors a checkpoint may carry that a sequence classifier has no use for.
fn ignorable(key: &str) -> bool {
    key.ends_with("embeddings.position_ids")
        // Pre-training heads (masked LM, next sentence) of BertForPreTraining checkpoints and
        // RoBERTa's masked-LM head.
        || key.starts_with("cls.")
        || key.starts_with("lm_head.")
}

/// DistilBertForMaskedLM's pre-training head (distilbert-base's layout), left out.
const DISTILBERT_MLM_HEAD: &[&str] = &["vocab_transform.", "vocab_layer_norm.", "vocab_projector."];

/// DeBERTa's pre-training heads (deberta-v3's layout: the masked-LM and replaced-token heads),
/// and a task model's pooler under a new head, left out.
const DEBERTA_MLM_HEADS: &[&str] = &["lm_predictions.", "mask_predictions.", "cls."];

/// Where the classification head comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadInit {
    /// The checkpoint's own `classifier.*` (a model kiln or transformers fine-tuned).
    FromCheckpoint,
    /// A fresh N(0, 0.02) head with this many classes; a checkpoint head is ignored.
    New(usize),
}

/// What loading found, for the log.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub weights: PathBuf,
    pub applied: usize,
    /// Checkpoint tensors deliberately not used (`position_ids`, pre-training heads, an old head).
    pub ignored: Vec<String>,
    pub has_pooler: bool,
    pub new_head: bool,
}

/// A checkpoint directory in Hugging Face layout.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: BertConfig,
    pub weights: PathBuf,
}

enum Store {
    Safetensors(SafetensorsStore),
    Pytorch(PytorchStore),
}

impl Store {
    fn keys(&mut self) -> Result<Vec<String>, String> {
        match self {
            Store::Safetensors(s) => s.keys().map_err(|e| e.to_string()),
            Store::Pytorch(s) => s.keys().map_err(|e| e.to_string()),
        }
    }

    fn apply<M: ModuleSnapshot>(&mut self, module: &mut M) -> Result<ApplyResult, String> {
        match self {
            Store::Safetensors(s) => module.load_from(s).map_err(|e| e.to_string()),
            Store::Pytorch(s) => module.load_from(s).map_err(|e| e.to_string()),
        }
    }
}

impl Checkpoint {
    /// Reads `DIR/config.json` and finds the weights (`model.safetensors` preferred).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, ModelError> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.is_dir() {
            return Err(ModelError::Io {
                path: dir,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not a checkpoint directory",
                ),
            });
        }
        let config = BertConfig::from_file(&dir.join(CONFIG_FILE))?;
        let weights = [SAFETENSORS_FILE, PYTORCH_FILE]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
            .ok_or_else(|| ModelError::NoWeights { dir: dir.clone() })?;
        Ok(Self {
            dir,
            config,
            weights,
        })
    }

    pub fn tokenizer_path(&self) -> PathBuf {
        self.dir.join(TOKENIZER_FILE)
    }

    /// The encoder family `config.json` names.
    pub fn family(&self) -> Family {
        // `open` validated the config, which refuses any other `model_type`.
        self.config.family().unwrap_or(Family::Bert)
    }

    fn store(&self, skip_head: bool) -> Store {
        let family = self.family();
        fn keep_all(_path: &str, _container: &str) -> bool {
            true
        }
        fn keep_not_head(path: &str, _container: &str) -> bool {
            !(path.starts_with("classifier.") || path.starts_with("pre_classifier."))
        }
        let predicate: fn(&str, &str) -> bool = if skip_head { keep_not_head } else { keep_all };
        if self.weights.extension().is_some_and(|e| e == "bin") {
            Store::Pytorch(
                PytorchStore::from_file(&self.weights)
                    .remap(hf_to_kiln(family))
                    .with_predicate(predicate)
                    .allow_partial(true)
                    .validate(false),
            )
        } else {
            Store::Safetensors(
                SafetensorsStore::from_file(&self.weights)
                    .with_from_adapter(PyTorchToBurnAdapter)
                    .remap(hf_to_kiln(family))
                    .with_predicate(predicate)
                    .allow_partial(true)
                    .validate(false),
            )
        }
    }

    fn weights_error(&self, message: String) -> ModelError {
        ModelError::Weights {
            path: self.weights.clone(),
            message,
        }
    }

    /// The classes of the head to build: a fresh head's count, or the checkpoint's own (whose
    /// weight is `head_key`, and whose names `id2label` gives). Also whether the file has a head.
    fn head_size(
        &self,
        keys: &BTreeSet<String>,
        head: HeadInit,
        head_key: &str,
    ) -> Result<(usize, bool), ModelError> {
        let head_in_file = keys.contains(head_key);
        let num_labels = match head {
            HeadInit::New(n) => n,
            HeadInit::FromCheckpoint => {
                if !head_in_file {
                    return Err(self.weights_error(format!(
                        "has no classification head (`{head_key}`); fine-tune it first, or \
                         load it as an encoder"
                    )));
                }
                // An empty `id2label` is the config's fault: without the filter it reached the
                // "at least one label" check below, whose error blamed the weights file.
                self.config
                    .labels()
                    .map(|l| l.len())
                    .filter(|&n| n > 0)
                    .ok_or_else(|| ModelError::Config {
                        path: self.dir.join(CONFIG_FILE),
                        message:
                            "a model with a classification head needs `id2label` with keys 0..n"
                                .into(),
                    })?
            }
        };
        if num_labels == 0 {
            return Err(self.weights_error("a classifier needs at least one label".into()));
        }
        Ok((num_labels, head_in_file))
    }

    /// The checkpoint's tensor names (after the renames).
    fn keys(&self, store: &mut Store) -> Result<BTreeSet<String>, ModelError> {
        Ok(store
            .keys()
            .map_err(|m| self.weights_error(m))?
            .into_iter()
            .collect())
    }

    /// Loads `store` into `model` and checks that every tensor found a home; `ignored` lists
    /// checkpoint tensors this model leaves out on purpose (prefixes).
    fn apply_into<M: ModuleSnapshot>(
        &self,
        store: &mut Store,
        model: &mut M,
        head: HeadInit,
        head_in_file: bool,
        ignored: &[&str],
    ) -> Result<LoadReport, ModelError> {
        let result = store.apply(model).map_err(|m| self.weights_error(m))?;
        let mut allowed_missing: Vec<&str> = Vec::new();
        let mut ignored = ignored.to_vec();
        if matches!(head, HeadInit::New(_)) {
            // The head is new: the file's (DistilBERT's is `pre_classifier` + `classifier`) is
            // not loaded, whatever its shape — a sequence head under a token head, say.
            // ModernBERT's prediction head (`head.*`) comes from a masked-LM checkpoint when
            // it has one, as transformers loads it; an encoder-only one leaves it fresh.
            // DeBERTa's `ContextPooler` (`pooler.*` beside the encoder) is part of its head.
            allowed_missing.extend(["classifier.", "pre_classifier.", "head.", "pooler."]);
            ignored.extend(["classifier.", "pre_classifier.", "pooler."]);
        }
        let report = self.check(result, &allowed_missing, &ignored)?;
        let new_head = matches!(head, HeadInit::New(_));
        Ok(LoadReport {
            new_head,
            ignored: report
                .ignored
                .into_iter()
                .chain(
                    (new_head && head_in_file)
                        .then(|| "classifier.* (replaced by a new head)".to_string()),
                )
                .collect(),
            ..report
        })
    }

    /// Loads a BERT sequence classifier. With `HeadInit::New`, the encoder (and pooler, where
    /// the checkpoint has one) is loaded and the head is fresh; with `FromCheckpoint` the
    /// checkpoint must carry `classifier.*`. [`Self::load_sequence_classifier`] loads any family.
    pub fn load_classifier(
        &self,
        head: HeadInit,
        pooling: Pooling,
        device: &Device,
    ) -> Result<(BertClassifier, LoadReport), ModelError> {
        if self.family() != Family::Bert {
            return Err(self.weights_error(format!(
                "is a `{}` checkpoint, not BERT: load it with load_sequence_classifier",
                self.config.model_type
            )));
        }
        let mut store = self.store(matches!(head, HeadInit::New(_)));
        let keys = self.keys(&mut store)?;
        let has_pooler = keys.iter().any(|k| k.starts_with("bert.pooler."));
        let (num_labels, head_in_file) = self.head_size(&keys, head, "classifier.weight")?;
        let mut model = BertClassifier::new(&self.config, num_labels, pooling, device);
        if !has_pooler {
            model.bert.pooler = None;
        }
        let report = self.apply_into(&mut store, &mut model, head, head_in_file, &[])?;
        Ok((
            model,
            LoadReport {
                has_pooler,
                ..report
            },
        ))
    }

    /// Loads the sequence classifier of the checkpoint's family (kiln's
    /// `AutoModelForSequenceClassification`): `BertForSequenceClassification`, or
    /// `RobertaForSequenceClassification` for `roberta` and `xlm-roberta`, whose head is
    /// `classifier.dense` + `classifier.out_proj` and whose encoder has no pooler (a
    /// `RobertaModel` checkpoint's pooler is left out and reported).
    pub fn load_sequence_classifier(
        &self,
        head: HeadInit,
        pooling: Pooling,
        device: &Device,
    ) -> Result<(SequenceClassifier, LoadReport), ModelError> {
        match self.family() {
            Family::Bert => {
                let (model, report) = self.load_classifier(head, pooling, device)?;
                Ok((model.into(), report))
            }
            Family::Roberta | Family::XlmRoberta => {
                let (model, report) = self.load_headed(
                    head,
                    "classifier.out_proj.weight",
                    &["roberta.pooler."],
                    |n| RobertaForSequenceClassification::new(&self.config, n, pooling, device),
                )?;
                Ok((model.into(), report))
            }
            Family::Electra => {
                let (model, report) = self.load_headed(
                    head,
                    "classifier.out_proj.weight",
                    &["discriminator_predictions."],
                    |n| ElectraForSequenceClassification::new(&self.config, n, pooling, device),
                )?;
                Ok((model.into(), report))
            }
            Family::DistilBert => {
                let (model, report) =
                    self.load_headed(head, "classifier.weight", DISTILBERT_MLM_HEAD, |n| {
                        DistilBertForSequenceClassification::new(&self.config, n, pooling, device)
                    })?;
                Ok((model.into(), report))
            }
            Family::ModernBert => {
                let settings = self.modernbert_settings()?;
                let (model, report) =
                    self.load_headed(head, "classifier.weight", &["decoder."], |n| {
                        ModernBertForSequenceClassification::new(
                            &self.config,
                            &settings,
                            n,
                            pooling,
                            device,
                        )
                    })?;
                Ok((model.into(), report))
            }
            Family::DebertaV2 => {
                let settings = self.deberta_settings()?;
                let (model, report) =
                    self.load_headed(head, "classifier.weight", DEBERTA_MLM_HEADS, |n| {
                        DebertaV2ForSequenceClassification::new(
                            &self.config,
                            &settings,
                            n,
                            pooling,
                            device,
                        )
                    })?;
                Ok((model.into(), report))
            }
        }
    }

    fn deberta_settings(&self) -> Result<DebertaSettings, ModelError> {
        DebertaSettings::from_config(&self.config).map_err(|message| ModelError::Config {
            path: self.dir.join(CONFIG_FILE),
            message,
        })
    }

    fn modernbert_settings(&self) -> Result<ModernBertSettings, ModelError> {
        ModernBertSettings::from_config(&self.config).map_err(|message| ModelError::Config {
            path: self.dir.join(CONFIG_FILE),
            message,
        })
    }

    /// Loads a task model of another family than BERT: `build(num_labels)` makes it (the
    /// head's size from `head`, its weight being `head_key` in the file), then the checkpoint
    /// fills it; tensors under `ignored` prefixes are left out on purpose.
    fn load_headed<M: ModuleSnapshot>(
        &self,
        head: HeadInit,
        head_key: &str,
        ignored: &[&str],
        build: impl FnOnce(usize) -> M,
    ) -> Result<(M, LoadReport), ModelError> {
        let mut store = self.store(matches!(head, HeadInit::New(_)));
        let keys = self.keys(&mut store)?;
        let (num_labels, head_in_file) = self.head_size(&keys, head, head_key)?;
        let mut model = build(num_labels);
        let report = self.apply_into(&mut store, &mut model, head, head_in_file, ignored)?;
        Ok((model, report))
    }

    /// Loads a BERT token classifier (`BertForTokenClassification`): the encoder, and the head
    /// fresh (`HeadInit::New`) or the checkpoint's (`FromCheckpoint`, `id2label` giving the
    /// tags). A pooler in the checkpoint is not used (a token head reads every token).
    pub fn load_token_classifier(
        &self,
        head: HeadInit,
        device: &Device,
    ) -> Result<(BertTokenClassifier, LoadReport), ModelError> {
        // The sequence classifier's loading reads the same tensors (`bert.*`, `classifier.*`,
        // both heads being one linear layer on the hidden size); the pooler is then dropped.
        let (model, mut report) = self.load_classifier(head, Pooling::Cls, device)?;
        if model.bert.pooler.is_some() {
            report
                .ignored
                .push("bert.pooler.* (a token head reads every token)".into());
        }
        let mut bert = model.bert;
        bert.pooler = None;
        Ok((
            BertTokenClassifier {
                bert,
                dropout: model.dropout,
                classifier: model.classifier,
            },
            LoadReport {
                has_pooler: false,
                ..report
            },
        ))
    }

    /// Loads the token classifier of the checkpoint's family (kiln's
    /// `AutoModelForTokenClassification`).
    pub fn load_token_classifier_auto(
        &self,
        head: HeadInit,
        device: &Device,
    ) -> Result<(TokenClassifier, LoadReport), ModelError> {
        match self.family() {
            Family::Bert => {
                let (model, report) = self.load_token_classifier(head, device)?;
                Ok((model.into(), report))
            }
            Family::Roberta | Family::XlmRoberta => {
                let (model, report) =
                    self.load_headed(head, "classifier.weight", &["roberta.pooler."], |n| {
                        RobertaForTokenClassification::new(&self.config, n, device)
                    })?;
                Ok((model.into(), report))
            }
            Family::Electra => {
                let (model, report) = self.load_headed(
                    head,
                    "classifier.weight",
                    &["discriminator_predictions."],
                    |n| ElectraForTokenClassification::new(&self.config, n, device),
                )?;
                Ok((model.into(), report))
            }
            Family::DistilBert => {
                let (model, report) =
                    self.load_headed(head, "classifier.weight", DISTILBERT_MLM_HEAD, |n| {
                        DistilBertForTokenClassification::new(&self.config, n, device)
                    })?;
                Ok((model.into(), report))
            }
            Family::ModernBert => {
                let settings = self.modernbert_settings()?;
                let (model, report) =
                    self.load_headed(head, "classifier.weight", &["decoder."], |n| {
                        ModernBertForTokenClassification::new(&self.config, &settings, n, device)
                    })?;
                Ok((model.into(), report))
            }
            Family::DebertaV2 => {
                let settings = self.deberta_settings()?;
                let (model, report) =
                    self.load_headed(head, "classifier.weight", DEBERTA_MLM_HEADS, |n| {
                        DebertaV2ForTokenClassification::new(&self.config, &settings, n, device)
                    })?;
                Ok((model.into(), report))
            }
        }
    }

    /// Loads the encoder alone, of any family (BERT's pooler included where the checkpoint
    /// has one).
    pub fn load_encoder(&self, device: &Device) -> Result<(Encoder, LoadReport), ModelError> {
        match self.family() {
            Family::Bert => {
                let (model, report) =
                    self.load_classifier(HeadInit::New(1), Pooling::Cls, device)?;
                Ok((Encoder::Bert(model.bert), report))
            }
            // The encoder of a sequence classifier with a throwaway head (RoBERTa's task
            // models have no pooler: a `RobertaModel` checkpoint's is left out).
            _ => {
                let (model, report) =
                    self.load_sequence_classifier(HeadInit::New(1), Pooling::Cls, device)?;
                Ok((model.encoder(), report))
            }
        }
    }

    /// Turns burn-store's result into a list of missing / unexpected / wrong-shaped tensors.
    fn check(
        &self,
        result: ApplyResult,
        allowed_missing: &[&str],
        also_ignorable: &[&str],
    ) -> Result<LoadReport, ModelError> {
        let mut problems = Vec::new();
        let missing: Vec<&String> = result
            .missing
            .iter()
            .map(|(path, _)| path)
            .filter(|p| !allowed_missing.iter().any(|prefix| p.starts_with(prefix)))
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "missing tensors ({}): {}",
                missing.len(),
                list(missing.iter().map(|s| s.as_str()))
            ));
        }
        let mut ignored = Vec::new();
        let mut unexpected = Vec::new();
        for key in &result.unused {
            if ignorable(key) || also_ignorable.iter().any(|prefix| key.starts_with(prefix)) {
                ignored.push(key.clone());
            } else {
                unexpected.push(key.as_str());
            }
        }
        if !unexpected.is_empty() {
            problems.push(format!(
                "unexpected tensors ({}): {}",
                unexpected.len(),
                list(unexpected.into_iter())
            ));
        }
        let mut wrong = Vec::new();
        for error in &result.errors {
            wrong.push(match error {
                ApplyError::ShapeMismatch {
                    path,
                    expected,
                    found,
                } => format!(
                    "{path}: shape {:?} in the file, {:?} expected from config.json",
                    found.as_slice(),
                    expected.as_slice()
                ),
                other => other.to_string(),
            });
        }
        if !wrong.is_empty() {
            problems.push(format!(
                "wrong tensors ({}):\n    {}",
                wrong.len(),
                wrong.join("\n    ")
            ));
        }
        if !problems.is_empty() {
            return Err(ModelError::Mismatch {
                path: self.weights.clone(),
                details: format!("  {}", problems.join("\n  ")),
            });
        }
        Ok(LoadReport {
            weights: self.weights.clone(),
            applied: result.applied.len(),
            ignored,
            has_pooler: false,
            new_head: false,
        })
    }
}

fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    const SHOWN: usize = 12;
    let mut text = items
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(", … ({} more)", items.len() - SHOWN));
    }
    text
}

/// One tensor's entry in a safetensors header. Unknown fields are refused rather than dropped,
/// so a future safetensors that adds one fails the save loudly instead of losing it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TensorEntry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

/// A safetensors header in a fixed order: `__metadata__` first with its keys sorted, then the
/// tensors in the order of their data (as safetensors itself lays them out).
struct Header {
    metadata: Option<BTreeMap<String, String>>,
    tensors: Vec<(String, TensorEntry)>,
}

impl Serialize for Header {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let len = self.tensors.len() + usize::from(self.metadata.is_some());
        let mut map = serializer.serialize_map(Some(len))?;
        if let Some(metadata) = &self.metadata {
            map.serialize_entry("__metadata__", metadata)?;
        }
        for (name, entry) in &self.tensors {
            map.serialize_entry(name, entry)?;
        }
        map.end()
    }
}

/// The header JSON `header` in canonical order, padded with spaces to a multiple of 8 bytes as
/// safetensors pads it (so the tensor data stays aligned).
fn canonical_header(header: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let mut entries: BTreeMap<String, serde_json::Value> = serde_json::from_slice(header)?;
    let metadata = entries
        .remove("__metadata__")
        .map(serde_json::from_value::<BTreeMap<String, String>>)
        .transpose()?;
    let mut tensors = entries
        .into_iter()
        .map(|(name, entry)| Ok((name, serde_json::from_value::<TensorEntry>(entry)?)))
        .collect::<Result<Vec<_>, serde_json::Error>>()?;
    // Stable: tensors with equal offsets (empty ones) stay in name order.
    tensors.sort_by_key(|(_, entry)| entry.data_offsets);
    let mut bytes = serde_json::to_vec(&Header { metadata, tensors })?;
    bytes.resize(bytes.len().next_multiple_of(8), b' ');
    Ok(bytes)
}

/// Reads the header JSON of the safetensors file `file`, leaving it positioned at the data.
fn read_header(file: &mut std::fs::File) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let size = file.metadata()?.len();
    let mut prefix = [0u8; 8];
    file.read_exact(&mut prefix)?;
    let len = u64::from_le_bytes(prefix);
    if len > size.saturating_sub(8) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a header of {len} bytes in a file of {size}"),
        ));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)?;
    Ok(header)
}

/// Copies the safetensors file `from` to `to` with its header in canonical order. burn-store
/// hands its metadata to safetensors as a HashMap, whose order changes from one map to the
/// next, so identical weights gave different files; it also writes through safetensors' own
/// temp file, which leaves the file 0600. The tensor bytes are copied unchanged (in the
/// kernel, no copy in memory): their offsets count from the end of the header.
fn write_canonical_safetensors(from: &Path, to: &Path) -> Result<(), ModelError> {
    use std::io::Write;
    let read_err = |message: String| ModelError::Save {
        path: from.to_path_buf(),
        message,
    };
    let mut file = std::fs::File::open(from).map_err(|e| read_err(e.to_string()))?;
    let header = read_header(&mut file).map_err(|e| read_err(e.to_string()))?;
    let header = canonical_header(&header).map_err(|e| read_err(format!("header: {e}")))?;
    write_atomic_with(to, |out| {
        out.write_all(&(header.len() as u64).to_le_bytes())?;
        out.write_all(&header)?;
        std::io::copy(&mut file, out)?;
        Ok(())
    })
}

/// Writes `model`'s weights to `path` (in a staging directory) with HF names and `format=pt`.
fn write_weights<M: burn::store::ModuleSnapshot>(model: &M, path: &Path) -> Result<(), ModelError> {
    // burn-store writes a scratch file beside `path`; the published file is its canonical copy.
    let mut scratch = path.as_os_str().to_owned();
    scratch.push(".burn");
    let scratch = PathBuf::from(scratch);
    let mut store = SafetensorsStore::from_file(&scratch)
        .with_to_adapter(BurnToPyTorchAdapter)
        .remap(kiln_to_hf())
        // transformers refuses safetensors files whose metadata lacks format=pt.
        .metadata("format", "pt");
    model.save_into(&mut store).map_err(|e| ModelError::Save {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    write_canonical_safetensors(&scratch, path)?;
    std::fs::remove_file(&scratch).map_err(|e| ModelError::Save {
        path: scratch.clone(),
        message: e.to_string(),
    })
}

/// Saves a classifier in Hugging Face layout so that `transformers` loads it unchanged:
/// `config.json` (BertForSequenceClassification, `id2label`/`label2id`), `model.safetensors`
/// with HF names, and, when a `tokenizer.json` is given, a copy of it with its companions
/// (`tokenizer_config.json` with `model_max_length`, `special_tokens_map.json`, `vocab.txt`).
///
/// The directory is assembled beside `out_dir` and renamed into place, so a failure leaves any
/// previous model at `out_dir` whole.
pub fn save_pretrained(
    model: &BertClassifier,
    config: &BertConfig,
    labels: &[String],
    tokenizer_json: Option<&Path>,
    out_dir: &Path,
) -> Result<(), ModelError> {
    check_names(labels.len(), model.num_labels(), out_dir)?;
    let mut config = exported_config(config, labels, "BertForSequenceClassification");
    config.model_type = "bert".into();
    config.extra.insert(
        "kiln_pooling".into(),
        serde_json::to_value(model.pooling).unwrap(),
    );
    // transformers' BertForSequenceClassification always feeds the classifier the pooler's
    // dense + tanh over [CLS]; say plainly, and exactly, when this head does not, so nobody
    // trusts Python predictions that differ.
    let note = match (model.pooling, model.bert.pooler.is_some()) {
        (Pooling::Mean, _) => Some(
            "kiln_pooling=mean: the classifier reads the mean of the last hidden states over the \
             real (non-padding) tokens, without the pooler; transformers' \
             BertForSequenceClassification feeds it the pooler (dense + tanh) over [CLS] instead, \
             so it predicts differently there. kiln predict/eval read kiln_pooling and match \
             training",
        ),
        (Pooling::Cls, false) => Some(
            "this model has no pooler: the classifier reads the [CLS] hidden state directly, \
             while transformers' BertForSequenceClassification expects pooler weights (it would \
             initialise them at random); load it with kiln for identical predictions",
        ),
        (Pooling::Cls, true) => None,
    };
    if let Some(note) = note {
        config
            .extra
            .insert("kiln_note".into(), serde_json::Value::String(note.into()));
    }
    save_dir(model, &config, tokenizer_json, out_dir)
}

/// A name for every output of the head being saved.
fn check_names(names: usize, outputs: usize, out_dir: &Path) -> Result<(), ModelError> {
    if names == outputs {
        return Ok(());
    }
    Err(ModelError::Save {
        path: out_dir.to_path_buf(),
        message: format!("{names} labels given for a head with {outputs} outputs"),
    })
}

/// The config.json of an exported model: `config` with `labels` and `architecture`, without
/// the fields that describe the checkpoint it started from.
fn exported_config(config: &BertConfig, labels: &[String], architecture: &str) -> BertConfig {
    let mut config = config.clone();
    config.extra.remove("_name_or_path");
    config.extra.remove("transformers_version");
    config.set_labels(labels);
    config.architectures = Some(vec![architecture.into()]);
    config
}

/// Saves a sequence classifier of any family in its Hugging Face layout, as
/// [`save_pretrained`] saves a BERT one: `RobertaForSequenceClassification` (or XLM-R's) for a
/// RoBERTa model, `model_type` kept.
pub fn save_sequence_classifier(
    model: &SequenceClassifier,
    config: &BertConfig,
    labels: &[String],
    tokenizer_json: Option<&Path>,
    out_dir: &Path,
) -> Result<(), ModelError> {
    let pooling = match model {
        SequenceClassifier::Bert(m) => {
            return save_pretrained(m, config, labels, tokenizer_json, out_dir)
        }
        SequenceClassifier::Roberta(m) => m.pooling,
        SequenceClassifier::Electra(m) => m.pooling,
        SequenceClassifier::DistilBert(m) => m.pooling,
        SequenceClassifier::ModernBert(m) => m.pooling,
        SequenceClassifier::DebertaV2(m) => m.pooling,
    };
    check_names(labels.len(), model.num_labels(), out_dir)?;
    let family = config.family().map_err(|message| ModelError::Save {
        path: out_dir.to_path_buf(),
        message,
    })?;
    let mut config = exported_config(
        config,
        labels,
        &family.architecture("ForSequenceClassification"),
    );
    config.extra.insert(
        "kiln_pooling".into(),
        serde_json::to_value(pooling).unwrap(),
    );
    if family == Family::ModernBert {
        // ModernBERT's head pools as its config says: transformers then reads it as kiln did.
        config.extra.insert(
            "classifier_pooling".into(),
            serde_json::to_value(pooling).unwrap(),
        );
    } else if pooling == Pooling::Mean {
        config.extra.insert(
            "kiln_note".into(),
            serde_json::Value::String(
                "kiln_pooling=mean: the classification head reads the mean of the last hidden \
                 states over the real tokens; transformers' head reads the first token instead, \
                 so it predicts differently there. kiln predict/eval read kiln_pooling and match \
                 training"
                    .into(),
            ),
        );
    }
    match model {
        SequenceClassifier::Bert(m) => save_dir(m, &config, tokenizer_json, out_dir),
        SequenceClassifier::Roberta(m) => save_dir(m, &config, tokenizer_json, out_dir),
        SequenceClassifier::Electra(m) => save_dir(m, &config, tokenizer_json, out_dir),
        SequenceClassifier::DistilBert(m) => save_dir(m, &config, tokenizer_json, out_dir),
        SequenceClassifier::ModernBert(m) => save_dir(m, &config, tokenizer_json, out_dir),
        SequenceClassifier::DebertaV2(m) => save_dir(m, &config, tokenizer_json, out_dir),
    }
}

/// Saves a token classifier in its family's Hugging Face layout (`BertForTokenClassification`,
/// `RobertaForTokenClassification`, …; `id2label` naming the tags), as [`save_pretrained`]
/// saves a sequence classifier.
pub fn save_token_classifier(
    model: &TokenClassifier,
    config: &BertConfig,
    tags: &[String],
    tokenizer_json: Option<&Path>,
    out_dir: &Path,
) -> Result<(), ModelError> {
    check_names(tags.len(), model.num_labels(), out_dir)?;
    let family = config.family().map_err(|message| ModelError::Save {
        path: out_dir.to_path_buf(),
        message,
    })?;
    let config = exported_config(config, tags, &family.architecture("ForTokenClassification"));
    match model {
        TokenClassifier::Bert(m) => save_dir(m, &config, tokenizer_json, out_dir),
        TokenClassifier::Roberta(m) => save_dir(m, &config, tokenizer_json, out_dir),
        TokenClassifier::Electra(m) => save_dir(m, &config, tokenizer_json, out_dir),
        TokenClassifier::DistilBert(m) => save_dir(m, &config, tokenizer_json, out_dir),
        TokenClassifier::ModernBert(m) => save_dir(m, &config, tokenizer_json, out_dir),
        TokenClassifier::DebertaV2(m) => save_dir(m, &config, tokenizer_json, out_dir),
    }
}

/// Writes `config`, the model's weights and the tokenizer files into a staging directory
/// beside `out_dir` and swaps it into place.
fn save_dir<M: burn::store::ModuleSnapshot>(
    model: &M,
    config: &BertConfig,
    tokenizer_json: Option<&Path>,
    out_dir: &Path,
) -> Result<(), ModelError> {
    let save_err = |path: &Path, message: String| ModelError::Save {
        path: path.to_path_buf(),
        message,
    };
    let parent = match out_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| save_err(&parent, e.to_string()))?;
    let staging =
        staging_dir(&parent, ".kiln-save-").map_err(|e| save_err(&parent, e.to_string()))?;

    let config_json = config
        .to_json()
        .map_err(|e| save_err(out_dir, e.to_string()))?;
    write_atomic(&staging.path().join(CONFIG_FILE), config_json.as_bytes())?;

    write_weights(model, &staging.path().join(SAFETENSORS_FILE))?;

    if let Some(tok) = tokenizer_json {
        let bytes = std::fs::read(tok).map_err(|e| save_err(tok, e.to_string()))?;
        write_atomic(&staging.path().join(TOKENIZER_FILE), &bytes)?;
        // The files transformers' AutoTokenizer reads beside tokenizer.json; without
        // tokenizer_config.json it would not know the length limit and would not truncate.
        let source = tok.parent().unwrap_or(Path::new("."));
        for name in [SPECIAL_TOKENS_FILE, VOCAB_FILE] {
            let path = source.join(name);
            if path.is_file() {
                let bytes = std::fs::read(&path).map_err(|e| save_err(&path, e.to_string()))?;
                write_atomic(&staging.path().join(name), &bytes)?;
            }
        }
        let path = source.join(TOKENIZER_CONFIG_FILE);
        let mut tokenizer_config: serde_json::Map<String, serde_json::Value> = if path.is_file() {
            let text =
                std::fs::read_to_string(&path).map_err(|e| save_err(&path, e.to_string()))?;
            serde_json::from_str(&text).map_err(|e| save_err(&path, e.to_string()))?
        } else {
            serde_json::Map::new()
        };
        // No longer than the position table holds: a source without the field, or with
        // transformers' "no limit" (1e30), would let transformers run past it.
        let limit = config.max_tokens();
        let kept = tokenizer_config
            .get("model_max_length")
            .and_then(|v| v.as_f64())
            .filter(|&n| n >= 1.0 && n <= limit as f64);
        if kept.is_none() {
            tokenizer_config.insert("model_max_length".into(), serde_json::json!(limit));
        }
        tokenizer_config.remove("name_or_path");
        let text = serde_json::to_string_pretty(&tokenizer_config)
            .map_err(|e| save_err(out_dir, e.to_string()))?;
        write_atomic(&staging.path().join(TOKENIZER_CONFIG_FILE), text.as_bytes())?;
    }

    // Swap the staged directory in; the old one is removed only once the new one is in place.
    let staged = staging.keep();
    swap_dir(&staged, out_dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staged);
        save_err(out_dir, e.to_string())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::prelude::*;
    use burn::store::KeyRemapper;

    use super::{hf_to_kiln, kiln_to_hf};
    use crate::config::Family;
    use crate::{BertClassifier, BertConfig, Pooling};

    #[derive(Default)]
    struct Paths {
        at: Vec<String>,
        all: Vec<String>,
    }

    impl ModuleVisitor for Paths {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.at.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.at.pop();
        }
        fn visit_float<const D: usize>(&mut self, _: &Param<Tensor<D>>) {
            self.all.push(self.at.join("."));
        }
    }

    fn apply(remapper: &KeyRemapper, name: &str) -> String {
        remapper
            .to_regex_pairs()
            .iter()
            .fold(name.to_string(), |n, (re, to)| {
                re.replace_all(&n, to.as_str()).into_owned()
            })
    }

    #[test]
    fn module_paths_are_hugging_face_names_up_to_the_two_forced_renames() {
        let _rng = crate::rng_lock();
        let config = BertConfig::from_json_str(
            r#"{"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 2,
                "num_attention_heads": 2, "intermediate_size": 16}"#,
        )
        .unwrap();
        let model = BertClassifier::new(&config, 2, Pooling::Cls, &Device::flex());
        let mut paths = Paths::default();
        model.visit(&mut paths);
        assert!(paths.all.len() > 20);
        for path in &paths.all {
            let hf = apply(&kiln_to_hf(), path);
            // Both directions, the same renames.
            assert_eq!(&apply(&hf_to_kiln(Family::Bert), &hf), path);
            assert_eq!(
                &hf.replace(".self.", ".self_attention.")
                    .replace(".LayerNorm.", ".layer_norm."),
                path
            );
        }
        // HF's own names for the layer-1 parameters that used to need a rule each.
        for name in [
            "bert.encoder.layer.1.attention.self.query.weight",
            "bert.encoder.layer.1.attention.output.dense.bias",
            "bert.encoder.layer.1.attention.output.LayerNorm.gamma",
            "bert.encoder.layer.1.intermediate.dense.weight",
            "bert.encoder.layer.1.output.dense.weight",
            "bert.encoder.layer.1.output.LayerNorm.beta",
        ] {
            let path = apply(&hf_to_kiln(Family::Bert), name);
            assert!(paths.all.contains(&path), "{name} → {path}");
        }
    }
}
