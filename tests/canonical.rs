//! The canonical example: every `must` item of aleppo.gold.json is found and
//! no `no_stance` actor acts, checked the way ../shared/tools/doc_check.py checks.

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::Value;

/// Names a statement's actor goes by: its text, and its actor's name, aliases and mentions.
fn names(doc: &Value, st: &Value) -> HashSet<String> {
    let mut out = HashSet::new();
    out.insert(st["actor"]["text"].as_str().unwrap().to_lowercase());
    let id = st["actor"]["actor_id"].as_str().unwrap();
    let actor = doc["actors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .expect("actor_id refers to an actor");
    out.insert(actor["name"].as_str().unwrap().to_lowercase());
    for a in actor["aliases"].as_array().unwrap() {
        out.insert(a.as_str().unwrap().to_lowercase());
    }
    for m in actor["mentions"].as_array().unwrap() {
        out.insert(m["text"].as_str().unwrap().to_lowercase());
    }
    out
}

fn check(backend: &str) {
    let (article, gold) = (
        shared("examples/aleppo.txt"),
        shared("examples/aleppo.gold.json"),
    );
    let out = succeed(
        stance()
            .args(["classify", "--backend", backend, "--format", "json"])
            .arg(&article),
    );
    let doc = json_of(&out.stdout);
    let gold: Value = serde_json::from_str(&std::fs::read_to_string(gold).unwrap()).unwrap();
    let statements = doc["statements"].as_array().unwrap();
    let mut missing = Vec::new();
    for item in gold["must"].as_array().unwrap() {
        let mut want: HashSet<String> = item["aliases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_lowercase())
            .collect();
        want.insert(item["actor"].as_str().unwrap().to_lowercase());
        let found = statements
            .iter()
            .any(|st| st["label"] == item["stance"] && !names(&doc, st).is_disjoint(&want));
        if !found {
            missing.push(format!("{} {}", item["actor"], item["stance"]));
        }
    }
    assert!(
        missing.is_empty(),
        "missing must items: {missing:?}\n{}",
        serde_json::to_string_pretty(statements).unwrap()
    );
    let forbidden: HashSet<String> = gold["no_stance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_lowercase())
        .collect();
    for st in statements {
        let actor = st["actor"]["text"].as_str().unwrap().to_lowercase();
        assert!(
            !forbidden.contains(&actor),
            "forbidden actor {actor} has a {} statement",
            st["label"]
        );
    }
}

#[test]
#[cfg_attr(
    no_shared,
    ignore = "needs ../shared beside the repository (after adding it: touch build.rs)"
)]
fn rules_backend_meets_the_canonical_gold() {
    check("rules");
}

#[test]
#[cfg_attr(
    no_shared,
    ignore = "needs ../shared beside the repository (after adding it: touch build.rs)"
)]
fn default_backend_meets_the_canonical_gold() {
    check("auto");
}

#[test]
#[cfg_attr(
    no_shared,
    ignore = "needs ../shared beside the repository (after adding it: touch build.rs)"
)]
fn canonical_entities_are_found_with_exact_offsets() {
    let (article, gold) = (
        shared("examples/aleppo.txt"),
        shared("examples/aleppo.gold.json"),
    );
    let text = std::fs::read_to_string(&article).unwrap();
    let out = stance()
        .args(["classify", "--backend", "rules", "--format", "json"])
        .arg(&article)
        .output()
        .unwrap();
    let doc = json_of(&out.stdout);
    let gold: Value = serde_json::from_str(&std::fs::read_to_string(gold).unwrap()).unwrap();
    let found: HashSet<(String, String)> = doc["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let (s, t) = (e["start"].as_u64().unwrap(), e["end"].as_u64().unwrap());
            assert_eq!(
                chars(&text, s, t),
                e["text"].as_str().unwrap(),
                "entity offsets give back its text"
            );
            (
                e["text"].as_str().unwrap().to_string(),
                e["label"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let wanted: Vec<(String, String)> = gold["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["text"].as_str().unwrap().to_string(),
                e["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let missing: Vec<_> = wanted.iter().filter(|w| !found.contains(*w)).collect();
    assert!(missing.is_empty(), "entities not found: {missing:?}");
}
