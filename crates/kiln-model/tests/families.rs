//! The encoder families beyond BERT compute what transformers computes, on tiny seeded
//! checkpoints made by `scripts/reference/make_fixtures.py roberta electra`:
//! - RoBERTa / XLM-R: a byte-level BPE tokenizer with `RobertaProcessing`, positions after
//!   `<pad>` = 1, one token type, `RobertaClassificationHead`;
//! - ELECTRA: embeddings of 24 projected to the hidden 32 (`embeddings_project`), no pooler,
//!   `ElectraClassificationHead` (GELU).
//!
//! For each: the tokenizer's ids, the last hidden states and logits of a padded batch and of
//! the same examples packed, one training step's loss and gradients (head, a query weight,
//! the embeddings; RoBERTa's position table, ELECTRA's projection), the pre-training layouts
//! (`RobertaForMaskedLM`, `ElectraForPreTraining`) under a new head, the token head, and the
//! export's tensor names and config — all within 1e-4.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use kiln_data::{TextTokenizer, TokenBatch};
use kiln_model::{
    save_sequence_classifier, save_token_classifier, Checkpoint, Family, HeadInit, Pooling,
    SequenceClassifier, TokenClassifier,
};
use serde::Deserialize;

const TOLERANCE: f32 = 1e-4;

#[derive(Deserialize)]
struct Expected {
    texts: Vec<(String, Option<String>)>,
    input_ids: Vec<Vec<u32>>,
    batch_input_ids: Vec<Vec<i64>>,
    batch_token_type_ids: Vec<Vec<i64>>,
    batch_attention_mask: Vec<Vec<i64>>,
    last_hidden_state: Vec<Vec<Vec<f32>>>,
    logits: Vec<Vec<f32>>,
    labels: Vec<i64>,
    loss: f32,
    /// Nested lists of any depth (a convolution's weight is 3-D), in PyTorch's layout.
    grads: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct ExpectedToken {
    input_ids: Vec<Vec<i64>>,
    attention_mask: Vec<Vec<i64>>,
    labels: Vec<Vec<i64>>,
    logits: Vec<Vec<Vec<f32>>>,
    loss: f32,
    classifier_weight_grad: Vec<Vec<f32>>,
    classifier_bias_grad: Vec<f32>,
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// A family under test: its fixtures and what its layouts name.
struct FamilyCase {
    /// The sequence classifier's fixture (with expected.json).
    name: &'static str,
    /// The same encoder in its pre-training layout, and that layout's head (left out).
    base: &'static str,
    pretraining_head: &'static str,
    /// The token classifier's fixture.
    token: &'static str,
    /// The sequence head's weight in a checkpoint.
    head_key: &'static str,
    sequence_architecture: &'static str,
    token_architecture: &'static str,
}

const FAMILIES: [FamilyCase; 6] = [
    FamilyCase {
        name: "tiny-roberta",
        base: "tiny-roberta-mlm",
        pretraining_head: "lm_head.",
        token: "tiny-roberta-token",
        head_key: "classifier.out_proj.weight",
        sequence_architecture: "RobertaForSequenceClassification",
        token_architecture: "RobertaForTokenClassification",
    },
    FamilyCase {
        name: "tiny-electra",
        base: "tiny-electra-discriminator",
        pretraining_head: "discriminator_predictions.",
        token: "tiny-electra-token",
        head_key: "classifier.out_proj.weight",
        sequence_architecture: "ElectraForSequenceClassification",
        token_architecture: "ElectraForTokenClassification",
    },
    FamilyCase {
        name: "tiny-distilbert",
        base: "tiny-distilbert-mlm",
        pretraining_head: "vocab_projector.",
        token: "tiny-distilbert-token",
        head_key: "classifier.weight",
        sequence_architecture: "DistilBertForSequenceClassification",
        token_architecture: "DistilBertForTokenClassification",
    },
    FamilyCase {
        name: "tiny-modernbert",
        base: "tiny-modernbert-mlm",
        pretraining_head: "decoder.",
        token: "tiny-modernbert-token",
        head_key: "classifier.weight",
        sequence_architecture: "ModernBertForSequenceClassification",
        token_architecture: "ModernBertForTokenClassification",
    },
    FamilyCase {
        name: "tiny-deberta-v3",
        base: "tiny-deberta-v3-mlm",
        pretraining_head: "cls.",
        token: "tiny-deberta-v3-token",
        head_key: "classifier.weight",
        sequence_architecture: "DebertaV2ForSequenceClassification",
        token_architecture: "DebertaV2ForTokenClassification",
    },
    FamilyCase {
        name: "tiny-deberta-v2",
        base: "tiny-deberta-v2-mlm",
        pretraining_head: "cls.",
        token: "tiny-deberta-v2-token",
        head_key: "classifier.weight",
        sequence_architecture: "DebertaV2ForSequenceClassification",
        token_architecture: "DebertaV2ForTokenClassification",
    },
];

fn expected(name: &str) -> Expected {
    let text = std::fs::read_to_string(fixture(name).join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The checkpoint with dropout off: transformers computed the fixtures in eval mode.
fn open(name: &str) -> Checkpoint {
    let mut checkpoint = Checkpoint::open(fixture(name)).unwrap();
    checkpoint.config.hidden_dropout_prob = 0.0;
    checkpoint.config.attention_probs_dropout_prob = 0.0;
    checkpoint.config.classifier_dropout = Some(0.0);
    checkpoint
        .config
        .extra
        .insert("seq_classif_dropout".into(), serde_json::json!(0.0));
    checkpoint
}

fn ints(rows: &[Vec<i64>], device: &Device) -> Tensor<2, Int> {
    let (b, s) = (rows.len(), rows[0].len());
    Tensor::from_data(
        TensorData::new(rows.iter().flatten().copied().collect::<Vec<i64>>(), [b, s]),
        device,
    )
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// The numbers of a nested JSON list, in order.
fn flat(value: &serde_json::Value) -> Vec<f32> {
    match value {
        serde_json::Value::Array(items) => items.iter().flat_map(flat).collect(),
        other => vec![other.as_f64().expect("a number") as f32],
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length differs");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The fixture's padded batch as kiln-data lays it out.
fn padded_batch(e: &Expected, device: &Device) -> TokenBatch {
    let mask = ints(&e.batch_attention_mask, device).float();
    TokenBatch {
        token_type_ids: ints(&e.batch_token_type_ids, device),
        input_ids: ints(&e.batch_input_ids, device),
        attention_mask: mask,
        lengths: e.input_ids.iter().map(|r| r.len()).collect(),
        packing: None,
    }
}

/// Every float parameter's gradient, by its Hugging Face name (the two renames Rust forces
/// undone, an enum variant's segment dropped) as PyTorch lays it out: linear weights
/// transposed back to `[out, in]`, embedding tables as they are.
fn grads_by_hf_name<M: Module>(
    model: &M,
    grads: &burn::tensor::Gradients,
) -> BTreeMap<String, Vec<f32>> {
    struct Collect<'a> {
        path: Vec<String>,
        grads: &'a burn::tensor::Gradients,
        out: BTreeMap<String, Vec<f32>>,
    }
    impl burn::module::ModuleVisitor for Collect<'_> {
        fn enter_module(&mut self, name: &str, container: &str) {
            if !container.starts_with("Enum:") {
                self.path.push(name.to_string());
            }
        }
        fn exit_module(&mut self, _: &str, container: &str) {
            if !container.starts_with("Enum:") {
                self.path.pop();
            }
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let name = self
                .path
                .join(".")
                .replace(".self_attention.", ".self.")
                .replace(".layer_norm.", ".LayerNorm.");
            let Some(grad) = param.val().grad(self.grads) else {
                return;
            };
            let values = if D == 2 && !name.ends_with("embeddings.weight") {
                grad.transpose()
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .unwrap()
            } else {
                grad.into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .unwrap()
            };
            self.out.insert(name, values);
        }
    }
    let mut collect = Collect {
        path: Vec::new(),
        grads,
        out: BTreeMap::new(),
    };
    model.visit(&mut collect);
    collect.out
}

#[test]
fn the_family_is_read_from_model_type() {
    assert_eq!(open("tiny-roberta").family(), Family::Roberta);
    assert_eq!(open("tiny-xlmr").family(), Family::XlmRoberta);
    assert_eq!(open("tiny-electra").family(), Family::Electra);
    assert_eq!(open("tiny-bert").family(), Family::Bert);
    // 66 positions, the first two taken by <pad>'s offset.
    assert_eq!(open("tiny-roberta").config.max_tokens(), 64);
    assert_eq!(open("tiny-electra").config.max_tokens(), 64);
    assert_eq!(open("tiny-electra").config.embedding_width(), 24);
    assert_eq!(open("tiny-distilbert").family(), Family::DistilBert);
    // DistilBERT's own names read into the shared fields.
    let distilbert = open("tiny-distilbert").config;
    assert_eq!(
        (distilbert.hidden_size, distilbert.num_hidden_layers),
        (32, 2)
    );
    assert_eq!(
        (distilbert.num_attention_heads, distilbert.intermediate_size),
        (4, 64)
    );
}

#[test]
fn each_familys_tokenizer_gives_transformers_ids() {
    for FamilyCase { name, .. } in FAMILIES {
        let e = expected(name);
        let tokenizer = TextTokenizer::from_file(fixture(name).join("tokenizer.json"), 64).unwrap();
        for ((text, pair), want) in e.texts.iter().zip(&e.input_ids) {
            let got = tokenizer.encode(text, pair.as_deref()).unwrap();
            assert_eq!(got.input_ids, *want, "{name}: {text:?} / {pair:?}");
        }
    }
    let roberta = TextTokenizer::from_file(fixture("tiny-roberta").join("tokenizer.json"), 64);
    assert_eq!(roberta.unwrap().pad_id(), 1);
    // XLM-R's SentencePiece (Unigram, Metaspace) tokenizer, as transformers' XLMRobertaTokenizer
    // encodes texts and pairs.
    #[derive(Deserialize)]
    struct Xlmr {
        texts: Vec<(String, Option<String>)>,
        input_ids: Vec<Vec<u32>>,
    }
    let text = std::fs::read_to_string(fixture("tiny-xlmr").join("expected.json")).unwrap();
    let xlmr: Xlmr = serde_json::from_str(&text).unwrap();
    let tokenizer =
        TextTokenizer::from_file(fixture("tiny-xlmr").join("tokenizer.json"), 64).unwrap();
    assert_eq!(tokenizer.pad_id(), 1);
    for ((text, pair), want) in xlmr.texts.iter().zip(&xlmr.input_ids) {
        let got = tokenizer.encode(text, pair.as_deref()).unwrap();
        assert_eq!(got.input_ids, *want, "tiny-xlmr: {text:?} / {pair:?}");
    }
}

#[test]
fn hidden_states_and_logits_match_transformers_padded_and_packed() {
    let device = Device::flex();
    let cases = FAMILIES
        .iter()
        .map(|f| (f.name, expected(f.name)))
        .chain([("tiny-xlmr", expected("tiny-roberta"))]);
    for (name, e) in cases {
        let (model, report) = open(name)
            .load_sequence_classifier(HeadInit::FromCheckpoint, Pooling::Cls, &device)
            .unwrap();
        assert!(!matches!(model, SequenceClassifier::Bert(_)), "{name}");
        assert!(!report.new_head && report.ignored.is_empty(), "{report:?}");
        let batch = padded_batch(&e, &device);
        let hidden = model.encoder().encode_batch(&batch);
        let [_, seq, width] = hidden.dims();
        let hidden = values(hidden);
        for (i, want) in e.last_hidden_state.iter().enumerate() {
            let got = &hidden[i * seq * width..(i * seq + want.len()) * width];
            let want: Vec<f32> = want.iter().flatten().copied().collect();
            let d = max_abs_diff(got, &want);
            assert!(d <= TOLERANCE, "{name} example {i} hidden: {d}");
        }
        let want: Vec<f32> = e.logits.iter().flatten().copied().collect();
        let d = max_abs_diff(&values(model.forward_batch(batch)), &want);
        assert!(d <= TOLERANCE, "{name} logits: {d}");

        // Packed: several examples to a row, positions restarting at each (the fixture's
        // token ids, as the padded batch has them). DeBERTa-v2's convolution would reach
        // across examples: that model says so, and the trainer pads for it.
        if !model.accepts_packed() {
            assert_eq!(
                name, "tiny-deberta-v2",
                "only the conv layer refuses packing"
            );
            continue;
        }
        let encodings: Vec<kiln_data::Encoding> = e
            .input_ids
            .iter()
            .zip(&e.batch_token_type_ids)
            .map(|(ids, types)| kiln_data::Encoding {
                token_type_ids: types[..ids.len()].iter().map(|&t| t as u32).collect(),
                input_ids: ids.clone(),
                truncated: false,
            })
            .collect();
        let refs: Vec<_> = encodings.iter().collect();
        // A packed row's padding is masked and placed by the packing: its id does not matter.
        let packed = TokenBatch::pack(&refs, 0, 1, &device);
        assert!(
            packed.input_ids.dims()[0] < e.texts.len(),
            "nothing was packed"
        );
        let d = max_abs_diff(&values(model.forward_batch(packed)), &want);
        assert!(d <= TOLERANCE, "{name} packed logits: {d}");
    }
}

#[test]
fn one_training_step_has_transformers_loss_and_gradients() {
    let device = Device::flex().autodiff();
    for FamilyCase { name, .. } in FAMILIES {
        let e = expected(name);
        let (model, _) = open(name)
            .load_sequence_classifier(HeadInit::FromCheckpoint, Pooling::Cls, &device)
            .unwrap();
        let model = model.train();
        let logits = model.forward_batch(padded_batch(&e, &device));
        let n = e.labels.len();
        let targets = Tensor::<1, Int>::from_data(TensorData::new(e.labels.clone(), [n]), &device);
        let loss = log_softmax(logits, 1)
            .gather(1, targets.reshape([n, 1]))
            .mean()
            .neg();
        let value = values(loss.clone())[0];
        assert!(
            (value - e.loss).abs() <= TOLERANCE,
            "{name}: loss {value} vs {}",
            e.loss
        );
        let grads = grads_by_hf_name(&model, &loss.backward());
        // RoBERTa's position rows that carry a gradient are the ones after <pad>'s offset,
        // so a wrong offset fails here; ELECTRA's projection is checked the same way.
        assert!(e.grads.len() >= 5, "{name}");
        for (hf_name, want) in &e.grads {
            let got = grads
                .get(hf_name)
                .unwrap_or_else(|| panic!("{name}: no gradient for {hf_name}"));
            let d = max_abs_diff(got, &flat(want));
            assert!(d <= TOLERANCE, "{name} {hf_name} grad: {d}");
        }
    }
}

#[test]
fn pre_training_layouts_load_as_an_encoder_under_a_new_head() {
    let device = Device::flex();
    for FamilyCase {
        name,
        base,
        pretraining_head: left_out,
        head_key,
        ..
    } in FAMILIES
    {
        let e = expected(name);
        // RobertaForMaskedLM (roberta-base's layout), ElectraForPreTraining (the
        // discriminators'), DistilBertForMaskedLM: the pre-training head is left out and named.
        let (model, report) = open(base)
            .load_sequence_classifier(HeadInit::New(4), Pooling::Cls, &device)
            .unwrap();
        assert!(report.new_head);
        assert!(
            report.ignored.iter().any(|k| k.starts_with(left_out)),
            "{base}: {:?}",
            report.ignored
        );
        assert_eq!(model.num_labels(), 4);
        let batch = padded_batch(&e, &device);
        let hidden = values(model.encoder().encode_batch(&batch));
        let (reference, _) = open(name)
            .load_sequence_classifier(HeadInit::FromCheckpoint, Pooling::Cls, &device)
            .unwrap();
        let want = values(reference.encoder().encode_batch(&batch));
        assert_eq!(
            hidden, want,
            "{base}: same encoder weights, same hidden states"
        );

        // The encoder alone (kiln embed's path) from the same file.
        let (encoder, _) = open(base).load_encoder(&device).unwrap();
        assert_eq!(values(encoder.encode_batch(&batch)), want, "{base}");

        // A classifier checkpoint asked for a new head: the old one is named as replaced.
        let (_, report) = open(name)
            .load_sequence_classifier(HeadInit::New(2), Pooling::Mean, &device)
            .unwrap();
        assert!(
            report.ignored.iter().any(|k| k.contains("replaced")),
            "{name}"
        );
        // A token head on a sequence classifier's encoder: the sequence head is left out.
        let (tagger, report) = open(name)
            .load_token_classifier_auto(HeadInit::New(3), &device)
            .unwrap();
        assert_eq!(tagger.num_labels(), 3);
        assert!(
            report.ignored.iter().any(|k| k.starts_with("classifier.")),
            "{name}: {:?}",
            report.ignored
        );
        // No head in the file: FromCheckpoint says so.
        let err = open(base)
            .load_sequence_classifier(HeadInit::FromCheckpoint, Pooling::Cls, &device)
            .unwrap_err()
            .to_string();
        assert!(err.contains(head_key), "{err}");
    }
}

/// The tensor names (and shapes) of a safetensors file.
fn tensor_names(path: &std::path::Path) -> BTreeMap<String, Vec<u64>> {
    let bytes = std::fs::read(path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    header
        .into_iter()
        .filter(|(k, _)| k != "__metadata__")
        .map(|(k, v)| {
            let shape = v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect();
            (k, shape)
        })
        .collect()
}

#[test]
fn the_export_is_the_family_layout_and_reloads_identically() {
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let cases = FAMILIES
        .iter()
        .map(|f| (f.name, f.sequence_architecture))
        .chain([("tiny-xlmr", "XLMRobertaForSequenceClassification")]);
    for (name, architecture) in cases {
        let e = expected(if name == "tiny-xlmr" {
            "tiny-roberta"
        } else {
            name
        });
        let checkpoint = open(name);
        let (model, _) = checkpoint
            .load_sequence_classifier(HeadInit::FromCheckpoint, Pooling::Cls, &device)
            .unwrap();
        let labels = checkpoint.config.labels().unwrap();
        let out = tmp.path().join(name);
        save_sequence_classifier(
            &model,
            &checkpoint.config,
            &labels,
            Some(&checkpoint.tokenizer_path()),
            &out,
        )
        .unwrap();
        // The names and shapes transformers wrote, no more and no less.
        assert_eq!(
            tensor_names(&out.join("model.safetensors")),
            tensor_names(&fixture(name).join("model.safetensors")),
            "{name}"
        );
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config["architectures"][0], architecture);
        assert_eq!(config["model_type"], checkpoint.config.model_type.as_str());
        // The sizes under the names transformers wrote them (DistilBERT's `dim`, `n_layers`…).
        let original: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(name).join("config.json")).unwrap(),
        )
        .unwrap();
        for key in [
            "hidden_size",
            "dim",
            "num_hidden_layers",
            "n_layers",
            "num_attention_heads",
            "n_heads",
            "intermediate_size",
            "hidden_dim",
            "embedding_size",
            "activation",
            "hidden_act",
            "max_position_embeddings",
            "type_vocab_size",
            "pad_token_id",
            "vocab_size",
        ] {
            assert_eq!(config.get(key), original.get(key), "{name}: {key}");
        }
        let tokenizer_config: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join("tokenizer_config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(tokenizer_config["model_max_length"], 64);
        let (back, _) = Checkpoint::open(&out)
            .unwrap()
            .load_sequence_classifier(HeadInit::FromCheckpoint, Pooling::Cls, &device)
            .unwrap();
        let batch = padded_batch(&e, &device);
        assert_eq!(
            values(back.forward_batch(batch.clone())),
            values(model.forward_batch(batch)),
            "{name}"
        );
    }
}

#[test]
fn each_token_head_matches_transformers_and_exports_its_layout() {
    let device = Device::flex().autodiff();
    for FamilyCase {
        token: name,
        token_architecture: architecture,
        ..
    } in FAMILIES
    {
        let text = std::fs::read_to_string(fixture(name).join("expected.json")).unwrap();
        let e: ExpectedToken = serde_json::from_str(&text).unwrap();
        let checkpoint = open(name);
        let (model, _) = checkpoint
            .load_token_classifier_auto(HeadInit::FromCheckpoint, &device)
            .unwrap();
        assert!(!matches!(model, TokenClassifier::Bert(_)), "{name}");
        let model = model.train();
        let ids = ints(&e.input_ids, &device);
        let batch = TokenBatch {
            token_type_ids: ids.zeros_like(),
            input_ids: ids,
            attention_mask: ints(&e.attention_mask, &device).float(),
            lengths: e
                .attention_mask
                .iter()
                .map(|r| r.iter().filter(|&&m| m == 1).count())
                .collect(),
            packing: None,
        };
        let logits = model.head(model.token_features_of(batch));
        let want: Vec<f32> = e.logits.iter().flatten().flatten().copied().collect();
        // Real tokens only: a padding row's output is never read (its label is -100), and
        // where a sliding window holds nothing but padding the two sides' mask constants
        // (transformers' dtype minimum, kiln's -1e4) spread it differently.
        let got = values(logits.clone());
        let mask: Vec<i64> = e.attention_mask.iter().flatten().copied().collect();
        let c = got.len() / mask.len();
        let real = |v: &[f32]| -> Vec<f32> {
            v.chunks(c)
                .zip(&mask)
                .filter(|(_, &m)| m == 1)
                .flat_map(|(row, _)| row.to_vec())
                .collect()
        };
        let d = max_abs_diff(&real(&got), &real(&want));
        assert!(d <= TOLERANCE, "{name} token logits: {d}");
        let labels: Vec<i64> = e.labels.iter().flatten().copied().collect();
        let kept: Vec<i64> = (0..labels.len() as i64)
            .filter(|&i| labels[i as usize] != -100)
            .collect();
        let targets: Vec<i64> = kept.iter().map(|&i| labels[i as usize]).collect();
        let n = kept.len();
        let rows = logits.select(0, Tensor::from_data(TensorData::new(kept, [n]), &device));
        let loss = log_softmax(rows, 1)
            .gather(
                1,
                Tensor::<1, Int>::from_data(TensorData::new(targets, [n]), &device).reshape([n, 1]),
            )
            .mean()
            .neg();
        let value = values(loss.clone())[0];
        assert!(
            (value - e.loss).abs() <= TOLERANCE,
            "{name}: loss {value} vs {}",
            e.loss
        );
        let grads = grads_by_hf_name(&model, &loss.backward());
        let weight: Vec<f32> = e.classifier_weight_grad.iter().flatten().copied().collect();
        let d = max_abs_diff(&grads["classifier.weight"], &weight);
        assert!(d <= TOLERANCE, "{name} classifier.weight grad: {d}");
        let d = max_abs_diff(&grads["classifier.bias"], &e.classifier_bias_grad);
        assert!(d <= TOLERANCE, "{name} classifier.bias grad: {d}");

        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("token");
        let tags = checkpoint.config.labels().unwrap();
        save_token_classifier(&model, &checkpoint.config, &tags, None, &out).unwrap();
        assert_eq!(
            tensor_names(&out.join("model.safetensors")),
            tensor_names(&fixture(name).join("model.safetensors")),
            "{name}"
        );
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config["architectures"][0], architecture);
    }
}
