//! `GET /api/v1/runs/{id}?wait=`: the answer is held until the run ends (or
//! the time is up), so a client gets its verdict without polling; the end
//! is announced by Postgres on `run_final`, whichever process ends the run.

use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::helpers::{id, TestApp};

const SLOW: &str = r#"
import time

def test_takes_a_second():
    time.sleep(1)
"#;

#[tokio::test]
async fn a_waiting_get_answers_with_the_runs_end_and_a_short_wait_with_the_run_as_it_is() {
    let app = TestApp::spawn_with(&[("waiting/test_slow.py", SLOW)], |_| {}).await;
    let run = id(&app.create_run(1, &["waiting/test_slow.py"]).await);

    let early = app.get_json(&format!("/api/v1/runs/{run}?wait=0.2")).await;
    assert!(
        matches!(early["status"].as_str(), Some("queued" | "running")),
        "{early}"
    );

    // Beside the waiting request, a poller notes when the end shows. The
    // waiting request answers with it (the notice), not at its next
    // recheck (5 s after it began: the run takes about one).
    let path = format!("/api/v1/runs/{run}");
    let waiting = async {
        let ended = app.get_json(&format!("{path}?wait=60")).await;
        (ended, tokio::time::Instant::now())
    };
    let polling = async {
        loop {
            let now = app.get_json(&path).await;
            if !matches!(now["status"].as_str(), Some("queued" | "running")) {
                return tokio::time::Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let ((ended, answered), seen) = tokio::join!(waiting, polling);
    assert_eq!(ended["status"], "success", "{ended}");
    assert!(
        answered <= seen + Duration::from_millis(1500),
        "the waiting request answered {:?} after a poller saw the end: no notice came",
        answered - seen
    );

    // An ended run answers at once, whatever the wait.
    let again = app.get_json(&format!("/api/v1/runs/{run}?wait=60")).await;
    assert_eq!(again["status"], "success");
}

#[tokio::test]
async fn a_bad_wait_is_refused_and_an_unknown_run_is_404() {
    let app = TestApp::spawn().await;
    let run = id(&app.create_run(1, &["test_math.py"]).await);
    for bad in ["-1", "61", "abc", "NaN", "inf"] {
        let response = app.get(&format!("/api/v1/runs/{run}?wait={bad}")).await;
        assert_eq!(response.status(), 422, "wait={bad}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap_or("").contains("wait"),
            "wait={bad}: {body}"
        );
    }
    let missing = app.get("/api/v1/runs/999999?wait=30").await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn postgres_announces_each_run_that_ends_once_with_its_id() {
    let app = TestApp::spawn().await;
    let mut listener = PgListener::connect_with(&app.db).await.unwrap();
    listener.listen("run_final").await.unwrap();
    let run = id(&app.create_run(1, &["test_math.py"]).await);
    let notice = tokio::time::timeout(Duration::from_secs(60), listener.recv())
        .await
        .expect("no notice within 60 s")
        .unwrap();
    assert_eq!(notice.payload(), run.to_string());
    // A later change of the ended run (retention marks it) is not an end.
    sqlx::query("update runs set data_deleted_at = now(), status = status where id = $1")
        .bind(run)
        .execute(&app.db)
        .await
        .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(2), listener.recv()).await;
    assert!(second.is_err(), "announced twice: {second:?}");
}
