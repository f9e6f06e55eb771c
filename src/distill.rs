//! Knowledge distillation around the trainer: the teacher's logits over the training set,
//! computed once and cached on disk, keyed by the teacher's weights and the exact token ids, so
//! the teacher never runs twice on the same text and a stale cache is never reused.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::prelude::*;
use sha2::{Digest, Sha256};

use kiln_data::pipeline::EncodedExample;
use kiln_model::SequenceClassifier;
use kiln_train::evaluate::{predict_logits, timed_predict_logits};

/// Where cached teacher logits live: `CACHE/teacher-logits/KEY.f32`.
pub fn cache_root() -> PathBuf {
    crate::fetch::cache_dir().join("teacher-logits")
}

/// The cache key: the teacher's files (config and weights) and every example's token ids.
pub fn cache_key(teacher_dir: &Path, examples: &[EncodedExample]) -> Result<String> {
    let mut hasher = Sha256::new();
    for name in ["config.json", "model.safetensors", "pytorch_model.bin"] {
        let path = teacher_dir.join(name);
        if path.is_file() {
            hasher.update(name.as_bytes());
            hasher.update(crate::fetch::sha256_file(&path)?.as_bytes());
        }
    }
    hasher.update((examples.len() as u64).to_le_bytes());
    for e in examples {
        hasher.update((e.encoding.input_ids.len() as u64).to_le_bytes());
        for (&id, &ty) in e.encoding.input_ids.iter().zip(&e.encoding.token_type_ids) {
            hasher.update(id.to_le_bytes());
            hasher.update(ty.to_le_bytes());
        }
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Teacher logits for `examples` (row-major `[n, labels]`) and whether they had to be computed
/// (false: read from the cache).
pub fn teacher_logits(
    teacher: &SequenceClassifier,
    teacher_dir: &Path,
    examples: &[EncodedExample],
    batch_size: usize,
    pad_id: u32,
    device: &Device,
    cache_root: &Path,
) -> Result<(Vec<f32>, bool)> {
    let key = cache_key(teacher_dir, examples)?;
    let path = cache_root.join(format!("{key}.f32"));
    let want = examples.len() * teacher.num_labels();
    if let Ok(bytes) = std::fs::read(&path) {
        if bytes.len() == want * 4 {
            let logits = bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            return Ok((logits, false));
        }
        eprintln!(
            "note: ignoring a teacher-logit cache of the wrong size: {}",
            path.display()
        );
    }
    let start = Instant::now();
    let logits = predict_logits(teacher, examples, batch_size, pad_id, device);
    eprintln!(
        "teacher logits for {} examples computed in {:.1}s (cached in {})",
        examples.len(),
        start.elapsed().as_secs_f64(),
        path.display()
    );
    std::fs::create_dir_all(cache_root)
        .with_context(|| format!("creating {}", cache_root.display()))?;
    let bytes: Vec<u8> = logits.iter().flat_map(|x| x.to_le_bytes()).collect();
    kiln_model::files::write_atomic(&path, &bytes)?;
    Ok((logits, true))
}

/// Inference throughput of `model` over `examples` (best of two passes), samples per second.
pub fn inference_speed<M: kiln_train::TaskModel>(
    model: &M,
    examples: &[EncodedExample],
    batch_size: usize,
    pad_id: u32,
    device: &Device,
) -> f64 {
    (0..2)
        .map(|_| {
            timed_predict_logits(model, examples, batch_size, pad_id, device)
                .1
                .samples_per_second
        })
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_data::Encoding;
    use kiln_model::{Checkpoint, HeadInit, Pooling};

    fn fixture() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-bert")
    }

    fn examples(shift: u32) -> Vec<EncodedExample> {
        (0..5)
            .map(|i| EncodedExample {
                encoding: Encoding {
                    input_ids: vec![2, 10 + i + shift, 20, 3],
                    token_type_ids: vec![0; 4],
                    truncated: false,
                },
                target: kiln_data::Target::Class(i as usize % 3),
            })
            .collect()
    }

    #[test]
    fn the_teacher_runs_once_and_a_changed_teacher_or_data_recomputes() {
        let device = Device::flex();
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        let (teacher, _) = Checkpoint::open(fixture())
            .unwrap()
            .load_sequence_classifier(HeadInit::FromCheckpoint, Pooling::Cls, &device)
            .unwrap();
        let data = examples(0);
        let (first, computed) =
            teacher_logits(&teacher, &fixture(), &data, 4, 0, &device, &cache).unwrap();
        assert!(computed);
        assert_eq!(first.len(), 5 * 3);
        let (again, computed) =
            teacher_logits(&teacher, &fixture(), &data, 4, 0, &device, &cache).unwrap();
        assert!(!computed, "the second call reads the cache");
        assert_eq!(first, again);
        // Other token ids: another key.
        let (_, computed) =
            teacher_logits(&teacher, &fixture(), &examples(1), 4, 0, &device, &cache).unwrap();
        assert!(computed);
        // Another teacher (a copy whose weights differ by one byte): another key.
        let other = tmp.path().join("teacher2");
        std::fs::create_dir_all(&other).unwrap();
        for f in ["config.json", "tokenizer.json"] {
            std::fs::copy(fixture().join(f), other.join(f)).unwrap();
        }
        let mut weights = std::fs::read(fixture().join("model.safetensors")).unwrap();
        let last = weights.len() - 1;
        weights[last] ^= 1;
        std::fs::write(other.join("model.safetensors"), weights).unwrap();
        let (_, computed) = teacher_logits(&teacher, &other, &data, 4, 0, &device, &cache).unwrap();
        assert!(computed, "a changed teacher never reuses the old logits");
        // The cached logits equal a direct forward pass.
        let direct = predict_logits(&teacher, &data, 2, 0, &device);
        assert_eq!(first, direct);
    }
}
