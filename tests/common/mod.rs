//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod tiny;

use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;

pub fn stance() -> Command {
    Command::cargo_bin("stance").expect("the stance binary builds")
}

pub fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// `../shared` beside the repository, or None with a printed reason (tests skip).
pub fn shared(rel: &str) -> Option<PathBuf> {
    let p = repo("../shared").join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} is absent (the shared data lives beside the repository)",
            p.display()
        );
        None
    }
}

pub fn json_of(output: &[u8]) -> Value {
    serde_json::from_slice(output)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(output)))
}

/// Characters `[start, end)` of `text`.
pub fn chars(text: &str, start: u64, end: u64) -> String {
    text.chars()
        .skip(start as usize)
        .take((end - start) as usize)
        .collect()
}
