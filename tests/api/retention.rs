//! Retention: with RETENTION_DAYS=0 the background pass deletes a finished
//! run's logs and test results, keeps its row, and leaves a running run's
//! logs alone; the environments page shows the database's size.

use std::time::Duration;

use crate::helpers::{id, TestApp};

const PASSES: &str = r#"
def test_prints_and_passes():
    print("old output")
"#;

const HOLDS: &str = r#"
import time

def test_holds():
    print("still running", flush=True)
    time.sleep(120)
"#;

async fn count(app: &TestApp, table: &str, run_id: i64) -> i64 {
    sqlx::query_scalar(&format!("select count(*) from {table} where run_id = $1"))
        .bind(run_id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn marked(app: &TestApp, run_id: i64) -> bool {
    sqlx::query_scalar("select data_deleted_at is not null from runs where id = $1")
        .bind(run_id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn retention_0_deletes_a_finished_runs_logs_and_tests_and_keeps_a_running_runs() {
    let app = TestApp::spawn_with(
        &[
            ("retention/test_passes.py", PASSES),
            ("retention/test_holds.py", HOLDS),
        ],
        |c| {
            c.retention_days = Some(0);
            c.retention_interval_secs = 1;
        },
    )
    .await;
    let running = id(&app.create_run(2, &["retention/test_holds.py"]).await);
    app.wait_for(running, Duration::from_secs(60), |run| {
        run["log_lines"].as_i64() > Some(0)
    })
    .await;
    let old = id(&app.create_run(1, &["retention/test_passes.py"]).await);
    let finished = app.wait_finished(old, Duration::from_secs(60)).await;
    assert_eq!(finished["status"], "success", "{finished}");

    // A pass deletes the rows first and marks the run last, so a crash in
    // between leaves the run to the next pass: wait for the mark.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !marked(&app, old).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old run was not marked within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(count(&app, "run_logs", old).await, 0);
    assert_eq!(count(&app, "run_tests", old).await, 0);
    // The row stays as history.
    let run = app.get_json(&format!("/api/v1/runs/{old}")).await;
    assert_eq!(run["status"], "success");
    assert_eq!(run["summary"]["passed"], 1, "{run}");
    assert!(app.get_json(&format!("/api/v1/runs/{old}/logs")).await == serde_json::json!([]));

    // The running run keeps its logs through several passes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(count(&app, "run_logs", running).await > 0);
    assert!(app
        .log_text(running)
        .await
        .iter()
        .any(|l| l.contains("still running")));

    let page = app.get("/environments").await.text().await.unwrap();
    assert!(page.contains("Run logs"), "{page}");
    assert!(
        page.contains("deleted 0 days after a run finishes"),
        "{page}"
    );
    assert!(
        regex_like_size(&page),
        "the database's size is shown in KiB/MiB/GiB"
    );

    let cancel = app
        .post_json(
            &format!("/api/v1/runs/{running}/cancel"),
            &serde_json::json!({"username": "ann"}),
        )
        .await;
    assert_eq!(cancel.status(), 200);
}

/// The database's size figure: `<dd class="db-total">8.1 MiB</dd>`.
fn regex_like_size(page: &str) -> bool {
    let Some(at) = page.find("class=\"db-total\">") else {
        return false;
    };
    let figure = &page[at + 17..];
    let figure = &figure[..figure.find('<').unwrap_or(0)];
    figure.ends_with("MiB") || figure.ends_with("KiB") || figure.ends_with("GiB")
}
