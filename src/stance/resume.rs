//! A stopped actor-classifier run: where it was and the optimizer's state, so that
//! `stance train stance --resume` goes on from there. A full epoch over all of the
//! training data takes longer than many batch jobs may run; `--max-minutes` stops it
//! at a step boundary and a later run ends where an uninterrupted one would have.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, StanceError};
use crate::model::optim::AdamW;

/// The directory of a run's resumable state, inside its output directory.
pub const RESUME_DIR: &str = "resume";
const STATE_FILE: &str = "state.json";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// Where the actor classifier's loop stands; written with the optimizer's moments and
/// the weights (which [`AdamW::save`] includes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorRunState {
    pub epoch: usize,
    /// Batches of `epoch` already taken.
    pub batch_in_epoch: usize,
    pub step: usize,
    /// Steps of the whole run: a resumed run over other data or options would differ.
    pub steps: usize,
    /// Best held-out micro F1 of the epochs so far (`None` before the first ends).
    pub best: Option<f64>,
    pub loss_sum: f64,
    pub minutes: f64,
    pub seed: u64,
}

impl ActorRunState {
    pub fn new(steps: usize, seed: u64) -> ActorRunState {
        ActorRunState {
            epoch: 0,
            batch_in_epoch: 0,
            step: 0,
            steps,
            best: None,
            loss_sum: 0.0,
            minutes: 0.0,
            seed,
        }
    }

    /// Reads the state in `dir` and loads the optimizer (weights included), after
    /// checking that the run it belongs to is the one being asked for.
    pub fn resume(dir: &Path, expected: &ActorRunState, optimizer: &mut AdamW) -> Result<Self> {
        let path = dir.join(STATE_FILE);
        let cannot = |message: String| {
            StanceError::Config(format!("{}: cannot resume: {message}", path.display()))
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            cannot(format!(
                "{e} (no stopped run here; start one with --max-minutes)"
            ))
        })?;
        let state: ActorRunState =
            serde_json::from_str(&text).map_err(|e| cannot(e.to_string()))?;
        if state.seed != expected.seed {
            return Err(cannot(format!(
                "the run was started with --seed {}; resume it with the same seed",
                state.seed
            )));
        }
        if state.steps != expected.steps {
            return Err(cannot(format!(
                "the stopped run had {} steps and this one has {}: give it the same data and options",
                state.steps, expected.steps
            )));
        }
        optimizer
            .load(&dir.join(OPTIMIZER_FILE), state.step)
            .map_err(|e| cannot(e.to_string()))?;
        Ok(state)
    }

    /// Writes the optimizer, then the state, each through a temporary file renamed into
    /// place, so a run killed while saving leaves a checkpoint that reads back.
    pub fn save(&self, dir: &Path, optimizer: &AdamW) -> Result<()> {
        let write = |path: PathBuf| {
            move |source: std::io::Error| StanceError::Write {
                path: path.clone(),
                source,
            }
        };
        std::fs::create_dir_all(dir).map_err(write(dir.to_path_buf()))?;
        let partial = dir.join(format!("{OPTIMIZER_FILE}.partial"));
        optimizer
            .save(&partial)
            .map_err(|e| StanceError::Config(format!("{}: cannot save: {e}", partial.display())))?;
        let final_path = dir.join(OPTIMIZER_FILE);
        std::fs::rename(&partial, &final_path).map_err(write(final_path))?;
        let text = serde_json::to_string_pretty(self).expect("state serialises");
        let partial = dir.join(format!("{STATE_FILE}.partial"));
        std::fs::write(&partial, text).map_err(write(partial.clone()))?;
        let state_path = dir.join(STATE_FILE);
        std::fs::rename(&partial, &state_path).map_err(write(state_path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_reads_back_as_written() {
        let state = ActorRunState {
            epoch: 1,
            batch_in_epoch: 7,
            step: 20,
            steps: 40,
            best: Some(0.5),
            loss_sum: 1.25,
            minutes: 3.0,
            seed: 9,
        };
        let text = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<ActorRunState>(&text).unwrap(), state);
    }
}
