//! Writes the entities of gold JSON Lines (the guidelines' format, with an
//! `entities` list per document) as a CoNLL file, tokenized as `stance` tokenizes.
//!
//! This is how `data/conll/samples.conll` is made from the team's sample
//! articles, so that `stance eval ner` and `stance bench` have a CoNLL file in
//! a fresh clone (CoNLL-2003 itself lives in `../shared`). A test checks the
//! shipped file is what this writes.
//!
//! ```sh
//! cargo run --release --example gold_conll -- data/samples/gold.jsonl > data/conll/samples.conll
//! ```

use stance::span::{CharMap, CharSpan, Span};

/// The CoNLL text of every document of `jsonl`, in file order.
pub fn convert(jsonl: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for (n, line) in jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |m: &str| format!("line {}: {m}", n + 1);
        let doc: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(&e.to_string()))?;
        let text = doc["text"].as_str().ok_or_else(|| bad("no text"))?;
        let map = CharMap::new(text);
        let mut entities: Vec<(Span, &str)> = Vec::new();
        for e in doc["entities"]
            .as_array()
            .ok_or_else(|| bad("no entities"))?
        {
            let (Some(start), Some(end), Some(label)) =
                (e["start"].as_u64(), e["end"].as_u64(), e["label"].as_str())
            else {
                return Err(bad("an entity needs start, end and label"));
            };
            let span = map.to_bytes(CharSpan {
                start: start as usize,
                end: end as usize,
            });
            entities.push((span, label));
        }
        entities.sort_by_key(|(s, _)| (s.start, s.end));
        let sentences: Vec<Span> = stance::segment::segment(text)
            .into_iter()
            .map(|s| s.span)
            .collect();
        stance::output::conll::write_tagged(&mut out, text, &sentences, &entities)
            .map_err(|e| e.to_string())?;
    }
    // No `-DOCSTART-` lines: a committed file with them is how the project spots
    // CoNLL-2003 text, which must never be committed. The articles stay apart by blank
    // lines and read as one document.
    let text = String::from_utf8(out).map_err(|e| e.to_string())?;
    Ok(text
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("-DOCSTART-"))
        .collect())
}

#[allow(dead_code)] // the tests include this file for `convert` alone
fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: gold_conll GOLD.jsonl > OUT.conll");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("error: {path}: {e}");
        std::process::exit(1);
    });
    match convert(&text) {
        Ok(conll) => print!("{conll}"),
        Err(e) => {
            eprintln!("error: {path}: {e}");
            std::process::exit(1);
        }
    }
}
