//! Which finished test raised the memory the tests' process holds the most:
//! each test's recorded peak (runner-image/te_usage.py) above the highest
//! peak before it. Memory a test keeps (a module global, a cache) stays in
//! every later test's peak, so the test running at an OOM kill may be a
//! victim of one before it; the reason then names that one too.

/// The highest test peak so far, and the largest rise with its test.
#[derive(Debug, Default)]
pub struct Rises {
    pub held_bytes: i64,
    pub most: Option<(String, i64)>,
}

impl Rises {
    /// A finished test's peak, if the runner sent one.
    pub fn saw(&mut self, nodeid: &str, peak_rss_bytes: Option<i64>) {
        let Some(peak) = peak_rss_bytes else {
            return;
        };
        let rise = peak - self.held_bytes;
        if rise <= 0 {
            return;
        }
        self.held_bytes = peak;
        if self.most.as_ref().is_none_or(|(_, most)| rise > *most) {
            self.most = Some((nodeid.to_owned(), rise));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_rise_above_the_earlier_peaks_is_kept() {
        let mut rises = Rises::default();
        rises.saw("a", Some(40));
        rises.saw("b", Some(240));
        rises.saw("c", Some(230));
        rises.saw("d", None);
        rises.saw("e", Some(300));
        assert_eq!(rises.held_bytes, 300);
        assert_eq!(rises.most, Some(("b".to_owned(), 200)));
    }
}
