//! The table for people: statements with their sentence and cue, actors,
//! entities, laid out to the terminal's width.
//!
//! Fixed-width columns come first and free text last, so free text wraps
//! instead of being cut: a name, a target or a cue is never shortened, and a
//! long sentence is shown around its cue. Everything from the input is escaped
//! ([`super::text`]), and colour is only used when the caller asks for it.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};

use super::text::{escape_controls, one_line, pad, render, words, wrap_pieces, Piece};
use crate::document::Document;
use crate::span::CharMap;
use crate::stance::StanceLabel;

/// How the table is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableStyle {
    /// Columns available (the terminal's width).
    pub width: usize,
    /// Colour labels and cues with ANSI escape codes.
    pub color: bool,
}

impl Default for TableStyle {
    fn default() -> Self {
        TableStyle {
            width: 100,
            color: false,
        }
    }
}

/// Narrowest layout; below it lines simply run over.
const MIN_WIDTH: usize = 40;
/// Lines of sentence shown under a statement; longer sentences are shown around the cue.
const SENTENCE_LINES: usize = 3;

/// The colour of a stance label, shared with the HTML page's palette.
pub fn label_style(label: StanceLabel) -> Style {
    let color = match label {
        StanceLabel::Threat => AnsiColor::Red,
        StanceLabel::Accusation => AnsiColor::Yellow,
        StanceLabel::Proposal => AnsiColor::Green,
    };
    Style::new().fg_color(Some(color.into())).bold()
}

fn dim() -> Style {
    Style::new().dimmed()
}

/// A score in [0, 1] with as many decimals as it takes to tell it from 1:
/// models are often very sure, and "1.00" for 0.996 says less than "0.996".
pub fn format_score(score: f32) -> String {
    let s = score.clamp(0.0, 1.0) as f64;
    if s >= 1.0 {
        return "1.00".into();
    }
    for decimals in [2usize, 3, 4] {
        let f = 10f64.powi(decimals as i32);
        let down = (s * f).floor() / f;
        if down < 1.0 && (s * f).round() < f {
            return format!("{s:.decimals$}");
        }
    }
    // Shown rounded down, so it never reads as a certainty the model did not give.
    format!("{:.4}", (s * 1e4).floor() / 1e4)
}

struct Layout<'a, W: Write> {
    out: &'a mut W,
    style: TableStyle,
}

impl<W: Write> Layout<'_, W> {
    fn width(&self) -> usize {
        self.style.width.max(MIN_WIDTH)
    }

    /// Writes `pieces` after `prefix` (already rendered, `prefix_width` columns),
    /// continuing on lines indented by `indent`.
    fn flow(
        &mut self,
        prefix: &str,
        prefix_width: usize,
        indent: usize,
        pieces: &[Piece],
    ) -> io::Result<()> {
        let room = self.width().saturating_sub(prefix_width.max(indent));
        for (i, line) in wrap_pieces(pieces, room).iter().enumerate() {
            let text = render(line, self.style.color);
            if i == 0 {
                writeln!(self.out, "{prefix}{text}")?;
            } else {
                writeln!(self.out, "{}{text}", " ".repeat(indent))?;
            }
        }
        Ok(())
    }

    fn heading(&mut self, title: &str) -> io::Result<()> {
        let s = super::text::styled(title, Style::new().bold(), self.style.color);
        writeln!(self.out, "\n{s}")
    }
}

/// Writes one document as a table; `text` is its input text.
pub fn write_table<W: Write>(
    out: &mut W,
    doc: &Document,
    text: &str,
    style: TableStyle,
) -> io::Result<()> {
    let mut t = Layout { out, style };
    let summary = format!(
        "backend {}; {} sentences, {} entities, {} actors, {} statements",
        doc.backend.as_str(),
        doc.sentences.len(),
        doc.entities.len(),
        doc.actors.len(),
        doc.statements.len()
    );
    t.flow("== ", 3, 3, &words(&doc.id, Style::new().bold(), false))?;
    t.flow("   ", 3, 3, &words(&summary, dim(), false))?;
    if let Some(e) = &doc.error {
        writeln!(t.out, "error: {}", one_line(e))?;
        return Ok(());
    }
    let name_of = |id: &str| {
        doc.actors
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.name.as_str())
            .unwrap_or_default()
    };
    // "John Kerry (Kerry)": the actor, and the words that named it here.
    let who = |surface: &str, id: &str| {
        let name = name_of(id);
        let mut p = words(name, Style::new().bold(), false);
        if !surface.eq_ignore_ascii_case(name) && !name.is_empty() {
            p.extend(words(&format!("({surface})"), Style::new(), false));
        }
        if name.is_empty() {
            p = words(surface, Style::new().bold(), false);
        }
        p
    };
    let map = CharMap::new(text);

    t.heading("Statements")?;
    if doc.statements.is_empty() {
        writeln!(t.out, "  (none)")?;
    }
    for (i, s) in doc.statements.iter().enumerate() {
        let label = s.label.as_str();
        let prefix = format!(
            "{:>4}. {} {:>6}  ",
            i + 1,
            super::text::styled(&pad(label, 10), label_style(s.label), t.style.color),
            format_score(s.score)
        );
        let prefix_width = 6 + 10 + 1 + 6 + 2;
        let mut names = who(&s.actor.text, &s.actor.actor_id);
        names.push(Piece::new("→", Style::new()));
        match &s.target {
            Some(target) => names.extend(who(&target.text, &target.actor_id)),
            None => names.extend(words("(no target)", dim(), false)),
        }
        let indent = if t.width() >= 60 { prefix_width } else { 6 };
        t.flow(&prefix, prefix_width, indent, &names)?;

        let sentence = map.to_bytes(crate::span::CharSpan {
            start: s.sentence.start,
            end: s.sentence.end,
        });
        let cue = s.cue.as_ref().map(|c| {
            map.to_bytes(crate::span::CharSpan {
                start: c.start,
                end: c.end,
            })
        });
        let pieces = sentence_pieces(text, sentence, cue, label_style(s.label), t.style.color);
        let room = t.width() - 6;
        let shown = around_cue(&pieces, room * SENTENCE_LINES);
        t.flow("      ", 6, 6, &shown)?;
    }

    t.heading("Actors")?;
    if doc.actors.is_empty() {
        writeln!(t.out, "  (none)")?;
    }
    for a in &doc.actors {
        let n = a.mentions.len();
        let prefix = format!(
            "  {} {:<4}  {:>3} {}  ",
            pad(&escape_controls(&a.id), 4),
            a.kind.as_str(),
            n,
            if n == 1 { "mention " } else { "mentions" }
        );
        let mut p = words(&a.name, Style::new().bold(), false);
        let others: Vec<&str> = a
            .aliases
            .iter()
            .map(String::as_str)
            .filter(|x| *x != a.name)
            .collect();
        if !others.is_empty() {
            p.extend(words(
                &format!("({})", others.join(", ")),
                Style::new(),
                false,
            ));
        }
        if a.reporter {
            p.extend(words("[reporter]", dim(), false));
        }
        let w = super::text::width(&prefix);
        t.flow(&prefix, w, w.min(12), &p)?;
    }

    t.heading("Entities")?;
    if doc.entities.is_empty() {
        writeln!(t.out, "  (none)")?;
    }
    for e in &doc.entities {
        let prefix = format!(
            "  {:<4}  {:>13}  {:>6}  ",
            e.label.as_str(),
            format!("{}-{}", e.start, e.end),
            format_score(e.score)
        );
        let w = super::text::width(&prefix);
        t.flow(&prefix, w, w.min(12), &words(&e.text, Style::new(), false))?;
    }
    Ok(())
}

/// The sentence's words, the cue in brackets (and in the label's style).
fn sentence_pieces(
    text: &str,
    sentence: crate::span::Span,
    cue: Option<crate::span::Span>,
    style: Style,
    color: bool,
) -> Vec<Piece> {
    let whole = &text[sentence.start..sentence.end];
    let cue = cue.filter(|c| sentence.start <= c.start && c.end <= sentence.end && c.start < c.end);
    let Some(c) = cue else {
        return words(whole, Style::new(), false);
    };
    let before = &text[sentence.start..c.start];
    let inside = &text[c.start..c.end];
    let after = &text[c.end..sentence.end];
    let mut p = words(before, Style::new(), false);
    let glued = !before.is_empty() && !before.ends_with(char::is_whitespace);
    let mut cue_words = words(inside, if color { style.underline() } else { style }, glued);
    if let Some(first) = cue_words.first_mut() {
        first.text.insert(0, '[');
    }
    if let Some(last) = cue_words.last_mut() {
        last.text.push(']');
    }
    p.extend(cue_words);
    p.extend(words(after, Style::new(), true));
    p
}

/// At most `budget` columns of pieces around the styled (cue) pieces, with "…"
/// where words were left out.
fn around_cue(pieces: &[Piece], budget: usize) -> Vec<Piece> {
    let cost = |p: &Piece| p.width() + usize::from(!p.glue);
    let total: usize = pieces.iter().map(cost).sum();
    if total <= budget {
        return pieces.to_vec();
    }
    let first = pieces
        .iter()
        .position(|p| p.text.starts_with('[') && p.style != Style::new())
        .unwrap_or(0);
    let budget = budget.saturating_sub(4);
    let (mut lo, mut hi) = (first, first);
    let mut used = 0;
    // Take the cue and what follows it, then words before it up to a third of the room.
    while hi < pieces.len() && used + cost(&pieces[hi]) <= budget * 2 / 3 {
        used += cost(&pieces[hi]);
        hi += 1;
    }
    while lo > 0 && used + cost(&pieces[lo - 1]) <= budget {
        lo -= 1;
        used += cost(&pieces[lo]);
    }
    while hi < pieces.len() && used + cost(&pieces[hi]) <= budget {
        used += cost(&pieces[hi]);
        hi += 1;
    }
    hi = hi.max(lo + 1).min(pieces.len());
    let mut shown = Vec::new();
    if lo > 0 {
        shown.push(Piece::new("…", Style::new()));
    }
    shown.extend(pieces[lo..hi].iter().cloned());
    if lo > 0 {
        shown[1].glue = false;
    }
    if hi < pieces.len() {
        shown.push(Piece::new("…", Style::new()));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::text::width;
    use crate::Pipeline;

    fn table(text: &str, style: TableStyle) -> String {
        let doc = Pipeline::rules().analyze("t", text).unwrap();
        let mut out = Vec::new();
        write_table(&mut out, &doc, text, style).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_fit_the_width_and_nothing_is_cut() {
        let text = "The government of the Democratic Republic of São Tomé and Príncipe accused the \
Kingdom of the Netherlands and 北京 🇫🇷 of fraud, the ministry said in a long statement that went on \
and on about the matter for many more words than fit on one line of any terminal.";
        for w in [40, 60, 100] {
            let out = table(
                text,
                TableStyle {
                    width: w,
                    color: false,
                },
            );
            for line in out.lines() {
                assert!(width(line) <= w, "{w}: {line:?} is {}", width(line));
            }
            assert!(out.contains("[accused]"), "{out}");
        }
    }

    #[test]
    fn control_characters_are_never_written_raw() {
        let text = "Paris\u{0} accused Rome\u{1b}[2J of fraud.\u{7}";
        let out = table(text, TableStyle::default());
        assert!(!out.contains('\u{1b}') && !out.contains('\u{0}') && !out.contains('\u{7}'));
        assert!(out.contains("\\u{1b}[2J"), "{out}");
    }

    #[test]
    fn colour_only_when_asked() {
        let text = "Paris accused Rome of fraud.";
        assert!(!table(text, TableStyle::default()).contains('\u{1b}'));
        let coloured = table(
            text,
            TableStyle {
                color: true,
                ..Default::default()
            },
        );
        assert!(coloured.contains("\u{1b}["), "{coloured}");
    }

    #[test]
    fn scores_show_enough_decimals_to_differ_from_one() {
        assert_eq!(format_score(1.0), "1.00");
        assert_eq!(format_score(0.9), "0.90");
        assert_eq!(format_score(0.996), "0.996");
        assert_eq!(format_score(0.99993), "0.9999");
        assert_eq!(format_score(0.99999), "0.9999");
    }

    #[test]
    fn the_window_keeps_the_cue_with_words_either_side() {
        let mut p = words(&"before ".repeat(50), Style::new(), false);
        p.extend(words("[cue]", label_style(StanceLabel::Threat), false));
        p.extend(words(&"after ".repeat(50), Style::new(), false));
        let shown = around_cue(&p, 60);
        let line = render(&shown, false);
        assert!(
            line.starts_with("… before") && line.ends_with("after …"),
            "{line}"
        );
        assert!(line.contains("[cue]") && width(&line) <= 60, "{line}");
        let before = line.find("[cue]").unwrap();
        assert!(
            before > 10 && before < 30,
            "a third of the room before the cue: {line}"
        );
    }

    #[test]
    fn a_long_sentence_is_shown_around_its_cue() {
        let filler = "and then the talks went on ".repeat(30);
        let text = format!("Paris accused Rome of fraud, {filler}.");
        let out = table(&text, TableStyle::default());
        let statement: Vec<&str> = out
            .lines()
            .skip_while(|l| !l.starts_with("   1."))
            .take_while(|l| !l.is_empty())
            .collect();
        assert!(statement.len() <= 1 + SENTENCE_LINES, "{statement:?}");
        let joined = statement.join(" ");
        assert!(
            joined.contains("[accused]") && joined.contains('…'),
            "{joined}"
        );
    }
}
