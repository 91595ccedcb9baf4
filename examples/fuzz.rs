//! A fuzzing harness on stable Rust (cargo-fuzz needs nightly; afl.rs needs an
//! LLVM plugin build these machines lack): proptest generates structure-aware
//! hostile inputs for a fixed time, catches panics and shrinks any failure to a
//! minimal input, which then becomes a regression test.
//!
//! ```sh
//! cargo run --release --example fuzz -- segment 600
//! cargo run --release --example fuzz -- rules 600
//! cargo run --release --example fuzz -- jsonl 600
//! cargo run --release --example fuzz -- conll 600
//! ```
//!
//! Prints the number of executions; exits 1 with the shrunk input on a failure.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRunner};
use stance::span::CharMap;
use stance::{input, Pipeline};

/// Pieces of news and of hostile text that inputs are strung from.
const TEXT_PIECES: &[&str] = &[
    "Vladimir Putin",
    "John Kerry",
    "U.S.",
    "Mr.",
    "warned",
    "accused",
    "proposed",
    "threatened to",
    "said",
    ".",
    "?",
    "\"",
    "“",
    "”",
    "'s",
    "WASHINGTON (Reuters) -",
    "👩\u{200D}👧",
    "e\u{301}",
    "محمد",
    "\u{202E}",
    "\r\n",
    "\n\n",
    "\n",
    "\u{0}",
    "\u{FEFF}",
    "𝕿𝖊𝖘𝖙",
    "\t",
    " ",
    "J.",
    "al-",
    "--",
    "...",
];

const JSON_PIECES: &[&str] = &[
    "{\"id\": ",
    "\"text\": ",
    "\"a\"",
    "\"Kerry warned Moscow.\"",
    "1",
    "-1e999",
    "null",
    "true",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "\"",
    "\\",
    "\\u00",
    "\\ud800",
    "\n",
    "\r\n",
    " ",
    "\u{0}",
    "\u{FEFF}",
];

const CONLL_PIECES: &[&str] = &[
    "-DOCSTART- -X- -X- O\n",
    "EU NNP B-NP B-ORG\n",
    "rejects VBZ B-VP O\n",
    "German JJ B-NP B-MISC\n",
    "Kerry NNP I-NP I-PER\n",
    "x\n",
    "a b\n",
    "a b c d e f\n",
    "\n",
    "\r\n",
    " ",
    "\t",
    "B-",
    "I-",
    "E-PER",
    "O",
    "\u{0}",
];

fn strung(pieces: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(pieces), 0..80).prop_map(|v| v.concat())
}

/// Text: strung pieces, arbitrary Unicode, or arbitrary bytes decoded lossily.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => strung(TEXT_PIECES),
        2 => any::<String>(),
        1 => prop::collection::vec(any::<u8>(), 0..600)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        1 => "[a-zA-Z.,;:!?'\"-]{0,3000}",
    ]
}

fn any_bytes(pieces: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => strung(pieces).prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..600),
        // Valid pieces with single bytes flipped.
        2 => (strung(pieces), prop::collection::vec((any::<usize>(), any::<u8>()), 1..4))
            .prop_map(|(s, flips)| {
                let mut b = s.into_bytes();
                if !b.is_empty() {
                    let n = b.len();
                    for (i, v) in flips {
                        b[i % n] = v;
                    }
                }
                b
            }),
    ]
}

fn check_segment(text: &str) -> Result<(), TestCaseError> {
    let mut last = 0;
    for s in stance::segment::segment(text) {
        prop_assert!(s.span.start >= last && s.span.start < s.span.end && s.span.end <= text.len());
        prop_assert!(text.is_char_boundary(s.span.start) && text.is_char_boundary(s.span.end));
        last = s.span.end;
    }
    Ok(())
}

fn check_rules(pipeline: &Pipeline, text: &str) -> Result<(), TestCaseError> {
    let doc = pipeline
        .analyze("fuzz", text)
        .map_err(|e| TestCaseError::fail(format!("the rules failed: {e}")))?;
    let map = CharMap::new(text);
    let slice = |start: usize, end: usize| -> Result<String, TestCaseError> {
        prop_assert!(start <= end && end <= map.char_len());
        let b = map.to_bytes(stance::span::CharSpan { start, end });
        Ok(text[b.start..b.end].to_string())
    };
    for e in &doc.entities {
        prop_assert_eq!(&slice(e.start, e.end)?, &e.text);
    }
    for s in &doc.statements {
        prop_assert_eq!(&slice(s.actor.start, s.actor.end)?, &s.actor.text);
        if let Some(c) = &s.cue {
            prop_assert_eq!(&slice(c.start, c.end)?, &c.text);
        }
    }
    Ok(())
}

fn check_jsonl(bytes: &[u8]) -> Result<(), TestCaseError> {
    let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
    for lossy in [false, true] {
        let reader = Box::new(Cursor::new(bytes.to_vec()));
        for r in input::jsonl_records(reader, PathBuf::from("fuzz.jsonl"), lossy) {
            if let Err(stance::StanceError::BadRecord { line, .. }) = r {
                prop_assert!(line >= 1 && line <= lines, "line {line} of {lines}");
            }
        }
    }
    Ok(())
}

fn check_conll(bytes: &[u8]) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(bytes);
    if let Ok(docs) = stance::conll::parse(&text, Path::new("fuzz.conll")) {
        for d in docs {
            let _ = d.text();
        }
    }
    Ok(())
}

/// A run's failure as text: the reason and the shrunk input.
fn outcome<T: std::fmt::Debug>(result: Result<(), TestError<T>>) -> Result<(), String> {
    match result {
        Ok(()) => Ok(()),
        Err(TestError::Fail(why, input)) => Err(format!("{why}\ninput: {input:?}")),
        Err(TestError::Abort(why)) => Err(format!("aborted: {why}")),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (target, seconds) = match args.as_slice() {
        [t, s] => (t.clone(), s.parse::<u64>().unwrap_or(60)),
        [t] => (t.clone(), 60),
        _ => {
            eprintln!("usage: fuzz segment|rules|jsonl|conll [SECONDS]");
            std::process::exit(2);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let pipeline = Pipeline::rules();
    let mut executions: u64 = 0;
    let mut round: u64 = 0;
    while Instant::now() < deadline {
        round += 1;
        // Fresh seeds each round; shrinking stays on.
        let mut runner = TestRunner::new(Config {
            cases: 2_000,
            failure_persistence: None,
            rng_seed: proptest::test_runner::RngSeed::Fixed(round),
            ..Config::default()
        });
        let result = match target.as_str() {
            "segment" => outcome(runner.run(&any_text(), |t| check_segment(&t))),
            "rules" => outcome(runner.run(&any_text(), |t| check_rules(&pipeline, &t))),
            "jsonl" => outcome(runner.run(&any_bytes(JSON_PIECES), |b| check_jsonl(&b))),
            "conll" => outcome(runner.run(&any_bytes(CONLL_PIECES), |b| check_conll(&b))),
            other => {
                eprintln!("unknown target {other:?}: segment, rules, jsonl or conll");
                std::process::exit(2);
            }
        };
        match result {
            Ok(()) => executions += 2_000,
            Err(failure) => {
                println!(
                    "{target}: FAILED after {executions} executions (round {round}): {failure}"
                );
                std::process::exit(1);
            }
        }
    }
    println!("{target}: {executions} executions in {seconds} s ({round} rounds), no failure");
}
