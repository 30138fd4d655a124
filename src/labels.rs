//! Worker labels (`WORKER_LABELS`) and the labels an environment requires
//! (`required_labels`): what a valid label is.

/// Most labels a worker or an environment may have.
pub const MAX_LABELS: usize = 32;

/// Checks a label: 1–64 characters of `a-z 0-9 . _ -`.
pub fn valid(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 64
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// Checks a set of labels; the error says what is wrong with which.
pub fn check(labels: &[String]) -> Result<(), String> {
    if labels.len() > MAX_LABELS {
        return Err(format!("{} labels; at most {MAX_LABELS}", labels.len()));
    }
    match labels.iter().find(|l| !valid(l)) {
        Some(bad) => Err(format!(
            "{bad:?} is not a label: use 1 to 64 characters of a-z, 0-9, `.`, `_` and `-`"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn labels_are_short_lowercase_words() {
        assert!(super::valid("gpu"));
        assert!(super::valid("arm64.big_mem-2"));
        for bad in ["", "GPU", "a b", "x,y", &"a".repeat(65)] {
            assert!(!super::valid(bad), "{bad:?}");
        }
        assert!(super::check(&vec!["a".into(); 33]).is_err());
    }
}
