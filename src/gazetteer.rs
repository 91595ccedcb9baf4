//! Word lists the rule backends and the actor linker share.
//!
//! The lists are data files under `data/` that the team writes and reviews;
//! they are compiled into the binary so `stance` works from any directory.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use crate::ner::EntityLabel;
use crate::span::Span;
use crate::tokenize::tokenize;

/// What a gazetteer phrase names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    Country,
    /// A capital city or a seat of government used for its state ("Washington", "the Kremlin").
    Seat,
    /// A nationality adjective or group noun ("French", "Russians").
    Demonym,
    Organization(OrgKind),
    Location,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrgKind {
    International,
    Agency,
    Party,
    Company,
    /// News agencies and outlets: reporters, never actors of what they report.
    News,
    Sport,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The actor this phrase stands for ("Washington" -> "United States").
    pub canonical: String,
    pub label: EntityLabel,
    pub kind: EntryKind,
}

/// All word lists, keyed for token-sequence lookup.
pub struct Gazetteer {
    /// Phrase (tokens joined by one space, original case) -> entry.
    phrases: HashMap<String, Entry>,
    max_phrase_tokens: usize,
    /// Titles, lowercased token sequences joined by spaces.
    titles: HashSet<String>,
    /// Every word of every title, lowercased ("foreign", "minister", ...).
    title_words: HashSet<String>,
    max_title_tokens: usize,
    pub given_names: HashSet<String>,
    pub org_heads: HashSet<String>,
    pub common_words: HashSet<String>,
    pub stop_capitalised: HashSet<String>,
}

const COUNTRIES: &str = include_str!("../data/gazetteer/countries.tsv");
const ORGANIZATIONS: &str = include_str!("../data/gazetteer/organizations.tsv");
const LOCATIONS: &str = include_str!("../data/gazetteer/locations.tsv");
const GIVEN_NAMES: &str = include_str!("../data/gazetteer/given_names.txt");
const TITLES: &str = include_str!("../data/gazetteer/titles.txt");
const ORG_HEADS: &str = include_str!("../data/gazetteer/org_heads.txt");
const COMMON_WORDS: &str = include_str!("../data/lexicon/common_words.txt");
const STOP_CAPITALISED: &str = include_str!("../data/lexicon/stop_capitalised.txt");

/// Seats of government that are buildings or institutions (ORG), not cities (LOC).
const SEAT_WORDS_ORG: &[&str] = &[
    "House",
    "Kremlin",
    "Street",
    "Palace",
    "Hill",
    "Pentagon",
    "Whitehall",
    "Elysee",
    "Élysée",
    "d'Orsay",
    "Zhongnanhai",
    "Office",
    "Bhavan",
    "Building",
    "Hall",
    "Capitol",
];

fn rows(data: &str) -> impl Iterator<Item = Vec<&str>> {
    data.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split('\t').collect())
}

fn list(field: Option<&&str>) -> Vec<String> {
    field
        .map(|f| {
            f.split('|')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn words(data: &str) -> HashSet<String> {
    crate::wordlist::entries(data).map(String::from).collect()
}

/// Normalises a phrase to the key used for lookup: its tokens joined by one space.
pub fn phrase_key(phrase: &str) -> String {
    tokenize(phrase, Span::new(0, phrase.len()))
        .iter()
        .map(|t| t.span.text(phrase))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Gazetteer {
    /// The gazetteer built from the data files compiled into the binary.
    pub fn builtin() -> &'static Gazetteer {
        static GAZ: OnceLock<Gazetteer> = OnceLock::new();
        GAZ.get_or_init(Gazetteer::from_embedded)
    }

    fn from_embedded() -> Gazetteer {
        let mut g = Gazetteer {
            phrases: HashMap::new(),
            max_phrase_tokens: 1,
            titles: HashSet::new(),
            title_words: HashSet::new(),
            max_title_tokens: 1,
            given_names: words(GIVEN_NAMES),
            org_heads: words(ORG_HEADS),
            common_words: words(COMMON_WORDS)
                .into_iter()
                .map(|w| w.to_lowercase())
                .collect(),
            stop_capitalised: words(STOP_CAPITALISED),
        };
        for r in rows(COUNTRIES) {
            let name = r[0].trim().to_string();
            let entry = |label, kind| Entry {
                canonical: name.clone(),
                label,
                kind,
            };
            g.add(&name, entry(EntityLabel::Loc, EntryKind::Country));
            for a in list(r.get(1)) {
                g.add(&a, entry(EntityLabel::Loc, EntryKind::Country));
            }
            for d in list(r.get(2)) {
                g.add(&d, entry(EntityLabel::Misc, EntryKind::Demonym));
            }
            for s in list(r.get(3)) {
                let building = s.split_whitespace().any(|w| SEAT_WORDS_ORG.contains(&w));
                let label = if building {
                    EntityLabel::Org
                } else {
                    EntityLabel::Loc
                };
                g.add(&s, entry(label, EntryKind::Seat));
            }
        }
        for r in rows(ORGANIZATIONS) {
            let name = r[0].trim().to_string();
            let kind = match r.get(2).map(|k| k.trim()) {
                Some("intl") => OrgKind::International,
                Some("agency") => OrgKind::Agency,
                Some("party") => OrgKind::Party,
                Some("company") => OrgKind::Company,
                Some("news") => OrgKind::News,
                Some("sport") => OrgKind::Sport,
                _ => OrgKind::Other,
            };
            let entry = Entry {
                canonical: name.clone(),
                label: EntityLabel::Org,
                kind: EntryKind::Organization(kind),
            };
            g.add(&name, entry.clone());
            for a in list(r.get(1)) {
                g.add(&a, entry.clone());
            }
            for d in list(r.get(3)) {
                g.add(
                    &d,
                    Entry {
                        canonical: name.clone(),
                        label: EntityLabel::Misc,
                        kind: EntryKind::Demonym,
                    },
                );
            }
            // Seats standing for a body replace the host state's entry ("Brussels" -> EU).
            for seat in list(r.get(4)) {
                let entry = Entry {
                    canonical: name.clone(),
                    label: EntityLabel::Loc,
                    kind: EntryKind::Seat,
                };
                g.phrases.insert(phrase_key(&seat), entry);
            }
        }
        for r in rows(LOCATIONS) {
            let name = r[0].trim().to_string();
            g.add(
                &name,
                Entry {
                    canonical: name.clone(),
                    label: EntityLabel::Loc,
                    kind: EntryKind::Location,
                },
            );
        }
        for t in words(TITLES) {
            let key = phrase_key(&t).to_lowercase();
            g.max_title_tokens = g.max_title_tokens.max(key.split(' ').count());
            g.title_words.extend(key.split(' ').map(str::to_string));
            g.titles.insert(key);
        }
        g
    }

    /// Adds a phrase; the first entry for a phrase wins, so countries beat
    /// later lists ("Georgia" the country over the U.S. state).
    fn add(&mut self, phrase: &str, entry: Entry) {
        let key = phrase_key(phrase);
        if key.is_empty() {
            return;
        }
        self.max_phrase_tokens = self.max_phrase_tokens.max(key.split(' ').count());
        self.phrases.entry(key).or_insert(entry);
    }

    pub fn lookup(&self, phrase: &str) -> Option<&Entry> {
        self.phrases.get(&phrase_key(phrase))
    }

    /// Longest phrase starting at `words[0]`: returns (number of words, entry).
    pub fn longest_match(&self, words: &[&str]) -> Option<(usize, &Entry)> {
        let max = self.max_phrase_tokens.min(words.len());
        (1..=max)
            .rev()
            .find_map(|n| self.phrases.get(&words[..n].join(" ")).map(|e| (n, e)))
    }

    /// Longest title starting at `words[0]`, compared case-insensitively.
    pub fn longest_title(&self, words: &[&str]) -> Option<usize> {
        let max = self.max_title_tokens.min(words.len());
        (1..=max).rev().find(|&n| {
            let key = words[..n].join(" ").to_lowercase();
            self.titles.contains(&key)
        })
    }

    /// Whether `word` occurs in some title ("Foreign" in "Foreign Minister").
    pub fn is_title_word(&self, word: &str) -> bool {
        self.title_words.contains(&word.to_lowercase())
    }

    pub fn is_common_word(&self, word: &str) -> bool {
        self.common_words.contains(&word.to_lowercase())
    }

    pub fn is_given_name(&self, word: &str) -> bool {
        self.given_names.contains(word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_and_aliases_resolve_to_their_state() {
        let g = Gazetteer::builtin();
        for (phrase, canonical) in [
            ("Washington", "United States"),
            ("U.S.", "United States"),
            ("Moscow", "Russia"),
            ("Kremlin", "Russia"),
            ("Downing Street", "United Kingdom"),
            ("French", "France"),
        ] {
            let e = g
                .lookup(phrase)
                .unwrap_or_else(|| panic!("{phrase} missing"));
            assert_eq!(e.canonical, canonical, "{phrase}");
        }
        assert_eq!(g.lookup("French").unwrap().label, EntityLabel::Misc);
        assert_eq!(g.lookup("Kremlin").unwrap().label, EntityLabel::Org);
        assert_eq!(g.lookup("Moscow").unwrap().label, EntityLabel::Loc);
    }

    #[test]
    fn news_agencies_are_marked_as_reporters() {
        let g = Gazetteer::builtin();
        let e = g.lookup("Reuters").expect("Reuters");
        assert_eq!(e.kind, EntryKind::Organization(OrgKind::News));
    }

    #[test]
    fn longest_match_prefers_the_longer_body() {
        let g = Gazetteer::builtin();
        let words = ["United", "Nations", "Security", "Council", "resolution"];
        let (n, e) = g.longest_match(&words).unwrap();
        assert_eq!(n, 4);
        assert_eq!(e.label, EntityLabel::Org);
        assert_eq!(
            g.longest_title(&["Foreign", "Minister", "Jean-Marc"]),
            Some(2)
        );
        assert_eq!(
            g.longest_title(&["Secretary", "of", "State", "John"]),
            Some(3)
        );
    }
}
