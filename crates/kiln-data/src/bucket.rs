//! A seeded batch sampler that groups examples of similar length, so that dynamic padding
//! (pad each batch to its longest example) wastes little compute, without biasing what the
//! model sees.
//!
//! Bucketing is the "sortish" sampler of fairseq / Hugging Face's `group_by_length`: each epoch
//!
//! 1. shuffle all indices;
//! 2. cut the shuffled order into mega-chunks of [`MEGA_CHUNK_BATCHES`] batches' worth of
//!    examples (`50 × batch size` examples, or with a token budget, examples until their tokens
//!    add up to `50 × budget`);
//! 3. sort each mega-chunk by length (stable, so ties keep the shuffled order);
//! 4. cut each sorted mega-chunk into batches;
//! 5. shuffle the order of all batches.
//!
//! Sorting only within a random mega-chunk keeps batch membership random (an example's
//! neighbours change every epoch) while lengths inside a batch are close; shuffling the batch
//! order keeps short and long batches from arriving in a fixed pattern. A global sort would pad
//! even less but give the same batches every epoch.
//!
//! Every epoch is a pure function of `(seed, epoch)`: a run resumed at epoch `e` sees exactly
//! the batches an uninterrupted run would have.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::DataError;

/// How training batches are formed from the examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Sampler {
    /// Shuffled batches packed several examples to a row, each seeing only itself: what
    /// `shuffled` computes, with next to no padding (`TokenBatch::pack`).
    #[default]
    Packed,
    /// Similar lengths batched together within mega-chunks (fairseq / HF's group_by_length):
    /// little padding, but batches share whatever goes with length (on some data, the label).
    Bucketed,
    /// Plain shuffled batches, padded to each batch's longest example.
    Shuffled,
}

impl Sampler {
    /// Whether the batch plan groups examples by length.
    pub fn bucketing(self) -> bool {
        self == Self::Bucketed
    }
}

impl std::str::FromStr for Sampler {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "packed" => Ok(Self::Packed),
            "bucketed" => Ok(Self::Bucketed),
            "shuffled" => Ok(Self::Shuffled),
            other => Err(format!(
                "unknown sampler `{other}` (expected packed, bucketed or shuffled)"
            )),
        }
    }
}

/// How many batches' worth of examples one mega-chunk holds. Larger → less padding but
/// batches that look more alike from epoch to epoch; 50 is the usual choice (fairseq, HF).
pub const MEGA_CHUNK_BATCHES: usize = 50;

/// How big a batch may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    /// A fixed number of examples (the last batch may be smaller).
    Examples(usize),
    /// A token budget: a batch's `longest length × number of examples` — the size of its padded
    /// tensor — stays within the budget. A single example longer than the budget still forms a
    /// batch of its own rather than being dropped. Lengths of 0 count as 1 so that a budget
    /// always bounds the number of examples.
    Tokens(usize),
}

/// Seeded, optionally length-bucketing batch sampler over example indices.
#[derive(Debug, Clone)]
pub struct BucketSampler {
    lengths: Vec<usize>,
    batch: BatchSize,
    bucketing: bool,
    seed: u64,
    /// Batches' worth of examples per mega-chunk (bucketing only).
    chunk_batches: usize,
}

impl BucketSampler {
    /// `lengths[i]` is the token length of example `i`. With `bucketing = false` an epoch is a
    /// plain seeded shuffle cut into batches. A batch size or token budget of 0 is an error.
    pub fn new(
        lengths: Vec<usize>,
        batch: BatchSize,
        bucketing: bool,
        seed: u64,
    ) -> Result<Self, DataError> {
        match batch {
            BatchSize::Examples(0) => Err(DataError::Invalid {
                what: "batch_size".into(),
                message: "must be at least 1".into(),
            }),
            BatchSize::Tokens(0) => Err(DataError::Invalid {
                what: "token_budget".into(),
                message: "must be at least 1".into(),
            }),
            _ => Ok(Self {
                lengths,
                batch,
                bucketing,
                seed,
                chunk_batches: MEGA_CHUNK_BATCHES,
            }),
        }
    }

    /// Sorts within mega-chunks of `n` batches' worth of examples instead of
    /// [`MEGA_CHUNK_BATCHES`]: smaller chunks pad more but draw each batch's members from fewer
    /// length-sorted neighbours, so batches depend less on length (and on whatever correlates
    /// with it, such as the label). 1 is a plain shuffle; 0 is taken as 1.
    pub fn with_chunk_batches(mut self, n: usize) -> Self {
        self.chunk_batches = n.max(1);
        self
    }

    /// Number of examples sampled from.
    pub fn num_examples(&self) -> usize {
        self.lengths.len()
    }

    /// The batches (lists of example indices) of epoch `epoch`; every index appears exactly
    /// once. A pure function of `(seed, epoch)`.
    pub fn epoch(&self, epoch: u64) -> Vec<Vec<usize>> {
        let mut rng = epoch_rng(self.seed, epoch);
        let mut order: Vec<usize> = (0..self.lengths.len()).collect();
        order.shuffle(&mut rng);
        if !self.bucketing {
            // Already in random order: no need to shuffle the batches again.
            return self.cut(&order);
        }
        let mut batches = Vec::new();
        for mut chunk in self.mega_chunks(&order) {
            chunk.sort_by_key(|&i| self.lengths[i]); // stable: ties keep the shuffled order
            batches.extend(self.cut(&chunk));
        }
        batches.shuffle(&mut rng);
        batches
    }

    /// Number of batches in epoch `epoch`. With a fixed batch size this is `ceil(n / size)` in
    /// every epoch (mega-chunks are whole multiples of the batch size); with a token budget it
    /// depends on how the epoch's examples fall together, so the epoch is computed.
    pub fn num_batches(&self, epoch: u64) -> usize {
        match self.batch {
            BatchSize::Examples(size) => self.lengths.len().div_ceil(size),
            BatchSize::Tokens(_) => self.epoch(epoch).len(),
        }
    }

    fn cost(&self, i: usize) -> usize {
        self.lengths[i].max(1)
    }

    /// Consecutive runs of `order` of one mega-chunk each.
    fn mega_chunks(&self, order: &[usize]) -> Vec<Vec<usize>> {
        match self.batch {
            BatchSize::Examples(size) => order
                .chunks(size.saturating_mul(self.chunk_batches))
                .map(<[usize]>::to_vec)
                .collect(),
            BatchSize::Tokens(budget) => {
                let target = budget.saturating_mul(self.chunk_batches);
                let mut chunks = Vec::new();
                let mut chunk = Vec::new();
                let mut tokens = 0usize;
                for &i in order {
                    chunk.push(i);
                    tokens = tokens.saturating_add(self.cost(i));
                    if tokens >= target {
                        chunks.push(std::mem::take(&mut chunk));
                        tokens = 0;
                    }
                }
                if !chunk.is_empty() {
                    chunks.push(chunk);
                }
                chunks
            }
        }
    }

    /// Cuts `order` into batches, keeping its order.
    fn cut(&self, order: &[usize]) -> Vec<Vec<usize>> {
        match self.batch {
            BatchSize::Examples(size) => order.chunks(size).map(<[usize]>::to_vec).collect(),
            BatchSize::Tokens(budget) => {
                let mut batches = Vec::new();
                let mut batch: Vec<usize> = Vec::new();
                let mut longest = 0usize;
                for &i in order {
                    let len = self.cost(i);
                    let new_longest = longest.max(len);
                    // An empty batch always takes the example, so an over-long one stands alone.
                    if !batch.is_empty() && new_longest.saturating_mul(batch.len() + 1) > budget {
                        batches.push(std::mem::take(&mut batch));
                        longest = len;
                    } else {
                        longest = new_longest;
                    }
                    batch.push(i);
                }
                if !batch.is_empty() {
                    batches.push(batch);
                }
                batches
            }
        }
    }
}

/// Padding share of a batch plan: padded tokens / total tokens when each batch pads to its
/// longest example, rounded up to a multiple of `pad_to_multiple` (0 or 1: no rounding).
/// 0 for an empty plan.
///
/// # Panics
///
/// If a batch holds an index out of range of `lengths` (a plan for other data).
pub fn padding_share(lengths: &[usize], batches: &[Vec<usize>], pad_to_multiple: usize) -> f64 {
    let multiple = pad_to_multiple.max(1);
    let (mut real, mut total) = (0u128, 0u128);
    for batch in batches {
        let longest = batch.iter().map(|&i| lengths[i]).max().unwrap_or(0);
        let padded = longest.div_ceil(multiple) * multiple;
        total += padded as u128 * batch.len() as u128;
        real += batch.iter().map(|&i| lengths[i] as u128).sum::<u128>();
    }
    if total == 0 {
        0.0
    } else {
        (total - real) as f64 / total as f64
    }
}

/// Padding share of a batch plan when each batch is packed (`TokenBatch::pack`): rows as long
/// as the batch's longest example, filled first-fit decreasing. 0 for an empty plan.
pub fn packed_padding_share(lengths: &[usize], batches: &[Vec<usize>]) -> f64 {
    let (mut real, mut total) = (0usize, 0usize);
    for batch in batches {
        let batch_lengths: Vec<usize> = batch.iter().map(|&i| lengths[i]).collect();
        let longest = batch_lengths.iter().copied().max().unwrap_or(0).max(1);
        let rows = crate::batch::pack_rows(&batch_lengths, longest).len();
        real += batch_lengths.iter().sum::<usize>();
        total += rows * longest;
    }
    if total == 0 {
        0.0
    } else {
        1.0 - real as f64 / total as f64
    }
}

/// How strongly a batch plan groups examples of the same label: the chance that two examples
/// of one batch share a label, averaged over batches (of two or more), divided by the same
/// chance for two examples drawn from the whole set. About 1 for random batches; above 1 when
/// batches are label-correlated (length bucketing on data whose length depends on the label).
/// 1 when it cannot be measured (no batch of two, or a single label).
pub fn label_concentration(labels: &[usize], batches: &[Vec<usize>]) -> f64 {
    let same_label_chance = |members: &mut dyn Iterator<Item = usize>| -> Option<f64> {
        let mut counts = std::collections::HashMap::<usize, u64>::new();
        let mut n = 0u64;
        for label in members {
            *counts.entry(label).or_default() += 1;
            n += 1;
        }
        (n >= 2).then(|| {
            counts.values().map(|&c| (c * (c - 1)) as f64).sum::<f64>() / (n * (n - 1)) as f64
        })
    };
    let Some(overall) =
        same_label_chance(&mut batches.iter().flatten().map(|&i| labels[i])).filter(|&p| p > 0.0)
    else {
        return 1.0;
    };
    let per_batch: Vec<f64> = batches
        .iter()
        .filter_map(|b| same_label_chance(&mut b.iter().map(|&i| labels[i])))
        .collect();
    if per_batch.is_empty() {
        return 1.0;
    }
    per_batch.iter().sum::<f64>() / per_batch.len() as f64 / overall
}

/// A ChaCha8 stream keyed by `(seed, epoch)` plus a domain tag, so that epochs (and the other
/// seeded parts of kiln-data) never share a stream.
fn epoch_rng(seed: u64, epoch: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&epoch.to_le_bytes());
    key[24..].copy_from_slice(b"bucket\0\0");
    ChaCha8Rng::from_seed(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::Rng;

    #[test]
    fn packed_padding_counts_rows_as_long_as_the_longest_example() {
        let lengths = [6, 14, 26, 7, 13, 15];
        // Rows 26 | 15+7 | 14+6 | 13: 4 rows of 26 slots for 81 tokens.
        let share = packed_padding_share(&lengths, &[vec![0, 1, 2, 3, 4, 5]]);
        assert!((share - 23.0 / 104.0).abs() < 1e-12, "{share}");
        assert_eq!(packed_padding_share(&lengths, &[]), 0.0);
    }

    fn check_plan(lengths: &[usize], batch: BatchSize, batches: &[Vec<usize>]) {
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..lengths.len()).collect::<Vec<_>>(),
            "each index once"
        );
        for b in batches {
            assert!(!b.is_empty());
            match batch {
                BatchSize::Examples(size) => assert!(b.len() <= size),
                BatchSize::Tokens(budget) => {
                    let longest = b.iter().map(|&i| lengths[i].max(1)).max().unwrap();
                    assert!(
                        longest * b.len() <= budget || b.len() == 1,
                        "batch {b:?} over budget {budget}"
                    );
                }
            }
        }
    }

    /// Long-tailed lengths like short movie snippets: most 10–40 tokens, a few up to 128.
    fn skewed_lengths(n: usize, seed: u64) -> Vec<usize> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                if rng.random_bool(0.9) {
                    rng.random_range(10..=40)
                } else {
                    rng.random_range(41..=128)
                }
            })
            .collect()
    }

    #[test]
    fn bucketing_cuts_padding() {
        let lengths = skewed_lengths(8000, 1);
        let plain = BucketSampler::new(lengths.clone(), BatchSize::Examples(32), false, 5).unwrap();
        let bucketed =
            BucketSampler::new(lengths.clone(), BatchSize::Examples(32), true, 5).unwrap();
        let p = padding_share(&lengths, &plain.epoch(0), 1);
        let b = padding_share(&lengths, &bucketed.epoch(0), 1);
        let b8 = padding_share(&lengths, &bucketed.epoch(0), 8);
        eprintln!("padding share: no bucketing {p:.3}, bucketing {b:.3} (pad to 8: {b8:.3})");
        assert!(b < p / 2.0, "bucketed {b} vs plain {p}");

        let plain = BucketSampler::new(lengths.clone(), BatchSize::Tokens(2048), false, 5).unwrap();
        let bucketed =
            BucketSampler::new(lengths.clone(), BatchSize::Tokens(2048), true, 5).unwrap();
        let p = padding_share(&lengths, &plain.epoch(0), 1);
        let b = padding_share(&lengths, &bucketed.epoch(0), 1);
        eprintln!(
            "token budget 2048: no bucketing {p:.3} in {} batches, bucketing {b:.3} in {} batches",
            plain.num_batches(0),
            bucketed.num_batches(0)
        );
        assert!(b < p / 2.0, "bucketed {b} vs plain {p}");
        assert!(bucketed.num_batches(0) < plain.num_batches(0));
    }

    #[test]
    fn deterministic_per_seed_and_epoch() {
        let lengths = skewed_lengths(1000, 2);
        for bucketing in [false, true] {
            for batch in [BatchSize::Examples(16), BatchSize::Tokens(1000)] {
                let s = BucketSampler::new(lengths.clone(), batch, bucketing, 11).unwrap();
                let again = BucketSampler::new(lengths.clone(), batch, bucketing, 11).unwrap();
                let other = BucketSampler::new(lengths.clone(), batch, bucketing, 12).unwrap();
                // Resuming at epoch 3 without having computed 0..3 gives the same batches.
                assert_eq!(s.epoch(3), again.epoch(3));
                assert_ne!(s.epoch(3), s.epoch(4));
                assert_ne!(s.epoch(3), other.epoch(3));
                assert_eq!(s.num_batches(3), s.epoch(3).len());
            }
        }
    }

    #[test]
    fn oversized_examples_stand_alone() {
        let lengths = vec![5, 500, 5, 5, 300, 0, 0];
        let s = BucketSampler::new(lengths.clone(), BatchSize::Tokens(100), true, 0).unwrap();
        let batches = s.epoch(0);
        check_plan(&lengths, BatchSize::Tokens(100), &batches);
        assert!(batches.contains(&vec![1]) && batches.contains(&vec![4]));
    }

    #[test]
    fn edge_cases() {
        assert!(BucketSampler::new(vec![1], BatchSize::Examples(0), true, 0).is_err());
        assert!(BucketSampler::new(vec![1], BatchSize::Tokens(0), true, 0).is_err());
        let empty = BucketSampler::new(vec![], BatchSize::Examples(4), true, 0).unwrap();
        assert!(empty.epoch(0).is_empty());
        assert_eq!(empty.num_batches(0), 0);
        let huge = BucketSampler::new(vec![3; 10], BatchSize::Examples(usize::MAX), true, 0);
        assert_eq!(huge.unwrap().epoch(0).len(), 1);
        let huge = BucketSampler::new(vec![3; 10], BatchSize::Tokens(usize::MAX), true, 0);
        assert_eq!(huge.unwrap().epoch(0).len(), 1);
        assert_eq!(padding_share(&[], &[], 8), 0.0);
        // One batch of lengths 3 and 5, padded to 8: 16 slots, 8 real.
        assert_eq!(padding_share(&[3, 5], &[vec![0, 1]], 8), 0.5);
        assert_eq!(padding_share(&[3, 5], &[vec![0, 1]], 0), 0.2);
    }

    #[test]
    fn label_concentration_measures_label_correlated_batches() {
        // Two labels, 50 each: batches of one label are twice as "pure" as the set.
        let labels: Vec<usize> = (0..100).map(|i| i / 50).collect();
        let sorted: Vec<Vec<usize>> = (0..100)
            .collect::<Vec<_>>()
            .chunks(10)
            .map(<[usize]>::to_vec)
            .collect();
        let ratio = label_concentration(&labels, &sorted);
        assert!((ratio - 1.0 / (4900.0 / 9900.0)).abs() < 1e-12, "{ratio}");
        // Each batch half and half: below 1.
        let mixed: Vec<Vec<usize>> = (0..10)
            .map(|b| (0..5).flat_map(|k| [b * 5 + k, 50 + b * 5 + k]).collect())
            .collect();
        assert!(label_concentration(&labels, &mixed) < 1.0);
        assert_eq!(
            label_concentration(&[0, 0, 0], &[vec![0, 1, 2]]),
            1.0,
            "one label: nothing to measure"
        );
        assert_eq!(label_concentration(&labels, &[]), 1.0);
    }

    #[test]
    fn smaller_mega_chunks_make_batches_less_label_correlated() {
        // Length decides the label (short utterances of one intent, long of another…): eight
        // labels whose lengths overlap only partly, as in intent data.
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let labels: Vec<usize> = (0..4000).map(|i| i % 8).collect();
        let lengths: Vec<usize> = labels
            .iter()
            .map(|&l| 6 + 2 * l + rng.random_range(0..6))
            .collect();
        let concentration = |sampler: BucketSampler| {
            (0..3)
                .map(|e| label_concentration(&labels, &sampler.epoch(e)))
                .sum::<f64>()
                / 3.0
        };
        let sampler = |bucketing| {
            BucketSampler::new(lengths.clone(), BatchSize::Examples(32), bucketing, 1).unwrap()
        };
        let shuffled = concentration(sampler(false));
        let (c50, c8, c2) = (
            concentration(sampler(true)),
            concentration(sampler(true).with_chunk_batches(8)),
            concentration(sampler(true).with_chunk_batches(2)),
        );
        assert!((shuffled - 1.0).abs() < 0.1, "random batches: {shuffled}");
        assert!(
            c50 > 2.0 && c50 > c8 && c8 > c2 && c2 > shuffled,
            "{c50} > {c8} > {c2} > {shuffled}"
        );
    }

    fn batch_size() -> impl Strategy<Value = BatchSize> {
        prop_oneof![
            (1usize..70).prop_map(BatchSize::Examples),
            (1usize..3000).prop_map(BatchSize::Tokens),
        ]
    }

    proptest! {
        #[test]
        fn prop_every_index_once(
            lengths in proptest::collection::vec(0usize..300, 0..600),
            batch in batch_size(),
            bucketing: bool,
            seed: u64,
            epoch in 0u64..1000,
            chunk in 0usize..60,
        ) {
            let s = BucketSampler::new(lengths.clone(), batch, bucketing, seed).unwrap().with_chunk_batches(chunk);
            let batches = s.epoch(epoch);
            check_plan(&lengths, batch, &batches);
            prop_assert_eq!(s.num_batches(epoch), batches.len());
            prop_assert_eq!(batches, s.epoch(epoch));
        }
    }
}
