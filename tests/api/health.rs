use std::{process::Command, time::Duration};

use time::{format_description::well_known::Rfc3339, OffsetDateTime};

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

/// When the answer's checks were made.
fn checked_at(body: &serde_json::Value) -> OffsetDateTime {
    OffsetDateTime::parse(body["checked_at"].as_str().unwrap(), &Rfc3339).unwrap()
}

#[tokio::test]
async fn health_is_checked_at_most_once_a_second_and_sees_a_change_after_it() {
    let image = std::env::var("RUNNER_IMAGE").unwrap_or("test-executor-runner:latest".into());
    let copy = format!("test-executor-runner:health-{}", std::process::id());
    let docker = |args: &[&str]| {
        let out = Command::new("docker").args(args).output().unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    docker(&["tag", &image, &copy]);
    let app = TestApp::spawn_with(&[], |c| c.runner_image = copy.clone()).await;

    // Asked 200 times at once: rounds of checks at least a second apart.
    let answers = futures_util::future::join_all((0..200).map(|_| app.get("/healthz"))).await;
    let mut rounds = Vec::new();
    for answer in answers {
        assert_eq!(answer.status(), 200);
        rounds.push(checked_at(&answer.json().await.unwrap()));
    }
    rounds.sort();
    rounds.dedup();
    for pair in rounds.windows(2) {
        assert!(
            pair[1] - pair[0] >= time::Duration::seconds(1),
            "{rounds:?}"
        );
    }

    // The tag goes (the image stays: it has other names), and a later round
    // says so.
    docker(&["rmi", &copy]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let response = app.get("/healthz").await;
        if response.status() == 503 {
            let body: serde_json::Value = response.json().await.unwrap();
            assert!(
                body["missing"][0].as_str().unwrap().contains(&copy),
                "{body}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the missing image was never noticed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
