//! One self-contained HTML page for reading results: each article with its
//! entities highlighted by type (in the manner of spaCy's displaCy), each
//! statement marked at its cue in its label's colour with a badge naming
//! actor → target, a list of the statements, and a summary per actor.
//!
//! The page has inline CSS only: no script, no external asset, so it opens
//! offline, by mail, and in browsers with JavaScript off. All text from the
//! input (and ids, names and paths) is escaped; the five HTML metacharacters
//! are all there is to escape in text and quoted attributes, so this is done by
//! hand rather than with a crate. Control characters and bidirectional
//! overrides are shown as visible escapes, as in the table.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::document::Document;
use crate::pipeline::PipelineInfo;
use crate::span::CharMap;
use crate::stance::StanceLabel;

/// Escapes text for HTML element content and double- or single-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if super::text::is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --threat: #c62828; --accusation: #8e24aa; --proposal: #2e7d32; }
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0 auto;
  max-width: 72rem; padding: 1rem 1.5rem 3rem; color: #1d1d1f; background: #fff; }
header { border-bottom: 1px solid #ddd; padding-bottom: .5rem; }
h1 { font-size: 1.4rem; margin: .2rem 0; }
h2 { font-size: 1.2rem; margin: 2rem 0 .3rem; word-break: break-all; }
h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
.run, .stats, .legend { margin: .3rem 0; color: #444; font-size: .9rem; }
.run code { background: #f3f3f3; padding: 0 .3em; border-radius: .2em; word-break: break-all; }
.article { white-space: pre-wrap; line-height: 2.4; font-size: 1.02rem; border: 1px solid #e3e3e3;
  border-radius: .4rem; padding: .6rem 1rem; overflow-wrap: anywhere; }
mark.entity { padding: .3em .45em; margin: 0 .1em; line-height: 1; border-radius: .35em;
  color: inherit; }
mark.entity.cont { margin-left: 0; padding-left: 0; border-top-left-radius: 0; border-bottom-left-radius: 0; }
.ent-label { font-size: .62em; font-weight: bold; line-height: 1; border-radius: .35em;
  vertical-align: middle; margin-left: .4rem; text-transform: uppercase; }
mark.ent-PER { background: #aa9cfc; } mark.ent-ORG { background: #7aecec; }
mark.ent-LOC { background: #feca74; } mark.ent-MISC { background: #e4e7d2; }
.cue { font-weight: bold; text-decoration: underline; text-decoration-thickness: .16em;
  text-underline-offset: .22em; }
.cue.threat { color: var(--threat); } .cue.accusation { color: var(--accusation); }
.cue.proposal { color: var(--proposal); }
.badge { display: inline-block; font-size: .72em; font-weight: bold; line-height: 1.3; color: #fff;
  border-radius: .8em; padding: .05em .55em; margin: 0 .2em; vertical-align: middle;
  text-decoration: none; white-space: nowrap; }
.badge.threat { background: var(--threat); } .badge.accusation { background: var(--accusation); }
.badge.proposal { background: var(--proposal); }
table { border-collapse: collapse; font-size: .9rem; margin: .3rem 0 1rem; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f6f6; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.n.zero { color: #bbb; }
tr.reporter td { color: #777; }
.error { color: #b00020; font-weight: bold; }
footer { margin-top: 2rem; color: #777; font-size: .8rem; }
"#;

const LABELS: [StanceLabel; 3] = StanceLabel::ALL;

/// Writes the page's head, the run's description and the legend.
pub fn write_header<W: Write>(out: &mut W, title: &str, info: &PipelineInfo) -> io::Result<()> {
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta name=\"generator\" content=\"stance {}\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        env!("CARGO_PKG_VERSION"),
        escape(title)
    )?;
    let mut legend = String::from("entities: ");
    for t in ["PER", "ORG", "LOC", "MISC"] {
        let _ = write!(legend, "<mark class=\"entity ent-{t}\">{t}</mark> ");
    }
    legend.push_str(" · statements at their cue: ");
    for l in LABELS {
        let _ = write!(
            legend,
            "<span class=\"badge {0}\">{0}: actor → target</span>",
            l.as_str()
        );
    }
    writeln!(
        out,
        "<header>\n<h1>stance: who said what to whom</h1>\n\
<p class=\"run\">backend <b class=\"backend\">{}</b> · entities: <code class=\"entity-model\">{}</code> · \
statements: <code class=\"stance-model\">{}</code></p>\n<p class=\"legend\">{legend}</p>\n</header>",
        escape(&info.backend),
        escape(&info.entities),
        escape(&info.statements)
    )
}

/// Closes the page.
pub fn write_footer<W: Write>(out: &mut W, documents: usize) -> io::Result<()> {
    if documents == 0 {
        writeln!(out, "<p>(no documents)</p>")?;
    }
    writeln!(
        out,
        "<footer>{documents} document(s). Offsets in the JSON output are character offsets; \
scores are the model's probability (or the rule's prior).</footer>\n</body>\n</html>"
    )
}

/// One highlighted span of the article: an entity or a statement's cue.
#[derive(Debug, Clone)]
struct Mark {
    start: usize,
    end: usize,
    open: String,
    /// Written before the closing tag at the span's true end (a label, badges).
    tail: String,
    /// Opening tag for the part after an interruption by a crossing span.
    reopen: String,
}

/// Writes one document as a `<section>`; `n` numbers it in the page.
pub fn write_section<W: Write>(
    out: &mut W,
    n: usize,
    doc: &Document,
    text: &str,
) -> io::Result<()> {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<section class=\"doc\" id=\"doc-{n}\">\n<h2>{}</h2>\n<p class=\"stats\">backend {} · {} sentences, {} entities, {} actors, {} statements</p>",
        escape(&doc.id),
        doc.backend.as_str(),
        doc.sentences.len(),
        doc.entities.len(),
        doc.actors.len(),
        doc.statements.len()
    );
    if let Some(e) = &doc.error {
        let _ = writeln!(s, "<p class=\"error\">error: {}</p>", escape(e));
    }
    let _ = writeln!(s, "<div class=\"article\">{}</div>", article(n, doc, text));
    statements_table(&mut s, doc);
    actors_table(&mut s, doc);
    s.push_str("</section>\n");
    out.write_all(s.as_bytes())
}

fn actor_name<'a>(doc: &'a Document, id: &'a str) -> &'a str {
    doc.actors
        .iter()
        .find(|a| a.id == id)
        .map(|a| a.name.as_str())
        .unwrap_or(id)
}

/// "Kerry → Russia", or the actor alone.
fn who_to_whom(doc: &Document, s: &crate::document::StatementOut) -> String {
    let actor = actor_name(doc, &s.actor.actor_id);
    match &s.target {
        Some(t) => format!("{actor} → {}", actor_name(doc, &t.actor_id)),
        None => actor.to_string(),
    }
}

/// The article text with its marks, properly nested; `n` numbers the
/// document, so that element ids are unique in the page.
fn article(n: usize, doc: &Document, text: &str) -> String {
    let mut marks: Vec<Mark> = Vec::new();
    for (i, e) in doc.entities.iter().enumerate() {
        let label = e.label.as_str();
        let title = format!("{label} · {}", actor_name(doc, &e.actor_id));
        marks.push(Mark {
            start: e.start,
            end: e.end,
            open: format!(
                "<mark class=\"entity ent-{label}\" id=\"d{n}-e{i}\" data-label=\"{label}\" data-start=\"{}\" data-end=\"{}\" data-actor=\"{}\" title=\"{}\">",
                e.start,
                e.end,
                escape(&e.actor_id),
                escape(&title)
            ),
            tail: format!("<span class=\"ent-label\">{label}</span>"),
            reopen: format!("<mark class=\"entity ent-{label} cont\">"),
        });
    }
    // Statements sharing a cue share its mark; a statement without a cue is
    // badged at its actor's mention.
    let mut cues: Vec<(usize, usize, Vec<usize>)> = Vec::new();
    for (i, s) in doc.statements.iter().enumerate() {
        let (start, end) = match &s.cue {
            Some(c) if c.start < c.end => (c.start, c.end),
            _ => (s.actor.start, s.actor.end),
        };
        match cues.iter_mut().find(|c| c.0 == start && c.1 == end) {
            Some(c) => c.2.push(i),
            None => cues.push((start, end, vec![i])),
        }
    }
    for (start, end, statements) in cues {
        let first = &doc.statements[statements[0]];
        let label = first.label.as_str();
        let has_cue = first.cue.as_ref().is_some_and(|c| c.start < c.end);
        let mut tail = String::new();
        let mut titles = Vec::new();
        for &i in &statements {
            let s = &doc.statements[i];
            let l = s.label.as_str();
            let who = who_to_whom(doc, s);
            titles.push(format!("{l}: {who}"));
            let _ = write!(
                tail,
                "<span class=\"badge {l}\" data-statement=\"{}\">{l}: {}</span>",
                i + 1,
                escape(&who)
            );
        }
        let class = if has_cue { "cue" } else { "cue no-cue" };
        let open_class = if has_cue {
            format!("{class} {label}")
        } else {
            class.to_string()
        };
        marks.push(Mark {
            start,
            end,
            open: format!(
                "<span class=\"{open_class}\" title=\"{}\">",
                escape(&titles.join("; "))
            ),
            tail,
            reopen: format!("<span class=\"{open_class}\">"),
        });
    }
    nest(text, marks)
}

/// Renders `text` with `marks` (character offsets) as properly nested tags: a
/// mark that crosses another is closed and reopened around it.
fn nest(text: &str, mut marks: Vec<Mark>) -> String {
    let chars = CharMap::new(text);
    let len = chars.char_len();
    marks.retain(|m| m.start < m.end && m.end <= len);
    // Outer marks first: by start, then the longer one.
    marks.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut points: Vec<usize> = marks.iter().flat_map(|m| [m.start, m.end]).collect();
    points.push(len);
    points.sort_unstable();
    points.dedup();
    let mut out = String::with_capacity(text.len() * 2);
    let mut stack: Vec<usize> = Vec::new();
    let mut next = 0;
    let mut at = 0;
    for p in points {
        out.push_str(&escape(&text[chars.byte_offset(at)..chars.byte_offset(p)]));
        at = p;
        // Close the marks ending here; marks above them are closed and reopened.
        if stack.iter().any(|&m| marks[m].end == p) {
            let mut reopen = Vec::new();
            while let Some(&top) = stack.last() {
                if !stack.iter().any(|&m| marks[m].end == p) {
                    break;
                }
                stack.pop();
                let m = &marks[top];
                if m.end == p {
                    out.push_str(&m.tail);
                } else {
                    reopen.push(top);
                }
                out.push_str(close_tag(&m.open));
            }
            for &m in reopen.iter().rev() {
                out.push_str(&marks[m].reopen);
                stack.push(m);
            }
        }
        while next < marks.len() && marks[next].start == p {
            out.push_str(&marks[next].open);
            stack.push(next);
            next += 1;
        }
    }
    out
}

fn close_tag(open: &str) -> &'static str {
    if open.starts_with("<mark") {
        "</mark>"
    } else {
        "</span>"
    }
}

fn statements_table(s: &mut String, doc: &Document) {
    s.push_str("<h3>Statements</h3>\n");
    if doc.statements.is_empty() {
        s.push_str("<p>(none)</p>\n");
        return;
    }
    s.push_str("<table class=\"statements\">\n<tr><th>#</th><th>label</th><th>actor</th><th>target</th><th>cue</th><th>score</th><th>backend</th></tr>\n");
    for (i, st) in doc.statements.iter().enumerate() {
        let l = st.label.as_str();
        let mention = |r: &crate::document::ActorRef| {
            let name = actor_name(doc, &r.actor_id);
            if name == r.text {
                escape(name)
            } else {
                format!("{} <small>({})</small>", escape(name), escape(&r.text))
            }
        };
        let target = st
            .target
            .as_ref()
            .map(mention)
            .unwrap_or_else(|| "–".into());
        let cue = st
            .cue
            .as_ref()
            .map(|c| format!("“{}”", escape(&c.text)))
            .unwrap_or_else(|| "–".into());
        let _ = writeln!(
            s,
            "<tr data-statement=\"{}\"><td class=\"n\">{}</td><td><span class=\"badge {l}\">{l}</span></td><td>{}</td><td>{target}</td><td>{cue}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            i + 1,
            i + 1,
            mention(&st.actor),
            super::table::format_score(st.score),
            st.backend.as_str()
        );
    }
    s.push_str("</table>\n");
}

fn actors_table(s: &mut String, doc: &Document) {
    s.push_str("<h3>Actors</h3>\n");
    if doc.actors.is_empty() {
        s.push_str("<p>(none)</p>\n");
        return;
    }
    s.push_str(
        "<table class=\"actors\">\n<tr><th rowspan=\"2\">actor</th><th rowspan=\"2\">type</th>\
<th rowspan=\"2\">mentions</th><th colspan=\"3\">made</th><th colspan=\"3\">received</th></tr>\n<tr>",
    );
    for _ in 0..2 {
        for l in LABELS {
            let _ = write!(s, "<th>{}s</th>", l.as_str());
        }
    }
    s.push_str("</tr>\n");
    for a in &doc.actors {
        let count = |label: StanceLabel, made: bool| {
            doc.statements
                .iter()
                .filter(|st| st.label == label)
                .filter(|st| {
                    if made {
                        st.actor.actor_id == a.id
                    } else {
                        st.target.as_ref().is_some_and(|t| t.actor_id == a.id)
                    }
                })
                .count()
        };
        let others: Vec<&str> = a
            .aliases
            .iter()
            .map(String::as_str)
            .filter(|x| *x != a.name)
            .collect();
        let aliases = if others.is_empty() {
            String::new()
        } else {
            format!(" <small>({})</small>", escape(&others.join(", ")))
        };
        let reporter = if a.reporter {
            " <small>[reporter]</small>"
        } else {
            ""
        };
        let _ = write!(
            s,
            "<tr data-actor=\"{}\"{}><td>{}{aliases}{reporter}</td><td>{}</td><td class=\"n mentions\">{}</td>",
            escape(&a.id),
            if a.reporter { " class=\"reporter\"" } else { "" },
            escape(&a.name),
            a.kind.as_str(),
            a.mentions.len()
        );
        for made in [true, false] {
            for l in LABELS {
                let n = count(l, made);
                let _ = write!(
                    s,
                    "<td class=\"n {}-{}{}\">{n}</td>",
                    if made { "made" } else { "received" },
                    l.as_str(),
                    if n == 0 { " zero" } else { "" }
                );
            }
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Pipeline;

    fn page(text: &str) -> String {
        let doc = Pipeline::rules().analyze("<b>id</b>", text).unwrap();
        let mut out = Vec::new();
        write_header(&mut out, "t", &PipelineInfo::default()).unwrap();
        write_section(&mut out, 1, &doc, text).unwrap();
        write_footer(&mut out, 1).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn input_text_is_escaped() {
        let out = page(
            "Paris accused Rome of <script>alert(1)</script> & <img src=x onerror=alert(2)> fraud.",
        );
        assert!(!out.contains("<script"), "{out}");
        assert!(!out.contains("<img"), "{out}");
        assert!(out.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;img"));
        assert!(out.contains("<h2>&lt;b&gt;id&lt;/b&gt;</h2>"));
    }

    #[test]
    fn entities_and_cues_are_marked_and_nested() {
        let out = page("Paris accused Rome of fraud.");
        assert!(
            out.contains("<mark class=\"entity ent-LOC\" id=\"d1-e0\""),
            "{out}"
        );
        assert!(out.contains("<span class=\"cue accusation\""), "{out}");
        assert!(out.contains("<span class=\"badge accusation\" data-statement=\"1\">accusation: France → Italy</span>"), "{out}");
        assert!(
            out.contains("<td class=\"n made-accusation\">1</td>"),
            "{out}"
        );
        assert!(
            out.contains("<td class=\"n received-accusation\">1</td>"),
            "{out}"
        );
    }

    #[test]
    fn crossing_marks_are_closed_and_reopened() {
        let mark = |start, end, name: &str| Mark {
            start,
            end,
            open: format!("<span class=\"{name}\">"),
            tail: format!("[{name}]"),
            reopen: format!("<span class=\"{name} cont\">"),
        };
        let out = nest("abcdef", vec![mark(0, 3, "x"), mark(2, 5, "y")]);
        assert_eq!(
            out,
            "<span class=\"x\">ab<span class=\"y\">c</span>[x]</span><span class=\"y cont\">de[y]</span>f"
        );
        assert_eq!(
            nest("a<b", vec![mark(1, 2, "x")]),
            "a<span class=\"x\">&lt;[x]</span>b"
        );
    }
}
