//! The `kiln` binary end to end on the tiny fixture model: `kiln embed` prints one JSON array
//! per non-empty line, equal to transformers' outputs; bad input gives a one-line error.

use std::path::PathBuf;
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[derive(serde::Deserialize)]
struct Expected {
    examples: Vec<Example>,
}
#[derive(serde::Deserialize)]
struct Example {
    text: String,
    text_pair: Option<String>,
    mean_pooled: Vec<f32>,
    last_hidden_state: Vec<Vec<f32>>,
}

fn kiln() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
}

#[test]
fn embed_prints_transformers_embeddings_one_line_each() {
    let expected: Expected = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("tiny-bert/expected.json")).unwrap(),
    )
    .unwrap();
    let singles: Vec<&Example> = expected
        .examples
        .iter()
        .filter(|e| e.text_pair.is_none())
        .collect();
    assert!(singles.len() >= 3);
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("lines.txt");
    // Blank lines are skipped; CRLF endings are not part of the text.
    let mut text = String::new();
    for e in &singles {
        text.push_str(&e.text);
        text.push_str("\r\n\n");
    }
    std::fs::write(&input, text).unwrap();
    for (pooling, pick) in [("mean", 0usize), ("cls", 1)] {
        let out = kiln()
            .args(["embed", "--model"])
            .arg(fixtures().join("tiny-bert"))
            .args(["--pooling", pooling, "--input"])
            .arg(&input)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), singles.len());
        for (line, e) in lines.iter().zip(&singles) {
            let v: Vec<f32> = serde_json::from_str(line).unwrap();
            let want = if pick == 0 {
                &e.mean_pooled
            } else {
                &e.last_hidden_state[0]
            };
            let d = v
                .iter()
                .zip(want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert_eq!(v.len(), want.len());
            assert!(d <= 1e-4, "{pooling} {:?}: {d}", e.text);
        }
    }
}

#[test]
fn embed_errors_are_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = kiln()
        .args(["embed", "--model"])
        .arg(tmp.path().join("missing-model"))
        .args(["--input", "whatever.txt"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("missing-model"), "{err}");

    let out = kiln()
        .args(["embed", "--model"])
        .arg(fixtures().join("tiny-bert"))
        .args(["--input"])
        .arg(tmp.path().join("no-such-input.txt"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-input.txt"), "{err}");

    let out = kiln()
        .args(["embed", "--device", "cuda:0", "--model"])
        .arg(fixtures().join("tiny-bert"))
        .args(["--input", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--features cuda"), "{err}");
}
