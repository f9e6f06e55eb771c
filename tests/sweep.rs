//! `kiln sweep` on the tiny model: every trial an ordinary run directory, pruning decisions
//! that follow ASHA's rule from the values the trials recorded, a failed trial recorded with
//! its error while the sweep goes on, and a sweep killed with SIGKILL that resumes without
//! running its finished trials again.

#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{failure_of, kiln, stdout_of, tiny_model, write_csv};
use kiln::metrics::{SweepRecord, TrialStatus};

fn write_space(path: &Path, train: &Path, extra: &str) {
    let text = format!(
        "model = {:?}\ntrain = {:?}\nmax-len = 16\nbatch-size = 8\n{extra}",
        tiny_model(),
        train.display().to_string()
    );
    std::fs::write(path, text).unwrap();
}

/// `kiln sweep --space SPACE --out OUT` with `flags`.
fn sweep(space: &Path, out: &Path, flags: &[&str]) -> std::process::Output {
    let mut args = vec![
        "sweep",
        "--space",
        space.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(flags);
    kiln(&args)
}

/// A temporary directory holding `rows` rows of training data and a space over them with
/// `extra` options; the sweep goes to its `sweep/`.
fn setup(rows: usize, extra: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.csv");
    write_csv(&train, rows, "");
    let space = tmp.path().join("space.toml");
    write_space(&space, &train, extra);
    let out = tmp.path().join("sweep");
    (tmp, space, out)
}

fn record(dir: &Path) -> SweepRecord {
    SweepRecord::read(&dir.join("sweep.json")).unwrap()
}

/// NumPy's linear-interpolation quantile, written out again here so the test checks the
/// sweep's decisions against the rule rather than against its own code.
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

#[test]
fn asha_stops_the_trials_its_rule_names_and_the_best_options_are_written() {
    // Loss as the metric: continuous, so trials rarely tie. Evaluations every 4 steps and at
    // each epoch's end: rungs 1, 2, 4 with η = 2.
    let (_tmp, space, out) = setup(
        80,
        "epochs = 2\neval-every = 4\nlr = { log-uniform = [1e-5, 3e-3] }\n\
         warmup-ratio = { uniform = [0.0, 0.3] }\n",
    );
    let stdout = stdout_of(&sweep(
        &space,
        &out,
        &[
            "--trials",
            "6",
            "--sampler",
            "random",
            "--pruner",
            "asha",
            "--eta",
            "2",
            "--metric",
            "loss",
            "--seed",
            "3",
        ],
    ));
    let r = record(&out);
    assert_eq!(r.trials.len(), 6);
    assert_eq!(r.metric, "loss");
    assert!(!r.maximize);
    // One trial after another: when trial k was judged, the trials before it had recorded
    // what sweep.json holds now (a pruned one up to where it stopped).
    for (k, t) in r.trials.iter().enumerate() {
        assert!(
            matches!(t.status, TrialStatus::Complete | TrialStatus::Pruned),
            "trial {k}: {:?} {:?}",
            t.status,
            t.error
        );
        let run = out.join(format!("trials/{k:03}"));
        assert!(
            run.join("config.toml").is_file(),
            "trial {k} is a run directory"
        );
        let mut stopped_at = None;
        for (i, e) in t.evaluations.iter().enumerate() {
            let n = i + 1;
            if !n.is_power_of_two() {
                continue;
            }
            let earlier: Vec<f64> = r.trials[..k]
                .iter()
                .filter_map(|o| o.evaluations.get(i))
                .map(|o| -o.value)
                .collect();
            if !earlier.is_empty() && -e.value < quantile(&earlier, 0.5) {
                stopped_at = Some(n);
                break;
            }
        }
        match t.status {
            TrialStatus::Pruned => {
                assert_eq!(stopped_at, Some(t.evaluations.len()), "trial {k}");
                assert!(!run.join("metrics.json").exists());
                assert!(
                    t.steps < t.planned_steps.unwrap(),
                    "trial {k} stopped early"
                );
            }
            _ => {
                assert_eq!(stopped_at, None, "trial {k} should have been stopped");
                assert!(run.join("metrics.json").is_file());
                assert_eq!(
                    t.evaluations.len(),
                    4,
                    "trial {k}: 2 epochs × 2 evaluations"
                );
            }
        }
    }
    let pruned = r
        .trials
        .iter()
        .filter(|t| t.status == TrialStatus::Pruned)
        .count();
    assert!(
        pruned >= 1,
        "six trials with spread learning rates, none pruned"
    );
    let (run, planned) = r.compute();
    assert!(run < planned, "{run} of {planned} steps");
    // The best options: the complete trial with the lowest validation loss.
    let best = r
        .trials
        .iter()
        .filter(|t| t.status == TrialStatus::Complete)
        .min_by(|a, b| a.best.unwrap().total_cmp(&b.best.unwrap()))
        .unwrap();
    let best_toml: toml::Table =
        toml::from_str(&std::fs::read_to_string(out.join("best.toml")).unwrap()).unwrap();
    assert_eq!(
        best_toml["lr"].as_float(),
        best.params["lr"].as_f64(),
        "best.toml holds trial {}'s options",
        best.id
    );
    assert_eq!(best_toml["metric"].as_str(), Some("loss"));
    assert!(stdout.contains("← best"), "{stdout}");
    let html = std::fs::read_to_string(out.join("sweep.html")).unwrap();
    assert!(html.contains("complete (best)"));
    // A plot per searched option.
    assert!(html.contains("aria-label=\"lr\"") && html.contains("aria-label=\"warmup-ratio\""));
    // The same directory again without --resume is refused.
    let e = failure_of(&sweep(&space, &out, &[]));
    assert!(
        e.contains("holds a sweep already") && e.contains("--resume"),
        "{e}"
    );
}

#[test]
fn a_failed_trial_is_recorded_and_the_grid_goes_on() {
    // warmup-ratio 1.5 parses as a number but the recipe refuses it: that trial fails.
    let (_tmp, space, out) = setup(40, "epochs = 1\nwarmup-ratio = { choice = [1.5, 0.1] }\n");
    stdout_of(&sweep(
        &space,
        &out,
        &["--sampler", "grid", "--pruner", "none"],
    ));
    let r = record(&out);
    assert_eq!(r.trials.len(), 2, "a grid of two runs two trials");
    assert_eq!(r.trials[0].status, TrialStatus::Failed);
    let error = r.trials[0].error.as_deref().unwrap();
    assert!(error.contains("--warmup-ratio"), "{error}");
    assert_eq!(r.trials[1].status, TrialStatus::Complete);
    assert_eq!(r.metric, "accuracy");
    assert!(r.trials[1].test.is_some());
    let best = std::fs::read_to_string(out.join("best.toml")).unwrap();
    assert!(best.contains("warmup-ratio = 0.1"), "{best}");
}

#[test]
fn a_sweep_killed_mid_trial_resumes_without_rerunning_finished_trials() {
    // A checkpoint every step, so the killed trial has one to continue from.
    let (_tmp, space, out) = setup(
        400,
        "epochs = 2\nsave-every = 1\nlr = { log-uniform = [1e-4, 1e-3] }\n",
    );
    let args = [
        "sweep",
        "--space",
        space.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--trials",
        "3",
        "--sampler",
        "random",
        "--pruner",
        "none",
    ];
    let mut sweep = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once trial 0 is complete and trial 1 has an intact checkpoint.
    let second = out.join("trials/001");
    let mut killed = false;
    for _ in 0..3000 {
        let ready = out.join("sweep.json").exists()
            && record(&out)
                .trials
                .first()
                .is_some_and(|t| t.status == TrialStatus::Complete)
            && kiln::train::resume::find_latest(&second.join("checkpoints"), &mut |_| {}).is_ok();
        if ready {
            sweep.kill().unwrap();
            killed = true;
            break;
        }
        if sweep.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(killed, "the sweep ended before trial 1 had a checkpoint");
    sweep.wait().unwrap();
    // The running trial died with its sweep: its log stops growing.
    std::thread::sleep(Duration::from_millis(700));
    let log = second.join("log.jsonl");
    let size = std::fs::metadata(&log).unwrap().len();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        size,
        "trial 1 outlived its sweep"
    );
    let before = record(&out);
    assert_eq!(before.trials[1].status, TrialStatus::Running);
    let first_metrics = out.join("trials/000/metrics.json");
    let stamp = std::fs::metadata(&first_metrics)
        .unwrap()
        .modified()
        .unwrap();

    stdout_of(&kiln(&["sweep", "--resume", out.to_str().unwrap()]));
    let after = record(&out);
    assert_eq!(after.trials.len(), 3);
    for t in &after.trials {
        assert_eq!(
            t.status,
            TrialStatus::Complete,
            "trial {}: {:?}",
            t.id,
            t.error
        );
    }
    // Trial 0 was not trained again; trial 1 continued from its checkpoint.
    assert_eq!(
        std::fs::metadata(&first_metrics)
            .unwrap()
            .modified()
            .unwrap(),
        stamp
    );
    assert_eq!(after.trials[0], before.trials[0]);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("\"kind\":\"resume\""), "trial 1 resumed");
    assert_eq!(after.trials[1].params, before.trials[1].params);
    // Options given with --resume other than the sweep's own are refused.
    let e = failure_of(&kiln(&[
        "sweep",
        "--resume",
        out.to_str().unwrap(),
        "--trials",
        "5",
    ]));
    assert!(e.contains("--trials"), "{e}");
}

#[test]
fn a_space_that_is_not_train_options_is_refused_before_any_trial() {
    let tmp = tempfile::tempdir().unwrap();
    let space = tmp.path().join("space.toml");
    std::fs::write(
        &space,
        "lr = { log-uniform = [1e-5, 1e-3] }\nlearning-rate = 3\n",
    )
    .unwrap();
    let out: PathBuf = tmp.path().join("sweep");
    let e = failure_of(&sweep(&space, &out, &[]));
    assert!(
        e.contains("space.toml") && e.contains("`learning-rate` is not an option of kiln train"),
        "{e}"
    );
    assert!(!out.exists(), "nothing written for a refused space");
}

#[test]
fn the_median_rule_stops_trials_below_the_complete_ones_median() {
    let (_tmp, space, out) = setup(
        80,
        "epochs = 2\neval-every = 4\nlr = { log-uniform = [1e-5, 3e-3] }\n",
    );
    stdout_of(&sweep(
        &space,
        &out,
        &[
            "--trials",
            "6",
            "--sampler",
            "tpe",
            "--startup-trials",
            "2",
            "--pruner",
            "median",
            "--median-startup",
            "2",
            "--grace",
            "2",
            "--metric",
            "loss",
            "--seed",
            "5",
        ],
    ));
    let r = record(&out);
    assert_eq!(r.trials.len(), 6);
    for (k, t) in r.trials.iter().enumerate() {
        // Replayed from the record: the complete trials before k, compared from evaluation 2
        // (the grace) on, once two of them exist.
        let complete: Vec<_> = r.trials[..k]
            .iter()
            .filter(|o| o.status == TrialStatus::Complete)
            .collect();
        let mut stopped_at = None;
        let mut best = f64::NEG_INFINITY;
        for (i, e) in t.evaluations.iter().enumerate() {
            best = best.max(-e.value);
            let at: Vec<f64> = complete
                .iter()
                .filter_map(|o| o.evaluations.get(i))
                .map(|o| -o.value)
                .collect();
            if i + 1 >= 2 && complete.len() >= 2 && !at.is_empty() && best < quantile(&at, 0.5) {
                stopped_at = Some(i + 1);
                break;
            }
        }
        let expected = (t.status == TrialStatus::Pruned).then_some(t.evaluations.len());
        assert_eq!(stopped_at, expected, "trial {k}: {:?}", t.status);
        // Drawn from the space, by TPE after the two random ones.
        let lr = t.params["lr"].as_f64().unwrap();
        assert!((1e-5..=3e-3).contains(&lr), "{lr}");
    }
    assert!(
        r.trials.iter().any(|t| t.status == TrialStatus::Pruned),
        "no trial fell below the median"
    );
}

#[test]
fn parallel_trials_run_side_by_side() {
    let (_tmp, space, out) = setup(
        400,
        "epochs = 1\nsave-every = 1\nlr = { choice = [1e-4, 3e-4, 1e-3, 3e-3] }\n",
    );
    stdout_of(&sweep(
        &space,
        &out,
        &[
            "--sampler",
            "grid",
            "--pruner",
            "none",
            "--parallel",
            "2",
            "--threads",
            "1",
        ],
    ));
    let r = record(&out);
    assert_eq!(r.trials.len(), 4);
    assert!(r.trials.iter().all(|t| t.status == TrialStatus::Complete));
    // Trial 1 started before trial 0 ended.
    let (a, b) = (&r.trials[0], &r.trials[1]);
    assert!(
        b.started_s < a.started_s + a.seconds,
        "trial 1 started at {} s, trial 0 ran {}–{} s",
        b.started_s,
        a.started_s,
        a.started_s + a.seconds
    );
    let lrs: Vec<f64> = r
        .trials
        .iter()
        .map(|t| t.params["lr"].as_f64().unwrap())
        .collect();
    assert_eq!(lrs, [1e-4, 3e-4, 1e-3, 3e-3], "the grid in order");
}
