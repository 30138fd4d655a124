//! Each test's CPU time and peak memory, as the runner measured them in the
//! pytest process: a test allocating 300 MiB among tests allocating 10 MiB
//! is the one whose peak is 300 MiB, and the Tests table sorts by them.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{id, TestApp};

const ALLOCATING: &str = r#"
import time
import pytest

@pytest.mark.parametrize("n", range(4))
def test_small(n):
    data = b"x" * (10 << 20)
    time.sleep(0.2)
    del data

def test_big():
    data = b"x" * (300 << 20)
    time.sleep(0.2)
    del data

def test_busy():
    deadline = time.process_time() + 1.0
    while time.process_time() < deadline:
        pass
"#;

const MIB: i64 = 1 << 20;

#[tokio::test]
async fn each_test_has_its_cpu_time_and_peak_memory_and_the_table_sorts_by_them() {
    let app = TestApp::spawn_with(&[("test_allocating.py", ALLOCATING)], |_| {}).await;
    app.set_limits(6, 1024, 60).await;
    let run = id(&app.create_run(6, &["test_allocating.py"]).await);
    let done = app.wait_finished(run, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "success", "{done}");

    let tests: Vec<Value> = app
        .get_json(&format!("/api/v1/runs/{run}/tests?sort=memory"))
        .await
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(tests.len(), 6);
    assert_eq!(
        tests[0]["nodeid"], "test_allocating.py::test_big",
        "heaviest first: {tests:?}"
    );
    let peak = |t: &Value| t["peak_rss_bytes"].as_i64().expect("a peak");
    assert!(peak(&tests[0]) >= 300 * MIB, "{}", tests[0]);
    for t in &tests[1..] {
        assert!(peak(t) <= 60 * MIB, "{t}");
    }

    let by_cpu = app
        .get_json(&format!("/api/v1/runs/{run}/tests?sort=cpu"))
        .await;
    assert_eq!(
        by_cpu[0]["nodeid"], "test_allocating.py::test_busy",
        "{by_cpu}"
    );
    assert!(by_cpu[0]["cpu_ms"].as_i64().unwrap() >= 900, "{by_cpu}");

    let table = app
        .get(&format!("/runs/{run}/fragments/tests?sort=memory"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        table.contains("Peak memory") && table.contains("CPU"),
        "{table}"
    );
    let big = table.find("test_big").unwrap();
    let small = table.find("test_small").unwrap();
    assert!(big < small, "sorted by peak memory");
    let bad = app
        .get(&format!("/api/v1/runs/{run}/tests?sort=weight"))
        .await;
    assert_eq!(bad.status(), 422);
}
