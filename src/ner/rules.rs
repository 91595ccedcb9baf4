//! Rule-based entity tagger: gazetteers, titles, capitalisation and context.
//!
//! Two passes over the document: the first finds names from strong evidence
//! (gazetteers, titles, given names); the second also accepts bare surnames
//! and names in headlines that the first pass saw elsewhere ("Kerry" after
//! "John Kerry"), the way a reader resolves them.

use std::collections::HashMap;

use super::{Entity, EntityLabel, EntityTagger};
use crate::doc::{Doc, Sentence};
use crate::error::Result;
use crate::gazetteer::{EntryKind, Gazetteer};
use crate::span::Span;
use crate::tokenize::TokenKind;
use crate::Backend;

/// Lowercase particles inside personal names ("Bashar al-Assad", "van den Broek").
const NAME_PARTICLES: &[&str] = &[
    "al", "el", "bin", "ibn", "abu", "van", "von", "der", "den", "de", "da", "du", "del", "della",
    "la", "le", "dos", "das", "di", "y",
];

/// Lowercase words allowed inside organisation names ("Bank of England").
const ORG_CONNECTORS: &[&str] = &["of", "for", "and", "&", "de", "du", "des"];

/// Last words of events, laws and agreements (CoNLL MISC).
const EVENT_HEADS: &[&str] = &[
    "War",
    "Games",
    "Olympics",
    "Cup",
    "Championship",
    "Championships",
    "Prize",
    "Award",
    "Treaty",
    "Accord",
    "Accords",
    "Agreement",
    "Act",
    "Protocol",
    "Convention",
    "Summit",
    "Conference",
    "Forum",
    "Day",
    "Revolution",
    "Spring",
    "Declaration",
    "Doctrine",
    "Plan",
];

/// Verbs that follow a person's name ("Smith said").
const SPEECH_AFTER: &[&str] = &[
    "said",
    "says",
    "told",
    "added",
    "warned",
    "stated",
    "announced",
    "insisted",
    "argued",
    "wrote",
    "replied",
    "accused",
    "proposed",
    "urged",
    "threatened",
];

/// Prepositions that put a bare capitalised word in a place.
const PLACE_PREPOSITIONS: &[&str] = &["in", "at", "from", "near", "to", "across", "outside"];

/// Months and their abbreviations: dates, not names ("Nov 18", "in May"), unless a title precedes.
const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Sept",
    "Oct",
    "Nov",
    "Dec",
];

/// Determiners that may open a capitalised run but are not part of the name ("The Union ...").
const LEADING_DETERMINERS: &[&str] = &[
    "The", "A", "An", "This", "That", "These", "Its", "His", "Her", "Their", "Our",
];

const SCORE_GAZETTEER: f32 = 0.9;
const SCORE_TITLE: f32 = 0.9;
const SCORE_GIVEN_NAME: f32 = 0.85;
const SCORE_HEAD: f32 = 0.8;
const SCORE_KNOWN: f32 = 0.8;
const SCORE_GUESS: f32 = 0.5;

/// The rule-based [`EntityTagger`].
pub struct RuleTagger {
    gaz: &'static Gazetteer,
}

impl Default for RuleTagger {
    fn default() -> Self {
        RuleTagger {
            gaz: Gazetteer::builtin(),
        }
    }
}

impl EntityTagger for RuleTagger {
    fn tag(&self, doc: &mut Doc) -> Result<()> {
        doc.entities = self.entities(doc);
        Ok(())
    }

    fn backend(&self) -> Backend {
        Backend::Rules
    }
}

impl RuleTagger {
    /// Entities of a document, in two passes (see the module's doc).
    pub fn entities(&self, doc: &Doc) -> Vec<Entity> {
        let empty = HashMap::new();
        let prose: Vec<usize> = (0..doc.sentences.len())
            .filter(|&s| doc.is_prose(s))
            .collect();
        let first: Vec<Entity> = prose
            .iter()
            .flat_map(|&s| self.tag_sentence(doc, s, &empty))
            .collect();
        let known = known_names(doc, &first);
        prose
            .iter()
            .flat_map(|&s| self.tag_sentence(doc, s, &known))
            .collect()
    }
}

/// Names seen with strong evidence, and the surnames of persons, with their labels.
fn known_names(doc: &Doc, entities: &[Entity]) -> HashMap<String, EntityLabel> {
    let gaz = Gazetteer::builtin();
    let mut known = HashMap::new();
    // Acronyms introduced in parentheses: "Union des Dockers de Marseille (UDM)".
    for w in entities.windows(2) {
        let between = &doc.text[w[0].span.end..w[1].span.start];
        if between.trim() == "(" && doc.text[w[1].span.end..].starts_with(')') {
            known.insert(w[1].span.text(&doc.text).to_string(), w[0].label);
        }
    }
    // Strong evidence, and every multi-word person: their surnames identify them later.
    let multiword_person =
        |e: &&Entity| e.label == EntityLabel::Per && e.span.text(&doc.text).contains(' ');
    for e in entities
        .iter()
        .filter(|e| e.score >= SCORE_HEAD || multiword_person(e))
    {
        let text = e.span.text(&doc.text);
        known.entry(text.to_string()).or_insert(e.label);
        // An organisation is later called by its first words: "Kessler Antriebe AG" -> "Kessler".
        if e.label == EntityLabel::Org {
            let parts: Vec<&str> = text.split(' ').collect();
            let distinctive = |w: &str| {
                !gaz.is_common_word(w)
                    && !gaz.is_given_name(w)
                    && gaz.lookup(w).is_none()
                    && !gaz.org_heads.contains(w)
            };
            if parts.len() >= 2 && distinctive(parts[0]) {
                for n in 1..parts.len() {
                    if parts[..n].iter().all(|w| is_name_word(w)) {
                        known
                            .entry(parts[..n].join(" "))
                            .or_insert(EntityLabel::Org);
                    }
                }
            }
        }
        if e.label == EntityLabel::Per {
            let parts: Vec<&str> = text.split_whitespace().collect();
            if parts.len() >= 2 {
                let last = parts[parts.len() - 1];
                known.entry(last.to_string()).or_insert(EntityLabel::Per);
                // "al-Assad" is also written "Assad".
                if let Some((p, rest)) = last.split_once('-') {
                    if NAME_PARTICLES.contains(&p) {
                        known.entry(rest.to_string()).or_insert(EntityLabel::Per);
                    }
                }
            }
        }
    }
    known
}

fn is_capitalised(w: &str) -> bool {
    w.chars().next().is_some_and(char::is_uppercase)
}

/// A word that can be part of a personal name: "Kerry", "al-Assad", "O'Brien", "J.".
fn is_name_word(w: &str) -> bool {
    if is_capitalised(w) {
        return w.chars().any(char::is_alphabetic) && has_name_shape(w);
    }
    match w.split_once('-') {
        Some((p, rest)) => {
            NAME_PARTICLES.contains(&p) && is_capitalised(rest) && has_name_shape(rest)
        }
        None => false,
    }
}

impl RuleTagger {}

/// Longest word that can be part of a name.
const MAX_NAME_WORD_CHARS: usize = 30;

/// Longest run of consonants a name word has ("Mkrtchyan" has six).
const MAX_CONSONANT_RUN: usize = 6;

/// Prefixes after which a name takes a second capital: "McDonald", "DeSantis".
const CAMEL_PREFIXES: &[&str] = &[
    "Mc", "Mac", "De", "Di", "Da", "Du", "Le", "La", "Van", "Von",
];

/// Whether a capitalised token has the shape of a name word rather than noise
/// (scraped text, random letters): short, letters with dots, hyphens and
/// apostrophes only, a vowel in every lower-case part, no long consonant run, and
/// capitals only where names put them (all capitals, or at the start of each part,
/// or after a prefix such as "Mc"). Random capitalised strings such as "WNhspikrkMNm"
/// or "Lr" fail; "al-Assad", "O'Brien", "McDonald", "NATO" and "J." pass.
fn has_name_shape(w: &str) -> bool {
    if w.chars().count() > MAX_NAME_WORD_CHARS
        || !w
            .chars()
            .all(|c| c.is_alphabetic() || matches!(c, '.' | '-' | '\'' | '’'))
    {
        return false;
    }
    let is_vowel = |c: char| !c.is_ascii() || "aeiouyAEIOUY".contains(c);
    let mut consonants = 0;
    for c in w.chars() {
        consonants = if c.is_ascii_alphabetic() && !is_vowel(c) {
            consonants + 1
        } else {
            0
        };
        if consonants > MAX_CONSONANT_RUN {
            return false;
        }
    }
    w.split(['-', '\'', '’', '.'])
        .filter(|p| !p.is_empty())
        .all(|part| {
            let letters: Vec<char> = part.chars().collect();
            if letters.iter().all(|c| !c.is_lowercase()) {
                // An initial has its dot ("J."); an acronym is short, or pronounceable.
                if letters.len() == 1 {
                    return w.ends_with('.') || w.contains(['-', '\'', '’']);
                }
                return letters.len() <= 5 || letters.iter().any(|&c| is_vowel(c));
            }
            let rest = CAMEL_PREFIXES
                .iter()
                .find(|p| part.starts_with(*p) && part[p.len()..].starts_with(char::is_uppercase))
                .map_or(part, |p| &part[p.len()..]);
            let mut chars = rest.chars();
            chars.next();
            let tail: String = chars.collect();
            tail.chars().all(|c| !c.is_uppercase())
                && (rest.chars().count() < 2 || rest.chars().any(is_vowel))
        })
}

/// Title-case headline or caption: no final stop, and most content words capitalised.
fn is_headline(doc: &Doc, s: &Sentence, words: &[&str]) -> bool {
    let text = s.span.text(&doc.text).trim_end();
    if text.ends_with(['.', '!', '?', '"', '”', '\'', '’']) {
        return false;
    }
    let content: Vec<&&str> = words
        .iter()
        .filter(|w| w.chars().next().is_some_and(char::is_alphabetic))
        .filter(|w| {
            ![
                "of", "to", "in", "the", "a", "an", "and", "for", "with", "on", "at", "by", "or",
                "as",
            ]
            .contains(w)
        })
        .collect();
    let caps = content.iter().filter(|w| is_capitalised(w)).count();
    content.len() >= 2 && caps * 10 >= content.len() * 7
}

impl RuleTagger {
    fn tag_sentence(
        &self,
        doc: &Doc,
        s: usize,
        known: &HashMap<String, EntityLabel>,
    ) -> Vec<Entity> {
        let sent = &doc.sentences[s];
        let words = doc.words(s);
        let toks = &sent.tokens;
        let n = words.len();
        let headline = is_headline(doc, sent, &words);
        let mut out = Vec::new();
        let span_of = |a: usize, b: usize| Span::new(toks[a].span.start, toks[b - 1].span.end);
        let mut emit = |a: usize, b: usize, label: EntityLabel, score: f32| {
            out.push(Entity {
                span: span_of(a, b),
                label,
                score,
                backend: Backend::Rules,
            })
        };
        // Sentence-initial positions: the first word, and the first word after an opening quote or colon.
        let initial = |i: usize| -> bool {
            let prev = (0..i).rev().find(|&j| {
                toks[j].kind == TokenKind::Word
                    || toks[j].kind == TokenKind::Number
                    || words[j] == ":"
                    || toks[j].kind == TokenKind::Quote
            });
            match prev {
                None => true,
                Some(j) => {
                    toks[j].kind == TokenKind::Quote
                        || matches!(words[j], ":" | "—" | "–" | "-" | "(" | ")")
                }
            }
        };

        let mut i = 0;
        while i < n {
            let w = words[i];
            if toks[i].kind != TokenKind::Word {
                i += 1;
                continue;
            }
            // 1. A title followed by a name: the name is a person.
            if let Some(tl) = self.gaz.longest_title(&words[i..]) {
                let end = self.name_end(&words, i + tl, known);
                if end > i + tl {
                    emit(i + tl, end, EntityLabel::Per, SCORE_TITLE);
                    i = end;
                    continue;
                }
                let gazetteer_covers_title = self
                    .gaz
                    .longest_match(&words[i..])
                    .is_some_and(|(m, _)| m >= tl);
                if is_capitalised(w) && !gazetteer_covers_title {
                    i += tl;
                    continue;
                }
            }
            // 2. Gazetteer phrases, unless a longer capitalised name starts here.
            if let Some((m, entry)) = self.gaz.longest_match(&words[i..]) {
                let run = self.cap_run_end(&words, i + m, known);
                let last = words[run.max(i + m) - 1];
                if run > i + m && self.gaz.org_heads.contains(last) {
                    emit(i, run, EntityLabel::Org, SCORE_HEAD);
                    i = run;
                    continue;
                }
                if run > i + m && entry.kind == EntryKind::Demonym && EVENT_HEADS.contains(&last) {
                    emit(i, run, EntityLabel::Misc, SCORE_HEAD);
                    i = run;
                    continue;
                }
                emit(i, i + m, entry.label, SCORE_GAZETTEER);
                i += m;
                continue;
            }
            if !is_name_word(w) || self.gaz.stop_capitalised.contains(w) || MONTHS.contains(&w) {
                i += 1;
                continue;
            }
            // "The Union des Dockers": the determiner is not part of the name.
            if LEADING_DETERMINERS.contains(&w) && words.get(i + 1).is_some_and(|n| is_name_word(n))
            {
                i += 1;
                continue;
            }
            // 3. A known name (second pass): the longest known phrase here.
            if let Some((m, label)) = (1..=4.min(n - i))
                .rev()
                .find_map(|m| known.get(&words[i..i + m].join(" ")).map(|l| (m, *l)))
            {
                emit(i, i + m, label, SCORE_KNOWN);
                i += m;
                continue;
            }
            // 4. Capitalised runs; a common word at a sentence start is not a name.
            if (initial(i) || headline) && self.gaz.is_common_word(w) && !self.gaz.is_given_name(w)
            {
                i += 1;
                continue;
            }
            let end = self.cap_run_end(&words, i, known);
            if end <= i {
                i += 1;
                continue;
            }
            let run = &words[i..end];
            let given = self.gaz.is_given_name(run[0]) && run.len() >= 2;
            if headline && !given {
                i = end;
                continue;
            }
            let (label, score) = self.classify_run(run, &words, i, end, given);
            // A lone unknown word at a sentence start is too weak to keep.
            if !(initial(i) && run.len() == 1 && score <= SCORE_GUESS && label != EntityLabel::Per)
            {
                emit(i, end, label, score);
            }
            i = end;
        }
        out
    }

    /// End (exclusive) of the personal name starting at `i`, at most four words.
    fn name_end(&self, words: &[&str], i: usize, known: &HashMap<String, EntityLabel>) -> usize {
        let mut j = i;
        while j < words.len() && j - i < 4 {
            let w = words[j];
            let particle =
                NAME_PARTICLES.contains(&w) && words.get(j + 1).is_some_and(|n| is_name_word(n));
            let name = is_name_word(w)
                && (!self.gaz.is_common_word(w)
                    || self.gaz.is_given_name(w)
                    || known.contains_key(w)
                    || j == i)
                && !self
                    .gaz
                    .longest_match(&words[j..])
                    .is_some_and(|(_, e)| e.label != EntityLabel::Per && j > i);
            if !(name || particle) {
                break;
            }
            // A following title starts a new unit ("President X Prime Minister Y" is rare; stop on titles after a name).
            if j > i && self.gaz.longest_title(&words[j..]).is_some() && !known.contains_key(w) {
                break;
            }
            j += 1;
        }
        // Never end on a particle.
        while j > i && NAME_PARTICLES.contains(&words[j - 1]) {
            j -= 1;
        }
        j
    }

    /// End (exclusive) of a run of capitalised words starting at `i`, allowing
    /// connectors inside organisation names and particles inside personal names.
    fn cap_run_end(&self, words: &[&str], i: usize, known: &HashMap<String, EntityLabel>) -> usize {
        let mut j = i;
        while j < words.len() {
            let w = words[j];
            if is_name_word(w) && !self.gaz.stop_capitalised.contains(w) {
                if j > i {
                    // A title or a known entity after the run starts a new unit.
                    if self.gaz.longest_title(&words[j..]).is_some()
                        && is_capitalised(w)
                        && !self.gaz.org_heads.contains(w)
                    {
                        break;
                    }
                    if let Some((_, e)) = self.gaz.longest_match(&words[j..]) {
                        let after_connector = ORG_CONNECTORS.contains(&words[j - 1]);
                        if !after_connector
                            && !known.contains_key(&words[i..=j].join(" "))
                            && !self.gaz.org_heads.contains(w)
                        {
                            let _ = e;
                            break;
                        }
                    }
                }
                j += 1;
                continue;
            }
            let org_so_far = j > i
                && (self.gaz.org_heads.contains(words[i])
                    || self.gaz.org_heads.contains(words[j - 1]));
            let connector = (ORG_CONNECTORS.contains(&w) || w == "on") && org_so_far;
            let joins = (connector || NAME_PARTICLES.contains(&w))
                && j > i
                && words.get(j + 1).is_some_and(|n| {
                    is_name_word(n)
                        && !self.gaz.stop_capitalised.contains(*n)
                        && !MONTHS.contains(n)
                });
            if joins {
                j += 1;
                continue;
            }
            break;
        }
        // Do not end on a connector.
        while j > i
            && (ORG_CONNECTORS.contains(&words[j - 1]) || NAME_PARTICLES.contains(&words[j - 1]))
        {
            j -= 1;
        }
        j
    }

    /// Label for a capitalised run that no list knows.
    fn classify_run(
        &self,
        run: &[&str],
        words: &[&str],
        i: usize,
        end: usize,
        given: bool,
    ) -> (EntityLabel, f32) {
        let last = run[run.len() - 1];
        let has_connector = run.iter().any(|w| ORG_CONNECTORS.contains(w) || *w == "on");
        if self.gaz.org_heads.contains(last)
            || (self.gaz.org_heads.contains(run[0]) && has_connector)
        {
            return (EntityLabel::Org, SCORE_HEAD);
        }
        if EVENT_HEADS.contains(&last) && run.len() >= 2 {
            return (EntityLabel::Misc, SCORE_HEAD);
        }
        if given && !has_connector {
            return (EntityLabel::Per, SCORE_GIVEN_NAME);
        }
        let next = words.get(end).copied().unwrap_or("");
        let prev = if i > 0 { words[i - 1] } else { "" };
        if run.len() == 1 {
            if last.len() >= 2
                && last
                    .chars()
                    .all(|c| c.is_uppercase() || c == '.' || c == '&')
            {
                return (EntityLabel::Org, SCORE_GUESS);
            }
            if SPEECH_AFTER.contains(&next) {
                return (EntityLabel::Per, SCORE_GUESS);
            }
            if PLACE_PREPOSITIONS.contains(&prev.to_lowercase().as_str()) {
                return (EntityLabel::Loc, SCORE_GUESS);
            }
            return (EntityLabel::Misc, SCORE_GUESS);
        }
        // Persons take no determiner ("the Vigilancia Electoral") and have no common words in their names.
        let after_determiner =
            ["the", "a", "an", "its", "their"].contains(&prev.to_lowercase().as_str());
        let looks_personal = run
            .iter()
            .all(|w| is_name_word(w) && !self.gaz.is_common_word(w));
        if !has_connector && run.len() <= 3 && looks_personal && !after_determiner {
            return (EntityLabel::Per, SCORE_GUESS);
        }
        (EntityLabel::Org, SCORE_GUESS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(text: &str) -> Vec<(String, EntityLabel)> {
        let doc = Doc::new(text);
        RuleTagger::default()
            .entities(&doc)
            .into_iter()
            .map(|e| (e.span.text(text).to_string(), e.label))
            .collect()
    }

    fn has(found: &[(String, EntityLabel)], text: &str, label: EntityLabel) -> bool {
        found.iter().any(|(t, l)| t == text && *l == label)
    }

    #[test]
    fn noise_is_not_a_name_and_names_are() {
        for name in [
            "Kerry",
            "al-Assad",
            "O'Brien",
            "McDonald",
            "DeSantis",
            "NATO",
            "J.",
            "Mkrtchyan",
            "Zürich",
            "Xi",
            "U.S.",
            "FBI",
            "NYPD",
            "Lavrov",
        ] {
            let word = name.strip_prefix("al-").map_or(name, |_| name);
            assert!(is_name_word(word), "{name} is a name word");
        }
        for noise in [
            "WNhspikrkMNm",
            "TRtznn",
            "DgwhUd",
            "Lr",
            "Xf",
            "VMPLWTT",
            "D",
            "Abcdefghijklmnopqrstuvwxyzabcdef",
        ] {
            assert!(!is_name_word(noise), "{noise} is noise");
        }
    }

    #[test]
    fn titles_introduce_persons_and_are_not_entities() {
        let f = tag("Secretary of State John Kerry met French Foreign Minister Jean-Marc Ayrault and President Bashar al-Assad.");
        assert!(has(&f, "John Kerry", EntityLabel::Per), "{f:?}");
        assert!(has(&f, "Jean-Marc Ayrault", EntityLabel::Per), "{f:?}");
        assert!(has(&f, "Bashar al-Assad", EntityLabel::Per), "{f:?}");
        assert!(has(&f, "French", EntityLabel::Misc), "{f:?}");
        assert!(
            !f.iter()
                .any(|(t, _)| t.contains("State") || t.contains("Minister")),
            "{f:?}"
        );
    }

    #[test]
    fn surnames_are_resolved_after_the_full_name() {
        let f = tag("Maria Lindqvist arrived on Monday. Lindqvist said the talks failed.");
        assert!(has(&f, "Maria Lindqvist", EntityLabel::Per), "{f:?}");
        assert!(has(&f, "Lindqvist", EntityLabel::Per), "{f:?}");
    }

    #[test]
    fn organisation_heads_and_sentence_initial_common_words() {
        let f = tag("However, the Ministry of Defence and the Zorvak Energy Corp said on Monday that the Green Party objected.");
        assert!(has(&f, "Ministry of Defence", EntityLabel::Org), "{f:?}");
        assert!(has(&f, "Zorvak Energy Corp", EntityLabel::Org), "{f:?}");
        assert!(has(&f, "Green Party", EntityLabel::Org), "{f:?}");
        assert!(
            !f.iter().any(|(t, _)| t == "However" || t == "Monday"),
            "{f:?}"
        );
    }

    #[test]
    fn headlines_only_keep_known_names() {
        let f = tag("Britain Warns of Sanctions Against Iran Over Tanker Seizure");
        let texts: Vec<&str> = f.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts, vec!["Britain", "Iran"]);
    }

    #[test]
    fn demonym_with_event_head_is_one_misc_entity() {
        let f = tag("It was bombed during the Spanish Civil War by German planes.");
        assert!(has(&f, "Spanish Civil War", EntityLabel::Misc), "{f:?}");
        assert!(has(&f, "German", EntityLabel::Misc), "{f:?}");
    }
}
