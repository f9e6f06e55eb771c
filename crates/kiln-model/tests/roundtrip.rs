//! Saving in HF layout and loading back; every class of loading error names what is wrong.

use std::path::Path;

use burn::prelude::*;
use kiln_model::{save_pretrained, BertClassifier, BertConfig, Checkpoint, HeadInit, Pooling};

fn tiny_config() -> BertConfig {
    BertConfig::from_json_str(
        r#"{"vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4,
            "intermediate_size": 24, "max_position_embeddings": 20, "hidden_act": "gelu"}"#,
    )
    .unwrap()
}

fn labels() -> Vec<String> {
    vec!["a".into(), "b".into(), "c".into()]
}

fn inputs(device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>, Tensor<2>) {
    let ids = Tensor::<2, Int>::from_data(
        TensorData::new(vec![2i64, 7, 9, 11, 3, 2, 5, 3, 0, 0], [2, 5]),
        device,
    );
    let types = Tensor::<2, Int>::from_data(TensorData::new(vec![0i64; 10], [2, 5]), device);
    let mask = Tensor::<2>::from_data(
        TensorData::new(vec![1f32, 1., 1., 1., 1., 1., 1., 1., 0., 0.], [2, 5]),
        device,
    );
    (ids, types, mask)
}

fn logits(model: &BertClassifier, device: &Device) -> Vec<f32> {
    let (ids, types, mask) = inputs(device);
    model
        .forward(ids, types, mask)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

/// Everything beside the saved `model` directory (staging directories must not remain).
fn leftovers(parent: &Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "model")
        .collect()
}

fn saved_model(dir: &Path, device: &Device) -> Vec<f32> {
    device.seed(7);
    let model = BertClassifier::new(&tiny_config(), 3, Pooling::Cls, device);
    save_pretrained(&model, &tiny_config(), &labels(), None, dir).unwrap();
    logits(&model, device)
}

#[test]
fn save_then_load_gives_identical_outputs_and_hf_names() {
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    let expected = saved_model(&dir, &device);

    let checkpoint = Checkpoint::open(&dir).unwrap();
    assert_eq!(checkpoint.config.labels().unwrap(), labels());
    assert_eq!(
        checkpoint.config.architectures.as_deref(),
        Some(&["BertForSequenceClassification".to_string()][..])
    );
    let (model, report) = checkpoint
        .load_classifier(HeadInit::FromCheckpoint, Pooling::Cls, &device)
        .unwrap();
    assert!(report.has_pooler);
    assert_eq!(logits(&model, &device), expected);

    // The file uses transformers' names (and layout: Linear weights are [out, in]).
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(|s| s.to_string()).collect();
    names.sort();
    for expected_name in [
        "bert.embeddings.word_embeddings.weight",
        "bert.embeddings.LayerNorm.weight",
        "bert.embeddings.LayerNorm.bias",
        "bert.encoder.layer.0.attention.self.query.weight",
        "bert.encoder.layer.1.attention.output.dense.bias",
        "bert.encoder.layer.1.attention.output.LayerNorm.weight",
        "bert.encoder.layer.0.intermediate.dense.weight",
        "bert.encoder.layer.0.output.dense.weight",
        "bert.encoder.layer.0.output.LayerNorm.bias",
        "bert.pooler.dense.weight",
        "classifier.weight",
        "classifier.bias",
    ] {
        assert!(
            names.iter().any(|n| n == expected_name),
            "{expected_name} not in {names:?}"
        );
    }
    // 5 embedding tensors + 16 per layer + pooler 2 + classifier 2.
    assert_eq!(names.len(), 5 + 16 * 2 + 2 + 2, "{names:?}");
    let inter = st
        .tensor("bert.encoder.layer.0.intermediate.dense.weight")
        .unwrap();
    assert_eq!(inter.shape(), &[24, 16]);
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(
        meta.metadata()
            .as_ref()
            .and_then(|m| m.get("format"))
            .map(String::as_str),
        Some("pt")
    );
}

#[test]
fn new_head_replaces_the_checkpoint_head() {
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    saved_model(&dir, &device);
    let (model, report) = Checkpoint::open(&dir)
        .unwrap()
        .load_classifier(HeadInit::New(5), Pooling::Mean, &device)
        .unwrap();
    assert_eq!(model.num_labels(), 5);
    assert!(report.new_head);
    assert!(report.ignored.iter().any(|s| s.contains("classifier")));
}

#[test]
fn saving_over_an_existing_model_replaces_it_whole() {
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    saved_model(&dir, &device);
    std::fs::write(dir.join("stale.txt"), "old").unwrap();
    saved_model(&dir, &device);
    assert!(!dir.join("stale.txt").exists());
    assert!(dir.join("model.safetensors").is_file());
    // Nothing staged is left beside it.
    let left = leftovers(tmp.path());
    assert!(left.is_empty(), "{left:?}");
}

fn error_of(dir: &Path) -> String {
    let device = Device::flex();
    match Checkpoint::open(dir)
        .and_then(|c| c.load_classifier(HeadInit::FromCheckpoint, Pooling::Cls, &device))
    {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn missing_files_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let err = error_of(&tmp.path().join("nope"));
    assert!(err.contains("nope"), "{err}");

    std::fs::write(tmp.path().join("config.json"), "{}").unwrap();
    let err = error_of(tmp.path());
    assert!(err.contains("no weights found"), "{err}");

    std::fs::write(tmp.path().join("config.json"), "{not json").unwrap();
    let err = error_of(tmp.path());
    assert!(err.contains("config.json"), "{err}");
}

#[test]
fn wrong_shapes_are_listed() {
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    saved_model(&dir, &device);
    // Claim a different intermediate size: every intermediate/output weight is now wrong.
    let path = dir.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["intermediate_size"] = 32.into();
    std::fs::write(&path, config.to_string()).unwrap();
    let err = error_of(&dir);
    assert!(err.contains("wrong tensors"), "{err}");
    assert!(err.contains("intermediate"), "{err}");
    assert!(
        err.contains("[24, 16]") || err.contains("[16, 24]"),
        "{err}"
    );
}

#[test]
fn missing_and_unexpected_tensors_are_listed() {
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    saved_model(&dir, &device);
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    // Drop one tensor and add one nobody expects.
    let mut tensors: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| n != "bert.encoder.layer.1.output.dense.bias")
        .collect();
    let extra = vec![0u8; 8];
    tensors.push((
        "bert.encoder.layer.9.mystery.weight".into(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &extra).unwrap(),
    ));
    let out = safetensors::serialize(tensors, None).unwrap();
    std::fs::write(&path, out).unwrap();
    let err = error_of(&dir);
    assert!(err.contains("missing tensors (1)"), "{err}");
    // The module tree is Hugging Face's: the missing tensor is named as the file names it.
    assert!(
        err.contains("bert.encoder.layer.1.output.dense.bias"),
        "{err}"
    );
    assert!(err.contains("unexpected tensors (1)"), "{err}");
    assert!(err.contains("mystery"), "{err}");
}

#[test]
fn a_corrupt_weights_file_is_an_error_not_a_panic() {
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    saved_model(&dir, &device);
    std::fs::write(
        dir.join("model.safetensors"),
        b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage",
    )
    .unwrap();
    let err = error_of(&dir);
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn a_head_is_required_when_asked_from_the_checkpoint() {
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    saved_model(&dir, &device);
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let tensors: Vec<_> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| !n.starts_with("classifier."))
        .collect();
    std::fs::write(&path, safetensors::serialize(tensors, None).unwrap()).unwrap();
    let err = error_of(&dir);
    assert!(err.contains("no classification head"), "{err}");
    // As an encoder it loads.
    assert!(Checkpoint::open(&dir)
        .unwrap()
        .load_encoder(&device)
        .is_ok());
}

#[test]
fn a_failed_save_leaves_the_previous_model_whole() {
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    let expected = saved_model(&dir, &device);
    // A second save that fails part-way (its tokenizer.json does not exist).
    device.seed(99);
    let other = BertClassifier::new(&tiny_config(), 3, Pooling::Cls, &device);
    let err = save_pretrained(
        &other,
        &tiny_config(),
        &labels(),
        Some(&tmp.path().join("missing.json")),
        &dir,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("missing.json"), "{err}");
    let (model, _) = Checkpoint::open(&dir)
        .unwrap()
        .load_classifier(HeadInit::FromCheckpoint, Pooling::Cls, &device)
        .unwrap();
    assert_eq!(
        logits(&model, &device),
        expected,
        "the previous model is intact"
    );
    let left = leftovers(tmp.path());
    assert!(left.is_empty(), "{left:?}");
}

/// This process's umask, as Linux reports it (`Umask:` in /proc/self/status, since 4.7).
#[cfg(target_os = "linux")]
fn current_umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .expect("no Umask line");
    u32::from_str_radix(line.trim(), 8).unwrap()
}

/// Permission bits of `root` and of everything below it.
#[cfg(unix)]
fn modes(root: &Path) -> Vec<(std::path::PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut found = vec![(
        root.to_path_buf(),
        std::fs::metadata(root).unwrap().permissions().mode() & 0o777,
    )];
    if root.is_dir() {
        for entry in std::fs::read_dir(root).unwrap() {
            found.extend(modes(&entry.unwrap().path()));
        }
    }
    found
}

/// The entries of `found` whose mode is not what `umask` gives a new file (0666 less the umask)
/// or directory (0777 less the umask), each as "path: mode, expected".
#[cfg(unix)]
fn wrong_modes(found: &[(std::path::PathBuf, u32)], umask: u32) -> Vec<String> {
    found
        .iter()
        .filter_map(|(path, mode)| {
            let want = if path.is_dir() {
                0o777 & !umask
            } else {
                0o666 & !umask
            };
            (*mode != want).then(|| format!("{}: {mode:o}, {want:o} expected", path.display()))
        })
        .collect()
}

/// Runs the ignored test `name` of this test binary in a child process under umask `mask`:
/// the umask belongs to the whole process, so setting it here would change the files of the
/// tests running beside this one.
#[cfg(target_os = "linux")]
fn run_under_umask(name: &str, mask: &str) {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            r#"umask {mask} && exec "$0" --exact {name} --ignored --test-threads=1"#
        ))
        .arg(std::env::current_exe().unwrap())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{name} under umask {mask}:\n{text}");
    assert!(
        text.contains("1 passed"),
        "{name} did not run under umask {mask}:\n{text}"
    );
}

#[test]
#[cfg(target_os = "linux")]
fn saved_files_take_the_umask() {
    for mask in ["022", "077", "002"] {
        run_under_umask("saving_under_this_umask", mask);
    }
}

/// Saves a model with its tokenizer files and a file through `write_atomic` (as metrics.json,
/// config.toml and report.html are written), and checks every mode against this process's umask.
#[test]
#[cfg(target_os = "linux")]
#[ignore = "run by saved_files_take_the_umask in a child process with a set umask"]
fn saving_under_this_umask() {
    let umask = current_umask();
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    std::fs::create_dir(&source).unwrap();
    for name in [
        "tokenizer.json",
        "vocab.txt",
        "special_tokens_map.json",
        "tokenizer_config.json",
    ] {
        std::fs::write(source.join(name), "{}").unwrap();
    }
    let out = tmp.path().join("run");
    std::fs::create_dir(&out).unwrap();
    let model = BertClassifier::new(&tiny_config(), 3, Pooling::Cls, &device);
    save_pretrained(
        &model,
        &tiny_config(),
        &labels(),
        Some(&source.join("tokenizer.json")),
        &out.join("model"),
    )
    .unwrap();
    kiln_model::files::write_atomic(&out.join("metrics.json"), b"{}").unwrap();

    let found = modes(&out);
    let names: Vec<String> = found
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "model",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "metrics.json",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not saved: {names:?}"
        );
    }
    let wrong = wrong_modes(&found, umask);
    assert!(wrong.is_empty(), "under umask {umask:03o}: {wrong:#?}");
}

#[test]
fn identical_weights_save_to_identical_bytes() {
    let device = Device::flex();
    let model = BertClassifier::new(&tiny_config(), 3, Pooling::Cls, &device);
    let tmp = tempfile::tempdir().unwrap();
    let save = |i: usize| {
        let dir = tmp.path().join(format!("model-{i}"));
        save_pretrained(&model, &tiny_config(), &labels(), None, &dir).unwrap();
        (
            std::fs::read(dir.join("model.safetensors")).unwrap(),
            std::fs::read(dir.join("config.json")).unwrap(),
        )
    };
    // Each save builds fresh hash maps with fresh random keys, so an order that came from a
    // HashMap would show up within a few saves.
    let (weights, config) = save(0);
    for i in 1..8 {
        let (w, c) = save(i);
        assert!(
            w == weights,
            "save {i}: model.safetensors differs from save 0"
        );
        assert!(c == config, "save {i}: config.json differs from save 0");
    }
    // Still a valid file that keeps transformers' format=pt, and whose metadata keys are sorted.
    let (_, meta) = safetensors::SafeTensors::read_metadata(&weights).unwrap();
    assert_eq!(
        meta.metadata()
            .as_ref()
            .and_then(|m| m.get("format"))
            .map(String::as_str),
        Some("pt")
    );
    let header_len = u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&weights[8..8 + header_len]).unwrap();
    let keys: Vec<usize> = ["\"format\"", "\"producer\"", "\"version\""]
        .iter()
        .map(|k| header.find(k).unwrap())
        .collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "metadata keys out of order: {header}"
    );
}

#[test]
fn a_token_classifier_saves_as_bert_for_token_classification_and_loads_back_identical() {
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    device.seed(7);
    let model = kiln_model::BertTokenClassifier::new(&tiny_config(), 3, &device);
    let (ids, types, mask) = inputs(&device);
    let expected = model
        .forward(ids.clone(), types.clone(), mask.clone())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let auto = kiln_model::TokenClassifier::from(model.clone());
    kiln_model::save_token_classifier(&auto, &tiny_config(), &labels(), None, &dir).unwrap();
    assert!(leftovers(tmp.path()).is_empty());

    let checkpoint = Checkpoint::open(&dir).unwrap();
    assert_eq!(checkpoint.config.labels().unwrap(), labels());
    assert_eq!(
        checkpoint.config.architectures.as_deref(),
        Some(&["BertForTokenClassification".to_string()][..])
    );
    // HF's names, and no pooler (BertForTokenClassification has none).
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let names: Vec<String> = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap()
        .names()
        .into_iter()
        .map(str::to_string)
        .collect();
    assert!(
        names.contains(&"classifier.weight".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&"bert.encoder.layer.1.attention.self.query.weight".to_string()));
    assert!(!names.iter().any(|n| n.contains("pooler")), "{names:?}");

    let (loaded, _) = checkpoint
        .load_token_classifier(HeadInit::FromCheckpoint, &device)
        .unwrap();
    let got = loaded
        .forward(ids, types, mask)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(got, expected);
    // Two labels for a three-tag head: refused, naming the directory.
    let err = kiln_model::save_token_classifier(&auto, &tiny_config(), &labels()[..2], None, &dir)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("2 labels given for a head with 3 outputs"),
        "{err}"
    );
}
