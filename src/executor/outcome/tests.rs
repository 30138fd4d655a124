//! The decision table of `decide`, case by case.

use super::*;

const LIMITS: Limits = Limits {
    millicpus: 1000,
    memory_mb: 512,
    pids_limit: 256,
    timeout_secs: 900,
};

fn summary(passed: i32, failed: i32) -> Summary {
    Summary {
        collected: Some(passed + failed),
        passed,
        failed,
        ..Default::default()
    }
}

#[test]
fn exit_zero_is_success_with_counts() {
    let end = Ending {
        exit_code: Some(0),
        pytest_exit: Some(0),
        summary: summary(3, 0),
        ..Default::default()
    };
    assert_eq!(
        decide(&end, &LIMITS),
        (RunStatus::Success, "3 passed".into())
    );
}

#[test]
fn failed_tests_make_a_failed_run() {
    let end = Ending {
        exit_code: Some(1),
        pytest_exit: Some(1),
        summary: summary(2, 1),
        ..Default::default()
    };
    assert_eq!(
        decide(&end, &LIMITS),
        (RunStatus::Failed, "2 passed · 1 failed".into())
    );
}

#[test]
fn exit_one_without_results_is_an_error_not_a_failure() {
    let end = Ending {
        exit_code: Some(1),
        ..Default::default()
    };
    assert_eq!(decide(&end, &LIMITS).0, RunStatus::Error);
}

#[test]
fn out_of_memory_names_the_limit_and_the_test() {
    let end = Ending {
        exit_code: Some(137),
        oom_killed: true,
        current_test: Some("t.py::test_big"),
        ..Default::default()
    };
    let (status, reason) = decide(&end, &LIMITS);
    assert_eq!(status, RunStatus::Failed);
    assert_eq!(
        reason,
        "killed: out of memory (limit 512 MiB) during t.py::test_big"
    );
}

#[test]
fn out_of_memory_also_names_an_earlier_test_that_raised_the_memory_held_past_the_room_left() {
    const MIB: i64 = 1024 * 1024;
    let end = Ending {
        exit_code: Some(137),
        oom_killed: true,
        current_test: Some("t.py::test_small"),
        grew_most: Some(("t.py::test_keeps", 400 * MIB)),
        held_bytes: 430 * MIB,
        ..Default::default()
    };
    let (_, reason) = decide(&end, &LIMITS);
    assert_eq!(
        reason,
        "killed: out of memory (limit 512 MiB) during t.py::test_small, \
         after t.py::test_keeps raised the memory held by 400 MiB"
    );
    // the test at the kill had more room than any earlier rise: it alone
    let end = Ending {
        grew_most: Some(("t.py::test_keeps", 40 * MIB)),
        held_bytes: 70 * MIB,
        ..end
    };
    let (_, reason) = decide(&end, &LIMITS);
    assert_eq!(
        reason,
        "killed: out of memory (limit 512 MiB) during t.py::test_small"
    );
}

#[test]
fn timeout_names_the_limit() {
    let end = Ending {
        exit_code: Some(137),
        timed_out: true,
        ..Default::default()
    };
    let (status, reason) = decide(&end, &LIMITS);
    assert_eq!(status, RunStatus::TimedOut);
    assert!(reason.contains("900 s"), "{reason}");
}

#[test]
fn collection_errors_name_the_file() {
    let errors = [(
        "test_bad.py".to_string(),
        Some("SyntaxError: invalid syntax".to_string()),
    )];
    let end = Ending {
        exit_code: Some(2),
        pytest_exit: Some(2),
        collect_errors: &errors,
        ..Default::default()
    };
    assert_eq!(
        decide(&end, &LIMITS),
        (
            RunStatus::Error,
            "could not collect test_bad.py: SyntaxError: invalid syntax".into()
        )
    );
}

#[test]
fn no_tests_is_an_error() {
    let end = Ending {
        exit_code: Some(5),
        pytest_exit: Some(5),
        ..Default::default()
    };
    let (status, reason) = decide(&end, &LIMITS);
    assert_eq!(status, RunStatus::Error);
    assert!(reason.contains("no tests"), "{reason}");
}

fn ran(passed: i32, failed: i32, collected: i32) -> Summary {
    Summary {
        collected: Some(collected),
        passed,
        failed,
        ..Default::default()
    }
}

#[test]
fn a_test_exiting_the_process_after_a_failure_is_not_success() {
    let end = Ending {
        exit_code: Some(0),
        summary: ran(0, 1, 2),
        current_test: Some("test_x.py::test_b"),
        ..Default::default()
    };
    assert_eq!(
        decide(&end, &LIMITS),
        (
            RunStatus::Failed,
            "1 failed · pytest stopped after 1 of 2 tests (exit status 0): test_x.py::test_b never reported".into()
        )
    );
}

#[test]
fn pytest_exit_with_status_zero_after_a_failure_is_not_success() {
    let end = Ending {
        exit_code: Some(0),
        pytest_exit: Some(0),
        summary: ran(0, 1, 3),
        current_test: Some("t.py::test_quits"),
        ..Default::default()
    };
    let (status, reason) = decide(&end, &LIMITS);
    assert_eq!(status, RunStatus::Failed);
    assert!(
        reason.contains("pytest stopped after 1 of 3 tests (pytest's exit status 0): t.py::test_quits never reported, nor 1 more"),
        "{reason}"
    );
}

#[test]
fn exiting_zero_with_tests_pending_and_none_failed_is_an_error() {
    let end = Ending {
        exit_code: Some(0),
        summary: ran(0, 0, 3),
        current_test: Some("t.py::test_a"),
        ..Default::default()
    };
    let (status, reason) = decide(&end, &LIMITS);
    assert_eq!(status, RunStatus::Error);
    assert_eq!(
        reason,
        "pytest stopped after 0 of 3 tests (exit status 0): t.py::test_a never reported, nor 2 more"
    );
}

#[test]
fn every_result_without_pytests_finish_is_not_success() {
    let end = Ending {
        exit_code: Some(0),
        summary: ran(2, 0, 2),
        ..Default::default()
    };
    let (status, reason) = decide(&end, &LIMITS);
    assert_eq!(status, RunStatus::Error);
    assert!(reason.contains("never finished its session"), "{reason}");
}

#[test]
fn a_finish_with_status_zero_but_a_nonzero_exit_is_not_success() {
    let end = Ending {
        exit_code: Some(9),
        pytest_exit: Some(0),
        summary: ran(2, 0, 2),
        ..Default::default()
    };
    let (status, reason) = decide(&end, &LIMITS);
    assert_eq!(status, RunStatus::Error);
    assert!(reason.contains("runner exited with 9"), "{reason}");
}

#[test]
fn more_results_than_collected_tests_is_not_success() {
    let end = Ending {
        exit_code: Some(0),
        pytest_exit: Some(0),
        summary: ran(5, 0, 2),
        ..Default::default()
    };
    assert_eq!(decide(&end, &LIMITS).0, RunStatus::Error);
}

#[test]
fn failures_reported_with_exit_status_zero_are_a_failed_run() {
    let end = Ending {
        exit_code: Some(0),
        pytest_exit: Some(0),
        summary: ran(1, 1, 2),
        ..Default::default()
    };
    assert_eq!(decide(&end, &LIMITS).0, RunStatus::Failed);
}

#[test]
fn the_runners_bad_input_is_not_pytests_internal_error() {
    let refused = Ending {
        exit_code: Some(RUNNER_BAD_INPUT),
        ..Default::default()
    };
    let (status, reason) = decide(&refused, &LIMITS);
    assert_eq!(status, RunStatus::Error);
    assert!(reason.contains("runner refused its input"), "{reason}");
    let internal = Ending {
        exit_code: Some(3),
        pytest_exit: Some(3),
        ..Default::default()
    };
    assert_eq!(
        decide(&internal, &LIMITS).1,
        "pytest hit an internal error (exit 3)"
    );
}

#[test]
fn a_container_that_ended_itself_at_its_deadline_timed_out() {
    let ended = Ending {
        exit_code: Some(RUNNER_DEADLINE),
        current_test: Some("test_x.py::test_sleeps"),
        ..Default::default()
    };
    let (status, reason) = decide(&ended, &LIMITS);
    assert_eq!(status, RunStatus::TimedOut);
    assert!(
        reason.contains("during test_x.py::test_sleeps") && reason.contains("ended itself"),
        "{reason}"
    );
    let forged = Ending {
        exit_code: Some(RUNNER_DEADLINE),
        pytest_exit: Some(0),
        ..Default::default()
    };
    assert_ne!(decide(&forged, &LIMITS).0, RunStatus::TimedOut);
}

#[test]
fn dying_before_collection_says_so() {
    let end = Ending {
        exit_code: Some(1),
        ..Default::default()
    };
    assert_eq!(
        decide(&end, &LIMITS),
        (
            RunStatus::Error,
            "pytest stopped before it collected the tests (exit status 1)".into()
        )
    );
}

#[test]
fn dropped_records_show_in_the_reason() {
    let end = Ending {
        exit_code: Some(0),
        pytest_exit: Some(0),
        summary: ran(1, 0, 1),
        invalid_records: 4,
        ..Default::default()
    };
    assert_eq!(
        decide(&end, &LIMITS),
        (
            RunStatus::Success,
            "1 passed · 4 invalid records dropped".into()
        )
    );
}

#[test]
fn many_collection_errors_are_counted_beyond_those_kept() {
    let errors = [("a.py".to_string(), None)];
    let end = Ending {
        exit_code: Some(2),
        pytest_exit: Some(2),
        collect_errors: &errors,
        collect_error_count: 100_000,
        ..Default::default()
    };
    assert_eq!(
        decide(&end, &LIMITS).1,
        "could not collect a.py: collection failed (and 99999 more files)"
    );
}

#[test]
fn a_shard_left_nothing_to_run_succeeds_and_one_that_ran_is_judged_as_a_run() {
    let mut end = Ending {
        exit_code: Some(0),
        pytest_exit: Some(0),
        summary: summary(0, 0),
        shard: true,
        ..Default::default()
    };
    assert_eq!(decide(&end, &LIMITS).0, RunStatus::Success);
    end.shard = false;
    assert_eq!(decide(&end, &LIMITS).0, RunStatus::Error);
    end.shard = true;
    end.summary = Summary {
        collected: Some(2),
        passed: 1,
        ..Default::default()
    };
    assert_eq!(decide(&end, &LIMITS).0, RunStatus::Error);
}
