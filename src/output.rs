//! Writing documents as a table for people, or JSON / JSON Lines for programs.

use std::io::{self, Write};

use crate::document::Document;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Statements, actors and entities laid out for reading.
    #[default]
    Table,
    /// One JSON object for one document, an array for several.
    Json,
    /// One JSON document per line, streamed in input order.
    Jsonl,
}

/// Streams documents in one format. JSON writes one object for a single
/// document and an array otherwise; when the input can hold several documents
/// (`many`), it is always an array, so a run that stopped after its first
/// document never looks like a complete one-document run.
pub struct DocWriter<W: Write> {
    format: OutputFormat,
    out: W,
    held: Option<Document>,
    written: usize,
    many: bool,
}

impl<W: Write> DocWriter<W> {
    pub fn new(format: OutputFormat, out: W) -> Self {
        DocWriter {
            format,
            out,
            held: None,
            written: 0,
            many: false,
        }
    }

    /// A writer whose JSON output is an array whatever the number of documents.
    pub fn array(format: OutputFormat, out: W) -> Self {
        DocWriter {
            many: true,
            ..DocWriter::new(format, out)
        }
    }

    /// Writes a document; `text` is its input text (for showing sentences in tables).
    pub fn write(&mut self, doc: Document, text: &str) -> io::Result<()> {
        match self.format {
            OutputFormat::Jsonl => {
                serde_json::to_writer(&mut self.out, &doc)?;
                self.out.write_all(b"\n")?;
                self.out.flush()?;
            }
            OutputFormat::Table => {
                if self.written > 0 {
                    writeln!(self.out)?;
                }
                write_table(&mut self.out, &doc, text)?;
                self.out.flush()?;
            }
            OutputFormat::Json => match self.held.take() {
                None if self.written == 0 && self.many => {
                    self.out.write_all(b"[\n")?;
                    serde_json::to_writer_pretty(&mut self.out, &doc)?;
                }
                None if self.written == 0 => {
                    self.held = Some(doc);
                    return Ok(());
                }
                Some(first) => {
                    self.out.write_all(b"[\n")?;
                    serde_json::to_writer_pretty(&mut self.out, &first)?;
                    self.out.write_all(b",\n")?;
                    serde_json::to_writer_pretty(&mut self.out, &doc)?;
                    self.written += 1;
                }
                None => {
                    self.out.write_all(b",\n")?;
                    serde_json::to_writer_pretty(&mut self.out, &doc)?;
                }
            },
        }
        self.written += 1;
        Ok(())
    }

    /// Closes the output: the held single object, or the array's bracket.
    pub fn finish(mut self) -> io::Result<W> {
        if self.format == OutputFormat::Json {
            match self.held.take() {
                Some(doc) => {
                    serde_json::to_writer_pretty(&mut self.out, &doc)?;
                    self.out.write_all(b"\n")?;
                }
                None if self.written == 0 => self.out.write_all(b"[]\n")?,
                None => self.out.write_all(b"\n]\n")?,
            }
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Characters `[start, end)` of `text`.
pub fn char_slice(text: &str, start: usize, end: usize) -> String {
    text.chars()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect()
}

fn shorten(s: &str, max: usize) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

fn write_table<W: Write>(out: &mut W, doc: &Document, text: &str) -> io::Result<()> {
    writeln!(
        out,
        "== {}  [backend: {}; {} sentences, {} entities, {} actors, {} statements]",
        doc.id,
        doc.backend.as_str(),
        doc.sentences.len(),
        doc.entities.len(),
        doc.actors.len(),
        doc.statements.len()
    )?;
    if let Some(e) = &doc.error {
        writeln!(out, "error: {e}")?;
        return Ok(());
    }
    let name_of = |id: &str| {
        doc.actors
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.name.clone())
            .unwrap_or_default()
    };
    writeln!(out, "\nStatements")?;
    if doc.statements.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for (i, s) in doc.statements.iter().enumerate() {
        let actor = format!("{} → {}", s.actor.text, name_of(&s.actor.actor_id));
        let target = s
            .target
            .as_ref()
            .map(|t| format!("{} → {}", t.text, name_of(&t.actor_id)))
            .unwrap_or_else(|| "-".into());
        let cue = s.cue.as_ref().map(|c| c.text.as_str()).unwrap_or("-");
        writeln!(
            out,
            "  {:>2}. {:<10} {:<34} target: {:<28} cue: {:<20} {:.2}",
            i + 1,
            s.label.as_str(),
            shorten(&actor, 34),
            shorten(&target, 28),
            shorten(cue, 20),
            s.score
        )?;
        writeln!(
            out,
            "      “{}”",
            shorten(&char_slice(text, s.sentence.start, s.sentence.end), 110)
        )?;
    }
    writeln!(out, "\nActors")?;
    for a in &doc.actors {
        let tag = if a.reporter { "  (reporter)" } else { "" };
        writeln!(
            out,
            "  {:<4} {:<28} {:<5} {} mention(s): {}{}",
            a.id,
            shorten(&a.name, 28),
            a.kind.as_str(),
            a.mentions.len(),
            shorten(&a.aliases.join(", "), 60),
            tag
        )?;
    }
    writeln!(out, "\nEntities")?;
    for e in &doc.entities {
        writeln!(
            out,
            "  {:<30} {:<5} {:>6}-{:<6} {:.2}",
            shorten(&e.text, 30),
            e.label.as_str(),
            e.start,
            e.end,
            e.score
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Pipeline;

    fn doc(id: &str) -> Document {
        Pipeline::rules()
            .analyze(id, "Paris accused Rome of fraud.")
            .unwrap()
    }

    #[test]
    fn json_is_an_object_for_one_document_and_an_array_for_several() {
        let mut w = DocWriter::new(OutputFormat::Json, Vec::new());
        w.write(doc("a"), "").unwrap();
        let one: serde_json::Value = serde_json::from_slice(&w.finish().unwrap()).unwrap();
        assert_eq!(one["id"], "a");

        let mut w = DocWriter::new(OutputFormat::Json, Vec::new());
        for id in ["a", "b", "c"] {
            w.write(doc(id), "").unwrap();
        }
        let many: serde_json::Value = serde_json::from_slice(&w.finish().unwrap()).unwrap();
        let ids: Vec<&str> = many
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec!["a", "b", "c"]);

        let empty: serde_json::Value = serde_json::from_slice(
            &DocWriter::new(OutputFormat::Json, Vec::new())
                .finish()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(empty, serde_json::json!([]));
    }

    #[test]
    fn jsonl_is_one_document_per_line() {
        let mut w = DocWriter::new(OutputFormat::Jsonl, Vec::new());
        w.write(doc("a"), "").unwrap();
        w.write(doc("b"), "").unwrap();
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with("{\"id\":\"b\""));
    }
}
