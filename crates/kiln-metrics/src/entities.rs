//! Entity-level precision, recall and F1 over tag sequences (named entities, chunks), with
//! seqeval's semantics: the default, conlleval-like mode that reads IOB1, IOB2 and IOBES
//! sequences leniently, and the strict mode that counts only the entities a scheme (IOB2,
//! IOBES) allows. Tags are `PREFIX-TYPE` (`B-PER`) or `O`.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A scheme that strict mode enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// `B-` begins, `I-` continues, `O` is outside.
    Iob2,
    /// `B-` begins, `I-` continues, `E-` ends, `S-` is a one-word entity, `O` is outside.
    Iobes,
}

/// How entities are read off a tag sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntityMode {
    /// seqeval's default (conlleval's rules): an `I-` after `O` starts an entity, a change of
    /// type ends one.
    Lenient,
    /// seqeval's `mode="strict"`: only entities the scheme allows count.
    Strict(Scheme),
}

/// One entity: its type and the words `start..end` of its sentence.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Entity {
    pub kind: String,
    pub start: usize,
    pub end: usize,
}

/// The entities of one sentence's tags.
pub fn entities(tags: &[&str], mode: EntityMode) -> Result<Vec<Entity>, String> {
    match mode {
        EntityMode::Lenient => Ok(lenient_entities(tags)),
        EntityMode::Strict(scheme) => strict_entities(tags, scheme),
    }
}

/// seqeval's `get_entities`: the first character is the prefix, the type follows the dash.
fn lenient_entities(tags: &[&str]) -> Vec<Entity> {
    let split = |tag: &str| -> (char, String) {
        let prefix = tag.chars().next().unwrap_or('O');
        let rest: String = tag.chars().skip(1).collect();
        let kind = match rest.split_once('-') {
            Some((_, kind)) => kind.to_string(),
            None => rest,
        };
        (prefix, if kind.is_empty() { "_".into() } else { kind })
    };
    let mut found = Vec::new();
    let (mut prev_tag, mut prev_kind, mut begin) = ('O', String::new(), 0);
    for (i, tag) in tags.iter().copied().chain(std::iter::once("O")).enumerate() {
        let (tag, kind) = split(tag);
        if end_of_chunk(prev_tag, tag, &prev_kind, &kind) {
            found.push(Entity {
                kind: prev_kind.clone(),
                start: begin,
                end: i,
            });
        }
        if start_of_chunk(prev_tag, tag, &prev_kind, &kind) {
            begin = i;
        }
        (prev_tag, prev_kind) = (tag, kind);
    }
    found
}

fn end_of_chunk(prev: char, tag: char, prev_kind: &str, kind: &str) -> bool {
    matches!(prev, 'E' | 'S')
        || (matches!(prev, 'B' | 'I') && matches!(tag, 'B' | 'S' | 'O'))
        || (prev != 'O' && prev != '.' && prev_kind != kind)
}

fn start_of_chunk(prev: char, tag: char, prev_kind: &str, kind: &str) -> bool {
    matches!(tag, 'B' | 'S')
        || (matches!(prev, 'E' | 'S' | 'O') && matches!(tag, 'E' | 'I'))
        || (tag != 'O' && tag != '.' && prev_kind != kind)
}

/// A tag as strict mode reads it.
#[derive(Clone)]
struct Token {
    prefix: char,
    kind: String,
}

impl Token {
    fn new(tag: &str) -> Self {
        let prefix = tag.chars().next().unwrap_or('O');
        let rest: String = tag.chars().skip(1).collect();
        let kind = rest.trim_matches('-').to_string();
        Self {
            prefix,
            kind: if kind.is_empty() { "_".into() } else { kind },
        }
    }
}

/// How a token's type must relate to the previous one's in a pattern.
#[derive(Clone, Copy)]
enum Kind {
    Any,
    Same,
    Diff,
}

/// (previous prefix, this prefix, type relation); `*` matches any prefix.
type Pattern = (char, char, Kind);

struct Rules {
    allowed: &'static str,
    start: &'static [Pattern],
    inside: &'static [Pattern],
    end: &'static [Pattern],
}

const IOB2: Rules = Rules {
    allowed: "BIO",
    start: &[('*', 'B', Kind::Any)],
    inside: &[('B', 'I', Kind::Same), ('I', 'I', Kind::Same)],
    end: &[
        ('I', 'O', Kind::Any),
        ('I', 'I', Kind::Diff),
        ('I', 'B', Kind::Any),
        ('B', 'O', Kind::Any),
        ('B', 'I', Kind::Diff),
        ('B', 'B', Kind::Any),
    ],
};

const IOBES: Rules = Rules {
    allowed: "BIOES",
    start: &[('*', 'B', Kind::Any), ('*', 'S', Kind::Any)],
    inside: &[
        ('B', 'I', Kind::Same),
        ('B', 'E', Kind::Same),
        ('I', 'I', Kind::Same),
        ('I', 'E', Kind::Same),
    ],
    end: &[('S', '*', Kind::Any), ('E', '*', Kind::Any)],
};

fn matches(patterns: &[Pattern], prev: &Token, token: &Token) -> bool {
    patterns.iter().any(|&(p, c, kind)| {
        (p == '*' || p == prev.prefix)
            && (c == '*' || c == token.prefix)
            && match kind {
                Kind::Any => true,
                Kind::Same => prev.kind == token.kind,
                Kind::Diff => prev.kind != token.kind,
            }
    })
}

/// seqeval's `Tokens.entities`: an entity starts where the scheme says one starts, runs while
/// its tokens are inside, and counts only if the token after it ends it.
fn strict_entities(tags: &[&str], scheme: Scheme) -> Result<Vec<Entity>, String> {
    let rules = match scheme {
        Scheme::Iob2 => &IOB2,
        Scheme::Iobes => &IOBES,
    };
    let tokens: Vec<Token> = tags
        .iter()
        .copied()
        .chain(std::iter::once("O"))
        .map(Token::new)
        .collect();
    let mut found = Vec::new();
    let outside = Token::new("O");
    let (mut i, mut prev) = (0, outside);
    while i < tokens.len() {
        let token = &tokens[i];
        if !rules.allowed.contains(token.prefix) {
            return Err(format!(
                "tag `{}` does not fit the {scheme:?} scheme (prefixes {})",
                tags.get(i).copied().unwrap_or("O"),
                rules.allowed
            ));
        }
        if matches(rules.start, &prev, token) {
            let mut end = i + 1;
            let mut inner = token.clone();
            while end < tokens.len() && matches(rules.inside, &inner, &tokens[end]) {
                inner = tokens[end].clone();
                end += 1;
            }
            let end = end.min(tokens.len() - 1);
            if matches(rules.end, &tokens[end - 1], &tokens[end]) {
                found.push(Entity {
                    kind: token.kind.clone(),
                    start: i,
                    end,
                });
            }
            i = end;
        } else {
            i += 1;
        }
        prev = tokens[i - 1].clone();
    }
    Ok(found)
}

/// Scores of one entity type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Entities of this type in the truth.
    pub support: usize,
}

/// Entity-level scores of predicted tag sequences against the true ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityMetrics {
    pub mode: EntityMode,
    /// Micro-averaged over all entities.
    pub micro: EntityScores,
    /// Per entity type, in type order (types of the truth and of the predictions).
    pub per_type: BTreeMap<String, EntityScores>,
}

impl EntityMetrics {
    /// `truth[i]` and `predicted[i]` are the tags of sentence `i` (equal lengths); an error
    /// names a sentence whose lengths differ or a tag the strict scheme does not allow.
    pub fn new(
        truth: &[Vec<String>],
        predicted: &[Vec<String>],
        mode: EntityMode,
    ) -> Result<Self, String> {
        if truth.len() != predicted.len() {
            return Err(format!(
                "{} true sentences but {} predicted",
                truth.len(),
                predicted.len()
            ));
        }
        let mut gold = BTreeSet::new();
        let mut guess = BTreeSet::new();
        for (s, (t, p)) in truth.iter().zip(predicted).enumerate() {
            if t.len() != p.len() {
                return Err(format!(
                    "sentence {}: {} true tags but {} predicted",
                    s + 1,
                    t.len(),
                    p.len()
                ));
            }
            for e in entities(&as_str(t), mode)? {
                gold.insert((e.kind, s, e.start, e.end));
            }
            for e in entities(&as_str(p), mode)? {
                guess.insert((e.kind, s, e.start, e.end));
            }
        }
        let kinds: BTreeSet<&String> = gold.iter().chain(&guess).map(|e| &e.0).collect();
        let count = |set: &BTreeSet<(String, usize, usize, usize)>, kind: Option<&String>| {
            set.iter()
                .filter(|e| kind.is_none_or(|k| &e.0 == k))
                .count()
        };
        let scores = |kind: Option<&String>| {
            let hits = gold
                .iter()
                .filter(|e| kind.is_none_or(|k| &e.0 == k) && guess.contains(*e))
                .count();
            score(hits, count(&guess, kind), count(&gold, kind))
        };
        Ok(Self {
            mode,
            micro: scores(None),
            per_type: kinds
                .into_iter()
                .map(|k| (k.clone(), scores(Some(k))))
                .collect(),
        })
    }
}

fn as_str(tags: &[String]) -> Vec<&str> {
    tags.iter().map(String::as_str).collect()
}

/// Precision, recall and F1 as scikit-learn computes them (0 where undefined).
fn score(hits: usize, predicted: usize, support: usize) -> EntityScores {
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let (precision, recall) = (ratio(hits, predicted), ratio(hits, support));
    let denominator = if precision + recall == 0.0 {
        1.0
    } else {
        precision + recall
    };
    EntityScores {
        precision,
        recall,
        f1: 2.0 * precision * recall / denominator,
        support,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Fixture {
        cases: Vec<Case>,
    }
    #[derive(Deserialize)]
    struct Case {
        name: String,
        mode: String,
        truth: Vec<Vec<String>>,
        pred: Vec<Vec<String>>,
        types: BTreeMap<String, Reported>,
        micro: Reported,
    }
    #[derive(Deserialize)]
    struct Reported {
        precision: f64,
        recall: f64,
        #[serde(rename = "f1-score")]
        f1: f64,
        support: usize,
    }

    fn same(ours: &EntityScores, theirs: &Reported) -> bool {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12;
        close(ours.precision, theirs.precision)
            && close(ours.recall, theirs.recall)
            && close(ours.f1, theirs.f1)
            && ours.support == theirs.support
    }

    /// seqeval 1.2.2's classification_report on seeded sequences
    /// (tests/fixtures/entity-metrics.json, scripts/reference/make_metric_fixtures.py): default
    /// mode on IOB1, IOB2 and IOBES tags, strict mode with IOB2 and IOBES.
    #[test]
    fn scores_equal_seqeval() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/entity-metrics.json"
        );
        let fixture: Fixture =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(fixture.cases.len() >= 5, "the fixture holds its cases");
        for case in &fixture.cases {
            let mode = match case.mode.as_str() {
                "default" => EntityMode::Lenient,
                "strict-iob2" => EntityMode::Strict(Scheme::Iob2),
                "strict-iobes" => EntityMode::Strict(Scheme::Iobes),
                other => panic!("mode {other}"),
            };
            let m = EntityMetrics::new(&case.truth, &case.pred, mode).unwrap();
            assert!(
                same(&m.micro, &case.micro),
                "{}: micro {:?}",
                case.name,
                m.micro
            );
            assert_eq!(
                m.per_type.keys().collect::<Vec<_>>(),
                case.types.keys().collect::<Vec<_>>(),
                "{}",
                case.name
            );
            for (kind, theirs) in &case.types {
                assert!(
                    same(&m.per_type[kind], theirs),
                    "{} {kind}: {:?}",
                    case.name,
                    m.per_type[kind]
                );
            }
        }
    }

    #[test]
    fn entities_by_hand() {
        let e = |kind: &str, start, end| Entity {
            kind: kind.into(),
            start,
            end,
        };
        let tags = ["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"];
        assert_eq!(
            entities(&tags, EntityMode::Lenient).unwrap(),
            [
                e("PER", 0, 2),
                e("LOC", 3, 4),
                e("LOC", 4, 5),
                e("ORG", 5, 6)
            ]
        );
        assert_eq!(
            entities(&tags, EntityMode::Strict(Scheme::Iob2)).unwrap(),
            [e("PER", 0, 2), e("LOC", 4, 5)]
        );
        let iobes = ["S-PER", "B-LOC", "E-LOC", "B-ORG", "I-ORG"];
        assert_eq!(
            entities(&iobes, EntityMode::Strict(Scheme::Iobes)).unwrap(),
            [e("PER", 0, 1), e("LOC", 1, 3)]
        );
        assert!(entities(&iobes, EntityMode::Strict(Scheme::Iob2)).is_err());
        let uneven = EntityMetrics::new(
            &[vec!["O".into()]],
            &[vec!["O".into(), "O".into()]],
            EntityMode::Lenient,
        );
        assert!(uneven.unwrap_err().contains("sentence 1"));
    }
}
