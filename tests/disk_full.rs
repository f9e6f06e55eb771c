//! A full disk: a checkpoint that does not fit fails the run with one line naming the checkpoint
//! and the file, the earlier checkpoints stay intact (and nothing half-written is left), and the
//! run moved to a roomier disk resumes and ends bit-equal to a run that never stopped. A run
//! whose directory cannot take the 1 MiB write probe is refused before training, leaving no
//! probe behind.
//!
//! The small disk is a tmpfs, which only root may mount: `#[ignore]`d here, run by
//! `cargo xtask test` (`--include-ignored`; CI runs as root). It fails, not skips, when the
//! mount is refused.

#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{failure_of, json, kiln, stdout_of as ok, tiny_model};

/// A tmpfs of `size` mounted at `dir` for the guard's lifetime.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a {size} tmpfs at {} (needs root): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Self(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn args<'a>(model: &'a str, train: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--model",
        model,
        "--train",
        train,
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--max-len",
        "16",
        "--out",
        out,
    ]
}

#[test]
#[ignore = "mounts a tmpfs (root only): cargo xtask test runs it with --include-ignored"]
fn a_full_disk_fails_one_checkpoint_and_the_run_resumes_bit_equal() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.csv");
    common::write_csv(&train, 48, "");
    let (model, train) = (tiny_model(), train.to_str().unwrap().to_string());
    let s = |p: &Path| p.to_str().unwrap().to_string();

    let reference = tmp.path().join("reference");
    ok(&kiln(&args(&model, &train, &s(&reference))));

    // Under 1 MiB free: refused before training, and the probe does not stay behind.
    {
        let tiny = tmp.path().join("tiny");
        let _disk = Tmpfs::mount(&tiny, "512k");
        let out = tiny.join("run");
        let err = failure_of(&kiln(&args(&model, &train, &s(&out))));
        let last = err.lines().last().unwrap();
        assert!(
            last.contains("run is not writable") && last.contains("No space left"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_dir(&out).unwrap().count(),
            0,
            "nothing left in {out:?}"
        );
    }

    // Room for the probe and two checkpoints (~0.43 MB each), not for a third beside them:
    // the epoch-3 checkpoint fails while epochs 1 and 2 stay.
    let small = tmp.path().join("small");
    let disk = Tmpfs::mount(&small, "1200k");
    let run = small.join("run");
    let err = failure_of(&kiln(&args(&model, &train, &s(&run))));
    assert!(err.contains("epoch 3/3"), "the run got to epoch 3: {err}");
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with("error: ")
            && last.contains("checkpoints/ckpt-0000000015: writing")
            && last.contains("No space left on device"),
        "{err}"
    );
    let checkpoints = kiln::train::resume::list(&run.join("checkpoints"));
    assert_eq!(checkpoints.len(), 2, "{checkpoints:?}");
    let names: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| n.starts_with("ckpt-")),
        "no staging left: {names:?}"
    );
    let newest = kiln::train::resume::find_latest(&run.join("checkpoints"), &mut |_| {}).unwrap();
    assert!(newest.ends_with("ckpt-0000000010"), "{newest:?}");
    assert!(!run.join("metrics.json").exists() && !run.join("model").exists());

    // The same run on a roomier disk continues from epoch 2's checkpoint.
    let moved = tmp.path().join("moved");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(&run)
        .arg(&moved)
        .status()
        .unwrap();
    assert!(copied.success());
    drop(disk);
    ok(&kiln(&["train", "--resume", &s(&moved)]));
    assert_eq!(
        json(&moved.join("metrics.json"))["test"],
        json(&reference.join("metrics.json"))["test"]
    );
    assert_eq!(
        std::fs::read(moved.join("model/model.safetensors")).unwrap(),
        std::fs::read(reference.join("model/model.safetensors")).unwrap(),
        "bit-equal to the run that never stopped"
    );
}
