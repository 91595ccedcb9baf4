//! `stance train ner` on a tiny checkpoint and a CoNLL fixture the team wrote
//! (kept in this file, written out when the tests run):
//! the loss falls, the saved model reloads with the same predictions, a seed
//! fixes the run, and a stopped run resumes to the same weights.

mod common;

use std::path::{Path, PathBuf};

use common::tiny::{self, Tiny};
use common::*;
use stance::model::checkpoint::Checkpoint;
use stance::model::tagger::{InferenceOptions, ModelTagger, Precision};
use stance::model::train::{train_ner, TrainOptions};
use stance::span::Span;

/// The team's tiny CoNLL training set: documents of sentences, each word with
/// its IOB1 tag (`word/TAG`, untagged words are `O`).
const TINY_NER: &[&[&str]] = &[
    &[
        "Kerry/I-PER warned Russia/I-LOC on Monday .",
        "France/I-LOC accused Berlin/I-LOC of fraud .",
        "The minister said talks with Paris/I-LOC would resume .",
    ],
    &[
        "Kerry/I-PER said a plan to end the war in Russia/I-LOC .",
        "Berlin/I-LOC and Paris/I-LOC accused Kerry/I-PER .",
        "The minister warned France/I-LOC on Monday .",
    ],
];

/// Writes [`TINY_NER`] once per test process as a CoNLL-2003 style file.
fn fixture() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let mut text = String::new();
        for doc in TINY_NER {
            text.push_str("-DOCSTART- -X- O O\n\n");
            for sentence in *doc {
                for token in sentence.split(' ') {
                    let (word, tag) = token.split_once('/').unwrap_or((token, "O"));
                    text.push_str(&format!("{word} X O {tag}\n"));
                }
                text.push('\n');
            }
        }
        let path = std::env::temp_dir().join(format!("stance_tiny_ner_{}.txt", std::process::id()));
        std::fs::write(&path, text).expect("write the CoNLL fixture");
        path
    })
    .clone()
}

fn options(base: &Path, out: &Path) -> TrainOptions {
    TrainOptions {
        base: base.into(),
        train: vec![fixture()],
        dev: None,
        out: out.into(),
        epochs: 6,
        lr: 3e-3,
        batch_size: 2,
        seed: 5,
        context: 16,
        threads: 2,
        progress: false,
        ..Default::default()
    }
}

fn base() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("base");
    tiny::write(&Tiny::default(), &dir);
    (tmp, dir)
}

fn weights(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("model.safetensors")).unwrap()
}

#[test]
fn loss_falls_and_the_saved_model_reloads_with_the_same_predictions() {
    let (tmp, base) = base();
    let out = tmp.path().join("out");
    let run = train_ner(&options(&base, &out), &mut |_| {}).unwrap();
    assert!(run.finished);
    let losses: Vec<f64> = run.history.iter().map(|e| e.train_loss).collect();
    assert_eq!(losses.len(), 6);
    assert!(losses[5] < losses[0] * 0.85, "loss should fall: {losses:?}");
    assert!(
        losses.windows(2).all(|w| w[1] < w[0]),
        "loss should fall every epoch: {losses:?}"
    );
    let text = "Kerry warned Russia on Monday. France accused Berlin of fraud.";
    let unit = [Span::new(0, text.len())];
    let opts = InferenceOptions {
        threads: 1,
        precision: Precision::F32,
        ..Default::default()
    };
    let in_memory = run
        .model
        .tagger(opts)
        .with_trained_context(Some(16))
        .probabilities(text, &unit)
        .unwrap();
    let reloaded = ModelTagger::load(&Checkpoint::open(&out).unwrap(), opts).unwrap();
    let again = reloaded.probabilities(text, &unit).unwrap();
    for (a, b) in in_memory[0].iter().zip(&again[0]) {
        for (x, y) in a.probs.iter().zip(&b.probs) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }
    // The saved checkpoint is a Hugging Face token-classification directory.
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["architectures"][0], "BertForTokenClassification");
    assert_eq!(cfg["id2label"]["1"], "B-PER");
    assert_eq!(cfg["stance_casing"], true);
}

#[test]
fn a_seed_fixes_the_run_and_a_stopped_run_resumes_to_the_same_weights() {
    let (tmp, base) = base();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let c = tmp.path().join("c");
    train_ner(&options(&base, &a), &mut |_| {}).unwrap();
    train_ner(&options(&base, &b), &mut |_| {}).unwrap();
    assert_eq!(weights(&a), weights(&b), "same seed, same weights");
    // Stopped after its first step, then resumed.
    let stopped = train_ner(
        &TrainOptions {
            max_minutes: Some(0.0),
            ..options(&base, &c)
        },
        &mut |_| {},
    )
    .unwrap();
    assert!(!stopped.finished);
    assert!(c.join("resume").join("state.json").is_file());
    let resumed = train_ner(
        &TrainOptions {
            resume: true,
            ..options(&base, &c)
        },
        &mut |_| {},
    )
    .unwrap();
    assert!(resumed.finished);
    assert_eq!(
        weights(&a),
        weights(&c),
        "a resumed run ends where an uninterrupted one does"
    );
    // Another seed gives other weights.
    let d = tmp.path().join("d");
    train_ner(
        &TrainOptions {
            seed: 6,
            ..options(&base, &d)
        },
        &mut |_| {},
    )
    .unwrap();
    assert_ne!(weights(&a), weights(&d));
}

/// `stance train ner` on the fixture with the tiny model's settings.
fn train_cli(base: &Path, out: &Path) -> assert_cmd::Command {
    let mut cmd = stance();
    cmd.args(["train", "ner", "--base"])
        .arg(base)
        .arg("--train")
        .arg(fixture())
        .arg("--out")
        .arg(out)
        .args(["--epochs", "2", "--batch-size", "2", "--context", "16"])
        .args(["--lr", "3e-3"]);
    cmd
}

#[test]
fn the_cli_trains_evaluates_and_resumes() {
    let (tmp, base) = base();
    let out = tmp.path().join("cli");
    train_cli(&base, &out)
        .arg("--dev")
        .arg(fixture())
        .assert()
        .success()
        .stderr(predicates::str::contains("epoch 2: train loss"))
        // No terminal here, so progress comes as lines, the last at the epoch's end.
        .stderr(predicates::str::contains("epoch 1/2: step "))
        .stderr(predicates::str::contains("(100%)"));
    let report = stance()
        .args([
            "eval",
            "ner",
            "--backend",
            "model",
            "--format",
            "json",
            "--model",
        ])
        .arg(&out)
        .arg("--data")
        .arg(fixture())
        .output()
        .unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let r = json_of(&report.stdout);
    // 11 gold entities in the fixture, counted as conlleval counts them.
    let gold = r["micro"]["tp"].as_u64().unwrap() + r["micro"]["fn"].as_u64().unwrap();
    assert_eq!(gold, 11);
    assert!(r["tokens_per_second"].as_f64().unwrap() > 0.0);
    // Resuming a finished run is a no-op that still succeeds.
    train_cli(&base, &out).arg("--resume").assert().success();
}

#[test]
#[cfg_attr(
    no_shared,
    ignore = "needs ../shared beside the repository (after adding it: touch build.rs)"
)]
fn conll2003_trains_on_a_slice() {
    let train = shared("data/conll2003/train.txt");
    let (tmp, base) = base();
    let out = tmp.path().join("slice");
    let run = train_ner(
        &TrainOptions {
            train: vec![train],
            limit_docs: Some(4),
            epochs: 3,
            ..options(&base, &out)
        },
        &mut |_| {},
    )
    .unwrap();
    let losses: Vec<f64> = run.history.iter().map(|e| e.train_loss).collect();
    assert!(
        losses[2] < losses[0],
        "loss should fall on CoNLL too: {losses:?}"
    );
}

/// A few gold documents in the guidelines' format, in the tiny vocabulary.
fn stance_gold(dir: &Path) -> PathBuf {
    let docs = [
        (
            "Kerry warned Russia on Monday.",
            "Kerry",
            "threat",
            Some("Russia"),
        ),
        (
            "France accused Berlin of fraud.",
            "France",
            "accusation",
            Some("Berlin"),
        ),
        (
            "Paris said a plan to end the war.",
            "Paris",
            "proposal",
            None,
        ),
        (
            "Berlin warned Paris on Monday.",
            "Berlin",
            "threat",
            Some("Paris"),
        ),
        (
            "Russia accused Kerry of fraud.",
            "Russia",
            "accusation",
            Some("Kerry"),
        ),
        (
            "Kerry said talks would resume in Paris.",
            "Kerry",
            "proposal",
            None,
        ),
    ];
    let span = |text: &str, s: &str| {
        let start = text.find(s).unwrap();
        serde_json::json!({"start": start, "end": start + s.len(), "text": s})
    };
    let mut lines = String::new();
    for (i, (text, actor, label, target)) in docs.iter().enumerate() {
        let record = serde_json::json!({
            "id": format!("d{i}"),
            "text": text,
            "stances": [{
                "actor": span(text, actor),
                "label": label,
                "target": target.map(|t| span(text, t)),
            }],
        });
        lines.push_str(&format!("{record}\n"));
    }
    let path = dir.join("gold.jsonl");
    std::fs::write(&path, lines).unwrap();
    path
}

#[test]
fn stance_training_ties_its_heads_to_the_entity_model_and_repeats_with_a_seed() {
    let (tmp, base) = base();
    let ner = tmp.path().join("ner");
    // Long enough for the tiny model to tag the fixture's names.
    let long = TrainOptions {
        epochs: 60,
        ..options(&base, &ner)
    };
    train_ner(&long, &mut |_| {}).unwrap();
    let gold = stance_gold(tmp.path());
    // The second run is --quiet: no progress lines, the epochs' results still, the same weights.
    let train = |out: &Path, quiet: bool| {
        let run = stance()
            .args(if quiet { &["--quiet"][..] } else { &[] })
            .args(["train", "stance", "--ner-model"])
            .arg(&ner)
            .arg("--out")
            .arg(out)
            .arg("--train")
            .arg(&gold)
            .args(["--epochs", "2", "--batch-size", "4", "--target-epochs", "3"])
            .args(["--negatives", "1", "--holdout", "0.3", "--threads", "1"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{stderr}");
        assert!(stderr.contains("actor epoch 2: loss"), "{stderr}");
        // No terminal here: progress comes as lines, unless --quiet.
        assert_eq!(
            stderr.contains("actor epoch 2/2: step "),
            !quiet,
            "{stderr}"
        );
        // So does the entity model's pass over the documents before training.
        assert_eq!(
            stderr.contains("reading the documents: 6 of 6 (100%)"),
            !quiet,
            "{stderr}"
        );
    };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    train(&a, false);
    train(&b, true);
    for file in [
        "stance.json",
        "targets.safetensors",
        "actors/model.safetensors",
    ] {
        assert_eq!(
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
            "{file}: same seed, same result"
        );
    }
    // The actor classifier starts from the entity encoder and moves away from it.
    let load = |p: PathBuf| candle_core::safetensors::load(p, &candle_core::Device::Cpu).unwrap();
    let (start, tuned) = (
        load(ner.join("model.safetensors")),
        load(a.join("actors/model.safetensors")),
    );
    let key = "bert.encoder.layer.0.attention.self.query.weight";
    let values = |t: &candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(start[key].shape(), tuned[key].shape());
    assert_ne!(
        values(&start[key]),
        values(&tuned[key]),
        "{key} was trained"
    );
    assert!(tuned.contains_key("actor_head.weight"));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("stance.json")).unwrap()).unwrap();
    assert_eq!(
        config["encoder_sha256"],
        stance::stance::model::file_sha256(&ner.join("model.safetensors")).unwrap()
    );
    let floors = config["rules_floor"]
        .as_array()
        .expect("rules_floor in stance.json");
    assert_eq!(floors.len(), 3, "{config:#}");
    // Trained and halved weights are as readable as the config beside them.
    let half = tmp.path().join("half");
    stance()
        .args(["models", "half"])
        .arg(a.join("actors"))
        .arg(&half)
        .assert()
        .success();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for dir in [a.join("actors"), half.clone()] {
            assert_eq!(
                mode(dir.join("model.safetensors")),
                mode(dir.join("config.json")),
                "{}",
                dir.display()
            );
        }
    }
    // The heads run over the entity model they were trained with ...
    let text = "Kerry warned Russia on Monday.";
    let out = succeed(
        stance()
            .args([
                "classify",
                "--backend",
                "model",
                "--format",
                "json",
                "--model",
            ])
            .arg(&ner)
            .arg("--stance-model")
            .arg(&a)
            .write_stdin(text),
    );
    assert_eq!(json_of(&out.stdout)["backend"], "model");
    // ... and refuse another one, saying why.
    let out = stance()
        .args(["classify", "--backend", "model", "--model"])
        .arg(&base)
        .arg("--stance-model")
        .arg(&a)
        .write_stdin(text)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("trained over another entity model"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An entity model and a sentence-layout stance model (in `tmp/out`) trained on the tiny gold
/// with `extra` options: the entity model, the stance model and the training run.
fn train_sentence_layout(
    tmp: &Path,
    base: &Path,
    out: &str,
    extra: &[&str],
) -> (PathBuf, PathBuf, assert_cmd::assert::Assert) {
    let ner = tmp.join("ner");
    train_ner(
        &TrainOptions {
            epochs: 60,
            ..options(base, &ner)
        },
        &mut |_| {},
    )
    .unwrap();
    let out = tmp.join(out);
    let run = sentence_layout_training(&ner, &stance_gold(tmp), &out)
        .args(extra)
        .assert()
        .success();
    (ner, out, run)
}

/// `stance train stance` of a sentence-layout model on `gold` (trained and tuned on).
fn sentence_layout_training(ner: &Path, gold: &Path, out: &Path) -> assert_cmd::Command {
    let mut cmd = stance();
    cmd.args(["train", "stance", "--ner-model"])
        .arg(ner)
        .arg("--out")
        .arg(out)
        .arg("--train")
        .arg(gold)
        .arg("--tune")
        .arg(gold)
        .args([
            "--batch-size",
            "4",
            "--layout",
            "sentence",
            "--threads",
            "1",
        ]);
    cmd
}

#[test]
fn the_sentence_layout_reads_a_sentence_once_and_agrees_with_single_candidates() {
    use stance::stance::markers::{mention_range, Candidate, CueMark, MarkerModel};
    let (tmp, base) = base();
    let (_, out, run) = train_sentence_layout(
        tmp.path(),
        &base,
        "sentence",
        &["--epochs", "2", "--target-epochs", "2"],
    );
    run.stderr(predicates::str::contains("Sentence layout"))
        .stderr(predicates::str::contains("6 tuning documents"));
    let actors = out.join("actors");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(actors.join("stance_markers.json")).unwrap())
            .unwrap();
    assert_eq!(config["layout"], "sentence");
    assert_eq!(config["pair_targets"], true);
    let model = MarkerModel::load(&actors).unwrap();
    let texts = [
        "Berlin and Paris accused Kerry of fraud.",
        "Kerry warned Russia on Monday.",
    ];
    let tokens: Vec<_> = texts
        .iter()
        .map(|t| model.text.encode(t, Span::new(0, t.len())).unwrap())
        .collect();
    let names: [&[&str]; 2] = [&["Berlin", "Paris", "Kerry"], &["Kerry", "Russia"]];
    let mut cands = Vec::new();
    for (k, (t, ns)) in texts.iter().zip(names).enumerate() {
        for n in ns {
            let at = t.find(n).unwrap();
            let mention = mention_range(&tokens[k], Span::new(at, at + n.len())).unwrap();
            cands.push(Candidate {
                tokens: &tokens[k],
                mention,
                cues: &[],
            });
        }
    }
    // Each sentence is one encoder row with all its candidates marked.
    assert_eq!(model.groups(&cands), vec![vec![0, 1, 2], vec![3, 4]]);
    // A model trained without cue markers reads no cues, whatever it is given.
    let accused = [CueMark { token: 5, label: 1 }];
    let with_cues: Vec<Candidate> = cands
        .iter()
        .map(|c| Candidate {
            tokens: c.tokens,
            mention: c.mention.clone(),
            cues: &accused,
        })
        .collect();
    assert_eq!(
        model.probabilities(&with_cues[..3], 1, 1).unwrap(),
        model.probabilities(&cands[..3], 1, 1).unwrap()
    );
    // One that marks cues reads them (the markers are vocabulary entries of their own).
    let marking = tmp.path().join("marking");
    std::fs::create_dir_all(&marking).unwrap();
    for entry in std::fs::read_dir(&actors).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), marking.join(entry.file_name())).unwrap();
    }
    let mut marked_config = config.clone();
    marked_config["cue_markers"] = serde_json::Value::Bool(true);
    std::fs::write(
        marking.join("stance_markers.json"),
        serde_json::to_vec(&marked_config).unwrap(),
    )
    .unwrap();
    let cue_model = MarkerModel::load(&marking).unwrap();
    assert_eq!(
        cue_model.probabilities(&cands[..3], 1, 1).unwrap(),
        model.probabilities(&cands[..3], 1, 1).unwrap(),
        "no cues, nothing marked"
    );
    assert_ne!(
        cue_model.probabilities(&with_cues[..3], 1, 1).unwrap(),
        model.probabilities(&cands[..3], 1, 1).unwrap()
    );
    // Batching and workers change nothing.
    let one = model.probabilities(&cands, 1, 1).unwrap();
    let many = model.probabilities(&cands, 8, 2).unwrap();
    for (a, b) in one.iter().zip(&many) {
        for k in 0..3 {
            assert!((a[k] - b[k]).abs() < 1e-4, "{one:?} vs {many:?}");
        }
    }
    // A candidate read alone is what the candidate layout reads.
    let alone = model.probabilities(&cands[2..3], 1, 1).unwrap();
    let mut single = model;
    single.config.layout = stance::stance::markers::MarkerLayout::Candidate;
    let reference = single.probabilities(&cands[2..3], 1, 1).unwrap();
    assert_eq!(alone, reference);
    // Marking the other candidates changes what a candidate reads.
    let separately = single.probabilities(&cands, 1, 1).unwrap();
    assert_ne!(separately[0], one[0]);
}

#[test]
fn a_model_trained_with_cue_markers_records_them_and_classifies() {
    let (tmp, base) = base();
    let (ner, out, _) = train_sentence_layout(
        tmp.path(),
        &base,
        "cues",
        &["--epochs", "1", "--target-epochs", "1", "--cue-markers"],
    );
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("actors").join("stance_markers.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["cue_markers"], true);
    let out = succeed(
        stance()
            .args(["classify", "--backend", "model", "--format", "json"])
            .arg("--model")
            .arg(&ner)
            .arg("--stance-model")
            .arg(&out)
            .write_stdin("Kerry accused Russia of fraud on Monday."),
    );
    assert_eq!(json_of(&out.stdout)["backend"], "model");
}

#[test]
fn a_run_continues_from_a_trained_classifier_with_its_heads_and_its_options() {
    let (tmp, base) = base();
    let one_epoch = ["--epochs", "1", "--target-epochs", "1"];
    let (ner, first, _) = train_sentence_layout(tmp.path(), &base, "first", &one_epoch);
    let gold = tmp.path().join("gold.jsonl");
    let init = first.join("actors");
    // At a learning rate of zero, a run that starts from the trained classifier (heads
    // included) keeps its weights; one that starts from the entity model does not.
    let still = tmp.path().join("still");
    sentence_layout_training(&ner, &gold, &still)
        .args(one_epoch)
        .args(["--lr", "0", "--continue-from"])
        .arg(&init)
        .assert()
        .success();
    assert!(weights(&still.join("actors")) == weights(&init));
    let fresh = tmp.path().join("fresh");
    sentence_layout_training(&ner, &gold, &fresh)
        .args(one_epoch)
        .args(["--lr", "0"])
        .assert()
        .success();
    assert!(weights(&fresh.join("actors")) != weights(&init));
    // Input options that differ from the saved ones are refused, naming them.
    let refused = sentence_layout_training(&ner, &gold, &tmp.path().join("refused"))
        .args(one_epoch)
        .args([
            "--cue-markers",
            "--context-sentences",
            "1",
            "--continue-from",
        ])
        .arg(&init)
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&refused.get_output().stderr).into_owned();
    assert!(
        stderr.contains("cannot continue from")
            && stderr.contains("context sentences 0 (asked for 1)")
            && stderr.contains("cue markers false (asked for true)"),
        "{stderr}"
    );
}

#[test]
fn a_stopped_stance_run_resumes_to_the_weights_of_an_uninterrupted_one() {
    let (tmp, base) = base();
    let two_epochs = ["--epochs", "2", "--target-epochs", "1"];
    let (ner, whole, _) = train_sentence_layout(tmp.path(), &base, "whole", &two_epochs);
    let gold = tmp.path().join("gold.jsonl");
    let parted = tmp.path().join("parted");
    // Nothing to resume yet: the error says where it looked.
    let nothing = sentence_layout_training(&ner, &gold, &parted)
        .args(two_epochs)
        .arg("--resume")
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&nothing.get_output().stderr).into_owned();
    assert!(
        stderr.contains("cannot resume") && stderr.contains("state.json"),
        "{stderr}"
    );
    // Zero minutes: stopped after the first step, with no model written yet.
    sentence_layout_training(&ner, &gold, &parted)
        .args(two_epochs)
        .args(["--max-minutes", "0"])
        .assert()
        .success()
        .stderr(predicates::str::contains("continue with --resume"));
    assert!(parted.join("resume").join("state.json").is_file());
    assert!(!parted.join("stance.json").exists());
    // Another seed is another run: refused.
    sentence_layout_training(&ner, &gold, &parted)
        .args(two_epochs)
        .args(["--resume", "--seed", "7"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("resume it with the same seed"));
    sentence_layout_training(&ner, &gold, &parted)
        .args(two_epochs)
        .arg("--resume")
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "resumed the actor classifier at epoch 1, batch 1",
        ));
    for file in ["actors/model.safetensors", "stance.json"] {
        assert!(
            std::fs::read(whole.join(file)).unwrap() == std::fs::read(parted.join(file)).unwrap(),
            "{file}: a resumed run ends where an uninterrupted one does"
        );
    }
}

#[test]
fn the_reading_pass_runs_in_the_precision_asked_for() {
    let (tmp, base) = base();
    let one_epoch = ["--epochs", "1", "--target-epochs", "1"];
    let (ner, _, _) = train_sentence_layout(tmp.path(), &base, "first", &one_epoch);
    let gold = tmp.path().join("gold.jsonl");
    sentence_layout_training(&ner, &gold, &tmp.path().join("bad"))
        .args(["--reading-precision", "f16"])
        .assert()
        .failure()
        .code(2)
        .stderr(predicates::str::contains(
            "possible values: auto, f32, int8",
        ));
    if !stance::model::int8::available() {
        eprintln!("skipped the int8 run: this CPU has no AVX-512 VNNI");
        return;
    }
    sentence_layout_training(&ner, &gold, &tmp.path().join("int8"))
        .args(one_epoch)
        .args(["--reading-precision", "int8"])
        .assert()
        .success()
        .stderr(predicates::str::contains("12 documents: "));
}

#[test]
fn a_refit_that_keeps_the_targets_changes_no_weight_and_keeps_the_training_data() {
    let (tmp, base) = base();
    let one_epoch = ["--epochs", "1", "--target-epochs", "1"];
    let (ner, first, _) = train_sentence_layout(tmp.path(), &base, "first", &one_epoch);
    let gold = tmp.path().join("gold.jsonl");
    // A soup of a model with itself is that model, and a refit of it reads no training data.
    let soup = tmp.path().join("soup");
    stance()
        .args(["models", "average", "--out"])
        .arg(&soup)
        .args([&first, &first])
        .assert()
        .success();
    stance()
        .args(["train", "stance", "--ner-model"])
        .arg(&ner)
        .arg("--out")
        .arg(&soup)
        .arg("--tune")
        .arg(&gold)
        .args(["--layout", "sentence", "--threads", "1"])
        .args(["--reuse-actors", "--keep-targets"])
        .assert()
        .success()
        .stderr(predicates::str::contains("keeping the target head"));
    for file in ["targets.safetensors", "actors/model.safetensors"] {
        assert!(
            std::fs::read(first.join(file)).unwrap() == std::fs::read(soup.join(file)).unwrap(),
            "{file} kept"
        );
    }
    let trained_on = |dir: &Path| {
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("stance.json")).unwrap()).unwrap();
        config["trained_on"].clone()
    };
    let gold_name = gold.display().to_string();
    assert_eq!(
        trained_on(&first),
        serde_json::json!([gold_name, format!("tune: {gold_name}")])
    );
    assert_eq!(trained_on(&soup), trained_on(&first));
}
