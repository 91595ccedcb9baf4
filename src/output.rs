//! Writing documents: a table for people, an HTML page for reading, JSON /
//! JSON Lines for programs, CoNLL for entity toolkits, TSV for spreadsheets.
//!
//! Each format has its own module; [`DocWriter`] streams documents in one of them.

pub mod conll;
pub mod html;
pub mod table;
pub mod text;
pub mod tsv;

use std::io::{self, Write};

use crate::document::Document;
use crate::pipeline::PipelineInfo;

pub use table::TableStyle;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum OutputFormat {
    /// Statements, actors and entities laid out for reading in a terminal.
    #[default]
    Table,
    /// One JSON object for one document, an array for several.
    Json,
    /// One JSON document per line, streamed in input order.
    Jsonl,
    /// One self-contained HTML page (a section per document): entities and statements highlighted.
    Html,
    /// One token a line with its IOB2 entity tag, a blank line between sentences.
    Conll,
    /// Tab-separated values, one statement a row, with a header row.
    Tsv,
}

impl OutputFormat {
    /// The name users write (`--format table|json|jsonl|html|conll|tsv`).
    pub fn as_str(&self) -> &'static str {
        match self {
            OutputFormat::Table => "table",
            OutputFormat::Json => "json",
            OutputFormat::Jsonl => "jsonl",
            OutputFormat::Html => "html",
            OutputFormat::Conll => "conll",
            OutputFormat::Tsv => "tsv",
        }
    }
}

/// How a [`DocWriter`] writes, beyond its format.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// JSON is an array whatever the number of documents (the input can hold several).
    pub many: bool,
    /// Width and colour of the table.
    pub table: TableStyle,
    /// The backend and models, named at the top of the HTML page.
    pub info: PipelineInfo,
    /// The HTML page's title.
    pub title: String,
}

/// Streams documents in one format. JSON writes one object for a single
/// document and an array otherwise; when the input can hold several documents
/// (`many`), it is always an array, so a run that stopped after its first
/// document never looks like a complete one-document run. HTML and TSV write
/// their head before the first document, and HTML its foot on [`DocWriter::finish`].
pub struct DocWriter<W: Write> {
    format: OutputFormat,
    out: W,
    held: Option<Document>,
    written: usize,
    options: WriteOptions,
}

impl<W: Write> DocWriter<W> {
    pub fn new(format: OutputFormat, out: W) -> Self {
        DocWriter::with_options(format, out, WriteOptions::default())
    }

    /// A writer whose JSON output is an array whatever the number of documents.
    pub fn array(format: OutputFormat, out: W) -> Self {
        DocWriter::with_options(
            format,
            out,
            WriteOptions {
                many: true,
                ..Default::default()
            },
        )
    }

    pub fn with_options(format: OutputFormat, out: W, options: WriteOptions) -> Self {
        DocWriter {
            format,
            out,
            held: None,
            written: 0,
            options,
        }
    }

    /// Writes the head of formats that have one, once.
    fn head(&mut self) -> io::Result<()> {
        if self.written > 0 {
            return Ok(());
        }
        match self.format {
            OutputFormat::Html => {
                let title = if self.options.title.is_empty() {
                    "stance"
                } else {
                    &self.options.title
                };
                html::write_header(&mut self.out, title, &self.options.info)
            }
            OutputFormat::Tsv => tsv::write_header(&mut self.out),
            _ => Ok(()),
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
                table::write_table(&mut self.out, &doc, text, self.options.table)?;
                self.out.flush()?;
            }
            OutputFormat::Html => {
                self.head()?;
                html::write_section(&mut self.out, self.written + 1, &doc, text)?;
            }
            OutputFormat::Conll => conll::write_conll(&mut self.out, &doc, text)?,
            OutputFormat::Tsv => {
                self.head()?;
                tsv::write_rows(&mut self.out, &doc, text)?;
            }
            OutputFormat::Json => match self.held.take() {
                None if self.written == 0 && self.options.many => {
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

    /// Closes the output: the held single object, the array's bracket, the page's foot.
    pub fn finish(mut self) -> io::Result<W> {
        match self.format {
            OutputFormat::Json => match self.held.take() {
                Some(doc) => {
                    serde_json::to_writer_pretty(&mut self.out, &doc)?;
                    self.out.write_all(b"\n")?;
                }
                None if self.written == 0 => self.out.write_all(b"[]\n")?,
                None => self.out.write_all(b"\n]\n")?,
            },
            OutputFormat::Html => {
                self.head()?;
                html::write_footer(&mut self.out, self.written)?;
            }
            OutputFormat::Tsv => self.head()?,
            _ => {}
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
