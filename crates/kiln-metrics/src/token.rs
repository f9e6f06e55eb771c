//! Token classification's metrics: every labelled word scored as a classification (token
//! accuracy, per-tag precision / recall / F1, the confusion of tags) and, for entity tag sets
//! (IOB1, IOB2, IOBES), the entities read off each sentence's tags with seqeval's semantics.

use serde::{Deserialize, Serialize};

use crate::entities::{EntityMetrics, EntityMode, Scheme};
use crate::metrics::{ClassificationMetrics, ConfusionMatrix};

/// The metrics of one pass over tagged sentences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenMetrics {
    /// Sequences scored (sentences, or the windows a long sentence was split into).
    pub sentences: usize,
    /// The labelled words (pieces with a label) as one classification: `accuracy` is the
    /// token accuracy.
    pub tokens: ClassificationMetrics,
    /// Entity-level scores, for a tag set with entity prefixes (`B-`, `I-`, `E-`, `S-`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entities: Option<EntityMetrics>,
    /// Tags of this split that training never had: the model cannot predict them, so their
    /// words count as errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unseen_tags: Vec<String>,
    /// Words carrying such a tag.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unseen_words: usize,
    pub loss: Option<f64>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl TokenMetrics {
    /// Scores `predicted` tag indices against `truth`, sentence by sentence (equal lengths):
    /// `tags` names every index, the first `trained` being the tags the model can predict (the
    /// rest are tags training never had). `strict` reads entities in seqeval's strict mode
    /// (IOBES when the set has `E-`/`S-` tags, else IOB2) instead of its default mode.
    pub fn new(
        truth: &[Vec<usize>],
        predicted: &[Vec<usize>],
        tags: &[String],
        trained: usize,
        strict: bool,
        loss: Option<f64>,
    ) -> Result<Self, String> {
        let mut cm = ConfusionMatrix::new(tags.len());
        for (s, (t, p)) in truth.iter().zip(predicted).enumerate() {
            if t.len() != p.len() {
                return Err(format!(
                    "sentence {}: {} true tags but {} predicted",
                    s + 1,
                    t.len(),
                    p.len()
                ));
            }
            for (&t, &p) in t.iter().zip(p) {
                if t >= tags.len() || p >= tags.len() {
                    return Err(format!(
                        "sentence {}: tag index {} of {} names",
                        s + 1,
                        t.max(p),
                        tags.len()
                    ));
                }
                cm.add(t, p);
            }
        }
        let names = |seqs: &[Vec<usize>]| -> Vec<Vec<String>> {
            seqs.iter()
                .map(|s| s.iter().map(|&i| tags[i].clone()).collect())
                .collect()
        };
        let entities = match entity_mode(tags, strict) {
            Some(mode) => Some(EntityMetrics::new(&names(truth), &names(predicted), mode)?),
            None => None,
        };
        let unseen_words = truth.iter().flatten().filter(|&&t| t >= trained).count();
        Ok(Self {
            sentences: truth.len(),
            tokens: ClassificationMetrics::compute(&cm, tags, loss),
            entities,
            unseen_tags: tags.get(trained..).unwrap_or_default().to_vec(),
            unseen_words,
            loss,
        })
    }

    /// Token accuracy.
    pub fn accuracy(&self) -> f64 {
        self.tokens.accuracy
    }

    /// Micro-averaged entity F1, for an entity tag set.
    pub fn entity_f1(&self) -> Option<f64> {
        self.entities.as_ref().map(|e| e.micro.f1)
    }
}

/// How entities are read off a tag set: none for a set without entity prefixes (part-of-speech
/// tags), seqeval's default mode, or its strict mode with the set's scheme.
pub fn entity_mode(tags: &[String], strict: bool) -> Option<EntityMode> {
    let prefixed = |p: &str| tags.iter().any(|t| t.starts_with(p));
    if !["B-", "I-", "E-", "S-"].iter().any(|p| prefixed(p)) {
        return None;
    }
    Some(match (strict, prefixed("E-") || prefixed("S-")) {
        (false, _) => EntityMode::Lenient,
        (true, true) => EntityMode::Strict(Scheme::Iobes),
        (true, false) => EntityMode::Strict(Scheme::Iob2),
    })
}

/// Why `tags` cannot be read in seqeval's strict mode: the first tag whose prefix the set's
/// scheme lacks (`U-PER` in an IOB2 set); none when every tag fits, or the set has no entities.
pub fn strict_mode_error(tags: &[String]) -> Option<String> {
    let mode = entity_mode(tags, true)?;
    tags.iter()
        .find_map(|t| crate::entities::entities(&[t.as_str()], mode).err())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn words_score_as_a_classification_and_entities_as_seqeval_reads_them() {
        // O, B-PER, I-PER, B-LOC; index 4 (B-ORG) only in the truth: unseen in training.
        let names = tags(&["O", "B-PER", "I-PER", "B-LOC", "B-ORG"]);
        let truth = vec![vec![1, 2, 0, 3], vec![4, 0]];
        let predicted = vec![vec![1, 2, 0, 0], vec![0, 0]];
        let m = TokenMetrics::new(&truth, &predicted, &names, 4, false, Some(0.7)).unwrap();
        assert_eq!(m.sentences, 2);
        assert_eq!(m.tokens.examples, 6);
        assert!((m.accuracy() - 4.0 / 6.0).abs() < 1e-12);
        let e = m.entities.as_ref().unwrap();
        assert_eq!(e.mode, EntityMode::Lenient);
        // Gold PER, LOC, ORG; predicted PER only: precision 1, recall 1/3.
        assert!((e.micro.precision - 1.0).abs() < 1e-12);
        assert!((e.micro.recall - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.unseen_tags, ["B-ORG"]);
        assert_eq!(m.unseen_words, 1);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<TokenMetrics>(&json).unwrap(), m);
    }

    #[test]
    fn part_of_speech_tags_have_no_entities_and_strict_mode_picks_the_scheme() {
        let pos = tags(&["DT", "NN", "VBZ"]);
        let m = TokenMetrics::new(&[vec![0, 1, 2]], &[vec![0, 1, 1]], &pos, 3, true, None).unwrap();
        assert_eq!(m.entities, None);
        assert_eq!(m.entity_f1(), None);
        assert_eq!(
            entity_mode(&tags(&["O", "S-PER", "B-PER", "E-PER"]), true),
            Some(EntityMode::Strict(Scheme::Iobes))
        );
        assert_eq!(
            entity_mode(&tags(&["O", "B-PER", "I-PER"]), true),
            Some(EntityMode::Strict(Scheme::Iob2))
        );
        assert!(TokenMetrics::new(&[vec![0]], &[vec![0, 1]], &pos, 3, false, None).is_err());
        assert_eq!(strict_mode_error(&pos), None);
        assert_eq!(strict_mode_error(&tags(&["O", "B-PER", "I-PER"])), None);
        let bilou = strict_mode_error(&tags(&["O", "B-PER", "U-PER"])).unwrap();
        assert!(bilou.contains("`U-PER`"), "{bilou}");
    }
}
