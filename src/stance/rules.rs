//! Rule-based stance: cues from the lexicon, the actor from the cue's subject
//! or the quote's speaker, the target from what follows the cue.
//!
//! No parser is used: clause structure is approximated from function words,
//! punctuation and quotation marks, which is enough for the short declarative
//! sentences of news reports and keeps the backend dependency-free and fast.

use std::collections::HashMap;

use super::lexicon::{CueKind, CueMatch, Lexicon};
use super::{StanceClassifier, StanceLabel, Statement};
use crate::actors::Actors;
use crate::doc::Doc;
use crate::error::Result;
use crate::gazetteer::{EntryKind, Gazetteer};
use crate::ner::{Entity, EntityLabel};
use crate::span::Span;
use crate::tokenize::TokenKind;
use crate::Backend;

const PREPOSITIONS: &[&str] = &[
    "with",
    "of",
    "in",
    "on",
    "at",
    "from",
    "to",
    "by",
    "for",
    "against",
    "about",
    "over",
    "into",
    "between",
    "among",
    "toward",
    "towards",
    "near",
    "under",
    "after",
    "before",
    "since",
    "like",
    "via",
    "across",
    "through",
    "throughout",
    "amid",
    "despite",
    "including",
    "than",
    "upon",
    "onto",
    "within",
    "without",
    "behind",
    "beyond",
    "during",
    "inside",
    "outside",
    "per",
    "regarding",
    "versus",
    "vs.",
    "around",
    "unlike",
    "alongside",
];
const LOCATIVE: &[&str] = &[
    "in",
    "at",
    "near",
    "inside",
    "across",
    "throughout",
    "around",
    "within",
    "outside",
];
const DETERMINERS: &[&str] = &[
    "the", "a", "an", "this", "these", "those", "his", "her", "their", "its", "our", "my", "your",
    "some", "many", "several", "any", "each", "every", "both", "all", "another", "other", "such",
];
const PRONOUNS: &[&str] = &["he", "she", "it", "we", "i", "they"];
/// Words between a subject and its main verb that belong to the verb group.
const VERB_GROUP: &[&str] = &[
    "will",
    "would",
    "'ll",
    "’ll",
    "shall",
    "can",
    "could",
    "may",
    "might",
    "must",
    "should",
    "has",
    "have",
    "had",
    "'s",
    "’s",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "am",
    "do",
    "does",
    "did",
    "to",
    "not",
    "n't",
    "never",
    "also",
    "again",
    "now",
    "once",
    "still",
    "even",
    "further",
    "then",
    "just",
    "already",
    "going",
    "ready",
    "prepared",
    "set",
    "poised",
    "planning",
    "plans",
    "plan",
    "planned",
    "moving",
    "moved",
    "move",
    "wants",
    "wanted",
    "want",
    "sought",
    "seeks",
    "seek",
    "tried",
    "tries",
    "try",
    "trying",
    "vowed",
    "vows",
    "pledged",
    "pledges",
    "promised",
    "promises",
    "decided",
    "decides",
    "agreed",
    "agrees",
    "intends",
    "intended",
    "expected",
    "likely",
    "able",
    "forced",
    "hesitate",
    "later",
    "formally",
    "swiftly",
    "threatened",
    "threatens",
    "effectively",
    "implicitly",
    "explicitly",
    "publicly",
    "openly",
    "repeatedly",
    "reportedly",
    "allegedly",
    "previously",
    "quickly",
    "immediately",
    "directly",
];
/// Markers of a step the subject commits to: future modals and readiness ("was prepared to freeze").
/// "could" and "might" are left out: they mark forecasts ("warned prices could rise").
const MODALS: &[&str] = &[
    "will", "would", "'ll", "’ll", "shall", "going", "prepared", "ready", "poised",
];
/// Verbs after "would ... if" that promise a benefit or forecast an outcome, not a threat.
const NOT_THREAT_VERBS: &[&str] = &[
    "be",
    "have",
    "become",
    "lift",
    "ease",
    "restore",
    "resume",
    "release",
    "reward",
    "help",
    "support",
    "allow",
    "accept",
    "cooperate",
    "sign",
    "agree",
    "negotiate",
    "talk",
    "join",
    "consider",
    "welcome",
    "invest",
    "return",
    "reopen",
    "continue",
    "remain",
    "need",
    "like",
    "want",
    "love",
    "benefit",
    "grow",
    "rise",
    "fall",
    "increase",
    "improve",
    "gain",
    "win",
    "offer",
    "provide",
    "pay",
    "back",
    "approve",
    "hold",
    "meet",
    "attend",
    "visit",
    "review",
    "study",
    "look",
    "see",
    "know",
    "happen",
    "come",
    "go",
    "lose",
    "suffer",
    "face",
    "cost",
    "fail",
    "collapse",
    "shrink",
    "slow",
    "drop",
    "decline",
    "hurt",
    "get",
    "make",
    "do",
    "vote",
    "comply",
    "respect",
    "honour",
    "honor",
    "keep",
    "stay",
    "work",
    "try",
    "seek",
    "say",
    "tell",
    "ask",
    "propose",
    "recommend",
    "expect",
    "hope",
    "lead",
    "apply",
    "take",
];

/// Confidence factor for an actor found through a speaker rather than as the subject.
const SPEAKER_FACTOR: f32 = 0.9;
/// Cues that are nouns: their actor may be a possessor or a "by"/"from" phrase.
const NOUN_CUES: &[&str] = &[
    "threat",
    "threats",
    "accusation",
    "accusations",
    "allegation",
    "allegations",
    "proposal",
    "proposals",
    "offer",
    "offers",
    "ultimatum",
    "charge",
    "charges",
];
const BE_FORMS: &[&str] = &["is", "are", "was", "were", "be", "been", "being", "am"];
const SPEECH_VERBS: &[&str] = &[
    "say",
    "says",
    "said",
    "saying",
    "tell",
    "tells",
    "told",
    "telling",
    "announce",
    "announced",
    "announces",
    "add",
    "added",
    "adds",
    "state",
    "stated",
    "states",
    "declare",
    "declared",
    "declares",
    "insist",
    "insisted",
    "insists",
    "warn",
    "warned",
    "warns",
    "warning",
    "claim",
    "claimed",
    "claims",
    "stress",
    "stressed",
    "stresses",
    "argue",
    "argued",
    "argues",
    "note",
    "noted",
    "notes",
    "explain",
    "explained",
    "write",
    "wrote",
    "writes",
    "tweeted",
    "confirm",
    "confirmed",
    "confirms",
    "reply",
    "replied",
    "assert",
    "asserted",
    "asserts",
    "contend",
    "contended",
    "maintain",
    "maintained",
    "acknowledged",
    "admitted",
    "reiterated",
    "emphasised",
    "emphasized",
    "indicated",
    "signalled",
    "signaled",
    "believes",
    "believed",
    "vowed",
    "pledged",
    "promised",
    "complained",
    "charged",
    "suggested",
    "hinted",
    "clear",
    "notice",
];
const SUBORDINATORS: &[&str] = &[
    "that", "unless", "if", "because", "although", "though", "while", "whereas", "when",
    "whenever", "until", "so", "but", "as", "once", "whether", "where",
];
const CONDITIONS: &[&str] = &["unless", "if", "otherwise", "until"];
const NEGATORS: &[&str] = &[
    "not",
    "n't",
    "never",
    "no",
    "nor",
    "deny",
    "denies",
    "denied",
    "denying",
    "refuse",
    "refused",
    "refuses",
    "declined",
    "declines",
    "reject",
    "rejected",
    "rejects",
    "rejecting",
    "dismissed",
    "dismisses",
    "without",
    "out",
    "against",
    "stopped",
    "instead",
];
const THREAT_OBJECTS: &[&str] = &[
    "consequences",
    "retaliation",
    "response",
    "reprisals",
    "action",
    "measures",
    "countermeasures",
    "sanctions",
    "force",
    "punishment",
];
/// Nouns whose "of"-complement names the acting party ("the government of Syria").
const GOVERNING_NOUNS: &[&str] = &[
    "government",
    "regime",
    "ministry",
    "president",
    "leader",
    "leaders",
    "leadership",
    "army",
    "military",
    "forces",
    "parliament",
    "embassy",
    "administration",
    "cabinet",
    "prime",
    "minister",
    "people",
    "authorities",
    "officials",
    "delegation",
    "spokesman",
    "spokeswoman",
];

/// How the agent of a cue was found.
#[derive(Debug, Clone, PartialEq)]
enum Agent {
    /// Named mentions (several when coordinated: "France and Germany").
    Named(Vec<usize>),
    /// A personal pronoun at this token.
    Pronoun(usize),
    /// A common-noun description ("the minister").
    Description,
    Missing,
}

/// The rule-based [`StanceClassifier`].
pub struct RuleClassifier {
    lexicon: &'static Lexicon,
}

impl Default for RuleClassifier {
    fn default() -> Self {
        RuleClassifier {
            lexicon: Lexicon::builtin(),
        }
    }
}

impl RuleClassifier {
    /// The statements of a document given its entities and actors.
    pub fn statements(&self, doc: &Doc, entities: &[Entity], actors: &Actors) -> Vec<Statement> {
        let mut out = Vec::new();
        for s in 0..doc.sentences.len() {
            let ctx = Ctx::new(doc, s, entities, actors);
            out.extend(self.sentence(&ctx));
        }
        out
    }
}

impl StanceClassifier for RuleClassifier {
    fn classify(&self, doc: &mut Doc) -> Result<()> {
        doc.statements = self.statements(doc, &doc.entities, &doc.actors);
        Ok(())
    }

    fn backend(&self) -> Backend {
        Backend::Rules
    }
}

/// One sentence with the lookups the rules need.
struct Ctx<'a> {
    doc: &'a Doc,
    s: usize,
    lower: Vec<String>,
    kinds: Vec<TokenKind>,
    entities: &'a [Entity],
    actors: &'a Actors,
    /// Entity index covering each token.
    ent_at: Vec<Option<usize>>,
    /// Token range of each entity of this sentence.
    ent_tokens: HashMap<usize, (usize, usize)>,
    in_quote: Vec<bool>,
}

impl<'a> Ctx<'a> {
    fn new(doc: &'a Doc, s: usize, entities: &'a [Entity], actors: &'a Actors) -> Ctx<'a> {
        let sent = &doc.sentences[s];
        let n = sent.tokens.len();
        let lower: Vec<String> = sent
            .tokens
            .iter()
            .map(|t| t.span.text(&doc.text).to_lowercase().replace('’', "'"))
            .collect();
        let kinds = sent.tokens.iter().map(|t| t.kind).collect();
        let mut ent_at = vec![None; n];
        let mut ent_tokens = HashMap::new();
        // Entities are in text order: only the run that overlaps this sentence is read.
        let first = entities.partition_point(|e| e.span.end <= sent.span.start);
        for (e, ent) in entities.iter().enumerate().skip(first) {
            if ent.span.start >= sent.span.end {
                break;
            }
            if !sent.span.overlaps(&ent.span) {
                continue;
            }
            let covered: Vec<usize> = (0..n)
                .filter(|&i| sent.tokens[i].span.overlaps(&ent.span))
                .collect();
            if let (Some(&a), Some(&b)) = (covered.first(), covered.last()) {
                for &i in &covered {
                    ent_at[i] = Some(e);
                }
                ent_tokens.insert(e, (a, b + 1));
            }
        }
        let in_quote = quote_regions(doc, s);
        Ctx {
            doc,
            s,
            lower,
            kinds,
            entities,
            actors,
            ent_at,
            ent_tokens,
            in_quote,
        }
    }

    fn n(&self) -> usize {
        self.lower.len()
    }

    fn w(&self, i: usize) -> &str {
        &self.lower[i]
    }

    fn raw(&self, i: usize) -> &str {
        self.doc.sentences[self.s].tokens[i]
            .span
            .text(&self.doc.text)
    }

    fn is_reporter(&self, e: usize) -> bool {
        if self.actors.of_entity(e).reporter
            || crate::segment::is_dateline(&self.doc.text, self.entities[e].span)
        {
            return true;
        }
        let (_, b) = self.ent_tokens[&e];
        // "..., Reuters reported" / "the ministry said in a report".
        matches!(
            self.lower.get(b).map(String::as_str),
            Some("reported" | "reports" | "reporting")
        )
    }

    fn is_demonym(&self, e: usize) -> bool {
        let text = self.entities[e].span.text(&self.doc.text);
        Gazetteer::builtin()
            .lookup(text)
            .is_some_and(|g| g.kind == EntryKind::Demonym)
    }

    /// First token of the noun phrase that ends with entity `e`: titles,
    /// nationality adjectives and possessors in front of it, then one determiner
    /// ("the French Foreign Minister Jean-Marc Ayrault").
    fn np_start(&self, e: usize) -> usize {
        let gaz = Gazetteer::builtin();
        let (mut a, _) = self.ent_tokens[&e];
        let words: Vec<&str> = (0..self.n()).map(|i| self.raw(i)).collect();
        loop {
            // A title ending right before: "Secretary of State", "spokesman".
            if let Some(len) = (1..=a.min(4))
                .rev()
                .find(|&l| gaz.longest_title(&words[a - l..a]) == Some(l))
            {
                a -= len;
                continue;
            }
            if a == 0 {
                break;
            }
            let p = a - 1;
            let modifier = self.ent_at[p]
                .is_some_and(|m| self.is_demonym(m) || self.entities[m].label == EntityLabel::Misc);
            if modifier {
                a = self.ent_tokens[&self.ent_at[p].unwrap()].0;
                continue;
            }
            if self.w(p) == "'s" && p > 0 {
                if let Some(m) = self.ent_at[p - 1] {
                    a = self.ent_tokens[&m].0;
                    continue;
                }
            }
            break;
        }
        if a > 0 && DETERMINERS.contains(&self.w(a - 1)) {
            a -= 1;
        }
        a
    }

    /// Whether entity `e` is the object of a preposition (and so not a subject).
    fn in_pp(&self, e: usize) -> bool {
        let a = self.np_start(e);
        if a == 0 {
            return false;
        }
        let p = self.w(a - 1);
        if p == "of" && a >= 2 && GOVERNING_NOUNS.contains(&self.w(a - 2)) {
            return false;
        }
        PREPOSITIONS.contains(&p) || (p == "told" || p == "tell" || p == "tells")
    }

    fn is_locative(&self, e: usize) -> bool {
        let a = self.np_start(e);
        a > 0 && LOCATIVE.contains(&self.w(a - 1))
    }

    /// Start of the verb group ending just before token `i`.
    fn verb_group_start(&self, i: usize) -> usize {
        let mut v = i;
        while v > 0 {
            let w = self.w(v - 1);
            let adverb = w.ends_with("ly") && w.len() > 4 && self.ent_at[v - 1].is_none();
            if VERB_GROUP.contains(&w) || adverb {
                v -= 1;
            } else {
                break;
            }
        }
        v
    }

    /// The lowest token of the clause that holds token `i` (start of its quotation, if quoted).
    fn clause_floor(&self, i: usize) -> usize {
        if !self.in_quote[i] {
            return 0;
        }
        let mut f = i;
        while f > 0 && self.in_quote[f - 1] {
            f -= 1;
        }
        f
    }

    /// Finds the subject of the verb group that starts at `v`, scanning left.
    /// Returns the agent and the token where the scan stopped.
    fn subject(&self, v: usize) -> (Agent, usize) {
        let lo = if v < self.n() {
            self.clause_floor(v)
        } else {
            0
        };
        let mut desc = false;
        let mut j = v;
        let end = |desc: bool| {
            if desc {
                Agent::Description
            } else {
                Agent::Missing
            }
        };
        while j > lo {
            let t = j - 1;
            if let Some(e) = self.ent_at[t] {
                let a = self.np_start(e);
                if self.is_reporter(e) || self.in_pp(e) {
                    j = a;
                    continue;
                }
                // "invited Russia and China to propose": objects of another verb, not agents.
                let (_, b) = self.ent_tokens[&e];
                let mut named = vec![e];
                // Coordinated subjects: "France, Germany and Britain circulated".
                let mut a = a;
                while a >= 2 && matches!(self.w(a - 1), "and" | ",") {
                    match self.ent_at[a - 2] {
                        Some(f) if !self.in_pp(f) && !self.is_reporter(f) => {
                            named.insert(0, f);
                            a = self.np_start(f);
                        }
                        _ => break,
                    }
                }
                let before = if a > 0 { self.w(a - 1) } else { "" };
                let object_control = b == v
                    && v < self.n()
                    && self.w(v) == "to"
                    && a > 0
                    && self.kinds[a - 1] == TokenKind::Word
                    && !PREPOSITIONS.contains(&before)
                    && !SUBORDINATORS.contains(&before)
                    && !DETERMINERS.contains(&before)
                    && before != "and";
                if object_control {
                    return (Agent::Missing, t);
                }
                return (Agent::Named(named), t);
            }
            // A complete quotation inside the clause: skip it ("said the plan was “a provocation” and accused").
            if self.kinds[t] == TokenKind::Quote
                && t > lo
                && self.in_quote[t - 1]
                && !self.in_quote[v.min(self.n() - 1)]
            {
                let mut k = t - 1;
                while k > lo && self.in_quote[k] {
                    k -= 1;
                }
                j = k;
                continue;
            }
            let w = self.w(t);
            // Coordinated verb phrases share the clause's subject: "X told parliament ... and accused Y".
            if t + 1 == v && (w == "and" || w == "but") {
                if let Some(e) = self.clause_subject(lo, t) {
                    return (Agent::Named(vec![e]), t);
                }
            }
            if PRONOUNS.contains(&w) {
                return (
                    if desc {
                        Agent::Description
                    } else {
                        Agent::Pronoun(t)
                    },
                    t,
                );
            }
            if w == "who" || w == "which" {
                let mut k = t;
                while k > lo && self.w(k - 1) == "," {
                    k -= 1;
                }
                if k > lo {
                    if let Some(e) = self.ent_at[k - 1] {
                        if !self.is_reporter(e) {
                            return (Agent::Named(vec![e]), k - 1);
                        }
                    }
                }
                return (end(desc), t);
            }
            if SUBORDINATORS.contains(&w)
                || w == ";"
                || w == ":"
                || self.kinds[t] == TokenKind::Quote
            {
                return (end(desc), t);
            }
            if SPEECH_VERBS.contains(&w) && t + 1 < v {
                return (end(desc), t);
            }
            if w == "," {
                match self.skippable_segment(t, lo) {
                    Some(p) => {
                        j = p;
                        continue;
                    }
                    None if desc => return (Agent::Description, self.boundary_left(t, lo)),
                    None => {}
                }
            }
            if DETERMINERS.contains(&w) && desc {
                return (Agent::Description, self.boundary_left(t, lo));
            }
            if self.kinds[t] == TokenKind::Word
                && !VERB_GROUP.contains(&w)
                && !PREPOSITIONS.contains(&w)
                && w != "and"
            {
                desc = true;
            }
            j = t;
        }
        (end(desc), lo)
    }

    /// The head mention of the noun phrase starting at `k` ("German software maker
    /// Kastell AG" -> Kastell AG); None when a verb or punctuation comes first.
    fn agent_after(&self, k: usize) -> Option<usize> {
        let mut modifier = None;
        for i in k..self.n().min(k + 8) {
            if let Some(e) = self.ent_at[i] {
                if self.is_demonym(e) {
                    modifier.get_or_insert(e);
                    continue;
                }
                return Some(e);
            }
            let w = self.w(i);
            if w.ends_with("ing") || self.kinds[i] != TokenKind::Word || PREPOSITIONS.contains(&w) {
                break;
            }
        }
        modifier
    }

    /// The first mention in `[lo, end)` that can be a subject: not a prepositional
    /// object, not a reporter, not the object of a speech verb.
    fn clause_subject(&self, lo: usize, end: usize) -> Option<usize> {
        let mut k = lo;
        while k < end {
            if let Some(e) = self.ent_at[k] {
                let b = self.ent_tokens[&e].1;
                if !self.in_pp(e) && !self.is_reporter(e) {
                    // A modifier of a named head: "Brazilian Finance Minister Joaquim Assunção",
                    // "Russia's ambassador, Dmitri Velikanov," -> the person.
                    let next = (b..end).find_map(|i| self.ent_at[i]);
                    let modifies = next.is_some_and(|f| {
                        let f_start = self.ent_tokens[&f].0;
                        let np = self.np_start(f);
                        let apposition = (b..f_start).any(|i| self.w(i) == ",")
                            && (b..f_start).all(|i| self.ent_at[i].is_none())
                            && f_start - b <= 5
                            && self.w(b) == "'s";
                        np <= self.ent_tokens[&e].0 || apposition
                    });
                    if !modifies {
                        return Some(e);
                    }
                }
                k = b;
                continue;
            }
            if SUBORDINATORS.contains(&self.w(k)) && k > lo {
                return None;
            }
            k += 1;
        }
        None
    }

    /// The nearest clause boundary at or left of `t` (a subordinator, speech
    /// verb, quotation mark or semicolon), or `lo`.
    fn boundary_left(&self, t: usize, lo: usize) -> usize {
        (lo..=t)
            .rev()
            .find(|&k| {
                let w = self.w(k);
                SUBORDINATORS.contains(&w)
                    || SPEECH_VERBS.contains(&w)
                    || w == ";"
                    || self.kinds[k] == TokenKind::Quote
            })
            .unwrap_or(lo)
    }

    /// For a comma at `t` scanned from the right: if the comma-delimited segment
    /// before it is an aside (relative clause, apposition, fronted phrase), the
    /// token index to continue from (the start of that segment).
    fn skippable_segment(&self, t: usize, lo: usize) -> Option<usize> {
        let p = (lo..t).rev().take(14).find(|&k| self.w(k) == ",");
        let seg_start = p.map_or(lo, |p| p + 1);
        if seg_start >= t {
            return None;
        }
        let first = self.w(seg_start);
        let aside = ["who", "which", "whose", "where", "speaking", "according"].contains(&first)
            || PREPOSITIONS.contains(&first)
            || (first.ends_with("ing") && self.ent_at[seg_start].is_none())
            || SUBORDINATORS.contains(&first)
            || (p.is_some() && DETERMINERS.contains(&first))
            // Apposition after a name: "Nordhafen, Kessler's largest shareholder, urged ...".
            || p.is_some_and(|p| p > lo && self.ent_at[p - 1].is_some());
        if !aside {
            return None;
        }
        Some(p.unwrap_or(lo))
    }

    /// The named speaker of the clause that stops at `stop`: the speaker of the
    /// quotation holding it, or the subject of the speech verb before it.
    fn speaker(&self, stop: usize) -> Option<Vec<usize>> {
        if stop < self.n() && self.in_quote[stop] {
            return self.quote_speaker(stop);
        }
        let from = stop.min(self.n());
        let mut k = from;
        while k > 0 {
            k -= 1;
            if self.kinds[k] == TokenKind::Quote {
                // Skip a complete quotation ("said the figures were “riddled with errors” and that ...").
                if k > 0 && self.in_quote[k - 1] {
                    while k > 0 && self.in_quote[k - 1] {
                        k -= 1;
                    }
                    // Step over the opening mark too.
                    k = k.saturating_sub(1);
                    continue;
                }
                return None;
            }
            if SPEECH_VERBS.contains(&self.w(k)) && self.ent_at[k].is_none() {
                return match self.subject(self.verb_group_start(k)).0 {
                    Agent::Named(v) => Some(v),
                    _ => None,
                };
            }
        }
        None
    }

    /// The named speaker of the quotation that holds token `t`.
    fn quote_speaker(&self, t: usize) -> Option<Vec<usize>> {
        let n = self.n();
        // After the quotation: '," Ayrault said' / '," said Ayrault'.
        let mut close = t;
        while close < n && self.in_quote[close] {
            close += 1;
        }
        if close < n {
            let mut k = close + 1;
            while k < n && (self.kinds[k] == TokenKind::Quote || self.w(k) == ",") {
                k += 1;
            }
            let window: Vec<usize> = (k..n.min(k + 8))
                .take_while(|&i| self.kinds[i] != TokenKind::Quote)
                .collect();
            if let Some(&verb) = window
                .iter()
                .find(|&&i| SPEECH_VERBS.contains(&self.w(i)) && self.ent_at[i].is_none())
            {
                if verb == k {
                    // Inverted: "said Ayrault".
                    return (verb + 1..n.min(verb + 5))
                        .take_while(|&i| !PRONOUNS.contains(&self.w(i)))
                        .find_map(|i| self.ent_at[i])
                        .filter(|&e| !self.is_reporter(e))
                        .map(|e| vec![e]);
                }
                return match self.subject(self.verb_group_start(verb)).0 {
                    Agent::Named(v) => Some(v),
                    _ => None,
                };
            }
        }
        // Before the quotation: 'Ayrault said: "...'.
        let mut open = t;
        while open > 0 && self.in_quote[open - 1] {
            open -= 1;
        }
        let mut k = open.saturating_sub(1);
        while k > 0 && matches!(self.w(k - 1), ":" | ",") {
            k -= 1;
        }
        if k > 0 && SPEECH_VERBS.contains(&self.w(k - 1)) {
            return match self.subject(self.verb_group_start(k - 1)).0 {
                Agent::Named(v) => Some(v),
                _ => None,
            };
        }
        None
    }

    /// Whether the act at `[start, end)` is negated or refused.
    fn negated(&self, start: usize) -> bool {
        let lo = start.saturating_sub(4);
        let window: Vec<&str> = (lo..start).map(|i| self.w(i)).collect();
        if window.contains(&"hesitate") {
            return false;
        }
        // Stop at clause boundaries so "unless X does not ..." before a cue does not count.
        let after_boundary = window
            .iter()
            .rposition(|w| SUBORDINATORS.contains(w) || *w == "," || *w == ";")
            .map_or(0, |p| p + 1);
        window[after_boundary..]
            .iter()
            .any(|w| NEGATORS.contains(w))
    }

    /// Named mentions after the cue that may be its target, in order.
    fn candidates_after(&self, from: usize, exclude: &[usize]) -> Vec<usize> {
        let mut out = Vec::new();
        let quoted = from > 0 && self.in_quote[from - 1];
        let mut k = from;
        while k < self.n() {
            let w = self.w(k);
            if w == ";" || (quoted && !self.in_quote[k] && self.kinds[k] == TokenKind::Quote) {
                break;
            }
            if w == "according" {
                break;
            }
            if let Some(e) = self.ent_at[k] {
                let (_, b) = self.ent_tokens[&e];
                // The subject of a reported harmful step is the actor's side, not the target.
                let subject_of_modal = b < self.n() && MODALS.contains(&self.w(b));
                let reported = self.is_reporter(e) || subject_of_modal;
                if !reported && !exclude.contains(&self.actors.actor_of[e]) && !out.contains(&e) {
                    out.push(e);
                }
                k = b;
                continue;
            }
            k += 1;
        }
        out
    }

    fn target(&self, label: StanceLabel, cue_end: usize, exclude: &[usize]) -> Option<usize> {
        let cands = self.candidates_after(cue_end, exclude);
        match label {
            StanceLabel::Proposal => cands.into_iter().find(|&e| {
                let a = self.np_start(e);
                let gap: Vec<&str> = (cue_end..a).map(|i| self.w(i)).collect();
                gap.is_empty() || gap == ["to"] || gap == ["it", "to"] || gap == ["them", "to"]
            }),
            StanceLabel::Threat => cands
                .iter()
                .copied()
                .find(|&e| !self.is_locative(e))
                .or_else(|| cands.first().copied()),
            StanceLabel::Accusation => {
                let first = *cands.first()?;
                // The most specific mention of the object phrase: "the regime of Syrian President Bashar al-Assad".
                let mut group = vec![first];
                let mut end = self.ent_tokens[&first].1;
                for &e in &cands[1..] {
                    let a = self.ent_tokens[&e].0;
                    let linked = (end..a).all(|i| {
                        let w = self.w(i);
                        let raw = self.raw(i);
                        w == "of"
                            || w == "'s"
                            || DETERMINERS.contains(&w)
                            || raw.chars().next().is_some_and(char::is_uppercase)
                    });
                    if !linked {
                        break;
                    }
                    group.push(e);
                    end = self.ent_tokens[&e].1;
                }
                let rank = |e: &usize| match self.entities[*e].label {
                    EntityLabel::Per => 0,
                    EntityLabel::Org => 1,
                    EntityLabel::Loc => 2,
                    EntityLabel::Misc => 3,
                };
                group.into_iter().min_by_key(rank)
            }
        }
    }
}

/// For each token of sentence `s`, whether it lies inside a quotation.
/// Straight quotes open after white space and close before it; a closing mark
/// with no opening one continues a quotation from an earlier sentence.
fn quote_regions(doc: &Doc, s: usize) -> Vec<bool> {
    let sent = &doc.sentences[s];
    let text = &doc.text;
    let n = sent.tokens.len();
    let mut flags = vec![false; n];
    let mut open: Option<usize> = None;
    let mut seen_open = false;
    for (i, t) in sent.tokens.iter().enumerate() {
        if t.kind != TokenKind::Quote {
            if open.is_some() {
                flags[i] = true;
            }
            continue;
        }
        let c = t.span.text(text).chars().next().unwrap_or('"');
        let before = text[..t.span.start].chars().next_back();
        let after = text[t.span.end..].chars().next();
        let opening = match c {
            '“' | '‘' | '«' | '„' => true,
            '”' | '’' | '»' => false,
            _ => {
                let space_before = before.is_none_or(|b| b.is_whitespace() || "([{—–-".contains(b))
                    || t.span.start == sent.span.start;
                let space_after = after.is_none_or(char::is_whitespace);
                space_before && !space_after
            }
        };
        if opening {
            open = Some(i);
            seen_open = true;
        } else if open.is_some() {
            open = None;
        } else if !seen_open {
            // A quotation continued from the previous sentence.
            for f in flags.iter_mut().take(i) {
                *f = true;
            }
            for (j, tok) in sent.tokens.iter().enumerate().take(i) {
                if tok.kind == TokenKind::Quote {
                    flags[j] = false;
                }
            }
            seen_open = true;
        }
    }
    flags
}

impl RuleClassifier {
    /// Every lexicon cue in sentence `s`: its label, byte span and prior score.
    /// (The learned classifier reads these as features and cites them as evidence.)
    pub fn cues(&self, doc: &Doc, s: usize) -> Vec<(StanceLabel, Span, f32)> {
        let sent = &doc.sentences[s];
        let lower: Vec<String> = sent
            .tokens
            .iter()
            .map(|t| t.span.text(&doc.text).to_lowercase().replace('’', "'"))
            .collect();
        let breaks: Vec<bool> = lower
            .iter()
            .map(|w| matches!(w.as_str(), "." | "," | ";" | ":" | "!" | "?" | "(" | ")"))
            .collect();
        self.lexicon
            .find(&lower, &breaks)
            .into_iter()
            .map(|m| {
                let cue = &self.lexicon.cues[m.cue];
                let span = Span::new(
                    sent.tokens[m.start].span.start,
                    sent.tokens[m.end - 1].span.end,
                );
                (cue.label, span, cue.score)
            })
            .collect()
    }

    fn sentence(&self, ctx: &Ctx) -> Vec<Statement> {
        let n = ctx.n();
        let breaks: Vec<bool> = (0..n)
            .map(|i| matches!(ctx.w(i), "." | "," | ";" | ":" | "!" | "?" | "(" | ")"))
            .collect();
        let mut matches = self.lexicon.find(&ctx.lower, &breaks);
        if let Some(cond) = self.lexicon.conditional() {
            matches.extend(conditional_commitments(ctx).into_iter().map(|j| CueMatch {
                cue: cond,
                start: j,
                end: j + 1,
            }));
        }
        let modal_harm: Vec<&CueMatch> = matches
            .iter()
            .filter(|m| {
                matches!(self.lexicon.cues[m.cue].kind, CueKind::Harm | CueKind::Firm)
                    && has_modal(ctx, m.start)
            })
            .collect();
        let has_condition = (0..n).any(|i| CONDITIONS.contains(&ctx.w(i)))
            || (0..n.saturating_sub(1)).any(|i| ctx.w(i) == "or" && ctx.w(i + 1) == "else");
        let mut found: Vec<Statement> = Vec::new();
        for m in &matches {
            let cue = &self.lexicon.cues[m.cue];
            if ctx.negated(m.start) {
                continue;
            }
            let v = ctx.verb_group_start(m.start);
            match cue.kind {
                CueKind::Warn => {
                    let complement_harm = modal_harm.iter().any(|h| h.start > m.start);
                    // "warned Kyrgyzstan of a 'decisive' response".
                    let threat_object = (m.end..n).any(|i| {
                        ctx.w(i) == "of"
                            && (i + 1..n.min(i + 6))
                                .take_while(|&k| !breaks[k])
                                .any(|k| THREAT_OBJECTS.contains(&ctx.w(k)))
                    });
                    // A condition with a firm "will/would" is an ultimatum; with "could" it is a forecast.
                    let conditional = (m.end..n).any(|i| CONDITIONS.contains(&ctx.w(i)))
                        && (m.end..n).any(|i| MODALS.contains(&ctx.w(i)));
                    if !(complement_harm || threat_object || conditional) {
                        continue;
                    }
                }
                CueKind::Firm if !has_modal(ctx, m.start) => continue,
                CueKind::Harm => {
                    if !has_modal(ctx, m.start) {
                        continue;
                    }
                    let in_warning = matches.iter().any(|o| {
                        o.start < m.start
                            && matches!(self.lexicon.cues[o.cue].kind, CueKind::Warn | CueKind::Act)
                            && self.lexicon.cues[o.cue].label == StanceLabel::Threat
                    });
                    let has_target = !ctx.candidates_after(m.end, &[]).is_empty();
                    if !(has_condition || in_warning || has_target) {
                        continue;
                    }
                }
                _ => {}
            }

            let (agents, passive_target) = self.agents(ctx, cue.kind, m, v);
            for (actor, factor) in agents {
                if ctx.is_reporter(actor) {
                    continue;
                }
                let actor_id = ctx.actors.actor_of[actor];
                let target = passive_target
                    .filter(|&t| ctx.actors.actor_of[t] != actor_id)
                    .or_else(|| {
                        if cue.kind == CueKind::Attrib {
                            None
                        } else {
                            ctx.target(cue.label, m.end, &[actor_id])
                        }
                    });
                if cue.kind == CueKind::Harm && target.is_none() && !has_condition {
                    continue;
                }
                let sent = &ctx.doc.sentences[ctx.s];
                found.push(Statement {
                    actor,
                    label: cue.label,
                    score: (cue.score * factor).clamp(0.0, 1.0),
                    target,
                    sentence: ctx.s,
                    cue: Some(Span::new(
                        sent.tokens[m.start].span.start,
                        sent.tokens[m.end - 1].span.end,
                    )),
                    backend: Backend::Rules,
                });
            }
        }
        dedupe(found)
    }

    /// The acting mentions of a cue, each with a confidence factor, and a target
    /// already fixed by the construction (passive subject, attributed wrongdoer).
    fn agents(
        &self,
        ctx: &Ctx,
        kind: CueKind,
        m: &CueMatch,
        v: usize,
    ) -> (Vec<(usize, f32)>, Option<usize>) {
        let n = ctx.n();
        let head = ctx.w(m.start);
        let direct = |v: Vec<usize>| v.into_iter().map(|e| (e, 1.0)).collect::<Vec<_>>();
        let spoken = |v: Vec<usize>| {
            v.into_iter()
                .map(|e| (e, SPEAKER_FACTOR))
                .collect::<Vec<_>>()
        };
        let is_noun_cue = NOUN_CUES.contains(&head);
        // The possessor of a nominal cue: "Tafuna's charge that ...".
        if is_noun_cue && m.start >= 2 && ctx.w(m.start - 1) == "'s" {
            if let Some(e) = ctx.ent_at[m.start - 2].filter(|&e| !ctx.is_reporter(e)) {
                return (direct(vec![e]), None);
            }
        }
        // A participial clause belongs to the main clause's subject: "X sued Y, alleging that ...".
        if head.ends_with("ing") && m.start >= 1 && ctx.w(m.start - 1) == "," {
            let lo = ctx.clause_floor(m.start);
            return match ctx.clause_subject(lo, m.start - 1) {
                Some(e) => (direct(vec![e]), None),
                None => (Vec::new(), None),
            };
        }
        let (subject, stop) = ctx.subject(v);
        let named_subject = match &subject {
            Agent::Named(v) => v.last().copied(),
            _ => None,
        };
        if kind == CueKind::Attrib {
            return (spoken(ctx.speaker(stop).unwrap_or_default()), named_subject);
        }
        // An explicit agent: "was accused by X", "the plan put forward by X", "accusations from X".
        let by_agent = (m.end..n.min(m.end + 3))
            .find(|&i| matches!(ctx.w(i), "by" | "from"))
            .and_then(|i| ctx.agent_after(i + 1));
        let passive = v < m.start
            && BE_FORMS.contains(&ctx.w(m.start - 1))
            && (head.ends_with("ed") || head.ends_with("en"));
        let participle_by = m.end < n && ctx.w(m.end) == "by" && !is_noun_cue;
        if passive || participle_by {
            let target = if passive { named_subject } else { None };
            return (direct(by_agent.into_iter().collect()), target);
        }
        if is_noun_cue {
            if let Some(a) = by_agent {
                return (direct(vec![a]), None);
            }
        }
        let mut out = match subject {
            Agent::Named(v) => {
                let mut out = direct(v.clone());
                // A person announcing a step for the side they speak for: both act
                // ("Laurent said Brussels would refuse to sign" -> Laurent and Brussels).
                let e = v[v.len() - 1];
                let a = ctx.np_start(e);
                let (ea, _) = ctx.ent_tokens[&e];
                let complement = ctx.in_quote[ea]
                    || (a > 0 && (ctx.w(a - 1) == "that" || SPEECH_VERBS.contains(&ctx.w(a - 1))));
                let committed =
                    (v_start(ctx, m.start)..m.start).any(|i| MODALS.contains(&ctx.w(i)));
                if complement && committed {
                    let speaker = if ctx.in_quote[ea] {
                        ctx.quote_speaker(ea)
                    } else {
                        ctx.speaker(stop)
                    };
                    for sp in speaker.unwrap_or_default() {
                        if !out.iter().any(|(o, _)| *o == sp) {
                            out.push((sp, SPEAKER_FACTOR));
                        }
                    }
                }
                out
            }
            Agent::Pronoun(t) => {
                let p = ctx.w(t).to_string();
                if p == "they" {
                    return (Vec::new(), None);
                }
                let speaker = if ctx.in_quote[t] {
                    ctx.quote_speaker(t)
                } else {
                    ctx.speaker(t)
                };
                // "it" stands for a state or body, "he"/"she" for a person.
                let fits = |e: &usize| match p.as_str() {
                    "it" => ctx.entities[*e].label != EntityLabel::Per,
                    "he" | "she" => ctx.entities[*e].label == EntityLabel::Per,
                    _ => true,
                };
                spoken(
                    speaker
                        .unwrap_or_default()
                        .into_iter()
                        .filter(fits)
                        .collect(),
                )
            }
            Agent::Description | Agent::Missing => {
                let in_quote = v < n && ctx.in_quote[v];
                let complement = in_quote
                    || (stop < n && (ctx.w(stop) == "that" || SPEECH_VERBS.contains(&ctx.w(stop))));
                if !complement {
                    return (Vec::new(), None);
                }
                let speaker = if in_quote {
                    ctx.quote_speaker(v)
                } else {
                    ctx.speaker(stop + 1)
                };
                spoken(speaker.unwrap_or_default())
            }
        };
        // A warning names the side that would act: "Orlov warned that Russia would ..." -> Russia too.
        if kind == CueKind::Warn {
            let mut k = m.end;
            while k < n && !CONDITIONS.contains(&ctx.w(k)) && ctx.w(k) != ";" {
                if let Some(e) = ctx.ent_at[k] {
                    let b = ctx.ent_tokens[&e].1;
                    let next = (b..n).find(|&i| !matches!(ctx.w(i), "also" | "now" | "then"));
                    if next.is_some_and(|i| MODALS.contains(&ctx.w(i))) && !ctx.is_reporter(e) {
                        if !out.iter().any(|(o, _)| *o == e) {
                            out.push((e, 1.0));
                        }
                        break;
                    }
                    k = b;
                    continue;
                }
                k += 1;
            }
        }
        (out, None)
    }
}

/// Start of the verb group before token `i` (a free function for closures that hold `ctx`).
fn v_start(ctx: &Ctx, i: usize) -> usize {
    ctx.verb_group_start(i)
}

/// Main verbs of steps announced under a condition: a future modal ("will",
/// "would", "was prepared to"), then a verb that is not a benefit or an
/// outcome, in a sentence with "if", "unless" or "otherwise".
fn conditional_commitments(ctx: &Ctx) -> Vec<usize> {
    let n = ctx.n();
    if !(0..n).any(|i| matches!(ctx.w(i), "if" | "unless" | "otherwise")) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for i in 0..n {
        if !MODALS.contains(&ctx.w(i)) {
            continue;
        }
        let Some(j) = (i + 1..n).find(|&j| !is_verb_group_word(ctx.w(j))) else {
            continue;
        };
        if (i + 1..j).any(|k| matches!(ctx.w(k), "not" | "n't" | "never" | "be")) {
            continue;
        }
        let w = ctx.w(j);
        let verb_like = ctx.kinds[j] == TokenKind::Word
            && w.chars().all(|c| c.is_lowercase())
            && ctx.ent_at[j].is_none();
        if verb_like
            && !NOT_THREAT_VERBS.contains(&w)
            && !DETERMINERS.contains(&w)
            && !PREPOSITIONS.contains(&w)
        {
            out.push(j);
        }
    }
    out
}

/// Auxiliaries, modals, control verbs and "-ly" adverbs that sit inside a verb group.
fn is_verb_group_word(w: &str) -> bool {
    VERB_GROUP.contains(&w) || (w.ends_with("ly") && w.len() > 4)
}

fn has_modal(ctx: &Ctx, start: usize) -> bool {
    let v = ctx.verb_group_start(start);
    (v..start).any(|i| MODALS.contains(&ctx.w(i)))
}

/// One statement per (sentence, acting mention, label): the best-scored, keeping
/// a target if any had one. Two mentions of one actor in a sentence ("a German
/// official said Berlin would ...") stay two statements, as the guidelines count them.
fn dedupe(found: Vec<Statement>) -> Vec<Statement> {
    let mut out: Vec<Statement> = Vec::new();
    for st in found {
        let key = (st.sentence, st.actor, st.label);
        match out
            .iter_mut()
            .find(|o| (o.sentence, o.actor, o.label) == key)
        {
            Some(o) => {
                let target = o.target.or(st.target);
                if st.score > o.score {
                    *o = st;
                }
                o.target = o.target.or(target);
            }
            None => out.push(st),
        }
    }
    out.sort_by_key(|s| (s.sentence, s.actor));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::link;
    use crate::ner::rules::RuleTagger;

    /// (actor text, label, target text) for every statement.
    fn run(text: &str) -> Vec<(String, StanceLabel, Option<String>)> {
        let doc = Doc::new(text);
        let ents = RuleTagger::default().entities(&doc);
        let actors = link(&doc, &ents);
        RuleClassifier::default()
            .statements(&doc, &ents, &actors)
            .into_iter()
            .map(|s| {
                (
                    ents[s.actor].span.text(text).to_string(),
                    s.label,
                    s.target.map(|t| ents[t].span.text(text).to_string()),
                )
            })
            .collect()
    }

    fn has(
        found: &[(String, StanceLabel, Option<String>)],
        actor: &str,
        label: StanceLabel,
        target: Option<&str>,
    ) -> bool {
        found
            .iter()
            .any(|(a, l, t)| a == actor && *l == label && t.as_deref() == target)
    }

    #[test]
    fn conditional_threat_gives_speaker_and_state() {
        let f = run("Prime Minister Anna Berg warned on Monday that Sweden would cut aid to Belgrade unless Serbia releases the detainees.");
        assert!(
            has(&f, "Anna Berg", StanceLabel::Threat, Some("Belgrade")),
            "{f:?}"
        );
        assert!(
            has(&f, "Sweden", StanceLabel::Threat, Some("Belgrade")),
            "{f:?}"
        );
    }

    #[test]
    fn forecasts_are_not_threats() {
        let f = run("Finance Minister Anna Berg warned that the economy could slow next year.");
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn accusation_target_is_the_most_specific_mention() {
        let f =
            run("Berg accused the government of Syrian President Bashar al-Assad of war crimes.");
        assert!(
            has(&f, "Berg", StanceLabel::Accusation, Some("Bashar al-Assad")),
            "{f:?}"
        );
    }

    #[test]
    fn negated_cues_are_dropped() {
        let f = run("Germany did not threaten Poland. France denied accusing Italy of fraud.");
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn quote_speaker_after_the_quotation_is_the_actor() {
        let f = run("“We are proposing a ceasefire in Gaza,” Foreign Minister Lena Hartmann said.");
        assert!(
            has(&f, "Lena Hartmann", StanceLabel::Proposal, None),
            "{f:?}"
        );
    }

    #[test]
    fn reporters_are_never_actors() {
        let f = run("Japan accused China of dumping steel, Reuters reported, according to the Ministry of Trade.");
        assert!(
            has(&f, "Japan", StanceLabel::Accusation, Some("China")),
            "{f:?}"
        );
        assert_eq!(f.len(), 1, "{f:?}");
    }

    #[test]
    fn description_agents_are_not_labelled() {
        let f = run("The diplomat accused Russia of stalling.");
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn nationality_of_a_described_source_acts_for_its_state() {
        let f = run("A senior Italian official told reporters that the government had drafted a resolution.");
        assert!(has(&f, "Italian", StanceLabel::Proposal, None), "{f:?}");
    }

    #[test]
    fn passive_accusation_takes_the_by_agent() {
        let f = run("Chile was accused by Peru of violating the treaty.");
        assert!(
            has(&f, "Peru", StanceLabel::Accusation, Some("Chile")),
            "{f:?}"
        );
    }

    #[test]
    fn attributed_wrongdoing_belongs_to_the_speaker() {
        let f = run("Ukraine said Russia had violated the ceasefire.");
        assert!(
            has(&f, "Ukraine", StanceLabel::Accusation, Some("Russia")),
            "{f:?}"
        );
    }

    #[test]
    fn pronoun_subject_of_a_reported_clause_is_the_speaker() {
        let f = run(
            "Foreign Minister Lena Hartmann told lawmakers she would propose new talks with Iran.",
        );
        assert!(
            has(&f, "Lena Hartmann", StanceLabel::Proposal, None),
            "{f:?}"
        );
    }
}
