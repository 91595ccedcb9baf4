//! From per-token label probabilities to entity spans, with the Hugging Face
//! token-classification pipeline's aggregation strategies.
//!
//! - `simple`: each token takes its best label; tokens are grouped into entities.
//! - `first`, `average`, `max`: tokens are first merged into words (a word takes
//!   the label of its first token, of its averaged probabilities, or of its most
//!   confident token), then words are grouped.
//!
//! Grouping follows the pipeline: a unit joins the current group when it has the
//! same entity type and is not tagged `B-`. `S-`/`E-` (BIOES) close a group;
//! unprefixed labels count as `I-`, so IOB1, IOB2 and BIOES all decode.

use crate::span::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Aggregation {
    /// Group tokens by their own best label.
    Simple,
    /// A word takes the label of its first sub-token (the default, as most NER models are trained).
    #[default]
    First,
    /// A word takes the best label of its sub-tokens' averaged probabilities.
    Average,
    /// A word takes the label of its most confident sub-token.
    Max,
}

impl Aggregation {
    /// The name users write (`--aggregation simple|first|average|max`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Aggregation::Simple => "simple",
            Aggregation::First => "first",
            Aggregation::Average => "average",
            Aggregation::Max => "max",
        }
    }
}

/// One model token: where it is and its label probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenScores {
    pub span: Span,
    pub probs: Vec<f32>,
    /// True for a continuation piece of a word ("##ing").
    pub is_subword: bool,
    /// True for the first token of a line: entities never continue across a
    /// line break (a headline, dateline or section label ends where its line does).
    pub line_start: bool,
}

/// An entity before it becomes a [`crate::ner::Entity`]: its span, type and score.
#[derive(Debug, Clone, PartialEq)]
pub struct Grouped {
    pub span: Span,
    pub label: String,
    pub score: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    B,
    I,
    E,
    S,
}

/// Splits "B-PER" into its prefix and type; "O" has type "O".
fn parse_tag(label: &str) -> (Prefix, &str) {
    match label.split_once('-') {
        Some(("B", t)) => (Prefix::B, t),
        Some(("I", t)) => (Prefix::I, t),
        Some(("E", t)) | Some(("L", t)) => (Prefix::E, t),
        Some(("S", t)) | Some(("U", t)) => (Prefix::S, t),
        _ => (Prefix::I, label),
    }
}

fn argmax(p: &[f32]) -> usize {
    p.iter()
        .enumerate()
        .fold(
            (0, f32::MIN),
            |best, (i, &x)| if x > best.1 { (i, x) } else { best },
        )
        .0
}

/// A unit to group: a token (simple) or a word.
struct Unit {
    span: Span,
    label: usize,
    score: f32,
    line_start: bool,
}

fn words(tokens: &[TokenScores], strategy: Aggregation) -> Vec<Unit> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let mut j = i + 1;
        while j < tokens.len() && tokens[j].is_subword {
            j += 1;
        }
        let word = &tokens[i..j];
        let span = Span::new(word[0].span.start, word[j - i - 1].span.end);
        let (label, score) = match strategy {
            Aggregation::First | Aggregation::Simple => {
                let l = argmax(&word[0].probs);
                (l, word[0].probs[l])
            }
            Aggregation::Average => {
                let n = word[0].probs.len();
                let avg: Vec<f32> = (0..n)
                    .map(|k| word.iter().map(|t| t.probs[k]).sum::<f32>() / word.len() as f32)
                    .collect();
                let l = argmax(&avg);
                (l, avg[l])
            }
            Aggregation::Max => {
                let best = word
                    .iter()
                    .max_by(|a, b| {
                        let (ma, mb) = (a.probs[argmax(&a.probs)], b.probs[argmax(&b.probs)]);
                        ma.partial_cmp(&mb).unwrap_or(std::cmp::Ordering::Equal)
                    })
                    .expect("a word has a token");
                let l = argmax(&best.probs);
                (l, best.probs[l])
            }
        };
        out.push(Unit {
            span,
            label,
            score,
            line_start: word[0].line_start,
        });
        i = j;
    }
    out
}

/// Entities of one text from its tokens' probabilities; "O" groups are dropped.
pub fn aggregate(tokens: &[TokenScores], labels: &[String], strategy: Aggregation) -> Vec<Grouped> {
    let units: Vec<Unit> = match strategy {
        Aggregation::Simple => tokens
            .iter()
            .map(|t| {
                let l = argmax(&t.probs);
                Unit {
                    span: t.span,
                    label: l,
                    score: t.probs[l],
                    line_start: t.line_start,
                }
            })
            .collect(),
        _ => words(tokens, strategy),
    };
    let mut groups: Vec<(Vec<&Unit>, String)> = Vec::new();
    let mut closed = true;
    for u in &units {
        let (prefix, kind) = parse_tag(&labels[u.label]);
        let joins = !closed
            && !u.line_start
            && matches!(prefix, Prefix::I | Prefix::E)
            && groups.last().is_some_and(|(_, k)| k == kind);
        if joins {
            groups.last_mut().expect("checked").0.push(u);
        } else {
            groups.push((vec![u], kind.to_string()));
        }
        closed = matches!(prefix, Prefix::E | Prefix::S);
    }
    groups
        .into_iter()
        .filter(|(_, kind)| kind != "O")
        .map(|(members, label)| Grouped {
            span: Span::new(members[0].span.start, members[members.len() - 1].span.end),
            label,
            score: members.iter().map(|u| u.score).sum::<f32>() / members.len() as f32,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn tok(start: usize, end: usize, probs: &[f32], sub: bool) -> TokenScores {
        TokenScores {
            span: Span::new(start, end),
            probs: probs.to_vec(),
            is_subword: sub,
            line_start: false,
        }
    }

    /// "Washington" split as "wash" + "##ington", then "said".
    /// Labels: O, B-LOC, I-LOC, B-PER.
    fn washington() -> (Vec<TokenScores>, Vec<String>) {
        let l = labels(&["O", "B-LOC", "I-LOC", "B-PER"]);
        let t = vec![
            tok(0, 4, &[0.1, 0.2, 0.1, 0.6], false), // wash: PER by itself
            tok(4, 10, &[0.05, 0.05, 0.9, 0.0], true), // ##ington: I-LOC, very sure
            tok(11, 15, &[0.9, 0.05, 0.05, 0.0], false),
        ];
        (t, l)
    }

    #[test]
    fn simple_groups_tokens_by_their_own_labels() {
        let (t, l) = washington();
        let g = aggregate(&t, &l, Aggregation::Simple);
        // B-PER then I-LOC: different types, two entities.
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].label.as_str(), g[0].span), ("PER", Span::new(0, 4)));
        assert_eq!((g[1].label.as_str(), g[1].span), ("LOC", Span::new(4, 10)));
        assert!((g[1].score - 0.9).abs() < 1e-6);
    }

    #[test]
    fn first_takes_the_first_subtoken() {
        let (t, l) = washington();
        let g = aggregate(&t, &l, Aggregation::First);
        assert_eq!(g.len(), 1);
        assert_eq!((g[0].label.as_str(), g[0].span), ("PER", Span::new(0, 10)));
        assert!((g[0].score - 0.6).abs() < 1e-6);
    }

    #[test]
    fn average_averages_probabilities() {
        let (t, l) = washington();
        let g = aggregate(&t, &l, Aggregation::Average);
        // Average: O .075, B-LOC .125, I-LOC .5, B-PER .3 -> I-LOC starts a LOC entity.
        assert_eq!(g.len(), 1);
        assert_eq!((g[0].label.as_str(), g[0].span), ("LOC", Span::new(0, 10)));
        assert!((g[0].score - 0.5).abs() < 1e-6);
    }

    #[test]
    fn max_takes_the_most_confident_subtoken() {
        let (t, l) = washington();
        let g = aggregate(&t, &l, Aggregation::Max);
        assert_eq!((g[0].label.as_str(), g[0].score), ("LOC", 0.9));
    }

    #[test]
    fn iob1_adjacent_entities_split_on_b_and_i_after_o_starts_one() {
        let l = labels(&["O", "I-PER", "B-PER"]);
        let one = |k: usize| {
            let mut p = vec![0.0; 3];
            p[k] = 1.0;
            p
        };
        let t = vec![
            tok(0, 1, &one(1), false),
            tok(2, 3, &one(1), false),
            tok(4, 5, &one(2), false), // B- : a new entity of the same type
            tok(6, 7, &one(0), false),
            tok(8, 9, &one(1), false), // I- after O: starts an entity
        ];
        let g = aggregate(&t, &l, Aggregation::First);
        let spans: Vec<Span> = g.iter().map(|e| e.span).collect();
        assert_eq!(
            spans,
            vec![Span::new(0, 3), Span::new(4, 5), Span::new(8, 9)]
        );
    }

    #[test]
    fn entities_end_at_line_breaks() {
        let l = labels(&["O", "B-ORG", "I-ORG"]);
        let one = |k: usize| {
            let mut p = vec![0.0; 3];
            p[k] = 1.0;
            p
        };
        let mut t = vec![
            tok(0, 8, &one(1), false),   // "National"
            tok(9, 17, &one(2), false),  // "Security"
            tok(19, 22, &one(2), false), // after "\n\n": I- must not continue the line above
        ];
        t[2].line_start = true;
        let g = aggregate(&t, &l, Aggregation::First);
        let spans: Vec<Span> = g.iter().map(|e| e.span).collect();
        assert_eq!(spans, vec![Span::new(0, 17), Span::new(19, 22)]);
    }

    #[test]
    fn bioes_single_and_end_close_entities() {
        let l = labels(&["O", "B-ORG", "I-ORG", "E-ORG", "S-ORG"]);
        let one = |k: usize| {
            let mut p = vec![0.0; 5];
            p[k] = 1.0;
            p
        };
        let t = vec![
            tok(0, 1, &one(1), false),
            tok(2, 3, &one(3), false), // E closes
            tok(4, 5, &one(2), false), // I after E: new entity
            tok(6, 7, &one(4), false), // S: its own entity
            tok(8, 9, &one(2), false), // I after S: new entity
        ];
        let g = aggregate(&t, &l, Aggregation::Simple);
        let spans: Vec<Span> = g.iter().map(|e| e.span).collect();
        assert_eq!(
            spans,
            vec![
                Span::new(0, 3),
                Span::new(4, 5),
                Span::new(6, 7),
                Span::new(8, 9)
            ]
        );
    }
}
