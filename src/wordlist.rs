//! Word lists kept as data files (`data/lexicon/*.txt`) rather than in code: one entry
//! a line, blank lines and lines starting with `#` skipped.

/// The entries of a word list, trimmed.
pub fn entries(data: &str) -> impl Iterator<Item = &str> {
    data.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let list = "# a comment\nmr\n\n  sens  \n";
        assert_eq!(super::entries(list).collect::<Vec<_>>(), ["mr", "sens"]);
    }
}
