//! The command line in a terminal and in a pipe: the table's width and colour,
//! the progress bar kept out of the output, `--quiet`, `-v`, completions and
//! `--version`.
//!
//! A terminal is a pseudo-terminal made by util-linux `script`; what the binary
//! writes to it is rendered by a terminal emulator (`vt100`) and the screen is
//! checked, as a user would see it.

mod common;

use std::path::Path;
use std::process::{Command as StdCommand, Stdio};

use common::*;

const ARTICLES: [(&str, &str); 3] = [
    (
        "a.txt",
        "Paris accused Rome of fraud on Monday.\n\nBerlin proposed talks with Warsaw.",
    ),
    (
        "b.txt",
        "The Democratic Republic of São Tomé and Príncipe threatened to impose sanctions on the \
Kingdom of the Netherlands 🇳🇱 and on 北京 unless the talks resumed, the ministry of foreign affairs said.",
    ),
    ("c.txt", "Oslo warned Bern that it would suspend the treaty."),
];

fn articles(dir: &Path) -> Vec<String> {
    ARTICLES
        .iter()
        .map(|(name, text)| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        })
        .collect()
}

/// What a terminal of `cols` columns receives from `stance ARGS` (stdout and stderr both).
fn on_terminal(args: &[String], cols: u16, env: &[(&str, &str)]) -> Vec<u8> {
    let bin = assert_cmd::cargo::cargo_bin("stance");
    let quoted: Vec<String> = std::iter::once(bin.display().to_string())
        .chain(args.iter().cloned())
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let script = format!("stty cols {cols} rows 500; exec {}", quoted.join(" "));
    let mut cmd = StdCommand::new("script");
    cmd.args(["-qec", &script, "/dev/null"])
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("COLUMNS")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("util-linux script runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    out.stdout
}

fn screen(raw: &[u8], cols: u16) -> vt100::Parser {
    let mut p = vt100::Parser::new(500, cols, 0);
    p.process(raw);
    p
}

fn rows(p: &vt100::Parser, cols: u16) -> Vec<String> {
    let mut rows: Vec<String> = p.screen().rows(0, cols).collect();
    while rows.last().is_some_and(|r| r.trim().is_empty()) {
        rows.pop();
    }
    rows
}

fn rules_args(files: &[String], extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["classify", "--backend", "rules"]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
    args.extend(files.iter().cloned());
    args
}

#[test]
#[cfg_attr(
    no_pty,
    ignore = "needs util-linux `script` for a pseudo-terminal (then touch build.rs)"
)]
fn on_a_terminal_the_table_fits_is_coloured_and_the_bar_stays_out_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let files = articles(dir.path());
    let cols = 60;
    let raw = on_terminal(&rules_args(&files, &[]), cols, &[]);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("documents ("), "the bar was drawn: {text:?}");
    let term = screen(&raw, cols);
    let rows = rows(&term, cols);
    let shown = rows.join("\n");
    assert!(
        !shown.contains("documents ("),
        "bar left on screen:\n{shown}"
    );
    // Each document starts after one blank line, no leftovers between them.
    let headers: Vec<usize> = (0..rows.len())
        .filter(|&r| rows[r].starts_with("== "))
        .collect();
    assert_eq!(headers.len(), 3, "{shown}");
    for &h in &headers[1..] {
        assert!(rows[h - 1].is_empty(), "{shown}");
        assert!(!rows[h - 2].is_empty(), "{shown}");
    }
    // Nothing ran over the width (the terminal would have wrapped it).
    for r in 0..rows.len() as u16 {
        assert!(!term.screen().row_wrapped(r), "row {r} wrapped:\n{shown}");
    }
    // Names are whole, wide characters included.
    assert!(shown.contains("Kingdom of the Netherlands"), "{shown}");
    assert!(shown.contains("北京"), "{shown}");
    // Labels are in colour: "threat" in red.
    let (r, line) = rows
        .iter()
        .enumerate()
        .find(|(_, l)| l.contains(" threat "))
        .expect("a threat");
    let col = line.find("threat").unwrap() as u16;
    let cell = term.screen().cell(r as u16, col).unwrap();
    assert_eq!(cell.fgcolor(), vt100::Color::Idx(1), "{shown}");
}

#[test]
#[cfg_attr(
    no_pty,
    ignore = "needs util-linux `script` for a pseudo-terminal (then touch build.rs)"
)]
fn no_color_and_quiet_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let files = articles(dir.path());
    let raw = on_terminal(&rules_args(&files, &["--quiet"]), 80, &[("NO_COLOR", "1")]);
    let text = String::from_utf8_lossy(&raw);
    assert!(!text.contains("documents ("), "--quiet hides the bar");
    assert!(
        !text.contains("\u{1b}[3"),
        "no colour with NO_COLOR: {text:?}"
    );
    assert!(text.contains("threat"), "{text}");
    // --color never does the same without NO_COLOR; always colours even a pipe.
    let raw = on_terminal(&rules_args(&files, &["-q", "--color", "never"]), 80, &[]);
    assert!(!String::from_utf8_lossy(&raw).contains("\u{1b}[3"));
    let piped = stance()
        .args(rules_args(&files, &["--color", "always"]))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&piped.stdout).contains("\u{1b}[3"));
}

#[test]
fn in_a_pipe_the_table_is_plain_fits_columns_and_escapes_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = articles(dir.path());
    let hostile = dir.path().join("hostile.txt");
    std::fs::write(
        &hostile,
        "Paris\u{0} accused Rome\u{1b}[2J\u{1b}]0;owned\u{7} of fraud.\u{202e}",
    )
    .unwrap();
    files.push(hostile.display().to_string());
    for (columns, limit) in [(None, 100), (Some("50"), 50)] {
        let mut cmd = stance();
        cmd.args(rules_args(&files, &[]));
        cmd.env_remove("COLUMNS");
        if let Some(c) = columns {
            cmd.env("COLUMNS", c);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        for raw in ['\u{0}', '\u{1b}', '\u{7}', '\u{202e}'] {
            assert!(!text.contains(raw), "{raw:?} written raw");
        }
        assert!(
            text.contains("Rome\\u{1b}[2J\\u{1b}]0;owned\\u{7}"),
            "{text}"
        );
        for line in text.lines() {
            let w = unicode_width(line);
            assert!(w <= limit, "{w} > {limit}: {line}");
        }
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Display width as a terminal counts it (the same crate the table uses).
fn unicode_width(s: &str) -> usize {
    stance::output::text::width(s)
}

#[test]
fn verbose_logs_loading_the_backend_and_fallbacks() {
    let out = stance()
        .args(["-v", "classify", "--format", "json"])
        .write_stdin("Paris accused Rome.")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("entity model") && err.contains("loaded in"),
        "{err}"
    );
    assert!(err.contains("backend hybrid ready in"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let out = stance()
        .env("STANCE_MODELS", empty.path())
        .args(["classify", "-vv", "--format", "json"])
        .write_stdin("Paris accused Rome.")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fallback: using the rules backend"), "{err}");
    assert!(err.contains("<stdin>: 19 chars, 1 statements"), "{err}");
    // Without -v, only the warning.
    let out = stance()
        .env("STANCE_MODELS", empty.path())
        .args(["classify", "--format", "json"])
        .write_stdin("Paris accused Rome.")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = stance().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(
            script.contains("classify") && script.contains("format"),
            "{shell}"
        );
    }
    let out = stance().args(["completions", "bash"]).output().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("stance.bash");
    std::fs::write(&f, &out.stdout).unwrap();
    let check = StdCommand::new("bash").arg("-n").arg(&f).output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    stance().args(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn version_names_the_default_models_and_models_explains_its_star() {
    let out = stance().arg("--version").output().unwrap();
    let v = String::from_utf8(out.stdout).unwrap();
    assert!(
        v.starts_with(&format!("stance {}", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    assert!(
        v.contains("default entity model: ") && v.contains("ner"),
        "{v}"
    );
    assert!(v.contains("default stance model: "), "{v}");
    let empty = tempfile::tempdir().unwrap();
    let out = stance()
        .env("STANCE_MODELS", empty.path())
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("none installed"));
    let out = stance().arg("models").output().unwrap();
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(listing.contains("* marks the defaults"), "{listing}");
}
