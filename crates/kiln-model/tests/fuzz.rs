//! Bounded fuzzing of model loading: hostile `config.json`, `model.safetensors` and
//! `pytorch_model.bin` must give a `ModelError` that names the file, never a panic (nor an
//! allocation of terabytes, which would be a crash too).
//!
//! Each property mutates the tiny fixtures and loads the result with `catch_unwind` around it,
//! so that a panic is reported with the input that caused it. The input is also written to
//! `$CARGO_TARGET_TMPDIR/fuzz-crashes/`; copy it into `tests/fixtures/fuzz-regressions/`
//! (small files only) and `regression_corpus_loads_without_panicking` replays it for good.
//!
//! Case counts are modest so that the file runs in a few seconds on two cores; set
//! `KILN_FUZZ_CASES` for a longer run (`KILN_FUZZ_CASES=2000 cargo test --release -p kiln-model
//! --test fuzz`), and `KILN_FUZZ_VERBOSE=1` (with `-- --nocapture`) to print every error the
//! inputs produced, to see which code paths a run reached.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use kiln_model::{BertConfig, Checkpoint, HeadInit, ModelError, Pooling};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Harness

/// A position in a collection whose size is known only once the mutation is applied
/// (`proptest::sample::Index` without the panic on an empty collection, and constructible).
#[derive(Debug, Clone, Copy)]
struct Pick(usize);

impl Pick {
    fn index(self, size: usize) -> usize {
        ((size as u128 * self.0 as u128) >> usize::BITS) as usize
    }

    /// The pick that lands on `k` in a collection of `n`.
    fn nth(k: usize, n: usize) -> Self {
        Pick((((k as u128) << usize::BITS).div_ceil(n as u128)) as usize)
    }
}

impl Arbitrary for Pick {
    type Parameters = ();
    type Strategy = prop::strategy::Map<prop::num::usize::Any, fn(usize) -> Pick>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        any::<usize>().prop_map(Pick as fn(usize) -> Pick)
    }
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(path)).unwrap()
}

fn regressions_dir() -> PathBuf {
    fixtures().join("fuzz-regressions")
}

fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("KILN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        // Crashing inputs are kept by hand in tests/fixtures/fuzz-regressions/, as files.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Runs `f`, turning a panic into `Err(message)`.
fn no_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(non-string panic payload)".to_string())
    })
}

/// Keeps a crashing input where it can be picked up for the regression corpus.
fn save_crash(name: &str, bytes: &[u8]) -> PathBuf {
    // FNV-1a: a stable name per input, no dependency.
    let hash = bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-crashes");
    std::fs::create_dir_all(&dir).unwrap();
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, "bin"));
    let path = dir.join(format!("{stem}-{hash:016x}.{ext}"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A checkpoint directory holding exactly these files.
fn checkpoint_dir(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

/// Opens `dir` and loads it with the checkpoint's head and with a new one; returns the errors,
/// or the panic message if anything panicked.
fn open_and_load(dir: &Path) -> Result<Vec<ModelError>, String> {
    no_panic(|| {
        let device = Device::flex();
        let checkpoint = match Checkpoint::open(dir) {
            Ok(c) => c,
            Err(e) => return vec![e],
        };
        let mut errors = Vec::new();
        for head in [HeadInit::FromCheckpoint, HeadInit::New(3)] {
            if let Err(e) = checkpoint.load_classifier(head, Pooling::Cls, &device) {
                errors.push(e);
            }
        }
        errors
    })
}

/// Loads a checkpoint dir where `file` (named `name`) is the hostile input: no panic, and every
/// error names `name`.
fn check_load(dir: &Path, name: &str, input: &[u8]) -> Result<(), TestCaseError> {
    match open_and_load(dir) {
        Err(panic) => {
            let saved = save_crash(name, input);
            Err(TestCaseError::fail(format!(
                "loading a mutated {name} panicked: {panic}\n  input ({} bytes) saved to {}",
                input.len(),
                saved.display()
            )))
        }
        Ok(errors) => {
            for e in errors {
                let message = e.to_string();
                if std::env::var_os("KILN_FUZZ_VERBOSE").is_some() {
                    eprintln!(
                        "FUZZERR {name}: {}",
                        message.lines().take(3).collect::<Vec<_>>().join(" | ")
                    );
                }
                prop_assert!(
                    message.contains(name),
                    "error for a mutated {name} does not name it: {message}"
                );
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Property 1: config.json

const CONFIG_FIELDS: &[&str] = &[
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "layer_norm_eps",
    "pad_token_id",
    "position_embedding_type",
    "classifier_dropout",
    "architectures",
    "model_type",
    "id2label",
    "label2id",
    "num_labels",
];

fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        // Sizes the fixture could plausibly have (kept small so loads stay cheap).
        4 => (0u64..130).prop_map(|v| json!(v)),
        1 => prop::sample::select(vec![
            json!(0),
            json!(1),
            json!(-1),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(usize::MAX / 2),
            json!(1u64 << 32),
            json!(1024),
            json!(1025),
            json!(100_000),
            json!(1_000_000),
            json!(100_000_000),
            json!(1_000_000_000),
            json!(1_000_000_000_000u64),
            json!(1e12),
            json!(1e308),
            json!(-0.0),
            json!(0.5),
            json!(1.0),
            json!(1e-300),
            json!(null),
            json!(true),
            json!(""),
            json!("gelu"),
            json!("relu"),
            json!("gelu_new"),
            json!("absolute"),
            json!("relative_key"),
            json!([]),
            json!(["BertModel"]),
            json!({}),
            json!({"0": "a"}),
            json!({"0": "a", "1": "b", "2": "c"}),
            json!({"0": "a", "2": "c"}),
            json!({"18446744073709551615": "x"}),
            json!({"-1": "x"}),
            json!({"a": 0, "b": 1}),
            json!({"a": -1}),
        ]),
        1 => any::<u64>().prop_map(|v| json!(v)),
        1 => any::<i64>().prop_map(|v| json!(v)),
        1 => any::<f64>().prop_filter("JSON has no NaN", |v| v.is_finite()).prop_map(|v| json!(v)),
        1 => "[a-z_0-9 ]{0,12}".prop_map(|v| json!(v)),
    ]
}

/// The fixture config (or `{}`) with some fields replaced or removed.
fn config_json() -> impl Strategy<Value = String> {
    let edit = (
        prop::sample::select(CONFIG_FIELDS),
        prop::option::weighted(0.85, json_value()),
    );
    (any::<bool>(), prop::collection::vec(edit, 1..6)).prop_map(|(from_fixture, edits)| {
        let mut config: serde_json::Map<String, Value> = if from_fixture {
            serde_json::from_slice(&fixture("tiny-bert/config.json")).unwrap()
        } else {
            serde_json::Map::new()
        };
        for (field, value) in edits {
            match value {
                Some(v) => config.insert(field.to_string(), v),
                None => config.remove(field),
            };
        }
        serde_json::to_string_pretty(&config).unwrap()
    })
}

fn check_config_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    // The string parser first (lossy, so that it sees every input).
    let text = String::from_utf8_lossy(bytes).into_owned();
    match no_panic(|| BertConfig::from_json_str(&text)) {
        Err(panic) => {
            let saved = save_crash("config.json", bytes);
            return Err(TestCaseError::fail(format!(
                "BertConfig::from_json_str panicked: {panic}\n  input saved to {}",
                saved.display()
            )));
        }
        Ok(Err(e)) => {
            let message = e.to_string();
            prop_assert!(
                message.contains("config.json"),
                "error does not name config.json: {message}"
            );
        }
        Ok(Ok(_)) => {}
    }
    let weights = fixture("tiny-bert/model.safetensors");
    let dir = checkpoint_dir(&[("config.json", bytes), ("model.safetensors", &weights)]);
    check_load(dir.path(), "config.json", bytes)
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn config_arbitrary_bytes_never_panic(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..400),
            "[{}\\[\\]\":,0-9a-z_ .eE+-]{0,200}".prop_map(String::into_bytes),
        ]
    ) {
        check_config_bytes(&bytes)?;
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn config_hostile_fields_never_panic(text in config_json()) {
        check_config_bytes(text.as_bytes())?;
    }
}

/// Configs that parse but describe absurd models are refused up front (naming the fields).
/// Weights are allocated lazily, so against a small file such a config mostly fails on shapes;
/// but the layers are built eagerly (`num_hidden_layers: 1000000000000` aborted the process on
/// a failed allocation before the limit existed), and a config that is only opened, then used
/// to build a model from scratch, would allocate all of it.
#[test]
fn absurd_sizes_are_refused_before_allocation() {
    let cases = [
        (
            r#"{"vocab_size": 1000000000000, "hidden_size": 32, "num_attention_heads": 4}"#,
            "vocab_size",
        ),
        (
            r#"{"vocab_size": 100, "hidden_size": 4294967296, "num_attention_heads": 4}"#,
            "hidden_size",
        ),
        (
            r#"{"hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 18446744073709551615}"#,
            "intermediate_size",
        ),
        (
            r#"{"hidden_size": 32, "num_attention_heads": 4, "max_position_embeddings": 9223372036854775807}"#,
            "max_position_embeddings",
        ),
        (
            r#"{"hidden_size": 32, "num_attention_heads": 4, "type_vocab_size": 1000000000000}"#,
            "type_vocab_size",
        ),
        (
            r#"{"hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 1000000000}"#,
            "num_hidden_layers",
        ),
        (
            r#"{"hidden_size": 4194304, "num_attention_heads": 4}"#,
            "hidden_size",
        ),
        // Few parameters, but 100k layer modules (~20 KB each before any weight) are 2 GB.
        (
            r#"{"hidden_size": 4, "num_attention_heads": 1, "intermediate_size": 4, "num_hidden_layers": 100000}"#,
            "num_hidden_layers",
        ),
    ];
    for (json, field) in cases {
        let err = BertConfig::from_json_str(json).unwrap_err().to_string();
        assert!(
            err.contains(field) && err.contains("config.json"),
            "{json}: {err}"
        );
        // And through a checkpoint directory, naming the file.
        let weights = fixture("tiny-bert/model.safetensors");
        let dir = checkpoint_dir(&[
            ("config.json", json.as_bytes()),
            ("model.safetensors", &weights),
        ]);
        let err = Checkpoint::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(field) && err.contains("config.json"),
            "{json}: {err}"
        );
    }
    // Real large models stay accepted: BERT-large, and a 250k-vocabulary multilingual one.
    BertConfig::from_json_str(
        r#"{"hidden_size": 1024, "num_attention_heads": 16, "num_hidden_layers": 24, "intermediate_size": 4096}"#,
    )
    .unwrap();
    BertConfig::from_json_str(
        r#"{"vocab_size": 250002, "hidden_size": 1024, "num_attention_heads": 16, "num_hidden_layers": 24,
            "intermediate_size": 4096, "max_position_embeddings": 514, "type_vocab_size": 1}"#,
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Property 2: model.safetensors

const DTYPES: &[&str] = &[
    "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "U16", "U32", "U64", "BOOL",
    "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "C64", "XYZ", "",
];

/// Bits per element, for keeping a dtype change byte-consistent.
fn dtype_bits(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F64" | "I64" | "U64" | "C64" => 64,
        "F32" | "I32" | "U32" => 32,
        "F16" | "BF16" | "I16" | "U16" => 16,
        "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" | "F8_E8M0" => 8,
        "F6_E2M3" => 6,
        "F4" => 4,
        _ => return None,
    })
}

#[derive(Debug, Clone)]
enum HeaderEdit {
    /// Any dtype; the byte count no longer matches the shape.
    Dtype(Pick, &'static str),
    /// A dtype change with the shape's last dimension rescaled so the bytes still fit: the
    /// header stays valid and the odd dtype reaches burn.
    DtypeKeepBytes(Pick, &'static str),
    Shape(Pick, Vec<u64>),
    /// The same element count in another layout (`[a, b]` → `[b, a]`, `[a*b]`, `[1, a, b]`).
    Reshape(Pick, u8),
    Offsets(Pick, u64, u64),
    ShiftOffsets(Pick, i64),
    Field(Pick, &'static str, Value),
    RemoveField(Pick, &'static str),
    Rename(Pick, String),
    Remove(Pick),
    Metadata(Value),
}

#[derive(Debug, Clone)]
enum StMutation {
    Flip(Pick, u8),
    /// A flip inside the header JSON (the first few thousand bytes).
    HeaderFlip(Pick, u8),
    Truncate(Pick),
    Extend(Vec<u8>),
    HeaderLength(u64),
    HeaderLengthDelta(i64),
    Header(HeaderEdit),
}

fn tensor_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "classifier.weight".to_string(),
            "classifier.bias".to_string(),
            "bert.pooler.dense.weight".to_string(),
            "bert.embeddings.word_embeddings.weight".to_string(),
            "bert.embeddings.position_ids".to_string(),
            "embeddings.word_embeddings.weight".to_string(),
            "bert.encoder.layer.99.attention.self.query.weight".to_string(),
            "bert.encoder.layer.18446744073709551616.output.dense.weight".to_string(),
            "cls.predictions.bias".to_string(),
            "__metadata__".to_string(),
            "".to_string(),
            ".".to_string(),
        ]),
        "[a-z_.0-9]{0,30}",
    ]
}

fn header_edit() -> impl Strategy<Value = HeaderEdit> {
    let dim =
        prop_oneof![4 => 0u64..70, 1 => Just(u64::MAX), 1 => Just(1u64 << 32), 1 => any::<u64>()];
    let offset = prop_oneof![3 => 0u64..100_000, 1 => any::<u64>()];
    prop_oneof![
        1 => (any::<Pick>(), prop::sample::select(DTYPES)).prop_map(|(i, d)| HeaderEdit::Dtype(i, d)),
        2 => (any::<Pick>(), prop::sample::select(DTYPES)).prop_map(|(i, d)| HeaderEdit::DtypeKeepBytes(i, d)),
        1 => (any::<Pick>(), prop::collection::vec(dim, 0..5)).prop_map(|(i, s)| HeaderEdit::Shape(i, s)),
        1 => (any::<Pick>(), 0u8..4).prop_map(|(i, k)| HeaderEdit::Reshape(i, k)),
        1 => (any::<Pick>(), offset.clone(), offset).prop_map(|(i, a, b)| HeaderEdit::Offsets(i, a, b)),
        1 => (any::<Pick>(), -300i64..300).prop_map(|(i, d)| HeaderEdit::ShiftOffsets(i, d)),
        1 => (any::<Pick>(), prop::sample::select(vec!["dtype", "shape", "data_offsets"]), json_value())
            .prop_map(|(i, f, v)| HeaderEdit::Field(i, f, v)),
        1 => (any::<Pick>(), prop::sample::select(vec!["dtype", "shape", "data_offsets"]))
            .prop_map(|(i, f)| HeaderEdit::RemoveField(i, f)),
        1 => (any::<Pick>(), tensor_name()).prop_map(|(i, n)| HeaderEdit::Rename(i, n)),
        1 => any::<Pick>().prop_map(HeaderEdit::Remove),
        1 => json_value().prop_map(HeaderEdit::Metadata),
    ]
}

fn st_mutation() -> impl Strategy<Value = StMutation> {
    prop_oneof![
        2 => (any::<Pick>(), 1u8..=255).prop_map(|(i, x)| StMutation::Flip(i, x)),
        2 => (any::<Pick>(), 1u8..=255).prop_map(|(i, x)| StMutation::HeaderFlip(i, x)),
        1 => any::<Pick>().prop_map(StMutation::Truncate),
        1 => prop::collection::vec(any::<u8>(), 1..64).prop_map(StMutation::Extend),
        1 => prop_oneof![any::<u64>(), 0u64..10_000].prop_map(StMutation::HeaderLength),
        1 => (-16i64..16).prop_map(StMutation::HeaderLengthDelta),
        6 => header_edit().prop_map(StMutation::Header),
    ]
}

fn header_len(bytes: &[u8]) -> Option<usize> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let n = usize::try_from(n).ok()?;
    (n.checked_add(8)? <= bytes.len()).then_some(n)
}

/// Applies `edit` to the header (when it still parses), rewriting the length field.
fn edit_header(bytes: &mut Vec<u8>, edit: &HeaderEdit) {
    let Some(n) = header_len(bytes) else { return };
    let Ok(mut header) = serde_json::from_slice::<serde_json::Map<String, Value>>(&bytes[8..8 + n])
    else {
        return;
    };
    let mut names: Vec<String> = header
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect();
    names.sort();
    if names.is_empty() {
        return;
    }
    let pick = |i: &Pick| names[i.index(names.len())].clone();
    let entry =
        |header: &mut serde_json::Map<String, Value>, i: &Pick| header.get_mut(&pick(i)).cloned();
    let shape_of = |v: &Value| -> Option<Vec<u64>> {
        v.get("shape")?
            .as_array()?
            .iter()
            .map(|d| d.as_u64())
            .collect()
    };
    match edit {
        HeaderEdit::Dtype(i, d) => {
            if let Some(Value::Object(t)) = header.get_mut(&pick(i)) {
                t.insert("dtype".into(), json!(d));
            }
        }
        HeaderEdit::DtypeKeepBytes(i, d) => {
            let name = pick(i);
            let Some(mut t) = entry(&mut header, i) else {
                return;
            };
            let (Some(old), Some(new)) = (
                t.get("dtype").and_then(Value::as_str).and_then(dtype_bits),
                dtype_bits(d),
            ) else {
                return;
            };
            let Some(mut shape) = shape_of(&t) else {
                return;
            };
            if let Some(last) = shape.last_mut() {
                match last.checked_mul(old) {
                    Some(bits) if bits % new == 0 => *last = bits / new,
                    _ => return,
                }
            }
            t["dtype"] = json!(d);
            t["shape"] = json!(shape);
            header.insert(name, t);
        }
        HeaderEdit::Shape(i, s) => {
            if let Some(Value::Object(t)) = header.get_mut(&pick(i)) {
                t.insert("shape".into(), json!(s));
            }
        }
        HeaderEdit::Reshape(i, kind) => {
            let name = pick(i);
            let Some(mut t) = entry(&mut header, i) else {
                return;
            };
            let Some(shape) = shape_of(&t) else { return };
            let total = shape.iter().fold(1u64, |a, &d| a.saturating_mul(d));
            let new = match (kind, shape.as_slice()) {
                (0, [a, b]) => vec![*b, *a],
                (1, _) => vec![total],
                (2, _) => [&[1], shape.as_slice()].concat(),
                _ => vec![],
            };
            t["shape"] = json!(new);
            header.insert(name, t);
        }
        HeaderEdit::Offsets(i, a, b) => {
            if let Some(Value::Object(t)) = header.get_mut(&pick(i)) {
                t.insert("data_offsets".into(), json!([a, b]));
            }
        }
        HeaderEdit::ShiftOffsets(i, d) => {
            if let Some(Value::Object(t)) = header.get_mut(&pick(i)) {
                let shifted: Option<Vec<Value>> =
                    t.get("data_offsets").and_then(Value::as_array).map(|o| {
                        o.iter()
                            .map(|x| json!(x.as_u64().unwrap_or(0).saturating_add_signed(*d)))
                            .collect()
                    });
                if let Some(s) = shifted {
                    t.insert("data_offsets".into(), Value::Array(s));
                }
            }
        }
        HeaderEdit::Field(i, f, v) => {
            if let Some(Value::Object(t)) = header.get_mut(&pick(i)) {
                t.insert(f.to_string(), v.clone());
            }
        }
        HeaderEdit::RemoveField(i, f) => {
            if let Some(Value::Object(t)) = header.get_mut(&pick(i)) {
                t.remove(*f);
            }
        }
        HeaderEdit::Rename(i, new) => {
            let name = pick(i);
            if let Some(t) = header.remove(&name) {
                header.insert(new.clone(), t);
            }
        }
        HeaderEdit::Remove(i) => {
            header.remove(&pick(i));
        }
        HeaderEdit::Metadata(v) => {
            header.insert("__metadata__".into(), v.clone());
        }
    }
    let text = serde_json::to_vec(&header).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    *bytes = out;
}

fn mutate_safetensors(mut bytes: Vec<u8>, mutations: &[StMutation]) -> Vec<u8> {
    for m in mutations {
        match m {
            StMutation::Flip(i, x) => {
                if !bytes.is_empty() {
                    let at = i.index(bytes.len());
                    bytes[at] ^= x;
                }
            }
            StMutation::HeaderFlip(i, x) => {
                let end = bytes.len().min(header_len(&bytes).map_or(64, |n| n + 8));
                if end > 0 {
                    bytes[i.index(end)] ^= x;
                }
            }
            StMutation::Truncate(i) => {
                let keep = i.index(bytes.len() + 1);
                bytes.truncate(keep);
            }
            StMutation::Extend(extra) => bytes.extend_from_slice(extra),
            StMutation::HeaderLength(n) => {
                if bytes.len() >= 8 {
                    bytes[..8].copy_from_slice(&n.to_le_bytes());
                }
            }
            StMutation::HeaderLengthDelta(d) => {
                if bytes.len() >= 8 {
                    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
                    bytes[..8].copy_from_slice(&n.wrapping_add_signed(*d).to_le_bytes());
                }
            }
            StMutation::Header(edit) => edit_header(&mut bytes, edit),
        }
    }
    bytes
}

fn check_safetensors(bytes: &[u8]) -> Result<(), TestCaseError> {
    let config = fixture("tiny-bert/config.json");
    let dir = checkpoint_dir(&[("config.json", &config), ("model.safetensors", bytes)]);
    check_load(dir.path(), "model.safetensors", bytes)
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn safetensors_mutations_never_panic(mutations in prop::collection::vec(st_mutation(), 1..4)) {
        let bytes = mutate_safetensors(fixture("tiny-bert/model.safetensors"), &mutations);
        check_safetensors(&bytes)?;
    }
}

/// A tensor written in place of (or beside) the fixture's, through the `safetensors` crate: the
/// file is well-formed, so everything odd about the tensor reaches burn-store and kiln.
#[derive(Debug, Clone)]
struct OddTensor {
    /// `None`: the original dtype.
    dtype: Option<safetensors::Dtype>,
    /// `None`: the original shape.
    shape: Option<Vec<usize>>,
    /// Byte pattern: 0x00, 0xff (NaN / -1 / true-ish), or pseudo-random from a seed.
    fill: Fill,
}

#[derive(Debug, Clone, Copy)]
enum Fill {
    Zero,
    Ones,
    Seed(u64),
}

#[derive(Debug, Clone)]
enum Rebuild {
    Replace(Pick, OddTensor),
    Add(String, OddTensor),
    Remove(Pick),
}

fn odd_tensor() -> impl Strategy<Value = OddTensor> {
    use safetensors::Dtype::*;
    let dtypes = vec![
        BOOL,
        F4,
        F6_E2M3,
        F6_E3M2,
        U8,
        I8,
        F8_E5M2,
        F8_E4M3,
        F8_E8M0,
        F8_E4M3FNUZ,
        F8_E5M2FNUZ,
        I16,
        U16,
        F16,
        BF16,
        I32,
        U32,
        F32,
        C64,
        F64,
        I64,
        U64,
    ];
    let dim =
        prop_oneof![6 => 0usize..40, 1 => Just(0usize), 1 => Just(1usize), 1 => Just(32usize)];
    (
        prop::option::of(prop::sample::select(dtypes)),
        prop::option::of(prop::collection::vec(dim, 0..4)),
        prop_oneof![
            Just(Fill::Zero),
            Just(Fill::Ones),
            any::<u64>().prop_map(Fill::Seed)
        ],
    )
        .prop_map(|(dtype, shape, fill)| OddTensor { dtype, shape, fill })
}

fn rebuild() -> impl Strategy<Value = Rebuild> {
    prop_oneof![
        4 => (any::<Pick>(), odd_tensor()).prop_map(|(i, t)| Rebuild::Replace(i, t)),
        1 => (tensor_name(), odd_tensor()).prop_map(|(n, t)| Rebuild::Add(n, t)),
        1 => any::<Pick>().prop_map(Rebuild::Remove),
    ]
}

/// The fixture re-serialized with `edits` applied (edits that make no sense are skipped).
fn rebuild_safetensors(edits: &[Rebuild]) -> Vec<u8> {
    use safetensors::tensor::TensorView;
    let original = fixture("tiny-bert/model.safetensors");
    let st = safetensors::SafeTensors::deserialize(&original).unwrap();
    let mut tensors: std::collections::BTreeMap<String, (safetensors::Dtype, Vec<usize>, Vec<u8>)> =
        st.tensors()
            .into_iter()
            .map(|(name, view)| {
                (
                    name,
                    (view.dtype(), view.shape().to_vec(), view.data().to_vec()),
                )
            })
            .collect();
    let make = |odd: &OddTensor, base: Option<&(safetensors::Dtype, Vec<usize>, Vec<u8>)>| {
        let dtype = odd
            .dtype
            .or(base.map(|b| b.0))
            .unwrap_or(safetensors::Dtype::F32);
        let shape = odd
            .shape
            .clone()
            .or(base.map(|b| b.1.clone()))
            .unwrap_or_default();
        let bits = shape.iter().product::<usize>() * dtype.bitsize();
        if !bits.is_multiple_of(8) {
            return None;
        }
        let mut state = match odd.fill {
            Fill::Seed(s) => s | 1,
            _ => 0,
        };
        let data = (0..bits / 8)
            .map(|_| match odd.fill {
                Fill::Zero => 0,
                Fill::Ones => 0xff,
                Fill::Seed(_) => {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                }
            })
            .collect();
        Some((dtype, shape, data))
    };
    for edit in edits {
        let names: Vec<String> = tensors.keys().cloned().collect();
        match edit {
            Rebuild::Replace(i, odd) if !names.is_empty() => {
                let name = &names[i.index(names.len())];
                if let Some(t) = make(odd, tensors.get(name)) {
                    tensors.insert(name.clone(), t);
                }
            }
            Rebuild::Add(name, odd) => {
                if let Some(t) = make(odd, None) {
                    tensors.insert(name.clone(), t);
                }
            }
            Rebuild::Remove(i) if !names.is_empty() => {
                tensors.remove(&names[i.index(names.len())]);
            }
            _ => {}
        }
    }
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(name, (dtype, shape, data))| {
            (
                name.clone(),
                TensorView::new(*dtype, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

proptest! {
    #![proptest_config(config(384))]

    #[test]
    fn well_formed_safetensors_with_odd_tensors_never_panic(
        edits in prop::collection::vec(rebuild(), 1..5)
    ) {
        let bytes = rebuild_safetensors(&edits);
        check_safetensors(&bytes)?;
    }
}

/// Every dtype, byte-consistent, on every kind of tensor: the header stays valid, so this is
/// what burn-store itself makes of it.
#[test]
fn every_dtype_on_a_valid_header_is_an_error_not_a_panic() {
    let original = fixture("tiny-bert/model.safetensors");
    let n = header_len(&original).unwrap();
    let header: serde_json::Map<String, Value> =
        serde_json::from_slice(&original[8..8 + n]).unwrap();
    let mut names: Vec<&String> = header.keys().filter(|k| *k != "__metadata__").collect();
    names.sort();
    // A bias/LayerNorm vector, a matrix, the word embeddings, the head.
    let picks: Vec<usize> = [
        "bert.embeddings.LayerNorm.bias",
        "bert.pooler.dense.weight",
        "bert.embeddings.word_embeddings.weight",
        "classifier.weight",
    ]
    .iter()
    .map(|want| names.iter().position(|n| n == want).unwrap())
    .collect();
    for &dtype in DTYPES {
        for &pick in &picks {
            let index = Pick::nth(pick, names.len());
            let edit = HeaderEdit::DtypeKeepBytes(index, dtype);
            let bytes = mutate_safetensors(original.clone(), &[StMutation::Header(edit.clone())]);
            check_safetensors(&bytes).unwrap_or_else(|e| panic!("{edit:?}: {e}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Property 3: pytorch_model.bin (a zip: data.pkl, data/0..N, version, ...)

/// Where an entry's bytes and CRC fields are in a stored (uncompressed) zip.
#[derive(Debug, Clone, Copy)]
struct ZipEntry {
    local_header: usize,
    central_header: usize,
    data: usize,
    size: usize,
}

fn le16(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}
fn le32(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// Finds `suffix` in the fixture's central directory (enough zip for an unmutated file).
fn zip_entry(zip: &[u8], suffix: &str) -> ZipEntry {
    let eocd = (0..zip.len() - 21)
        .rev()
        .find(|&i| zip[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .unwrap();
    let mut at = le32(zip, eocd + 16);
    loop {
        assert_eq!(
            zip[at..at + 4],
            [0x50, 0x4b, 0x01, 0x02],
            "central directory entry"
        );
        let name_len = le16(zip, at + 28);
        let name = std::str::from_utf8(&zip[at + 46..at + 46 + name_len]).unwrap();
        let next = at + 46 + name_len + le16(zip, at + 30) + le16(zip, at + 32);
        if name.ends_with(suffix) {
            assert_eq!(le16(zip, at + 10), 0, "stored, not compressed");
            let local = le32(zip, at + 42);
            let data = local + 30 + le16(zip, local + 26) + le16(zip, local + 28);
            return ZipEntry {
                local_header: local,
                central_header: at,
                data,
                size: le32(zip, at + 20),
            };
        }
        at = next;
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Rewrites an entry's CRC (central directory, local header unless it defers to a data
/// descriptor, and the data descriptor) so that a mutated entry reaches the parser.
fn fix_crc(zip: &mut [u8], e: ZipEntry) {
    let crc = crc32(&zip[e.data..e.data + e.size]).to_le_bytes();
    zip[e.central_header + 16..e.central_header + 20].copy_from_slice(&crc);
    if le32(zip, e.local_header + 14) != 0 {
        zip[e.local_header + 14..e.local_header + 18].copy_from_slice(&crc);
    }
    if le16(zip, e.local_header + 6) & 0x8 != 0 {
        let mut d = e.data + e.size;
        if zip[d..d + 4] == [0x50, 0x4b, 0x07, 0x08] {
            d += 4;
        }
        zip[d..d + 4].copy_from_slice(&crc);
    }
}

#[derive(Debug, Clone)]
enum BinMutation {
    /// Anywhere in the file (CRC left as is).
    Flip(Pick, u8),
    /// Inside `data.pkl`, CRC fixed: reaches the pickle reader.
    PickleFlip(Pick, u8),
    /// Overwrites `data.pkl` bytes with pickle opcodes and edge values, CRC fixed.
    PickleSet(Pick, Vec<u8>),
    /// Inside a text entry (`byteorder`, `version`, ...), CRC fixed.
    TextSet(Pick, u8, u8),
    /// Inside the central directory.
    CentralFlip(Pick, u8),
    Truncate(Pick),
    Extend(Vec<u8>),
}

const PICKLE_BYTES: &[u8] =
    b"()}]KJMqhXTU\x8c\x94\x85\x86\x87tRbsueNI0.cQ\x80\x95\xff\x00\x7f\x01\x02";
const TEXT_ENTRIES: &[&str] = &[
    "byteorder",
    "version",
    ".format_version",
    ".storage_alignment",
];

fn bin_mutation() -> impl Strategy<Value = BinMutation> {
    prop_oneof![
        2 => (any::<Pick>(), 1u8..=255).prop_map(|(i, x)| BinMutation::Flip(i, x)),
        4 => (any::<Pick>(), 1u8..=255).prop_map(|(i, x)| BinMutation::PickleFlip(i, x)),
        4 => (any::<Pick>(), prop::collection::vec(prop::sample::select(PICKLE_BYTES), 1..6))
            .prop_map(|(i, b)| BinMutation::PickleSet(i, b)),
        1 => (any::<Pick>(), 0u8..4, any::<u8>()).prop_map(|(i, e, b)| BinMutation::TextSet(i, e, b)),
        2 => (any::<Pick>(), 1u8..=255).prop_map(|(i, x)| BinMutation::CentralFlip(i, x)),
        1 => any::<Pick>().prop_map(BinMutation::Truncate),
        1 => prop::collection::vec(any::<u8>(), 1..64).prop_map(BinMutation::Extend),
    ]
}

fn mutate_bin(mut bytes: Vec<u8>, mutations: &[BinMutation]) -> Vec<u8> {
    let pickle = zip_entry(&bytes, "/data.pkl");
    // data.pkl is the first entry of the central directory, which runs to the end of the file.
    let central = pickle.central_header;
    let mut dirty = Vec::new();
    // Structure-aware edits first, while the offsets above still hold.
    for m in mutations {
        match m {
            BinMutation::PickleFlip(i, x) => {
                bytes[pickle.data + i.index(pickle.size)] ^= x;
                dirty.push(pickle);
            }
            BinMutation::PickleSet(i, b) => {
                let at = pickle.data + i.index(pickle.size);
                let end = (at + b.len()).min(pickle.data + pickle.size);
                bytes[at..end].copy_from_slice(&b[..end - at]);
                dirty.push(pickle);
            }
            BinMutation::TextSet(i, e, b) => {
                let entry = zip_entry(&bytes, &format!("/{}", TEXT_ENTRIES[*e as usize]));
                bytes[entry.data + i.index(entry.size)] = *b;
                dirty.push(entry);
            }
            _ => {}
        }
    }
    for e in dirty {
        fix_crc(&mut bytes, e);
    }
    for m in mutations {
        match m {
            BinMutation::Flip(i, x) => {
                let at = i.index(bytes.len());
                bytes[at] ^= x;
            }
            BinMutation::CentralFlip(i, x) => {
                let len = bytes.len().saturating_sub(central);
                if len > 0 {
                    bytes[central + i.index(len)] ^= x;
                }
            }
            BinMutation::Truncate(i) => {
                let keep = i.index(bytes.len() + 1);
                bytes.truncate(keep);
            }
            BinMutation::Extend(extra) => bytes.extend_from_slice(extra),
            _ => {}
        }
    }
    bytes
}

fn check_bin(bytes: &[u8]) -> Result<(), TestCaseError> {
    let config = fixture("tiny-bert-bin/config.json");
    let dir = checkpoint_dir(&[("config.json", &config), ("pytorch_model.bin", bytes)]);
    check_load(dir.path(), "pytorch_model.bin", bytes)
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn pytorch_bin_mutations_never_panic(mutations in prop::collection::vec(bin_mutation(), 1..4)) {
        let bytes = mutate_bin(fixture("tiny-bert-bin/pytorch_model.bin"), &mutations);
        check_bin(&bytes)?;
    }
}

/// The harness itself: the fixtures load, and a CRC-fixed pickle edit reaches the parser.
#[test]
fn harness_sanity() {
    let st = fixture("tiny-bert/model.safetensors");
    let config = fixture("tiny-bert/config.json");
    let dir = checkpoint_dir(&[("config.json", &config), ("model.safetensors", &st)]);
    assert!(open_and_load(dir.path()).unwrap().is_empty());

    let bin = fixture("tiny-bert-bin/pytorch_model.bin");
    let config = fixture("tiny-bert-bin/config.json");
    let dir = checkpoint_dir(&[("config.json", &config), ("pytorch_model.bin", &bin)]);
    assert!(open_and_load(dir.path()).unwrap().is_empty());

    // Same bytes, CRC recomputed: unchanged and still loads.
    let pickle = zip_entry(&bin, "/data.pkl");
    let mut fixed = bin.clone();
    fix_crc(&mut fixed, pickle);
    assert_eq!(fixed, bin, "crc32 agrees with the zip's own");
    // Truncating the pickle's STOP opcode is a pickle error, not a CRC error.
    let mutated = mutate_bin(
        bin.clone(),
        &[BinMutation::PickleSet(
            Pick::nth(pickle.size - 1, pickle.size),
            b"\x00".to_vec(),
        )],
    );
    let dir = checkpoint_dir(&[("config.json", &config), ("pytorch_model.bin", &mutated)]);
    let errors = open_and_load(dir.path()).unwrap();
    assert!(!errors.is_empty());
    for e in &errors {
        let message = e.to_string();
        assert!(
            message.contains("pytorch_model.bin") && !message.to_lowercase().contains("crc"),
            "{message}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Regression corpus

/// Replays every input in `tests/fixtures/fuzz-regressions/` that once crashed a load; the file
/// name's extension says which file of a checkpoint it is (`*.json` is a config.json).
#[test]
fn regression_corpus_loads_without_panicking() {
    let entries = std::fs::read_dir(regressions_dir()).expect("tests/fixtures/fuzz-regressions");
    let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    paths.sort();
    let mut replayed = 0;
    for path in paths {
        let bytes = std::fs::read(&path).unwrap();
        let result = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => check_config_bytes(&bytes),
            Some("safetensors") => check_safetensors(&bytes),
            Some("bin") => check_bin(&bytes),
            _ => continue,
        };
        replayed += 1;
        if let Err(e) = result {
            panic!("{}: {e}", path.display());
        }
    }
    // A corpus that lost its files would pass vacuously.
    assert!(replayed >= 2, "only {replayed} regression inputs replayed");
}
