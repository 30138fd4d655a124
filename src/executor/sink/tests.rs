//! The caps of the sink: everything a run sends is bounded and counted.

use super::*;

fn sink(cap_bytes: u64, cap_lines: u64) -> Sink {
    Sink::new(1, (cap_bytes, cap_lines), 0, 0)
}

fn line(text: &str) -> Piece {
    Piece::Line {
        stream: Stream::Stdout,
        text: text.into(),
    }
}

fn result(nodeid: &str, outcome: &str) -> Piece {
    Piece::Record(Record::Result(TestResult {
        nodeid: nodeid.into(),
        outcome: outcome.into(),
        duration_ms: 1,
        message: None,
        longrepr: None,
        cpu_ms: None,
        peak_rss_bytes: None,
    }))
}

#[test]
fn the_log_is_cut_at_the_line_cap_and_the_marker_says_so() {
    let mut s = sink(1 << 30, 100);
    s.accept((0..1000).map(|_| line("")).collect());
    assert_eq!(s.lines.line.len(), 101);
    assert!(s.log_full());
    let marker = s.lines.line.last().unwrap();
    assert!(marker.contains("the cap of 100 lines"), "{marker}");
}

#[test]
fn the_log_is_cut_at_the_byte_cap_and_the_marker_says_so() {
    let mut s = sink(2 * 1024 * 1024, 1_000_000);
    let kib = "x".repeat(1023);
    s.accept((0..3000).map(|_| line(&kib)).collect());
    assert_eq!(s.lines.line.len(), 2049);
    let marker = s.lines.line.last().unwrap();
    assert!(marker.contains("the cap of 2 MiB"), "{marker}");
}

#[test]
fn executor_notes_are_kept_after_the_cap() {
    let mut s = sink(1 << 30, 1);
    s.accept(vec![line("a"), line("b")]);
    s.note("time limit reached");
    assert_eq!(s.lines.line.len(), 3);
    assert!(s.lines.line[2].contains("time limit"));
}

#[test]
fn invalid_records_are_counted_and_shown() {
    let mut s = sink(1 << 30, 1000);
    s.accept(vec![Piece::Invalid, Piece::Invalid, result("a", "passed")]);
    assert_eq!(s.dropped.invalid_records, 2);
    s.note_dropped();
    assert!(s
        .lines
        .line
        .last()
        .unwrap()
        .contains("2 invalid records carrying the run's token were dropped"));
    assert_eq!(s.ending(Some(0), false, false).invalid_records, 2);
}

#[test]
fn results_beyond_the_cap_are_counted_but_not_kept() {
    let mut s = sink(1 << 30, 1000);
    for _ in 0..(MAX_RESULTS + 5) {
        s.accept(vec![result("t.py::x", "passed")]);
        if s.results.len() >= BATCH_LINES {
            s.results.clear();
        }
    }
    assert_eq!(s.summary.passed, MAX_RESULTS + 5);
    assert_eq!(s.next_result, MAX_RESULTS);
    assert_eq!(s.dropped.results, 5);
}

#[test]
fn a_batch_of_large_results_is_full_by_bytes() {
    let mut s = sink(1 << 30, 1000);
    let big = TestResult {
        nodeid: "t.py::x".into(),
        outcome: "failed".into(),
        duration_ms: 0,
        message: None,
        longrepr: Some("x".repeat(32 * 1024)),
        cpu_ms: None,
        peak_rss_bytes: None,
    };
    for _ in 0..200 {
        s.accept(vec![Piece::Record(Record::Result(big.clone()))]);
    }
    assert!(
        s.batch_full(),
        "200 results of 32 KiB are more than a batch"
    );
}

#[test]
fn collect_errors_are_counted_but_only_the_first_are_kept() {
    let mut s = sink(1 << 30, 1000);
    let errors = (0..100_000)
        .map(|i| {
            Piece::Record(Record::CollectError {
                nodeid: format!("f{i}.py"),
                message: None,
            })
        })
        .collect();
    s.accept(errors);
    assert_eq!(s.collect_errors.len(), MAX_COLLECT_ERRORS);
    assert_eq!(s.collect_error_count, 100_000);
    assert_eq!(s.ending(None, false, false).collect_error_count, 100_000);
}

#[test]
fn a_junit_report_over_the_cap_is_not_kept_at_all() {
    let mut s = sink(1 << 30, 1000);
    let chunk = "x".repeat(32 * 1024);
    for _ in 0..(MAX_JUNIT_BYTES / chunk.len() + 2) {
        s.accept(vec![Piece::Record(Record::Junit {
            data: chunk.clone(),
        })]);
    }
    assert!(s.junit.is_empty());
    assert!(s.dropped.junit_too_large);
}

#[test]
fn a_reported_test_is_no_longer_the_current_one() {
    let mut s = sink(1 << 30, 1000);
    s.accept(vec![
        Piece::Record(Record::Start {
            nodeid: "t.py::a".into(),
        }),
        result("t.py::a", "failed"),
    ]);
    assert_eq!(s.current_test, None);
    s.accept(vec![Piece::Record(Record::Start {
        nodeid: "t.py::b".into(),
    })]);
    assert_eq!(
        s.ending(Some(0), false, false).current_test,
        Some("t.py::b")
    );
}

#[test]
fn counters_saturate_instead_of_overflowing() {
    let mut summary = Summary {
        passed: i32::MAX,
        failed: i32::MAX,
        ..Default::default()
    };
    summary.count("passed");
    assert_eq!(summary.passed, i32::MAX);
    assert_eq!(summary.done(), i32::MAX);
}
