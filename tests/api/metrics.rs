//! `/metrics`: Prometheus' text format, whose counters and histograms move
//! with a real run, and whose gauges are read at scrape time.

use std::time::Duration;

use crate::helpers::TestApp;

/// The sum of the samples of `name` whose labels contain every one of
/// `labels` (`key="value"`); 0 when there is none yet.
fn value(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            metric == name && labels.iter().all(|l| rest.contains(l))
        })
        .map(|(_, v)| v.parse::<f64>().unwrap())
        .sum()
}

async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn a_run_moves_the_counters_and_the_histograms() {
    let app = TestApp::spawn().await;
    let before = scrape(&app).await;

    let run = app.create_run(1, &["test_math.py"]).await;
    let id = run["id"].as_i64().unwrap();
    // While it is queued or running, it holds its environment.
    let during = scrape(&app).await;
    assert!(
        value(&during, "te_environments_held", &[]) >= 1.0,
        "{during}"
    );
    let run = app.wait_finished(id, Duration::from_secs(120)).await;
    assert_eq!(run["status"], "success", "{run}");
    let after = scrape(&app).await;

    let moved =
        |name: &str, labels: &[&str]| value(&after, name, labels) - value(&before, name, labels);
    assert_eq!(
        moved("te_runs_created_total", &["environment=\"1\""]),
        1.0,
        "{after}"
    );
    assert_eq!(
        moved(
            "te_runs_finished_total",
            &["status=\"success\"", "environment=\"1\""]
        ),
        1.0,
        "{after}"
    );
    assert_eq!(
        moved("te_run_duration_seconds_count", &["status=\"success\""]),
        1.0
    );
    assert!(moved("te_run_duration_seconds_sum", &["status=\"success\""]) > 0.0);
    // A real histogram (buckets), not a summary.
    assert!(
        after.contains("te_run_duration_seconds_bucket{status=\"success\",le=\"+Inf\"} "),
        "{after}"
    );
    assert_eq!(moved("te_run_queued_seconds_count", &[]), 1.0);
    let lines = run["log_lines"].as_i64().unwrap() as f64;
    assert!(lines > 0.0);
    assert_eq!(moved("te_log_lines_stored_total", &[]), lines, "{after}");
    assert!(moved("te_log_bytes_stored_total", &[]) > 0.0);
    assert!(moved("te_log_flush_seconds_count", &[]) >= 1.0);

    // Requests by route pattern, not by raw URI.
    let route = "route=\"/api/v1/runs/{id}\"".to_string();
    assert!(
        moved(
            "te_http_requests_total",
            &[&route, "method=\"GET\"", "status=\"200\""]
        ) >= 1.0
    );
    assert!(
        !after.contains(&format!("/api/v1/runs/{id}\"")),
        "a raw URI as a label"
    );
    assert_eq!(
        moved(
            "te_http_requests_total",
            &[
                "route=\"/api/v1/runs\"",
                "method=\"POST\"",
                "status=\"201\""
            ]
        ),
        1.0
    );

    // Gauges, read now: nothing queued or held any more.
    assert_eq!(value(&after, "te_runs_queued", &[]), 0.0);
    assert_eq!(value(&after, "te_environments_held", &[]), 0.0);
    assert_eq!(value(&after, "te_environments_over_limit", &[]), 0.0);
    assert!(after.contains("te_warm_pool_size "), "{after}");
    assert!(
        after.contains("te_containers{state=\"running\"}"),
        "{after}"
    );
}

#[tokio::test]
async fn a_cancelled_queued_run_counts_as_finished_without_a_duration() {
    let app = TestApp::spawn().await;
    let first = app.create_run(5, &["slow/test_one_minute.py"]).await;
    let waiting = app
        .post_json(
            "/api/v1/runs",
            &serde_json::json!({"username": "ann", "environment_id": 5,
                                "files": ["test_math.py"], "queue_if_busy": true}),
        )
        .await;
    assert_eq!(waiting.status(), 201);
    let waiting: serde_json::Value = waiting.json().await.unwrap();
    let queued = scrape(&app).await;
    assert!(value(&queued, "te_runs_queued", &[]) >= 1.0, "{queued}");
    for run in [&waiting, &first] {
        let response = app
            .post_json(
                &format!("/api/v1/runs/{}/cancel", run["id"]),
                &serde_json::json!({"username": "ann"}),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    app.wait_finished(first["id"].as_i64().unwrap(), Duration::from_secs(60))
        .await;
    let after = scrape(&app).await;
    assert_eq!(
        value(
            &after,
            "te_runs_finished_total",
            &["status=\"cancelled\"", "environment=\"5\""]
        ),
        2.0,
        "{after}"
    );
    // Only the run that started has a duration.
    assert!(
        value(
            &after,
            "te_run_duration_seconds_count",
            &["status=\"cancelled\""]
        ) <= 1.0
    );
}

#[tokio::test]
async fn a_metrics_token_is_required_once_set() {
    let app = TestApp::spawn_with(&[], |c| c.metrics_token = Some("scrape-secret".into())).await;
    let bare = app.get("/metrics").await;
    assert_eq!(bare.status(), 401);
    assert_eq!(
        bare.headers()["www-authenticate"],
        "Bearer realm=\"metrics\""
    );
    let body: serde_json::Value = bare.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("METRICS_TOKEN"),
        "{body}"
    );
    let with = |value: &str| {
        app.client
            .get(app.url("/metrics"))
            .header("authorization", value)
            .send()
    };
    for refused in [
        "Bearer operator-secret",
        "Bearer scrape-secre",
        "Bearer scrape-secret-and-more",
        "Basic scrape-secret",
        "scrape-secret",
    ] {
        assert_eq!(with(refused).await.unwrap().status(), 401, "{refused}");
    }
    let right = with("Bearer scrape-secret").await.unwrap();
    assert_eq!(right.status(), 200);
    assert!(right.text().await.unwrap().contains("te_runs_queued "));
}

#[tokio::test]
async fn without_a_metrics_token_metrics_are_open() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    assert!(scrape(&app).await.contains("te_runs_queued "));
}

#[tokio::test]
async fn a_sharded_runs_parent_is_not_counted_as_running_its_shards_are() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let created = app
        .post_json(
            "/api/v1/runs",
            &serde_json::json!({"username": "ann", "environment_id": 1,
                                "files": ["test_math.py"], "shards": [1, 2]}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    assert_eq!(
        created["status"], "running",
        "the parent runs from creation"
    );
    let text = scrape(&app).await;
    assert_eq!(value(&text, "te_runs_running", &[]), 0.0, "{text}");
    assert_eq!(value(&text, "te_runs_queued", &[]), 2.0, "{text}");
}
