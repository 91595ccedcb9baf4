//! Listeners are not speakers. In "In a phone call with Foreign Minister Lavrov,
//! Kerry said Washington faults Moscow", Lavrov hears the accusation; a classifier
//! that reads the sentence as a whole may still give it to every actor in it.
//! When an actor in such a position shares a statement's label with another actor
//! of the same sentence who is not a listener, the statement is the speaker's.

use crate::doc::Doc;
use crate::ner::Entity;
use crate::stance::Statement;
use crate::tokenize::TokenKind;

/// Words before a name that make it the one spoken to ("with", "told"), one per line.
const LISTENER_MARKERS: &str = include_str!("../../data/lexicon/listener_markers.txt");

/// Capitalised words (titles, a nationality) skipped between the marker and the name.
const MAX_TITLE_WORDS: usize = 4;

/// The markers, read from the word list once.
fn markers() -> &'static [&'static str] {
    static MARKERS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    MARKERS.get_or_init(|| crate::wordlist::entries(LISTENER_MARKERS).collect())
}

/// Whether entity `m` stands right after a listener marker, titles allowed between.
pub fn is_listener(doc: &Doc, entities: &[Entity], m: usize) -> bool {
    let span = entities[m].span;
    let Some(s) = doc.sentence_of(span.start) else {
        return false;
    };
    let tokens = &doc.sentences[s].tokens;
    let first = tokens.partition_point(|t| t.span.start < span.start);
    for t in tokens[..first].iter().rev().take(MAX_TITLE_WORDS + 1) {
        let word = t.span.text(&doc.text);
        if t.kind == TokenKind::Word && word.starts_with(char::is_uppercase) {
            continue;
        }
        let lower = word.to_lowercase();
        return markers().contains(&lower.as_str());
    }
    false
}

/// `statements` without those of listeners whose label a non-listener of the same
/// sentence also has.
pub fn drop_listeners(
    doc: &Doc,
    entities: &[Entity],
    statements: Vec<Statement>,
) -> Vec<Statement> {
    let listener: Vec<bool> = statements
        .iter()
        .map(|st| is_listener(doc, entities, st.actor))
        .collect();
    statements
        .iter()
        .zip(&listener)
        .filter(|(st, &is)| {
            !is || !statements.iter().zip(&listener).any(|(o, &o_is)| {
                !o_is && o.sentence == st.sentence && o.label == st.label && o.actor != st.actor
            })
        })
        .map(|(st, _)| st.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ner::EntityLabel;
    use crate::span::Span;
    use crate::stance::StanceLabel;
    use crate::Backend;

    fn entity(text: &str, name: &str) -> Entity {
        let start = text.find(name).unwrap();
        Entity {
            span: Span::new(start, start + name.len()),
            label: EntityLabel::Per,
            score: 1.0,
            backend: Backend::Model,
        }
    }

    fn accusation(actor: usize) -> Statement {
        Statement {
            actor,
            label: StanceLabel::Accusation,
            score: 0.9,
            target: None,
            sentence: 0,
            cue: None,
            backend: Backend::Model,
        }
    }

    #[test]
    fn the_one_spoken_to_loses_a_statement_the_speaker_has() {
        let text =
            "In a call with Foreign Minister Ivan Petrov, Anna Berg accused Ruritania of lying.";
        let doc = Doc::new(text);
        let entities = vec![entity(text, "Ivan Petrov"), entity(text, "Anna Berg")];
        assert!(is_listener(&doc, &entities, 0));
        assert!(!is_listener(&doc, &entities, 1));
        let kept = drop_listeners(&doc, &entities, vec![accusation(0), accusation(1)]);
        assert_eq!(kept.iter().map(|s| s.actor).collect::<Vec<_>>(), vec![1]);
        // Alone, a listener's statement stands: nothing says who else made it.
        assert_eq!(
            drop_listeners(&doc, &entities, vec![accusation(0)]).len(),
            1
        );
    }
}
