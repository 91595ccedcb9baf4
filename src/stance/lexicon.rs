//! The cue lexicon: which words express a threat, an accusation or a proposal.
//!
//! Cues are data (`data/lexicon/cues.tsv`) so that analysts can read and extend
//! them; inflections are generated here so the file lists lemmas only.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use super::StanceLabel;
use crate::error::{Result, StanceError};

/// How a cue relates its actor to the act (see the header of `cues.tsv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CueKind {
    Act,
    Warn,
    Harm,
    /// An adversarial step that is a threat whenever announced ("would veto").
    Firm,
    /// A step announced under a condition ("would X unless Y"), found by the rules,
    /// not by words: its pattern is `-` and it carries the label and score.
    Conditional,
    Attrib,
}

/// One element of a pattern: a set of word forms, or a gap.
#[derive(Debug, Clone, PartialEq)]
enum Element {
    Words(HashSet<String>),
    Gap,
}

#[derive(Debug, Clone)]
pub struct Cue {
    pub label: StanceLabel,
    pub kind: CueKind,
    pub score: f32,
    elements: Vec<Element>,
    /// The lexicon line, for error messages and debugging.
    pub line: usize,
}

/// A cue found in a sentence: token range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CueMatch {
    pub cue: usize,
    pub start: usize,
    pub end: usize,
}

pub struct Lexicon {
    pub cues: Vec<Cue>,
    /// First-word form -> cues that can start with it.
    by_first: HashMap<String, Vec<usize>>,
}

/// Longest gap a `*` may span, in words.
const MAX_GAP: usize = 6;

const CUES: &str = include_str!("../../data/lexicon/cues.tsv");

/// Irregular verbs: lemma -> every form.
const IRREGULAR: &[(&str, &[&str])] = &[
    (
        "strike",
        &["strike", "strikes", "struck", "striking", "stricken"],
    ),
    ("take", &["take", "takes", "took", "taken", "taking"]),
    ("cut", &["cut", "cuts", "cutting"]),
    ("put", &["put", "puts", "putting"]),
    ("break", &["break", "breaks", "broke", "broken", "breaking"]),
    ("lie", &["lie", "lies", "lied", "lying"]),
    ("hit", &["hit", "hits", "hitting"]),
    ("shut", &["shut", "shuts", "shutting"]),
    ("quit", &["quit", "quits", "quitting"]),
    (
        "withdraw",
        &[
            "withdraw",
            "withdraws",
            "withdrew",
            "withdrawn",
            "withdrawing",
        ],
    ),
    ("seek", &["seek", "seeks", "sought", "seeking"]),
    ("hold", &["hold", "holds", "held", "holding"]),
    ("pay", &["pay", "pays", "paid", "paying"]),
    ("lay", &["lay", "lays", "laid", "laying"]),
    ("tear", &["tear", "tears", "tore", "torn", "tearing"]),
    ("steal", &["steal", "steals", "stole", "stolen", "stealing"]),
    ("ban", &["ban", "bans", "banned", "banning"]),
    ("plan", &["plan", "plans", "planned", "planning"]),
    ("stop", &["stop", "stops", "stopped", "stopping"]),
    ("commit", &["commit", "commits", "committed", "committing"]),
    ("submit", &["submit", "submits", "submitted", "submitting"]),
    ("slam", &["slam", "slams", "slammed", "slamming"]),
    ("veto", &["veto", "vetoes", "vetoed", "vetoing"]),
    ("target", &["target", "targets", "targeted", "targeting"]),
    ("offer", &["offer", "offers", "offered", "offering"]),
    ("sever", &["sever", "severs", "severed", "severing"]),
    ("bomb", &["bomb", "bombs", "bombed", "bombing"]),
    ("arm", &["arm", "arms", "armed", "arming"]),
    ("face", &["face", "faces", "faced", "facing"]),
    ("bear", &["bear", "bears", "bore", "borne", "bearing"]),
];

fn is_vowel(c: char) -> bool {
    "aeiou".contains(c)
}

/// Every form of a regular English verb, plus the irregular table.
pub fn verb_forms(lemma: &str) -> Vec<String> {
    if let Some((_, forms)) = IRREGULAR.iter().find(|(l, _)| *l == lemma) {
        return forms.iter().map(|f| f.to_string()).collect();
    }
    let chars: Vec<char> = lemma.chars().collect();
    let last = *chars.last().unwrap_or(&' ');
    let before_last = if chars.len() >= 2 {
        chars[chars.len() - 2]
    } else {
        ' '
    };
    let third = if lemma.ends_with(['s', 'x', 'z', 'o'])
        || lemma.ends_with("ch")
        || lemma.ends_with("sh")
    {
        format!("{lemma}es")
    } else if last == 'y' && !is_vowel(before_last) {
        format!("{}ies", &lemma[..lemma.len() - 1])
    } else {
        format!("{lemma}s")
    };
    let past = if last == 'e' {
        format!("{lemma}d")
    } else if last == 'y' && !is_vowel(before_last) {
        format!("{}ied", &lemma[..lemma.len() - 1])
    } else {
        format!("{lemma}ed")
    };
    let ing = if let Some(stem) = lemma.strip_suffix("ie") {
        format!("{stem}ying")
    } else if last == 'e' && before_last != 'e' {
        format!("{}ing", &lemma[..lemma.len() - 1])
    } else {
        format!("{lemma}ing")
    };
    vec![lemma.to_string(), third, past, ing]
}

pub fn noun_forms(lemma: &str) -> Vec<String> {
    let plural =
        if lemma.ends_with(['s', 'x', 'z']) || lemma.ends_with("ch") || lemma.ends_with("sh") {
            format!("{lemma}es")
        } else if lemma.ends_with('y') && !lemma.ends_with("ey") && !lemma.ends_with("ay") {
            format!("{}ies", &lemma[..lemma.len() - 1])
        } else {
            format!("{lemma}s")
        };
    vec![lemma.to_string(), plural]
}

fn parse_element(raw: &str) -> Element {
    if raw == "*" {
        return Element::Gap;
    }
    let mut forms = HashSet::new();
    for alt in raw.split('|') {
        if let Some(l) = alt.strip_prefix("V:") {
            forms.extend(verb_forms(l));
        } else if let Some(l) = alt.strip_prefix("N:") {
            forms.extend(noun_forms(l));
        } else {
            forms.insert(alt.to_string());
        }
    }
    Element::Words(forms)
}

impl Lexicon {
    /// The cue of rule-found conditional commitments, if the lexicon defines one.
    pub fn conditional(&self) -> Option<usize> {
        self.cues
            .iter()
            .position(|c| c.kind == CueKind::Conditional)
    }

    pub fn builtin() -> &'static Lexicon {
        static LEX: OnceLock<Lexicon> = OnceLock::new();
        LEX.get_or_init(|| {
            Lexicon::parse(CUES).expect("the built-in cue lexicon is valid (tested)")
        })
    }

    pub fn parse(data: &str) -> Result<Lexicon> {
        let mut cues = Vec::new();
        for (n, line) in data.lines().enumerate() {
            let line_no = n + 1;
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| StanceError::Lexicon {
                line: line_no,
                message: why.to_string(),
            };
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() != 4 {
                return Err(bad(
                    "expected 4 tab-separated columns: label, kind, score, pattern",
                ));
            }
            let label = StanceLabel::parse(cols[0]).ok_or_else(|| bad("unknown label"))?;
            let kind = match cols[1] {
                "act" => CueKind::Act,
                "warn" => CueKind::Warn,
                "harm" => CueKind::Harm,
                "firm" => CueKind::Firm,
                "cond" => CueKind::Conditional,
                "attrib" => CueKind::Attrib,
                _ => return Err(bad("unknown kind (act, warn, harm, firm, cond, attrib)")),
            };
            let score: f32 = cols[2].parse().map_err(|_| bad("score is not a number"))?;
            let elements: Vec<Element> = if kind == CueKind::Conditional {
                Vec::new()
            } else {
                cols[3].split_whitespace().map(parse_element).collect()
            };
            if kind != CueKind::Conditional && !matches!(elements.first(), Some(Element::Words(_)))
                || matches!(elements.last(), Some(Element::Gap))
            {
                return Err(bad("a pattern must start and end with words"));
            }
            cues.push(Cue {
                label,
                kind,
                score,
                elements,
                line: line_no,
            });
        }
        let mut by_first: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, c) in cues.iter().enumerate() {
            if let Some(Element::Words(forms)) = c.elements.first() {
                for f in forms {
                    by_first.entry(f.clone()).or_default().push(i);
                }
            }
        }
        Ok(Lexicon { cues, by_first })
    }

    /// All cue matches in a sentence given its lowercased words; `breaks[i]`
    /// is true where a gap may not cross (punctuation, quotes).
    pub fn find(&self, lower: &[String], breaks: &[bool]) -> Vec<CueMatch> {
        let mut out = Vec::new();
        for start in 0..lower.len() {
            let Some(cands) = self.by_first.get(&lower[start]) else {
                continue;
            };
            for &c in cands {
                if let Some(end) = match_at(&self.cues[c].elements, lower, breaks, start) {
                    out.push(CueMatch { cue: c, start, end });
                }
            }
        }
        out
    }
}

/// Matches `elements` at `pos`; returns the end of the shortest match.
fn match_at(elements: &[Element], words: &[String], breaks: &[bool], pos: usize) -> Option<usize> {
    match elements.split_first() {
        None => Some(pos),
        Some((Element::Gap, rest)) => (0..=MAX_GAP).find_map(|skip| {
            let p = pos + skip;
            if p > words.len() || (pos..p).any(|k| breaks[k]) {
                return None;
            }
            match_at(rest, words, breaks, p)
        }),
        Some((Element::Words(forms), rest)) => {
            if pos < words.len() && forms.contains(&words[pos]) {
                match_at(rest, words, breaks, pos + 1)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verb_inflections() {
        assert_eq!(
            verb_forms("threaten"),
            vec!["threaten", "threatens", "threatened", "threatening"]
        );
        assert_eq!(
            verb_forms("accuse"),
            vec!["accuse", "accuses", "accused", "accusing"]
        );
        assert_eq!(
            verb_forms("deny"),
            vec!["deny", "denies", "denied", "denying"]
        );
        assert!(verb_forms("withdraw").contains(&"withdrew".to_string()));
        assert_eq!(noun_forms("proposal"), vec!["proposal", "proposals"]);
    }

    #[test]
    fn builtin_lexicon_parses_and_matches_gapped_patterns() {
        let lex = Lexicon::builtin();
        let words: Vec<String> = "moving to introduce a united nations security council resolution"
            .split(' ')
            .map(String::from)
            .collect();
        let breaks = vec![false; words.len()];
        let found = lex.find(&words, &breaks);
        let m = found
            .iter()
            .find(|m| lex.cues[m.cue].label == StanceLabel::Proposal)
            .expect("introduce ... resolution");
        assert_eq!((m.start, m.end), (2, 9));
    }

    #[test]
    fn gaps_do_not_cross_breaks() {
        let lex = Lexicon::builtin();
        let words: Vec<String> = ["introduced", "it", ",", "a", "resolution"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let breaks = vec![false, false, true, false, false];
        assert!(lex
            .find(&words, &breaks)
            .iter()
            .all(|m| lex.cues[m.cue].label != StanceLabel::Proposal));
    }

    #[test]
    fn malformed_lexicon_lines_are_reported_with_their_number() {
        let err = Lexicon::parse("# c\nthreat\tact\t0.9\tV:threaten\nthreat\tbogus\t1\tx\n")
            .err()
            .unwrap();
        assert!(err.to_string().contains("line 3"), "{err}");
    }
}
