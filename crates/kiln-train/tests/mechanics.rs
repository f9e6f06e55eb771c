//! Accumulation averages, a batch split over devices makes the one-device step, clipping uses
//! the global norm, resume replays the run exactly, and a
//! tiny model learns separable data.

mod common;

use std::sync::Arc;

use burn::optim::GradientsParams;
use burn::prelude::*;
use common::*;
use kiln_data::bucket::Sampler;
use kiln_model::Pooling;
use kiln_train::clip::{clip_global_norm, global_norm};
use kiln_train::optim::{OptimizerKind, OptimizerSpec};
use kiln_train::schedule::ScheduleKind;
use kiln_train::trainer::Faults;
use kiln_train::{TrainConfig, TrainData, Trainer};

fn sgd(batch_size: usize, grad_accum: usize) -> TrainConfig {
    TrainConfig {
        epochs: 1,
        batch_size,
        grad_accum,
        lr: 0.5,
        schedule: ScheduleKind::Constant,
        warmup_ratio: 0.0,
        grad_clip: 0.0,
        optimizer: OptimizerSpec {
            kind: OptimizerKind::Sgd,
            momentum: 0.0,
            weight_decay: 0.0,
            ..OptimizerSpec::default()
        },
        ..TrainConfig::default()
    }
}

#[test]
fn accumulating_k_batches_of_n_equals_one_batch_of_k_times_n() {
    let _serial = serial();
    let device = Device::flex();
    let data = TrainData {
        valid: Arc::new(Vec::new()),
        ..data(8, 0)
    };
    let one = Trainer::new(sgd(8, 1).clone())
        .device(&device)
        .fit(tiny_model(0.0, Pooling::Cls, &device), &data)
        .unwrap();
    let acc = Trainer::new(sgd(4, 2).clone())
        .device(&device)
        .fit(tiny_model(0.0, Pooling::Cls, &device), &data)
        .unwrap();
    let summed = Trainer::new(sgd(4, 1).clone())
        .device(&device)
        .fit(tiny_model(0.0, Pooling::Cls, &device), &data)
        .unwrap();
    assert_eq!(
        (one.stats.steps, acc.stats.steps, summed.stats.steps),
        (1, 1, 2)
    );
    let (a, b, c) = (
        values(&one.model),
        values(&acc.model),
        values(&summed.model),
    );
    let start = values(&tiny_model(0.0, Pooling::Cls, &device));
    let (worst, moved) = gaps(&a, &b, &start);
    assert!(moved > 1e-3, "the step moved the weights ({moved})");
    assert!(
        worst < 1e-5,
        "accumulated vs single batch: max abs diff {worst}"
    );
    // Two separate steps are a different thing: the test can tell them apart.
    let differs = a
        .iter()
        .any(|(p, v)| v.iter().zip(&c[p]).any(|(x, y)| (x - y).abs() > 1e-4));
    assert!(differs);
}

#[test]
fn a_batch_split_over_devices_or_shards_makes_the_step_one_device_makes() {
    // Two (and three, unevenly split) replicas on the one CPU device — given as a device list,
    // or as batch shards of one device — each fork the model, run their shard in their own
    // thread and send their gradients back. Shards of 3+3+2 of 8 examples must be weighted by
    // size, or the step differs from the single-shard one. Packed and padded shards alike.
    let _serial = serial();
    let device = Device::flex();
    let data = TrainData {
        valid: Arc::new(Vec::new()),
        ..data(8, 0)
    };
    for sampler in [Sampler::Packed, Sampler::Shuffled] {
        let config = TrainConfig {
            grad_clip: 0.5,
            sampler,
            ..sgd(8, 1)
        };
        let one = Trainer::new(
            TrainConfig {
                batch_shards: 1,
                ..config.clone()
            }
            .clone(),
        )
        .device(&device)
        .fit(tiny_model(0.0, Pooling::Cls, &device), &data)
        .unwrap();
        let start = values(&tiny_model(0.0, Pooling::Cls, &device));
        let single = values(&one.model);
        for n in [2, 3] {
            let devices = vec![device.clone(); n];
            let on_devices = Trainer::new(config.clone())
                .devices(&devices)
                .fit(tiny_model(0.0, Pooling::Cls, &device), &data)
                .unwrap();
            let sharded = Trainer::new(
                TrainConfig {
                    batch_shards: n,
                    ..config.clone()
                }
                .clone(),
            )
            .device(&device)
            .fit(tiny_model(0.0, Pooling::Cls, &device), &data)
            .unwrap();
            for (how, split) in [("devices", on_devices), ("shards", sharded)] {
                assert_eq!(split.stats.steps, 1);
                let (worst, moved) = gaps(&single, &values(&split.model), &start);
                assert!(moved > 1e-3, "the step moved the weights ({moved})");
                assert!(
                    worst < 1e-5,
                    "{sampler:?}, {n} {how} vs one: max abs diff {worst}"
                );
                let (a, b) = (one.epochs[0].train_loss, split.epochs[0].train_loss);
                assert!(
                    (a - b).abs() < 1e-5,
                    "{sampler:?}: batch loss {a} in one shard, {b} in {n} {how}"
                );
            }
        }
    }
}

#[test]
fn clipping_scales_all_gradients_by_one_global_factor() {
    let _serial = serial();
    let device = Device::flex().autodiff();
    let model = tiny_model(0.0, Pooling::Cls, &device).train();
    let batch = kiln_data::TokenBatch::pad(
        &synthetic(4, 3)
            .iter()
            .map(|e| &e.encoding)
            .collect::<Vec<_>>(),
        0,
        1,
        &device,
    );
    let logits = model.forward(batch.input_ids, batch.token_type_ids, batch.attention_mask);
    let loss = logits.square().sum().mul_scalar(100.0);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let norm = global_norm(&model, &grads);
    assert!(norm > 1.0, "test needs a large gradient, got {norm}");
    // A copy to compare directions.
    let before = values_of_grads(&model, &grads);
    let mut clipped = grads;
    let reported = clip_global_norm(&model, &mut clipped, 1.0);
    assert!((reported - norm).abs() < 1e-9);
    let after_norm = global_norm(&model, &clipped);
    assert!((after_norm - 1.0).abs() < 1e-4, "clipped norm {after_norm}");
    let after = values_of_grads(&model, &clipped);
    let factor = 1.0 / (norm + 1e-6);
    for (b, a) in before.iter().zip(&after) {
        assert!((b * factor as f32 - a).abs() < 1e-6 * b.abs().max(1.0));
    }
    // Below the threshold nothing changes.
    let mut untouched = clipped;
    clip_global_norm(&model, &mut untouched, 10.0);
    assert_eq!(values_of_grads(&model, &untouched), after);
}

fn values_of_grads(model: &kiln_model::BertClassifier, grads: &GradientsParams) -> Vec<f32> {
    use burn::module::{Module, ModuleVisitor, Param};
    struct V<'a>(&'a GradientsParams, Vec<f32>);
    impl ModuleVisitor for V<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.0.get::<D>(param.id) {
                self.1
                    .extend(g.into_data().convert::<f32>().try_to_vec::<f32>().unwrap());
            }
        }
    }
    let mut v = V(grads, Vec::new());
    model.visit(&mut v);
    v.1
}

/// Two epochs in one run, and one epoch then a resume from its checkpoint, give the same
/// losses step by step and the same weights bit for bit.
fn assert_epoch_resume_replays<M: kiln_train::TaskModel>(
    data: &TrainData,
    model: impl Fn(&Device) -> M,
) {
    let device = Device::flex();
    let config = |epochs| TrainConfig {
        epochs,
        batch_size: 8,
        lr: 1e-3,
        schedule: ScheduleKind::Constant,
        warmup_ratio: 0.0,
        ..TrainConfig::default()
    };
    let whole = Trainer::new(config(2))
        .device(&device)
        .fit(model(&device), data)
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let first = Trainer::new(config(1))
        .device(&device)
        .checkpoints(tmp.path())
        .fit(model(&device), data)
        .unwrap();
    assert_eq!(first.stats.epochs, 1);
    let resumed = Trainer::new(config(2))
        .device(&device)
        .checkpoints(tmp.path())
        .resume(tmp.path())
        .fit(model(&device), data)
        .unwrap();
    assert_eq!(resumed.stats.steps, whole.stats.steps);
    let losses =
        |o: &kiln_train::TrainOutcome<M>| o.steps.iter().map(|s| s.loss).collect::<Vec<_>>();
    assert_eq!(losses(&resumed), losses(&whole), "same losses step by step");
    assert!(
        values(&resumed.model) == values(&whole.model),
        "resumed run = uninterrupted run, bit for bit"
    );
    let last_valid = |o: &kiln_train::TrainOutcome<M>| o.epochs.last().unwrap().valid.clone();
    assert_eq!(last_valid(&resumed), last_valid(&whole));
}

#[test]
fn resuming_from_an_epoch_checkpoint_replays_the_run_bit_for_bit() {
    let _serial = serial();
    assert_epoch_resume_replays(&data(24, 0), |device| tiny_model(0.1, Pooling::Cls, device));
}

#[test]
fn other_families_resume_bit_for_bit_too() {
    // The enum of families is one burn module: its record (and the variant) round-trips
    // through a checkpoint. RoBERTa pads with 1, ModernBERT (RoPE, a sliding window) and
    // DeBERTa (relative attention) with 0.
    let _serial = serial();
    let model_of: [(ModelOf, u32); 3] =
        [(tiny_roberta, 1), (tiny_modernbert, 0), (tiny_deberta, 0)];
    for (model, pad_id) in model_of {
        let mut data = data(24, 8);
        data.pad_id = pad_id;
        assert_epoch_resume_replays(&data, |device| model(0.1, device));
    }
}

#[test]
fn a_tiny_model_learns_separable_data() {
    let _serial = serial();
    let device = Device::flex();
    let data = data(64, 32);
    let config = TrainConfig {
        epochs: 4,
        batch_size: 8,
        lr: 3e-3,
        ..TrainConfig::default()
    };
    let outcome = Trainer::new(config.clone())
        .device(&device)
        .fit(tiny_model(0.1, Pooling::Mean, &device), &data)
        .unwrap();
    let last = outcome.epochs.last().unwrap().valid.as_ref().unwrap();
    let accuracy = last.classification().unwrap().accuracy;
    assert!(accuracy >= 0.9, "validation accuracy {accuracy}");
    assert_eq!(outcome.epochs.len(), 4);
    assert!(outcome.best_epoch.is_some());
}

#[test]
fn bad_options_are_rejected_before_training() {
    let _serial = serial();
    let device = Device::flex();
    for (config, needle) in [
        (
            TrainConfig {
                epochs: 0,
                ..TrainConfig::default()
            },
            "epochs must",
        ),
        (
            TrainConfig {
                lr: -1.0,
                ..TrainConfig::default()
            },
            "lr must",
        ),
        (
            TrainConfig {
                grad_accum: 0,
                ..TrainConfig::default()
            },
            "grad_accum must",
        ),
        (
            TrainConfig {
                label_smoothing: 1.5,
                ..TrainConfig::default()
            },
            "label_smoothing must",
        ),
    ] {
        let err = Trainer::new(config.clone())
            .device(&device)
            .fit(tiny_model(0.0, Pooling::Cls, &device), &data(8, 0))
            .err()
            .expect("must fail")
            .to_string();
        assert!(err.contains(needle), "{err}");
    }
}

/// Asks the loop to stop after `after` optimizer steps (as Ctrl-C does).
struct StopAfter {
    steps: u64,
    after: u64,
}

impl kiln_train::Observer for StopAfter {
    fn step(&mut self, _point: &kiln_train::history::StepPoint, _sps: f64) {
        self.steps += 1;
    }
    fn should_stop(&mut self) -> bool {
        self.steps >= self.after
    }
}

fn resumable_config() -> TrainConfig {
    TrainConfig {
        epochs: 2,
        batch_size: 4,
        lr: 1e-3,
        save_every: Some(1),
        ..TrainConfig::default()
    }
}

#[test]
fn a_run_stopped_inside_an_epoch_resumes_bit_for_bit() {
    let _serial = serial();
    let device = Device::flex();
    let data = data(24, 8);
    let base = tiny_model(0.1, Pooling::Cls, &device);
    let whole = Trainer::new(resumable_config())
        .device(&device)
        .fit(base.clone(), &data)
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // Stop at step 4 (inside epoch 1 of 6 steps), then at step 9 (inside epoch 2), then finish.
    for after in [4, 5] {
        let mut observer = StopAfter { steps: 0, after };
        let mut trainer = Trainer::new(resumable_config())
            .device(&device)
            .checkpoints(tmp.path())
            .observer(&mut observer);
        if !kiln_train::resume::list(tmp.path()).is_empty() {
            trainer = trainer.resume(tmp.path());
        }
        let err = trainer.fit(base.clone(), &data).err().expect("stopped");
        assert!(err.to_string().contains("interrupted"), "{err}");
    }
    let resumed = Trainer::new(resumable_config())
        .device(&device)
        .checkpoints(tmp.path())
        .resume(tmp.path())
        .fit(base, &data)
        .unwrap();
    let losses = |o: &kiln_train::TrainOutcome| o.steps.iter().map(|s| s.loss).collect::<Vec<_>>();
    assert_eq!(losses(&resumed), losses(&whole));
    assert_eq!(resumed.best_epoch, whole.best_epoch);
    assert!(
        values(&resumed.model) == values(&whole.model),
        "bit-equal after two interruptions"
    );
    assert_eq!(
        kiln_train::resume::list(tmp.path()).len(),
        2,
        "only the newest two are kept"
    );
}

#[test]
fn a_damaged_newest_checkpoint_falls_back_to_the_previous_one() {
    let _serial = serial();
    let device = Device::flex();
    let data = data(24, 0);
    let base = tiny_model(0.0, Pooling::Cls, &device);
    let tmp = tempfile::tempdir().unwrap();
    let _ = Trainer::new(resumable_config())
        .device(&device)
        .checkpoints(tmp.path())
        .observer(&mut StopAfter { steps: 0, after: 5 })
        .fit(base.clone(), &data);
    let list = kiln_train::resume::list(tmp.path());
    assert_eq!(list.len(), 2);
    // Flip a byte in the newest model file.
    let model = list[0].join("model.bpk");
    let mut bytes = std::fs::read(&model).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&model, bytes).unwrap();
    assert!(kiln_train::resume::verify(&list[0]).is_err());
    let mut warnings = Vec::new();
    let chosen =
        kiln_train::resume::find_latest(tmp.path(), &mut |m| warnings.push(m.to_string())).unwrap();
    assert_eq!(chosen, list[1]);
    assert!(warnings[0].contains("damaged"), "{warnings:?}");
    // A run resumes from it and finishes.
    let done = Trainer::new(resumable_config())
        .device(&device)
        .checkpoints(tmp.path())
        .resume(tmp.path())
        .fit(base, &data)
        .unwrap();
    assert_eq!(done.stats.epochs, 2);
}

#[test]
fn non_finite_steps_are_skipped_counted_and_stop_the_run_when_repeated() {
    let _serial = serial();
    let device = Device::flex();
    let data = data(24, 0);
    let base = tiny_model(0.0, Pooling::Cls, &device);
    let mut config = TrainConfig {
        epochs: 1,
        batch_size: 4,
        ..TrainConfig::default()
    };
    let outcome = Trainer::new(config.clone())
        .device(&device)
        .faults(Faults {
            nan_loss_at: vec![2],
        })
        .fit(base.clone(), &data)
        .unwrap();
    assert_eq!(outcome.bad_steps, 1);
    assert_eq!(outcome.stats.steps, 6);
    assert!(outcome.steps[2].loss.is_nan() && outcome.steps[3].loss.is_finite());
    // Three in a row with --max-bad-steps 3: the run stops and says why.
    config.max_bad_steps = 3;
    let err = Trainer::new(config.clone())
        .device(&device)
        .faults(Faults {
            nan_loss_at: vec![1, 2, 3],
        })
        .fit(base, &data)
        .err()
        .expect("stops")
        .to_string();
    assert!(
        err.contains("3 steps in a row") && err.contains("max_bad_steps"),
        "{err}"
    );
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
fn modes(root: &std::path::Path) -> Vec<(std::path::PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(root).unwrap().permissions().mode() & 0o777;
    let mut found = vec![(root.to_path_buf(), mode)];
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
fn checkpoints_take_the_umask() {
    for mask in ["022", "077"] {
        run_under_umask("checkpointing_under_this_umask", mask);
    }
}

/// Trains with a checkpoint directory and checks the mode of every checkpoint directory and
/// file against this process's umask.
#[test]
#[cfg(target_os = "linux")]
#[ignore = "run by checkpoints_take_the_umask in a child process with a set umask"]
fn checkpointing_under_this_umask() {
    let umask = current_umask();
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoints");
    let config = TrainConfig {
        epochs: 1,
        batch_size: 8,
        ..TrainConfig::default()
    };
    let model = tiny_model(0.0, Pooling::Cls, &device);
    Trainer::new(config.clone())
        .device(&device)
        .checkpoints(&root)
        .fit(model, &data(16, 8))
        .unwrap();

    let found = modes(&root);
    let names: Vec<String> = found
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "model.bpk",
        "optimizer.bpk",
        "best.bpk",
        "state.json",
        "checksums.json",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not saved: {names:?}"
        );
    }
    assert!(names.iter().any(|n| n.starts_with("ckpt-")), "{names:?}");
    let wrong = wrong_modes(&found, umask);
    assert!(wrong.is_empty(), "under umask {umask:03o}: {wrong:#?}");
}

#[test]
fn a_checkpoint_continues_only_the_run_that_wrote_it() {
    let _serial = serial();
    let device = Device::flex();
    let config = |epochs, schedule| TrainConfig {
        epochs,
        batch_size: 8,
        lr: 1e-3,
        schedule,
        warmup_ratio: 0.0,
        ..TrainConfig::default()
    };
    let tmp = tempfile::tempdir().unwrap();
    let run = config(1, ScheduleKind::Linear);
    Trainer::new(run.clone())
        .device(&device)
        .checkpoints(tmp.path())
        .fit(tiny_model(0.1, Pooling::Cls, &device), &data(24, 0))
        .unwrap();
    let resume = |data: &TrainData, config: &TrainConfig| -> String {
        match Trainer::new((config).clone())
            .device(&device)
            .checkpoints(tmp.path())
            .resume(tmp.path())
            .fit(tiny_model(0.1, Pooling::Cls, &device), data)
        {
            Ok(_) => panic!("the resume was accepted"),
            Err(e) => e.to_string(),
        }
    };
    // Other training examples (an edited file), or another option that decides the result.
    let mut other_data = data(24, 0);
    other_data.train = Arc::new(synthetic(24, 9));
    assert!(resume(&other_data, &run).contains("other data or other options"));
    let mut other_lr = run.clone();
    other_lr.lr = 2e-3;
    assert!(resume(&data(24, 0), &other_lr).contains("other data or other options"));
    // More epochs under a linear decay: the steps taken so far had other learning rates.
    assert!(resume(&data(24, 0), &config(2, ScheduleKind::Linear)).contains("learning rate"));
    // Options that only say how often to save do not matter.
    let mut saving = run.clone();
    saving.save_every = Some(1);
    saving.save_total_limit = 5;
    assert!(Trainer::new(saving.clone())
        .device(&device)
        .checkpoints(tmp.path())
        .resume(tmp.path())
        .fit(tiny_model(0.1, Pooling::Cls, &device), &data(24, 0))
        .is_ok());
}

/// L2-SP keeps the encoder nearer its pretrained weights than plain fine-tuning does (the head
/// moves either way), and a run with it resumes bit for bit: the anchor is the pretrained model
/// by parameter path, not whatever a checkpoint loads.
#[test]
fn l2_sp_holds_the_encoder_near_its_start_and_resumes_bit_for_bit() {
    let _serial = serial();
    let device = Device::flex();
    let data = data(24, 0);
    // SGD: the pull λ·(w − w₀) acts in proportion (Adam would normalise it away step by step).
    let config = |epochs, l2_sp| TrainConfig {
        epochs,
        l2_sp,
        lr: 0.05,
        ..sgd(8, 1)
    };
    // One initial model for every run, so that drift is measured from where training began.
    let init = tiny_model(0.0, Pooling::Cls, &device);
    let start = values(&init);
    let drift = |o: &kiln_train::TrainOutcome, head: bool| {
        values(&o.model)
            .iter()
            .filter(|(path, _)| kiln_train::params::is_head(path) == head)
            .map(|(path, v)| {
                v.iter()
                    .zip(&start[path])
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f32>()
            })
            .sum::<f32>()
            .sqrt()
    };
    let fit = |c: TrainConfig, dir: Option<&std::path::Path>, resume: bool| {
        let mut t = Trainer::new(c).device(&device);
        if let Some(d) = dir {
            t = t.checkpoints(d);
            if resume {
                t = t.resume(d);
            }
        }
        t.fit(init.clone(), &data).unwrap()
    };
    // Long enough for drift to build up (a few noisy steps can cancel out by chance, and then the
    // pull, which forgets, can end farther), while the pull bounds it near g/λ.
    let plain = fit(config(12, 0.0), None, false);
    let anchored = fit(config(12, 10.0), None, false);
    let (free, held) = (drift(&plain, false), drift(&anchored, false));
    // Measured here: about half (0.0033 vs 0.0071); a quarter less is the floor of "clearly
    // nearer", not noise.
    assert!(
        held < 0.75 * free,
        "encoder drift {held} with L2-SP vs {free} without"
    );
    assert!(drift(&anchored, true) > 0.0, "the head still trains");

    let tmp = tempfile::tempdir().unwrap();
    fit(config(5, 10.0), Some(tmp.path()), false);
    let resumed = fit(config(12, 10.0), Some(tmp.path()), true);
    assert!(
        values(&resumed.model) == values(&anchored.model),
        "resumed L2-SP run = uninterrupted one, bit for bit"
    );
}

#[test]
fn a_tiny_model_learns_a_regression_target_and_keeps_the_lowest_mse_epoch() {
    let _serial = serial();
    let device = Device::flex();
    let data = regression_data(64, 32);
    assert_eq!(data.task(), kiln_data::Task::Regression);
    let config = TrainConfig {
        epochs: 8,
        batch_size: 8,
        lr: 3e-3,
        ..TrainConfig::default()
    };
    let outcome = Trainer::new(config)
        .device(&device)
        .fit(tiny_regressor(0.1, &device), &data)
        .unwrap();
    let scores: Vec<_> = outcome
        .epochs
        .iter()
        .map(|e| e.valid.as_ref().unwrap().regression().unwrap().clone())
        .collect();
    let last = scores.last().unwrap();
    // The values spread ±2 around 5 (variance ≈ 4.3): a model that learned nothing has MSE ≈ 4.
    assert!(
        last.mse < 0.5 && last.pearson.unwrap() > 0.9,
        "validation after 8 epochs: {last:?}"
    );
    let lowest = (0..scores.len())
        .min_by(|&a, &b| scores[a].mse.total_cmp(&scores[b].mse))
        .unwrap();
    assert_eq!(outcome.best_epoch, Some(lowest as u64 + 1), "{scores:?}");
}

#[test]
fn a_regression_run_resumes_bit_for_bit() {
    let _serial = serial();
    assert_epoch_resume_replays(&regression_data(24, 8), |device| {
        tiny_regressor(0.1, device)
    });
}

#[test]
fn classification_options_are_refused_for_regression() {
    let _serial = serial();
    let device = Device::flex();
    for (config, needle) in [
        (
            TrainConfig {
                metric: Some(kiln_train::SelectionMetric::Accuracy),
                ..TrainConfig::default()
            },
            "not measured for regression",
        ),
        (
            TrainConfig {
                label_smoothing: 0.1,
                ..TrainConfig::default()
            },
            "not for a regression task",
        ),
    ] {
        let err = Trainer::new(config)
            .device(&device)
            .fit(tiny_regressor(0.0, &device), &regression_data(8, 0))
            .err()
            .expect("must fail")
            .to_string();
        assert!(err.contains(needle), "{err}");
    }
    // A model with two outputs cannot learn one value.
    let err = Trainer::new(TrainConfig::default())
        .device(&device)
        .fit(
            tiny_model(0.0, Pooling::Cls, &device),
            &regression_data(8, 0),
        )
        .err()
        .expect("must fail")
        .to_string();
    assert!(err.contains("one value per example"), "{err}");
}

#[test]
fn a_tiny_model_learns_label_sets() {
    let _serial = serial();
    let device = Device::flex();
    let data = multi_label_data(96, 48);
    assert_eq!(data.task(), kiln_data::Task::MultiLabel);
    let config = TrainConfig {
        epochs: 8,
        batch_size: 8,
        lr: 3e-3,
        ..TrainConfig::default()
    };
    let model = tiny_multi_label(0.1, Pooling::Mean, &device);
    let outcome = Trainer::new(config)
        .device(&device)
        .fit(model, &data)
        .unwrap();
    let scores: Vec<_> = outcome
        .epochs
        .iter()
        .map(|e| e.valid.as_ref().unwrap().multi_label().unwrap().clone())
        .collect();
    let last = scores.last().unwrap();
    assert!(last.micro_f1 > 0.9, "validation after 8 epochs: {last:?}");
    let best = (0..scores.len())
        .max_by(|&a, &b| {
            scores[a]
                .micro_f1
                .total_cmp(&scores[b].micro_f1)
                .then(b.cmp(&a))
        })
        .unwrap();
    assert_eq!(
        outcome.best_epoch,
        Some(best as u64 + 1),
        "selected by micro-F1"
    );
}

#[test]
fn multi_label_options_are_checked_against_the_task() {
    let _serial = serial();
    let device = Device::flex();
    for (config, data, needle) in [
        (
            TrainConfig {
                pos_weight: Some(vec![1.0, 2.0]),
                ..TrainConfig::default()
            },
            multi_label_data(8, 0),
            "holds 2 weights for 3 labels",
        ),
        (
            TrainConfig {
                metric: Some(kiln_train::SelectionMetric::Accuracy),
                ..TrainConfig::default()
            },
            multi_label_data(8, 0),
            "not measured for multi-label",
        ),
        (
            TrainConfig {
                tune_thresholds: true,
                ..TrainConfig::default()
            },
            data(8, 0),
            "multi-label options",
        ),
        (
            TrainConfig {
                threshold: 1.0,
                ..TrainConfig::default()
            },
            multi_label_data(8, 0),
            "threshold must be a probability",
        ),
    ] {
        let outputs = data.num_outputs();
        let model = if outputs == 3 {
            tiny_multi_label(0.0, Pooling::Cls, &device)
        } else {
            tiny_model(0.0, Pooling::Cls, &device)
        };
        let err = Trainer::new(config)
            .device(&device)
            .fit(model, &data)
            .err()
            .expect("must fail")
            .to_string();
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn a_multi_label_run_resumes_bit_for_bit() {
    let _serial = serial();
    assert_epoch_resume_replays(&multi_label_data(24, 8), |device| {
        tiny_multi_label(0.1, Pooling::Mean, device)
    });
}

#[test]
fn a_tiny_tagger_learns_tags_that_need_context() {
    let _serial = serial();
    let device = Device::flex();
    let data = tagged_data(96, 48);
    assert_eq!(data.task(), kiln_data::Task::Token);
    let config = TrainConfig {
        epochs: 8,
        batch_size: 8,
        lr: 3e-3,
        ..TrainConfig::default()
    };
    let outcome = Trainer::new(config)
        .device(&device)
        .fit(tiny_tagger(0.1, &device), &data)
        .unwrap();
    let scores: Vec<_> = outcome
        .epochs
        .iter()
        .map(|e| e.valid.as_ref().unwrap().token().unwrap().clone())
        .collect();
    let last = scores.last().unwrap();
    // The ignored pieces are not scored: [CLS], [SEP] and every token 14.
    let labelled: usize = data
        .valid
        .iter()
        .map(|e| e.target.tags().unwrap().iter().filter(|&&t| t >= 0).count())
        .sum();
    assert_eq!(last.tokens.examples, labelled as u64);
    assert!(
        last.accuracy() > 0.95,
        "token accuracy after 8 epochs: {last:?}"
    );
    let entities = last.entities.as_ref().expect("an IOB tag set has entities");
    assert!(entities.micro.f1 > 0.8, "entity F1: {entities:?}");
    let best = (0..scores.len())
        .max_by(|&a, &b| {
            scores[a]
                .accuracy()
                .total_cmp(&scores[b].accuracy())
                .then(b.cmp(&a))
        })
        .unwrap();
    assert_eq!(
        outcome.best_epoch,
        Some(best as u64 + 1),
        "selected by token accuracy"
    );
}

#[test]
fn a_tagging_batch_packed_or_split_in_shards_makes_the_one_padded_batch_step() {
    // Packed rows hold several sentences, their labels laid out as their pieces are; shards
    // hold different numbers of labelled pieces, so each shard's mean must be weighted by its
    // pieces, not its sentences, for the step to equal the whole padded batch's.
    let _serial = serial();
    let device = Device::flex();
    let data = TrainData {
        valid: Arc::new(Vec::new()),
        ..tagged_data(8, 0)
    };
    let run = |sampler: Sampler, shards: usize| {
        Trainer::new(TrainConfig {
            grad_clip: 0.5,
            batch_shards: shards,
            sampler,
            ..sgd(8, 1)
        })
        .device(&device)
        .fit(tiny_tagger(0.0, &device), &data)
        .unwrap()
    };
    let one = run(Sampler::Shuffled, 1);
    let start = values(&tiny_tagger(0.0, &device));
    for (sampler, n) in [
        (Sampler::Shuffled, 2),
        (Sampler::Shuffled, 3),
        (Sampler::Packed, 1),
        (Sampler::Packed, 2),
        (Sampler::Packed, 3),
    ] {
        let split = run(sampler, n);
        let (worst, moved) = gaps(&values(&one.model), &values(&split.model), &start);
        assert!(moved > 1e-3, "the step moved the weights ({moved})");
        assert!(
            worst < 1e-5,
            "{sampler:?} in {n} shards vs one padded: max abs diff {worst}"
        );
        let (a, b) = (one.epochs[0].train_loss, split.epochs[0].train_loss);
        assert!(
            (a - b).abs() < 1e-5,
            "batch loss {a} padded, {b} {sampler:?} in {n}"
        );
    }
}

#[test]
fn a_frozen_tagger_trains_its_head_on_cached_token_features_as_the_head_strategy_does() {
    // Without dropout, training the head on features computed once (frozen) and on features
    // recomputed every step (head) are the same computation.
    let _serial = serial();
    let device = Device::flex();
    let data = tagged_data(24, 8);
    let run = |kind| {
        let mut config = TrainConfig {
            epochs: 2,
            batch_size: 8,
            lr: 1e-2,
            batch_shards: 1,
            ..TrainConfig::default()
        };
        config.strategy.kind = kind;
        Trainer::new(config)
            .device(&device)
            .fit(tiny_tagger(0.0, &device), &data)
            .unwrap()
    };
    let frozen = run(kiln_train::StrategyKind::Frozen);
    let head = run(kiln_train::StrategyKind::Head);
    let losses = |o: &kiln_train::TrainOutcome<kiln_model::BertTokenClassifier>| {
        o.steps.iter().map(|s| s.loss).collect::<Vec<_>>()
    };
    for (a, b) in losses(&frozen).iter().zip(losses(&head)) {
        assert!((a - b).abs() < 1e-5, "frozen {a} vs head {b}");
    }
    let (worst, moved) = gaps(
        &values(&frozen.model),
        &values(&head.model),
        &values(&tiny_tagger(0.0, &device)),
    );
    assert!(
        moved > 1e-3 && worst < 1e-5,
        "moved {moved}, differ by {worst}"
    );
    let accuracy = |o: &kiln_train::TrainOutcome<kiln_model::BertTokenClassifier>| {
        o.epochs
            .last()
            .unwrap()
            .valid
            .as_ref()
            .unwrap()
            .token()
            .unwrap()
            .accuracy()
    };
    assert!((accuracy(&frozen) - accuracy(&head)).abs() < 1e-9);
}

#[test]
fn entity_options_are_checked_against_the_tag_set() {
    let _serial = serial();
    let device = Device::flex();
    let mut data = tagged_data(8, 0);
    data.labels = vec!["DT".into(), "NN".into(), "VB".into()];
    let err = Trainer::new(TrainConfig {
        metric: Some(kiln_train::SelectionMetric::EntityF1),
        ..TrainConfig::default()
    })
    .device(&device)
    .fit(tiny_tagger(0.0, &device), &data)
    .err()
    .expect("must fail")
    .to_string();
    assert!(err.contains("entity-f1 needs an entity tag set"), "{err}");

    // Strict mode needs every training tag to fit the scheme (BILOU's U- does not fit IOB2).
    data.labels = vec!["B-PER".into(), "O".into(), "U-PER".into()];
    let err = Trainer::new(TrainConfig {
        strict_entities: true,
        ..TrainConfig::default()
    })
    .device(&device)
    .fit(tiny_tagger(0.0, &device), &data)
    .err()
    .expect("must fail")
    .to_string();
    assert!(
        err.contains("strict_entities") && err.contains("`U-PER`"),
        "{err}"
    );
}

#[test]
fn a_tagging_run_resumes_bit_for_bit() {
    let _serial = serial();
    assert_epoch_resume_replays(&tagged_data(24, 8), |device| tiny_tagger(0.1, device));
}
