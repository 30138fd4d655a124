//! Caps on runs waiting as `queued`: one per username (MAX_QUEUED_PER_USER)
//! and one for everyone (MAX_QUEUED). A run beyond either is refused with a
//! 429 naming the cap and the runs waiting, and nothing is written.

use serde_json::{json, Value};

use crate::helpers::{browser, csrf_of, id, TestApp};

async fn caps(per_user: u32, total: u32) -> TestApp {
    TestApp::spawn_with(&[], |c| {
        c.no_executor = true;
        c.max_queued_per_user = per_user;
        c.max_queued = total;
    })
    .await
}

async fn queue(app: &TestApp, username: &str, environment: i64) -> reqwest::Response {
    app.post_json(
        "/api/v1/runs",
        &json!({"username": username, "environment_id": environment,
                "files": ["test_math.py"], "queue_if_busy": true}),
    )
    .await
}

/// The 429's message, after checking the status and the body's shape.
async fn refusal(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 429);
    let body: Value = response.json().await.unwrap();
    body["error"].as_str().expect("an error message").to_owned()
}

#[tokio::test]
async fn a_user_with_the_most_runs_waiting_is_refused_and_others_are_not() {
    let app = caps(3, 100).await;
    let mut mine = Vec::new();
    for environment in [1, 1, 2] {
        let response = queue(&app, "ann", environment).await;
        assert_eq!(response.status(), 201);
        mine.push(id(&response.json().await.unwrap()));
    }
    let message = refusal(queue(&app, "ann", 3).await).await;
    assert!(
        message.contains("ann already has 3 runs waiting"),
        "{message}"
    );
    assert!(message.contains("MAX_QUEUED_PER_USER is 3"), "{message}");
    assert_eq!(app.count_runs().await, 3, "the refused run wrote nothing");

    assert_eq!(
        queue(&app, "bob", 3).await.status(),
        201,
        "bob has his own cap"
    );

    // A run that no longer waits frees a place.
    let cancelled = app
        .client
        .post(app.url(&format!("/api/v1/runs/{}/cancel", mine[1])))
        .bearer_auth("operator-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    assert_eq!(queue(&app, "ann", 3).await.status(), 201);
}

#[tokio::test]
async fn once_the_whole_queue_is_full_everyone_is_refused() {
    let app = caps(10, 4).await;
    for (username, environment) in [("ann", 1), ("ann", 2), ("bob", 3), ("bob", 4)] {
        assert_eq!(queue(&app, username, environment).await.status(), 201);
    }
    let message = refusal(queue(&app, "cat", 5).await).await;
    assert!(
        message.contains("queue is full: 4 runs waiting"),
        "{message}"
    );
    assert!(message.contains("MAX_QUEUED is 4"), "{message}");
    assert_eq!(app.count_runs().await, 4);
}

#[tokio::test]
async fn thirty_simultaneous_creates_in_thirty_environments_never_overshoot_the_cap() {
    let app = caps(50, 5).await;
    let users: Vec<String> = (0..30).map(|n| format!("user{n}")).collect();
    let creates = users
        .iter()
        .enumerate()
        .map(|(n, user)| queue(&app, user, 1 + n as i64));
    let responses = futures_util::future::join_all(creates).await;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for response in responses {
        *statuses.entry(response.status().as_u16()).or_default() += 1;
    }
    assert_eq!(statuses, [(201, 5), (429, 25)].into_iter().collect());
    assert_eq!(app.count_runs().await, 5);
}

#[tokio::test]
async fn the_form_shows_the_same_refusal_and_keeps_what_was_typed() {
    let app = caps(1, 100).await;
    assert_eq!(queue(&app, "ann", 1).await.status(), 201);
    let browser = browser();
    let csrf = csrf_of(&app, &browser, "/runs/new").await;
    let form = [
        ("_csrf", csrf.as_str()),
        ("username", "ann"),
        ("environment_id", "2"),
        ("files", "test_math.py"),
    ];
    let response = browser
        .post(app.url("/runs"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("ann already has 1 run waiting") && page.contains("MAX_QUEUED_PER_USER is 1"),
        "the message is on the form"
    );
    assert!(page.contains("value=\"test_math.py\" checked"), "file kept");
    assert_eq!(app.count_runs().await, 1);
}

#[tokio::test]
async fn a_sharded_run_counts_each_shard_against_the_caps() {
    let app = caps(2, 100).await;
    let message = refusal(sharded(&app, json!([1, 2, 3])).await).await;
    assert!(
        message.contains("ann would have 3 runs waiting in the queue with this run's shards"),
        "{message}"
    );
    assert!(message.contains("MAX_QUEUED_PER_USER is 2"), "{message}");
    assert_eq!(app.count_runs().await, 0, "the refused run wrote nothing");

    assert_eq!(sharded(&app, json!([1, 2])).await.status(), 201);
    let message = refusal(queue(&app, "ann", 3).await).await;
    assert!(
        message.contains("ann already has 2 runs waiting"),
        "{message}"
    );
}

async fn sharded(app: &TestApp, shards: Value) -> reqwest::Response {
    app.post_json(
        "/api/v1/runs",
        &json!({"username": "ann", "environment_id": 1,
                "files": ["test_math.py"], "shards": shards}),
    )
    .await
}
