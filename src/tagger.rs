//! Serving a token classifier (a kiln `--task token` run's model/, or any
//! `BertForTokenClassification` directory): `kiln predict` tags every word of each text, with
//! its character span, and reads the entities off the tags of an entity tag set; `kiln eval`
//! scores a tagged file as training scored its test split.

use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::prelude::*;

use kiln_data::pipeline::{encode_tagged_split, EncodedExample};
use kiln_data::tagged::{read_tagged, word_windows, PieceLabels, TaggedOptions, IGNORE};
use kiln_data::{LabelMap, Readout, Target, TextTokenizer};
use kiln_metrics::entities::{entities, Entity};
use kiln_metrics::token::entity_mode;
use kiln_model::{Checkpoint, HeadInit, TokenClassifier};
use kiln_train::evaluate::{metrics_from_logits, predict_logits, timed_predict_logits};
use kiln_train::{InferenceSpeed, TaskLoss, TaskMetrics};

/// Whether `dir` holds a token classifier (its config.json's `architectures`).
pub fn is_token_classifier(dir: &Path) -> bool {
    Checkpoint::open(dir).is_ok_and(|c| {
        c.config
            .architectures
            .unwrap_or_default()
            .iter()
            .any(|a| a.ends_with("ForTokenClassification"))
    })
}

/// A fine-tuned token classifier with its tags and tokenizer.
pub struct Tagger {
    pub model: TokenClassifier,
    /// Tag names by output index (config.json's `id2label`).
    pub tags: Vec<String>,
    pub tokenizer: TextTokenizer,
    /// Which pieces carried a word's tag in training (`kiln_piece_labels`; first-piece when
    /// absent, as transformers' run_ner).
    pub pieces: PieceLabels,
    /// Entities read in seqeval's strict mode (`kiln_strict_entities`).
    pub strict_entities: bool,
    pub device: Device,
}

/// One word of a tagged text.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TaggedWord {
    pub word: String,
    pub tag: String,
    /// The tag's probability.
    pub score: f32,
    /// Character span `[start, end)` in the text.
    pub start: usize,
    pub end: usize,
}

/// An entity read off the words' tags.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Span {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
    /// Character span `[start, end)` in the text.
    pub start: usize,
    pub end: usize,
}

impl Tagger {
    pub fn load(dir: &Path, max_len: usize, device: Device) -> Result<Self> {
        let checkpoint = Checkpoint::open(dir)?;
        let config_path = dir.join("config.json");
        let Some(tags) = checkpoint.config.labels() else {
            bail!(
                "{}: config.json has no id2label: not a fine-tuned token classifier",
                config_path.display()
            );
        };
        let (model, _) =
            checkpoint.load_token_classifier_auto(HeadInit::FromCheckpoint, &device)?;
        let extra = &checkpoint.config.extra;
        let pieces = match extra.get("kiln_piece_labels") {
            Some(v) => serde_json::from_value(v.clone())
                .with_context(|| format!("{}: kiln_piece_labels", config_path.display()))?,
            None => PieceLabels::default(),
        };
        let strict_entities = extra
            .get("kiln_strict_entities")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let max_len = max_len.min(checkpoint.config.max_tokens());
        let tokenizer = TextTokenizer::from_file(checkpoint.tokenizer_path(), max_len)?;
        Ok(Self {
            model,
            tags,
            tokenizer,
            pieces,
            strict_entities,
            device,
        })
    }

    /// The model's tags as a label map in their own order.
    fn tag_map(&self) -> Result<LabelMap> {
        Ok(serde_json::from_value(
            serde_json::json!({ "labels": self.tags }),
        )?)
    }

    /// Tags every word of each text (words as the tokenizer's pre-tokenizer splits them; a
    /// text longer than a window is tagged window by window). `source` names the input in
    /// errors (a word longer than a window), with the text's 1-based position as its line.
    pub fn tag(
        &self,
        texts: &[&str],
        batch_size: usize,
        source: &Path,
    ) -> Result<Vec<Vec<TaggedWord>>> {
        let mut examples = Vec::new();
        // Per window: its text and the index (in that text's words) of each first piece's word.
        let mut owners: Vec<(usize, Vec<Option<usize>>)> = Vec::new();
        let words_of: Vec<Vec<(String, (usize, usize))>> = texts
            .iter()
            .map(|t| self.tokenizer.split_words(t))
            .collect();
        for (t, words) in words_of.iter().enumerate() {
            let strs: Vec<&str> = words.iter().map(|(w, _)| w.as_str()).collect();
            for range in word_windows(&self.tokenizer, &strs, source, t as u64 + 1)? {
                let encoded = self.tokenizer.encode_words(&strs[range.clone()], true)?;
                let firsts: Vec<Option<usize>> = encoded
                    .word_ids
                    .iter()
                    .enumerate()
                    .map(|(i, w)| {
                        let first = w.is_some() && (i == 0 || encoded.word_ids[i - 1] != *w);
                        first.then(|| range.start + w.unwrap_or(0) as usize)
                    })
                    .collect();
                // The targets are not read: every piece is left out.
                let labels = vec![IGNORE; encoded.encoding.len()];
                examples.push(EncodedExample {
                    encoding: encoded.encoding,
                    target: Target::Tags(labels),
                });
                owners.push((t, firsts));
            }
        }
        let logits = predict_logits(
            &self.model,
            &examples,
            batch_size,
            self.tokenizer.pad_id(),
            &self.device,
        );
        let width = self.tags.len();
        let mut tagged: Vec<Vec<Option<TaggedWord>>> =
            words_of.iter().map(|w| vec![None; w.len()]).collect();
        let mut row = 0;
        for (e, (t, firsts)) in examples.iter().zip(&owners) {
            for (p, first) in firsts.iter().enumerate() {
                let Some(w) = *first else { continue };
                let scores = &logits[(row + p) * width..(row + p + 1) * width];
                let (best, probability) = softmax_argmax(scores);
                let (word, (start, end)) = &words_of[*t][w];
                tagged[*t][w] = Some(TaggedWord {
                    word: word.clone(),
                    tag: self.tags[best].clone(),
                    score: probability,
                    start: *start,
                    end: *end,
                });
            }
            row += e.len();
        }
        // A word that became no piece at all (a control character) has no tag to show.
        Ok(tagged
            .into_iter()
            .map(|words| words.into_iter().flatten().collect())
            .collect())
    }

    /// The entities of a text's tagged words, for an entity tag set (none otherwise).
    pub fn entities(&self, text: &str, words: &[TaggedWord]) -> Vec<Span> {
        let Some(mode) = entity_mode(&self.tags, self.strict_entities) else {
            return Vec::new();
        };
        let tags: Vec<&str> = words.iter().map(|w| w.tag.as_str()).collect();
        let chars: Vec<char> = text.chars().collect();
        entities(&tags, mode)
            .unwrap_or_default()
            .into_iter()
            .map(|Entity { kind, start, end }| {
                let (from, to) = (words[start].start, words[end - 1].end);
                Span {
                    kind,
                    text: chars[from..to].iter().collect(),
                    start: from,
                    end: to,
                }
            })
            .collect()
    }

    /// Scores a tagged file (CoNLL, JSONL or word/TAG, read as `options` says) as training
    /// scores its test split: token accuracy, per-tag scores, entities for an entity tag set;
    /// tags the model lacks count as errors.
    pub fn evaluate_file(
        &self,
        path: &Path,
        options: &TaggedOptions,
        batch_size: usize,
    ) -> Result<(TaskMetrics, InferenceSpeed)> {
        let data = read_tagged(path, options)?;
        let encoded = encode_tagged_split(&self.tokenizer, &data, &self.tag_map()?, self.pieces)?;
        let unseen = encoded.unseen_tags(self.tags.len());
        if !unseen.is_empty() {
            eprintln!(
                "note: {} has tags the model does not know ({}): their words count as errors",
                path.display(),
                unseen.join(", ")
            );
        }
        let (logits, speed) = timed_predict_logits(
            &self.model,
            &encoded.examples,
            batch_size,
            self.tokenizer.pad_id(),
            &self.device,
        );
        let readout = Readout {
            strict_entities: self.strict_entities,
            ..Readout::default()
        };
        let metrics = metrics_from_logits(
            &logits,
            &encoded.examples,
            &encoded.tags,
            &TaskLoss::default(),
            &readout,
            &self.device,
        );
        Ok((metrics, speed))
    }
}

/// Tags `records` and writes one JSON line per record, in input order: `index` (and `id`,
/// `text` as asked), `words` (each word with its tag, probability and character span) and,
/// for an entity tag set, `entities` (type, text, character span).
pub fn write_tags(
    tagger: &Tagger,
    records: &[crate::predict::InputRecord],
    options: crate::predict::OutputOptions,
    batch_size: usize,
    source: &Path,
    out: &mut impl std::io::Write,
) -> Result<()> {
    if records.iter().any(|r| r.text_pair.is_some()) {
        bail!("a token classifier tags single texts: --text-pair-column does not apply");
    }
    for chunk in records.chunks(crate::predict::CHUNK) {
        let texts: Vec<&str> = chunk.iter().map(|r| r.text.as_str()).collect();
        for (record, words) in chunk.iter().zip(tagger.tag(&texts, batch_size, source)?) {
            let mut line = serde_json::json!({ "index": record.index });
            if let Some(id) = &record.id {
                line["id"] = serde_json::json!(id);
            }
            if options.echo_text {
                line["text"] = serde_json::json!(record.text);
            }
            if entity_mode(&tagger.tags, false).is_some() {
                line["entities"] = serde_json::to_value(tagger.entities(&record.text, &words))?;
            }
            line["words"] = serde_json::to_value(&words)?;
            writeln!(out, "{line}").context("writing to stdout")?;
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(())
}

/// The most probable class of a row of logits and its softmax probability.
fn softmax_argmax(logits: &[f32]) -> (usize, f32) {
    let (best, &top) = logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap_or((0, &0.0));
    let total: f64 = logits.iter().map(|&x| f64::from(x - top).exp()).sum();
    (best, (1.0 / total) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_argmax_carries_its_softmax_probability() {
        let (best, p) = softmax_argmax(&[0.0, 2.0f32.ln(), 0.0]);
        assert_eq!(best, 1);
        assert!((p - 0.5).abs() < 1e-6);
    }
}
