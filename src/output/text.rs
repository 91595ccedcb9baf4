//! Text for a terminal: control characters made visible, width measured in
//! terminal columns, and words wrapped to a width, each with its own style.
//!
//! Article text is untrusted: an ESC in it could recolour or move the cursor of
//! the reader's terminal, a NUL truncates it in some viewers, and bidirectional
//! overrides can make a line read differently from what it holds. Widths are
//! display widths (an emoji or a CJK character takes two columns), so columns
//! stay aligned whatever the script.

use anstyle::Style;
use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// True for characters never written raw to a terminal: C0 and C1 controls and
/// DEL (`Cc`), and the bidirectional embeddings, overrides and isolates.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every unsafe character shown as a Rust-style escape (`\u{1b}`).
/// Tabs and line breaks are escaped too; split on whitespace first to keep them as spaces.
pub fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_unsafe(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Whitespace runs (line breaks included) collapsed to one space, ends trimmed,
/// and the remaining unsafe characters escaped: text ready for one table cell.
pub fn one_line(s: &str) -> String {
    escape_controls(&s.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Columns `s` takes on a terminal.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` padded with spaces to `w` columns (unchanged when it is wider).
pub fn pad(s: &str, w: usize) -> String {
    let n = width(s);
    if n >= w {
        s.to_string()
    } else {
        format!("{s}{}", " ".repeat(w - n))
    }
}

/// A word to lay out: its (escaped) text, its style, and whether it follows the
/// previous word without a space (a word cut in two by a change of style).
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub text: String,
    pub style: Style,
    pub glue: bool,
}

impl Piece {
    pub fn new(text: impl Into<String>, style: Style) -> Piece {
        Piece {
            text: text.into(),
            style,
            glue: false,
        }
    }

    pub fn width(&self) -> usize {
        width(&self.text)
    }
}

/// The words of `s` (split at whitespace, escaped) in one style; the first is
/// glued to what precedes it when `s` does not start with whitespace and `glue` is set.
pub fn words(s: &str, style: Style, glue: bool) -> Vec<Piece> {
    let glued = glue && !s.starts_with(char::is_whitespace);
    s.split_whitespace()
        .enumerate()
        .map(|(i, w)| Piece {
            text: escape_controls(w),
            style,
            glue: i == 0 && glued,
        })
        .collect()
}

/// Lays pieces out in lines of at most `max` columns, breaking at spaces; a word
/// wider than a line is broken between grapheme clusters, so an emoji sequence
/// or an accented letter stays whole.
pub fn wrap_pieces(pieces: &[Piece], max: usize) -> Vec<Vec<Piece>> {
    let max = max.max(2);
    // Glued pieces move together: group them into words first.
    let mut groups: Vec<Vec<Piece>> = Vec::new();
    for p in pieces {
        match groups.last_mut() {
            Some(g) if p.glue => g.push(p.clone()),
            _ => groups.push(vec![Piece {
                glue: false,
                ..p.clone()
            }]),
        }
    }
    let mut lines: Vec<Vec<Piece>> = Vec::new();
    let mut line: Vec<Piece> = Vec::new();
    let mut used = 0;
    for group in groups {
        let w: usize = group.iter().map(Piece::width).sum();
        if !line.is_empty() && used + 1 + w <= max {
            used += 1 + w;
            line.extend(group);
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
            used = 0;
        }
        if w <= max {
            used = w;
            line.extend(group);
            continue;
        }
        for piece in group {
            for g in piece.text.graphemes(true) {
                let gw = width(g);
                if used > 0 && used + gw > max {
                    lines.push(std::mem::take(&mut line));
                    used = 0;
                }
                match line.last_mut() {
                    Some(last) if used > 0 && last.style == piece.style => last.text.push_str(g),
                    _ => line.push(Piece {
                        text: g.to_string(),
                        style: piece.style,
                        glue: used > 0,
                    }),
                }
                used += gw;
            }
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Plain words of `s` wrapped to `max` columns.
pub fn wrap(s: &str, max: usize) -> Vec<String> {
    wrap_pieces(&words(s, Style::new(), false), max)
        .iter()
        .map(|l| render(l, false))
        .collect()
}

/// One laid-out line as text, with its styles' escape codes when `color` is set.
pub fn render(line: &[Piece], color: bool) -> String {
    let mut out = String::new();
    for (i, p) in line.iter().enumerate() {
        if i > 0 && !p.glue {
            out.push(' ');
        }
        out.push_str(&styled(&p.text, p.style, color));
    }
    out
}

/// `s` in `style` when `color` is set, else plain.
pub fn styled(s: &str, style: Style, color: bool) -> String {
    if color && style != Style::new() {
        format!("{}{s}{}", style.render(), style.render_reset())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_visible_escapes() {
        let s = one_line("a\u{0}b\u{1b}[31mred\u{7f}\u{9b}\u{202e}z\n\tnext");
        assert_eq!(s, "a\\u{0}b\\u{1b}[31mred\\u{7f}\\u{9b}\\u{202e}z next");
        assert!(!s.chars().any(is_unsafe));
    }

    #[test]
    fn wide_characters_count_twice() {
        assert_eq!(width("abc"), 3);
        assert_eq!(width("北京"), 4);
        assert_eq!(width("🇫🇷"), 2);
        assert_eq!(width("é"), 1);
        assert_eq!(width(&pad("北京", 6)), 6);
    }

    #[test]
    fn wrapping_measures_columns_and_keeps_graphemes_whole() {
        let lines = wrap("北京 北京 北京", 9);
        assert_eq!(lines, vec!["北京 北京", "北京"]);
        assert!(lines.iter().all(|l| width(l) <= 9));
        let long = "🇫🇷".repeat(5);
        let lines = wrap(&long, 4);
        assert_eq!(lines, vec!["🇫🇷🇫🇷", "🇫🇷🇫🇷", "🇫🇷"]);
        assert_eq!(wrap("", 10), vec![""]);
    }

    #[test]
    fn glued_pieces_stay_together_and_keep_their_styles() {
        let bold = Style::new().bold();
        let mut p = words("said Paris", Style::new(), false);
        p.extend(words("accused", bold, false));
        p.extend(words("’s rival", Style::new(), true));
        let lines = wrap_pieces(&p, 14);
        let plain: Vec<String> = lines.iter().map(|l| render(l, false)).collect();
        assert_eq!(plain, vec!["said Paris", "accused’s", "rival"]);
        let coloured = render(&lines[1], true);
        assert!(
            coloured.contains("\u{1b}[1maccused\u{1b}[0m’s"),
            "{coloured:?}"
        );
    }
}
