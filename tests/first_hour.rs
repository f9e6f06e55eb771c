//! What a new user hits in the first hour (issue 11), end to end on the tiny fixture model:
//! resume takes the run's own options and refuses changes, runs never mix, step-level
//! evaluation picks the model, help texts, empty splits, progress lines, checkpoint cleanup,
//! and an unavailable device found before anything is read or written.

mod common;

use std::path::Path;

use common::{failure_of as fails, json, kiln, stderr_of as ok, tiny_model, write_csv};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Step numbers of the `step` records of a log.jsonl.
fn logged_steps(log: &Path) -> Vec<u64> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["kind"] == "step")
        .map(|r| r["step"].as_u64().unwrap())
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn resume_continues_with_the_runs_own_options_and_refuses_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.csv");
    write_csv(&train, 48, "");
    let full = tmp.path().join("full");
    let model = tiny_model();
    // Options unlike the defaults everywhere a silent fallback would show.
    let args = [
        "train",
        "--model",
        &model,
        "--train",
        s(&train),
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--max-len",
        "16",
        "--lr",
        "2e-3",
        "--seed",
        "7",
        "--keep-checkpoints",
        "--out",
        s(&full),
    ];
    ok(&kiln(&args));
    assert_eq!(
        kiln::train::resume::list(&full.join("checkpoints")).len(),
        2,
        "epoch 1 and epoch 2 checkpoints kept"
    );

    // The same run, as if killed during epoch 2: epoch 1's checkpoint and epoch 2's log lines.
    let cut = tmp.path().join("cut");
    copy_dir(&full, &cut);
    for f in ["metrics.json", "report.html"] {
        std::fs::remove_file(cut.join(f)).unwrap();
    }
    std::fs::remove_dir_all(cut.join("model")).unwrap();
    let newest = kiln::train::resume::list(&cut.join("checkpoints"))[0].clone();
    std::fs::remove_dir_all(newest).unwrap();
    let config_before = std::fs::read(cut.join("config.toml")).unwrap();

    // Flags that would change the run are refused, each named, and nothing is touched.
    let err = fails(&kiln(&[
        "train",
        "--resume",
        s(&cut),
        "--lr",
        "1e-3",
        "--epochs",
        "3",
        "--max-len",
        "16",
    ]));
    let last = err.lines().last().unwrap();
    assert!(
        last.contains("--lr") && last.contains("--epochs") && !last.contains("--max-len"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(cut.join("config.toml")).unwrap(),
        config_before
    );
    let err = fails(&kiln(&["train", "--resume", s(&cut), "--data", "pang-lee"]));
    assert!(err.contains("--data"), "{err}");
    let err = fails(&kiln(&[
        "distill",
        "--teacher",
        s(&full.join("model")),
        "--resume",
        s(&cut),
    ]));
    assert!(err.contains("kiln train"), "{err}");

    // No other flags: the run's own options (epochs 2, batch 8, max-len 16, lr 2e-3, seed 7);
    // options that cannot change the result may be given.
    let resumed = ok(&kiln(&[
        "train",
        "--resume",
        s(&cut),
        "--logging-steps",
        "1",
    ]));
    assert!(
        resumed.contains("resumed from") && resumed.contains("epoch 2"),
        "{resumed}"
    );
    assert_eq!(
        std::fs::read(cut.join("config.toml")).unwrap(),
        config_before,
        "config.toml is the run's own"
    );
    let (a, b) = (
        json(&full.join("metrics.json")),
        json(&cut.join("metrics.json")),
    );
    assert_eq!(a["test"], b["test"]);
    assert_eq!(a["valid"], b["valid"]);
    assert_eq!(a["train"]["steps"], b["train"]["steps"]);
    assert_eq!(
        std::fs::read(full.join("model/model.safetensors")).unwrap(),
        std::fs::read(cut.join("model/model.safetensors")).unwrap(),
        "the resumed run exports the uninterrupted run's model byte for byte"
    );
    // The log holds every step once, in order, although the copied log already had epoch 2's.
    let steps = logged_steps(&cut.join("log.jsonl"));
    assert_eq!(steps, (1..=steps.len() as u64).collect::<Vec<_>>());
    assert_eq!(steps.len() as u64, a["train"]["steps"].as_u64().unwrap());
}

#[test]
fn an_unfinished_out_is_never_restarted_silently() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.csv");
    write_csv(&train, 24, "");
    let out = tmp.path().join("run");
    let model = tiny_model();
    let args = [
        "train",
        "--model",
        &model,
        "--train",
        s(&train),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--out",
        s(&out),
    ];
    ok(&kiln(&args));
    // Unfinished: no metrics.json, its other files still there.
    std::fs::remove_file(out.join("metrics.json")).unwrap();
    let err = fails(&kiln(&args));
    let last = err.lines().last().unwrap();
    assert!(
        last.contains("unfinished") && last.contains("--resume") && last.contains("--overwrite"),
        "{err}"
    );
    // --overwrite starts over: one clean log, not two runs in one file.
    ok(&kiln(&[&args[..], &["--overwrite"]].concat()));
    let steps = logged_steps(&out.join("log.jsonl"));
    assert_eq!(steps, vec![1, 2, 3]);
    assert!(out.join("metrics.json").is_file());
}

#[test]
fn resume_without_a_checkpoint_is_refused_before_anything_is_read_or_written() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    // The training file does not exist: an error about it would mean data was read first.
    let no_file = tmp.path().join("no-such.csv");
    for dir in [&missing, &empty] {
        let err = fails(&kiln(&[
            "train",
            "--resume",
            s(dir),
            "--train",
            s(&no_file),
        ]));
        let last = err.lines().last().unwrap();
        assert!(
            last.contains("--resume") && !last.contains("no-such.csv"),
            "{err}"
        );
    }
    assert!(!missing.exists(), "nothing created");
    assert_eq!(
        std::fs::read_dir(&empty).unwrap().count(),
        0,
        "nothing written"
    );
    let finished = tmp.path().join("finished");
    std::fs::create_dir(&finished).unwrap();
    std::fs::write(finished.join("metrics.json"), "{}").unwrap();
    let err = fails(&kiln(&["train", "--resume", s(&finished)]));
    assert!(err.contains("finished"), "{err}");
}

#[test]
fn step_evaluations_pick_the_model_and_count_for_patience() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, valid) = (tmp.path().join("train.csv"), tmp.path().join("valid.csv"));
    write_csv(&train, 64, "");
    write_csv(
        &valid,
        16,
        "\"good boring\",pos\n\"fun plot\",neg\n\"loved was\",neg\n",
    );
    let model = tiny_model();
    let out = tmp.path().join("run");
    let stderr = ok(&kiln(&[
        "train",
        "--model",
        &model,
        "--train",
        s(&train),
        "--valid",
        s(&valid),
        "--test",
        s(&valid),
        "--epochs",
        "4",
        "--batch-size",
        "8",
        "--max-len",
        "16",
        "--lr",
        "3e-3",
        "--eval-every",
        "3",
        "--patience",
        "4",
        "--out",
        s(&out),
    ]));
    let m = json(&out.join("metrics.json"));
    let evals = m["evaluations"].as_array().unwrap();
    let mid: Vec<&serde_json::Value> = evals.iter().filter(|e| e["epoch_end"] == false).collect();
    assert!(!mid.is_empty(), "{m}");
    // Printed as they happen.
    let first = mid[0]["step"].as_u64().unwrap();
    assert!(
        stderr.contains(&format!("step {first} (epoch ")),
        "{stderr}"
    );

    // The best evaluation is the first one that no later one beats (accuracy), wherever it was.
    let mut best = 0;
    let mut since_best = 0;
    let mut stop_at = None;
    for (i, e) in evals.iter().enumerate() {
        if e["accuracy"].as_f64().unwrap() > evals[best]["accuracy"].as_f64().unwrap() || i == 0 {
            best = i;
            since_best = 0;
        } else {
            since_best += 1;
            if since_best == 4 && stop_at.is_none() {
                stop_at = Some(i);
            }
        }
    }
    assert_eq!(m["best_step"], evals[best]["step"], "{m}");
    // Patience counts evaluations: the run stops at the 4th evaluation in a row without a gain.
    // (The last epoch's closing evaluation ends the run anyway: that is no early stop.)
    let last_is_final =
        |i: usize| evals[i]["epoch_end"] == true && evals[i]["epoch"].as_f64() == Some(4.0);
    match stop_at {
        Some(i) => {
            assert_eq!(evals.len(), i + 1, "no evaluation after the stop: {m}");
            assert_eq!(m["stopped_early"], !last_is_final(i), "{m}");
        }
        None => assert_eq!(m["stopped_early"], false, "{m}"),
    }
    // The exported model is the best evaluation's: eval on the validation file reproduces it.
    let eval: serde_json::Value = serde_json::from_slice(
        &kiln(&[
            "eval",
            "--model",
            s(&out.join("model")),
            "--test",
            s(&valid),
            "--max-len",
            "16",
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(eval["accuracy"], evals[best]["accuracy"], "{m}");
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        report.contains(&format!("best: step {}", evals[best]["step"])),
        "the report marks the best step"
    );
}

#[test]
fn patience_stops_mid_epoch_when_evaluations_stop_improving() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.csv");
    write_csv(&train, 64, "");
    let out = tmp.path().join("run");
    // lr so small that nothing changes: every evaluation after the first ties it.
    ok(&kiln(&[
        "train",
        "--model",
        &tiny_model(),
        "--train",
        s(&train),
        "--epochs",
        "3",
        "--batch-size",
        "4",
        "--max-len",
        "16",
        "--lr",
        "1e-9",
        "--eval-every",
        "2",
        "--patience",
        "2",
        "--out",
        s(&out),
    ]));
    let m = json(&out.join("metrics.json"));
    assert_eq!(m["stopped_early"], true, "{m}");
    let evals = m["evaluations"].as_array().unwrap();
    assert_eq!(
        evals.len(),
        3,
        "the first evaluation, then two without a gain: {m}"
    );
    assert_eq!(evals[2]["step"], 6);
    assert_eq!(m["best_step"], 2);
}

#[test]
fn help_describes_every_option_and_offers_only_what_this_build_runs() {
    use clap::Args;
    for (command, cmd) in [
        (
            "train",
            kiln::finetune::TrainOptions::augment_args(clap::Command::new("train")),
        ),
        (
            "distill",
            kiln::finetune::DistillOptions::augment_args(clap::Command::new("distill")),
        ),
    ] {
        for arg in cmd.get_arguments() {
            let described = arg
                .get_help()
                .or(arg.get_long_help())
                .is_some_and(|h| !h.to_string().trim().is_empty());
            assert!(described, "{command} --{} has no description", arg.get_id());
        }
    }
    let help = String::from_utf8(kiln(&["train", "--help"]).stdout).unwrap();
    for name in [
        "rotten-tomatoes",
        "pang-lee",
        "uci-sentiment",
        "reuters-r52",
    ] {
        assert!(help.contains(name), "--data lists {name}");
    }
    assert!(help.contains("--sampler") && !help.contains("--no-bucketing"));
    assert!(help.contains("--save-total-limit") && help.contains("--logging-steps"));
    // The option's lines up to the next option: its help and the values it offers.
    let precision = help
        .lines()
        .skip_while(|l| !l.contains("--precision"))
        .enumerate()
        .take_while(|(i, l)| *i == 0 || !l.trim_start().starts_with("--"))
        .map(|(_, l)| l)
        .collect::<String>();
    assert!(
        precision.contains("bf16") && !precision.contains("f16,") && !precision.contains(" f16"),
        "{precision}"
    );
    let device = help
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("--device"))
        .take(3)
        .collect::<String>();
    assert!(device.contains("flex"));
    for (backend, feature) in [("ndarray", "ndarray"), ("wgpu", "wgpu"), ("cuda", "cuda")] {
        let compiled = kiln::backend::compiled_backends().contains(&feature);
        assert_eq!(
            device.contains(backend),
            compiled,
            "--device offers {backend} only when compiled in: {device}"
        );
    }
    let distill = String::from_utf8(kiln(&["distill", "--help"]).stdout).unwrap();
    assert!(distill.contains("--teacher"), "{distill}");
    assert!(
        !distill
            .lines()
            .any(|l| l.trim_start().starts_with("--model")),
        "{distill}"
    );
}

#[test]
fn an_empty_split_is_refused_and_a_rare_label_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.csv");
    let model = tiny_model();
    // Two examples of each label: nothing can be held out.
    write_csv(&train, 4, "");
    let out = tmp.path().join("run");
    let err = fails(&kiln(&[
        "train",
        "--model",
        &model,
        "--train",
        s(&train),
        "--out",
        s(&out),
    ]));
    let last = err.lines().last().unwrap();
    assert!(
        last.contains("too few") && last.contains("--valid-ratio 0"),
        "{err}"
    );
    assert!(!out.join("metrics.json").exists());
    // Without validation and test, asked for: trains, and reports no test instead of zeros.
    let err = ok(&kiln(&[
        "train",
        "--model",
        &model,
        "--train",
        s(&train),
        "--valid-ratio",
        "0",
        "--test-ratio",
        "0",
        "--epochs",
        "1",
        "--out",
        s(&out),
        "--overwrite",
    ]));
    assert!(err.contains("no test set"), "{err}");
    assert!(json(&out.join("metrics.json"))["test"].is_null());
    // A label too rare to split off is named, not silently missing from valid/test.
    let rare = tmp.path().join("rare.csv");
    write_csv(&rare, 40, "\"an odd one\",odd\n\"another odd one\",odd\n");
    let err = ok(&kiln(&["data", "--model", &model, "--train", s(&rare)]));
    assert!(
        err.contains("warning") && err.contains("odd (2 in training)"),
        "{err}"
    );
}

#[test]
fn progress_lines_when_not_a_terminal_and_checkpoints_cleaned_up() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.csv");
    write_csv(&train, 40, "");
    let out = tmp.path().join("run");
    let err = ok(&kiln(&[
        "train",
        "--model",
        &tiny_model(),
        "--train",
        s(&train),
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--logging-steps",
        "2",
        "--save-every",
        "1",
        "--out",
        s(&out),
    ]));
    // 4 steps per epoch: a line at steps 2, 4, 6 and 8 with loss, lr, speed and ETA.
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("step ") && l.contains("eta"))
        .collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(
        lines[0].starts_with("step 2/8 (epoch 0.50/2): loss ") && lines[0].contains("samples/s"),
        "{err}"
    );
    // A finished run keeps its model, not its resume checkpoints.
    assert!(out.join("model/model.safetensors").is_file());
    assert!(!out.join("checkpoints").exists());
    let kept = tmp.path().join("kept");
    ok(&kiln(&[
        "train",
        "--model",
        &tiny_model(),
        "--train",
        s(&train),
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--save-every",
        "1",
        "--save-total-limit",
        "1",
        "--keep-checkpoints",
        "--out",
        s(&kept),
    ]));
    assert_eq!(
        kiln::train::resume::list(&kept.join("checkpoints")).len(),
        1
    );
}

#[test]
fn an_unavailable_device_is_reported_before_reading_data() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let missing = ["wgpu", "cuda", "ndarray"]
        .into_iter()
        .find(|b| !kiln::backend::compiled_backends().contains(b));
    let Some(device) = missing else {
        panic!("this build has every backend compiled in; the test needs one that is not")
    };
    let err = fails(&kiln(&[
        "train",
        "--train",
        s(&tmp.path().join("no-such.csv")),
        "--device",
        device,
        "--out",
        s(&out),
    ]));
    let last = err.lines().last().unwrap();
    assert!(
        last.contains(&format!("--features {device}")) && !last.contains("no-such.csv"),
        "{err}"
    );
    assert!(!out.exists(), "no run directory");
}

#[test]
fn mean_pooling_says_what_differs_in_transformers() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.csv");
    write_csv(&train, 24, "");
    let out = tmp.path().join("run");
    let err = ok(&kiln(&[
        "train",
        "--model",
        &tiny_model(),
        "--train",
        s(&train),
        "--epochs",
        "1",
        "--pooling",
        "mean",
        "--out",
        s(&out),
    ]));
    assert!(
        err.contains("pools by mean") && err.contains("BertForSequenceClassification"),
        "{err}"
    );
    let config = json(&out.join("model/config.json"));
    assert_eq!(config["kiln_pooling"], "mean");
    let note = config["kiln_note"].as_str().unwrap();
    assert!(note.contains("mean") && note.contains("pooler"), "{note}");
}
