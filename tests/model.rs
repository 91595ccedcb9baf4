//! The transformer entity backend on tiny checkpoints built here: loading,
//! failures, batching, windowing, the Hub cache, and the real base encoder.

mod common;

use std::path::{Path, PathBuf};

use common::tiny::{self, Tiny};
use common::*;
use stance::model::aggregate::Aggregation;
use stance::model::checkpoint::Checkpoint;
use stance::model::tagger::{InferenceOptions, ModelTagger};
use stance::model::threads::Parallelism;
use stance::span::Span;

fn options(batch_size: usize) -> InferenceOptions {
    InferenceOptions {
        batch_size,
        threads: 1,
        parallelism: Parallelism::Workers,
        ..Default::default()
    }
}

fn tagger(dir: &Path, opts: InferenceOptions) -> ModelTagger {
    ModelTagger::load(&Checkpoint::open(dir).unwrap(), opts).unwrap()
}

fn write(t: &Tiny) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    tiny::write(t, &dir);
    (tmp, dir)
}

const SENTENCES: [&str; 4] = [
    "Kerry warned Russia on Monday.",
    "France accused Berlin of fraud, the minister said.",
    "Talks with Paris would resume.",
    "A plan to end the war in Russia and France, said Kerry in Berlin on Monday with the minister.",
];

fn text_and_units() -> (String, Vec<Span>) {
    let mut text = String::new();
    let mut units = Vec::new();
    for s in SENTENCES {
        units.push(Span::new(text.len(), text.len() + s.len()));
        text.push_str(s);
        text.push(' ');
    }
    (text, units)
}

#[test]
fn both_weight_layouts_load_and_agree() {
    let (_a, with_prefix) = write(&Tiny::default());
    let (_b, bare) = write(&Tiny {
        bert_prefix: false,
        ..Default::default()
    });
    let (text, units) = text_and_units();
    let p1 = tagger(&with_prefix, options(8))
        .probabilities(&text, &units)
        .unwrap();
    let p2 = tagger(&bare, options(8))
        .probabilities(&text, &units)
        .unwrap();
    assert_eq!(p1, p2);
    assert_eq!(p1.len(), units.len());
    // The tokenizer's fixed padding to 128 is off: one row per real token.
    assert!(p1[0].len() < 20, "{} tokens", p1[0].len());
}

#[test]
fn batched_results_equal_one_sentence_at_a_time() {
    let (_t, dir) = write(&Tiny::default());
    let (text, units) = text_and_units();
    let batched = tagger(&dir, options(8))
        .probabilities(&text, &units)
        .unwrap();
    let one = tagger(&dir, options(1))
        .probabilities(&text, &units)
        .unwrap();
    let two_workers = tagger(
        &dir,
        InferenceOptions {
            threads: 2,
            ..options(2)
        },
    )
    .probabilities(&text, &units)
    .unwrap();
    let mut max_diff = 0f32;
    for (a, (b, c)) in batched.iter().zip(one.iter().zip(&two_workers)) {
        assert_eq!(a.len(), b.len());
        for (x, (y, z)) in a.iter().zip(b.iter().zip(c)) {
            assert_eq!(x.span, y.span);
            for (p, (q, r)) in x.probs.iter().zip(y.probs.iter().zip(&z.probs)) {
                max_diff = max_diff.max((p - q).abs()).max((p - r).abs());
            }
        }
    }
    // Padding is masked: the shorter sentences padded to the longest give the same numbers.
    assert!(
        max_diff < 1e-4,
        "batched and unbatched differ by {max_diff}"
    );
}

#[test]
fn a_long_document_windowed_matches_one_window_over_everything() {
    // Without attention to context and without positions, a token's label does not
    // depend on its window; what is tested is the windows' stitching and offsets.
    let words: Vec<&str> = tiny::WORDS
        .iter()
        .copied()
        .filter(|w| w.chars().all(char::is_alphabetic))
        .collect();
    let mut text = String::new();
    for i in 0..5000 {
        if i > 0 {
            text.push(' ');
        }
        let w = words[(i * 7 + i / 13) % words.len()];
        if i % 5 == 0 {
            let mut c = w.chars();
            text.extend(c.next().unwrap().to_uppercase());
            text.push_str(c.as_str());
        } else {
            text.push_str(w);
        }
    }
    let base = Tiny {
        zero_positions: true,
        no_attention: true,
        ..Default::default()
    };
    let (_a, small) = write(&Tiny {
        max_positions: 64,
        ..base
    });
    let (_b, large) = write(&Tiny {
        max_positions: 8192,
        ..base
    });
    let doc = stance::doc::Doc::new(text.clone());
    let windowed = tagger(
        &small,
        InferenceOptions {
            stride: 16,
            ..options(8)
        },
    );
    assert!(windowed.max_tokens() <= 62);
    let whole = tagger(&large, options(8));
    let a = stance::ner::entities_of(&windowed, &doc.text).unwrap();
    let b = stance::ner::entities_of(&whole, &doc.text).unwrap();
    assert!(
        a.len() > 50,
        "the tiny model should find entities, found {}",
        a.len()
    );
    let key = |e: &stance::Entity| (e.span, e.label);
    let (ka, kb): (Vec<_>, Vec<_>) = (a.iter().map(key).collect(), b.iter().map(key).collect());
    if let Some(i) = (0..ka.len().min(kb.len())).find(|&i| ka[i] != kb[i]) {
        panic!(
            "entity {i} differs: windowed {:?}, whole {:?}",
            ka[i], kb[i]
        );
    }
    assert_eq!(ka.len(), kb.len());
    // Nothing beyond the first window was dropped.
    assert!(a.last().unwrap().span.start > text.len() - 200);
}

#[test]
fn windows_see_context_from_both_sides() {
    // With attention on, a windowed run differs from a whole run only near window
    // edges; tokens are taken from the window where they sit most central.
    let (_a, small) = write(&Tiny {
        max_positions: 64,
        zero_positions: true,
        ..Default::default()
    });
    let text = SENTENCES.join(" ").repeat(20);
    let t = tagger(
        &small,
        InferenceOptions {
            stride: 24,
            ..options(4)
        },
    );
    let probs = t.probabilities(&text, &[Span::new(0, text.len())]).unwrap();
    let spans: Vec<Span> = probs[0].iter().map(|p| p.span).collect();
    // Every token once, in order, with offsets into the text.
    assert!(spans.windows(2).all(|w| w[0].end <= w[1].start));
    assert!(spans.len() > 200);
    for s in &spans {
        assert!(!text[s.start..s.end].trim().is_empty());
    }
}

fn stance_with_model(dir: &Path) -> assert_cmd::Command {
    let mut cmd = stance();
    cmd.args([
        "classify",
        "--backend",
        "model",
        "--format",
        "json",
        "--model",
    ])
    .arg(dir);
    cmd
}

/// Documents name the number format their models ran in; `auto` means int8 only
/// where the CPU runs it, and the rules run no model.
#[test]
fn documents_name_the_precision_the_models_ran_in() {
    let (_t, dir) = write(&Tiny::default());
    let text = "Kerry warned Russia on Monday.";
    let run = |cmd: &mut assert_cmd::Command| cmd.write_stdin(text).output().unwrap();
    let precision_of = |extra: &[&str]| {
        let out = run(stance_with_model(&dir).args(extra));
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{err}");
        json_of(&out.stdout)["precision"].clone()
    };
    let vnni = stance::model::int8::available();
    assert_eq!(precision_of(&["--precision", "f32"]), "f32");
    assert_eq!(precision_of(&[]), if vnni { "int8" } else { "f32" });
    if vnni {
        assert_eq!(precision_of(&["--precision", "int8"]), "int8");
    } else {
        let out = run(stance_with_model(&dir).args(["--precision", "int8"]));
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("AVX-512 VNNI"), "{err}");
    }
    let rules = run(stance().args(["classify", "--format", "json", "--backend", "rules"]));
    assert!(json_of(&rules.stdout).get("precision").is_none());
}

#[test]
fn cli_runs_a_checkpoint_and_marks_entities_as_model_output() {
    let (_t, dir) = write(&Tiny::default());
    let text = "Kerry warned Russia on Monday. France accused Berlin of fraud.";
    let out = stance_with_model(&dir).write_stdin(text).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json_of(&out.stdout);
    let entities = doc["entities"].as_array().unwrap();
    assert!(!entities.is_empty());
    for e in entities {
        assert_eq!(e["backend"], "model");
        let (s, end) = (e["start"].as_u64().unwrap(), e["end"].as_u64().unwrap());
        assert_eq!(chars(text, s, end), e["text"].as_str().unwrap());
    }
    assert_eq!(doc["backend"], "hybrid");
}

fn expect_model_error(dir: &Path, needle: &str) {
    let out = stance_with_model(dir)
        .write_stdin("Kerry warned Russia.")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn broken_checkpoints_fail_with_clear_errors() {
    let (_t, dir) = write(&Tiny::default());
    let copy = |name: &str| {
        let d = dir.parent().unwrap().join(name);
        std::fs::create_dir_all(&d).unwrap();
        for f in ["config.json", "tokenizer.json", "model.safetensors"] {
            std::fs::copy(dir.join(f), d.join(f)).unwrap();
        }
        d
    };
    // Missing files.
    let d = copy("no-config");
    std::fs::remove_file(d.join("config.json")).unwrap();
    expect_model_error(&d, "config.json is missing");
    let d = copy("no-tokenizer");
    std::fs::remove_file(d.join("tokenizer.json")).unwrap();
    expect_model_error(&d, "tokenizer.json is missing");
    let d = copy("no-weights");
    std::fs::remove_file(d.join("model.safetensors")).unwrap();
    expect_model_error(&d, "no weights");
    expect_model_error(&dir.parent().unwrap().join("absent"), "absent");
    // Truncated and corrupt weights.
    let d = copy("truncated");
    let bytes = std::fs::read(d.join("model.safetensors")).unwrap();
    std::fs::write(d.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    expect_model_error(&d, "model.safetensors");
    let d = copy("corrupt");
    std::fs::write(
        d.join("model.safetensors"),
        b"\xff\xff\xff\xff\xff\xff\xff\x7fgarbage",
    )
    .unwrap();
    expect_model_error(&d, "unreadable weights");
    // Shapes that do not match the config.
    let d = copy("shapes");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("config.json")).unwrap()).unwrap();
    cfg["hidden_size"] = 32.into();
    std::fs::write(d.join("config.json"), cfg.to_string()).unwrap();
    expect_model_error(&d, "do not match config.json");
    // No id2label.
    let d = copy("labels");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("config.json")).unwrap()).unwrap();
    cfg.as_object_mut().unwrap().remove("id2label");
    std::fs::write(d.join("config.json"), cfg.to_string()).unwrap();
    expect_model_error(&d, "id2label is missing");
    // An id2label with a gap in its ids.
    let d = copy("label-gap");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("config.json")).unwrap()).unwrap();
    cfg["id2label"].as_object_mut().unwrap().remove("1");
    std::fs::write(d.join("config.json"), cfg.to_string()).unwrap();
    expect_model_error(&d, "no label for id 1");
    // Sizes no encoder has are refused before anything is allocated for them.
    for (field, value) in [
        ("hidden_size", 1u64 << 40),
        ("vocab_size", 1 << 40),
        ("num_hidden_layers", 100_000),
        ("max_position_embeddings", 1 << 40),
    ] {
        let d = copy(&format!("huge-{field}"));
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("config.json")).unwrap()).unwrap();
        cfg[field] = value.into();
        std::fs::write(d.join("config.json"), cfg.to_string()).unwrap();
        expect_model_error(&d, &format!("{field} {value} is beyond what stance runs"));
    }
    // A tokenizer whose vocabulary is smaller than the embedding matrix.
    let d = copy("vocab");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("config.json")).unwrap()).unwrap();
    let n = cfg["vocab_size"].as_u64().unwrap();
    cfg["vocab_size"] = (n + 10).into();
    std::fs::write(d.join("config.json"), cfg.to_string()).unwrap();
    // Weights must match the larger vocabulary for the tokenizer check to be the one that fails.
    let mut w = tiny::weights(&Tiny::default(), n as usize + 10);
    w.remove("bert.embeddings.word_embeddings.weight");
    let emb = candle_core::Tensor::zeros(
        (n as usize + 10, 16),
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    )
    .unwrap();
    w.insert("bert.embeddings.word_embeddings.weight".into(), emb);
    candle_core::safetensors::save(&w, d.join("model.safetensors")).unwrap();
    expect_model_error(&d, "the tokenizer does not belong to these weights");
}

#[test]
fn auto_falls_back_to_rules_only_without_a_default_model_and_says_why_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = stance()
        .env("STANCE_MODELS", dir.path())
        .args(["classify", "--format", "json"])
        .write_stdin("Paris accused Rome of fraud.")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("warning").count(), 1, "{err}");
    assert!(
        err.contains("using the rules backend") && err.contains("no default model"),
        "{err}"
    );
    let doc = json_of(&out.stdout);
    assert_eq!(doc["backend"], "rules");
    assert_eq!(doc["statements"][0]["label"], "accusation");
    // A model the user names is not a default: it must load.
    let missing = dir.path().join("nothing-here");
    stance()
        .args(["classify", "--format", "json", "--model"])
        .arg(&missing)
        .write_stdin("Paris accused Rome of fraud.")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("nothing-here"));
}

/// Lays out a Hugging Face cache the way `huggingface_hub` does.
fn hub_cache(root: &Path, repo: &str, src: &Path) -> String {
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let base = root.join(format!("models--{}", repo.replace('/', "--")));
    let snap = base.join("snapshots").join(commit);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(base.join("refs")).unwrap();
    std::fs::write(base.join("refs").join("main"), commit).unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(src.join(f), snap.join(f)).unwrap();
    }
    commit.to_string()
}

#[test]
fn hub_ids_resolve_offline_from_a_local_cache() {
    let (_t, dir) = write(&Tiny::default());
    let cache = tempfile::tempdir().unwrap();
    let commit = hub_cache(cache.path(), "acme/tiny-ner", &dir);
    let run = |spec: &str| {
        stance()
            .env("HF_HUB_CACHE", cache.path())
            .env("HF_HUB_OFFLINE", "1")
            .args([
                "classify",
                "--backend",
                "model",
                "--format",
                "json",
                "--model",
                spec,
            ])
            .write_stdin("Kerry warned Russia.")
            .output()
            .unwrap()
    };
    for spec in ["acme/tiny-ner", &format!("acme/tiny-ner@{commit}")] {
        let out = run(spec);
        assert!(
            out.status.success(),
            "{spec}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(json_of(&out.stdout)["entities"].as_array().is_some());
    }
    let out = run("acme/not-cached");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("acme/not-cached") && err.contains("HF_HUB_OFFLINE"),
        "{err}"
    );
    // HF_HOME/hub is the cache when HF_HUB_CACHE is unset.
    let home = tempfile::tempdir().unwrap();
    hub_cache(&home.path().join("hub"), "acme/tiny-ner", &dir);
    let out = stance()
        .env_remove("HF_HUB_CACHE")
        .env("HF_HOME", home.path())
        .env("HF_HUB_OFFLINE", "1")
        .args(["models"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("acme/tiny-ner@"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn aggregation_strategies_are_selectable_from_the_command_line() {
    let (_t, dir) = write(&Tiny::default());
    let text = "Kerry warned Russia on Monday. France accused Berlin of fraud.";
    let mut seen = Vec::new();
    for agg in ["simple", "first", "average", "max"] {
        let out = stance_with_model(&dir)
            .args(["--aggregation", agg])
            .write_stdin(text)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{agg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        seen.push(json_of(&out.stdout)["entities"].clone());
    }
    // Word-level strategies never split a word; simple may.
    let _ = Aggregation::default();
    assert!(seen.iter().all(|e| e.is_array()));
}

#[test]
#[cfg_attr(
    no_base,
    ignore = "needs models/base (scripts/fetch_base.sh fetches it)"
)]
fn the_real_base_encoder_with_a_random_head_gives_offsets_that_slice_back() {
    let base = repo("models/base");
    let b = stance::model::train::Base::open(&base).unwrap();
    let t =
        stance::model::train::Trainable::from_base(&b, &stance::model::train::NER_LABELS, true, 1)
            .unwrap();
    let tagger = t.tagger(InferenceOptions {
        aggregation: Aggregation::Simple,
        ..options(8)
    });
    let mut found = 0;
    for f in ["steel_duties.txt", "tanker_standoff.txt", "peru_runoff.txt"] {
        let text = std::fs::read_to_string(repo("data/samples").join(f)).unwrap();
        for e in stance::ner::entities_of(&tagger, &text).unwrap() {
            let piece = &text[e.span.start..e.span.end];
            assert!(
                !piece.is_empty() && piece.trim() == piece,
                "{f}: {:?}",
                piece
            );
            found += 1;
        }
    }
    assert!(
        found > 0,
        "a random head over the real encoder still tags something"
    );
}

#[test]
fn models_lists_stance_heads_and_marks_the_default() {
    let root = tempfile::tempdir().unwrap();
    for name in ["stance", "stance-experiment"] {
        let d = root.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let config = stance::stance::model::StanceConfig {
            state_dim: 384,
            hidden: 128,
            encoder_sha256: "0".repeat(64),
            heldout_f1: 0.5,
            hybrid_thresholds: [0.5; 3],
            rules_floor: [0.0; 3],
            heldout_f1_hybrid: 0.5,
            trained_on: vec![format!("data/{name}.jsonl")],
        };
        std::fs::write(
            d.join("stance.json"),
            serde_json::to_string(&config).unwrap(),
        )
        .unwrap();
    }
    let broken = root.path().join("stance-broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("stance.json"), r#"{"trained_on": []}"#).unwrap();
    let out = stance()
        .env("STANCE_MODELS", root.path())
        .args(["models"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let line_of = |name: &str| {
        text.lines()
            .find(|l| l.trim_start_matches('*').split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{text}"))
            .to_string()
    };
    assert!(line_of("stance").starts_with('*'), "{text}");
    assert!(!line_of("stance-experiment").starts_with('*'), "{text}");
    assert!(
        text.contains("trained on: data/stance-experiment.jsonl"),
        "{text}"
    );
    let broken = text
        .rsplit_once("/stance-broken")
        .unwrap_or_else(|| panic!("stance-broken not listed:\n{text}"))
        .1;
    assert!(
        broken.contains("unusable: stance.json does not parse"),
        "{text}"
    );
}

#[test]
fn word_pieces_from_the_tokenize_stage_give_the_same_entities() {
    use stance::doc::Doc;
    use stance::EntityTagger;
    let (_tmp, dir) = write(&Tiny::default());
    let model = tagger(&dir, options(2));
    let text = SENTENCES.join(" \n\n");
    let mut alone = Doc::new(text.as_str());
    model.tag(&mut alone).unwrap();
    let mut staged = Doc::new(text.as_str());
    staged.pieces = Some(
        model
            .word_pieces(&staged.text, &staged.prose_runs())
            .unwrap(),
    );
    model.tag(&mut staged).unwrap();
    assert!(
        staged.pieces.is_none(),
        "the tagger takes the pieces it reads"
    );
    assert_eq!(alone.entities, staged.entities);
    // Pieces made for other runs are not read.
    let mut stale = Doc::new(text.as_str());
    stale.pieces = Some(Vec::new());
    model.tag(&mut stale).unwrap();
    assert_eq!(alone.entities, stale.entities);
}

#[test]
fn models_lists_each_installed_model_once_from_the_clone() {
    // From the repository root `./models` and the one above `target/release/stance` are the
    // same directory: it is searched, and each model listed, once.
    let out = succeed(
        stance()
            .env_remove("STANCE_MODELS")
            .current_dir(repo(""))
            .arg("models"),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // A model's line is "* NAME PATH" or "  NAME PATH"; its details are indented by four.
    let listed = |name: &str| {
        text.lines()
            .filter(|l| !l.starts_with("    "))
            .filter(|l| l.trim_start_matches('*').split_whitespace().next() == Some(name))
            .count()
    };
    assert_eq!(listed("ner"), 1, "{text}");
    assert_eq!(listed("stance"), 1, "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("* ner")),
        "the default entity model is marked: {text}"
    );
}

/// The shipped entity model loaded for inference, and a batch of [`SENTENCES`] padded to
/// the longest: `(model, ids, mask, shapes, real tokens per row with [CLS]/[SEP])`.
fn shipped_model_and_batch() -> (
    stance::model::checkpoint::TokenClassifier,
    candle_core::Tensor,
    candle_core::Tensor,
    candle_core::Tensor,
    Vec<usize>,
) {
    use stance::model::checkpoint::{load_tokenizer, TokenClassifier};
    use stance::model::inputs::TextEncoder;

    let ck = Checkpoint::open(&repo("models/ner")).unwrap();
    let device = candle_core::Device::Cpu;
    let model = TokenClassifier::load(&ck, &device).unwrap();
    let text_encoder = TextEncoder::new(
        load_tokenizer(&ck.tokenizer, ck.config.vocab_size).unwrap(),
        ck.config.pad_token_id as u32,
    )
    .unwrap();
    let (text, units) = text_and_units();
    let tokens: Vec<_> = units
        .iter()
        .map(|&u| text_encoder.encode(&text, u).unwrap())
        .collect();
    let rows: Vec<_> = tokens.iter().map(|t| (t, 0..t.ids.len())).collect();
    let (ids, mask, shapes) = text_encoder.batch(&rows, &device).unwrap();
    let real = tokens.iter().map(|t| t.ids.len() + 2).collect();
    (model, ids, mask, shapes, real)
}

/// Index of the largest logit.
fn best(v: &[f32]) -> usize {
    (0..v.len()).max_by(|&x, &y| v[x].total_cmp(&v[y])).unwrap()
}

/// The model's logits `[batch, seq, labels]` on one batch, inference mode.
fn inference_logits(
    model: &stance::model::checkpoint::TokenClassifier,
    ids: &candle_core::Tensor,
    mask: &candle_core::Tensor,
    shapes: Option<&candle_core::Tensor>,
) -> Vec<Vec<Vec<f32>>> {
    use stance::model::encoder::Mode;
    model
        .forward(ids, mask, shapes, &mut Mode::Infer)
        .unwrap()
        .to_vec3::<f32>()
        .unwrap()
}

/// The fused inference path (one query-key-value product; bias, GELU, residual and
/// masked softmax in place, polynomial erf and exp) against the plain one, on the
/// shipped entity model and a batch padded to its longest sentence.
#[test]
fn fused_inference_gives_the_plain_paths_logits() {
    let (mut model, ids, mask, shapes, real) = shipped_model_and_batch();
    let shapes = model.casing.then_some(&shapes);
    let fused = inference_logits(&model, &ids, &mask, shapes);
    model.encoder.unfuse();
    let plain = inference_logits(&model, &ids, &mask, shapes);
    let mut worst = 0f32;
    for (i, (f_row, p_row)) in fused.iter().zip(&plain).enumerate() {
        // Only real tokens: padding rows are never read.
        for (f, p) in f_row.iter().zip(p_row).take(real[i]) {
            for (a, b) in f.iter().zip(p) {
                worst = worst.max((a - b).abs());
            }
            assert_eq!(best(f), best(p), "the same label wins");
        }
    }
    assert!(worst < 1e-4, "fused and plain logits differ by {worst}");
}

/// `--precision int8` on the shipped entity model: the same labels as f32 on nearly every token
/// where the CPU has AVX-512 VNNI; a clear error where it has none.
#[test]
fn int8_inference_keeps_the_labels_or_says_why_it_cannot_run() {
    let (mut model, ids, mask, shapes, real) = shipped_model_and_batch();
    if !stance::model::int8::available() {
        let err = model.encoder.quantize_int8().unwrap_err().to_string();
        assert!(err.contains("AVX-512 VNNI"), "{err}");
        return;
    }
    let shapes = model.casing.then_some(&shapes);
    let f32_logits = inference_logits(&model, &ids, &mask, shapes);
    model.encoder.quantize_int8().unwrap();
    let int8_logits = inference_logits(&model, &ids, &mask, shapes);
    let (mut same, mut all, mut moved) = (0, 0, false);
    for (i, (a, b)) in f32_logits.iter().zip(&int8_logits).enumerate() {
        for (x, y) in a.iter().zip(b).take(real[i]) {
            all += 1;
            same += usize::from(best(x) == best(y));
            moved |= x != y;
        }
    }
    assert!(moved, "the int8 path ran (its logits differ from f32)");
    assert!(
        same * 100 >= all * 95,
        "{same} of {all} tokens keep their label"
    );
}
