//! What the command-line tests share: running the `kiln` binary, the tiny fixture model, a
//! small labelled CSV, reading JSON back.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn kiln(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .output()
        .unwrap()
}

/// The run's stdout, after checking it succeeded (stderr shown when it did not).
pub fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The run's stderr, after checking it succeeded.
pub fn stderr_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The run's stderr, after checking it failed.
pub fn failure_of(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected a failure; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn tiny_model() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tiny-bert")
        .display()
        .to_string()
}

/// Words of the tiny vocabulary that the test data calls good, and bad.
pub const GOOD: [&str; 4] = ["great", "good", "loved", "fun"];
pub const BAD: [&str; 4] = ["bad", "boring", "plot", "was"];

/// `n` rows alternating labels `pos` and `neg`, then `extra` verbatim.
pub fn write_csv(path: &Path, n: usize, extra: &str) {
    let (good, bad) = (GOOD, BAD);
    let mut text = String::from("text,label\n");
    for i in 0..n {
        let (words, label) = if i % 2 == 0 {
            (good, "pos")
        } else {
            (bad, "neg")
        };
        text.push_str(&format!(
            "\"the movie {} {}\",{label}\n",
            words[i % 4],
            words[(i / 2) % 4]
        ));
    }
    text.push_str(extra);
    std::fs::write(path, text).unwrap();
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A real checkpoint or data set from kiln's cache (`kiln fetch NAME`). The tests that need one
/// are `#[ignore]`d; `cargo xtask test` fetches everything and runs them with
/// `--include-ignored`, and so does anyone after `cargo xtask fetch`. A missing artifact fails
/// the test rather than skipping it.
pub fn fetched(name: &str) -> PathBuf {
    let artifact: kiln::fetch::Artifact = name.parse().unwrap();
    let cache = kiln::fetch::cache_dir();
    kiln::fetch::cached(artifact, &cache).unwrap_or_else(|| {
        panic!(
            "{name} is not in the cache ({}): run `cargo xtask fetch {name}` (cargo xtask test does)",
            cache.display()
        )
    })
}
