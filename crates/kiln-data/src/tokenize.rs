//! Tokenization with the `tokenizers` crate, from a checkpoint's `tokenizer.json`.
//!
//! Real `tokenizer.json` files often have padding and truncation switched on inside them
//! (all-MiniLM-L6-v2 pads every input to 128): kiln sets both explicitly — truncation at
//! `max_len`, no padding (batches are padded later, to their own longest sequence).

use std::path::{Path, PathBuf};

use tokenizers::{
    EncodeInput, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::error::DataError;

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
    inner: Tokenizer,
    path: PathBuf,
    max_len: usize,
    pad_id: u32,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("path", &self.path)
            .field("max_len", &self.max_len)
            .field("pad_id", &self.pad_id)
            .finish()
    }
}

impl TextTokenizer {
    /// Loads `tokenizer.json`; sequences are truncated to `max_len` tokens (specials included).
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
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| err(e.to_string()))?;
        let pad_id = ["[PAD]", "<pad>"]
            .iter()
            .find_map(|t| inner.token_to_id(t))
            .unwrap_or(0);
        Ok(Self {
            inner,
            path,
            max_len,
            pad_id,
        })
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
            Some(b) => self.inner.encode((text, b), true),
        }
        .map_err(|e| DataError::Encode {
            what: preview(text),
            message: e.to_string(),
        })?;
        Ok(Encoding {
            input_ids: encoding.get_ids().to_vec(),
            token_type_ids: encoding.get_type_ids().to_vec(),
            truncated: !encoding.get_overflowing().is_empty(),
        })
    }
}

impl TextTokenizer {
    /// Encodes many texts (or pairs) at once; `tokenizers` spreads them over its thread pool.
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
        let encodings = self
            .inner
            .encode_batch(batch, true)
            .map_err(|e| DataError::Encode {
                what: format!("a batch of {} texts", inputs.len()),
                message: e.to_string(),
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

fn preview(text: &str) -> String {
    let short: String = text.chars().take(40).collect();
    if short.len() < text.len() {
        format!("\"{short}…\"")
    } else {
        format!("\"{short}\"")
    }
}
