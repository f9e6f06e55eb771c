//! `kiln embed`: sentence embeddings from an encoder, the way outsiders check parity with
//! `transformers` — mean of the last hidden state over real tokens, the [CLS] vector, or the
//! per-dimension maximum — and, for sentence-transformers checkpoints, the way
//! `SentenceTransformer.encode` computes them.
//!
//! A checkpoint with a `modules.json` (sentence-transformers' layout) is followed: the Pooling
//! module's `config.json` (`pooling_mode_cls_token`, `pooling_mode_mean_tokens`,
//! `pooling_mode_max_tokens`; the other modes are an error naming the file and the field), a
//! `Normalize` module (L2 normalisation), and the Transformer module's
//! `sentence_bert_config.json` (`max_seq_length` truncation, `do_lower_case`). Any other module
//! (Dense, LayerNorm, …) is an error: kiln would compute something else. Without `modules.json`
//! the defaults are mean pooling, no normalisation and truncation at the model's
//! `max_position_embeddings`. Flags override each setting.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::prelude::*;
use serde_json::{Map, Value};

use kiln_data::{TextTokenizer, TokenBatch};
use kiln_model::{mean_pool, Checkpoint, Encoder, Pooling};

/// How token vectors become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmbedPooling {
    /// The [CLS] (first) token's last hidden state (not the pooler's dense + tanh).
    Cls,
    /// The last hidden state averaged over real tokens.
    #[default]
    Mean,
    /// The per-dimension maximum of the last hidden state over real tokens.
    Max,
}

impl EmbedPooling {
    pub fn name(self) -> &'static str {
        match self {
            EmbedPooling::Cls => "cls",
            EmbedPooling::Mean => "mean",
            EmbedPooling::Max => "max",
        }
    }
}

impl fmt::Display for EmbedPooling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for EmbedPooling {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cls" => Ok(Self::Cls),
            "mean" => Ok(Self::Mean),
            "max" => Ok(Self::Max),
            other => Err(format!(
                "unknown pooling `{other}` (expected `cls`, `mean` or `max`)"
            )),
        }
    }
}

impl From<Pooling> for EmbedPooling {
    fn from(p: Pooling) -> Self {
        match p {
            Pooling::Cls => EmbedPooling::Cls,
            Pooling::Mean => EmbedPooling::Mean,
        }
    }
}

/// The command line's choices; `None` means "what the checkpoint says".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmbedOverrides {
    pub pooling: Option<EmbedPooling>,
    pub normalize: Option<bool>,
    pub max_len: Option<usize>,
}

/// Where a setting came from, for the one line `kiln embed` prints on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag (its name).
    Flag(&'static str),
    /// The checkpoint's sentence-transformers files (`modules.json` and the files it names).
    SentenceTransformers,
    /// kiln's default (no flag, nothing in the checkpoint).
    Default,
}

/// What `kiln embed` computes, and where each choice came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedSettings {
    /// The directory holding config.json, the weights and tokenizer.json (the Transformer
    /// module's path under modules.json; the checkpoint directory itself otherwise).
    pub model_dir: PathBuf,
    pub pooling: EmbedPooling,
    pub normalize: bool,
    /// Truncation length (specials included); `None`: the model's `max_position_embeddings`.
    /// Capped at `max_position_embeddings` when loading.
    pub max_len: Option<usize>,
    /// Lowercase texts before tokenizing (sentence_bert_config.json's `do_lower_case`).
    pub lowercase: bool,
    pub pooling_origin: Origin,
    pub normalize_origin: Origin,
    pub max_len_origin: Origin,
    /// Whether the checkpoint has a `modules.json`.
    pub sentence_transformers: bool,
}

/// One entry of `modules.json`.
struct ModuleEntry {
    path: String,
    kind: String,
    name: Option<String>,
}

/// Reads a JSON file; bad JSON is an error naming the file (never a panic).
fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: invalid JSON: {e}", path.display()))
}

/// `value` as a JSON object, or an error naming the file.
fn object<'a>(path: &Path, what: &str, value: &'a Value) -> Result<&'a Map<String, Value>> {
    value
        .as_object()
        .with_context(|| format!("{}: {what} must be a JSON object", path.display()))
}

/// A boolean field; `default` when absent or null.
fn bool_field(path: &Path, object: &Map<String, Value>, key: &str, default: bool) -> Result<bool> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => bail!(
            "{}: field `{key}` must be true or false, found {other}",
            path.display()
        ),
    }
}

/// A string field; `None` when absent or null.
fn string_field(
    path: &Path,
    what: &str,
    object: &Map<String, Value>,
    key: &str,
) -> Result<Option<String>> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => bail!(
            "{}: {what}: field `{key}` must be a string, found {other}",
            path.display()
        ),
    }
}

fn read_modules(path: &Path) -> Result<Vec<ModuleEntry>> {
    let value = read_json(path)?;
    let items = value
        .as_array()
        .with_context(|| format!("{}: expected a JSON array of modules", path.display()))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let what = format!("module {i}");
            let entry = object(path, &what, item)?;
            let kind = string_field(path, &what, entry, "type")?
                .with_context(|| format!("{}: {what} has no `type`", path.display()))?;
            Ok(ModuleEntry {
                path: string_field(path, &what, entry, "path")?.unwrap_or_default(),
                kind,
                name: string_field(path, &what, entry, "name")?,
            })
        })
        .collect()
}

/// The module kind a sentence-transformers `type` names (`sentence_transformers.models.Pooling`
/// → `Pooling`; newer releases' `sentence_transformers.sentence_transformer.models.Pooling`
/// too); `None` for a class outside sentence-transformers.
fn module_kind(kind: &str) -> Option<&str> {
    kind.strip_prefix("sentence_transformers.")?
        .rsplit('.')
        .next()
}

/// The pooling a Pooling module's config asks for.
///
/// Missing keys take sentence-transformers' constructor defaults (mean on, everything else
/// off); a `pooling_mode` string, which that constructor also takes, wins over the booleans.
fn pooling_from_config(path: &Path) -> Result<EmbedPooling> {
    let value = read_json(path)?;
    let config = object(path, "the pooling config", &value)?;
    if let Some(mode) = string_field(path, "the pooling config", config, "pooling_mode")? {
        return match mode.to_ascii_lowercase().as_str() {
            "cls" => Ok(EmbedPooling::Cls),
            "mean" => Ok(EmbedPooling::Mean),
            "max" => Ok(EmbedPooling::Max),
            other => bail!(
                "{}: pooling_mode `{other}` is a pooling kiln embed does not implement (it has \
                 cls, mean and max); pass --pooling to use one of those instead",
                path.display()
            ),
        };
    }
    let flag = |key: &str, default: bool| bool_field(path, config, key, default);
    for field in [
        "pooling_mode_mean_sqrt_len_tokens",
        "pooling_mode_weightedmean_tokens",
        "pooling_mode_lasttoken",
    ] {
        if flag(field, false)? {
            bail!(
                "{}: {field} is true, a pooling kiln embed does not implement (it has cls, mean \
                 and max); pass --pooling to use one of those instead",
                path.display()
            );
        }
    }
    let mut on: Vec<(&str, EmbedPooling)> = Vec::new();
    for (field, default, pooling) in [
        ("pooling_mode_cls_token", false, EmbedPooling::Cls),
        ("pooling_mode_mean_tokens", true, EmbedPooling::Mean),
        ("pooling_mode_max_tokens", false, EmbedPooling::Max),
    ] {
        if flag(field, default)? {
            on.push((field, pooling));
        }
    }
    match on.as_slice() {
        [(_, pooling)] => Ok(*pooling),
        [] => bail!(
            "{}: no pooling mode is true (pooling_mode_cls_token, pooling_mode_mean_tokens, \
             pooling_mode_max_tokens); pass --pooling",
            path.display()
        ),
        several => bail!(
            "{}: {} are all true: concatenated poolings are not supported by kiln embed; pass \
             --pooling to use one",
            path.display(),
            several
                .iter()
                .map(|(f, _)| *f)
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    }
}

impl EmbedSettings {
    /// Decides what to compute for the checkpoint in `dir`: flags first, then its
    /// `modules.json` (when there is one), then kiln's defaults.
    pub fn resolve(dir: &Path, overrides: EmbedOverrides) -> Result<Self> {
        if let Some(max_len) = overrides.max_len.filter(|&n| n < 2) {
            bail!("--max-len {max_len}: must be at least 2 ([CLS] and [SEP])");
        }
        let modules_path = dir.join("modules.json");
        let mut settings = EmbedSettings {
            model_dir: dir.to_path_buf(),
            pooling: EmbedPooling::Mean,
            normalize: false,
            max_len: None,
            lowercase: false,
            pooling_origin: Origin::Default,
            normalize_origin: Origin::Default,
            max_len_origin: Origin::Default,
            sentence_transformers: modules_path.is_file(),
        };
        if settings.sentence_transformers {
            settings.follow_modules(dir, &modules_path, overrides.pooling.is_some())?;
        }
        if let Some(pooling) = overrides.pooling {
            settings.pooling = pooling;
            settings.pooling_origin = Origin::Flag("--pooling");
        }
        if let Some(normalize) = overrides.normalize {
            settings.normalize = normalize;
            settings.normalize_origin = Origin::Flag("--normalize");
        }
        if let Some(max_len) = overrides.max_len {
            settings.max_len = Some(max_len);
            settings.max_len_origin = Origin::Flag("--max-len");
        }
        Ok(settings)
    }

    /// Applies `modules.json`: Transformer (its directory and sentence_bert_config.json),
    /// Pooling (its config.json, unless `--pooling` replaces it) and Normalize.
    fn follow_modules(
        &mut self,
        dir: &Path,
        modules_path: &Path,
        pooling_given: bool,
    ) -> Result<()> {
        let modules = read_modules(modules_path)?;
        let mut transformer = false;
        let mut pooling = false;
        for (i, module) in modules.iter().enumerate() {
            let label = match &module.name {
                Some(name) => format!("module {i} (`{name}`)"),
                None => format!("module {i}"),
            };
            let module_dir = dir.join(&module.path);
            match module_kind(&module.kind) {
                Some("Transformer") if !transformer && !pooling => {
                    transformer = true;
                    self.model_dir = module_dir.clone();
                    let sbert = module_dir.join("sentence_bert_config.json");
                    if sbert.is_file() {
                        let value = read_json(&sbert)?;
                        let config = object(&sbert, "the config", &value)?;
                        match config.get("max_seq_length") {
                            None | Some(Value::Null) => {}
                            Some(n) => {
                                let n = n.as_u64().filter(|&n| n >= 2).with_context(|| {
                                    format!(
                                        "{}: field `max_seq_length` must be an integer of at \
                                         least 2, found {n}",
                                        sbert.display()
                                    )
                                })?;
                                self.max_len = Some(usize::try_from(n).unwrap_or(usize::MAX));
                                self.max_len_origin = Origin::SentenceTransformers;
                            }
                        }
                        self.lowercase = bool_field(&sbert, config, "do_lower_case", false)?;
                    }
                }
                Some("Pooling") if transformer && !pooling && !self.normalize => {
                    pooling = true;
                    if !pooling_given {
                        self.pooling = pooling_from_config(&module_dir.join("config.json"))?;
                        self.pooling_origin = Origin::SentenceTransformers;
                    }
                }
                Some("Normalize") if pooling && !self.normalize => {
                    self.normalize = true;
                    self.normalize_origin = Origin::SentenceTransformers;
                }
                _ => bail!(
                    "{}: {label} is {}, which kiln embed does not support here (it follows \
                     Transformer, Pooling and an optional Normalize, in that order)",
                    modules_path.display(),
                    module.kind
                ),
            }
        }
        if !transformer {
            bail!(
                "{}: no sentence_transformers Transformer module",
                modules_path.display()
            );
        }
        if !pooling && !pooling_given {
            bail!(
                "{}: no Pooling module (the model gives token vectors, not sentence vectors); \
                 pass --pooling cls|mean|max",
                modules_path.display()
            );
        }
        // With or without a Normalize module, modules.json decided.
        self.normalize_origin = Origin::SentenceTransformers;
        Ok(())
    }

    /// One line for stderr: what is computed and where each choice came from, e.g.
    /// `pooling mean, normalized, max length 256 — from modules.json`, or
    /// `pooling cls (from --pooling), normalized, max length 256 (from modules.json)`. `max_len`
    /// is the length actually used (after capping at the model's positions).
    pub fn describe(&self, max_len: usize) -> String {
        let normalized = if self.normalize {
            "normalized"
        } else {
            "not normalized"
        };
        let default = if self.sentence_transformers {
            "kiln's default"
        } else {
            "kiln's default, no modules.json"
        };
        let origin = |o: &Origin| match o {
            Origin::Flag(flag) => format!("from {flag}"),
            Origin::SentenceTransformers => "from modules.json".to_string(),
            Origin::Default => default.to_string(),
        };
        let mut length_origin = match self.max_len_origin {
            Origin::Default => "the model's max_position_embeddings".to_string(),
            ref o => origin(o),
        };
        if self.max_len.is_some_and(|n| n > max_len) {
            length_origin.push_str(", capped at the model's max_position_embeddings");
        }
        let items = [
            (
                format!("pooling {}", self.pooling),
                origin(&self.pooling_origin),
            ),
            (normalized.to_string(), origin(&self.normalize_origin)),
            (format!("max length {max_len}"), length_origin),
        ];
        // Neighbours with the same origin share one note.
        let mut groups: Vec<(Vec<&str>, &str)> = Vec::new();
        for (what, from) in &items {
            match groups.last_mut() {
                Some((whats, last)) if *last == from.as_str() => whats.push(what),
                _ => groups.push((vec![what.as_str()], from.as_str())),
            }
        }
        let mut line = match groups.as_slice() {
            [(whats, from)] => format!("{} — {from}", whats.join(", ")),
            _ => groups
                .iter()
                .map(|(whats, from)| format!("{} ({from})", whats.join(", ")))
                .collect::<Vec<_>>()
                .join(", "),
        };
        if self.lowercase {
            line.push_str("; texts lowercased (do_lower_case in sentence_bert_config.json)");
        }
        line
    }
}

/// An encoder with its tokenizer, ready to embed text.
pub struct Embedder {
    pub model: Encoder,
    pub tokenizer: TextTokenizer,
    pub device: Device,
}

impl Embedder {
    /// Loads `dir` (config.json, weights, tokenizer.json). Inputs are truncated only at the
    /// model's own maximum length (`max_position_embeddings`).
    pub fn load(dir: &Path, device: Device) -> Result<Self> {
        Self::load_with_max_len(dir, None, device)
    }

    /// Loads `dir`, truncating inputs at `max_len` tokens (specials included), capped at the
    /// model's `max_position_embeddings` (`None`: that maximum).
    pub fn load_with_max_len(dir: &Path, max_len: Option<usize>, device: Device) -> Result<Self> {
        let checkpoint = Checkpoint::open(dir)?;
        let (model, _report) = checkpoint.load_encoder(&device)?;
        let positions = checkpoint.config.max_tokens();
        let tokenizer = TextTokenizer::from_file(
            checkpoint.tokenizer_path(),
            max_len.map_or(positions, |n| n.min(positions)),
        )?;
        Ok(Self {
            model,
            tokenizer,
            device,
        })
    }

    /// One vector per text, in input order. Texts are batched by similar length so that padding
    /// stays small; padding never changes a result beyond float rounding (the mask removes it).
    pub fn embed(
        &self,
        texts: &[&str],
        pooling: Pooling,
        batch_size: usize,
    ) -> Result<Vec<Vec<f32>>> {
        self.embed_with(texts, pooling.into(), false, batch_size)
    }

    /// [`Embedder::embed`] with any [`EmbedPooling`], L2-normalised when `normalize` (as
    /// sentence-transformers' Normalize: `v / max(‖v‖, 1e-12)`).
    pub fn embed_with(
        &self,
        texts: &[&str],
        pooling: EmbedPooling,
        normalize: bool,
        batch_size: usize,
    ) -> Result<Vec<Vec<f32>>> {
        let encodings = texts
            .iter()
            .map(|t| self.tokenizer.encode(t, None))
            .collect::<Result<Vec<_>, _>>()?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(batch_size.max(1)) {
            let batch: Vec<_> = chunk.iter().map(|&i| &encodings[i]).collect();
            let batch = TokenBatch::pad(&batch, self.tokenizer.pad_id(), 1, &self.device);
            let hidden = self.model.encode_batch(&batch);
            let [b, s, h] = hidden.dims();
            let pooled = match pooling {
                EmbedPooling::Mean => mean_pool(hidden, batch.attention_mask),
                EmbedPooling::Cls => hidden.slice(s![.., 0..1, ..]).reshape([b, h]),
                EmbedPooling::Max => {
                    // As sentence-transformers: padding positions become -1e9, then the max.
                    let mask = batch.attention_mask.cast(hidden.dtype()).reshape([b, s, 1]);
                    let fill = mask.clone().sub_scalar(1.0).mul_scalar(1e9);
                    (hidden * mask + fill).max_dim(1).reshape([b, h])
                }
            };
            let values = pooled
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("reading embeddings back: {e:?}"))?;
            for (row, &i) in chunk.iter().enumerate() {
                let mut v = values[row * h..(row + 1) * h].to_vec();
                if normalize {
                    l2_normalize(&mut v);
                }
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// Embeds as `settings` say (pooling, normalisation, lowercasing; the truncation length was
    /// fixed when loading with [`Embedder::load_with_max_len`]).
    pub fn embed_settings(
        &self,
        texts: &[&str],
        settings: &EmbedSettings,
        batch_size: usize,
    ) -> Result<Vec<Vec<f32>>> {
        if settings.lowercase {
            let lower: Vec<String> = texts.iter().map(|t| t.to_lowercase()).collect();
            let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
            self.embed_with(&lower, settings.pooling, settings.normalize, batch_size)
        } else {
            self.embed_with(texts, settings.pooling, settings.normalize, batch_size)
        }
    }
}

/// `v / max(‖v‖₂, 1e-12)` in place (`torch.nn.functional.normalize`), the norm summed in f64.
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    let norm = norm.max(1e-12);
    for x in v.iter_mut() {
        *x = (f64::from(*x) / norm) as f32;
    }
}

/// The lines of `input` to embed: every line that is not blank, kept as written (leading
/// spaces included), without its line ending.
pub fn read_lines(input: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    Ok(text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        // Whitespace-only lines are skipped like blank ones (as `kiln predict` does).
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        dir
    }

    const MODULES: &str = r#"[
      {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
      {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
      {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
    ]"#;
    const MEAN: &str = r#"{"word_embedding_dimension": 32, "pooling_mode_cls_token": false,
      "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false,
      "pooling_mode_mean_sqrt_len_tokens": false}"#;

    #[test]
    fn no_modules_json_keeps_the_old_defaults() {
        let dir = dir_with(&[]);
        let s = EmbedSettings::resolve(dir.path(), EmbedOverrides::default()).unwrap();
        assert_eq!(
            (s.pooling, s.normalize, s.max_len),
            (EmbedPooling::Mean, false, None)
        );
        assert!(!s.sentence_transformers);
        let line = s.describe(512);
        assert!(
            line.contains("no modules.json") && line.contains("max length 512"),
            "{line}"
        );
    }

    #[test]
    fn modules_json_decides_pooling_normalize_and_length() {
        let dir = dir_with(&[
            ("modules.json", MODULES),
            ("1_Pooling/config.json", MEAN),
            (
                "sentence_bert_config.json",
                r#"{"max_seq_length": 256, "do_lower_case": false}"#,
            ),
        ]);
        let s = EmbedSettings::resolve(dir.path(), EmbedOverrides::default()).unwrap();
        assert_eq!(
            (s.pooling, s.normalize, s.max_len),
            (EmbedPooling::Mean, true, Some(256))
        );
        assert_eq!(
            s.describe(256),
            "pooling mean, normalized, max length 256 — from modules.json"
        );
        let flags = EmbedOverrides {
            pooling: Some(EmbedPooling::Cls),
            normalize: Some(false),
            max_len: Some(64),
        };
        let s = EmbedSettings::resolve(dir.path(), flags).unwrap();
        assert_eq!(
            (s.pooling, s.normalize, s.max_len),
            (EmbedPooling::Cls, false, Some(64))
        );
        let line = s.describe(64);
        assert!(line.contains("pooling cls (from --pooling)"), "{line}");
        assert!(line.contains("not normalized (from --normalize)"), "{line}");
    }

    #[test]
    fn pooling_modes_from_the_pooling_config() {
        for (config, want) in [
            (
                r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
                EmbedPooling::Cls,
            ),
            (
                r#"{"pooling_mode_max_tokens": true, "pooling_mode_mean_tokens": false}"#,
                EmbedPooling::Max,
            ),
            // sentence-transformers' default: mean when the key is missing.
            ("{}", EmbedPooling::Mean),
        ] {
            let dir = dir_with(&[("modules.json", MODULES), ("1_Pooling/config.json", config)]);
            let s = EmbedSettings::resolve(dir.path(), EmbedOverrides::default()).unwrap();
            assert_eq!(s.pooling, want, "{config}");
        }
    }

    fn resolve_err(files: &[(&str, &str)]) -> String {
        let dir = dir_with(files);
        let e = EmbedSettings::resolve(dir.path(), EmbedOverrides::default()).unwrap_err();
        format!("{e:#}")
    }

    #[test]
    fn unsupported_or_broken_files_are_errors_naming_the_file() {
        let e = resolve_err(&[
            ("modules.json", MODULES),
            (
                "1_Pooling/config.json",
                r#"{"pooling_mode_weightedmean_tokens": true}"#,
            ),
        ]);
        assert!(
            e.contains("1_Pooling/config.json") && e.contains("pooling_mode_weightedmean_tokens"),
            "{e}"
        );
        let e = resolve_err(&[
            ("modules.json", MODULES),
            (
                "1_Pooling/config.json",
                r#"{"pooling_mode_cls_token": true}"#,
            ),
        ]);
        assert!(
            e.contains("pooling_mode_cls_token and pooling_mode_mean_tokens"),
            "{e}"
        );
        let e = resolve_err(&[("modules.json", "[{\"path\": ")]);
        assert!(e.contains("modules.json"), "{e}");
        let e = resolve_err(&[
            ("modules.json", MODULES),
            (
                "1_Pooling/config.json",
                "{\"pooling_mode_cls_token\": \"yes\"}",
            ),
        ]);
        assert!(
            e.contains("1_Pooling/config.json") && e.contains("pooling_mode_cls_token"),
            "{e}"
        );
        let e = resolve_err(&[
            ("modules.json", MODULES),
            ("1_Pooling/config.json", MEAN),
            ("sentence_bert_config.json", "{\"max_seq_length\": -3}"),
        ]);
        assert!(
            e.contains("sentence_bert_config.json") && e.contains("max_seq_length"),
            "{e}"
        );
        let e = resolve_err(&[("modules.json", MODULES)]);
        assert!(e.contains("1_Pooling/config.json"), "{e}");
        let dense = r#"[{"path": "", "type": "sentence_transformers.models.Transformer"},
            {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]"#;
        let e = resolve_err(&[("modules.json", dense), ("1_Pooling/config.json", MEAN)]);
        assert!(
            e.contains("modules.json") && e.contains("sentence_transformers.models.Dense"),
            "{e}"
        );
    }

    #[test]
    fn l2_normalize_makes_unit_vectors_and_leaves_zero_alone() {
        let mut v = vec![3.0f32, 4.0];
        l2_normalize(&mut v);
        assert_eq!(v, vec![0.6, 0.8]);
        let mut z = vec![0.0f32; 3];
        l2_normalize(&mut z);
        assert_eq!(z, vec![0.0; 3]);
    }
}
