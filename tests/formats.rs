//! The output formats beside JSON (HTML, CoNLL, TSV) and reading a directory,
//! each through the real binary.

mod common;

#[path = "../examples/gold_conll.rs"]
#[allow(dead_code)]
mod gold_conll;

use common::*;
use serde_json::Value;

const HOSTILE: &str = "Paris accused Rome of fraud <script>document.title='pwned'</script> and \
<img src=x onerror=\"document.body.dataset.pwned=1\"> & more \u{1b}[31m.\n\nBerlin proposed talks.";

fn classify(format: &str, input: &str) -> std::process::Output {
    let out = succeed(
        stance()
            .args(["classify", "--backend", "rules", "--format", format])
            .write_stdin(input),
    );
    out
}

fn json(input: &str) -> Value {
    json_of(&classify("json", input).stdout)
}

#[test]
fn html_is_one_escaped_self_contained_page() {
    let page = String::from_utf8(classify("html", HOSTILE).stdout).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.trim_end().ends_with("</html>"));
    // Self-contained and inert: no script, no external asset, nothing from the input as markup.
    for needle in ["<script", "<img", "<link", "href=", "onerror=\"", "url("] {
        assert!(!page.contains(needle), "{needle} in the page");
    }
    assert_eq!(
        page.matches("src=").count(),
        page.matches("&lt;img src=").count()
    );
    assert!(page.contains("&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;"));
    assert!(page.contains("onerror=&quot;document.body.dataset.pwned=1&quot;&gt;"));
    assert!(!page.contains('\u{1b}') && page.contains("\\u{1b}[31m"));
    // The backend at the top, every entity marked with its type, every statement badged.
    assert!(page.contains("backend <b class=\"backend\">rules</b>"));
    let doc = json(HOSTILE);
    for e in doc["entities"].as_array().unwrap() {
        let open = format!(
            "class=\"entity ent-{}\" id=\"d1-e",
            e["label"].as_str().unwrap()
        );
        let at = format!("data-start=\"{}\" data-end=\"{}\"", e["start"], e["end"]);
        assert!(
            page.contains(&open) && page.contains(&at),
            "{e} is not marked"
        );
    }
    let statements = doc["statements"].as_array().unwrap();
    assert!(!statements.is_empty());
    for (i, s) in statements.iter().enumerate() {
        let badge = format!(
            "<span class=\"badge {}\" data-statement=\"{}\">",
            s["label"].as_str().unwrap(),
            i + 1
        );
        assert!(page.contains(&badge), "statement {i} has no badge");
    }
    assert!(page.contains("<td class=\"n made-accusation\">1</td>"));
}

#[test]
fn html_of_several_documents_is_one_page_with_a_section_each() {
    let dir = tempfile::tempdir().unwrap();
    let out = stance()
        .args(["classify", "--backend", "rules", "--format", "html"])
        .arg(repo("data/samples/steel_duties.txt"))
        .arg(repo("data/samples/tanker_standoff.txt"))
        .arg("-o")
        .arg(dir.path().join("page.html"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let page = std::fs::read_to_string(dir.path().join("page.html")).unwrap();
    assert_eq!(page.matches("<!DOCTYPE html>").count(), 1);
    assert_eq!(page.matches("<section class=\"doc\"").count(), 2);
    assert!(page.contains("id=\"doc-2\""));
    assert!(page.contains("steel_duties.txt") && page.contains("tanker_standoff.txt"));
}

#[test]
fn conll_is_a_token_and_its_iob2_tag_a_line_and_reads_back() {
    let text =
        "John Kerry warned Russia on Monday.\nThe United Nations proposed talks in New York.";
    let out = String::from_utf8(classify("conll", text).stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "-DOCSTART- O");
    assert!(
        lines.contains(&"John B-PER") && lines.contains(&"Kerry I-PER"),
        "{out}"
    );
    assert!(lines.contains(&"York I-LOC"), "{out}");
    for l in lines.iter().filter(|l| !l.is_empty()) {
        let cols: Vec<&str> = l.split(' ').collect();
        assert_eq!(cols.len(), 2, "{l:?}");
        assert!(cols[1] == "O" || cols[1].starts_with("B-") || cols[1].starts_with("I-"));
    }
    // Sentences end in a blank line; the file is CoNLL that `eval ner` reads, and the
    // rules score their own output perfectly.
    assert_eq!(out.matches("\n\n").count(), 3, "{out:?}");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("out.conll");
    std::fs::write(&f, &out).unwrap();
    let report = stance()
        .args([
            "eval",
            "ner",
            "--backend",
            "rules",
            "--format",
            "json",
            "--data",
        ])
        .arg(&f)
        .output()
        .unwrap();
    let report = json_of(&report.stdout);
    assert_eq!(report["micro"]["f1"], 1.0, "{report:#}");
}

#[test]
fn tsv_is_a_header_and_one_statement_a_row() {
    let out = String::from_utf8(classify("tsv", HOSTILE).stdout).unwrap();
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows[0][..3], ["doc_id", "statement", "label"]);
    let doc = json(HOSTILE);
    let statements = doc["statements"].as_array().unwrap();
    assert_eq!(rows.len(), 1 + statements.len());
    assert!(rows.iter().all(|r| r.len() == rows[0].len()));
    for (row, s) in rows[1..].iter().zip(statements) {
        assert_eq!(row[2], s["label"].as_str().unwrap());
        assert_eq!(row[6], s["actor"]["text"].as_str().unwrap());
        let target = s["target"]["text"].as_str().unwrap_or("");
        assert_eq!(row[11], target, "a null target is an empty cell");
    }
    // No input gives the header alone.
    let empty = String::from_utf8(classify("tsv", "").stdout).unwrap();
    assert_eq!(empty.lines().count(), 1);
}

#[test]
fn a_directory_gives_its_txt_and_jsonl_files_in_path_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("b")).unwrap();
    std::fs::write(d.join("b/one.txt"), "Paris accused Rome of fraud.").unwrap();
    std::fs::write(d.join("a.txt"), "Berlin proposed talks with Warsaw.").unwrap();
    std::fs::write(
        d.join("c.jsonl"),
        "{\"id\": \"c1\", \"text\": \"Oslo threatened Bern.\"}\n{\"id\": \"c2\", \"text\": \"\"}\n",
    )
    .unwrap();
    std::fs::write(d.join("notes.md"), "not an article").unwrap();
    let out = succeed(
        stance()
            .args(["classify", "--backend", "rules", "--format", "json"])
            .arg(d),
    );
    let docs = json_of(&out.stdout);
    let ids: Vec<String> = docs
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    let name = |f: &str| d.join(f).display().to_string();
    assert_eq!(
        ids,
        vec![name("a.txt"), name("b/one.txt"), "c1".into(), "c2".into()]
    );
}

#[test]
fn the_shipped_conll_sample_is_the_samples_gold_and_eval_ner_reads_it() {
    let shipped = repo("data/conll/samples.conll");
    let gold = std::fs::read_to_string(repo("data/samples/gold.jsonl")).unwrap();
    let written = gold_conll::convert(&gold).unwrap();
    assert!(
        std::fs::read_to_string(&shipped).unwrap() == written,
        "data/conll/samples.conll is stale: cargo run --release --example gold_conll -- \
data/samples/gold.jsonl > data/conll/samples.conll"
    );
    let out = stance()
        .args([
            "eval",
            "ner",
            "--backend",
            "rules",
            "--format",
            "json",
            "--data",
        ])
        .arg(&shipped)
        .output()
        .unwrap();
    assert!(out.status.success());
    let report = json_of(&out.stdout);
    assert_eq!(
        report["sentences"].as_u64().map(|n| n > 50),
        Some(true),
        "{report:#}"
    );
    assert!(report["micro"]["f1"].as_f64().unwrap() > 0.5, "{report:#}");
}

#[test]
fn bench_runs_on_the_shipped_sample_and_says_when_it_holds_fewer_sentences() {
    let out = stance()
        .args([
            "bench",
            "--sentences",
            "100000",
            "--threads",
            "1",
            "--batch-sizes",
            "8",
        ])
        .args(["--parallelism", "workers", "--format", "json", "--data"])
        .arg(repo("data/conll/samples.conll"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("fewer than --sentences 100000"), "{err}");
    let rows = json_of(&out.stdout);
    let row = &rows[0];
    assert!(row["wordpieces_per_second"].as_f64().unwrap() > 0.0);
    // Tokens as the encoder reads them: word pieces plus [CLS] and [SEP] per sentence.
    let (pieces, sentences) = (
        row["wordpieces"].as_u64().unwrap(),
        row["sentences"].as_u64().unwrap(),
    );
    assert_eq!(row["tokens"].as_u64().unwrap(), pieces + 2 * sentences);
    assert!(
        row["tokens_per_second"].as_f64().unwrap() > row["wordpieces_per_second"].as_f64().unwrap()
    );
    assert!(
        row["forward_tokens_per_second"].as_f64().unwrap()
            >= row["tokens_per_second"].as_f64().unwrap()
    );
    assert!(row["load_seconds"].as_f64().unwrap() > 0.0);
    let (p50, p95) = (
        row["batch_latency_ms_p50"].as_f64().unwrap(),
        row["batch_latency_ms_p95"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p95 >= p50, "{row}");
    if cfg!(target_os = "linux") {
        assert!(row["peak_rss_mb"].as_f64().unwrap() > 10.0, "{row}");
    }
}

#[test]
fn bench_times_the_whole_classify_path_per_stage() {
    let corpus = repo("data/heldout/gold.jsonl");
    let documents = std::fs::read_to_string(&corpus).unwrap().lines().count() as u64;
    let out = succeed(
        stance()
            .args([
                "bench",
                "--threads",
                "1",
                "--batch-sizes",
                "8",
                "--format",
                "json",
            ])
            .arg("--pipeline")
            .arg(&corpus),
    );
    let report = json_of(&out.stdout);
    assert_eq!(report["documents"].as_u64().unwrap(), documents);
    assert!(report["words_per_second"].as_f64().unwrap() > 0.0);
    let seconds = report["seconds"].as_f64().unwrap();
    let stages: f64 = [
        "segment", "tokenize", "entities", "actors", "stance", "output",
    ]
    .iter()
    .map(|s| report["stages"][s].as_f64().unwrap())
    .sum();
    assert!(stages > 0.0 && stages <= seconds, "{report}");
    if report["backend"] != "rules" {
        let tokenize = report["stages"]["tokenize"].as_f64().unwrap();
        assert!(
            tokenize > 0.0,
            "the entity model's word pieces are timed: {report}"
        );
    }
}
