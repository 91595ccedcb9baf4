//! Where a model comes from: a directory, a Hugging Face Hub id (through the
//! local cache, downloading when allowed), or the default shipped under `models/`.

use std::path::{Path, PathBuf};

use hf_hub::{Cache, Repo, RepoType};

use super::ModelError;

/// What the user named with `--model`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    Dir(PathBuf),
    /// `ORG/NAME[@REVISION]` on the Hugging Face Hub.
    Hub {
        repo: String,
        revision: String,
    },
}

impl ModelSpec {
    /// An existing path is a directory; otherwise `ORG/NAME[@REV]` is a Hub id.
    pub fn parse(spec: &str) -> ModelSpec {
        let path = Path::new(spec);
        let looks_like_path = path.exists()
            || spec.starts_with('.')
            || spec.starts_with('/')
            || spec.starts_with('~')
            || spec.matches('/').count() > 1
            || spec.contains('\\');
        if looks_like_path {
            return ModelSpec::Dir(path.to_path_buf());
        }
        let (repo, revision) = match spec.split_once('@') {
            Some((r, v)) => (r.to_string(), v.to_string()),
            None => (spec.to_string(), "main".to_string()),
        };
        ModelSpec::Hub { repo, revision }
    }
}

/// The Hub cache directory, as the Hugging Face libraries find it:
/// `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn hub_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(home) = std::env::var_os("HF_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join("hub");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache").join("huggingface").join("hub")
}

/// `HF_HUB_OFFLINE=1` (or true/yes/on): resolve from the cache only.
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| matches!(v.to_lowercase().as_str(), "1" | "true" | "yes" | "on"))
        .unwrap_or(false)
}

/// The directory holding the model's files.
pub fn resolve(spec: &ModelSpec) -> Result<PathBuf, ModelError> {
    match spec {
        ModelSpec::Dir(p) => Ok(p.clone()),
        ModelSpec::Hub { repo, revision } => resolve_hub(repo, revision),
    }
}

const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

fn cached(cache: &Cache, repo: &str, revision: &str, file: &str) -> Option<PathBuf> {
    let r = Repo::with_revision(repo.to_string(), RepoType::Model, revision.to_string());
    if let Some(p) = cache.repo(r.clone()).get(file) {
        return Some(p);
    }
    // A commit hash as revision names its snapshot directly.
    let snapshot = cache
        .path()
        .join(r.folder_name())
        .join("snapshots")
        .join(revision)
        .join(file);
    snapshot.is_file().then_some(snapshot)
}

fn resolve_hub(repo: &str, revision: &str) -> Result<PathBuf, ModelError> {
    let cache_dir = hub_cache_dir();
    let cache = Cache::new(cache_dir.clone());
    let hub_err = |message: String| ModelError::Hub {
        repo: format!("{repo}@{revision}"),
        message,
    };
    let from_cache = |file: &str| cached(&cache, repo, revision, file);
    let have_all = ["config.json", "tokenizer.json"]
        .iter()
        .all(|f| from_cache(f).is_some())
        && WEIGHT_FILES.iter().any(|f| from_cache(f).is_some());
    if have_all || offline() {
        let config = from_cache("config.json").ok_or_else(|| {
            hub_err(format!(
                "not in the local Hugging Face cache at {} (HF_HUB_OFFLINE is set, so nothing is downloaded)",
                cache_dir.display()
            ))
        })?;
        from_cache("tokenizer.json").ok_or_else(|| {
            hub_err(format!(
                "tokenizer.json is not in the local cache at {}",
                cache_dir.display()
            ))
        })?;
        if !WEIGHT_FILES.iter().any(|f| from_cache(f).is_some()) {
            return Err(hub_err(format!(
                "no weights in the local cache at {}",
                cache_dir.display()
            )));
        }
        return Ok(config
            .parent()
            .expect("a cached file has a snapshot directory")
            .to_path_buf());
    }
    let api = hf_hub::api::sync::ApiBuilder::from_cache(cache)
        .with_progress(true)
        .build()
        .map_err(|e| hub_err(e.to_string()))?;
    let remote = api.repo(Repo::with_revision(
        repo.to_string(),
        RepoType::Model,
        revision.to_string(),
    ));
    let config = remote
        .get("config.json")
        .map_err(|e| hub_err(format!("config.json: {e}")))?;
    remote
        .get("tokenizer.json")
        .map_err(|e| hub_err(format!("tokenizer.json: {e}")))?;
    let weights_ok = WEIGHT_FILES.iter().any(|f| remote.get(f).is_ok());
    if !weights_ok {
        return Err(hub_err(
            "has neither model.safetensors nor pytorch_model.bin".into(),
        ));
    }
    Ok(config
        .parent()
        .expect("a downloaded file has a snapshot directory")
        .to_path_buf())
}

/// Name of the default entity model's directory under `models/`.
pub const DEFAULT_NER: &str = "ner";

/// Directories searched for `models/`: `$STANCE_MODELS` alone when it is set;
/// otherwise `models/` beside the executable and above it (a clone's
/// `target/release/stance` finds the clone's `models/`), then in the current
/// directory. Nothing of the build machine is baked in.
pub fn models_dirs() -> Vec<PathBuf> {
    if let Some(d) = std::env::var_os("STANCE_MODELS").filter(|v| !v.is_empty()) {
        return vec![PathBuf::from(d)];
    }
    let mut dirs = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        for anc in exe.ancestors().skip(1).take(4) {
            dirs.push(anc.join("models"));
        }
    }
    dirs.push(PathBuf::from("models"));
    // The same directory reached two ways (`./models` is often the clone's) is searched once.
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|d| seen.insert(d.canonicalize().unwrap_or_else(|_| d.clone())));
    dirs
}

/// The default entity model, if one is installed.
pub fn default_model() -> Result<PathBuf, ModelError> {
    let dirs = models_dirs();
    dirs.iter()
        .map(|d| d.join(DEFAULT_NER))
        .find(|d| d.join("config.json").is_file())
        .ok_or_else(|| ModelError::NoDefault {
            looked: dirs
                .iter()
                .map(|d| d.join(DEFAULT_NER).display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The default stance model (`stance/` with a `stance.json` under a `models/`
/// directory), if one is installed.
pub fn default_stance() -> Option<PathBuf> {
    models_dirs()
        .into_iter()
        .map(|d| d.join("stance"))
        .find(|d| d.join("stance.json").is_file())
}

/// A model found on this machine, for `stance models`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalModel {
    pub name: String,
    pub path: PathBuf,
    pub default: bool,
}

/// A stance model found on this machine, for `stance models`.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalStanceModel {
    pub name: String,
    pub path: PathBuf,
    /// The one loaded when no `--stance-model` is given.
    pub default: bool,
    /// What its `stance.json` says it was trained on, or why it cannot be read.
    pub trained_on: Result<Vec<String>, String>,
}

/// Stance models (directories with a `stance.json`) under the `models/` directories,
/// each once, in search order and then by name.
pub fn list_stance_models() -> Vec<LocalStanceModel> {
    let default = default_stance().and_then(|d| d.canonicalize().ok());
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for dir in models_dirs() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("stance.json").is_file())
            .filter(|p| seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())))
            .collect();
        found.sort();
        for path in found {
            let trained_on = std::fs::read_to_string(path.join("stance.json"))
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    serde_json::from_str::<crate::stance::model::StanceConfig>(&t)
                        .map_err(|e| format!("stance.json does not parse: {e}"))
                })
                .map(|c| c.trained_on);
            out.push(LocalStanceModel {
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                default: default.is_some() && path.canonicalize().ok() == default,
                path,
                trained_on,
            });
        }
    }
    out
}

/// Models under the `models/` directories and in the Hub cache.
pub fn list_local() -> Vec<LocalModel> {
    let default = default_model().ok();
    let mut out: Vec<LocalModel> = Vec::new();
    for dir in models_dirs() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.join("config.json").is_file())
            .collect();
        found.sort();
        for p in found {
            if out.iter().any(|m| m.path == p) {
                continue;
            }
            out.push(LocalModel {
                name: p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                default: default.as_deref() == Some(p.as_path()),
                path: p,
            });
        }
    }
    let cache = hub_cache_dir();
    if let Ok(entries) = std::fs::read_dir(&cache) {
        let mut repos: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        repos.sort();
        for repo in repos {
            let Some(name) = repo
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("models--"))
            else {
                continue;
            };
            let Ok(snaps) = std::fs::read_dir(repo.join("snapshots")) else {
                continue;
            };
            for snap in snaps
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.join("config.json").is_file())
            {
                out.push(LocalModel {
                    name: format!(
                        "{}@{}",
                        name.replacen("--", "/", 1),
                        snap.file_name().unwrap_or_default().to_string_lossy()
                    ),
                    path: snap,
                    default: false,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_as_paths_or_hub_ids() {
        assert_eq!(
            ModelSpec::parse("dslim/bert-base-NER"),
            ModelSpec::Hub {
                repo: "dslim/bert-base-NER".into(),
                revision: "main".into()
            }
        );
        assert_eq!(
            ModelSpec::parse("dslim/bert-base-NER@v1.1"),
            ModelSpec::Hub {
                repo: "dslim/bert-base-NER".into(),
                revision: "v1.1".into()
            }
        );
        assert_eq!(
            ModelSpec::parse("./models/ner"),
            ModelSpec::Dir("./models/ner".into())
        );
        assert_eq!(
            ModelSpec::parse("/abs/models/ner"),
            ModelSpec::Dir("/abs/models/ner".into())
        );
    }
}
