//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod tiny;

use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;

pub fn stance() -> Command {
    Command::cargo_bin("stance").expect("the stance binary builds")
}

/// Runs `cmd` and returns its output, failing the test with its stderr unless it succeeded.
pub fn succeed(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("the stance binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A file of `../shared` (the shared data beside the repository). Tests that
/// call this are marked `#[cfg_attr(no_shared, ignore = ...)]`, so that without
/// `../shared` they show as ignored with the reason (see build.rs); with it, a
/// missing file is a failure, not a silent pass.
pub fn shared(rel: &str) -> PathBuf {
    let p = repo("../shared").join(rel);
    assert!(
        p.exists(),
        "{} is missing from ../shared (or ../shared appeared after the last build: touch build.rs)",
        p.display()
    );
    p
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
