use serde_json::{json, Value};

use crate::helpers::{id, TestApp};

#[tokio::test]
async fn the_catalog_lists_sample_files_recursively() {
    let app = TestApp::spawn().await;
    let files = app.get_json("/api/v1/test-files").await;
    let paths: Vec<&str> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"test_math.py"), "{paths:?}");
    assert!(paths.contains(&"api/v2/test_orders.py"), "{paths:?}");
    assert!(
        !paths.iter().any(|p| p.ends_with("conftest.py")),
        "{paths:?}"
    );
}

#[tokio::test]
async fn environments_start_with_the_default_limits() {
    let app = TestApp::spawn().await;
    let envs = app.get_json("/api/v1/environments").await;
    let envs = envs.as_array().unwrap();
    assert_eq!(envs.len(), 100);
    assert_eq!(
        envs[0],
        json!({"id": 1, "cpus": 1.0, "memory_mb": 512, "pids_limit": 256, "timeout_secs": 900,
               "enabled": true, "required_labels": [], "busy_run_id": null})
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_a_clear_message_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"username": "ann", "environment_id": 1, "files": ["../etc/passwd"]}),
            "not a test file",
        ),
        (
            json!({"username": "ann", "environment_id": 1, "files": ["/etc/passwd"]}),
            "not a test file",
        ),
        (
            json!({"username": "ann", "environment_id": 1, "files": ["test_nope.py"]}),
            "not a test file",
        ),
        (
            json!({"username": "ann", "environment_id": 1, "files": ["-k"]}),
            "not a test file",
        ),
        (
            json!({"username": "ann", "environment_id": 1, "files": []}),
            "at least one",
        ),
        (
            json!({"username": "ann", "environment_id": 0, "files": ["test_math.py"]}),
            "1 to 100",
        ),
        (
            json!({"username": "ann", "environment_id": 101, "files": ["test_math.py"]}),
            "1 to 100",
        ),
        (
            json!({"username": "  ", "environment_id": 1, "files": ["test_math.py"]}),
            "username",
        ),
        (
            json!({"username": "x".repeat(500), "environment_id": 1, "files": ["test_math.py"]}),
            "at most",
        ),
        (
            json!({"username": "ann", "files": ["test_math.py"]}),
            "environment_id",
        ),
        (
            json!({"username": "ann", "environment_id": "seven", "files": ["test_math.py"]}),
            "JSON",
        ),
    ];
    for (body, expected) in cases {
        let response = app.post_json("/api/v1/runs", &body).await;
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status, 422, "{body} → {answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(message.contains(expected), "{body} → {message}");
    }
    let response = app
        .client
        .post(app.url("/api/v1/runs"))
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(app.count_runs().await, 0);
}

#[tokio::test]
async fn unknown_runs_and_bad_ids_are_404_and_bad_filters_422() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/api/v1/runs/999").await.status(), 404);
    assert_eq!(app.get("/api/v1/runs/abc").await.status(), 404);
    assert_eq!(app.get("/api/v1/runs?status=bogus").await.status(), 422);
    assert_eq!(
        app.get("/api/v1/runs?environment_id=500").await.status(),
        422
    );
    let response = app
        .client
        .post(app.url("/api/v1/runs/999/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn runs_are_listed_newest_first_with_filters_and_paging() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let mut ids = Vec::new();
    for env in 1..=5 {
        ids.push(id(&app.create_run(env, &["test_math.py"]).await));
    }
    let all = app.get_json("/api/v1/runs").await;
    let listed: Vec<i64> = all.as_array().unwrap().iter().map(id).collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first);

    let page = app
        .get_json(&format!("/api/v1/runs?limit=2&before={}", ids[3]))
        .await;
    let page: Vec<i64> = page.as_array().unwrap().iter().map(id).collect();
    assert_eq!(page, [ids[2], ids[1]]);

    let env3 = app
        .get_json("/api/v1/runs?environment_id=3&status=queued&username=ann")
        .await;
    assert_eq!(env3.as_array().unwrap().len(), 1);
    assert_eq!(env3[0]["environment_id"], 3);
    let nobody = app.get_json("/api/v1/runs?username=bob").await;
    assert_eq!(nobody.as_array().unwrap().len(), 0);
}
