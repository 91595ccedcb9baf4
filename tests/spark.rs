//! `scripts/spark_classify.py` in Spark local mode against a direct run of the same binary: every
//! record comes back exactly once, in input order, each document byte-identical to the direct run's,
//! bad lines as documents with an `error` field, and a crashed partition is retried by Spark
//! without duplicates.
//!
//! PySpark comes from PyPI into `target/spark-venv` (made once by `scripts/spark_env.sh`, about
//! 40 s and 370 MB), Java from the machine. Without either the tests print `SKIPPED: <reason>`.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use common::repo;
use serde_json::{json, Value};

const STANCE: &str = env!("CARGO_BIN_EXE_stance");

/// One Spark at a time: two JVMs on two cores only slow each other down.
static SPARK: Mutex<()> = Mutex::new(());

/// The virtual environment's python, or the reason Spark cannot run here.
fn spark_python() -> Result<PathBuf, String> {
    static PY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PY.get_or_init(|| {
        match Command::new("java").arg("-version").output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return Err(format!(
                    "java -version failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                ))
            }
            Err(e) => {
                return Err(format!(
                    "no Java on PATH ({e}); Spark needs Java 8, 11 or 17"
                ))
            }
        }
        let start = std::time::Instant::now();
        let venv = repo("target/spark-venv");
        let out = Command::new("bash")
            .arg(repo("scripts/spark_env.sh"))
            .arg(&venv)
            .output()
            .map_err(|e| format!("cannot run scripts/spark_env.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "PySpark could not be installed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        eprintln!(
            "spark environment ready in {:.1} s: {}",
            start.elapsed().as_secs_f64(),
            venv.display()
        );
        Ok(venv.join("bin/python"))
    })
    .clone()
}

/// What a line of the corpus should come back as.
#[derive(Debug, Clone)]
enum Expect {
    /// A record stance reads: its id, and the direct run's document is the reference.
    Doc(String),
    /// A line stance would skip: comes back once with this id and an `error` field.
    Bad(String),
}

/// The corpus: the team's written articles (data/stance/written, a few hundred) and edge cases:
/// unicode, an empty text, numeric and missing ids, and lines that are not records.
fn write_corpus(path: &Path) -> Vec<Expect> {
    let src = path.display().to_string();
    let mut lines: Vec<String> = Vec::new();
    let mut expect: Vec<Option<Expect>> = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("data/stance/written"))
        .expect("data/stance/written")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    for f in files {
        for line in std::fs::read_to_string(&f).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let id = format!(
                "{}/{}",
                f.file_stem().unwrap().to_string_lossy(),
                v["id"].as_str().unwrap()
            );
            lines.push(json!({"id": id, "text": v["text"]}).to_string());
            expect.push(Some(Expect::Doc(id)));
        }
    }
    assert!(
        expect.len() >= 200,
        "a few hundred written articles expected"
    );
    // Edge cases, spread through the corpus so that they land in different partitions.
    enum Edge {
        Doc(&'static str),
        DocWithoutId,
        Bad(&'static str),
        BadWithoutId,
        Blank,
    }
    let edge = [
        (json!({"id": "unicode", "text": "Zürich accused São Paulo of dumping 🍊 juice.\r\nBERLIN — Germany threatened to block the deal."}).to_string(), Edge::Doc("unicode")),
        (json!({"id": "empty", "text": ""}).to_string(), Edge::Doc("empty")),
        (json!({"id": 4711, "text": "Paris proposed talks with Rome."}).to_string(), Edge::Doc("4711")),
        (json!({"text": "Seoul accused Tokyo of stalling, the ministry said."}).to_string(), Edge::DocWithoutId),
        ("this is not JSON".into(), Edge::BadWithoutId),
        (r#"{"id": "no-text"}"#.into(), Edge::Bad("no-text")),
        (r#"{"id": "text-not-string", "text": 42}"#.into(), Edge::Bad("text-not-string")),
        ("[1, 2, 3]".into(), Edge::BadWithoutId),
        (r#"{"id": ["a"], "text": "x"}"#.into(), Edge::BadWithoutId),
        (r#"{"id": "truncated", "text": "Ottawa thr"#.into(), Edge::BadWithoutId),
        (r#"{"id": "nan", "text": "x", "n": NaN}"#.into(), Edge::BadWithoutId),
        (r#"{"id": "surrogate", "text": "\ud800"}"#.into(), Edge::Bad("surrogate")),
        ("   ".into(), Edge::Blank),
    ];
    let step = lines.len() / edge.len();
    for (k, (line, e)) in edge.into_iter().enumerate() {
        let pos = k * (step + 1) + 1; // later inserts go after this one: its place is final
                                      // Records without a usable id are named INPUT:LINE (1-based), as stance names them.
        let at = || format!("{src}:{}", pos + 1);
        let e = match e {
            Edge::Doc(id) => Some(Expect::Doc(id.into())),
            Edge::DocWithoutId => Some(Expect::Doc(at())),
            Edge::Bad(id) => Some(Expect::Bad(id.into())),
            Edge::BadWithoutId => Some(Expect::Bad(at())),
            Edge::Blank => None, // not a record
        };
        lines.insert(pos, line);
        expect.insert(pos, e);
    }
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
    expect.into_iter().flatten().collect()
}

/// The direct run: id -> its document line.
fn direct_run(corpus: &Path) -> HashMap<String, String> {
    // Exit 1: the corpus's bad lines were skipped (and said so).
    direct_run_exit(corpus, 1)
}

fn direct_run_exit(corpus: &Path, code: i32) -> HashMap<String, String> {
    let out = Command::new(STANCE)
        .args([
            "classify",
            "--input",
            "jsonl",
            "--format",
            "jsonl",
            "--backend",
            "rules",
            "--skip-bad-lines",
        ])
        .arg(corpus)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut docs = HashMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        assert!(
            docs.insert(id.clone(), line.to_string()).is_none(),
            "{id} twice in the direct run"
        );
    }
    docs
}

fn spark_classify(
    python: &Path,
    stance_bin: &str,
    corpus: &Path,
    out: &Path,
    master: &str,
) -> Output {
    let start = std::time::Instant::now();
    let o = Command::new(python)
        .arg(repo("scripts/spark_classify.py"))
        .args(["--input".as_ref(), corpus.as_os_str()])
        .args(["--output".as_ref(), out.as_os_str()])
        .args([
            "--master",
            master,
            "--partitions",
            "4",
            "--",
            "--backend",
            "rules",
        ])
        .env("STANCE_BIN", stance_bin)
        .env_remove("PYSPARK_PYTHON")
        .output()
        .unwrap();
    eprintln!(
        "spark_classify.py --master {master}: {:.1} s, exit {:?}\n{}",
        start.elapsed().as_secs_f64(),
        o.status.code(),
        String::from_utf8_lossy(&o.stdout)
    );
    o
}

/// The part files' lines, in partition order.
fn read_parts(out: &Path) -> Vec<String> {
    assert!(
        out.join("_SUCCESS").exists(),
        "no _SUCCESS in {}",
        out.display()
    );
    let mut parts: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("part-")
        })
        .collect();
    parts.sort();
    assert!(parts.len() >= 2, "several partitions expected: {parts:?}");
    parts
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every record back exactly once and in input order; documents byte-identical to the direct run.
fn check_output(lines: &[String], expect: &[Expect], direct: &HashMap<String, String>) {
    assert_eq!(lines.len(), expect.len(), "one line per record");
    let mut seen = HashSet::new();
    for (line, e) in lines.iter().zip(expect) {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
        let id = v["id"].as_str().expect("a string id").to_string();
        assert!(seen.insert(id.clone()), "{id} twice");
        match e {
            Expect::Doc(want) => {
                assert_eq!(&id, want, "input order");
                assert_eq!(
                    Some(line),
                    direct.get(want),
                    "{want}: not the direct run's document"
                );
            }
            Expect::Bad(want) => {
                assert_eq!(&id, want, "input order");
                assert!(v["error"].as_str().is_some_and(|s| !s.is_empty()), "{line}");
                assert_eq!(v["statements"], json!([]));
            }
        }
    }
    let docs = expect
        .iter()
        .filter(|e| matches!(e, Expect::Doc(_)))
        .count();
    assert_eq!(docs, direct.len(), "the direct run has the same documents");
}

fn summary(o: &Output) -> Value {
    let s = String::from_utf8_lossy(&o.stdout);
    let last = s.lines().last().unwrap_or_else(|| {
        panic!(
            "no summary; stderr:\n{}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    serde_json::from_str(last).unwrap()
}

/// What each Spark test starts from: the environment's Python, the lock that keeps Spark
/// runs apart, a temporary directory and the team's corpus written into it. `None` (with the
/// reason printed) where PySpark cannot be had.
struct Case {
    python: PathBuf,
    _one: std::sync::MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    corpus: PathBuf,
    expect: Vec<Expect>,
}

fn case() -> Option<Case> {
    let python = match spark_python() {
        Ok(p) => p,
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return None;
        }
    };
    let _one = SPARK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.jsonl");
    let expect = write_corpus(&corpus);
    Some(Case {
        python,
        _one,
        dir,
        corpus,
        expect,
    })
}

#[test]
#[cfg_attr(
    no_spark_runtime,
    ignore = "needs python3 and Java (touch build.rs after installing them)"
)]
fn spark_local_matches_a_direct_run_record_for_record() {
    let Some(Case {
        python,
        _one,
        dir,
        corpus,
        expect,
    }) = case()
    else {
        return;
    };
    let direct = direct_run(&corpus);

    let out = dir.path().join("out");
    let o = spark_classify(&python, STANCE, &corpus, &out, "local[2]");
    // Exit 1: the bad lines came back as documents with an `error` field.
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let bad = expect
        .iter()
        .filter(|e| matches!(e, Expect::Bad(_)))
        .count();
    let s = summary(&o);
    assert_eq!(s["records"], expect.len());
    assert_eq!(s["documents"], expect.len());
    assert_eq!(s["errors"], bad);
    assert_eq!(s["partitions"], 4);
    check_output(&read_parts(&out), &expect, &direct);

    // An existing output directory is a usage error, not a silent overwrite.
    let again = spark_classify(&python, STANCE, &corpus, &out, "local[2]");
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
#[cfg_attr(
    no_spark_runtime,
    ignore = "needs python3 and Java (touch build.rs after installing them)"
)]
fn spark_retries_a_crashed_partition_without_duplicates() {
    let Some(Case {
        python,
        _one,
        dir,
        corpus,
        expect,
    }) = case()
    else {
        return;
    };
    let direct = direct_run(&corpus);

    // The first stance process writes five documents, then dies as if killed; later ones are the
    // real binary. local[2,4]: local mode retries a failed task only when told to.
    let mark = dir.path().join("crashed");
    let wrapper = dir.path().join("stance-crashes-once");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif mkdir '{mark}' 2>/dev/null; then\n  head -n 5 | '{STANCE}' \"$@\"\n  kill -9 $$\nfi\nexec '{STANCE}' \"$@\"\n",
            mark = mark.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();

    let out = dir.path().join("out");
    let o = spark_classify(
        &python,
        wrapper.to_str().unwrap(),
        &corpus,
        &out,
        "local[2,4]",
    );
    assert!(mark.exists(), "the wrapper never crashed");
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("stance was killed by signal 9"),
        "the crash is reported: {stderr}"
    );
    check_output(&read_parts(&out), &expect, &direct);

    // Without retries (local[2]) the same crash fails the job: exit 1, the reason said once.
    std::fs::remove_dir(&mark).unwrap();
    let out2 = dir.path().join("out2");
    let o = spark_classify(
        &python,
        wrapper.to_str().unwrap(),
        &corpus,
        &out2,
        "local[2]",
    );
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("error: the Spark job failed: StanceFailed: stance was killed by signal 9"),
        "{stderr}"
    );
    assert!(!out2.join("_SUCCESS").exists());
}

#[test]
#[cfg_attr(
    no_spark_runtime,
    ignore = "needs python3 and Java (touch build.rs after installing them)"
)]
fn spark_script_refuses_bad_options() {
    // Usage errors come before Spark starts, so the system python is enough.
    let run = |args: &[&str]| {
        Command::new("python3")
            .arg(repo("scripts/spark_classify.py"))
            .args(args)
            .output()
    };
    let Ok(help) = run(&["--help"]) else {
        return eprintln!("SKIPPED: no python3 on PATH");
    };
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("exit codes"));
    for args in [
        &["--output", "o"][..],
        &["--input", "i", "--output", "o", "--", "--format", "json"],
        &["--input", "i", "--output", "o", "--", "-o", "x"],
        &["--input", "i", "--output", "o", "--partitions", "0"],
    ] {
        let o = run(args).unwrap();
        assert_eq!(
            o.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// Runs `classify_partition` of the script on `lines` with the system python (no Spark needed):
/// Ok(the lines it yields) or Err(the exception it raised).
fn partition(python: &str, bin: &str, lines: &[&str]) -> Result<Vec<Value>, String> {
    let code = r#"
import json, sys
sys.path.insert(0, sys.argv[1])
import spark_classify as sc
cfg = {"bin": sys.argv[2], "models": None, "stance_args": ["--backend", "rules"], "source": "in.jsonl"}
rows = [(l, i) for i, l in enumerate(json.loads(sys.stdin.read()))]
try:
    print(json.dumps({"out": [json.loads(d) for d in sc.classify_partition(cfg, iter(rows))]}))
except sc.StanceFailed as e:
    print(json.dumps({"raised": str(e)}))
"#;
    let mut child = Command::new(python)
        .arg("-c")
        .arg(code)
        .arg(repo("scripts"))
        .arg(bin)
        .env("PYTHONDONTWRITEBYTECODE", "1") // no scripts/__pycache__ in the work tree
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(lines).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    match v.get("out") {
        Some(docs) => Ok(docs.as_array().unwrap().clone()),
        None => Err(v["raised"].as_str().unwrap().to_string()),
    }
}

fn script(dir: &Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[test]
#[cfg_attr(
    no_spark_runtime,
    ignore = "needs python3 and Java (touch build.rs after installing them)"
)]
fn a_partition_accounts_for_every_record_or_fails() {
    if Command::new("python3").arg("--version").output().is_err() {
        return eprintln!("SKIPPED: no python3 on PATH");
    }
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        r#"{"id": "a", "text": "Ottawa threatened to impose duties on Korean steel."}"#,
        "",
        r#"{"id": "b", "text": "Paris accused Rome of fraud."}"#,
        "not json",
        r#"{"text": "Berlin proposed talks."}"#,
        r#"{"id": "c", "text": "Madrid warned Lisbon."}"#,
    ];
    let ids = |docs: &[Value]| {
        docs.iter()
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let errors = |docs: &[Value]| docs.iter().filter(|d| d.get("error").is_some()).count();

    // The real binary: five records (the blank line is none), in order, the bad one with an error.
    let docs = partition("python3", STANCE, &lines).unwrap();
    assert_eq!(ids(&docs), ["a", "b", "in.jsonl:4", "in.jsonl:5", "c"]);
    assert_eq!(errors(&docs), 1);
    assert_eq!(docs[0]["statements"][0]["label"], "threat");

    // A record stance itself skips (here corrupted on its way in) keeps its place, with an error.
    let corrupt = script(
        dir.path(),
        "corrupt",
        &format!("sed -u '2s/^/#/' | exec '{STANCE}' \"$@\""),
    );
    let docs = partition("python3", &corrupt, &lines).unwrap();
    assert_eq!(ids(&docs), ["a", "b", "in.jsonl:4", "in.jsonl:5", "c"]);
    assert_eq!(errors(&docs), 2);
    assert!(docs[1]["error"]
        .as_str()
        .unwrap()
        .contains("stance skipped this record"));

    // Stopping early, even with exit 0 or 1, or crashing, fails the partition (Spark retries it).
    let early = script(
        dir.path(),
        "early",
        &format!("head -n 1 | '{STANCE}' \"$@\"; exit 1"),
    );
    let e = partition("python3", &early, &lines).unwrap_err();
    assert!(e.contains("stance stopped before writing 3"), "{e}");
    let early0 = script(
        dir.path(),
        "early0",
        &format!("head -n 1 | '{STANCE}' \"$@\""),
    );
    assert!(partition("python3", &early0, &lines).is_err());
    let status = script(
        dir.path(),
        "status",
        "cat >/dev/null; echo 'boom' >&2; exit 3",
    );
    let e = partition("python3", &status, &lines).unwrap_err();
    assert!(
        e.contains("stance exited with status 3") && e.contains("boom"),
        "{e}"
    );
    let e = partition("python3", "/nonexistent/stance", &lines).unwrap_err();
    assert!(e.contains("not found on executor"), "{e}");

    // An empty partition starts no process at all.
    assert_eq!(
        partition("python3", "/nonexistent/stance", &[]).unwrap(),
        Vec::<Value>::new()
    );
}

#[test]
#[cfg_attr(
    no_spark_runtime,
    ignore = "needs python3 and Java (touch build.rs after installing them)"
)]
fn spark_dataframe_map_in_pandas_matches_a_direct_run() {
    let Some(Case {
        python,
        _one,
        dir,
        corpus,
        expect,
    }) = case()
    else {
        return;
    };
    // Only records (a DataFrame has no malformed lines); two rows without id or text added below.
    let text = std::fs::read_to_string(&corpus).unwrap();
    let records: Vec<&str> = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<Value>(l)
                .is_ok_and(|v| v["id"].is_string() && v["text"].is_string())
        })
        .collect();
    let clean = dir.path().join("clean.jsonl");
    std::fs::write(&clean, records.join("\n") + "\n").unwrap();
    let direct = direct_run_exit(&clean, 0);
    assert!(direct.len() >= 200 && direct.len() < expect.len());

    let code = r#"
import json, os, sys
from pyspark.sql import SparkSession
os.environ["PYSPARK_PYTHON"] = sys.executable
spark = SparkSession.builder.master("local[2]").config("spark.ui.showConsoleProgress", "false").getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
spark.sparkContext.addPyFile(sys.argv[1])
from spark_classify import config, pandas_batches
cfg = config(sys.argv[2], ["--backend", "rules"])
df = spark.read.json(sys.argv[3]).select("id", "text").repartition(3)
df = df.union(spark.createDataFrame([(None, "Berlin proposed talks."), ("no-text", None)], "id string, text string"))
out = df.mapInPandas(lambda it: pandas_batches(cfg, it), schema="id string, doc string, error string")
for row in out.collect():
    print(json.dumps(row.asDict()))
spark.stop()
"#;
    let o = Command::new(&python)
        .arg("-c")
        .arg(code)
        .arg(repo("scripts/spark_classify.py"))
        .arg(STANCE)
        .arg(&clean)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), direct.len() + 2, "one row per input row");
    let mut seen = HashSet::new();
    let (mut no_id, mut no_text) = (0, 0);
    for r in &rows {
        let id = r["id"].as_str().unwrap();
        assert!(seen.insert(id.to_string()), "{id} twice");
        let doc = r["doc"].as_str().unwrap();
        if let Some(want) = direct.get(id) {
            assert_eq!(doc, want, "{id}: not the direct run's document");
            assert!(r["error"].is_null());
        } else if id == "no-text" {
            assert!(r["error"]
                .as_str()
                .unwrap()
                .contains("\"text\" must be a string"));
            no_text += 1;
        } else {
            // A row without an id: named after the DataFrame's partition and row.
            assert!(id.starts_with("dataframe#"), "{id}");
            assert!(doc.contains("\"label\":\"proposal\""), "{doc}");
            no_id += 1;
        }
    }
    assert_eq!((no_id, no_text), (1, 1));
}
