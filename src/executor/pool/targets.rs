//! How the pool's slots are shared between the runner image and the
//! projects' dependency images.

/// How many warm containers each image gets out of `size`: one each to the
/// base image and the project images (most recent first) while slots last,
/// then round again in the same order.
pub fn targets(size: usize, base: &str, recent: &[String]) -> Vec<(String, usize)> {
    let mut images: Vec<(String, usize)> = std::iter::once(base.to_owned())
        .chain(recent.iter().filter(|i| *i != base).cloned())
        .take(size)
        .map(|image| (image, 0))
        .collect();
    if images.is_empty() {
        return images;
    }
    let count = images.len();
    for slot in 0..size {
        images[slot % count].1 += 1;
    }
    images
}

/// Image names from string literals, for the pool's tests.
#[cfg(test)]
pub(super) fn names(recent: &[&str]) -> Vec<String> {
    recent.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_image_always_has_a_share_and_projects_come_by_recency() {
        assert_eq!(targets(0, "base", &names(&["a"])), vec![]);
        assert_eq!(targets(1, "base", &names(&["a"])), vec![("base".into(), 1)]);
        assert_eq!(
            targets(2, "base", &names(&["a", "b"])),
            vec![("base".into(), 1), ("a".into(), 1)]
        );
        assert_eq!(
            targets(5, "base", &names(&["a", "b"])),
            vec![("base".into(), 2), ("a".into(), 2), ("b".into(), 1)]
        );
        assert_eq!(targets(3, "base", &[]), vec![("base".into(), 3)]);
    }
}
