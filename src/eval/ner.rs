//! `stance eval ner`: entity-level precision, recall and F1 counted exactly as
//! the CoNLL shared tasks' `conlleval` script counts them.
//!
//! An entity is correct when its start, end and type all match. Chunks are
//! read with `conlleval`'s own start/end rules, so IOB1 and IOB2 files are
//! scored alike, and a sentence boundary closes every open chunk.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{round4, Scores};
use crate::conll::{self, ends_chunk, starts_chunk, DocumentText};
use crate::error::Result;
use crate::ner::{Entity, EntityTagger};

/// Counts of one entity type (or of all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TypeCounts {
    /// Entities found by the system that match a gold entity exactly.
    pub tp: usize,
    /// Entities found by the system that match none.
    pub fp: usize,
    /// Gold entities the system missed.
    pub fn_: usize,
}

/// What `conlleval` counts over a file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NerCounts {
    pub per_type: BTreeMap<String, TypeCounts>,
    pub tokens: usize,
    pub correct_tags: usize,
}

fn split(tag: &str) -> (&str, &str) {
    tag.split_once('-').unwrap_or((tag, ""))
}

impl NerCounts {
    /// Adds one sentence: gold and predicted tags of its tokens.
    pub fn add_sentence(&mut self, gold: &[String], pred: &[String]) {
        debug_assert_eq!(gold.len(), pred.len());
        let (mut last_c, mut last_ct) = ("O", "");
        let (mut last_g, mut last_gt) = ("O", "");
        let mut in_correct = false;
        // A boundary ("O", "O") after the last token closes open chunks.
        let boundary = "O".to_string();
        let steps = gold
            .iter()
            .zip(pred)
            .map(|(c, g)| (c, g, false))
            .chain(std::iter::once((&boundary, &boundary, true)));
        for (correct, guessed, is_boundary) in steps {
            let (c, ct) = split(correct);
            let (g, gt) = split(guessed);
            if in_correct {
                let c_end = ends_chunk(last_c, c, last_ct, ct);
                let g_end = ends_chunk(last_g, g, last_gt, gt);
                if c_end && g_end && last_gt == last_ct {
                    in_correct = false;
                    self.per_type.entry(last_ct.to_string()).or_default().tp += 1;
                } else if c_end != g_end || gt != ct {
                    in_correct = false;
                }
            }
            let c_start = starts_chunk(last_c, c, last_ct, ct);
            let g_start = starts_chunk(last_g, g, last_gt, gt);
            if c_start && g_start && gt == ct {
                in_correct = true;
            }
            if c_start {
                self.per_type.entry(ct.to_string()).or_default().fn_ += 1;
            }
            if g_start {
                self.per_type.entry(gt.to_string()).or_default().fp += 1;
            }
            if !is_boundary {
                if c == g && ct == gt {
                    self.correct_tags += 1;
                }
                self.tokens += 1;
            }
            (last_c, last_ct, last_g, last_gt) = (c, ct, g, gt);
        }
        // Above, fn_ and fp counted every gold and every found chunk; make them misses and false alarms.
        debug_assert!(!in_correct);
    }

    /// Per type: (found correct, gold total, system total) turned into tp/fp/fn.
    pub fn finish(&self) -> BTreeMap<String, TypeCounts> {
        self.per_type
            .iter()
            .map(|(k, c)| {
                (
                    k.clone(),
                    TypeCounts {
                        tp: c.tp,
                        fp: c.fp - c.tp,
                        fn_: c.fn_ - c.tp,
                    },
                )
            })
            .collect()
    }
}

/// The report of `stance eval ner`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NerReport {
    pub micro: Scores,
    pub per_type: BTreeMap<String, Scores>,
    /// Share of tokens whose tag (prefix and type) is right, as conlleval's "accuracy".
    pub token_accuracy: f64,
    pub sentences: usize,
    pub tokens: usize,
    /// Throughput of the tagger over the file (words per second), when timed.
    pub tokens_per_second: Option<f64>,
    pub backend: String,
}

impl NerReport {
    pub fn new(
        counts: &NerCounts,
        sentences: usize,
        backend: &str,
        seconds: Option<f64>,
    ) -> NerReport {
        let per = counts.finish();
        let total = per.values().fold(TypeCounts::default(), |a, c| TypeCounts {
            tp: a.tp + c.tp,
            fp: a.fp + c.fp,
            fn_: a.fn_ + c.fn_,
        });
        NerReport {
            micro: Scores::from_counts(total.tp, total.fp, total.fn_),
            per_type: per
                .into_iter()
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, c)| (k, Scores::from_counts(c.tp, c.fp, c.fn_)))
                .collect(),
            token_accuracy: if counts.tokens > 0 {
                round4(counts.correct_tags as f64 / counts.tokens as f64)
            } else {
                0.0
            },
            sentences,
            tokens: counts.tokens,
            tokens_per_second: seconds
                .filter(|s| *s > 0.0)
                .map(|s| (counts.tokens as f64 / s).round()),
            backend: backend.to_string(),
        }
    }

    /// A table for people.
    pub fn table(&self) -> String {
        let mut out = format!(
            "entity evaluation (conlleval counting) — backend: {}, {} sentences, {} tokens\n\n",
            self.backend, self.sentences, self.tokens
        );
        out.push_str(&format!(
            "{:<8} {:>9} {:>7} {:>7} {:>6} {:>6} {:>6}\n",
            "type", "precision", "recall", "f1", "tp", "fp", "fn"
        ));
        let row = |name: &str, s: &Scores| {
            format!(
                "{:<8} {:>9.4} {:>7.4} {:>7.4} {:>6} {:>6} {:>6}\n",
                name, s.precision, s.recall, s.f1, s.tp, s.fp, s.fn_
            )
        };
        for (k, s) in &self.per_type {
            out.push_str(&row(k, s));
        }
        out.push_str(&row("micro", &self.micro));
        out.push_str(&format!("\ntoken accuracy {:.4}", self.token_accuracy));
        if let Some(tps) = self.tokens_per_second {
            out.push_str(&format!(", {tps:.0} tokens/s"));
        }
        out.push('\n');
        out
    }
}

/// IOB2 tags of a document's words from entity spans: a word belongs to the
/// entity that covers its first character.
pub fn word_tags(dt: &DocumentText, entities: &[Entity]) -> Vec<Vec<String>> {
    dt.words
        .iter()
        .map(|words| {
            let mut prev: Option<usize> = None;
            words
                .iter()
                .map(|w| {
                    let hit = entities
                        .iter()
                        .position(|e| e.span.start <= w.start && w.start < e.span.end);
                    let tag = match hit {
                        Some(k) if prev == Some(k) => format!("I-{}", entities[k].label),
                        Some(k) => format!("B-{}", entities[k].label),
                        None => "O".to_string(),
                    };
                    prev = hit;
                    tag
                })
                .collect()
        })
        .collect()
}

/// Runs a tagger over CoNLL documents (as running text) and counts as `conlleval`.
pub fn evaluate(docs: &[conll::Document], tagger: &dyn EntityTagger) -> Result<NerCounts> {
    let texts: Vec<DocumentText> = docs.iter().map(|d| d.text()).collect();
    let refs: Vec<&str> = texts.iter().map(|t| t.text.as_str()).collect();
    let found = tagger.tag_texts(&refs)?;
    let mut counts = NerCounts::default();
    for ((doc, dt), entities) in docs.iter().zip(&texts).zip(&found) {
        for (sent, pred) in doc.sentences.iter().zip(word_tags(dt, entities)) {
            // Predictions are IOB2; gold in IOB2 too, so token accuracy compares like with
            // like (entity counts are the same in either scheme).
            counts.add_sentence(&conll::to_iob2(&sent.tags), &pred);
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn score(pairs: &[(&str, &str)]) -> BTreeMap<String, TypeCounts> {
        let mut c = NerCounts::default();
        for (g, p) in pairs {
            c.add_sentence(&tags(g), &tags(p));
        }
        c.finish()
    }

    fn tc(tp: usize, fp: usize, fn_: usize) -> TypeCounts {
        TypeCounts { tp, fp, fn_ }
    }

    #[test]
    fn exact_matches_misses_and_false_alarms() {
        // gold: PER(0-2), LOC(3); pred: PER(0-1) (wrong end), LOC(3) right, ORG(4) spurious.
        let r = score(&[("I-PER I-PER O I-LOC O", "I-PER O O I-LOC I-ORG")]);
        assert_eq!(r["PER"], tc(0, 1, 1));
        assert_eq!(r["LOC"], tc(1, 0, 0));
        assert_eq!(r["ORG"], tc(0, 1, 0));
    }

    #[test]
    fn iob1_i_after_o_starts_an_entity_and_b_splits_two_of_a_type() {
        // Worked by hand: gold has LOC(0), LOC(1) split by B-, and MISC(3-5).
        // Prediction joins the two LOCs into one (0-2): both gold LOCs missed, one false alarm.
        // Prediction's MISC is written IOB2-style (B- then I-): same chunk, correct.
        let r = score(&[("I-LOC B-LOC O I-MISC I-MISC", "I-LOC I-LOC O B-MISC I-MISC")]);
        assert_eq!(r["LOC"], tc(0, 1, 2));
        assert_eq!(r["MISC"], tc(1, 0, 0));
    }

    #[test]
    fn a_type_change_inside_a_run_of_i_tags_ends_the_entity() {
        // gold ORG(0-2); pred ORG(0) then PER(1): ORG wrong end, PER spurious.
        let r = score(&[("I-ORG I-ORG", "I-ORG I-PER")]);
        assert_eq!(r["ORG"], tc(0, 1, 1));
        assert_eq!(r["PER"], tc(0, 1, 0));
    }

    #[test]
    fn sentence_boundaries_close_entities() {
        // An entity at the end of one sentence and one at the start of the next are two.
        let r = score(&[("O I-PER", "O I-PER"), ("I-PER O", "I-PER O")]);
        assert_eq!(r["PER"], tc(2, 0, 0));
    }

    #[test]
    fn report_micro_averages_and_token_accuracy() {
        let mut c = NerCounts::default();
        c.add_sentence(
            &tags("I-PER I-PER O I-LOC O"),
            &tags("I-PER O O I-LOC I-ORG"),
        );
        let rep = NerReport::new(&c, 1, "test", None);
        // tp 1 (LOC), fp 2 (PER, ORG), fn 1 (PER): P 1/3, R 1/2, F1 0.4.
        assert_eq!((rep.micro.tp, rep.micro.fp, rep.micro.fn_), (1, 2, 1));
        assert_eq!(rep.micro.f1, 0.4);
        // Tokens right: 0 (I-PER), 2 (O), 3 (I-LOC) -> 3 of 5.
        assert_eq!(rep.token_accuracy, 0.6);
    }
}
