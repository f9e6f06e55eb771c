//! Seeded train / valid / test splits, stratified by label.
//!
//! Each label's examples are shuffled with their own ChaCha8 stream, keyed by `(seed, label)`,
//! so a label's split does not depend on which other labels exist or in what order they come,
//! and the same seed gives the same split on every machine (ChaCha8 is portable; the `rand`
//! version is pinned by `Cargo.lock`).
//!
//! Small labels: every label keeps at least one example in train. With the default 10 % / 10 %
//! a label needs 5 examples before anything of it is held out (`round(4 × 0.1) = 0`); smaller
//! labels go to train entirely, so valid/test may miss a rare label. That is deliberate: a label
//! the model never trains on cannot be learned, while a missing evaluation label only makes the
//! metrics blind to it.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::DataError;

/// Shares of the data held out for validation and testing; the rest is training data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitRatios {
    pub valid: f64,
    pub test: f64,
}

impl Default for SplitRatios {
    fn default() -> Self {
        Self {
            valid: 0.1,
            test: 0.1,
        }
    }
}

impl SplitRatios {
    /// Each ratio finite and in `[0, 1)`, and their sum below 1 (something must be left to
    /// train on).
    pub fn validate(&self) -> Result<(), DataError> {
        check_ratio("valid_ratio", self.valid)?;
        check_ratio("test_ratio", self.test)?;
        if self.valid + self.test >= 1.0 {
            return Err(DataError::Invalid {
                what: "valid_ratio + test_ratio".into(),
                message: format!(
                    "valid ({}) + test ({}) must be below 1, or nothing is left to train on",
                    self.valid, self.test
                ),
            });
        }
        Ok(())
    }
}

fn check_ratio(what: &str, ratio: f64) -> Result<(), DataError> {
    if ratio.is_finite() && (0.0..1.0).contains(&ratio) {
        Ok(())
    } else {
        Err(DataError::Invalid {
            what: what.into(),
            message: format!("{ratio} is not a ratio in [0, 1)"),
        })
    }
}

/// The three parts of a split, each in the items' original order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split<T> {
    pub train: Vec<T>,
    pub valid: Vec<T>,
    pub test: Vec<T>,
}

/// Seeded split stratified by label: within each label, shuffle that label's indices with a
/// stream keyed by `(seed, label)`, then take `round(n_label × test)` for test, then
/// `round(n_label × valid)` for valid, and the rest for train (but at least one example, see
/// the module docs). Each output keeps the items' original order, so the result does not depend
/// on label order.
pub fn stratified_split<T: Clone>(
    items: &[T],
    label_of: impl Fn(&T) -> usize,
    ratios: SplitRatios,
    seed: u64,
) -> Result<Split<T>, DataError> {
    ratios.validate()?;
    let [train, valid, test] = split_indices(items, label_of, [ratios.valid, ratios.test], seed);
    Ok(Split {
        train: pick(items, train),
        valid: pick(items, valid),
        test: pick(items, test),
    })
}

/// Only one held-out set needed (the user gave `--valid` but not `--test`, or vice versa):
/// returns `(train, held_out)`. The ratio must be finite and in `[0, 1)`; the error names
/// `--valid-ratio/--test-ratio` since this function cannot know which one the caller passed.
pub fn stratified_holdout<T: Clone>(
    items: &[T],
    label_of: impl Fn(&T) -> usize,
    ratio: f64,
    seed: u64,
) -> Result<(Vec<T>, Vec<T>), DataError> {
    check_ratio("valid_ratio + test_ratio", ratio)?;
    let [train, held_out, _] = split_indices(items, label_of, [ratio, 0.0], seed);
    Ok((pick(items, train), pick(items, held_out)))
}

fn pick<T: Clone>(items: &[T], indices: Vec<usize>) -> Vec<T> {
    indices.into_iter().map(|i| items[i].clone()).collect()
}

/// Sorted `[train, valid, test]` index lists; `ratios` is `[valid, test]`, already validated.
fn split_indices<T>(
    items: &[T],
    label_of: impl Fn(&T) -> usize,
    [valid_ratio, test_ratio]: [f64; 2],
    seed: u64,
) -> [Vec<usize>; 3] {
    // BTreeMap, not HashMap: iteration order must not depend on a per-process hash seed.
    let mut by_label: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        by_label.entry(label_of(item)).or_default().push(i);
    }
    let (mut train, mut valid, mut test) = (Vec::new(), Vec::new(), Vec::new());
    for (label, mut indices) in by_label {
        indices.shuffle(&mut label_rng(seed, label));
        let (n_valid, n_test) = held_out_counts(indices.len(), valid_ratio, test_ratio);
        test.extend_from_slice(&indices[..n_test]);
        valid.extend_from_slice(&indices[n_test..n_test + n_valid]);
        train.extend_from_slice(&indices[n_test + n_valid..]);
    }
    for part in [&mut train, &mut valid, &mut test] {
        part.sort_unstable();
    }
    [train, valid, test]
}

/// `(round(n × valid), round(n × test))`, with one taken back when that would leave nothing
/// for train. Since `valid + test < 1` each count is at most half an example above its target,
/// the sum exceeds `n - 1` only by one, and the count taken back is one that was rounded up,
/// so both stay within one example of `n × ratio`.
fn held_out_counts(n: usize, valid: f64, test: f64) -> (usize, usize) {
    let (target_valid, target_test) = (n as f64 * valid, n as f64 * test);
    // `as` saturates; the targets are in [0, n), so this is exact.
    let (mut n_valid, mut n_test) = (target_valid.round() as usize, target_test.round() as usize);
    // Runs at most once in exact arithmetic; a loop so that float rounding at the edges can
    // never leave `n_valid + n_test > n` (which would slice out of bounds).
    while n > 0 && n_valid + n_test >= n {
        // Take back from whichever was rounded up more (valid on a tie: test is the rarer,
        // more valuable set when both are asked for).
        if n_valid > 0
            && (n_test == 0 || n_valid as f64 - target_valid >= n_test as f64 - target_test)
        {
            n_valid -= 1;
        } else {
            n_test -= 1;
        }
    }
    (n_valid, n_test)
}

/// Seeded split of multi-label items by iterative stratification (Sechidis, Tsoumakas and
/// Vlahavas 2011, the algorithm of scikit-multilearn's `iterative_train_test_split`): each
/// part's share of every label's examples is as close to its ratio as the label sets allow,
/// rarest labels placed first. Outputs keep the items' original order.
pub fn iterative_split<T: Clone>(
    items: &[T],
    labels_of: impl Fn(&T) -> Vec<usize>,
    ratios: SplitRatios,
    seed: u64,
) -> Result<Split<T>, DataError> {
    ratios.validate()?;
    let sets: Vec<Vec<usize>> = items.iter().map(labels_of).collect();
    let [train, valid, test] = iterative_indices(&sets, [ratios.valid, ratios.test], seed);
    Ok(Split {
        train: pick(items, train),
        valid: pick(items, valid),
        test: pick(items, test),
    })
}

/// [`iterative_split`] with one held-out part: `(train, held_out)`.
pub fn iterative_holdout<T: Clone>(
    items: &[T],
    labels_of: impl Fn(&T) -> Vec<usize>,
    ratio: f64,
    seed: u64,
) -> Result<(Vec<T>, Vec<T>), DataError> {
    check_ratio("valid_ratio + test_ratio", ratio)?;
    let sets: Vec<Vec<usize>> = items.iter().map(labels_of).collect();
    let [train, held_out, _] = iterative_indices(&sets, [ratio, 0.0], seed);
    Ok((pick(items, train), pick(items, held_out)))
}

/// Sorted `[train, valid, test]` index lists of iterative stratification.
fn iterative_indices(sets: &[Vec<usize>], [valid, test]: [f64; 2], seed: u64) -> [Vec<usize>; 3] {
    let shares = [1.0 - valid - test, valid, test];
    let labels = sets
        .iter()
        .flat_map(|s| s.iter())
        .max()
        .map_or(0, |m| m + 1);
    let mut count = vec![0usize; labels];
    for set in sets {
        for &l in set {
            count[l] += 1;
        }
    }
    // What each part still wants: in total, and of each label.
    let n = sets.len() as f64;
    let mut want_total: Vec<f64> = shares.iter().map(|r| r * n).collect();
    let mut want: Vec<Vec<f64>> = shares
        .iter()
        .map(|r| count.iter().map(|&c| c as f64 * r).collect())
        .collect();
    let mut rng = label_rng(seed, usize::MAX);
    let mut left: Vec<usize> = (0..sets.len()).collect();
    left.shuffle(&mut rng);
    let mut remaining = count.clone();
    let mut parts: [Vec<usize>; 3] = Default::default();
    while !left.is_empty() {
        // The label with the fewest examples left (items without labels go last, by total).
        let label = (0..labels)
            .filter(|&l| remaining[l] > 0)
            .min_by_key(|&l| (remaining[l], l));
        let (take, keep): (Vec<usize>, Vec<usize>) = match label {
            Some(l) => left.iter().partition(|&&i| sets[i].contains(&l)),
            None => (std::mem::take(&mut left), Vec::new()),
        };
        left = keep;
        for i in take {
            let by_label = |p: usize| label.map_or(0.0, |l| want[p][l]);
            // The part that wants this label most, then wants most in all; then the first
            // (train) — deterministic, the shuffle above already randomised the order.
            let part = (0..3)
                .filter(|&p| shares[p] > 0.0)
                .max_by(|&a, &b| {
                    by_label(a)
                        .total_cmp(&by_label(b))
                        .then(want_total[a].total_cmp(&want_total[b]))
                        .then(b.cmp(&a))
                })
                .unwrap_or(0);
            parts[part].push(i);
            want_total[part] -= 1.0;
            for &l in &sets[i] {
                want[part][l] -= 1.0;
                remaining[l] -= 1;
            }
        }
    }
    for part in &mut parts {
        part.sort_unstable();
    }
    parts
}

/// A ChaCha8 stream keyed by `(seed, label)`: the 256-bit key holds both verbatim plus a
/// domain tag, so no two labels (nor this and the other seeded parts of kiln-data) share a
/// stream.
fn label_rng(seed: u64, label: usize) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(label as u64).to_le_bytes());
    key[24..].copy_from_slice(b"split\0\0\0");
    ChaCha8Rng::from_seed(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn iterative_stratification_gives_each_part_its_share_of_every_label() {
        // 400 items over 6 labels, one to three labels each, label 5 rare (20 items).
        let sets: Vec<Vec<usize>> = (0..400)
            .map(|i| {
                let mut s = vec![i % 5];
                if i % 3 == 0 {
                    s.push((i / 3) % 5);
                }
                if i % 20 == 0 {
                    s.push(5);
                }
                s.sort_unstable();
                s.dedup();
                s
            })
            .collect();
        let items: Vec<(usize, Vec<usize>)> = sets.iter().cloned().enumerate().collect();
        let ratios = SplitRatios::default();
        let split = iterative_split(&items, |(_, s)| s.clone(), ratios, 42).unwrap();
        let again = iterative_split(&items, |(_, s)| s.clone(), ratios, 42).unwrap();
        assert_eq!(split, again, "same seed, same split");
        let mut all: Vec<usize> = [&split.train, &split.valid, &split.test]
            .iter()
            .flat_map(|p| p.iter().map(|(i, _)| *i))
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..400).collect::<Vec<_>>(), "a partition");
        assert!(
            (split.test.len() as i64 - 40).abs() <= 2,
            "{}",
            split.test.len()
        );
        assert!(
            (split.valid.len() as i64 - 40).abs() <= 2,
            "{}",
            split.valid.len()
        );
        for label in 0..6 {
            let of = |part: &[(usize, Vec<usize>)]| {
                part.iter().filter(|(_, s)| s.contains(&label)).count()
            };
            let total = of(&items) as f64;
            for part in [&split.valid, &split.test] {
                let share = of(part) as f64 / total;
                assert!(
                    (share - 0.1).abs() <= 0.051,
                    "label {label}: {share} of its examples"
                );
            }
        }
        let other = iterative_split(&items, |(_, s)| s.clone(), ratios, 7).unwrap();
        assert_ne!(split.test, other.test, "another seed, another split");
    }

    fn labels(counts: &[usize]) -> Vec<usize> {
        // Interleaved, so original order != label order.
        let mut out = Vec::new();
        let max = counts.iter().copied().max().unwrap_or(0);
        for i in 0..max {
            for (label, &c) in counts.iter().enumerate() {
                if i < c {
                    out.push(label);
                }
            }
        }
        out
    }

    /// Items are `(index, label)` so that membership can be checked exactly.
    fn items(labels: &[usize]) -> Vec<(usize, usize)> {
        labels.iter().copied().enumerate().collect()
    }

    fn check_partition(items: &[(usize, usize)], split: &Split<(usize, usize)>) {
        let mut seen: Vec<usize> = split
            .train
            .iter()
            .chain(&split.valid)
            .chain(&split.test)
            .map(|&(i, _)| i)
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..items.len()).collect::<Vec<_>>());
        for part in [&split.train, &split.valid, &split.test] {
            assert!(
                part.windows(2).all(|w| w[0].0 < w[1].0),
                "original order kept"
            );
        }
    }

    fn count(part: &[(usize, usize)], label: usize) -> usize {
        part.iter().filter(|&&(_, l)| l == label).count()
    }

    #[test]
    fn partition_and_proportions() {
        let counts = [100, 37, 5, 1, 2, 13];
        let items = items(&labels(&counts));
        let ratios = SplitRatios {
            valid: 0.15,
            test: 0.2,
        };
        let split = stratified_split(&items, |x| x.1, ratios, 7).unwrap();
        check_partition(&items, &split);
        for (label, &n) in counts.iter().enumerate() {
            let n = n as f64;
            assert!((count(&split.valid, label) as f64 - n * 0.15).abs() <= 1.0);
            assert!((count(&split.test, label) as f64 - n * 0.2).abs() <= 1.0);
            assert!(count(&split.train, label) >= 1);
        }
        assert_eq!(count(&split.test, 0), 20);
        assert_eq!(count(&split.valid, 0), 15);
    }

    #[test]
    fn deterministic_per_seed() {
        let items = items(&labels(&[50, 30, 20]));
        let r = SplitRatios::default();
        let a = stratified_split(&items, |x| x.1, r, 1).unwrap();
        let b = stratified_split(&items, |x| x.1, r, 1).unwrap();
        let c = stratified_split(&items, |x| x.1, r, 2).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn independent_of_item_order() {
        // The same items listed label by label vs interleaved pick the same members.
        let mut sorted = labels(&[20, 20, 20]);
        sorted.sort();
        let interleaved = labels(&[20, 20, 20]);
        // Rank within label identifies an item regardless of position.
        let keyed = |ls: &[usize]| -> Vec<(usize, usize)> {
            let mut seen = [0usize; 3];
            ls.iter()
                .map(|&l| {
                    seen[l] += 1;
                    (seen[l] * 10 + l, l)
                })
                .collect()
        };
        let mut a = stratified_split(&keyed(&sorted), |x| x.1, SplitRatios::default(), 3)
            .unwrap()
            .test;
        let mut b = stratified_split(&keyed(&interleaved), |x| x.1, SplitRatios::default(), 3)
            .unwrap()
            .test;
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    #[test]
    fn tiny_labels_go_to_train() {
        let items = items(&[0, 1, 1, 2, 2, 2, 2]);
        let ratios = SplitRatios {
            valid: 0.3,
            test: 0.3,
        };
        let split = stratified_split(&items, |x| x.1, ratios, 0).unwrap();
        check_partition(&items, &split);
        assert_eq!(count(&split.train, 0), 1);
        assert!(count(&split.train, 1) >= 1);
        assert!(count(&split.train, 2) >= 1);
        // Default ratios: nothing of a label below 5 examples is held out.
        let split = stratified_split(&items, |x| x.1, SplitRatios::default(), 0).unwrap();
        assert_eq!(split.train.len(), items.len());
        // Empty input.
        let empty: Vec<(usize, usize)> = Vec::new();
        let split = stratified_split(&empty, |x| x.1, SplitRatios::default(), 0).unwrap();
        assert!(split.train.is_empty() && split.valid.is_empty() && split.test.is_empty());
    }

    #[test]
    fn holdout() {
        let items = items(&labels(&[40, 10]));
        let (train, held) = stratified_holdout(&items, |x| x.1, 0.25, 9).unwrap();
        assert_eq!(train.len() + held.len(), 50);
        assert_eq!(count(&held, 0), 10);
        assert_eq!(count(&held, 1), 3); // round(2.5) = 3
        assert_eq!(
            (train, held),
            stratified_holdout(&items, |x| x.1, 0.25, 9).unwrap()
        );
        assert!(stratified_holdout(&items, |x| x.1, 1.0, 9).is_err());
    }

    #[test]
    fn bad_ratios() {
        let items = items(&[0, 1]);
        let bad = [
            (f64::NAN, 0.1, "valid_ratio"),
            (0.1, -0.1, "test_ratio"),
            (1.0, 0.0, "valid_ratio"),
            (0.1, f64::INFINITY, "test_ratio"),
            (0.5, 0.5, "valid_ratio + test_ratio"),
        ];
        for (valid, test, name) in bad {
            match stratified_split(&items, |x| x.1, SplitRatios { valid, test }, 0) {
                Err(DataError::Invalid { what, .. }) => assert_eq!(what, name),
                other => panic!("{valid}/{test}: {other:?}"),
            }
        }
        let none_held_out = SplitRatios {
            valid: 0.0,
            test: 0.0,
        };
        let split = stratified_split(&items, |x| x.1, none_held_out, 0).unwrap();
        assert_eq!(split.train, items);
    }

    proptest! {
        #[test]
        fn prop_partition(
            labels in proptest::collection::vec(0usize..6, 0..300),
            valid in 0.0f64..0.5,
            test in 0.0f64..0.49,
            seed: u64,
        ) {
            let items = items(&labels);
            let ratios = SplitRatios { valid, test };
            let split = stratified_split(&items, |x| x.1, ratios, seed).unwrap();
            check_partition(&items, &split);
            for label in 0..6 {
                let n = count(&items, label);
                if n == 0 {
                    continue;
                }
                prop_assert!(count(&split.train, label) >= 1);
                prop_assert!((count(&split.valid, label) as f64 - n as f64 * valid).abs() <= 1.0);
                prop_assert!((count(&split.test, label) as f64 - n as f64 * test).abs() <= 1.0);
            }
            let again = stratified_split(&items, |x| x.1, ratios, seed).unwrap();
            prop_assert_eq!(split, again);
        }
    }
}
