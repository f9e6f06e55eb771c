//! The data pipeline end to end: a source (a built-in set or the user's files) → train / valid /
//! test examples with one label map → token ids, encoded once per run → a summary to print
//! before training.

use std::path::{Path, PathBuf};

use crate::augment::{augment, AugmentConfig};
use crate::builtin::{penn_tagged, Builtin};
use crate::error::DataError;
use crate::example::{Example, RawDataset};
use crate::labels::{encode_values, LabelMap};
use crate::read::{read_file, ReadOptions};
use crate::split::{
    iterative_holdout, iterative_split, stratified_holdout, stratified_split, SplitRatios,
};
use crate::tagged::{
    encode_tagged, read_tagged, PieceLabels, TaggedDataset, TaggedOptions, TaggedSentence,
};
use crate::target::{value_bins, Target, Task, ValueScale};
use crate::tokenize::{Encoding, TextTokenizer};

/// Where the examples come from.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// A built-in set, parsed from the directory `cargo xtask fetch NAME` extracted.
    Builtin { set: Builtin, dir: PathBuf },
    /// The user's files; missing valid/test sets are split off the training file.
    Files {
        train: PathBuf,
        valid: Option<PathBuf>,
        test: Option<PathBuf>,
    },
}

impl std::fmt::Display for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataSource::Builtin { set, .. } => write!(f, "{set}"),
            DataSource::Files { train, valid, test } => {
                write!(f, "train={}", train.display())?;
                if let Some(v) = valid {
                    write!(f, " valid={}", v.display())?;
                }
                if let Some(t) = test {
                    write!(f, " test={}", t.display())?;
                }
                Ok(())
            }
        }
    }
}

/// How to read and split.
#[derive(Debug, Clone)]
pub struct DataOptions {
    pub read: ReadOptions,
    /// Share of the training file held out for validation when no `--valid` file is given.
    pub valid_ratio: f64,
    /// Share of the training file held out for testing when no `--test` file is given.
    pub test_ratio: f64,
    pub seed: u64,
    /// How the label column is read: class names, numbers, or sets of class names.
    pub task: Task,
    /// Multi-label: what separates the labels of a set in a text column (`sports;politics`);
    /// JSON arrays need none.
    pub label_delimiter: String,
}

impl Default for DataOptions {
    fn default() -> Self {
        Self {
            read: ReadOptions::default(),
            valid_ratio: 0.1,
            test_ratio: 0.1,
            seed: 42,
            task: Task::Classification,
            label_delimiter: ";".into(),
        }
    }
}

/// Labelled train / valid / test examples sharing one label map.
#[derive(Debug, Clone)]
pub struct Splits {
    pub labels: LabelMap,
    pub train: Vec<Example>,
    pub valid: Vec<Example>,
    pub test: Vec<Example>,
}

fn read(path: &Path, options: &ReadOptions) -> Result<RawDataset, DataError> {
    read_file(path, options)
}

/// Reads the source and splits it. The label map comes from the training data alone, in a
/// deterministic order; a valid/test label that training never saw is an error naming it.
pub fn load_splits(source: &DataSource, options: &DataOptions) -> Result<Splits, DataError> {
    if options.task == Task::Token {
        return Err(DataError::Invalid {
            what: "task".into(),
            message: "tagged sentences are read by load_tagged_splits, not load_splits".into(),
        });
    }
    let (train_raw, valid_raw, test_raw) = match source {
        // A set with its own published test split (reuters-r52) uses it as given, like `--test`.
        DataSource::Builtin { set, dir } => (set.load(dir)?, None, set.load_test(dir)?),
        DataSource::Files { train, valid, test } => (
            read(train, &options.read)?,
            valid
                .as_deref()
                .map(|p| read(p, &options.read))
                .transpose()?,
            test.as_deref()
                .map(|p| read(p, &options.read))
                .transpose()?,
        ),
    };
    // Classes come from the training data alone; a regression set has no classes.
    let delimiter = options.label_delimiter.as_str();
    let labels = match options.task {
        Task::Classification | Task::Token => LabelMap::from_examples(&train_raw.examples),
        Task::Regression => LabelMap::from_labels(Vec::new()),
        Task::MultiLabel => LabelMap::from_label_sets(&train_raw.examples, delimiter),
    };
    let encode = |data: &RawDataset| match options.task {
        Task::Classification | Task::Token => labels.encode(data),
        Task::Regression => encode_values(data),
        Task::MultiLabel => labels.encode_sets(data, delimiter),
    };
    let all_train = encode(&train_raw)?;
    let valid_given = valid_raw.map(|d| encode(&d)).transpose()?;
    let test_given = test_raw.map(|d| encode(&d)).transpose()?;
    let all_train_len = all_train.len();
    // Splits are stratified by class, by decile of the value (every split spans the range),
    // or iteratively over label sets.
    let strata = match options.task {
        Task::Classification | Task::MultiLabel | Task::Token => all_train
            .iter()
            .map(|e| e.target.class().unwrap_or(0))
            .collect(),
        Task::Regression => {
            let values: Vec<f32> = all_train.iter().filter_map(|e| e.target.value()).collect();
            value_bins(&values, 10)
        }
    };
    let all_train: Vec<(usize, Example)> = strata.into_iter().zip(all_train).collect();
    let multi = options.task == Task::MultiLabel;
    let stratum_of = |e: &(usize, Example)| e.0;
    let set_of = |e: &(usize, Example)| e.1.target.labels().unwrap_or(&[]).to_vec();
    let holdout = |ratio: f64| match multi {
        true => iterative_holdout(&all_train, set_of, ratio, options.seed),
        false => stratified_holdout(&all_train, stratum_of, ratio, options.seed),
    };
    let examples = |pairs: Vec<(usize, Example)>| pairs.into_iter().map(|(_, e)| e).collect();
    let (train, valid, test): (Vec<Example>, Vec<Example>, Vec<Example>) =
        match (valid_given, test_given) {
            (Some(valid), Some(test)) => (examples(all_train), valid, test),
            (Some(valid), None) => {
                let (train, test) = holdout(options.test_ratio)?;
                (examples(train), valid, examples(test))
            }
            (None, Some(test)) => {
                let (train, valid) = holdout(options.valid_ratio)?;
                (examples(train), examples(valid), test)
            }
            (None, None) => {
                let ratios = SplitRatios {
                    valid: options.valid_ratio,
                    test: options.test_ratio,
                };
                let split = match multi {
                    true => iterative_split(&all_train, set_of, ratios, options.seed)?,
                    false => stratified_split(&all_train, stratum_of, ratios, options.seed)?,
                };
                (
                    examples(split.train),
                    examples(split.valid),
                    examples(split.test),
                )
            }
        };
    if train.is_empty() {
        return Err(DataError::Invalid {
            what: "training data".into(),
            message: format!("no training examples left from {source} after the split"),
        });
    }
    check_held_out(
        source,
        options,
        all_train_len,
        valid.is_empty(),
        test.is_empty(),
    )?;
    Ok(Splits {
        labels,
        train,
        valid,
        test,
    })
}

/// A held-out split asked for (ratio above 0, or a file given) that came out empty would report
/// "accuracy 0 on 0 examples": refuse it, and say what would work.
fn check_held_out(
    source: &DataSource,
    options: &DataOptions,
    all_train: usize,
    valid_empty: bool,
    test_empty: bool,
) -> Result<(), DataError> {
    for (name, flag, ratio, given, empty) in [
        (
            "validation",
            "valid",
            options.valid_ratio,
            matches!(source, DataSource::Files { valid: Some(_), .. }),
            valid_empty,
        ),
        (
            "test",
            "test",
            options.test_ratio,
            matches!(source, DataSource::Files { test: Some(_), .. }),
            test_empty,
        ),
    ] {
        if empty && (given || ratio > 0.0) {
            let message = if given {
                format!("the --{flag} file holds no examples")
            } else {
                format!(
                    "{all_train} training examples are too few to hold out {ratio} of each label \
                     for {name} (a label keeps its examples in training until it has enough); give \
                     a --{flag} file, raise --{flag}-ratio, or pass --{flag}-ratio 0 to go without \
                     {name}"
                )
            };
            return Err(DataError::Invalid {
                what: format!("{name} split of {source}"),
                message,
            });
        }
    }
    Ok(())
}

/// Token classification's sentences: train / valid / test with one tag map from the training
/// sentences, and held-out sets beyond the test split (penn-tagged: the OANC sentences, out of
/// domain).
#[derive(Debug, Clone)]
pub struct TaggedSplits {
    /// The training sentences' tags, in canonical order (see [`LabelMap::from_labels`]).
    pub tags: LabelMap,
    pub train: TaggedDataset,
    pub valid: TaggedDataset,
    pub test: TaggedDataset,
    /// Named further test sets, evaluated after `test`.
    pub extra: Vec<(String, TaggedDataset)>,
}

/// Reads tagged sentences (`tagged` says how) and splits them as [`load_splits`] splits texts:
/// a valid/test file is used as given, otherwise a seeded share of the training file is held
/// out (sentences are not stratified: a sentence holds many tags). Unlike classes, a held-out
/// tag that training lacks is not an error: its words are scored as errors (see
/// [`encode_tagged_split`]).
pub fn load_tagged_splits(
    source: &DataSource,
    options: &DataOptions,
    tagged: &TaggedOptions,
) -> Result<TaggedSplits, DataError> {
    let read = |path: &Path| read_tagged(path, tagged);
    let (all_train, valid_given, test_given, extra) = match source {
        DataSource::Builtin {
            set: Builtin::PennTagged,
            dir,
        } => {
            let (wsj, oanc) = penn_tagged(dir)?;
            (wsj, None, None, vec![("oanc".to_string(), oanc)])
        }
        DataSource::Builtin { set, .. } => {
            return Err(DataError::Invalid {
                what: "data set".into(),
                message: format!(
                    "{set} is a {} set, not tagged sentences (the tagged built-in set is \
                     penn-tagged)",
                    set.task()
                ),
            })
        }
        DataSource::Files { train, valid, test } => (
            read(train)?,
            valid.as_deref().map(read).transpose()?,
            test.as_deref().map(read).transpose()?,
            Vec::new(),
        ),
    };
    let tags = LabelMap::from_labels(
        all_train
            .sentences
            .iter()
            .flat_map(|s| s.tags.iter().cloned())
            .collect(),
    );
    let all = &all_train.sentences;
    let one_stratum = |_: &TaggedSentence| 0;
    let part = |sentences: Vec<TaggedSentence>| TaggedDataset {
        path: all_train.path.clone(),
        sentences,
    };
    let (train, valid, test) = match (valid_given, test_given) {
        (Some(valid), Some(test)) => (all_train.clone(), valid, test),
        (Some(valid), None) => {
            let (train, test) =
                stratified_holdout(all, one_stratum, options.test_ratio, options.seed)?;
            (part(train), valid, part(test))
        }
        (None, Some(test)) => {
            let (train, valid) =
                stratified_holdout(all, one_stratum, options.valid_ratio, options.seed)?;
            (part(train), part(valid), test)
        }
        (None, None) => {
            let ratios = SplitRatios {
                valid: options.valid_ratio,
                test: options.test_ratio,
            };
            let split = stratified_split(all, one_stratum, ratios, options.seed)?;
            (part(split.train), part(split.valid), part(split.test))
        }
    };
    check_held_out(
        source,
        options,
        all.len(),
        valid.sentences.is_empty(),
        test.sentences.is_empty(),
    )?;
    Ok(TaggedSplits {
        tags,
        train,
        valid,
        test,
        extra,
    })
}

/// One split of tagged sentences, encoded: an example per window (see [`encode_tagged`]) and
/// the tag names its targets index — the training tags, then this split's tags that training
/// lacks.
#[derive(Debug, Clone)]
pub struct EncodedTagged {
    pub examples: Vec<EncodedExample>,
    pub tags: Vec<String>,
    /// Sentences the windows came from.
    pub sentences: usize,
}

impl EncodedTagged {
    /// Tags of this split that training lacks (the model can never predict them).
    pub fn unseen_tags(&self, trained: usize) -> &[String] {
        self.tags.get(trained..).unwrap_or_default()
    }
}

/// Encodes every sentence of `data` for token classification with the training `tags`; a tag
/// training lacks gets an index past them (scored as an error, left out of the loss).
pub fn encode_tagged_split(
    tokenizer: &TextTokenizer,
    data: &TaggedDataset,
    tags: &LabelMap,
    pieces: PieceLabels,
) -> Result<EncodedTagged, DataError> {
    let tags = tags.extended(data.sentences.iter().flat_map(|s| s.tags.iter().cloned()));
    let mut examples = Vec::new();
    for sentence in &data.sentences {
        for window in encode_tagged(tokenizer, &data.path, sentence, &tags, pieces)? {
            examples.push(EncodedExample {
                encoding: window.encoding,
                target: Target::Tags(window.labels),
            });
        }
    }
    Ok(EncodedTagged {
        examples,
        tags: tags.labels().to_vec(),
        sentences: data.sentences.len(),
    })
}

/// Whether a target is, or holds, class `label`.
fn has_label(target: &Target, label: usize) -> bool {
    target.class() == Some(label) || target.labels().is_some_and(|s| s.contains(&label))
}

impl Splits {
    /// Labels that training has but a held-out split lacks (too rare to split off, or absent
    /// from a given file): the metrics of that split cannot see them. One line per split.
    pub fn unmeasured_labels(&self) -> Vec<String> {
        let names = self.labels.labels();
        let count = |split: &[Example], label: usize| {
            split.iter().filter(|e| has_label(&e.target, label)).count()
        };
        [("validation", &self.valid), ("test", &self.test)]
            .into_iter()
            .filter(|(_, split)| !split.is_empty())
            .filter_map(|(name, split)| {
                let missing: Vec<String> = (0..names.len())
                    .filter(|&l| count(split, l) == 0)
                    .map(|l| format!("{} ({} in training)", names[l], count(&self.train, l)))
                    .collect();
                (!missing.is_empty()).then(|| {
                    format!(
                        "the {name} split has no example of {}: its metrics cannot measure them",
                        missing.join(", ")
                    )
                })
            })
            .collect()
    }

    /// The scale of the training values (regression); `None` for classes.
    pub fn value_scale(&self) -> Option<ValueScale> {
        let values: Vec<f32> = self.train.iter().filter_map(|e| e.target.value()).collect();
        ValueScale::of(values)
    }

    /// Outputs a model needs for these targets: one per class, or one value.
    pub fn num_outputs(&self) -> usize {
        match self.train.first().map(|e| &e.target) {
            Some(Target::Value(_)) => 1,
            _ => self.labels.len(),
        }
    }

    /// Adds `config.copies` augmented copies of every training example (originals kept).
    /// Validation and test data are never augmented.
    pub fn augment_train(&mut self, config: &AugmentConfig, mask_token: &str, seed: u64) {
        if config.is_off() {
            return;
        }
        let extra = augment(&self.train, config, mask_token, seed);
        self.train.extend(extra);
    }
}

/// A tokenized example with its target.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedExample {
    pub encoding: Encoding,
    pub target: Target,
}

impl EncodedExample {
    pub fn len(&self) -> usize {
        self.encoding.len()
    }
    pub fn is_empty(&self) -> bool {
        self.encoding.is_empty()
    }
}

/// Tokenizes every example once (in parallel inside `tokenizers`).
pub fn encode_examples(
    tokenizer: &TextTokenizer,
    examples: &[Example],
) -> Result<Vec<EncodedExample>, DataError> {
    let pairs: Vec<(&str, Option<&str>)> = examples
        .iter()
        .map(|e| (e.text.as_str(), e.text_pair.as_deref()))
        .collect();
    let encodings = tokenizer.encode_batch(&pairs)?;
    Ok(encodings
        .into_iter()
        .zip(examples)
        .map(|(encoding, e)| EncodedExample {
            encoding,
            target: e.target.clone(),
        })
        .collect())
}

/// Counts and token-length statistics of one split.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SplitSummary {
    pub examples: usize,
    /// Examples per label, in label-index order.
    pub per_label: Vec<usize>,
    pub length_p50: usize,
    pub length_p95: usize,
    pub length_max: usize,
    /// Share of examples that truncation at `max_len` shortened.
    pub truncated_share: f64,
}

impl SplitSummary {
    pub fn new(examples: &[EncodedExample], num_labels: usize) -> Self {
        let mut per_label = vec![0; num_labels];
        for e in examples {
            let classes = e.target.class().into_iter();
            // A tagged example counts each labelled piece's tag.
            let tags = e.target.tags().unwrap_or(&[]).iter();
            let tags = tags.filter_map(|&t| usize::try_from(t).ok());
            for l in classes
                .chain(e.target.labels().unwrap_or(&[]).iter().copied())
                .chain(tags)
            {
                if let Some(c) = per_label.get_mut(l) {
                    *c += 1;
                }
            }
        }
        let mut lengths: Vec<usize> = examples.iter().map(|e| e.len()).collect();
        lengths.sort_unstable();
        let quantile = |q: f64| -> usize {
            if lengths.is_empty() {
                return 0;
            }
            // Nearest-rank quantile: the smallest length with at least q of the data at or below it.
            let rank = ((q * lengths.len() as f64).ceil() as usize).clamp(1, lengths.len());
            lengths[rank - 1]
        };
        let truncated = examples.iter().filter(|e| e.encoding.truncated).count();
        Self {
            examples: examples.len(),
            per_label,
            length_p50: quantile(0.5),
            length_p95: quantile(0.95),
            length_max: lengths.last().copied().unwrap_or(0),
            truncated_share: if examples.is_empty() {
                0.0
            } else {
                truncated as f64 / examples.len() as f64
            },
        }
    }
}

/// The summary printed before training.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DataSummary {
    pub source: String,
    pub labels: Vec<String>,
    pub max_len: usize,
    pub train: SplitSummary,
    pub valid: SplitSummary,
    pub test: SplitSummary,
}

impl std::fmt::Display for DataSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.labels.is_empty() {
            writeln!(
                f,
                "data: {} — regression (one value per example)",
                self.source
            )?;
        } else {
            writeln!(
                f,
                "data: {} — {} labels: {}",
                self.source,
                self.labels.len(),
                self.labels.join(", ")
            )?;
        }
        writeln!(
            f,
            "  {:<6} {:>8}  {:<28} {:>5} {:>5} {:>5}  truncated at {}",
            "split", "examples", "per label", "p50", "p95", "max", self.max_len
        )?;
        for (name, s) in [
            ("train", &self.train),
            ("valid", &self.valid),
            ("test", &self.test),
        ] {
            let per_label = s
                .per_label
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" / ");
            writeln!(
                f,
                "  {:<6} {:>8}  {:<28} {:>5} {:>5} {:>5}  {:.1}%",
                name,
                s.examples,
                per_label,
                s.length_p50,
                s.length_p95,
                s.length_max,
                100.0 * s.truncated_share
            )?;
        }
        Ok(())
    }
}
