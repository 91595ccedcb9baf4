//! Averaging the weights of several runs of one model (checkpoint averaging, a
//! "model soup"). Runs that continue one another from one start lie close in
//! weight space, and their mean often generalises better than any one of them;
//! averaging costs no training, only a refit of the thresholds afterwards.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use super::checkpoint::save_tensors;
use super::ModelError;

/// The extension of the files averaged; every other file is copied from the first source.
const WEIGHTS_EXTENSION: &str = "safetensors";

/// The key under which a model's JSON config lists its training data; the averaged
/// model learned from every source's, so it gets the union.
const TRAINED_ON_KEY: &str = "trained_on";

/// Writes into `dst` the element-wise mean of the `.safetensors` files of the
/// model directories `srcs` (at the top level and one directory down, so a stance
/// model's `targets.safetensors` and `actors/model.safetensors` both count).
/// Every other file (configs, tokenizer, thresholds) is copied from the first
/// source, except that a JSON file's `trained_on` list becomes the union of the
/// sources' lists. Returns the weight files averaged, relative to `dst`.
///
/// The sources must hold the same weight files with the same tensor names and
/// shapes; a mismatch names the file and the tensor. Each tensor keeps the
/// dtype it has in the first source and is summed in f32.
///
/// `weights` mixes the sources in those proportions (normalised to sum to one);
/// `None` weighs them equally.
pub fn average_dirs(
    srcs: &[PathBuf],
    weights: Option<&[f64]>,
    dst: &Path,
) -> Result<Vec<PathBuf>, ModelError> {
    let Some(first) = srcs.first() else {
        return Err(weights_error(dst, "no model directories to average"));
    };
    let mix = mixing(srcs.len(), weights).map_err(|message| weights_error(dst, message))?;
    let mut averaged = Vec::new();
    for rel in files_under(first)? {
        let target = dst.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| weights_error(parent, e))?;
        }
        let src = first.join(&rel);
        if rel.extension().is_some_and(|e| e == WEIGHTS_EXTENSION) {
            let paths: Vec<PathBuf> = srcs.iter().map(|s| s.join(&rel)).collect();
            let mean = mean_of(&paths, &mix)?;
            save_tensors(&mean, &target, &src).map_err(|e| weights_error(&target, e))?;
            averaged.push(rel);
        } else if rel.extension().is_some_and(|e| e == "json") {
            let paths: Vec<PathBuf> = srcs.iter().map(|s| s.join(&rel)).collect();
            std::fs::write(&target, with_all_training_data(&paths)?)
                .map_err(|e| weights_error(&target, e))?;
        } else {
            std::fs::copy(&src, &target).map_err(|e| weights_error(&src, e))?;
        }
    }
    if averaged.is_empty() {
        return Err(ModelError::NoWeights { dir: first.clone() });
    }
    Ok(averaged)
}

/// The first JSON file's text, with its `trained_on` list (if it has one) the union,
/// in order, of the lists of all of them.
fn with_all_training_data(paths: &[PathBuf]) -> Result<String, ModelError> {
    let text = std::fs::read_to_string(&paths[0]).map_err(|e| weights_error(&paths[0], e))?;
    let parsed: Result<serde_json::Value, _> = serde_json::from_str(&text);
    let Ok(mut first) = parsed else {
        return Ok(text);
    };
    if !first.get(TRAINED_ON_KEY).is_some_and(|v| v.is_array()) {
        return Ok(text);
    }
    let mut union: Vec<serde_json::Value> = first[TRAINED_ON_KEY]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for path in &paths[1..] {
        let Ok(other) = std::fs::read_to_string(path) else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&other) else {
            continue;
        };
        for entry in value[TRAINED_ON_KEY].as_array().into_iter().flatten() {
            if !union.contains(entry) {
                union.push(entry.clone());
            }
        }
    }
    first[TRAINED_ON_KEY] = serde_json::Value::Array(union);
    Ok(serde_json::to_string_pretty(&first).expect("JSON serialises") + "\n")
}

/// The files of `dir` and of its direct subdirectories, relative to `dir`, sorted.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let list = |d: &Path| -> Result<Vec<PathBuf>, ModelError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(d).map_err(|e| weights_error(d, e))? {
            out.push(entry.map_err(|e| weights_error(d, e))?.path());
        }
        Ok(out)
    };
    let mut files = Vec::new();
    for path in list(dir)? {
        if path.is_dir() {
            files.extend(list(&path)?.into_iter().filter(|p| p.is_file()));
        } else if path.is_file() {
            files.push(path);
        }
    }
    let mut rel: Vec<PathBuf> = files
        .iter()
        .filter_map(|p| p.strip_prefix(dir).ok().map(Path::to_path_buf))
        .collect();
    rel.sort();
    Ok(rel)
}

/// The proportions of `n` sources: `weights` normalised, or equal shares.
fn mixing(n: usize, weights: Option<&[f64]>) -> Result<Vec<f64>, String> {
    let Some(w) = weights else {
        return Ok(vec![1.0 / n as f64; n]);
    };
    if w.len() != n {
        return Err(format!("{} weights for {n} models", w.len()));
    }
    let total: f64 = w.iter().sum();
    if w.iter().any(|x| !x.is_finite() || *x < 0.0) || total <= 0.0 {
        return Err(format!(
            "weights must be non-negative with a positive sum, not {w:?}"
        ));
    }
    Ok(w.iter().map(|x| x / total).collect())
}

/// The weighted mean (`mix` sums to one) of the tensors of `paths`, which must
/// agree in names and shapes.
fn mean_of(paths: &[PathBuf], mix: &[f64]) -> Result<HashMap<String, Tensor>, ModelError> {
    let load = |p: &PathBuf| {
        if !p.is_file() {
            let message = "missing: every model averaged must have the same weight files";
            return Err(weights_error(p, message));
        }
        candle_core::safetensors::load(p, &Device::Cpu).map_err(|e| weights_error(p, e))
    };
    let first = load(&paths[0])?;
    let mut sums: HashMap<String, Tensor> = HashMap::new();
    for (name, t) in &first {
        let sum = if t.dtype().is_float() {
            t.to_dtype(DType::F32).and_then(|t| t.affine(mix[0], 0.0))
        } else {
            Ok(t.clone())
        };
        sums.insert(name.clone(), sum.map_err(|e| weights_error(&paths[0], e))?);
    }
    for (path, &share) in paths[1..].iter().zip(&mix[1..]) {
        let other = load(path)?;
        if other.len() != first.len() {
            let message = format!(
                "{} tensors where {} has {}",
                other.len(),
                paths[0].display(),
                first.len()
            );
            return Err(weights_error(path, message));
        }
        for (name, sum) in sums.iter_mut() {
            let Some(t) = other.get(name) else {
                let message = format!("no tensor {name}, which {} has", paths[0].display());
                return Err(weights_error(path, message));
            };
            if t.shape() != sum.shape() {
                let message = format!(
                    "tensor {name} has shape {:?} where {} has {:?}",
                    t.dims(),
                    paths[0].display(),
                    sum.dims()
                );
                return Err(weights_error(path, message));
            }
            if sum.dtype().is_float() {
                let added = t
                    .to_dtype(DType::F32)
                    .and_then(|t| t.affine(share, 0.0))
                    .and_then(|t| sum.add(&t));
                *sum = added.map_err(|e| weights_error(path, e))?;
            }
        }
    }
    let mut mean = HashMap::new();
    for (name, sum) in sums {
        let dtype = first[&name].dtype();
        let t = if dtype.is_float() {
            sum.to_dtype(dtype)
        } else {
            Ok(sum)
        };
        mean.insert(name, t.map_err(|e| weights_error(&paths[0], e))?);
    }
    Ok(mean)
}

/// A failure reading or writing the weight file (or directory) `path`.
fn weights_error(path: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::Weights {
        path: path.into(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, tensors: &[(&str, Tensor)]) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let map: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(k, t)| (k.to_string(), t.clone()))
            .collect();
        candle_core::safetensors::save(&map, path).unwrap();
    }

    fn values(path: &Path, name: &str) -> (Vec<f32>, DType) {
        let t = &candle_core::safetensors::load(path, &Device::Cpu).unwrap()[name];
        let v = t.to_dtype(DType::F32).unwrap().flatten_all().unwrap();
        (v.to_vec1::<f32>().unwrap(), t.dtype())
    }

    fn tensor(v: &[f32], dtype: DType) -> Tensor {
        Tensor::new(v, &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    }

    #[test]
    fn averages_every_weight_file_and_copies_the_rest_from_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, c, out) = (
            tmp.path().join("a"),
            tmp.path().join("b"),
            tmp.path().join("c"),
            tmp.path().join("out"),
        );
        for (dir, x, note) in [(&a, 1.0, "first"), (&b, 2.0, "second"), (&c, 6.0, "third")] {
            write(
                dir,
                "actors/model.safetensors",
                &[("w", tensor(&[x, -x], DType::F16))],
            );
            write(
                dir,
                "targets.safetensors",
                &[("h", tensor(&[x], DType::F32))],
            );
            std::fs::write(
                dir.join("stance.json"),
                format!("{{\"note\": \"{note}\", \"trained_on\": [\"shared\", \"{note}\"]}}"),
            )
            .unwrap();
            std::fs::write(dir.join("actors/config.json"), note).unwrap();
        }
        let done = average_dirs(&[a.clone(), b.clone(), c.clone()], None, &out).unwrap();
        assert_eq!(
            done,
            vec![
                PathBuf::from("actors/model.safetensors"),
                PathBuf::from("targets.safetensors")
            ]
        );
        assert_eq!(
            values(&out.join("actors/model.safetensors"), "w"),
            (vec![3.0, -3.0], DType::F16)
        );
        assert_eq!(
            values(&out.join("targets.safetensors"), "h"),
            (vec![3.0], DType::F32)
        );
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("stance.json")).unwrap())
                .unwrap();
        assert_eq!(config["note"], "first");
        assert_eq!(
            config["trained_on"],
            serde_json::json!(["shared", "first", "second", "third"])
        );
        assert_eq!(
            std::fs::read_to_string(out.join("actors/config.json")).unwrap(),
            "first"
        );
        assert!(!out.join("actors/model.safetensors.partial").exists());
        // Weighted: 1*1 + 1*2 + 2*6 over 4.
        average_dirs(
            &[a.clone(), b.clone(), c.clone()],
            Some(&[1.0, 1.0, 2.0]),
            &out,
        )
        .unwrap();
        assert_eq!(values(&out.join("targets.safetensors"), "h").0, vec![3.75]);
        for bad in [&[1.0, 1.0][..], &[1.0, -1.0, 1.0], &[0.0, 0.0, 0.0]] {
            let e = average_dirs(&[a.clone(), b.clone(), c.clone()], Some(bad), &out);
            assert!(e.is_err(), "{bad:?}");
        }
    }

    #[test]
    fn models_that_disagree_are_refused_with_the_file_and_the_tensor() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, out) = (
            tmp.path().join("a"),
            tmp.path().join("b"),
            tmp.path().join("out"),
        );
        write(
            &a,
            "model.safetensors",
            &[("w", tensor(&[1.0, 2.0], DType::F32))],
        );
        write(
            &b,
            "model.safetensors",
            &[("w", tensor(&[1.0], DType::F32))],
        );
        let e = average_dirs(&[a.clone(), b.clone()], None, &out).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("b/model.safetensors") && text.contains("tensor w has shape [1]"),
            "{text}"
        );
        write(
            &b,
            "model.safetensors",
            &[("v", tensor(&[1.0, 2.0], DType::F32))],
        );
        let text = average_dirs(&[a.clone(), b.clone()], None, &out)
            .unwrap_err()
            .to_string();
        assert!(text.contains("no tensor w"), "{text}");
        std::fs::remove_file(b.join("model.safetensors")).unwrap();
        let text = average_dirs(&[a, b], None, &out).unwrap_err().to_string();
        assert!(text.contains("missing"), "{text}");
    }

    #[test]
    fn a_directory_without_weights_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::write(a.join("config.json"), "{}").unwrap();
        let e = average_dirs(&[a.clone(), a], None, &tmp.path().join("out")).unwrap_err();
        assert!(matches!(e, ModelError::NoWeights { .. }), "{e}");
    }
}
