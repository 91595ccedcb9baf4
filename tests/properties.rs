//! Property tests over hostile text: emoji and ZWJ sequences, combining marks,
//! right-to-left scripts, CRLF, NUL, BOM and styled math letters mixed into news
//! sentences. Every span in the output slices back to its text and begins and
//! ends on an ordinary character; CRLF text segments as LF text does.

mod common;

use proptest::prelude::*;
use stance::edges::{is_edge_noise, is_splitting_control};
use stance::segment::segment;
use stance::{Document, Pipeline};
use unicode_general_category::{get_general_category, GeneralCategory};

/// Pieces the generator strings together: news words and hostile characters.
const PIECES: &[&str] = &[
    "Vladimir Putin",
    "Angela Merkel",
    "John Kerry",
    "the European Union",
    "Russia",
    "China's",
    "U.S.",
    "warned",
    "accused",
    "proposed talks with",
    "threatened to strike",
    "said",
    ".",
    ",",
    "\"",
    "“",
    "”",
    "👍",
    "👩\u{200D}👩\u{200D}👧\u{200D}👦",
    "👍\u{FE0F}",
    "🇫🇷",
    "e\u{0301}",
    "\u{0301}",
    "Jose\u{0301}",
    "محمد عباس",
    "שלום",
    "\u{200F}",
    "\u{202E}",
    "\r\n",
    "\r\n\r\n",
    "\n",
    "\u{0}",
    "\u{1B}[31m",
    "\u{7F}",
    "\u{9B}",
    "\u{FEFF}",
    "𝕿𝖊𝖘𝖙",
    "𝐁𝐢𝐝𝐞𝐧",
    "∑",
    "€",
    "\t",
    " ",
    " ",
];

fn hostile_text() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(PIECES), prop::bool::ANY), 1..40).prop_map(
        |parts| {
            let mut text = String::new();
            for (piece, space) in parts {
                text.push_str(piece);
                if space {
                    text.push(' ');
                }
            }
            text
        },
    )
}

/// Characters `[start, end)` of `text`.
fn slice(text: &str, start: usize, end: usize) -> String {
    common::chars(text, start as u64, end as u64)
}

fn is_mark(c: char) -> bool {
    matches!(
        get_general_category(c),
        GeneralCategory::NonspacingMark
            | GeneralCategory::SpacingMark
            | GeneralCategory::EnclosingMark
    )
}

/// Every user-visible span of `doc` slices back and has clean edges.
fn check_spans(text: &str, doc: &Document) -> Result<(), TestCaseError> {
    let mut spans: Vec<(&str, usize, usize, &str)> = Vec::new();
    for e in &doc.entities {
        spans.push(("entity", e.start, e.end, &e.text));
    }
    for a in &doc.actors {
        for m in &a.mentions {
            spans.push(("mention", m.start, m.end, &m.text));
        }
    }
    for s in &doc.statements {
        spans.push(("actor", s.actor.start, s.actor.end, &s.actor.text));
        if let Some(t) = &s.target {
            spans.push(("target", t.start, t.end, &t.text));
        }
        if let Some(c) = &s.cue {
            spans.push(("cue", c.start, c.end, &c.text));
        }
    }
    for (kind, start, end, said) in spans {
        prop_assert!(start < end, "empty {kind} in {text:?}");
        prop_assert_eq!(
            &slice(text, start, end),
            said,
            "{} offsets in {:?}",
            kind,
            text
        );
        let first = said.chars().next().unwrap();
        let mut tail = said.chars().rev();
        let last = tail.next().unwrap();
        // A combining mark may end a span when it sits on a letter ("José" as e + U+0301).
        let mark_on_letter = is_mark(last) && tail.next().is_some_and(|c| !is_edge_noise(c));
        prop_assert!(
            !is_edge_noise(first) && (!is_edge_noise(last) || mark_on_letter),
            "{kind} {said:?} begins or ends with noise in {text:?}"
        );
        prop_assert!(
            !said.chars().any(is_splitting_control),
            "{kind} {said:?} holds a control character in {text:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn rules_spans_slice_back_and_have_clean_edges(text in hostile_text()) {
        let doc = Pipeline::rules().analyze("p", &text).expect("the rules never fail");
        check_spans(&text, &doc)?;
    }

    #[test]
    fn crlf_segments_as_lf(text in hostile_text()) {
        let lf = text.replace("\r\n", "\n");
        let crlf = lf.replace('\n', "\r\n");
        let of = |t: &str| -> Vec<String> {
            segment(t)
                .into_iter()
                .map(|s| s.span.text(t).replace("\r\n", "\n"))
                .collect()
        };
        prop_assert_eq!(of(&lf), of(&crlf));
    }
}

/// The default (model) backend over a fixed set of hostile texts: fewer cases, since
/// each runs the transformer.
#[test]
fn model_spans_slice_back_and_have_clean_edges() {
    let Ok((pipeline, note)) = Pipeline::for_backend(Default::default(), &Default::default())
    else {
        panic!("the default backend loads (or falls back with a note)");
    };
    if let Some(note) = note {
        eprintln!("SKIPPED: no default model ({note})");
        return;
    }
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&hostile_text(), |text| {
            let doc = pipeline.analyze("p", &text).expect("the model runs");
            check_spans(&text, &doc)
        })
        .unwrap();
}

#[test]
fn the_issue_examples_come_out_clean() {
    let text = "👍 Korean officials met Angela Merkel 👩\u{200D}👩\u{200D}👧\u{200D}👦 in Berlin. \
                Vladimir Putin\u{0}warned Ukraine. 𝕿𝖊𝖘𝖙 Joe Biden accused Russia of lying.";
    let doc = Pipeline::rules().analyze("x", text).unwrap();
    let names: Vec<&str> = doc.entities.iter().map(|e| e.text.as_str()).collect();
    assert!(names.contains(&"Angela Merkel"), "{names:?}");
    assert!(names.contains(&"Joe Biden"), "{names:?}");
    assert!(names
        .iter()
        .all(|n| !n.contains('\u{0}') && !n.contains('👍')));
    assert!(
        doc.statements.iter().any(|s| s.actor.text == "Joe Biden"
            && s.target.as_ref().is_some_and(|t| t.text == "Russia")),
        "{:?}",
        doc.statements
    );
}
