//! Actor stance: the [`StanceClassifier`] trait, its labels and statements.

pub mod data;
pub mod lexicon;
pub mod listeners;
pub mod markers;
pub mod model;
pub mod news;
pub mod resume;
pub mod rules;
pub mod train;

use serde::{Deserialize, Serialize};

use crate::doc::Doc;
use crate::error::Result;
use crate::ner::Entity;
use crate::span::Span;
use crate::Backend;

/// Reads a model's JSON config file; a missing or malformed file is a config error naming it.
pub(crate) fn read_config<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let bad = |message: String| {
        crate::error::StanceError::Model(crate::model::ModelError::Config {
            path: path.into(),
            message,
        })
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| bad(e.to_string()))
}

/// The three acts of the guidelines; anything else is "none" and not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StanceLabel {
    Threat,
    Accusation,
    Proposal,
}

impl StanceLabel {
    pub const ALL: [StanceLabel; 3] = [
        StanceLabel::Threat,
        StanceLabel::Accusation,
        StanceLabel::Proposal,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            StanceLabel::Threat => "threat",
            StanceLabel::Accusation => "accusation",
            StanceLabel::Proposal => "proposal",
        }
    }

    pub fn parse(s: &str) -> Option<StanceLabel> {
        match s {
            "threat" => Some(StanceLabel::Threat),
            "accusation" => Some(StanceLabel::Accusation),
            "proposal" => Some(StanceLabel::Proposal),
            _ => None,
        }
    }
}

impl std::fmt::Display for StanceLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One actor performing one act in one sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// Index of the acting mention in the entity list.
    pub actor: usize,
    pub label: StanceLabel,
    pub score: f32,
    /// Index of the target mention, if the sentence names one.
    pub target: Option<usize>,
    /// Index of the sentence in the document.
    pub sentence: usize,
    /// The words that express the act ("accused", "would suspend").
    pub cue: Option<Span>,
    pub backend: Backend,
}

/// Finds statements given a document, its entities and its actors.
pub trait StanceClassifier: Send + Sync {
    /// Sets `doc.statements` (in sentence order) from `doc.entities`, `doc.actors` and,
    /// for a model that reads them, `doc.states`.
    fn classify(&self, doc: &mut Doc) -> Result<()>;
    fn backend(&self) -> Backend;

    /// True when the classifier reads encoder states: the pipeline then sets
    /// `doc.keep_states`, so the entity model's pass serves both stages.
    fn reads_states(&self) -> bool {
        false
    }
}

/// Words that may stand between an organisation or place and a title in front of a
/// person ("EU foreign policy chief Elena Varga", "Rwandan government spokeswoman ...").
const TITLE_MODIFIERS: &[&str] = &[
    "government",
    "ministry",
    "party",
    "opposition",
    "policy",
    "affairs",
    "senior",
    "top",
    "army",
    "military",
    "national",
    "federal",
    "provincial",
    "regional",
    "state",
    "trade",
    "foreign",
    "finance",
    "economy",
    "defence",
    "defense",
    "interior",
    "justice",
    "health",
    "energy",
    "environment",
    "security",
    "commerce",
    "labour",
    "labor",
    "transport",
    "agriculture",
    "police",
    "central",
    "bank",
    "company",
    "union",
];

/// The person whose title entity `e` modifies, when `e` ("Russian", "EU", "Alberta")
/// stands in front of a title and a named person in one noun phrase: "Russian Deputy
/// Ambassador Gennady Volkhov". The guidelines make the person the actor there, not
/// the modifier (docs/guidelines.md §3.6).
pub fn title_holder(doc: &Doc, entities: &[Entity], e: usize) -> Option<usize> {
    use crate::gazetteer::Gazetteer;
    if entities[e].label == crate::ner::EntityLabel::Per {
        return None;
    }
    let end = entities[e].span.end;
    let next = (0..entities.len())
        .filter(|&i| entities[i].span.start >= end)
        .min_by_key(|&i| entities[i].span.start)?;
    if entities[next].label != crate::ner::EntityLabel::Per {
        return None;
    }
    let gap = &doc.text[end..entities[next].span.start];
    let words: Vec<&str> = gap.split_whitespace().collect();
    if words.is_empty() || words.len() > 6 {
        return None;
    }
    let gaz = Gazetteer::builtin();
    let plain = |w: &str| w.chars().all(|c| c.is_alphabetic() || c == '-' || c == '.');
    let fits = |w: &str| {
        plain(w)
            && (gaz.is_title_word(w)
                || TITLE_MODIFIERS.contains(&w.to_lowercase().as_str())
                || w.chars().next().is_some_and(char::is_uppercase))
    };
    if !words.iter().all(|w| fits(w)) {
        return None;
    }
    let n = words.len();
    let ends_in_title = (1..=n.min(4)).any(|k| gaz.longest_title(&words[n - k..]) == Some(k));
    ends_in_title.then_some(next)
}

/// Moves each statement made by a title's modifier to the person holding the title,
/// dropping it where that person already has the same statement.
pub fn to_title_holders(
    doc: &Doc,
    entities: &[Entity],
    statements: Vec<Statement>,
) -> Vec<Statement> {
    let mut out: Vec<Statement> = Vec::with_capacity(statements.len());
    let mut moved = Vec::new();
    for st in statements {
        match title_holder(doc, entities, st.actor) {
            Some(h) => moved.push(Statement {
                actor: h,
                target: st.target.filter(|&t| t != h),
                ..st
            }),
            None => out.push(st),
        }
    }
    for st in moved {
        if let Some(same) = out
            .iter_mut()
            .find(|o| o.actor == st.actor && o.label == st.label && o.sentence == st.sentence)
        {
            same.score = same.score.max(st.score);
        } else {
            out.push(st);
        }
    }
    out.sort_by_key(|st| (st.sentence, entities[st.actor].span.start, st.label));
    out
}

/// Whether the act of the mention at `actor` is only expected by others:
/// "Thailand is expected to propose ...", "Washington was likely to veto ...".
/// The guidelines give such sentences no statement (docs/guidelines.md §4).
pub fn only_expected(text: &str, actor: Span) -> bool {
    let words: Vec<String> = text[actor.end..]
        .split_whitespace()
        .take(4)
        .map(|w| w.to_lowercase())
        .collect();
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let rest = match w.split_first() {
        Some((be, rest)) if matches!(*be, "is" | "are" | "was" | "were") => rest,
        _ => return false,
    };
    let rest = match rest.first() {
        Some(&("widely" | "also" | "still" | "now")) => &rest[1..],
        _ => rest,
    };
    matches!(rest, [adj, "to", ..] if matches!(*adj, "expected" | "likely" | "due" | "set" | "unlikely"))
}

#[cfg(test)]
mod title_tests {
    use super::*;
    use crate::ner::EntityLabel;

    fn entities(text: &str, names: &[(&str, EntityLabel)]) -> Vec<Entity> {
        names
            .iter()
            .map(|(n, l)| {
                let i = text.find(n).unwrap();
                Entity {
                    span: Span::new(i, i + n.len()),
                    label: *l,
                    score: 1.0,
                    backend: Backend::Model,
                }
            })
            .collect()
    }

    #[test]
    fn a_modifier_of_a_titled_person_yields_to_the_person() {
        let t = "Russian Deputy Ambassador Gennady Volkhov accused London. EU foreign policy chief Elena Varga spoke.";
        let doc = Doc::new(t);
        let e = entities(
            t,
            &[
                ("Russian", EntityLabel::Misc),
                ("Gennady Volkhov", EntityLabel::Per),
                ("London", EntityLabel::Loc),
                ("EU", EntityLabel::Org),
                ("Elena Varga", EntityLabel::Per),
            ],
        );
        assert_eq!(title_holder(&doc, &e, 0), Some(1));
        assert_eq!(title_holder(&doc, &e, 3), Some(4));
        // A person is never a modifier; a target after a verb is no title.
        assert_eq!(title_holder(&doc, &e, 1), None);
        assert_eq!(title_holder(&doc, &e, 2), None);
        let st = |actor| Statement {
            actor,
            label: StanceLabel::Accusation,
            score: 0.9,
            target: Some(2),
            sentence: 0,
            cue: None,
            backend: Backend::Model,
        };
        // Moved to the person, and merged with the person's own statement.
        let moved = to_title_holders(&doc, &e, vec![st(0)]);
        assert_eq!((moved.len(), moved[0].actor), (1, 1));
        assert_eq!(to_title_holders(&doc, &e, vec![st(0), st(1)]).len(), 1);
    }

    #[test]
    fn expected_acts_are_told_apart() {
        let t = "Thailand is expected to propose a delay. Chile was widely expected to object. Peru is to propose talks. Oslo proposed talks.";
        let at = |w: &str| {
            let i = t.find(w).unwrap();
            Span::new(i, i + w.len())
        };
        assert!(only_expected(t, at("Thailand")));
        assert!(only_expected(t, at("Chile")));
        assert!(!only_expected(t, at("Peru")));
        assert!(!only_expected(t, at("Oslo")));
    }

    #[test]
    fn a_place_before_a_verb_is_not_a_modifier() {
        let t = "Moscow accused Kerry of lying. Paris, said Marie Dupont, agreed.";
        let doc = Doc::new(t);
        let e = entities(
            t,
            &[
                ("Moscow", EntityLabel::Loc),
                ("Kerry", EntityLabel::Per),
                ("Paris", EntityLabel::Loc),
                ("Marie Dupont", EntityLabel::Per),
            ],
        );
        assert_eq!(title_holder(&doc, &e, 0), None);
        assert_eq!(title_holder(&doc, &e, 2), None);
    }
}
