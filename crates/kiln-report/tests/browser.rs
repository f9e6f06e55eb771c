//! The report in a real browser: headless Chromium (Debian's `chromium`, which `.ci/run`
//! installs) renders a run's report.html to a PNG. The test fails on a page that draws next to
//! nothing and on any console message (the page has no scripts: a message means something in
//! it broke).

use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_metrics::{
    ClassificationMetrics, ConfusionMatrix, EpochPoint, EvalPoint, LogRecord, RunMetrics,
    SplitSizes, StepPoint, TrainFigures, TrainStats,
};
use kiln_report::RunFiles;

fn chromium() -> PathBuf {
    let candidates = ["chromium", "chromium-browser", "google-chrome"];
    std::env::var_os("KILN_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            candidates.iter().find_map(|name| {
                std::env::var_os("PATH").and_then(|paths| {
                    std::env::split_paths(&paths)
                        .map(|dir| dir.join(name))
                        .find(|p| p.is_file())
                })
            })
        })
        .expect(
            "no Chromium: `apt-get install chromium` (.ci/run installs it), or set KILN_CHROMIUM",
        )
}

fn metrics(labels: &[String], truth: &[usize], predicted: &[usize]) -> ClassificationMetrics {
    let cm = ConfusionMatrix::from_predictions(truth, predicted, labels.len());
    ClassificationMetrics::compute(&cm, labels, Some(0.4))
}

/// A three-epoch run of 30 steps on a three-label set, with an evaluation every 5 steps.
fn run() -> RunFiles {
    let labels: Vec<String> = ["negative", "neutral", "positive"]
        .map(String::from)
        .to_vec();
    let truth: Vec<usize> = (0..60).map(|i| i % 3).collect();
    let guess = |wrong: usize| -> Vec<usize> {
        truth
            .iter()
            .enumerate()
            .map(|(i, &t)| if i % 10 < wrong { (t + 1) % 3 } else { t })
            .collect()
    };
    let mut log = Vec::new();
    for step in 1..=30u64 {
        log.push(LogRecord::Step {
            point: StepPoint {
                step,
                epoch: step as f64 / 10.0,
                loss: 1.1 / (1.0 + step as f64 / 8.0),
                lr: 5e-5 * (1.0 - step as f64 / 30.0),
            },
            samples_per_second: 40.0,
        });
        if step % 5 == 0 {
            let m = metrics(&labels, &truth, &guess(4 - (step as usize / 10).min(3)));
            log.push(LogRecord::Validation {
                point: EvalPoint {
                    step,
                    epoch: step as f64 / 10.0,
                    epoch_end: step % 10 == 0,
                    metrics: m.clone().into(),
                },
                best: true,
            });
            if step % 10 == 0 {
                log.push(LogRecord::Epoch {
                    point: EpochPoint {
                        epoch: step / 10,
                        train_loss: 1.0 / step as f64 * 5.0,
                        valid: Some(m.into()),
                    },
                    best: step == 30,
                });
            }
        }
    }
    RunFiles {
        metrics: RunMetrics {
            test: Some(metrics(&labels, &truth, &guess(1)).into()),
            valid: vec![],
            evaluations: vec![],
            best_epoch: Some(3),
            best_step: Some(30),
            stopped_early: false,
            labels: labels.clone(),
            examples: SplitSizes {
                train: 300,
                valid: 60,
                test: 60,
            },
            train: TrainFigures {
                stats: TrainStats {
                    examples: 300,
                    epochs: 3,
                    steps: 30,
                    wall_seconds: 12.0,
                    samples_per_second: 75.0,
                    tokens_per_second: 2000.0,
                    ..TrainStats::default()
                },
                peak_rss_mib: Some(512.0),
                trainable_parameters: 1000,
                parameters: 1000,
                bad_steps: 0,
            },
            strategy: "full".into(),
            model: "tiny <model> & \"quotes\"".into(),
            data: "synthetic".into(),
            device: "flex".into(),
            total_wall_seconds: 15.0,
            teacher: None,
            student: None,
            retention: None,
            speedup: None,
            drift: Vec::new(),
            extra_tests: Default::default(),
        },
        log,
        config: "epochs = 3\nlr = 5e-5\n".into(),
    }
}

/// (share of pixels that are not the background, distinct colours) of an RGB(A) PNG.
fn ink(png_path: &Path) -> (f64, usize) {
    let decoder = png::Decoder::new(std::fs::File::open(png_path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(
        channels >= 3,
        "expected an RGB screenshot, got {:?}",
        info.color_type
    );
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let background = pixels[0];
    let painted = pixels.iter().filter(|p| p[..3] != background[..3]).count();
    let mut colours: Vec<[u8; 3]> = pixels.iter().map(|p| [p[0], p[1], p[2]]).collect();
    colours.sort_unstable();
    colours.dedup();
    (painted as f64 / pixels.len() as f64, colours.len())
}

/// Renders `html` in headless Chromium at `size` (`W,H`) and returns the screenshot's path and
/// what the browser wrote to stderr (console messages included).
fn screenshot(dir: &Path, html: &str, size: &str) -> (PathBuf, String) {
    let page = dir.join("page.html");
    std::fs::write(&page, html).unwrap();
    let shot = dir.join("page.png");
    // As this machine kind's probe runs it: no sandbox as root, nothing from the network.
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--window-size={size}"))
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed:\n{stderr}");
    (shot, stderr)
}

#[test]
fn the_report_renders_in_headless_chromium_without_console_messages() {
    assert_renders(&run().render(), "1280,2400");
}

/// `html` renders in headless Chromium at `size` with no console message and paints the page.
fn assert_renders(html: &str, size: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (shot, stderr) = screenshot(dir.path(), html, size);
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "console messages:\n{}",
        console.join("\n")
    );
    let (painted, colours) = ink(&shot);
    // A blank or unstyled page paints a few percent in one or two colours; kiln's pages, with
    // their cards, charts and tables, paint far more, in many.
    assert!(
        painted > 0.15,
        "only {:.1}% of the page painted",
        100.0 * painted
    );
    assert!(colours > 50, "only {colours} colours on the page");
}

#[test]
fn a_blank_page_fails_the_ink_check() {
    // The check above is only as good as `ink`: an empty page must not pass it.
    let dir = tempfile::tempdir().unwrap();
    let blank = "<!DOCTYPE html><html><body></body></html>";
    let (shot, _) = screenshot(dir.path(), blank, "800,600");
    let (painted, colours) = ink(&shot);
    assert!(painted < 0.01 && colours <= 2, "{painted} {colours}");
}

#[test]
fn a_run_directory_renders_from_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let files = run();
    std::fs::write(dir.path().join("metrics.json"), files.metrics.to_json()).unwrap();
    let log: String = files.log.iter().map(|r| r.to_line() + "\n").collect();
    std::fs::write(dir.path().join("log.jsonl"), log).unwrap();
    std::fs::write(dir.path().join("config.toml"), &files.config).unwrap();
    let read = RunFiles::read(dir.path()).unwrap();
    assert_eq!(read.render(), files.render());
    let html = read.render();
    // Text from outside is escaped; the facts, the curves and the test section are there.
    assert!(html.contains("tiny &lt;model&gt; &amp; &quot;quotes&quot;"));
    assert!(!html.contains("tiny <model>"));
    for needle in ["300 / 60 / 60", "<svg", "Confusion matrix", "lr = 5e-5"] {
        assert!(html.contains(needle), "{needle}");
    }
    // A damaged log is named, with its line.
    std::fs::write(dir.path().join("log.jsonl"), "{\"kind\": \"step\"}\n").unwrap();
    let err = RunFiles::read(dir.path()).unwrap_err().to_string();
    assert!(err.contains("log.jsonl") && err.contains("line 1"), "{err}");
}

/// A sweep's page: twelve trials over two options, some pruned, one failed.
fn sweep() -> kiln_metrics::SweepRecord {
    use kiln_metrics::{ParamValue, TrialEvaluation, TrialRecord, TrialStatus};
    let trials = (0..12)
        .map(|id| {
            let lr = 1e-5 * 1.6f64.powi(id as i32);
            let strategy = if id % 3 == 0 { "lora" } else { "full" };
            let params = std::collections::BTreeMap::from([
                ("lr".to_string(), ParamValue::Float(lr)),
                ("strategy".to_string(), ParamValue::Text(strategy.into())),
            ]);
            let mut t = TrialRecord::new(id, params, 40.0 * id as f64);
            let (status, n) = match id % 4 {
                0 | 1 => (TrialStatus::Complete, 4),
                2 => (TrialStatus::Pruned, 1),
                _ if id == 11 => (TrialStatus::Failed, 0),
                _ => (TrialStatus::Pruned, 2),
            };
            t.status = status;
            t.evaluations = (0..n)
                .map(|i| TrialEvaluation {
                    step: 25 * (i + 1),
                    epoch: 0.25 * (i + 1) as f64,
                    value: 0.6 + 0.05 * i as f64 + 0.01 * (id % 5) as f64,
                })
                .collect();
            t.best = t.evaluations.iter().map(|e| e.value).reduce(f64::max);
            t.test = (status == TrialStatus::Complete).then_some(0.8);
            t.steps = 25 * n;
            t.planned_steps = Some(100);
            t.seconds = 30.0 * n.max(1) as f64;
            if status == TrialStatus::Failed {
                t.error = Some("error: --warmup-ratio must be in [0, 1), got 1.5".into());
            }
            t
        })
        .collect();
    kiln_metrics::SweepRecord {
        metric: "accuracy".into(),
        maximize: true,
        elapsed_s: 600.0,
        trials,
    }
}

#[test]
fn the_sweep_page_renders_in_headless_chromium_without_console_messages() {
    assert_renders(
        &kiln_report::render_sweep(&sweep(), "kiln sweep — test"),
        "1280,1800",
    );
}
