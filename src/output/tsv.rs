//! Tab-separated values for spreadsheets: a header row, then one statement a row.
//!
//! TSV has no quoting, so a tab, line break or backslash inside a value is
//! written as `\t`, `\n`, `\r` or `\\` (the "linear TSV" convention); a `null`
//! of the JSON (no target, no cue) is an empty cell. Offsets are character
//! offsets, as in the JSON. Cells are text: a spreadsheet asked to evaluate
//! them as formulas would evaluate the article's words, so import as text.

use std::io::{self, Write};

use crate::document::{ActorRef, Document};

/// The columns, in order.
pub const COLUMNS: [&str; 19] = [
    "doc_id",
    "statement",
    "label",
    "score",
    "actor_id",
    "actor_name",
    "actor_text",
    "actor_start",
    "actor_end",
    "target_id",
    "target_name",
    "target_text",
    "target_start",
    "target_end",
    "cue_text",
    "cue_start",
    "cue_end",
    "backend",
    "sentence",
];

/// Writes the header row.
pub fn write_header<W: Write>(out: &mut W) -> io::Result<()> {
    writeln!(out, "{}", COLUMNS.join("\t"))
}

/// Escapes one value for a TSV cell.
pub fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out
}

/// Writes one row per statement of `doc`; `text` gives the sentences.
pub fn write_rows<W: Write>(out: &mut W, doc: &Document, text: &str) -> io::Result<()> {
    let name_of = |id: &str| {
        doc.actors
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.name.clone())
            .unwrap_or_default()
    };
    let mention = |r: Option<&ActorRef>| -> [String; 5] {
        match r {
            Some(r) => [
                r.actor_id.clone(),
                name_of(&r.actor_id),
                r.text.clone(),
                r.start.to_string(),
                r.end.to_string(),
            ],
            None => Default::default(),
        }
    };
    for (i, s) in doc.statements.iter().enumerate() {
        let (cue_text, cue_start, cue_end) = match &s.cue {
            Some(c) => (c.text.clone(), c.start.to_string(), c.end.to_string()),
            None => Default::default(),
        };
        let sentence = super::char_slice(text, s.sentence.start, s.sentence.end);
        let mut row = vec![
            doc.id.clone(),
            (i + 1).to_string(),
            s.label.as_str().to_string(),
            s.score.to_string(),
        ];
        row.extend(mention(Some(&s.actor)));
        row.extend(mention(s.target.as_ref()));
        row.extend([
            cue_text,
            cue_start,
            cue_end,
            s.backend.as_str().to_string(),
            sentence,
        ]);
        debug_assert_eq!(row.len(), COLUMNS.len());
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        writeln!(out, "{}", cells.join("\t"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Pipeline;

    #[test]
    fn one_row_per_statement_with_escaped_cells() {
        let text = "Paris accused Rome\tof fraud.\nBerlin proposed talks.";
        let doc = Pipeline::rules().analyze("a\\b", text).unwrap();
        let mut out = Vec::new();
        write_header(&mut out).unwrap();
        write_rows(&mut out, &doc, text).unwrap();
        let out = String::from_utf8(out).unwrap();
        let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
        assert_eq!(rows.len(), 1 + doc.statements.len());
        assert!(rows.iter().all(|r| r.len() == COLUMNS.len()), "{out}");
        assert_eq!(rows[1][0], "a\\\\b");
        assert_eq!(rows[1][2], "accusation");
        assert_eq!(rows[1][6], "Paris");
        assert_eq!(rows[1][18], "Paris accused Rome\\tof fraud.");
        let proposal = rows.iter().find(|r| r[2] == "proposal").unwrap();
        assert_eq!(proposal[9], "", "no target: an empty cell");
    }
}
