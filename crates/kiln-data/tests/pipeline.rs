//! The pipeline end to end on small files written here: read → split → label map → encode →
//! summary → burn data loaders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::prelude::*;
use kiln_data::augment::AugmentConfig;
use kiln_data::bucket::{BatchSize, BucketSampler};
use kiln_data::loader::{bucketed_loader, sequential_loader, TaskBatcher};
use kiln_data::pipeline::{encode_examples, load_splits, DataOptions, DataSource, SplitSummary};
use kiln_data::{DataError, TextTokenizer};

fn tokenizer() -> TextTokenizer {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/tiny-bert/tokenizer.json");
    TextTokenizer::from_file(path, 16).unwrap()
}

const WORDS: [&str; 8] = [
    "the", "movie", "was", "great", "bad", "plot", "good", "boring",
];

/// A CSV of `n` rows over `labels`, texts of varied length from the tiny vocabulary.
fn write_csv(path: &Path, n: usize, labels: &[&str]) {
    let mut text = String::from("text,label\n");
    for i in 0..n {
        let len = 1 + (i * 7) % 13;
        let words: Vec<&str> = (0..len).map(|j| WORDS[(i + j) % WORDS.len()]).collect();
        text.push_str(&format!(
            "\"{}\",{}\n",
            words.join(" "),
            labels[i % labels.len()]
        ));
    }
    std::fs::write(path, text).unwrap();
}

fn files(train: PathBuf, valid: Option<PathBuf>, test: Option<PathBuf>) -> DataSource {
    DataSource::Files { train, valid, test }
}

fn counts(labels: impl Iterator<Item = usize>) -> BTreeMap<usize, usize> {
    let mut m = BTreeMap::new();
    for l in labels {
        *m.entry(l).or_insert(0) += 1;
    }
    m
}

#[test]
fn one_file_is_split_stratified_and_deterministically() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.csv");
    write_csv(&train, 200, &["neg", "pos", "neutral", "pos"]);
    let options = DataOptions::default();
    let a = load_splits(&files(train.clone(), None, None), &options).unwrap();
    let b = load_splits(&files(train.clone(), None, None), &options).unwrap();
    assert_eq!(a.labels.labels(), &["neg", "neutral", "pos"]);
    assert_eq!((a.train.len(), a.valid.len(), a.test.len()), (160, 20, 20));
    assert_eq!(a.train, b.train);
    assert_eq!(a.test, b.test);
    // Stratified: each held-out set has the label proportions of the whole (1:1:2).
    assert_eq!(
        counts(a.test.iter().map(|e| e.target.class().unwrap())),
        BTreeMap::from([(0, 5), (1, 5), (2, 10)])
    );
    let other = load_splits(
        &files(train, None, None),
        &DataOptions { seed: 7, ..options },
    )
    .unwrap();
    assert_ne!(a.test, other.test, "another seed gives another split");
}

#[test]
fn given_valid_and_test_files_are_used_and_unknown_labels_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, valid, test) = (
        tmp.path().join("t.csv"),
        tmp.path().join("v.csv"),
        tmp.path().join("s.csv"),
    );
    write_csv(&train, 40, &["a", "b"]);
    write_csv(&valid, 10, &["a", "b"]);
    write_csv(&test, 6, &["b", "a"]);
    let s = load_splits(
        &files(train.clone(), Some(valid.clone()), Some(test.clone())),
        &DataOptions::default(),
    )
    .unwrap();
    assert_eq!((s.train.len(), s.valid.len(), s.test.len()), (40, 10, 6));

    // Only --valid: the test set is split off the training file.
    let s = load_splits(
        &files(train.clone(), Some(valid.clone()), None),
        &DataOptions::default(),
    )
    .unwrap();
    assert_eq!((s.train.len(), s.valid.len(), s.test.len()), (36, 10, 4));

    write_csv(&test, 6, &["a", "zebra"]);
    let err = load_splits(
        &files(train, Some(valid), Some(test)),
        &DataOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("zebra") && err.contains("s.csv"), "{err}");
}

#[test]
fn bad_ratios_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.csv");
    write_csv(&train, 20, &["a", "b"]);
    let options = DataOptions {
        valid_ratio: 0.6,
        test_ratio: 0.5,
        ..DataOptions::default()
    };
    let err = load_splits(&files(train, None, None), &options).unwrap_err();
    assert!(matches!(err, DataError::Invalid { .. }), "{err}");
}

#[test]
fn encoding_and_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.csv");
    write_csv(&train, 100, &["a", "b"]);
    let s = load_splits(&files(train, None, None), &DataOptions::default()).unwrap();
    let tok = tokenizer();
    let encoded = encode_examples(&tok, &s.train).unwrap();
    assert_eq!(encoded.len(), s.train.len());
    for (e, x) in encoded.iter().zip(&s.train) {
        assert_eq!(e.target, x.target);
        assert_eq!(
            e.encoding,
            tok.encode(&x.text, None).unwrap(),
            "batch encoding = one by one"
        );
    }
    let summary = SplitSummary::new(&encoded, 2);
    assert_eq!(summary.examples, 80);
    assert_eq!(summary.per_label.iter().sum::<usize>(), 80);
    // Texts of 1..=13 words + [CLS]/[SEP], truncated at 16.
    assert_eq!(summary.length_max, 15);
    assert!(summary.length_p50 <= summary.length_p95 && summary.length_p95 <= summary.length_max);
    assert_eq!(summary.truncated_share, 0.0);
}

#[test]
fn augmentation_adds_copies_to_train_only() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.csv");
    write_csv(&train, 50, &["a", "b"]);
    let mut s = load_splits(&files(train, None, None), &DataOptions::default()).unwrap();
    let (valid, test) = (s.valid.clone(), s.test.clone());
    let n = s.train.len();
    let config: AugmentConfig = "delete=0.2,swap=0.1,mask=0.15".parse().unwrap();
    let config = AugmentConfig {
        copies: 2,
        ..config
    };
    s.augment_train(&config, "[MASK]", 1);
    assert_eq!(s.train.len(), 3 * n);
    assert_eq!((s.valid, s.test), (valid, test));
    assert_eq!(
        counts(s.train[n..].iter().map(|e| e.target.class().unwrap())),
        counts(s.train[..n].iter().map(|e| e.target.class().unwrap()))
            .into_iter()
            .map(|(k, v)| (k, 2 * v))
            .collect()
    );
}

#[test]
fn bucketed_loader_yields_every_example_once_with_correct_padding() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.csv");
    write_csv(&train, 120, &["a", "b", "c"]);
    let s = load_splits(&files(train, None, None), &DataOptions::default()).unwrap();
    let tok = tokenizer();
    let encoded = Arc::new(encode_examples(&tok, &s.train).unwrap());
    let lengths: Vec<usize> = encoded.iter().map(|e| e.len()).collect();
    let sampler = BucketSampler::new(lengths.clone(), BatchSize::Examples(8), true, 3).unwrap();
    let batcher = TaskBatcher {
        pack: false,
        pad_id: tok.pad_id(),
        pad_to_multiple: 1,
        scale: None,
        labels: 0,
    };
    let device = Device::flex();
    for epoch in 0..2 {
        let loader = bucketed_loader(encoded.clone(), &sampler, epoch, 0, batcher, 2, &device);
        let mut seen = Vec::new();
        for batch in loader.iter() {
            let batch = batch.unwrap();
            let [b, seq] = batch.tokens.input_ids.dims();
            assert!(b <= 8);
            assert_eq!(
                seq,
                *batch.tokens.lengths.iter().max().unwrap(),
                "padded to the longest"
            );
            let mask = batch
                .tokens
                .attention_mask
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap();
            for (row, &len) in batch.tokens.lengths.iter().enumerate() {
                let real: f32 = mask[row * seq..(row + 1) * seq].iter().sum();
                assert_eq!(real as usize, len);
            }
            seen.extend(batch.tokens.lengths.iter().copied());
            assert_eq!(batch.targets.classes().unwrap().dims(), [b]);
        }
        let mut want = lengths.clone();
        want.sort();
        seen.sort();
        assert_eq!(seen, want, "every example exactly once in epoch {epoch}");
    }
    // Resuming inside an epoch skips exactly the batches already seen.
    let full = sampler.epoch(1).len();
    let rest = bucketed_loader(encoded.clone(), &sampler, 1, 3, batcher, 1, &device);
    assert_eq!(rest.iter().count(), full - 3);

    let eval = sequential_loader(encoded.clone(), 32, batcher, &device);
    let labels: Vec<i64> = eval
        .iter()
        .flat_map(|b| {
            b.unwrap()
                .targets
                .classes()
                .unwrap()
                .clone()
                .into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .unwrap()
        })
        .collect();
    assert_eq!(
        labels,
        encoded
            .iter()
            .map(|e| e.target.class().unwrap() as i64)
            .collect::<Vec<_>>(),
        "evaluation keeps order"
    );
}

#[test]
fn regression_reads_numbers_splits_across_the_range_and_names_a_bad_value() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("scores.csv");
    let mut text = String::from("text,label\n");
    for i in 0..200 {
        text.push_str(&format!(
            "\"{}\",{}\n",
            WORDS[i % WORDS.len()],
            i as f32 * 0.5
        ));
    }
    std::fs::write(&train, &text).unwrap();
    let options = DataOptions {
        task: kiln_data::Task::Regression,
        ..DataOptions::default()
    };
    let s = load_splits(&files(train.clone(), None, None), &options).unwrap();
    assert!(s.labels.is_empty(), "a regression set has no classes");
    assert_eq!(s.num_outputs(), 1);
    assert_eq!((s.train.len(), s.valid.len(), s.test.len()), (160, 20, 20));
    // Stratified by decile: each of the 10 deciles (20 values each) gives 2 to the test split.
    let deciles = counts(
        s.test
            .iter()
            .map(|e| (e.target.value().unwrap() / 10.0) as usize),
    );
    assert_eq!(deciles, (0..10).map(|d| (d, 2)).collect());
    let scale = s.value_scale().unwrap();
    let train_values: Vec<f64> = s
        .train
        .iter()
        .map(|e| e.target.value().unwrap() as f64)
        .collect();
    let mean = train_values.iter().sum::<f64>() / train_values.len() as f64;
    assert!(
        (scale.mean as f64 - mean).abs() < 1e-3,
        "{scale:?} vs {mean}"
    );
    assert!((scale.restore(scale.standardise(37.5)) - 37.5).abs() < 1e-4);

    // A value that is not a number is refused with its file and line.
    std::fs::write(&train, text.replacen(",3\n", ",three\n", 1)).unwrap();
    let err = load_splits(&files(train.clone(), None, None), &options)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("scores.csv") && err.contains(":8") && err.contains("three"),
        "{err}"
    );
    std::fs::write(&train, text.replacen(",3\n", ",NaN\n", 1)).unwrap();
    let err = load_splits(&files(train, None, None), &options)
        .unwrap_err()
        .to_string();
    assert!(err.contains("scores.csv") && err.contains("NaN"), "{err}");
}

#[test]
fn multi_label_sets_come_from_delimited_cells_or_json_arrays_and_bad_sets_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    // Topics: every example has "news" or "sport" (or both), some also "local".
    let csv = tmp.path().join("topics.csv");
    let jsonl = tmp.path().join("topics.jsonl");
    let mut csv_text = String::from("text,label\n");
    let mut jsonl_text = String::new();
    for i in 0..120 {
        let mut set = vec![if i % 2 == 0 { "news" } else { "sport" }];
        if i % 3 == 0 {
            set.push("local");
        }
        if i % 5 == 0 && i % 2 == 0 {
            set.push("sport");
        }
        let text = WORDS[i % WORDS.len()];
        csv_text.push_str(&format!("{text},\"{}\"\n", set.join(" ; ")));
        jsonl_text.push_str(&format!(
            "{}\n",
            serde_json::json!({"text": text, "label": set})
        ));
    }
    std::fs::write(&csv, &csv_text).unwrap();
    std::fs::write(&jsonl, &jsonl_text).unwrap();
    let options = DataOptions {
        task: kiln_data::Task::MultiLabel,
        ..DataOptions::default()
    };
    let from_csv = load_splits(&files(csv.clone(), None, None), &options).unwrap();
    let from_json = load_splits(&files(jsonl.clone(), None, None), &options).unwrap();
    assert_eq!(from_csv.labels.labels(), &["local", "news", "sport"]);
    assert_eq!(from_csv.train, from_json.train, "the same sets either way");
    assert_eq!(from_csv.num_outputs(), 3);
    // Rows 0, 30, 60 and 90 are news, local and sport: indices in label order.
    let all_three = [&from_csv.train, &from_csv.valid, &from_csv.test]
        .iter()
        .flat_map(|split| split.iter())
        .filter(|e| e.target.labels() == Some(&[0, 1, 2][..]))
        .count();
    assert_eq!(all_three, 4);
    // Iterative stratification: each held-out split has about a tenth of every label.
    // (sizes within an example of a tenth: the algorithm places whole label sets)
    for split in [&from_csv.valid, &from_csv.test] {
        assert!((11..=13).contains(&split.len()), "{}", split.len());
        for label in 0..3 {
            let has = |e: &kiln_data::Example| e.target.labels().unwrap().contains(&label);
            let total = from_csv
                .train
                .iter()
                .chain(&from_csv.valid)
                .chain(&from_csv.test);
            let share = split.iter().filter(|e| has(e)).count() as f64
                / total.filter(|e| has(e)).count() as f64;
            assert!((share - 0.1).abs() < 0.04, "label {label}: {share}");
        }
    }

    // A set with only delimiters is empty: refused with its file and line.
    std::fs::write(
        &csv,
        csv_text.replacen("\"news ; local ; sport\"", "\" ; \"", 1),
    )
    .unwrap();
    let err = load_splits(&files(csv.clone(), None, None), &options)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("topics.csv:2") && err.contains("empty"),
        "{err}"
    );
    // An empty JSON array too.
    std::fs::write(
        &jsonl,
        jsonl_text.replacen("[\"news\",\"local\",\"sport\"]", "[]", 1),
    )
    .unwrap();
    let err = load_splits(&files(jsonl, None, None), &options)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("topics.jsonl:1") && err.contains("empty"),
        "{err}"
    );
    // A single-label run refuses a list, naming the option that reads lists.
    std::fs::write(&csv, &csv_text).unwrap();
    let jsonl = tmp.path().join("list.jsonl");
    std::fs::write(&jsonl, "{\"text\": \"good\", \"label\": [\"a\", \"b\"]}\n").unwrap();
    let err = load_splits(&files(jsonl, None, None), &DataOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("list.jsonl:1") && err.contains("multi-label"),
        "{err}"
    );
}

fn tagged_file(dir: &Path, name: &str, sentences: &[&str]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, sentences.join("\n") + "\n").unwrap();
    path
}

#[test]
fn tagged_sentences_split_with_one_tag_map_and_unseen_held_out_tags_go_past_it() {
    use kiln_data::pipeline::{encode_tagged_split, load_tagged_splits};
    use kiln_data::tagged::{PieceLabels, TaggedOptions, IGNORE};
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..50)
        .map(|i| format!("the/DT movie/NN was/VBD {}/JJ", ["good", "bad"][i % 2]))
        .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let train = tagged_file(dir.path(), "train.txt", &lines);
    let options = DataOptions {
        task: kiln_data::Task::Token,
        ..DataOptions::default()
    };
    let tagged = TaggedOptions::default();
    let splits = load_tagged_splits(&files(train.clone(), None, None), &options, &tagged).unwrap();
    assert_eq!(splits.tags.labels(), ["DT", "JJ", "NN", "VBD"]);
    let sizes = (
        splits.train.sentences.len(),
        splits.valid.sentences.len(),
        splits.test.sentences.len(),
    );
    assert_eq!(sizes, (40, 5, 5));
    let again = load_tagged_splits(&files(train.clone(), None, None), &options, &tagged).unwrap();
    assert_eq!(again.test.sentences, splits.test.sentences, "seeded");
    // load_splits is for texts: a token task is sent to load_tagged_splits.
    assert!(load_splits(&files(train.clone(), None, None), &options).is_err());

    // A test file with a tag training lacks: it gets the index after the trained tags.
    let test = tagged_file(dir.path(), "test.txt", &["the/DT film/NNX"]);
    let given = load_tagged_splits(&files(train, None, Some(test)), &options, &tagged).unwrap();
    let encoded = encode_tagged_split(
        &tokenizer(),
        &given.test,
        &given.tags,
        PieceLabels::FirstPiece,
    )
    .unwrap();
    assert_eq!(encoded.unseen_tags(4), ["NNX"]);
    assert_eq!(encoded.tags.len(), 5);
    let tags = encoded.examples[0].target.tags().unwrap();
    assert_eq!(tags.first(), Some(&IGNORE), "[CLS]");
    assert!(tags.contains(&4), "{tags:?}");
}
