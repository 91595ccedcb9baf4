//! Same output every run: the documents are byte-identical across runs, thread
//! counts, batch sizes and both kinds of parallelism (issue 12). Batching sorts
//! windows by length and pads them, and workers take batches in any order; none
//! of it may show in the output.

mod common;

use common::{repo, stance, succeed};

/// The team's sample articles, in path order.
fn samples() -> Vec<String> {
    let mut paths: Vec<String> = std::fs::read_dir(repo("data/samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .map(|p| p.display().to_string())
        .collect();
    paths.sort();
    paths
}

fn classify(backend: &str, extra: &[&str]) -> Vec<u8> {
    let out = succeed(
        stance()
            .args(["classify", "--format", "jsonl", "--backend", backend])
            .args(extra)
            .args(samples()),
    );
    out.stdout
}

#[test]
fn the_default_backend_gives_the_same_bytes_whatever_the_threads_and_batches() {
    let base = classify(
        "auto",
        &[
            "--threads",
            "1",
            "--batch-size",
            "1",
            "--parallelism",
            "intra",
        ],
    );
    assert!(!base.is_empty());
    assert_eq!(
        base,
        classify(
            "auto",
            &[
                "--threads",
                "1",
                "--batch-size",
                "1",
                "--parallelism",
                "intra"
            ]
        ),
        "a second run differs"
    );
    for extra in [
        [
            "--threads",
            "2",
            "--batch-size",
            "1",
            "--parallelism",
            "intra",
        ],
        [
            "--threads",
            "1",
            "--batch-size",
            "8",
            "--parallelism",
            "intra",
        ],
        [
            "--threads",
            "2",
            "--batch-size",
            "32",
            "--parallelism",
            "intra",
        ],
        [
            "--threads",
            "2",
            "--batch-size",
            "8",
            "--parallelism",
            "workers",
        ],
        [
            "--threads",
            "2",
            "--batch-size",
            "32",
            "--parallelism",
            "workers",
        ],
    ] {
        assert!(
            classify("auto", &extra) == base,
            "output differs with {extra:?}"
        );
    }
}

#[test]
fn the_rules_give_the_same_bytes_every_run() {
    assert_eq!(classify("rules", &[]), classify("rules", &[]));
}
