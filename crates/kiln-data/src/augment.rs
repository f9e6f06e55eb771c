//! Seeded text augmentation for the training split (EDA-style word operations plus whole-word
//! masking). Off by default; labels are always preserved.
//!
//! The operations work on whitespace-separated words, applied in this order:
//!
//! 1. **delete**: each word is dropped with probability `p`; if every word would go, one
//!    random word is kept, so a non-empty text never becomes empty;
//! 2. **swap**: `max(1, round(p × words))` swaps of two distinct random positions (when
//!    `p > 0` and there are at least two words);
//! 3. **insert**: `round(p × words)` insertions of a random word *of the same text* at a random
//!    position (EDA inserts synonyms; without a thesaurus, words already in the text are the
//!    label-safe choice);
//! 4. **mask**: each word is replaced by the mask token (e.g. `[MASK]`) with probability `p`.
//!    This masks *whole words*, not WordPiece sub-tokens: the tokenizer maps the mask string
//!    to its single mask id, so a word that would have been several pieces becomes one
//!    `[MASK]`.
//!
//! An augmented text is its words joined by single spaces (runs of whitespace and newlines
//! collapse). Sentence pairs have both texts augmented independently.
//!
//! Every augmented copy is a function of `(seed, example index, copy index)` alone, so the
//! result does not depend on iteration order, threads, or how many copies are asked for.

use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::example::Example;

/// Probabilities of the four operations and how many augmented copies to make of each
/// example. The default is off (all 0, one copy).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    pub delete: f64,
    pub swap: f64,
    pub insert: f64,
    pub mask: f64,
    /// Augmented copies per example (`--augment-copies`; not part of the `--augment` string).
    pub copies: usize,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            delete: 0.0,
            swap: 0.0,
            insert: 0.0,
            mask: 0.0,
            copies: 1,
        }
    }
}

impl AugmentConfig {
    /// True when augmenting would add nothing new: no copies, or every probability 0.
    pub fn is_off(&self) -> bool {
        self.copies == 0
            || (self.delete == 0.0 && self.swap == 0.0 && self.insert == 0.0 && self.mask == 0.0)
    }
}

const KEYS: &str = "delete, swap, insert, mask";

fn invalid(message: String) -> DataError {
    DataError::Invalid {
        what: "augment".into(),
        message,
    }
}

/// Parses `delete=0.1,swap=0.1,insert=0.1,mask=0.15`: any subset of the keys, in any order,
/// each at most once, each a probability in `[0, 1]`; spaces around items are ignored and an
/// empty string means off. `copies` stays 1 (it is set from `--augment-copies`).
impl FromStr for AugmentConfig {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, DataError> {
        let mut config = AugmentConfig::default();
        let mut seen: Vec<&str> = Vec::new();
        for item in s.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                return Err(invalid(format!(
                    "`{item}` is not KEY=PROBABILITY (keys: {KEYS})"
                )));
            };
            let (key, value) = (key.trim(), value.trim());
            let slot = match key {
                "delete" => &mut config.delete,
                "swap" => &mut config.swap,
                "insert" => &mut config.insert,
                "mask" => &mut config.mask,
                _ => return Err(invalid(format!("unknown operation `{key}` (keys: {KEYS})"))),
            };
            if seen.contains(&key) {
                return Err(invalid(format!("`{key}` is given twice")));
            }
            seen.push(key);
            let p: f64 = value
                .parse()
                .map_err(|_| invalid(format!("`{key}={value}`: `{value}` is not a number")))?;
            // `contains` is false for NaN, so this also rejects it.
            if !(0.0..=1.0).contains(&p) {
                return Err(invalid(format!(
                    "`{key}={value}`: a probability must be in [0, 1]"
                )));
            }
            *slot = p;
        }
        Ok(config)
    }
}

/// The `--augment` string of the non-zero probabilities (`off` when all are 0); parses back to
/// the same probabilities. `copies` is not included.
impl fmt::Display for AugmentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ops = [
            ("delete", self.delete),
            ("swap", self.swap),
            ("insert", self.insert),
            ("mask", self.mask),
        ];
        let mut first = true;
        for (key, p) in ops.into_iter().filter(|&(_, p)| p != 0.0) {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{key}={p}")?;
        }
        if first {
            f.write_str("off")?;
        }
        Ok(())
    }
}

/// Returns `config.copies` augmented copies of each example — example by example, copy by
/// copy (`[e0c0, e0c1, …, e1c0, …]`) — without the originals, which the caller keeps. Labels
/// are preserved. With every probability 0 the copies equal the originals up to whitespace
/// (callers skip augmentation when [`AugmentConfig::is_off`]).
///
/// A blank `mask_token` would turn words into nothing, so masking is skipped then. Texts
/// without words stay as they are.
pub fn augment(
    examples: &[Example],
    config: &AugmentConfig,
    mask_token: &str,
    seed: u64,
) -> Vec<Example> {
    let mut out = Vec::with_capacity(examples.len().saturating_mul(config.copies));
    for (index, example) in examples.iter().enumerate() {
        for copy in 0..config.copies {
            let mut rng = copy_rng(seed, index as u64, copy as u64);
            let text = augment_text(&example.text, config, mask_token, &mut rng);
            let text_pair = example
                .text_pair
                .as_deref()
                .map(|pair| augment_text(pair, config, mask_token, &mut rng));
            out.push(Example {
                text,
                text_pair,
                target: example.target.clone(),
            });
        }
    }
    out
}

/// One augmented version of `text` (see the module docs for the operations).
fn augment_text(
    text: &str,
    config: &AugmentConfig,
    mask_token: &str,
    rng: &mut impl Rng,
) -> String {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return text.to_owned();
    }
    // Probabilities are validated by `FromStr`, but the fields are public: clamp so that a
    // hand-built config cannot make `random_bool` panic.
    let p = |p: f64| if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };

    let delete = p(config.delete);
    if delete > 0.0 {
        let keep: Vec<&str> = words
            .iter()
            .copied()
            .filter(|_| !rng.random_bool(delete))
            .collect();
        words = if keep.is_empty() {
            vec![words[rng.random_range(0..words.len())]]
        } else {
            keep
        };
    }

    let swap = p(config.swap);
    if swap > 0.0 && words.len() >= 2 {
        let n = ((swap * words.len() as f64).round() as usize).max(1);
        for _ in 0..n {
            let i = rng.random_range(0..words.len());
            // A second position distinct from the first: skip over `i`.
            let mut j = rng.random_range(0..words.len() - 1);
            if j >= i {
                j += 1;
            }
            words.swap(i, j);
        }
    }

    let insert = p(config.insert);
    if insert > 0.0 {
        let n = (insert * words.len() as f64).round() as usize;
        for _ in 0..n {
            let word = words[rng.random_range(0..words.len())];
            let at = rng.random_range(0..=words.len());
            words.insert(at, word);
        }
    }

    let mask = p(config.mask);
    if mask > 0.0 && !mask_token.trim().is_empty() {
        for word in &mut words {
            if rng.random_bool(mask) {
                *word = mask_token;
            }
        }
    }

    words.join(" ")
}

/// A ChaCha8 stream keyed by `(seed, example index, copy index)` plus a domain tag, so that
/// no two copies (nor this and the other seeded parts of kiln-data) share a stream.
fn copy_rng(seed: u64, index: u64, copy: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&index.to_le_bytes());
    key[16..24].copy_from_slice(&copy.to_le_bytes());
    key[24..].copy_from_slice(b"augment\0");
    ChaCha8Rng::from_seed(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ex(text: &str, pair: Option<&str>, label: usize) -> Example {
        Example {
            text: text.into(),
            text_pair: pair.map(Into::into),
            target: crate::target::Target::Class(label),
        }
    }

    fn corpus() -> Vec<Example> {
        vec![
            ex("the film is a quiet triumph of craft and patience", None, 1),
            ex("dull , lifeless and far too long", None, 0),
            ex("a man walks", Some("someone is walking outside today"), 2),
            ex("ok", None, 0),
            ex("", None, 1),
        ]
    }

    fn config(s: &str, copies: usize) -> AugmentConfig {
        AugmentConfig {
            copies,
            ..s.parse().unwrap()
        }
    }

    #[test]
    fn parse() {
        let c: AugmentConfig = "delete=0.1, swap=0.2,mask=0.15 ,insert=1".parse().unwrap();
        assert_eq!(
            c,
            AugmentConfig {
                delete: 0.1,
                swap: 0.2,
                insert: 1.0,
                mask: 0.15,
                copies: 1
            }
        );
        assert_eq!(c.to_string().parse::<AugmentConfig>().unwrap(), c);
        assert!("".parse::<AugmentConfig>().unwrap().is_off());
        assert_eq!(AugmentConfig::default().to_string(), "off");
        assert!("mask=0".parse::<AugmentConfig>().unwrap().is_off());
        assert!(!"mask=0.1".parse::<AugmentConfig>().unwrap().is_off());
        assert!(config("mask=0.1", 0).is_off());
        for bad in [
            "drop=0.1",
            "delete",
            "delete=abc",
            "delete=1.5",
            "swap=-0.1",
            "mask=NaN",
            "mask=inf",
            "delete=0.1,delete=0.2",
            "copies=2",
        ] {
            match bad.parse::<AugmentConfig>() {
                Err(DataError::Invalid { what, message }) => {
                    assert_eq!(what, "augment");
                    assert!(!message.is_empty());
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn deterministic_per_seed() {
        let data = corpus();
        let c = config("delete=0.2,swap=0.2,insert=0.2,mask=0.2", 3);
        let a = augment(&data, &c, "[MASK]", 1);
        assert_eq!(a, augment(&data, &c, "[MASK]", 1));
        assert_ne!(a, augment(&data, &c, "[MASK]", 2));
        // A copy depends on (seed, index, copy) only: not on other examples or copy count.
        let fewer = augment(
            &data,
            &config("delete=0.2,swap=0.2,insert=0.2,mask=0.2", 2),
            "[MASK]",
            1,
        );
        assert_eq!(fewer[0..2], a[0..2]);
    }

    #[test]
    fn copies_and_labels() {
        let data = corpus();
        let out = augment(&data, &config("swap=0.5,mask=0.3", 3), "[MASK]", 0);
        assert_eq!(out.len(), 3 * data.len());
        for (i, e) in out.iter().enumerate() {
            let original = &data[i / 3];
            assert_eq!(e.target, original.target);
            assert_eq!(e.text_pair.is_some(), original.text_pair.is_some());
        }
        assert!(augment(&data, &config("swap=0.5", 0), "[MASK]", 0).is_empty());
    }

    #[test]
    fn zero_probabilities_are_identity() {
        let data = corpus();
        let out = augment(&data, &config("", 2), "[MASK]", 5);
        for (i, e) in out.iter().enumerate() {
            assert_eq!(e, &data[i / 2]);
        }
    }

    #[test]
    fn operations() {
        let text = "a b c d e f g h i j";
        let words = |e: &Example| e.text.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let data = vec![ex(text, None, 0)];
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        // Swaps permute.
        for seed in 0..20 {
            let out = augment(&data, &config("swap=0.3", 1), "[MASK]", seed);
            assert_eq!(sorted(words(&out[0])), sorted(words(&data[0])));
        }
        // Deleting everything keeps one word of the text.
        for seed in 0..20 {
            let out = augment(&data, &config("delete=1", 1), "[MASK]", seed);
            let w = words(&out[0]);
            assert_eq!(w.len(), 1);
            assert!(text.split(' ').any(|x| x == w[0]));
        }
        // Insertion adds round(p × n) words of the same text.
        let out = augment(&data, &config("insert=0.3", 1), "[MASK]", 3);
        let w = words(&out[0]);
        assert_eq!(w.len(), 13);
        assert!(w.iter().all(|x| text.split(' ').any(|y| y == x)));
        // Masking everything.
        let out = augment(&data, &config("mask=1", 1), "[MASK]", 3);
        assert_eq!(out[0].text, ["[MASK]"; 10].join(" "));
        // Blank mask token: masking skipped rather than emptying words.
        let out = augment(&data, &config("mask=1", 1), " ", 3);
        assert_eq!(out[0].text, text);
        // Pairs are augmented too.
        let pair = vec![ex("x y z", Some("p q r s"), 4)];
        let out = augment(&pair, &config("mask=1", 1), "[MASK]", 0);
        assert_eq!(
            out[0].text_pair.as_deref(),
            Some("[MASK] [MASK] [MASK] [MASK]")
        );
    }

    #[test]
    fn hand_built_out_of_range_config_does_not_panic() {
        let c = AugmentConfig {
            delete: f64::NAN,
            swap: 7.0,
            insert: -1.0,
            mask: f64::INFINITY,
            copies: 1,
        };
        let out = augment(&corpus(), &c, "[MASK]", 0);
        assert_eq!(out.len(), corpus().len());
    }

    proptest! {
        #[test]
        fn prop_never_panics_never_empties(
            texts in proptest::collection::vec(
                (any::<String>(), proptest::option::of(any::<String>())),
                0..8,
            ),
            delete in 0.0f64..=1.0,
            swap in 0.0f64..=1.0,
            insert in 0.0f64..=1.0,
            mask in 0.0f64..=1.0,
            copies in 0usize..4,
            seed: u64,
        ) {
            let data: Vec<Example> = texts
                .iter()
                .enumerate()
                .map(|(i, (t, p))| ex(t, p.as_deref(), i))
                .collect();
            let c = AugmentConfig { delete, swap, insert, mask, copies };
            let out = augment(&data, &c, "[MASK]", seed);
            prop_assert_eq!(out.len(), data.len() * copies);
            for (i, e) in out.iter().enumerate() {
                let original = &data[i / copies];
                prop_assert_eq!(&e.target, &original.target);
                if !original.text.trim().is_empty() {
                    prop_assert!(!e.text.trim().is_empty());
                }
                if let (Some(a), Some(b)) = (&e.text_pair, &original.text_pair) {
                    if !b.trim().is_empty() {
                        prop_assert!(!a.trim().is_empty());
                    }
                }
            }
        }
    }
}
