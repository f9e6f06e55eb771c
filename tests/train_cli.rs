//! `kiln train`, `kiln predict` and `kiln eval` end to end on the tiny fixture model and a small
//! CSV written here (seconds, not a real training run).

mod common;

use common::{json, kiln, stdout_of as ok, tiny_model};

fn write_csv(path: &std::path::Path, n: usize) {
    common::write_csv(path, n, "");
}

#[test]
fn train_writes_a_complete_run_and_the_model_serves_predict_and_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = (tmp.path().join("train.csv"), tmp.path().join("test.csv"));
    write_csv(&train, 60);
    write_csv(&test, 12);
    let out = tmp.path().join("run");
    let config = tmp.path().join("run.toml");
    std::fs::write(
        &config,
        "epochs = 1\nbatch-size = 8\nlr = 0.001\nmax-len = 32\n",
    )
    .unwrap();
    let model = tiny_model();
    let args = [
        "train",
        "--model",
        &model,
        "--train",
        train.to_str().unwrap(),
        "--test",
        test.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--epochs",
        "2",
        "--out",
        out.to_str().unwrap(),
    ];
    ok(&kiln(&args));

    // The record reads back through its type: every field present and of its type.
    let metrics = kiln::metrics::RunMetrics::of_run(&out).unwrap();
    let tested = metrics
        .test
        .as_ref()
        .and_then(|t| t.classification())
        .expect("a classifier's test metrics");
    assert_eq!(tested.confusion.len(), 2);
    assert!((0.0..=1.0).contains(&tested.accuracy) && (0.0..=1.0).contains(&tested.macro_f1));
    assert_eq!(metrics.valid.len(), 2, "flags win over the file: 2 epochs");
    let train = &metrics.train.stats;
    assert!(train.epochs == 2 && train.examples > 0);
    assert!(train.steps > 0 && train.samples_per_second > 0.0 && train.tokens_per_second > 0.0);
    assert!(metrics.train.peak_rss_mib.is_some_and(|m| m > 0.0));
    assert!(metrics.best_epoch.is_some());
    // Where the training loop's time went: four phases, together within the loop's wall time.
    let p = &train.phases;
    let spent = p.data_seconds + p.forward_seconds + p.backward_seconds + p.optimizer_seconds;
    let wall = train.wall_seconds;
    assert!(
        spent > 0.0 && spent <= wall * 1.001,
        "phases {spent} s of a {wall} s loop"
    );
    let resolved = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(
        resolved.contains("epochs = 2") && resolved.contains("batch-size = 8"),
        "{resolved}"
    );
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    let kinds: Vec<String> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        kinds.iter().filter(|k| *k == "epoch").count() == 2 && kinds.iter().any(|k| k == "step")
    );
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("<svg") && report.contains("pos") && report.contains("neg"));
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(out.join("model").join(f).is_file(), "model/{f}");
    }
    let config = json(&out.join("model/config.json"));
    assert_eq!(config["id2label"]["0"], "neg");
    assert_eq!(config["architectures"][0], "BertForSequenceClassification");

    // The exported model predicts and evaluates; eval on the test file reproduces train's test metrics.
    let model_dir = out.join("model");
    let lines = ok(&kiln(&[
        "predict",
        "--model",
        model_dir.to_str().unwrap(),
        "--text",
        "the movie was great",
        "--text",
        "boring plot",
    ]));
    let rows: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let p: f64 = row["probabilities"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_f64().unwrap())
            .sum();
        assert!((p - 1.0).abs() < 1e-5);
        assert!(["neg", "pos"].contains(&row["label"].as_str().unwrap()));
    }
    let eval = eval_json(&model_dir, &test, &[]);
    assert_eq!(eval["accuracy"].as_f64(), Some(tested.accuracy));
    assert_eq!(eval["confusion"], serde_json::json!(tested.confusion));
    let speed = &eval["inference"];
    assert_eq!(speed["examples"], 12);
    assert!(
        speed["seconds"].as_f64().unwrap() > 0.0
            && speed["samples_per_second"].as_f64().unwrap() > 0.0,
        "{speed}"
    );

    // A finished run is not overwritten by accident.
    let again = kiln(&args);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("--overwrite"), "{err}");
    let mut with_overwrite = args.to_vec();
    with_overwrite.push("--overwrite");
    ok(&kiln(&with_overwrite));
}

#[test]
fn a_failed_run_says_why_in_one_line_and_writes_no_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.csv");
    write_csv(&train, 20);
    let out = tmp.path().join("run");
    let model = tiny_model();
    for (flag, needle) in [
        ("--lr=-1", "--lr"),
        ("--strategy=magic", "magic"),
        ("--label-column=stars", "stars"),
    ] {
        let result = kiln(&[
            "train",
            "--model",
            &model,
            "--train",
            train.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            flag,
        ]);
        assert!(!result.status.success());
        let err = String::from_utf8_lossy(&result.stderr);
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: ") && last.contains(needle),
            "{err}"
        );
        assert!(!out.join("metrics.json").exists());
    }
}

#[test]
fn an_unwritable_out_is_reported_before_any_training() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.csv");
    write_csv(&train, 20);
    // A path below a regular file can never be created (permission bits would not stop root).
    let blocker = tmp.path().join("not-a-directory");
    std::fs::write(&blocker, "x").unwrap();
    let out = blocker.join("run");
    let model = tiny_model();
    let result = kiln(&[
        "train",
        "--model",
        &model,
        "--train",
        train.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!result.status.success());
    let err = String::from_utf8_lossy(&result.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains("not-a-directory"),
        "{err}"
    );
    // It stopped before loading data or a model: nothing about the data was printed.
    assert!(
        !err.contains("examples") && !err.contains("parameter plan"),
        "{err}"
    );
}

#[test]
fn devices_split_each_batch_and_a_missing_backend_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.csv");
    write_csv(&train, 40);
    let out = tmp.path().join("run");
    let model = tiny_model();
    // Two replicas on the one CPU device: the data-parallel path end to end.
    let args = [
        "train",
        "--model",
        &model,
        "--train",
        train.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--max-len",
        "32",
        "--devices",
        "flex,flex",
        "--out",
        out.to_str().unwrap(),
    ];
    ok(&kiln(&args));
    assert_eq!(json(&out.join("metrics.json"))["train"]["steps"], 4);
    let resolved = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(resolved.contains("device = \"flex,flex\""), "{resolved}");

    let err = kiln(&[
        "train",
        "--model",
        &model,
        "--train",
        train.to_str().unwrap(),
        "--devices",
        "flex,cuda:1",
        "--out",
        tmp.path().join("other").to_str().unwrap(),
    ]);
    assert!(!err.status.success());
    let text = String::from_utf8_lossy(&err.stderr);
    assert!(
        text.contains("cuda:1") && text.contains("--features cuda"),
        "{text}"
    );
}

/// `--truncation` reaches the tokenizer, the record and the exported model, and kiln eval cuts
/// pairs the way training did (read back from `kiln_truncation`).
#[test]
fn pairs_are_cut_as_asked_in_training_and_in_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs = tmp.path().join("pairs.csv");
    let mut text = String::from("premise,hypothesis,label\n");
    let words = ["good", "bad", "fine", "awful"];
    for i in 0..40 {
        let label = if i % 2 == 0 { "yes" } else { "no" };
        text.push_str(&format!(
            "\"the movie was {} and the story was {} and the song was {}\",\"it is {}\",{label}\n",
            words[i % 4],
            words[(i / 2) % 4],
            words[(i / 3) % 4],
            words[(i + 1) % 4]
        ));
    }
    std::fs::write(&pairs, text).unwrap();
    let model = tiny_model();
    let out = tmp.path().join("run");
    let run = |truncation: &str, out: &std::path::Path| {
        kiln(&[
            "train",
            "--model",
            &model,
            "--train",
            pairs.to_str().unwrap(),
            "--text-column",
            "premise",
            "--text-pair-column",
            "hypothesis",
            "--truncation",
            truncation,
            "--max-len",
            "10",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    ok(&run("only-first", &out));
    let record = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(record.contains("truncation = \"only-first\""), "{record}");
    let config = json(&out.join("model/config.json"));
    assert_eq!(config["kiln_truncation"], "only-first");
    let eval = ok(&kiln(&[
        "eval",
        "--model",
        out.join("model").to_str().unwrap(),
        "--test",
        pairs.to_str().unwrap(),
        "--text-column",
        "premise",
        "--text-pair-column",
        "hypothesis",
    ]));
    assert!(eval.contains("\"accuracy\""), "{eval}");

    // only-second cannot fit a 12-token premise into 10 tokens: refused, naming the input.
    let refused = run("only-second", &tmp.path().join("other"));
    assert!(!refused.status.success());
    let message = common::failure_of(&refused);
    assert!(
        message.contains("the movie was") && message.contains("too short"),
        "{message}"
    );
    // The default is transformers' and is not written into the exported model.
    let plain = tmp.path().join("plain");
    ok(&run("longest-first", &plain));
    assert!(json(&plain.join("model/config.json"))
        .get("kiln_truncation")
        .is_none());
}

/// `kiln interpolate` (WiSE-FT): α = 1 writes the fine-tuned model unchanged, α = 0.5 a model
/// `kiln eval` serves; a bad α and an existing `--out` are refused in one line.
#[test]
fn interpolate_blends_the_encoder_and_keeps_the_head() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.csv");
    write_csv(&train, 40);
    let model = tiny_model();
    let run = tmp.path().join("run");
    ok(&kiln(&[
        "train",
        "--model",
        &model,
        "--train",
        train.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--max-len",
        "32",
        "--out",
        run.to_str().unwrap(),
    ]));
    let tuned = run.join("model");
    let blend_with = |alpha: &str, out: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "interpolate",
            "--pretrained",
            &model,
            "--finetuned",
            tuned.to_str().unwrap(),
            "--alpha",
            alpha,
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        kiln(&args)
    };
    let blend = |alpha: &str, out: &std::path::Path| blend_with(alpha, out, &[]);
    let same = tmp.path().join("alpha1");
    ok(&blend("1", &same));
    assert_eq!(
        std::fs::read(same.join("model.safetensors")).unwrap(),
        std::fs::read(tuned.join("model.safetensors")).unwrap(),
        "alpha 1 is the fine-tuned model"
    );
    let half = tmp.path().join("half");
    ok(&blend("0.5", &half));
    assert_ne!(
        std::fs::read(half.join("model.safetensors")).unwrap(),
        std::fs::read(tuned.join("model.safetensors")).unwrap()
    );
    let eval = ok(&kiln(&[
        "eval",
        "--model",
        half.to_str().unwrap(),
        "--test",
        train.to_str().unwrap(),
    ]));
    assert!(eval.contains("\"accuracy\""), "{eval}");
    let err = common::failure_of(&blend("1.5", &tmp.path().join("bad")));
    assert!(
        err.trim_end()
            .ends_with("alpha: must be in [0, 1], got 1.5"),
        "{err}"
    );
    let err = common::failure_of(&blend("0.5", &half));
    assert!(err.contains("exists already"), "{err}");

    // Several α: each scored on the validation file, the best one written.
    let err = common::failure_of(&blend("0,1", &tmp.path().join("no-valid")));
    assert!(err.contains("need --valid"), "{err}");
    let picked = tmp.path().join("picked");
    let out = blend_with("0,1", &picked, &["--valid", train.to_str().unwrap()]);
    let said = common::stderr_of(&out);
    let value = |alpha: &str| -> f64 {
        let prefix = format!("alpha {alpha}: validation accuracy ");
        let line = said.lines().find(|l| l.starts_with(&prefix)).unwrap();
        line[prefix.len()..].trim().parse().unwrap()
    };
    let (pretrained_head, finetuned) = (value("0"), value("1"));
    let written = std::fs::read(picked.join("model.safetensors")).unwrap();
    let tuned_bytes = std::fs::read(tuned.join("model.safetensors")).unwrap();
    // The first of equals wins: α = 1 only when strictly better on the file.
    assert_eq!(
        written == tuned_bytes,
        finetuned > pretrained_head,
        "{said}"
    );
}

/// Every run reports how far each part of the encoder moved from the checkpoint
/// (`metrics.json` `drift`, drawn in report.html): all parts move under `full`, none under
/// `head`, which trains the classifier alone.
#[test]
fn runs_report_the_encoders_weight_change_and_representation_similarity_per_part() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.csv");
    write_csv(&train, 40);
    let model = tiny_model();
    let drift = |strategy: &str| {
        let out = tmp.path().join(strategy);
        ok(&kiln(&[
            "train",
            "--model",
            &model,
            "--train",
            train.to_str().unwrap(),
            "--strategy",
            strategy,
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--max-len",
            "32",
            "--lr",
            "1e-3",
            "--out",
            out.to_str().unwrap(),
        ]));
        let report = std::fs::read_to_string(out.join("report.html")).unwrap();
        assert!(report.contains("id=\"drift\""), "report.html draws it");
        kiln::metrics::RunMetrics::of_run(&out).unwrap().drift
    };
    let full = drift("full");
    let parts: Vec<&str> = full.iter().map(|d| d.part.as_str()).collect();
    assert_eq!(parts, ["embeddings", "layer 0", "layer 1", "pooler"]);
    assert!(full.iter().all(|d| d.relative_change > 0.0), "{full:?}");
    // Representations: each part but the pooler has a CKA with the pretrained one, below 1
    // after full fine-tuning (the weights moved), exactly 1 when only the head trained.
    assert!(
        full[..3]
            .iter()
            .all(|d| d.cka.is_some_and(|c| c > 0.0 && c < 1.0)),
        "{full:?}"
    );
    assert_eq!(
        full[3].cka, None,
        "the pooler's output is not a hidden state"
    );
    let head = drift("head");
    assert_eq!(head.len(), 4);
    assert!(head.iter().all(|d| d.relative_change == 0.0), "{head:?}");
    assert!(
        head[..3]
            .iter()
            .all(|d| d.cka.is_some_and(|c| (c - 1.0).abs() < 1e-9)),
        "{head:?}"
    );
}

/// `kiln train` of the tiny model for `task` on `train`, tested on `test` (batches of 8, lr
/// 0.003, max-len 16), with `extra` flags.
fn train_task(
    task: &str,
    train: &std::path::Path,
    test: &std::path::Path,
    out: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    let model = tiny_model();
    let mut args = vec![
        "train",
        "--model",
        &model,
        "--task",
        task,
        "--train",
        train.to_str().unwrap(),
        "--test",
        test.to_str().unwrap(),
        "--batch-size",
        "8",
        "--lr",
        "0.003",
        "--max-len",
        "16",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    kiln(&args)
}

/// `kiln eval` of `model_dir` on `test` (with `extra` flags), its JSON.
fn eval_json(
    model_dir: &std::path::Path,
    test: &std::path::Path,
    extra: &[&str],
) -> serde_json::Value {
    let mut args = vec![
        "eval",
        "--model",
        model_dir.to_str().unwrap(),
        "--test",
        test.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(&kiln(&args))).unwrap()
}

/// `n` rows whose value is about 2 for the good words and about 8 for the bad ones.
fn write_values_csv(path: &std::path::Path, n: usize) {
    let (good, bad) = (common::GOOD, common::BAD);
    let mut text = String::from("text,label\n");
    for i in 0..n {
        let (words, base) = if i % 2 == 0 { (good, 2.0) } else { (bad, 8.0) };
        let w = |k: usize| words[(i / 2 + k) % 4];
        let value = base + (i % 5) as f64 * 0.25;
        text.push_str(&format!("{} {} {},{value}\n", w(0), w(1), w(2)));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_regression_run_exports_a_model_that_predicts_values_in_the_datas_units() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = (tmp.path().join("train.csv"), tmp.path().join("test.csv"));
    write_values_csv(&train, 80);
    write_values_csv(&test, 20);
    let out = tmp.path().join("run");
    ok(&train_task(
        "regression",
        &train,
        &test,
        &out,
        &["--epochs", "3"],
    ));
    let metrics = kiln::metrics::RunMetrics::of_run(&out).unwrap();
    let tested = metrics
        .test
        .as_ref()
        .and_then(|t| t.regression())
        .expect("a regression run's test metrics");
    assert_eq!(tested.examples, 20);
    assert!(tested.mse.is_finite() && tested.mae.is_finite());
    let record = std::fs::read_to_string(out.join("metrics.json")).unwrap();
    assert!(
        record.contains("\"mse\"") && !record.contains("\"accuracy\""),
        "{record}"
    );
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("Pearson") && report.contains("MSE"));

    let model_dir = out.join("model");
    let config = json(&model_dir.join("config.json"));
    assert_eq!(config["problem_type"], "regression");
    assert_eq!(
        config["id2label"].as_object().unwrap().len(),
        1,
        "one output"
    );
    let scale = &config["kiln_value_scale"];
    assert!(
        scale["mean"].as_f64().unwrap() > 4.0 && scale["std"].as_f64().unwrap() > 2.0,
        "{scale}"
    );

    // predict prints a value in the data's units; eval reproduces train's test metrics.
    let lines = ok(&kiln(&[
        "predict",
        "--model",
        model_dir.to_str().unwrap(),
        "--text",
        "great good loved",
        "--text",
        "bad boring plot",
    ]));
    let values: Vec<f64> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["value"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(values.len(), 2);
    assert!(
        values[0] < values[1],
        "good words score low, bad words high: {values:?}"
    );
    let eval = eval_json(&model_dir, &test, &[]);
    assert_eq!(eval["mse"].as_f64(), Some(tested.mse));
    assert_eq!(eval["pearson"].as_f64(), tested.pearson);

    // A label that is not a number names its file and line.
    std::fs::write(&train, "text,label\ngood fun,1.5\nbad plot,high\n").unwrap();
    let failed = train_task("regression", &train, &test, &tmp.path().join("bad"), &[]);
    let err = common::failure_of(&failed);
    assert!(err.contains("train.csv:3") && err.contains("high"), "{err}");
}

/// `n` rows: good words are `pos`, bad words `neg`, and every third row is also `long` (with
/// a longer text).
fn write_sets_csv(path: &std::path::Path, n: usize) {
    let (good, bad) = (common::GOOD, common::BAD);
    let mut text = String::from("text,label\n");
    for i in 0..n {
        let (words, label) = if i % 2 == 0 {
            (good, "pos")
        } else {
            (bad, "neg")
        };
        let w = |k: usize| words[(i / 2 + k) % 4];
        let (body, set) = if i % 3 == 0 {
            (
                format!("{} {} {} {} {} {}", w(0), w(1), w(2), w(3), w(0), w(1)),
                format!("{label};long"),
            )
        } else {
            (format!("{} {}", w(0), w(1)), label.to_string())
        };
        text.push_str(&format!("{body},{set}\n"));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_multi_label_run_tunes_thresholds_exports_them_and_predicts_label_sets() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = (tmp.path().join("train.csv"), tmp.path().join("test.csv"));
    write_sets_csv(&train, 90);
    write_sets_csv(&test, 18);
    let out = tmp.path().join("run");
    let stderr = common::stderr_of(&train_task(
        "multi-label",
        &train,
        &test,
        &out,
        &["--tune-thresholds", "--epochs", "2"],
    ));
    assert!(
        stderr.contains("thresholds tuned on validation: long "),
        "{stderr}"
    );
    let metrics = kiln::metrics::RunMetrics::of_run(&out).unwrap();
    assert_eq!(metrics.labels, ["long", "neg", "pos"]);
    let tested = metrics
        .test
        .as_ref()
        .and_then(|t| t.multi_label())
        .expect("a multi-label run's test metrics");
    assert_eq!((tested.examples, tested.per_label.len()), (18, 3));
    assert_eq!(
        tested.per_label[0].support, 6,
        "every third test row is long"
    );
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("Per label") && report.contains("samples F1"));

    let model_dir = out.join("model");
    let config = json(&model_dir.join("config.json"));
    assert_eq!(config["problem_type"], "multi_label_classification");
    let thresholds = config["kiln_thresholds"].as_array().unwrap();
    assert_eq!(thresholds.len(), 3);
    assert!(thresholds
        .iter()
        .all(|t| (0.0..1.0).contains(&t.as_f64().unwrap())));

    let lines = ok(&kiln(&[
        "predict",
        "--model",
        model_dir.to_str().unwrap(),
        "--text",
        "great good",
    ]));
    let row: serde_json::Value = serde_json::from_str(lines.trim()).unwrap();
    let probabilities = row["probabilities"].as_object().unwrap();
    assert_eq!(probabilities.len(), 3, "{row}");
    // The predicted set is every label past its saved threshold.
    for (i, label) in ["long", "neg", "pos"].iter().enumerate() {
        let p = probabilities[*label].as_f64().unwrap();
        let chosen = row["labels"].as_array().unwrap().iter().any(|l| l == label);
        assert_eq!(
            chosen,
            p > thresholds[i].as_f64().unwrap() as f32 as f64,
            "{row}"
        );
    }
    let eval = eval_json(&model_dir, &test, &[]);
    assert_eq!(eval["micro_f1"].as_f64(), Some(tested.micro_f1));
    assert_eq!(
        eval["subset_accuracy"].as_f64(),
        Some(tested.subset_accuracy)
    );
}

#[test]
fn a_regression_over_text_pairs_reads_both_columns_and_records_its_truncation() {
    // A cross-encoder's data: the score is high when the two texts share their sentiment.
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("pairs.csv");
    let (good, bad) = (
        ["great", "good", "loved", "fun"],
        ["bad", "boring", "plot", "was"],
    );
    let mut text = String::from("a,b,score\n");
    for i in 0..60 {
        let first = if i % 2 == 0 { good[i % 4] } else { bad[i % 4] };
        let second = if i % 3 == 0 {
            good[(i + 1) % 4]
        } else {
            bad[(i + 1) % 4]
        };
        let same = (i % 2 == 0) == (i % 3 == 0);
        text.push_str(&format!(
            "{first},{second} {second} {second},{}\n",
            if same { 4.5 } else { 1.0 }
        ));
    }
    std::fs::write(&train, text).unwrap();
    let out = tmp.path().join("run");
    let model = tiny_model();
    ok(&kiln(&[
        "train",
        "--model",
        &model,
        "--task",
        "regression",
        "--train",
        train.to_str().unwrap(),
        "--text-column",
        "a",
        "--text-pair-column",
        "b",
        "--label-column",
        "score",
        "--truncation",
        "only-second",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--max-len",
        "6",
        "--out",
        out.to_str().unwrap(),
    ]));
    let config = json(&out.join("model/config.json"));
    assert_eq!(config["problem_type"], "regression");
    assert_eq!(config["kiln_truncation"], "only-second");
    let tested = kiln::metrics::RunMetrics::of_run(&out).unwrap();
    let tested = tested.test.as_ref().and_then(|t| t.regression()).unwrap();
    assert_eq!(tested.examples, 6);
    // eval reads the same pair columns (and cuts pairs by the model's kiln_truncation).
    let columns = [
        "--text-column",
        "a",
        "--text-pair-column",
        "b",
        "--label-column",
        "score",
    ];
    let eval = eval_json(&out.join("model"), &train, &columns);
    assert_eq!(eval["examples"], 60);
    assert!(eval["mse"].as_f64().unwrap().is_finite());
}

/// `n` tagged sentences in CoNLL layout: good words are entities (`B-GOOD`, then `I-GOOD` for
/// a good word right after one), bad words and `the` are `O`; every fifth sentence is 20 words,
/// longer than a 16-piece window.
fn write_tagged_conll(path: &std::path::Path, n: usize) {
    let (good, bad) = (common::GOOD, common::BAD);
    let mut text = String::from("-DOCSTART- O\n\n");
    for i in 0..n {
        let len = if i % 5 == 0 { 20 } else { 3 + i % 4 };
        let mut previous_good = false;
        for k in 0..len {
            let is_good = (i + k) % 3 != 0;
            let (word, tag) = match (k, is_good) {
                (0, _) => ("the", "O"),
                (_, true) => (
                    good[(i + k) % 4],
                    if previous_good { "I-GOOD" } else { "B-GOOD" },
                ),
                (_, false) => (bad[(i + k) % 4], "O"),
            };
            previous_good = k > 0 && is_good;
            text.push_str(&format!("{word} {tag}\n"));
        }
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_token_run_windows_long_sentences_scores_words_and_entities_and_exports_a_token_head() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = (
        tmp.path().join("train.conll"),
        tmp.path().join("test.jsonl"),
    );
    write_tagged_conll(&train, 60);
    // The test set, as JSONL, has a tag training never had: scored as an error, not a crash.
    std::fs::write(
        &test,
        "{\"tokens\": [\"the\", \"great\", \"fun\", \"plot\"], \"tags\": [\"O\", \"B-GOOD\", \"I-GOOD\", \"O\"]}\n\
         {\"tokens\": [\"the\", \"good\", \"was\"], \"tags\": [\"O\", \"B-NEW\", \"O\"]}\n",
    )
    .unwrap();
    let out = tmp.path().join("run");
    let stderr = common::stderr_of(&train_task(
        "token",
        &train,
        &test,
        &out,
        &["--epochs", "2"],
    ));
    assert!(
        stderr.contains("the test sentences have tags training never had (B-NEW)"),
        "{stderr}"
    );
    let metrics = kiln::metrics::RunMetrics::of_run(&out).unwrap();
    assert_eq!(metrics.labels, ["B-GOOD", "I-GOOD", "O"]);
    let tested = metrics
        .test
        .as_ref()
        .and_then(|t| t.token())
        .expect("a token run's test metrics");
    // Every word is one piece of the tiny vocabulary: 7 words, 2 sentences.
    assert_eq!((tested.sentences, tested.tokens.examples), (2, 7));
    assert_eq!(
        (tested.unseen_tags.clone(), tested.unseen_words),
        (vec!["B-NEW".to_string()], 1)
    );
    assert!(
        tested.entities.is_some(),
        "an IOB tag set is scored by entity"
    );
    // The 20-word training sentences do not fit 16 pieces: they became two windows each.
    assert!(metrics.examples.train > 48, "{:?}", metrics.examples);
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("Tagging") && report.contains("Entities per type"));

    let config = json(&out.join("model/config.json"));
    assert_eq!(config["architectures"][0], "BertForTokenClassification");
    assert_eq!(config["id2label"]["2"], "O");
    assert!(config.get("problem_type").is_none(), "{config}");
    assert_eq!(config["kiln_piece_labels"], "first-piece");

    // kiln eval scores the test file as training did.
    let model_dir = out.join("model");
    let evaluated = eval_json(&model_dir, &test, &[]);
    let trained = serde_json::to_value(metrics.test.as_ref().unwrap()).unwrap();
    for key in ["sentences", "unseen_words", "unseen_tags"] {
        assert_eq!(evaluated[key], trained[key], "{key}");
    }
    assert_eq!(
        evaluated["tokens"]["accuracy"],
        trained["tokens"]["accuracy"]
    );
    assert_eq!(evaluated["entities"]["micro"], trained["entities"]["micro"]);

    // kiln predict tags every word of a raw text with its character span (punctuation is a
    // word of its own, as BERT's pre-tokenizer splits it) and reads entities off the tags.
    let text = "the great, fun plot";
    let lines = ok(&kiln(&[
        "predict",
        "--model",
        model_dir.to_str().unwrap(),
        "--text",
        text,
        "--echo-text",
    ]));
    let row: serde_json::Value = serde_json::from_str(lines.trim()).unwrap();
    assert_eq!(row["text"], text);
    let words = row["words"].as_array().unwrap();
    let spans: Vec<(String, u64, u64)> = words
        .iter()
        .map(|w| {
            (
                w["word"].as_str().unwrap().to_string(),
                w["start"].as_u64().unwrap(),
                w["end"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        spans,
        [
            ("the".to_string(), 0, 3),
            ("great".into(), 4, 9),
            (",".into(), 9, 10),
            ("fun".into(), 11, 14),
            ("plot".into(), 15, 19)
        ]
    );
    for w in words {
        assert!(
            ["B-GOOD", "I-GOOD", "O"].contains(&w["tag"].as_str().unwrap()),
            "{w}"
        );
        let p = w["score"].as_f64().unwrap();
        assert!(p > 1.0 / 3.0 && p <= 1.0, "{w}");
    }
    // Each entity is the text of its words' span.
    for e in row["entities"]
        .as_array()
        .expect("an entity tag set lists entities")
    {
        let (start, end) = (
            e["start"].as_u64().unwrap() as usize,
            e["end"].as_u64().unwrap() as usize,
        );
        assert_eq!(e["text"], text[start..end], "{row}");
        assert_eq!(e["type"], "GOOD");
    }
}

#[test]
fn tagged_files_with_bad_lines_are_named_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.jsonl");
    std::fs::write(
        &train,
        "{\"tokens\": [\"the\", \"good\"], \"tags\": [\"O\", \"B-GOOD\"]}\n\
         {\"tokens\": [\"the\", \"bad\"], \"tags\": [\"O\"]}\n",
    )
    .unwrap();
    let out = tmp.path().join("run");
    let failed = train_task("token", &train, &train, &out, &[]);
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("train.jsonl:2: 2 tokens but 1 tags"),
        "{stderr}"
    );
    assert!(!out.join("metrics.json").exists());
}
