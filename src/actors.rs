//! Actors: entity mentions grouped into the parties that act.
//!
//! "John Kerry", "Kerry" and "Mr Kerry" are one person; "U.S.", "Washington"
//! and "American" are one state; "the Kremlin" acts for Russia. Stance is
//! reported per mention but aggregated per actor, so this grouping decides
//! who "said what".

use std::collections::HashMap;

use crate::doc::Doc;
use crate::gazetteer::{EntryKind, Gazetteer, OrgKind};
use crate::ner::{Entity, EntityLabel};

/// One actor and the entities (indices into the entity list) that mention it.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    /// Stable within a document: "A1", "A2", ... in order of first mention.
    pub id: String,
    pub name: String,
    pub label: EntityLabel,
    pub mentions: Vec<usize>,
    /// News agencies and outlets: they report acts, they never perform them.
    pub reporter: bool,
}

/// Actors of a document plus the actor of every entity.
#[derive(Debug, Clone, Default)]
pub struct Actors {
    pub actors: Vec<Actor>,
    /// `actor_of[e]` is the index into `actors` of entity `e`.
    pub actor_of: Vec<usize>,
}

impl Actors {
    pub fn of_entity(&self, entity: usize) -> &Actor {
        &self.actors[self.actor_of[entity]]
    }
}

/// The identity an entity resolves to before actors are numbered.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key(String);

/// Groups entities into actors.
pub fn link(doc: &Doc, entities: &[Entity]) -> Actors {
    let gaz = Gazetteer::builtin();
    let texts: Vec<&str> = entities.iter().map(|e| e.span.text(&doc.text)).collect();

    // Full personal names, for surnames to join.
    let full_names: Vec<(usize, Vec<&str>)> = entities
        .iter()
        .enumerate()
        .filter(|(_, e)| e.label == EntityLabel::Per)
        .map(|(i, _)| (i, texts[i].split_whitespace().collect::<Vec<_>>()))
        .filter(|(_, parts)| parts.len() >= 2)
        .collect();

    // Acronyms introduced in parentheses: "Revolutionary Guard Corps (IRGC)".
    let mut acronyms: HashMap<&str, &str> = HashMap::new();
    for w in entities.windows(2) {
        let between = &doc.text[w[0].span.end..w[1].span.start];
        let after = doc.text[w[1].span.end..].chars().next();
        if between.trim() == "(" && after == Some(')') {
            acronyms.insert(w[1].span.text(&doc.text), w[0].span.text(&doc.text));
        }
    }

    // Multi-word organisation names by their word-aligned beginnings ("Kessler" and
    // "Kessler Antriebe" for "Kessler Antriebe AG"; the first named wins) and endings
    // ("Commission" for "European Commission"), so that each mention is one lookup.
    let mut by_start: HashMap<&str, &str> = HashMap::new();
    let mut by_end: HashMap<&str, Vec<&str>> = HashMap::new();
    for (e, t) in entities.iter().zip(&texts) {
        if e.label != EntityLabel::Org || !t.contains(' ') {
            continue;
        }
        let unknown = gaz.lookup(t).is_none();
        for (at, _) in t.match_indices(' ') {
            if unknown {
                by_start.entry(&t[..at]).or_insert(t);
            }
            let ends = by_end.entry(&t[at + 1..]).or_default();
            if !ends.contains(t) {
                ends.push(t);
            }
        }
    }
    let people = PersonIndex::new(&full_names);

    let mut keys: Vec<(Key, String, EntityLabel, bool)> = Vec::with_capacity(entities.len());
    for (i, e) in entities.iter().enumerate() {
        let text = texts[i];
        let text = acronyms.get(text).copied().unwrap_or(text);
        if let Some(entry) = gaz.lookup(text) {
            // The actor's type is its canonical entry's: "French" -> France (LOC), "European" -> EU (ORG).
            let label = match entry.kind {
                EntryKind::Demonym | EntryKind::Seat => gaz
                    .lookup(&entry.canonical)
                    .map_or(EntityLabel::Loc, |c| c.label),
                _ => entry.label,
            };
            let reporter = entry.kind == EntryKind::Organization(OrgKind::News);
            keys.push((
                Key(entry.canonical.clone()),
                entry.canonical.clone(),
                label,
                reporter,
            ));
            continue;
        }
        // A short name of an organisation named in full elsewhere: "Kessler" for "Kessler Antriebe AG".
        if let Some(full) = by_start.get(text) {
            keys.push((
                Key(full.to_string()),
                full.to_string(),
                EntityLabel::Org,
                false,
            ));
            continue;
        }
        // Or by its head: "the Commission" for "European Commission", when only one organisation fits.
        if e.label == EntityLabel::Org && !text.contains(' ') {
            if let Some([full]) = by_end.get(text).map(Vec::as_slice) {
                let name = gaz
                    .lookup(full)
                    .map_or(full.to_string(), |g| g.canonical.clone());
                keys.push((Key(name.clone()), name, EntityLabel::Org, false));
                continue;
            }
        }
        if e.label == EntityLabel::Per {
            let name = person_name(i, text, &people, &texts);
            keys.push((Key(format!("PER:{name}")), name, EntityLabel::Per, false));
            continue;
        }
        keys.push((Key(text.to_string()), text.to_string(), e.label, false));
    }

    // Number actors in order of first mention (entities are sorted by offset).
    let mut index: HashMap<Key, usize> = HashMap::new();
    let mut out = Actors::default();
    for (i, (key, name, label, reporter)) in keys.into_iter().enumerate() {
        let a = *index.entry(key).or_insert_with(|| {
            out.actors.push(Actor {
                id: format!("A{}", out.actors.len() + 1),
                name,
                label,
                mentions: Vec::new(),
                reporter,
            });
            out.actors.len() - 1
        });
        out.actors[a].mentions.push(i);
        out.actor_of.push(a);
    }
    out
}

/// Full personal names by surname (without a lower-case particle: "Assad" for
/// "al-Assad") and by first word, for [`person_name`].
struct PersonIndex<'a> {
    names: &'a [(usize, Vec<&'a str>)],
    by_surname: HashMap<String, Vec<usize>>,
    by_first: HashMap<&'a str, Vec<usize>>,
}

/// A name part without its lower-case particle: "al-Assad" -> "Assad".
fn without_particle(s: &str) -> &str {
    match s.split_once('-') {
        Some((p, rest)) if p.chars().all(char::is_lowercase) => rest,
        _ => s,
    }
}

impl<'a> PersonIndex<'a> {
    fn new(names: &'a [(usize, Vec<&'a str>)]) -> Self {
        let mut by_surname: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_first: HashMap<&str, Vec<usize>> = HashMap::new();
        for (k, (_, parts)) in names.iter().enumerate() {
            let last = parts[parts.len() - 1];
            by_surname
                .entry(without_particle(last).to_string())
                .or_default()
                .push(k);
            by_first.entry(parts[0]).or_default().push(k);
        }
        PersonIndex {
            names,
            by_surname,
            by_first,
        }
    }
}

/// The full name a personal mention belongs to: the longest full name that ends
/// with the same surname, preferring the nearest one before the mention.
fn person_name(i: usize, text: &str, people: &PersonIndex, texts: &[&str]) -> String {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let surname = parts.last().copied().unwrap_or(text);
    let mut candidates: Vec<&(usize, Vec<&str>)> = people
        .by_surname
        .get(without_particle(surname))
        .map(|ks| ks.iter().map(|&k| &people.names[k]).collect())
        .unwrap_or_default();
    // Family name first ("Wang" for "Wang Lei", "Xi" for "Xi Jinping").
    if candidates.is_empty() && parts.len() == 1 {
        candidates = people
            .by_first
            .get(surname)
            .map(|ks| ks.iter().map(|&k| &people.names[k]).collect())
            .unwrap_or_default();
    }
    let best = candidates
        .iter()
        .filter(|(j, _)| *j <= i)
        .max_by_key(|(j, p)| (p.len(), *j))
        .or_else(|| {
            candidates
                .iter()
                .max_by_key(|(j, p)| (p.len(), usize::MAX - *j))
        });
    match best {
        Some((j, _)) => texts[*j].to_string(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ner::rules::RuleTagger;

    fn actors(text: &str) -> Vec<(String, Vec<String>)> {
        let doc = Doc::new(text);
        let ents = RuleTagger::default().entities(&doc);
        let a = link(&doc, &ents);
        a.actors
            .iter()
            .map(|x| {
                (
                    x.name.clone(),
                    x.mentions
                        .iter()
                        .map(|&m| ents[m].span.text(text).to_string())
                        .collect(),
                )
            })
            .collect()
    }

    fn group<'a>(a: &'a [(String, Vec<String>)], name: &str) -> &'a Vec<String> {
        &a.iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no actor {name} in {a:?}"))
            .1
    }

    #[test]
    fn states_absorb_aliases_capitals_seats_and_demonyms() {
        let a = actors("The U.S. and Washington's allies met. The Kremlin said Moscow would reply. Russian officials and US envoys left.");
        assert_eq!(
            group(&a, "United States"),
            &vec!["U.S.", "Washington", "US"]
        );
        assert_eq!(group(&a, "Russia"), &vec!["Kremlin", "Moscow", "Russian"]);
    }

    #[test]
    fn surnames_and_honorifics_join_the_full_name() {
        let a =
            actors("Kerry spoke first. Secretary of State John Kerry said Mr. Kerry would travel.");
        assert_eq!(
            group(&a, "John Kerry"),
            &vec!["Kerry", "John Kerry", "Kerry"]
        );
    }

    #[test]
    fn news_agencies_are_reporters() {
        let doc = Doc::new("Officials told Reuters the talks failed.");
        let ents = RuleTagger::default().entities(&doc);
        let a = link(&doc, &ents);
        assert!(a.actors.iter().any(|x| x.name == "Reuters" && x.reporter));
    }
}
