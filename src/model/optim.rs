//! AdamW with warm-up and linear decay, global-norm gradient clipping, and a
//! state that can be saved and loaded so a long run can resume exactly.
//!
//! candle-nn's `AdamW` keeps its moments private (so a run cannot resume) and
//! updates through a dozen tensor ops per parameter; this one keeps parameters
//! and moments as flat vectors and updates them in one fused pass, in parallel.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Result, Tensor, Var};

/// One trainable tensor with its AdamW state.
pub struct Param {
    pub name: String,
    pub var: Var,
    value: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    /// Weight decay applies to weight matrices, not to biases and LayerNorm parameters.
    decay: bool,
    /// Multiplier of the learning rate (a fresh head learns faster than a pretrained encoder).
    pub lr_scale: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Largest global gradient norm; larger gradients are scaled down to it.
    pub clip: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 5e-5,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            clip: 1.0,
        }
    }
}

pub struct AdamW {
    pub params: Vec<Param>,
    pub config: AdamWConfig,
    /// Updates taken so far.
    pub step: usize,
}

/// Learning-rate factor: linear warm-up to 1 over `warmup` steps, then linear decay to 0 at `total`.
pub fn schedule(step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        (step + 1) as f64 / warmup.max(1) as f64
    } else {
        let rest = total.saturating_sub(warmup).max(1);
        (1.0 - (step - warmup) as f64 / rest as f64).max(0.0)
    }
}

fn no_decay(name: &str) -> bool {
    name.ends_with(".bias") || name.contains("LayerNorm") || name.contains("layer_norm")
}

impl AdamW {
    pub fn new(vars: Vec<(String, Var)>, config: AdamWConfig) -> Result<AdamW> {
        let params = vars
            .into_iter()
            .map(|(name, var)| {
                let value = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
                let n = value.len();
                Ok(Param {
                    decay: !no_decay(&name),
                    lr_scale: 1.0,
                    name,
                    var,
                    value,
                    m: vec![0.0; n],
                    v: vec![0.0; n],
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW {
            params,
            config,
            step: 0,
        })
    }

    /// Takes one step with `lr_factor` times the base learning rate. `grads`
    /// are in parameter order (`None`: no gradient this step). Returns the
    /// global gradient norm before clipping.
    pub fn step(
        &mut self,
        grads: &[Option<Tensor>],
        lr_factor: f64,
        threads: usize,
    ) -> Result<f64> {
        let flat: Vec<Option<Vec<f32>>> = grads
            .iter()
            .map(|g| {
                g.as_ref()
                    .map(|g| g.flatten_all()?.to_vec1::<f32>())
                    .transpose()
            })
            .collect::<Result<_>>()?;
        let norm = flat
            .iter()
            .flatten()
            .map(|g| g.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>())
            .sum::<f64>()
            .sqrt();
        let scale = if self.config.clip > 0.0 && norm > self.config.clip {
            self.config.clip / norm
        } else {
            1.0
        };
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let lr = c.lr * lr_factor;
        let (bc1, bc2) = (1.0 - c.beta1.powi(t), 1.0 - c.beta2.powi(t));
        let update = |p: &mut Param, g: &[f32]| {
            let decay = if p.decay {
                (lr * c.weight_decay) as f32
            } else {
                0.0
            };
            let (b1, b2, eps) = (c.beta1 as f32, c.beta2 as f32, c.eps as f32);
            let (step_size, bc2_sqrt) = ((lr / bc1) as f32, (bc2.sqrt()) as f32);
            let state = p.value.iter_mut().zip(p.m.iter_mut()).zip(p.v.iter_mut());
            for (((value, m), v), g) in state.zip(g) {
                let gi = g * scale as f32;
                *m = b1 * *m + (1.0 - b1) * gi;
                *v = b2 * *v + (1.0 - b2) * gi * gi;
                let denom = v.sqrt() / bc2_sqrt + eps;
                *value -= decay * *value + step_size * *m / denom;
            }
        };
        // Split the parameters into `threads` groups of about equal size.
        let mut jobs: Vec<Vec<(&mut Param, &[f32])>> =
            (0..threads.max(1)).map(|_| Vec::new()).collect();
        let mut loads = vec![0usize; jobs.len()];
        let mut pairs: Vec<(&mut Param, &[f32])> = self
            .params
            .iter_mut()
            .zip(&flat)
            .filter_map(|(p, g)| g.as_deref().map(|g| (p, g)))
            .collect();
        pairs.sort_by_key(|(p, _)| std::cmp::Reverse(p.value.len()));
        for pair in pairs {
            let k = (0..loads.len()).min_by_key(|&k| loads[k]).expect("one job");
            loads[k] += pair.0.value.len();
            jobs[k].push(pair);
        }
        std::thread::scope(|s| {
            for job in jobs {
                s.spawn(move || {
                    for (p, g) in job {
                        update(p, g);
                    }
                });
            }
        });
        for (p, g) in self.params.iter().zip(&flat) {
            if g.is_some() {
                let t = Tensor::from_slice(&p.value, p.var.shape(), p.var.device())?;
                p.var.set(&t)?;
            }
        }
        Ok(norm)
    }

    /// Scales the learning rate of the parameters whose name starts with `prefix`.
    pub fn scale_lr(&mut self, prefix: &str, factor: f64) {
        for p in self
            .params
            .iter_mut()
            .filter(|p| p.name.starts_with(prefix))
        {
            p.lr_scale = factor;
        }
    }

    /// Saves moments (and parameter values) to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut map: HashMap<String, Tensor> = HashMap::new();
        for p in &self.params {
            let n = p.value.len();
            map.insert(
                format!("value.{}", p.name),
                Tensor::from_slice(&p.value, n, &Device::Cpu)?,
            );
            map.insert(
                format!("m.{}", p.name),
                Tensor::from_slice(&p.m, n, &Device::Cpu)?,
            );
            map.insert(
                format!("v.{}", p.name),
                Tensor::from_slice(&p.v, n, &Device::Cpu)?,
            );
        }
        candle_core::safetensors::save(&map, path)
    }

    /// Restores what [`AdamW::save`] wrote (parameters included) and the step count.
    pub fn load(&mut self, path: &Path, step: usize) -> Result<()> {
        let map = candle_core::safetensors::load(path, &Device::Cpu)?;
        let get = |k: String, n: usize| -> Result<Vec<f32>> {
            let t = map
                .get(&k)
                .ok_or_else(|| candle_core::Error::Msg(format!("{}: no {k}", path.display())))?;
            let v = t.to_vec1::<f32>()?;
            if v.len() != n {
                candle_core::bail!(
                    "{}: {k} has {} values, expected {n}",
                    path.display(),
                    v.len()
                );
            }
            Ok(v)
        };
        for p in &mut self.params {
            let n = p.value.len();
            p.value = get(format!("value.{}", p.name), n)?;
            p.m = get(format!("m.{}", p.name), n)?;
            p.v = get(format!("v.{}", p.name), n)?;
            p.var.set(&Tensor::from_slice(
                &p.value,
                p.var.shape(),
                p.var.device(),
            )?)?;
        }
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        assert!((schedule(0, 10, 100) - 0.1).abs() < 1e-12);
        assert!((schedule(9, 10, 100) - 1.0).abs() < 1e-12);
        assert!((schedule(10, 10, 100) - 1.0).abs() < 1e-12);
        assert!((schedule(55, 10, 100) - 0.5).abs() < 1e-12);
        assert_eq!(schedule(100, 10, 100), 0.0);
    }

    #[test]
    fn adamw_matches_the_reference_update_and_clips() {
        // One parameter, gradient 2: first AdamW step moves it by lr (m/sqrt(v) = 1), plus decay.
        let var = Var::from_slice(&[1.0f32, -1.0], 2, &Device::Cpu).unwrap();
        let config = AdamWConfig {
            lr: 0.1,
            clip: 0.0,
            ..Default::default()
        };
        let mut opt = AdamW::new(vec![("w".into(), var.clone())], config).unwrap();
        let g = Tensor::from_slice(&[2.0f32, -2.0], 2, &Device::Cpu).unwrap();
        let norm = opt.step(&[Some(g.clone())], 1.0, 2).unwrap();
        assert!((norm - 8f64.sqrt()).abs() < 1e-9);
        let v = var.as_tensor().to_vec1::<f32>().unwrap();
        // 1 - 0.1*0.01*1 - 0.1 = 0.899
        assert!((v[0] - 0.899).abs() < 1e-5, "{v:?}");
        assert!((v[1] + 0.899).abs() < 1e-5, "{v:?}");
        // Saved and loaded state continues identically.
        let dir = tempfile::tempdir().unwrap();
        opt.save(&dir.path().join("s.safetensors")).unwrap();
        let var2 = Var::from_slice(&[0.0f32, 0.0], 2, &Device::Cpu).unwrap();
        let mut opt2 = AdamW::new(vec![("w".into(), var2.clone())], config).unwrap();
        opt2.load(&dir.path().join("s.safetensors"), 1).unwrap();
        opt.step(&[Some(g.clone())], 0.5, 1).unwrap();
        opt2.step(&[Some(g)], 0.5, 1).unwrap();
        assert_eq!(
            var.as_tensor().to_vec1::<f32>().unwrap(),
            var2.as_tensor().to_vec1::<f32>().unwrap()
        );
    }
}
