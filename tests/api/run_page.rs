//! The run page's end states: the JUnit link only where a report exists
//! (and why not elsewhere), a cancel's own line in the log, a summary
//! without loose separators, and "Run again" only once the run is over.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{id, TestApp};

const EXITS_EARLY: &str = "import os\n\ndef test_leaves():\n    os._exit(0)\n";

/// The status panel as the page polls it.
async fn status_of(app: &TestApp, run_id: i64) -> String {
    app.get(&format!("/runs/{run_id}/fragments/status"))
        .await
        .text()
        .await
        .unwrap()
}

/// The text of the first element opening with `start`, tags removed.
fn text_of(html: &str, start: &str) -> String {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {html}"));
    let rest = &html[from..];
    let end = rest.find("</p>").unwrap_or(rest.len());
    let mut text = String::new();
    let mut in_tag = false;
    for c in rest[..end].chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.trim().to_owned()
}

async fn cancel(app: &TestApp, run_id: i64) -> Value {
    let response = app
        .post_json(
            &format!("/api/v1/runs/{run_id}/cancel"),
            &json!({"username": "ann"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_finished_run_links_its_report_and_offers_run_again_only_then() {
    let app = TestApp::spawn().await;
    let run_id = id(&app.create_run(2, &["test_slow.py"]).await);
    app.wait_for(run_id, Duration::from_secs(30), |r| {
        r["status"] == "running"
    })
    .await;
    let live = status_of(&app, run_id).await;
    assert!(live.contains("JUnit XML when the run finishes"), "{live}");
    assert!(
        !live.contains("junit.xml"),
        "no link before a report exists"
    );
    assert!(!live.contains("Run again"), "{live}");
    assert!(live.contains("Cancel run"));
    let reason = text_of(&live, "<p class=\"reason\"");
    assert_eq!(reason, "running", "the status is said once: {reason:?}");

    app.wait_finished(run_id, Duration::from_secs(60)).await;
    let done = status_of(&app, run_id).await;
    assert!(
        done.contains(&format!("href=\"/runs/{run_id}/junit.xml\"")),
        "the last poll brings the link: {done}"
    );
    assert!(done.contains("Run again") && !done.contains("Cancel run"));
    let report = app.get(&format!("/runs/{run_id}/junit.xml")).await;
    assert_eq!(report.status(), 200, "the link leads to the report");
}

#[tokio::test]
async fn a_run_without_a_report_has_no_link_and_says_why() {
    let app = TestApp::spawn_with(&[("test_exits.py", EXITS_EARLY)], |_| {}).await;
    let run_id = id(&app.create_run(3, &["test_exits.py"]).await);
    let run = app.wait_finished(run_id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "error", "{run}");
    let page = app
        .get(&format!("/runs/{run_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("junit.xml"), "no link to a missing report");
    assert!(
        page.contains("none: pytest did not get to write one"),
        "{page}"
    );
    let summary = text_of(&page, "<p class=\"progress-text\"");
    assert_eq!(summary, "0 / 1 tests", "no dangling separator");
}

#[tokio::test]
async fn a_cancel_writes_who_and_when_into_the_log_and_marks_the_running_test() {
    let app = TestApp::spawn().await;
    let run_id = id(&app.create_run(4, &["slow/test_one_minute.py"]).await);
    app.wait_for(run_id, Duration::from_secs(30), |r| {
        r["current_test"].is_string()
    })
    .await;
    cancel(&app, run_id).await;
    let run = app.wait_finished(run_id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "cancelled");
    assert_eq!(run["reason"], "cancelled by ann");

    let log = app.log_text(run_id).await;
    let last = log.last().expect("a log");
    let time = last
        .strip_prefix("[test-executor] cancelled by ann at ")
        .and_then(|rest| rest.strip_suffix(" UTC"))
        .unwrap_or_else(|| panic!("the log ends with the cancel: {log:?}"));
    assert!(
        time.len() == 8 && time.chars().filter(|c| *c == ':').count() == 2,
        "a time of day: {time}"
    );

    let tests = app.get_json(&format!("/api/v1/runs/{run_id}/tests")).await;
    let marked = &tests[0];
    assert_eq!(
        marked["nodeid"],
        "slow/test_one_minute.py::test_takes_about_a_minute"
    );
    assert_eq!(marked["outcome"], "skipped");
    let message = marked["message"].as_str().unwrap();
    assert!(message.starts_with("cancelled by ann at "), "{message}");

    let page = app
        .get(&format!("/runs/{run_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("junit.xml"), "a cancelled run has no report");
    assert!(page.contains("none: the run was cancelled"));
    let summary = text_of(&page, "<p class=\"progress-text\"");
    assert_eq!(
        summary, "0 / 1 tests",
        "pytest's counts, cleanly: {summary:?}"
    );
    helpers_cleanup(&app);
}

#[tokio::test]
async fn a_run_cancelled_before_it_started_says_so_in_its_log() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let run_id = id(&app.create_run(5, &["test_math.py"]).await);
    let run = cancel(&app, run_id).await;
    assert_eq!(run["status"], "cancelled");
    let log = app.log_text(run_id).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(
        log[0].starts_with("[test-executor] cancelled by ann at ")
            && log[0].ends_with(" UTC, before it started"),
        "{log:?}"
    );
    let lines = app.get_json(&format!("/api/v1/runs/{run_id}/logs")).await;
    assert_eq!(lines[0]["seq"], 0, "the log API serves it: {lines}");
}

fn helpers_cleanup(app: &TestApp) {
    crate::helpers::remove_containers(&app.instance);
}
