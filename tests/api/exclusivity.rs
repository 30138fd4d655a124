use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{id, TestApp};

#[tokio::test]
async fn twenty_simultaneous_requests_for_one_environment_accept_exactly_one() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let body = json!({"username": "ann", "environment_id": 11, "files": ["test_math.py"]});
    let requests = (0..20).map(|_| app.post_json("/api/v1/runs", &body));
    let responses = futures_util::future::join_all(requests).await;
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for response in responses {
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        match status {
            201 => accepted.push(body),
            409 => refused.push(body),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(accepted.len(), 1);
    assert_eq!(refused.len(), 19);
    let holder = id(&accepted[0]);
    for body in &refused {
        assert_eq!(body["holder_run_id"], holder);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains(&format!("#{holder}")),
            "{body}"
        );
    }
    assert_eq!(app.count_runs().await, 1);
}

#[tokio::test]
async fn runs_that_ask_to_wait_run_after_the_holder_in_arrival_order() {
    let app = TestApp::spawn().await;
    let first = id(&app.create_run(12, &["test_slow.py"]).await);
    let mut waiting = Vec::new();
    for _ in 0..2 {
        let response = app
            .post_json("/api/v1/runs", &json!({"username": "bob", "environment_id": 12, "files": ["test_math.py"], "queue_if_busy": true}))
            .await;
        assert_eq!(response.status(), 201);
        let run: Value = response.json().await.unwrap();
        assert_eq!(run["status"], "queued");
        assert!(
            run["waiting_for"]
                .as_str()
                .unwrap()
                .contains("environment 12"),
            "{run}"
        );
        waiting.push(id(&run));
    }
    let mut finished = Vec::new();
    for run_id in [first, waiting[0], waiting[1]] {
        finished.push(app.wait_finished(run_id, Duration::from_secs(90)).await);
    }
    let times: Vec<(String, String)> = finished
        .iter()
        .map(|r| {
            (
                r["started_at"].as_str().unwrap().to_owned(),
                r["finished_at"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let parse = |s: &str| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    };
    for pair in times.windows(2) {
        assert!(
            parse(&pair[1].0) >= parse(&pair[0].1),
            "never two at once, in order: {times:?}"
        );
    }
}

#[tokio::test]
async fn the_database_refuses_a_second_holder_whatever_the_code_does() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let first = id(&app.create_run(13, &["test_math.py"]).await);
    let second = sqlx::query(
        "insert into runs (username, environment_id, files, file_sha256, holds_environment,
                           millicpus, memory_mb, pids_limit, timeout_secs)
         values ('eve', 13, '{test_math.py}', '{x}', true, 1000, 512, 256, 900)",
    )
    .execute(&app.db)
    .await;
    let err = second
        .expect_err("a second holder must be refused")
        .to_string();
    assert!(
        err.contains("one_run_per_environment"),
        "{err} (holder {first})"
    );
}
