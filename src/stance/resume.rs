//! A stopped actor-classifier run: where it was and the optimizer's state, so that
//! `stance train stance --resume` goes on from there. A full epoch over all of the
//! training data takes longer than many batch jobs may run; `--max-minutes` stops it
//! at a step boundary and a later run ends where an uninterrupted one would have.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::optim::AdamW;
use crate::model::train::{resume_from, save_resumable};

/// The directory of a run's resumable state, inside its output directory.
pub const RESUME_DIR: &str = "resume";

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
        let state = resume_from(
            dir,
            optimizer,
            |s: &ActorRunState| s.step,
            |s| {
                if s.seed != expected.seed {
                    Err(format!(
                        "the run was started with --seed {}; resume it with the same seed",
                        s.seed
                    ))
                } else if s.steps != expected.steps {
                    Err(format!(
                        "the stopped run had {} steps and this one has {}: give it the same data and options",
                        s.steps, expected.steps
                    ))
                } else {
                    Ok(())
                }
            },
        )?;
        Ok(state)
    }

    /// Writes the optimizer and the state (see [`save_resumable`]).
    pub fn save(&self, dir: &Path, optimizer: &AdamW) -> Result<()> {
        Ok(save_resumable(dir, self, optimizer)?)
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
