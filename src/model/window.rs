//! Overlapping windows over texts longer than the model's maximum positions.
//!
//! Each token is read from the window where it sits most central, so it sees
//! as much context on both sides as any window gives it; nothing is truncated.

use std::ops::Range;

/// Windows of at most `size` tokens over `n` tokens, consecutive windows
/// overlapping by `stride` tokens (clamped below `size`).
pub fn plan(n: usize, size: usize, stride: usize) -> Vec<Range<usize>> {
    let size = size.max(1);
    if n <= size {
        return std::iter::once(0..n).collect();
    }
    let step = size - stride.min(size - 1);
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let end = (start + size).min(n);
        out.push(end.saturating_sub(size)..end);
        if end == n {
            break;
        }
        start += step;
    }
    out
}

/// For each token, the index of the window where it is most central (the first
/// such window on a tie). Windows come from [`plan`]: in order, so the windows
/// that hold token `i` are a short run that moves forward with `i` (linear time).
pub fn owners(n: usize, windows: &[Range<usize>]) -> Vec<usize> {
    let mut out = Vec::with_capacity(n);
    let mut first = 0;
    for i in 0..n {
        while windows[first].end <= i {
            first += 1;
        }
        let best = windows[first..]
            .iter()
            .take_while(|w| w.start <= i)
            .enumerate()
            .max_by_key(|(k, w)| ((i - w.start).min(w.end - 1 - i), usize::MAX - k))
            .map(|(k, _)| first + k)
            .expect("windows cover every token");
        out.push(best);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_everything_with_the_given_overlap() {
        let w = plan(10, 4, 2);
        assert_eq!(w, vec![0..4, 2..6, 4..8, 6..10]);
        let w = plan(11, 4, 1);
        assert_eq!(w, vec![0..4, 3..7, 6..10, 7..11]);
        assert_eq!(plan(3, 4, 2), vec![0..3]);
        assert_eq!(plan(0, 4, 2), vec![0..0]);
    }

    #[test]
    fn tokens_come_from_their_most_central_window() {
        let w = plan(10, 4, 2);
        let o = owners(10, &w);
        // Token 3 sits at offset 3 of window 0 (margin 0) and offset 1 of window 1 (margin 1).
        assert_eq!(o[3], 1);
        assert_eq!(o[0], 0);
        assert_eq!(o[9], 3);
        for (i, &k) in o.iter().enumerate() {
            assert!(w[k].contains(&i));
        }
    }
}
