//! Word tokenization with byte offsets, tuned for English news.
//!
//! The rule backends work on words, not wordpieces: abbreviations keep their
//! dots ("U.S.", "Mr."), hyphenated and apostrophe names stay whole
//! ("al-Assad", "O'Brien"), and the possessive "'s" is split off so that
//! "Russia's" yields the mention "Russia".

use crate::span::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Word,
    Number,
    /// Opening or closing quotation mark of any style.
    Quote,
    Punct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub span: Span,
    pub kind: TokenKind,
}

/// Abbreviations that keep their final dot (lowercased, without the dot), one per line.
const ABBREVIATIONS: &str = include_str!("../data/lexicon/abbreviations.txt");

/// The abbreviations, read from the word list once.
fn abbreviations() -> &'static std::collections::HashSet<&'static str> {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    SET.get_or_init(|| crate::wordlist::entries(ABBREVIATIONS).collect())
}

pub fn is_abbreviation(word: &str) -> bool {
    let lower = word.trim_end_matches('.').to_lowercase();
    abbreviations().contains(lower.as_str())
}

fn is_quote_char(c: char) -> bool {
    matches!(
        c,
        '"' | '“' | '”' | '„' | '«' | '»' | '‘' | '’' | '\'' | '‹' | '›' | '`'
    )
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '’'
}

/// True when `word` is made of single letters each followed by a dot ("U.S", "U.N").
fn is_initialism_stem(word: &str) -> bool {
    let mut chars = word.chars().peekable();
    let mut letters = 0;
    while let Some(c) = chars.next() {
        if !c.is_alphabetic() {
            return false;
        }
        letters += 1;
        match chars.next() {
            Some('.') => {}
            None => return letters >= 2,
            Some(_) => return false,
        }
    }
    letters >= 2
}

/// Tokenizes `text[span]`, returning tokens with absolute byte offsets.
pub fn tokenize(text: &str, span: Span) -> Vec<Token> {
    let slice = &text[span.start..span.end];
    let chars: Vec<(usize, char)> = slice.char_indices().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let byte_at = |i: usize| -> usize {
        if i < chars.len() {
            chars[i].0
        } else {
            slice.len()
        }
    };
    while i < chars.len() {
        let c = chars[i].1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_alphanumeric() {
            let mut j = i + 1;
            while j < chars.len() {
                let d = chars[j].1;
                if d.is_alphanumeric() {
                    j += 1;
                    continue;
                }
                let next = chars.get(j + 1).map(|p| p.1);
                let next_is_alnum = next.is_some_and(|n| n.is_alphanumeric());
                if is_apostrophe(d) && next_is_alnum {
                    // Split the possessive: "Russia's" -> "Russia" + "'s".
                    let after = chars.get(j + 2).map(|p| p.1);
                    let is_possessive = matches!(next, Some('s') | Some('S'))
                        && !after.is_some_and(|a| a.is_alphanumeric());
                    if is_possessive {
                        break;
                    }
                    j += 1;
                    continue;
                }
                if (d == '-' || d == '&' || d == '.' || d == ',') && next_is_alnum {
                    // Inner punctuation: "al-Assad", "AT&T", "U.S", "3.5", "1,200".
                    let cur = chars[j - 1].1;
                    let ok = match d {
                        ',' => cur.is_ascii_digit() && next.is_some_and(|n| n.is_ascii_digit()),
                        '.' => {
                            let stem: String = chars[start..j].iter().map(|p| p.1).collect();
                            (cur.is_ascii_digit() && next.is_some_and(|n| n.is_ascii_digit()))
                                || (stem.chars().filter(|c| c.is_alphabetic()).count() == 1
                                    || is_initialism_stem(&stem))
                                    && next.is_some_and(|n| n.is_alphabetic())
                                    && chars.get(j + 2).is_none_or(|p| !p.1.is_alphabetic())
                        }
                        _ => true,
                    };
                    if ok {
                        j += 1;
                        continue;
                    }
                }
                break;
            }
            let word: String = chars[start..j].iter().map(|p| p.1).collect();
            // A final dot belongs to abbreviations, initials and initialisms.
            if j < chars.len() && chars[j].1 == '.' {
                let single_initial =
                    word.chars().count() == 1 && word.chars().all(char::is_uppercase);
                if single_initial || is_initialism_stem(&word) || is_abbreviation(&word) {
                    j += 1;
                }
            }
            let kind = if word
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
            {
                TokenKind::Number
            } else {
                TokenKind::Word
            };
            tokens.push(Token {
                span: Span::new(span.start + byte_at(start), span.start + byte_at(j)),
                kind,
            });
            i = j;
            continue;
        }
        if is_apostrophe(c) && matches!(chars.get(i + 1).map(|p| p.1), Some('s') | Some('S')) {
            let after = chars.get(i + 2).map(|p| p.1);
            let prev_alnum = i > 0 && chars[i - 1].1.is_alphanumeric();
            if prev_alnum && !after.is_some_and(|a| a.is_alphanumeric()) {
                tokens.push(Token {
                    span: Span::new(span.start + byte_at(i), span.start + byte_at(i + 2)),
                    kind: TokenKind::Word,
                });
                i += 2;
                continue;
            }
        }
        let kind = if is_quote_char(c) {
            TokenKind::Quote
        } else {
            TokenKind::Punct
        };
        tokens.push(Token {
            span: Span::new(span.start + byte_at(i), span.start + byte_at(i + 1)),
            kind,
        });
        i += 1;
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<&str> {
        tokenize(text, Span::new(0, text.len()))
            .into_iter()
            .map(|t| t.span.text(text))
            .collect()
    }

    #[test]
    fn keeps_abbreviations_names_and_numbers_whole() {
        assert_eq!(
            words("Mr. Smith told the U.S. envoy that al-Assad's 1,200 troops"),
            vec![
                "Mr.", "Smith", "told", "the", "U.S.", "envoy", "that", "al-Assad", "'s", "1,200",
                "troops"
            ]
        );
    }

    #[test]
    fn splits_quotes_and_final_stop() {
        assert_eq!(
            words("“We don’t,” Ayrault said."),
            vec!["“", "We", "don’t", ",", "”", "Ayrault", "said", "."]
        );
    }

    #[test]
    fn initials_keep_their_dot_but_sentence_stops_do_not() {
        assert_eq!(
            words("J. Smith left Paris."),
            vec!["J.", "Smith", "left", "Paris", "."]
        );
        assert_eq!(words("Jean-Marc Ayrault"), vec!["Jean-Marc", "Ayrault"]);
    }

    #[test]
    fn offsets_are_absolute() {
        let text = "xx Russia's plan";
        let toks = tokenize(text, Span::new(3, text.len()));
        assert_eq!(toks[0].span, Span::new(3, 9));
        assert_eq!(toks[1].span.text(text), "'s");
    }
}
