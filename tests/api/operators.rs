//! Operators change environments; nobody else can.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{browser, csrf_of, id, TestApp};

const TOKEN: &str = "operator-secret";

async fn patch(app: &TestApp, env: i32, body: Value, token: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .patch(app.url(&format!("/api/v1/environments/{env}")))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn environment(app: &TestApp, env: usize) -> Value {
    app.get_json("/api/v1/environments").await[env - 1].clone()
}

#[tokio::test]
async fn a_limit_change_applies_to_the_next_run() {
    let app = TestApp::spawn().await;
    let response = patch(
        &app,
        30,
        json!({"timeout_secs": 3, "memory_mb": 96}),
        Some(TOKEN),
    )
    .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let sleeper = app.create_run(30, &["slow/test_one_minute.py"]).await;
    let sleeper = app
        .wait_finished(id(&sleeper), Duration::from_secs(60))
        .await;
    assert_eq!(sleeper["status"], "timed_out", "{sleeper}");
    assert_eq!(sleeper["limits"]["timeout_secs"], 3);

    patch(&app, 30, json!({"timeout_secs": 120}), Some(TOKEN)).await;
    let hog = app.create_run(30, &["resources/test_memory_hog.py"]).await;
    let hog = app.wait_finished(id(&hog), Duration::from_secs(60)).await;
    assert!(
        hog["reason"]
            .as_str()
            .unwrap()
            .contains("out of memory (limit 96 MiB"),
        "{hog}"
    );
    let logs = app.log_text(id(&hog)).await.join("\n");
    assert!(
        !logs.contains("allocated 128 MiB"),
        "killed before 128 MiB: {logs}"
    );
    // the earlier run keeps the limits it ran with
    let again = app
        .get_json(&format!("/api/v1/runs/{}", id(&sleeper)))
        .await;
    assert_eq!(again["limits"]["timeout_secs"], 3);
}

#[tokio::test]
async fn changes_without_the_token_are_refused_and_change_nothing() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let before = environment(&app, 31).await;
    assert_eq!(
        patch(&app, 31, json!({"cpus": 0.5}), None).await.status(),
        401
    );
    assert_eq!(
        patch(&app, 31, json!({"cpus": 0.5}), Some("guess"))
            .await
            .status(),
        403
    );
    let delete = app
        .client
        .delete(app.url("/api/v1/environments/31"))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 401);
    let create = app
        .client
        .post(app.url("/api/v1/environments/31"))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), 403);
    assert_eq!(environment(&app, 31).await, before);
}

#[tokio::test]
async fn impossible_limits_are_refused_with_a_clear_message() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    for (body, expected) in [
        (json!({"cpus": 0}), "at least 0.01"),
        (json!({"cpus": 4096}), "more than this host has"),
        (json!({"memory_mb": -5}), "at least 16"),
        (json!({"memory_mb": 100_000_000}), "more than this host has"),
        (json!({"pids_limit": 0}), "between 8"),
        (json!({"timeout_secs": 0}), "between 1"),
        (json!({"cpus": "lots"}), "not valid"),
        (json!({"colour": "red"}), "not valid"),
    ] {
        let response = patch(&app, 32, body.clone(), Some(TOKEN)).await;
        assert_eq!(response.status(), 422, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert!(
            answer["error"].as_str().unwrap().contains(expected),
            "{body} → {answer}"
        );
    }
    assert_eq!(
        patch(&app, 101, json!({"cpus": 1}), Some(TOKEN))
            .await
            .status(),
        422
    );
    assert_eq!(environment(&app, 32).await["cpus"], 1.0);
}

#[tokio::test]
async fn a_disabled_environment_refuses_new_runs() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    assert_eq!(
        patch(&app, 33, json!({"enabled": false}), Some(TOKEN))
            .await
            .status(),
        200
    );
    let response = app
        .post_json(
            "/api/v1/runs",
            &json!({"username": "ann", "environment_id": 33, "files": ["test_math.py"]}),
        )
        .await;
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("disabled"),
        "{body}"
    );
    assert_eq!(app.count_runs().await, 0);
}

#[tokio::test]
async fn environments_are_created_and_deleted_but_not_while_in_use() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let run = app.create_run(34, &["test_math.py"]).await;
    let busy = app
        .client
        .delete(app.url("/api/v1/environments/34"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(busy.status(), 409);
    assert!(busy
        .text()
        .await
        .unwrap()
        .contains(&format!("run #{}", id(&run))));

    let deleted = app
        .client
        .delete(app.url("/api/v1/environments/35"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        app.get_json("/api/v1/environments")
            .await
            .as_array()
            .unwrap()
            .len(),
        99
    );
    let refused = app
        .post_json(
            "/api/v1/runs",
            &json!({"username": "ann", "environment_id": 35, "files": ["test_math.py"]}),
        )
        .await;
    assert_eq!(refused.status(), 409);

    let created = app
        .client
        .post(app.url("/api/v1/environments/35"))
        .bearer_auth(TOKEN)
        .json(&json!({"cpus": 0.5, "memory_mb": 256}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let env: Value = created.json().await.unwrap();
    assert_eq!(
        (
            env["cpus"].as_f64(),
            env["memory_mb"].as_i64(),
            env["timeout_secs"].as_i64()
        ),
        (Some(0.5), Some(256), Some(900))
    );
    let twice = app
        .client
        .post(app.url("/api/v1/environments/35"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 409);
}

#[tokio::test]
async fn only_the_runs_user_or_an_operator_may_cancel_it() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let run_id = id(&app.create_run(36, &["test_math.py"]).await);
    let url = app.url(&format!("/api/v1/runs/{run_id}/cancel"));
    let stranger = app
        .client
        .post(&url)
        .json(&json!({"username": "mallory"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 403);
    let anonymous = app.client.post(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 403);
    assert_eq!(
        app.get_json(&format!("/api/v1/runs/{run_id}")).await["status"],
        "queued"
    );
    let operator = app
        .client
        .post(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(operator.status(), 200);
    let run: Value = operator.json().await.unwrap();
    assert_eq!(run["status"], "cancelled");
    assert_eq!(run["reason"], "cancelled by an operator");
}

#[tokio::test]
async fn without_a_token_configured_operator_actions_are_disabled_and_the_page_says_how_to_enable_them(
) {
    let app = TestApp::spawn_with(&[], |c| {
        c.no_executor = true;
        c.operator_token = None;
    })
    .await;
    let response = patch(&app, 37, json!({"cpus": 0.5}), Some("anything")).await;
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("OPERATOR_TOKEN"));
    let page = app.get("/environments").await.text().await.unwrap();
    assert!(
        page.contains("OPERATOR_TOKEN"),
        "the page says how to enable operators"
    );
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let browser = browser();
    let csrf = csrf_of(&app, &browser, "/operator").await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let response = browser
            .post(app.url("/operator/sign-in"))
            .form(&[("_csrf", csrf.as_str()), ("token", "guess")])
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(statuses[11], 429);
    // even the right token waits now
    let right = browser
        .post(app.url("/operator/sign-in"))
        .form(&[("_csrf", csrf.as_str()), ("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 429);
}

#[tokio::test]
async fn live_usage_of_a_busy_environment_is_non_zero_and_below_its_limit() {
    let app = TestApp::spawn().await;
    let run = app.create_run(38, &["slow/test_one_minute.py"]).await;
    app.wait_for(id(&run), Duration::from_secs(30), |r| {
        r["status"] == "running" && r["log_lines"].as_i64() > Some(0)
    })
    .await;
    let usage = app.get_json("/api/v1/environments/usage").await;
    let mine = usage
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["environment_id"] == 38)
        .expect("usage of env 38")
        .clone();
    assert_eq!(mine["run_id"], id(&run));
    let memory = mine["memory_bytes"].as_u64().unwrap();
    assert!(memory > 0 && memory < 512 * 1024 * 1024, "{mine}");
    assert_eq!(mine["memory_limit_bytes"].as_u64(), Some(512 * 1024 * 1024));
    assert!(mine["pids"].as_u64().unwrap() >= 1);
    let fragment = app
        .get("/environments/fragments/usage")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        fragment.contains(&format!("/runs/{}", id(&run))),
        "the page shows it"
    );
    app.client
        .post(app.url(&format!("/api/v1/runs/{}/cancel", id(&run))))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
}
