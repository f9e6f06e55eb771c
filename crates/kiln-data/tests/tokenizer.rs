//! Tokenization equals transformers' (ids and token types from the tiny fixture's
//! tokenizer.json), with kiln's explicit truncation and no built-in padding.

use std::path::PathBuf;

use burn::prelude::*;
use kiln_data::tagged::{encode_tagged, PieceLabels, TaggedSentence, TaggedWindow, IGNORE};
use kiln_data::{DataError, LabelMap, TextTokenizer, TokenBatch, Truncation};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

#[derive(serde::Deserialize)]
struct Expected {
    examples: Vec<Example>,
}
#[derive(serde::Deserialize)]
struct Example {
    text: String,
    text_pair: Option<String>,
    input_ids: Vec<u32>,
    token_type_ids: Vec<u32>,
}

#[test]
fn ids_and_token_types_match_transformers() {
    let tok = TextTokenizer::from_file(fixture("tiny-bert/tokenizer.json"), 64).unwrap();
    let expected: Expected =
        serde_json::from_str(&std::fs::read_to_string(fixture("tiny-bert/expected.json")).unwrap())
            .unwrap();
    assert!(expected.examples.iter().any(|e| e.text_pair.is_some()));
    for e in &expected.examples {
        let enc = tok.encode(&e.text, e.text_pair.as_deref()).unwrap();
        assert_eq!(enc.input_ids, e.input_ids, "{:?}", e.text);
        assert_eq!(enc.token_type_ids, e.token_type_ids, "{:?}", e.text);
        assert!(!enc.truncated);
    }
}

#[test]
fn truncation_is_explicit_and_builtin_padding_is_off() {
    // A tokenizer.json with fixed padding to 40 and truncation at 5 switched on inside it, as
    // real checkpoints ship: kiln's own settings must win.
    let mut json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("tiny-bert/tokenizer.json")).unwrap(),
    )
    .unwrap();
    json["truncation"] = serde_json::json!({"direction": "Right", "max_length": 5, "strategy": "LongestFirst", "stride": 0});
    json["padding"] = serde_json::json!({"strategy": {"Fixed": 40}, "direction": "Right", "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"});
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tokenizer.json");
    std::fs::write(&path, json.to_string()).unwrap();

    let tok = TextTokenizer::from_file(&path, 8).unwrap();
    let short = tok.encode("the movie", None).unwrap();
    assert_eq!(short.len(), 4, "no padding: [CLS] the movie [SEP]");
    assert!(!short.truncated);
    let long = tok
        .encode(
            "the movie was great the movie was great the movie was great",
            None,
        )
        .unwrap();
    assert_eq!(long.len(), 8);
    assert!(long.truncated);
    assert_eq!(long.input_ids[0], tok.token_to_id("[CLS]").unwrap());
    assert_eq!(long.input_ids[7], tok.token_to_id("[SEP]").unwrap());
}

#[test]
fn bad_tokenizer_files_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("absent.json");
    let err = TextTokenizer::from_file(&missing, 16)
        .unwrap_err()
        .to_string();
    assert!(err.contains("absent.json"), "{err}");
    let broken = tmp.path().join("broken.json");
    std::fs::write(&broken, "{\"model\": 3").unwrap();
    let err = TextTokenizer::from_file(&broken, 16)
        .unwrap_err()
        .to_string();
    assert!(err.contains("broken.json"), "{err}");
}

#[test]
fn batches_pad_to_their_longest_example() {
    let tok = TextTokenizer::from_file(fixture("tiny-bert/tokenizer.json"), 64).unwrap();
    let a = tok.encode("the movie", None).unwrap();
    let b = tok.encode("the movie was great", None).unwrap();
    let device = Device::flex();
    let batch = TokenBatch::pad(&[&a, &b], tok.pad_id(), 1, &device);
    assert_eq!(batch.input_ids.dims(), [2, 6]);
    assert_eq!(batch.lengths, vec![4, 6]);
    let mask = batch
        .attention_mask
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(mask, vec![1., 1., 1., 1., 0., 0., 1., 1., 1., 1., 1., 1.]);
    let ids = batch
        .input_ids
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap();
    assert_eq!(&ids[4..6], &[tok.pad_id() as i64; 2]);
    // Rounded up to a multiple of 8.
    let batch = TokenBatch::pad(&[&a, &b], tok.pad_id(), 8, &device);
    assert_eq!(batch.input_ids.dims(), [2, 8]);
}

#[derive(serde::Deserialize)]
struct PairCases {
    cases: Vec<PairCase>,
}
#[derive(serde::Deserialize)]
struct PairCase {
    max_length: usize,
    truncation: String,
    text: String,
    text_pair: String,
    input_ids: Option<Vec<u32>>,
    token_type_ids: Option<Vec<u32>>,
    /// transformers refused: the text that may be cut is too short to reach max_length.
    error: Option<String>,
}

/// Text pairs are cut as transformers cuts them under `truncation="longest_first"`,
/// `"only_first"` and `"only_second"` (tests/fixtures/pair-truncation.json, made by
/// scripts/reference/make_fixtures.py), one at a time and in a batch; where transformers refuses
/// a pair, kiln does too, naming the input.
#[test]
fn pairs_are_cut_as_transformers_cuts_them() {
    let cases: PairCases =
        serde_json::from_str(&std::fs::read_to_string(fixture("pair-truncation.json")).unwrap())
            .unwrap();
    assert!(
        cases.cases.len() >= 45,
        "the fixture lists every strategy × length × pair"
    );
    let (mut checked, mut refused) = (0, 0);
    for case in &cases.cases {
        let truncation: Truncation = case.truncation.parse().unwrap();
        let tok = TextTokenizer::from_file(fixture("tiny-bert/tokenizer.json"), case.max_length)
            .unwrap()
            .with_truncation(truncation)
            .unwrap();
        assert_eq!(tok.truncation(), truncation);
        let one = tok.encode(&case.text, Some(&case.text_pair));
        let batch = tok.encode_batch(&[("good", Some("bad")), (&case.text, Some(&case.text_pair))]);
        let what = format!("{} / {} at {}", case.truncation, case.text, case.max_length);
        match &case.error {
            None => {
                let one = one.unwrap();
                assert_eq!(Some(&one.input_ids), case.input_ids.as_ref(), "{what}");
                assert_eq!(
                    Some(&one.token_type_ids),
                    case.token_type_ids.as_ref(),
                    "{what}"
                );
                assert_eq!(batch.unwrap()[1], one, "{what}: batch and single agree");
                checked += 1;
            }
            Some(reason) => {
                assert!(reason.contains("too short"), "{what}: {reason}");
                assert!(matches!(one, Err(DataError::Encode { .. })), "{what}");
                let message = batch.unwrap_err().to_string();
                let preview: String = case.text.chars().take(20).collect();
                assert!(
                    message.contains("input 2 of 2") && message.contains(&preview),
                    "{what}: {message}"
                );
                refused += 1;
            }
        }
    }
    assert!(
        checked > 0 && refused > 0,
        "{checked} encoded, {refused} refused"
    );
}

/// A single text is cut at its end whatever the pair strategy (only-second has no second text
/// to cut).
#[test]
fn single_texts_are_cut_at_the_end_under_every_strategy() {
    let text = "the quick brown fox did jump over the lazy dog";
    let reference = TextTokenizer::from_file(fixture("tiny-bert/tokenizer.json"), 6)
        .unwrap()
        .encode(text, None)
        .unwrap();
    assert_eq!(reference.len(), 6);
    for truncation in [Truncation::OnlyFirst, Truncation::OnlySecond] {
        let tok = TextTokenizer::from_file(fixture("tiny-bert/tokenizer.json"), 6)
            .unwrap()
            .with_truncation(truncation)
            .unwrap();
        assert_eq!(tok.encode(text, None).unwrap(), reference);
        assert_eq!(tok.encode_batch(&[(text, None)]).unwrap()[0], reference);
    }
    assert_eq!(
        "only_second".parse::<Truncation>(),
        Ok(Truncation::OnlySecond)
    );
    assert!("middle".parse::<Truncation>().is_err());
}

#[derive(serde::Deserialize)]
struct Alignment {
    label_list: Vec<String>,
    sentences: Vec<AlignedSentence>,
    roberta_sentences: Vec<RobertaSentence>,
}
#[derive(serde::Deserialize)]
struct RobertaSentence {
    words: Vec<String>,
    input_ids: Vec<u32>,
}
#[derive(serde::Deserialize)]
struct AlignedSentence {
    words: Vec<String>,
    tags: Vec<String>,
    input_ids: Vec<u32>,
    labels_first_piece: Vec<i64>,
    labels_all_pieces: Vec<i64>,
}

fn tagged(words: &[String], tags: &[String]) -> TaggedSentence {
    TaggedSentence {
        words: words.to_vec(),
        tags: tags.to_vec(),
        line: 7,
    }
}

/// Word tags land on word pieces as transformers' run_ner.py puts them — the first piece of a
/// word, or every piece with B- going on as I- (tests/fixtures/token-alignment.json).
#[test]
fn word_tags_align_to_pieces_as_run_ner_aligns_them() {
    let aligned: Alignment =
        serde_json::from_str(&std::fs::read_to_string(fixture("token-alignment.json")).unwrap())
            .unwrap();
    assert!(aligned.sentences.len() >= 4);
    let tags = LabelMap::from_labels(aligned.label_list.clone());
    assert_eq!(
        tags.labels(),
        aligned.label_list,
        "kiln orders tags as run_ner does"
    );
    let tok = TextTokenizer::from_file(fixture("tiny-bert/tokenizer.json"), 64).unwrap();
    let path = std::path::Path::new("tags.conll");
    for s in &aligned.sentences {
        for (pieces, expected) in [
            (PieceLabels::FirstPiece, &s.labels_first_piece),
            (PieceLabels::AllPieces, &s.labels_all_pieces),
        ] {
            let windows =
                encode_tagged(&tok, path, &tagged(&s.words, &s.tags), &tags, pieces).unwrap();
            assert_eq!(windows.len(), 1, "{:?} fits one window", s.words);
            assert_eq!(windows[0].encoding.input_ids, s.input_ids, "{:?}", s.words);
            assert_eq!(&windows[0].labels, expected, "{:?} {pieces:?}", s.words);
        }
    }
}

/// RoBERTa's byte-level tokenizer splits pre-split words into the pieces transformers gives
/// them (`RobertaTokenizerFast(add_prefix_space=True)`, `is_split_into_words`).
#[test]
fn a_byte_level_tokenizer_splits_tagged_words_as_transformers_does() {
    let aligned: Alignment =
        serde_json::from_str(&std::fs::read_to_string(fixture("token-alignment.json")).unwrap())
            .unwrap();
    let tok = TextTokenizer::from_file(fixture("tiny-roberta/tokenizer.json"), 64).unwrap();
    let path = std::path::Path::new("tags.conll");
    let tags = LabelMap::from_labels(vec!["O".to_string()]);
    for s in &aligned.roberta_sentences {
        let all_o = vec!["O".to_string(); s.words.len()];
        let windows = encode_tagged(
            &tok,
            path,
            &tagged(&s.words, &all_o),
            &tags,
            PieceLabels::FirstPiece,
        )
        .unwrap();
        assert_eq!(windows.len(), 1);
        assert_eq!(windows[0].encoding.input_ids, s.input_ids, "{:?}", s.words);
    }
}

/// XLM-R's SentencePiece tokenizer (Unigram, Metaspace) splits pre-split words as
/// transformers' XLMRobertaTokenizer does with `is_split_into_words`.
#[test]
fn a_sentencepiece_tokenizer_splits_tagged_words_as_transformers_does() {
    #[derive(serde::Deserialize)]
    struct Xlmr {
        words: Vec<Vec<String>>,
        word_input_ids: Vec<Vec<u32>>,
    }
    let text = std::fs::read_to_string(fixture("tiny-xlmr/expected.json")).unwrap();
    let xlmr: Xlmr = serde_json::from_str(&text).unwrap();
    let tok = TextTokenizer::from_file(fixture("tiny-xlmr/tokenizer.json"), 64).unwrap();
    let tags = LabelMap::from_labels(vec!["O".to_string()]);
    let path = std::path::Path::new("tags.conll");
    for (words, want) in xlmr.words.iter().zip(&xlmr.word_input_ids) {
        let all_o = vec!["O".to_string(); words.len()];
        let windows = encode_tagged(
            &tok,
            path,
            &tagged(words, &all_o),
            &tags,
            PieceLabels::FirstPiece,
        )
        .unwrap();
        assert_eq!(windows[0].encoding.input_ids, *want, "{words:?}");
    }
}

/// A sentence longer than one window is split at word boundaries into windows that together
/// hold every piece and label once; a word longer than a window, or a tag never seen in
/// training, is an error naming the line.
#[test]
fn long_sentences_become_windows_of_whole_words() {
    let aligned: Alignment =
        serde_json::from_str(&std::fs::read_to_string(fixture("token-alignment.json")).unwrap())
            .unwrap();
    let tags = LabelMap::from_labels(aligned.label_list.clone());
    let path = std::path::Path::new("tags.conll");
    let long: Vec<&AlignedSentence> = aligned.sentences.iter().collect();
    let words: Vec<String> = long.iter().flat_map(|s| s.words.clone()).collect();
    let word_tags: Vec<String> = long.iter().flat_map(|s| s.tags.clone()).collect();
    let sentence = tagged(&words, &word_tags);
    let whole = TextTokenizer::from_file(fixture("tiny-bert/tokenizer.json"), 128).unwrap();
    let one = encode_tagged(&whole, path, &sentence, &tags, PieceLabels::FirstPiece).unwrap();
    assert_eq!(one.len(), 1);
    let inner = |w: &TaggedWindow| {
        let n = w.labels.len();
        (
            w.encoding.input_ids[1..n - 1].to_vec(),
            w.labels[1..n - 1].to_vec(),
        )
    };
    let (all_ids, all_labels) = inner(&one[0]);
    for max_len in [5, 6, 9] {
        let tok = TextTokenizer::from_file(fixture("tiny-bert/tokenizer.json"), max_len).unwrap();
        let windows = encode_tagged(&tok, path, &sentence, &tags, PieceLabels::FirstPiece).unwrap();
        assert!(windows.len() > 1, "max_len {max_len}");
        let (mut ids, mut labels, mut next_word) = (Vec::new(), Vec::new(), 0);
        for w in &windows {
            assert!(w.encoding.len() <= max_len, "max_len {max_len}: {w:?}");
            assert_eq!(w.first_word, next_word, "windows follow each other");
            assert_eq!(w.labels.first(), Some(&IGNORE), "[CLS] is ignored");
            let (i, l) = inner(w);
            ids.extend(i);
            labels.extend(l);
            next_word += w.words;
        }
        assert_eq!(next_word, words.len());
        assert_eq!(
            (ids, labels),
            (all_ids.clone(), all_labels.clone()),
            "max_len {max_len}"
        );
    }
    // "funnybody" is 2 pieces and "dogs" 2: a window of 3 (1 piece besides [CLS] [SEP]) holds neither.
    let tiny = TextTokenizer::from_file(fixture("tiny-bert/tokenizer.json"), 3).unwrap();
    let err = encode_tagged(&tiny, path, &sentence, &tags, PieceLabels::FirstPiece).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("tags.conll:7") && message.contains("`dogs`"),
        "{message}"
    );
    let unseen = tagged(&["the".to_string()], &["B-NEW".to_string()]);
    let err = encode_tagged(&whole, path, &unseen, &tags, PieceLabels::FirstPiece).unwrap_err();
    assert!(
        matches!(&err, DataError::UnknownLabel { line: 7, label, .. } if label == "B-NEW"),
        "{err}"
    );
}

#[test]
fn raw_text_splits_into_words_with_character_spans_as_bert_pre_tokenizes() {
    let tok = TextTokenizer::from_file(fixture("tiny-bert/tokenizer.json"), 64).unwrap();
    let text = "Café, naïve  day!";
    let words = tok.split_words(text);
    let names: Vec<&str> = words.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(names, ["Café", ",", "naïve", "day", "!"]);
    let chars: Vec<char> = text.chars().collect();
    for (word, (start, end)) in &words {
        assert_eq!(&chars[*start..*end].iter().collect::<String>(), word);
    }
    assert_eq!(words[2].1, (6, 11), "character, not byte, offsets");
    assert!(tok.split_words(" \t ").is_empty());
}
