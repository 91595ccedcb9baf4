//! The command line on good and bad input, run as a user would.

mod common;

use std::io::{Read, Write};
use std::process::{Command as StdCommand, Stdio};

use common::*;
use predicates::prelude::*;
use serde_json::Value;

const ARTICLE: &str = "Canada Threatens Tariffs on Steel\n\nOttawa threatened on Tuesday to impose duties on Korean steel unless Seoul curbs exports, the ministry said.\n";

#[test]
fn stdin_text_gives_one_json_object() {
    let out = stance()
        .args(["classify", "--backend", "rules", "--format", "json"])
        .write_stdin(ARTICLE)
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc = json_of(&out.stdout);
    assert_eq!(doc["id"], "<stdin>");
    assert_eq!(doc["backend"], "rules");
    let statements = doc["statements"].as_array().unwrap();
    // The headline and the body sentence both carry the threat.
    assert_eq!(statements.len(), 2, "{statements:?}");
    assert_eq!(statements[0]["actor"]["text"], "Canada");
    let st = &statements[1];
    assert_eq!(st["label"], "threat");
    assert_eq!(st["actor"]["text"], "Ottawa");
    assert_eq!(st["target"]["text"], "Korean");
    let actor = doc["actors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == st["actor"]["actor_id"])
        .unwrap();
    assert_eq!(actor["name"], "Canada");
}

#[test]
fn empty_input_is_a_valid_empty_result() {
    let out = stance()
        .args(["classify", "--format", "json"])
        .write_stdin("")
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc = json_of(&out.stdout);
    assert_eq!(doc["entities"], Value::Array(vec![]));
    assert_eq!(doc["statements"], Value::Array(vec![]));
    assert_eq!(doc["chars"], 0);
}

#[test]
fn several_files_give_an_array_and_jsonl_streams_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.txt");
    let b = dir.path().join("b.txt");
    std::fs::write(&a, "Paris accused Rome of fraud.").unwrap();
    std::fs::write(&b, "Berlin proposed talks with Warsaw.").unwrap();
    let out = stance()
        .args(["classify", "--backend", "rules", "--format", "json"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    let docs = json_of(&out.stdout);
    assert_eq!(docs.as_array().unwrap().len(), 2);
    assert_eq!(docs[1]["statements"][0]["label"], "proposal");

    let jsonl = dir.path().join("in.jsonl");
    std::fs::write(&jsonl, "{\"id\": \"x\", \"text\": \"Paris accused Rome of fraud.\"}\n{\"id\": \"y\", \"text\": \"\"}\n").unwrap();
    let out = stance()
        .args(["classify", "--backend", "rules", "--format", "jsonl"])
        .arg(&jsonl)
        .output()
        .unwrap();
    let ids: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| json_of(l.as_bytes())["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec!["x", "y"]);
}

#[test]
fn malformed_json_line_names_file_and_line_and_keeps_what_was_done() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("in.jsonl");
    std::fs::write(&f, "{\"id\": \"ok\", \"text\": \"Paris accused Rome of fraud.\"}\n{not json\n{\"id\": \"later\", \"text\": \"x\"}\n").unwrap();
    let out = stance()
        .args(["classify", "--backend", "rules", "--format", "json"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in.jsonl:2: malformed JSON"), "{err}");
    // The document before the bad line is written, as valid JSON: an array, since
    // JSON Lines input can hold several documents (one object would look complete).
    let written = json_of(&out.stdout);
    assert_eq!(written.as_array().map(Vec::len), Some(1), "{written}");
    assert_eq!(written[0]["id"], "ok");

    let out = stance()
        .args([
            "classify",
            "--backend",
            "rules",
            "--format",
            "jsonl",
            "--skip-bad-lines",
        ])
        .arg(&f)
        .output()
        .unwrap();
    // Every good record is written; the bad one is named, and the run says it lost one.
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in.jsonl:2"), "{err}");
    assert!(
        err.contains("1 of the input's records were not analysed"),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(1), "a lost record is a failure");
}

#[test]
fn a_failed_document_keeps_its_place_with_an_error() {
    let doc = stance::Document::failed(
        "d1",
        stance::Backend::Rules,
        "Zürich said.",
        "model: out of memory".into(),
    );
    let v = serde_json::to_value(&doc).unwrap();
    assert_eq!(v["error"], "model: out of memory");
    assert_eq!(v["chars"], 12);
    assert_eq!(v["statements"], serde_json::json!([]));
    // Analysed documents carry no `error` field at all.
    let out = stance()
        .args(["classify", "--backend", "rules", "--format", "json"])
        .write_stdin("Paris accused Rome of fraud.")
        .output()
        .unwrap();
    assert!(json_of(&out.stdout).get("error").is_none());
}

#[test]
fn invalid_utf8_is_an_error_naming_the_file_unless_lossy() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("latin1.txt");
    std::fs::write(&f, b"Paris accused Rome.\nCaf\xe9 owners protested.\n").unwrap();
    stance()
        .args(["classify"])
        .arg(&f)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("latin1.txt:2: invalid UTF-8"));
    let out = stance()
        .args([
            "classify",
            "--backend",
            "rules",
            "--lossy",
            "--format",
            "json",
        ])
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning"));
    assert_eq!(
        json_of(&out.stdout)["statements"][0]["actor"]["text"],
        "Paris"
    );
}

#[test]
fn directories_and_missing_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    stance()
        .arg("classify")
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "no .txt or .jsonl files below this directory",
        ));
    stance()
        .arg("classify")
        .arg(dir.path().join("missing.txt"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("missing.txt"));
}

#[test]
fn usage_errors_exit_2_and_help_teaches() {
    stance()
        .args(["classify", "--no-such-flag"])
        .assert()
        .code(2);
    stance()
        .args(["classify", "--format", "yaml"])
        .assert()
        .code(2);
    stance()
        .args(["classify", "--help"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("Examples").and(predicate::str::contains("--skip-bad-lines")),
        );
    stance()
        .args(["eval", "stance", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Example"));
}

#[test]
fn model_backend_says_no_model_is_available() {
    let empty = tempfile::tempdir().unwrap();
    stance()
        .env("STANCE_MODELS", empty.path())
        .args(["classify", "--backend", "model"])
        .write_stdin("Paris accused Rome.")
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("no default model is installed")
                .and(predicate::str::contains("--model")),
        );
}

#[test]
fn a_model_the_user_names_must_load_under_every_backend() {
    let empty = tempfile::tempdir().unwrap();
    let missing = empty.path().join("misspelled");
    // auto falls back only when no default is installed, with one warning ...
    let out = stance()
        .env("STANCE_MODELS", empty.path())
        .args(["classify", "--format", "json"])
        .write_stdin("Paris accused Rome.")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("warning").count(), 1, "{err}");
    // ... never when the user named a model that does not load.
    for backend in ["auto", "model", "rules"] {
        for flag in ["--model", "--stance-model"] {
            let out = stance()
                .env("STANCE_MODELS", empty.path())
                .args(["classify", "--backend", backend, flag])
                .arg(&missing)
                .write_stdin("Paris accused Rome.")
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(1), "{backend} {flag}");
            assert!(
                out.stdout.is_empty(),
                "{backend} {flag}: nothing is written"
            );
        }
    }
}

#[test]
fn option_values_out_of_range_are_refused() {
    for bad in [
        &["--batch-size", "0"][..],
        &["--threads", "0"],
        &["--context", "2"],
    ] {
        stance()
            .args(["classify", "--backend", "rules"])
            .args(bad)
            .write_stdin("Paris accused Rome.")
            .assert()
            .code(2)
            .stderr(predicate::str::contains(bad[0]));
    }
    // models/ner ships with the repository.
    stance()
        .args(["classify", "--backend", "model", "--context", "100000"])
        .write_stdin("Paris accused Rome.")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("longer than this model reads"));
}

#[test]
fn table_output_shows_statements_with_their_sentence() {
    stance()
        .args(["classify", "--backend", "rules"])
        .write_stdin(ARTICLE)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("threat")
                .and(predicate::str::contains(
                    "Canada (Ottawa) → South Korea (Korean)",
                ))
                .and(predicate::str::contains("[threatened]"))
                .and(predicate::str::contains("unless Seoul")),
        );
}

#[test]
fn closed_pipe_ends_quietly() {
    let bin = assert_cmd::cargo::cargo_bin("stance");
    let mut child = StdCommand::new(bin)
        .args(["classify", "--format", "jsonl", "--input", "jsonl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..5000 {
            let line =
                format!("{{\"id\": {i}, \"text\": \"Paris accused Rome of fraud on day {i}.\"}}\n");
            if stdin.write_all(line.as_bytes()).is_err() {
                break;
            }
        }
    });
    let mut first = [0u8; 64];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    writer.join().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "exit {status:?}, stderr: {err}");
    assert!(!err.contains("panicked") && !err.contains("error"), "{err}");
}

#[test]
fn errors_say_their_cause_once_and_gold_needs_labels() {
    let dir = tempfile::tempdir().unwrap();
    let out = stance()
        .arg("classify")
        .arg(dir.path().join("missing.txt"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    let gold = dir.path().join("gold.jsonl");
    std::fs::write(
        &gold,
        "{\"id\": \"a\", \"text\": \"Paris accused Rome.\"}\n",
    )
    .unwrap();
    stance()
        .args(["eval", "stance", "--backend", "rules", "--data"])
        .arg(&gold)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("gold.jsonl:1").and(predicate::str::contains("stances")));
}

#[test]
fn models_average_writes_the_mean_and_refuses_a_single_model() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<std::path::PathBuf> = [1.0f32, 3.0]
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let dir = tmp.path().join(format!("run{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let w = candle_core::Tensor::new(&[x, 2.0 * x], &candle_core::Device::Cpu).unwrap();
            candle_core::safetensors::save(
                &std::collections::HashMap::from([("w".to_string(), w)]),
                dir.join("model.safetensors"),
            )
            .unwrap();
            std::fs::write(dir.join("config.json"), format!("{{\"run\": {i}}}")).unwrap();
            dir
        })
        .collect();
    let out = tmp.path().join("mean");
    stance()
        .args(["models", "average", "--out"])
        .arg(&out)
        .args(&dirs)
        .assert()
        .success()
        .stderr(predicate::str::contains("the mean of 2 models"));
    let mean =
        candle_core::safetensors::load(out.join("model.safetensors"), &candle_core::Device::Cpu)
            .unwrap();
    assert_eq!(mean["w"].to_vec1::<f32>().unwrap(), vec![2.0, 4.0]);
    assert_eq!(
        std::fs::read_to_string(out.join("config.json")).unwrap(),
        "{\"run\": 0}"
    );
    stance()
        .args(["models", "average", "--out"])
        .arg(&out)
        .arg(&dirs[0])
        .assert()
        .code(2);
}
