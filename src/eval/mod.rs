//! Evaluation against labeled data.

pub mod ner;
pub mod stance;

use serde::Serialize;

/// Precision, recall, F1 (rounded as the reference scorer rounds) and the counts behind them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Scores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub tp: usize,
    pub fp: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl Scores {
    pub fn from_counts(tp: usize, fp: usize, fn_: usize) -> Scores {
        let (p, r, f) = prf(tp, fp, fn_);
        Scores {
            precision: round4(p),
            recall: round4(r),
            f1: round4(f),
            tp,
            fp,
            fn_,
        }
    }
}

/// Precision, recall and F1 from counts (0 when undefined, as the reference scorer does).
pub fn prf(tp: usize, fp: usize, fn_: usize) -> (f64, f64, f64) {
    let p = if tp + fp > 0 {
        tp as f64 / (tp + fp) as f64
    } else {
        0.0
    };
    let r = if tp + fn_ > 0 {
        tp as f64 / (tp + fn_) as f64
    } else {
        0.0
    };
    let f = if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    };
    (p, r, f)
}

/// Rounds to four decimals, like the reference scorer's output.
pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}
