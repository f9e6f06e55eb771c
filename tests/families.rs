//! `kiln train --model DIR` picks the encoder family from `config.json` (no flag names it):
//! a RoBERTa checkpoint in roberta-base's layout (`RobertaForMaskedLM`: `roberta.*`,
//! `lm_head.*`) and an ELECTRA discriminator (`ElectraForPreTraining`: `electra.*`,
//! `discriminator_predictions.*`), a DistilBERT in distilbert-base's (`DistilBertForMaskedLM`)
//! and a ModernBERT in ModernBERT-base's (`ModernBertForMaskedLM`: `model.*`, `head.*`,
//! `decoder.*`) — tiny, seeded, made by `scripts/reference/make_fixtures.py roberta electra
//! distilbert modernbert` —
//! fine-tune as sequence classifiers (RoBERTa as a tagger too; DistilBERT as a distillation
//! student), export their own family's layout, and the exports serve `kiln predict` / `kiln
//! eval`.

mod common;

use common::{json, kiln, stdout_of as ok};

fn fixture(name: &str) -> String {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn each_family_fine_tunes_exports_its_layout_and_serves() {
    for (base, left_out, architecture, model_type, pad) in [
        (
            "tiny-roberta-mlm",
            "lm_head",
            "RobertaForSequenceClassification",
            "roberta",
            1,
        ),
        (
            "tiny-electra-discriminator",
            "discriminator_predictions",
            "ElectraForSequenceClassification",
            "electra",
            0,
        ),
        (
            "tiny-distilbert-mlm",
            "vocab_projector",
            "DistilBertForSequenceClassification",
            "distilbert",
            0,
        ),
        (
            "tiny-modernbert-mlm",
            "decoder",
            "ModernBertForSequenceClassification",
            "modernbert",
            0,
        ),
        (
            "tiny-deberta-v3-mlm",
            "cls.predictions",
            "DebertaV2ForSequenceClassification",
            "deberta-v2",
            0,
        ),
        // v2's convolution layer: padded batches (the default sampler packs the others).
        (
            "tiny-deberta-v2-mlm",
            "cls.predictions",
            "DebertaV2ForSequenceClassification",
            "deberta-v2",
            0,
        ),
    ] {
        fine_tune_export_and_serve(&fixture(base), left_out, architecture, model_type, pad);
    }
}

fn fine_tune_export_and_serve(
    model: &str,
    left_out: &str,
    architecture: &str,
    model_type: &str,
    pad: u64,
) {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = (tmp.path().join("train.csv"), tmp.path().join("test.csv"));
    common::write_csv(&train, 48, "");
    common::write_csv(&test, 12, "");
    let out = tmp.path().join("run");
    let run = kiln(&[
        "train",
        "--model",
        model,
        "--train",
        train.to_str().unwrap(),
        "--test",
        test.to_str().unwrap(),
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--lr",
        "0.003",
        "--max-len",
        "16",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = common::stderr_of(&run);
    assert!(
        stderr.contains(left_out),
        "the pre-training head is named as left out: {stderr}"
    );
    let metrics = kiln::metrics::RunMetrics::of_run(&out).unwrap();
    let tested = metrics
        .test
        .as_ref()
        .and_then(|t| t.classification())
        .expect("a classifier's test metrics");
    assert!((0.0..=1.0).contains(&tested.accuracy));

    let config = json(&out.join("model/config.json"));
    assert_eq!(config["architectures"][0], architecture);
    assert_eq!(config["model_type"], model_type);
    assert_eq!(config["pad_token_id"], pad);
    let model_dir = out.join("model");
    let eval: serde_json::Value = serde_json::from_str(&ok(&kiln(&[
        "eval",
        "--model",
        model_dir.to_str().unwrap(),
        "--test",
        test.to_str().unwrap(),
    ])))
    .unwrap();
    assert_eq!(eval["accuracy"].as_f64(), Some(tested.accuracy));
    let lines = ok(&kiln(&[
        "predict",
        "--model",
        model_dir.to_str().unwrap(),
        "--text",
        "the movie was great",
    ]));
    let row: serde_json::Value = serde_json::from_str(lines.trim()).unwrap();
    assert!(
        ["neg", "pos"].contains(&row["label"].as_str().unwrap()),
        "{row}"
    );

    // A student of another family's teacher is given, not cut from its layers (that is BERT's).
    let refused = kiln(&[
        "distill",
        "--teacher",
        model_dir.to_str().unwrap(),
        "--student-layers",
        "1",
        "--train",
        train.to_str().unwrap(),
        "--out",
        tmp.path().join("student").to_str().unwrap(),
    ]);
    let err = common::failure_of(&refused);
    assert!(err.contains("--student DIR"), "{err}");
}

#[test]
fn a_roberta_checkpoint_trains_a_tagger_and_tags_raw_text() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.jsonl");
    let (good, bad) = (common::GOOD, common::BAD);
    let mut text = String::new();
    for i in 0..40 {
        let words = ["the", good[i % 4], bad[(i + 1) % 4], good[(i + 2) % 4]];
        let tags = ["O", "B-GOOD", "O", "B-GOOD"];
        text.push_str(&serde_json::json!({"tokens": words, "tags": tags}).to_string());
        text.push('\n');
    }
    std::fs::write(&train, text).unwrap();
    let out = tmp.path().join("run");
    let model = fixture("tiny-roberta-mlm");
    ok(&kiln(&[
        "train",
        "--model",
        &model,
        "--task",
        "token",
        "--train",
        train.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--lr",
        "0.003",
        "--max-len",
        "16",
        "--out",
        out.to_str().unwrap(),
    ]));
    let config = json(&out.join("model/config.json"));
    assert_eq!(config["architectures"][0], "RobertaForTokenClassification");
    let text = "the great plot";
    let lines = ok(&kiln(&[
        "predict",
        "--model",
        out.join("model").to_str().unwrap(),
        "--text",
        text,
    ]));
    let row: serde_json::Value = serde_json::from_str(lines.trim()).unwrap();
    let words: Vec<(String, usize, usize)> = row["words"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["word"].as_str().unwrap().to_string(),
                w["start"].as_u64().unwrap() as usize,
                w["end"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    assert_eq!(
        words,
        [
            ("the".to_string(), 0, 3),
            ("great".into(), 4, 9),
            ("plot".into(), 10, 14)
        ],
        "{row}"
    );
}

#[test]
fn a_real_distilbert_is_a_students_starting_point() {
    // The teacher: the tiny BERT fine-tuned here; the student: a DistilBERT checkpoint in
    // distilbert-base's layout (`DistilBertForMaskedLM`) with the same vocabulary.
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.csv");
    common::write_csv(&train, 48, "");
    let (teacher, student) = (tmp.path().join("teacher"), tmp.path().join("student"));
    let (train, teacher_model) = (train.to_str().unwrap(), teacher.join("model"));
    let recipe = ["--epochs", "1", "--batch-size", "8", "--max-len", "16"];
    let tiny_bert = common::tiny_model();
    let mut args = vec!["train", "--model", &tiny_bert, "--train", train];
    args.extend(recipe);
    args.extend(["--out", teacher.to_str().unwrap()]);
    ok(&kiln(&args));

    let distilbert = fixture("tiny-distilbert-mlm");
    let mut args = vec![
        "distill",
        "--teacher",
        teacher_model.to_str().unwrap(),
        "--student",
        &distilbert,
        "--train",
        train,
    ];
    args.extend(recipe);
    args.extend(["--out", student.to_str().unwrap()]);
    let stderr = common::stderr_of(&kiln(&args));
    assert!(stderr.contains("vocab_projector"), "{stderr}");
    let config = json(&student.join("model/config.json"));
    assert_eq!(
        config["architectures"][0],
        "DistilBertForSequenceClassification"
    );
    // DistilBERT's own names, as transformers' DistilBertConfig reads them.
    assert_eq!(config["dim"], 32);
    assert!(config.get("hidden_size").is_none(), "{config}");
    let metrics = json(&student.join("metrics.json"));
    assert!(
        metrics["student"]["accuracy"].as_f64().is_some(),
        "{metrics}"
    );
}
