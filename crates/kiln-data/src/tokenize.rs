//! Tokenization with the `tokenizers` crate, from a checkpoint's `tokenizer.json`.
//!
//! Real `tokenizer.json` files often have padding and truncation switched on inside them
//! (all-MiniLM-L6-v2 pads every input to 128): kiln sets both explicitly — truncation at
//! `max_len`, no padding (batches are padded later, to their own longest sequence).

use std::path::{Path, PathBuf};

use tokenizers::{
    EncodeInput, PostProcessor, Tokenizer, TruncationDirection, TruncationParams,
    TruncationStrategy,
};

use crate::error::DataError;

/// How a text pair is cut down to `max_len` tokens: transformers' `truncation=` strategies
/// (a single text is always cut at its end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Truncation {
    /// A token at a time from whichever text is longer (`longest_first`, transformers'
    /// default).
    #[default]
    LongestFirst,
    /// Only the first text is cut (`only_first`): the second is kept whole, and a pair whose
    /// second text alone is too long is an error.
    OnlyFirst,
    /// Only the second text is cut (`only_second`).
    OnlySecond,
}

impl Truncation {
    fn strategy(self) -> TruncationStrategy {
        match self {
            Self::LongestFirst => TruncationStrategy::LongestFirst,
            Self::OnlyFirst => TruncationStrategy::OnlyFirst,
            Self::OnlySecond => TruncationStrategy::OnlySecond,
        }
    }
}

impl std::fmt::Display for Truncation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::LongestFirst => "longest-first",
            Self::OnlyFirst => "only-first",
            Self::OnlySecond => "only-second",
        })
    }
}

impl std::str::FromStr for Truncation {
    type Err = String;

    /// `longest-first`, `only-first`, `only-second` (transformers' `_` spellings too).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().replace('_', "-").as_str() {
            "longest-first" => Ok(Self::LongestFirst),
            "only-first" => Ok(Self::OnlyFirst),
            "only-second" => Ok(Self::OnlySecond),
            _ => Err(format!(
                "unknown truncation `{s}` (longest-first, only-first, only-second)"
            )),
        }
    }
}

/// One tokenized example, unpadded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Encoding {
    pub input_ids: Vec<u32>,
    pub token_type_ids: Vec<u32>,
    /// Whether truncation at `max_len` dropped tokens.
    pub truncated: bool,
}

impl Encoding {
    pub fn len(&self) -> usize {
        self.input_ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }
}

/// A `tokenizers::Tokenizer` with kiln's settings.
#[derive(Clone)]
pub struct TextTokenizer {
    /// For single texts (always cut at the end).
    inner: Tokenizer,
    /// For pairs, cut as `truncation` says.
    pairs: Tokenizer,
    /// Never cuts: pre-split words are measured whole, then windowed by the caller.
    whole: Tokenizer,
    path: PathBuf,
    max_len: usize,
    truncation: Truncation,
    pad_id: u32,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("path", &self.path)
            .field("max_len", &self.max_len)
            .field("truncation", &self.truncation)
            .field("pad_id", &self.pad_id)
            .finish()
    }
}

impl TextTokenizer {
    /// Loads `tokenizer.json`; sequences are truncated to `max_len` tokens (specials included),
    /// pairs [`Truncation::LongestFirst`] (see [`Self::with_truncation`]).
    pub fn from_file(path: impl AsRef<Path>, max_len: usize) -> Result<Self, DataError> {
        let path = path.as_ref().to_path_buf();
        let err = |message: String| DataError::Tokenizer {
            path: path.clone(),
            message,
        };
        if !path.is_file() {
            return Err(err("file not found".into()));
        }
        if max_len < 2 {
            return Err(err(format!("max_len must be at least 2, got {max_len}")));
        }
        let mut inner = Tokenizer::from_file(&path).map_err(|e| err(e.to_string()))?;
        inner.with_padding(None);
        inner
            .with_truncation(Some(truncation_params(max_len, Truncation::LongestFirst)))
            .map_err(|e| err(e.to_string()))?;
        let pad_id = ["[PAD]", "<pad>"]
            .iter()
            .find_map(|t| inner.token_to_id(t))
            .unwrap_or(0);
        let mut whole = inner.clone();
        whole
            .with_truncation(None)
            .map_err(|e| err(e.to_string()))?;
        Ok(Self {
            pairs: inner.clone(),
            whole,
            inner,
            path,
            max_len,
            truncation: Truncation::LongestFirst,
            pad_id,
        })
    }

    /// Cuts text pairs with `truncation` instead.
    pub fn with_truncation(mut self, truncation: Truncation) -> Result<Self, DataError> {
        self.pairs
            .with_truncation(Some(truncation_params(self.max_len, truncation)))
            .map_err(|e| DataError::Tokenizer {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        self.truncation = truncation;
        Ok(self)
    }

    pub fn truncation(&self) -> Truncation {
        self.truncation
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn max_len(&self) -> usize {
        self.max_len
    }
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }
    /// The underlying tokenizer, for word-level work such as WordPiece masking.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Encodes a text, or a text pair (`[CLS] a [SEP] b [SEP]`, token types 0 then 1).
    pub fn encode(&self, text: &str, pair: Option<&str>) -> Result<Encoding, DataError> {
        let encoding = match pair {
            None => self.inner.encode(text, true),
            Some(b) => self.pairs.encode((text, b), true),
        }
        .map_err(|e| {
            let mut message = e.to_string();
            if message.contains("too short") {
                // tokenizers' words for a pair whose kept text alone exceeds max_len.
                message.push_str(&format!(
                    " (the pair needs more than {} tokens with the {} text kept whole: raise \
                     max_len or cut the pair another way)",
                    self.max_len,
                    match self.truncation {
                        Truncation::OnlyFirst => "second",
                        _ => "first",
                    }
                ));
            }
            DataError::Encode {
                what: preview(text),
                message,
            }
        })?;
        Ok(Encoding {
            input_ids: encoding.get_ids().to_vec(),
            token_type_ids: encoding.get_type_ids().to_vec(),
            truncated: !encoding.get_overflowing().is_empty(),
        })
    }
}

/// Pre-split words as word pieces, with the word each piece comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordPieces {
    pub encoding: Encoding,
    /// Per piece, the index of its word in the input; `None` for special tokens.
    pub word_ids: Vec<Option<u32>>,
}

impl TextTokenizer {
    /// Encodes pre-split words (transformers' `is_split_into_words=True`), never truncating;
    /// with `special_tokens`, [CLS] … [SEP] around them.
    pub fn encode_words(
        &self,
        words: &[&str],
        special_tokens: bool,
    ) -> Result<WordPieces, DataError> {
        let input = EncodeInput::Single(words.to_vec().into());
        let encoding = self
            .whole
            .encode(input, special_tokens)
            .map_err(|e| DataError::Encode {
                what: preview(&words.join(" ")),
                message: e.to_string(),
            })?;
        Ok(WordPieces {
            word_ids: encoding.get_word_ids().to_vec(),
            encoding: Encoding {
                input_ids: encoding.get_ids().to_vec(),
                token_type_ids: encoding.get_type_ids().to_vec(),
                truncated: false,
            },
        })
    }

    /// The words of a raw text as the tokenizer's pre-tokenizer splits it (BERT's: at
    /// whitespace and around punctuation), each with its character span `[start, end)` in
    /// `text`; whitespace-separated words when the tokenizer has no pre-tokenizer.
    pub fn split_words(&self, text: &str) -> Vec<(String, (usize, usize))> {
        use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};
        let chars: Vec<char> = text.chars().collect();
        let spans: Vec<(usize, usize)> = match self.whole.get_pre_tokenizer() {
            Some(pre) => {
                let mut split = PreTokenizedString::from(text);
                match pre.pre_tokenize(&mut split) {
                    Ok(()) => split
                        .get_splits(OffsetReferential::Original, OffsetType::Char)
                        .into_iter()
                        .map(|(_, offsets, _)| offsets)
                        .collect(),
                    Err(_) => whitespace_spans(&chars),
                }
            }
            None => whitespace_spans(&chars),
        };
        spans
            .into_iter()
            .filter(|&(s, e)| e > s && e <= chars.len())
            // A byte-level pre-tokenizer (RoBERTa's) keeps the space before a word in its
            // span (" great"): the word is what is left without it.
            .filter_map(|(mut s, mut e)| {
                while s < e && chars[s].is_whitespace() {
                    s += 1;
                }
                while e > s && chars[e - 1].is_whitespace() {
                    e -= 1;
                }
                (e > s).then(|| (chars[s..e].iter().collect(), (s, e)))
            })
            .collect()
    }

    /// Special tokens a single text gets ([CLS] and [SEP]: 2).
    pub fn special_tokens_single(&self) -> usize {
        self.inner
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false))
    }
}

impl TextTokenizer {
    /// Encodes many texts (or pairs) at once; `tokenizers` spreads them over its thread pool.
    /// An input that cannot be encoded (a pair whose kept text alone is longer than `max_len`)
    /// is named in the error.
    pub fn encode_batch(
        &self,
        inputs: &[(&str, Option<&str>)],
    ) -> Result<Vec<Encoding>, DataError> {
        let batch: Vec<EncodeInput> = inputs
            .iter()
            .map(|&(a, b)| match b {
                None => EncodeInput::Single(a.into()),
                Some(b) => EncodeInput::Dual(a.into(), b.into()),
            })
            .collect();
        // Pairs and single texts are cut differently (`only-second` has nothing to cut in a
        // single text); a set is one or the other.
        let tokenizer = if inputs.iter().any(|(_, b)| b.is_some()) {
            &self.pairs
        } else {
            &self.inner
        };
        let encodings = tokenizer.encode_batch(batch, true).map_err(|e| {
            let failing = inputs
                .iter()
                .enumerate()
                .find_map(|(i, &(a, b))| self.encode(a, b).err().map(|e| (i, e)));
            match failing {
                Some((i, DataError::Encode { what, message })) => DataError::Encode {
                    what: format!("input {} of {} ({what})", i + 1, inputs.len()),
                    message,
                },
                _ => DataError::Encode {
                    what: format!("a batch of {} texts", inputs.len()),
                    message: e.to_string(),
                },
            }
        })?;
        Ok(encodings
            .into_iter()
            .map(|encoding| Encoding {
                input_ids: encoding.get_ids().to_vec(),
                token_type_ids: encoding.get_type_ids().to_vec(),
                truncated: !encoding.get_overflowing().is_empty(),
            })
            .collect())
    }
}

/// Character spans of the whitespace-separated words of `chars`.
fn whitespace_spans(chars: &[char]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in chars.iter().enumerate() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, chars.len()));
    }
    spans
}

fn truncation_params(max_len: usize, truncation: Truncation) -> TruncationParams {
    TruncationParams {
        direction: TruncationDirection::Right,
        max_length: max_len,
        strategy: truncation.strategy(),
        stride: 0,
    }
}

fn preview(text: &str) -> String {
    let short: String = text.chars().take(40).collect();
    if short.len() < text.len() {
        format!("\"{short}…\"")
    } else {
        format!("\"{short}\"")
    }
}
