use crate::helpers::TestApp;

#[tokio::test]
async fn health_is_ok_when_database_engine_and_image_are_there() {
    let app = TestApp::spawn().await;
    let response = app.get("/healthz").await;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["missing"], serde_json::json!([]));
}

#[tokio::test]
async fn health_names_a_missing_runner_image() {
    let app = TestApp::spawn_with(&[], |c| {
        c.runner_image = "test-executor-runner:no-such-tag".into()
    })
    .await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["missing"][0]
            .as_str()
            .unwrap()
            .contains("runner image"),
        "{body}"
    );
}
