//! A project with dependencies through the app, on a small requirement
//! (iniconfig from the package index): its runs after the first take warm
//! containers of its dependency image, a changed requirement rebuilds once
//! (and the pool follows the new image), an operator can ask for a rebuild,
//! and an unknown requirement ends the run `error` with pip's own line.
//! Every image built is removed when the app is dropped (`TestApp`).

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{browser, csrf_of, id, TestApp};

const TEST: &str = "import iniconfig\n\n\
def test_iniconfig_is_installed():\n    assert iniconfig.IniConfig\n";

/// An app whose tests folder holds one project (`demo`) with `requirement`
/// in its `requirements-test.txt`, and a warm pool of `pool`.
async fn app_with_project(requirement: &str, pool: usize) -> TestApp {
    let requirements = format!("{requirement}\n");
    TestApp::spawn_with(
        &[
            ("demo/requirements-test.txt", requirements.as_str()),
            ("demo/tests/test_demo.py", TEST),
        ],
        |c| c.warm_pool = Some(pool),
    )
    .await
}

async fn run_demo(app: &TestApp) -> Value {
    let run = app.create_run(1, &["demo/tests/test_demo.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(300)).await;
    let logs = app.log_text(id(&run)).await.join("\n");
    assert_eq!(run["project"], "demo", "{run}");
    assert_eq!(run["status"], "success", "{run}\n{logs}");
    run
}

/// Waits until the pool holds a ready container of each image.
async fn warm_for(app: &TestApp, images: &[&str]) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let health = app.get_json("/healthz").await;
        let ready = |image: &str| {
            health["warm_pool"]["images"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|i| i["image"] == image && i["ready"].as_u64() >= Some(1))
        };
        if images.iter().all(|i| ready(i)) {
            return health;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pool never warmed {images:?}: {health}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn builds(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from dependency_images")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

fn set_requirement(app: &TestApp, requirement: &str) {
    std::fs::write(
        app.tests_dir.join("demo/requirements-test.txt"),
        format!("{requirement}\n"),
    )
    .unwrap();
}

#[tokio::test]
async fn runs_after_the_first_take_warm_containers_of_the_projects_image() {
    let app = app_with_project("iniconfig==2.0.0", 2).await;
    let base = std::env::var("RUNNER_IMAGE").unwrap_or("test-executor-runner:latest".into());
    warm_for(&app, &[&base]).await;

    let first = run_demo(&app).await;
    let image = first["image"].as_str().unwrap().to_owned();
    assert!(image.starts_with("te-deps/"), "{first}");
    assert_eq!(first["sandbox"], "plain", "the image did not exist yet");

    // The pool makes room for the project's image and keeps one of the base.
    let health = warm_for(&app, &[&image, &base]).await;
    assert_eq!(health["warm_pool"]["ready"], 2, "{health}");
    let second = run_demo(&app).await;
    assert_eq!(second["image"], image.as_str());
    assert_eq!(second["sandbox"], "warm", "{second}");
    assert_eq!(builds(&app).await, 1);

    // A changed requirement: one build, then warm runs of the new image.
    set_requirement(&app, "iniconfig==1.1.1");
    let changed = run_demo(&app).await;
    let new_image = changed["image"].as_str().unwrap().to_owned();
    assert_ne!(new_image, image);
    assert_eq!(builds(&app).await, 2, "the changed requirement built once");
    warm_for(&app, &[&new_image, &base]).await;
    let again = run_demo(&app).await;
    assert_eq!(again["image"], new_image.as_str());
    assert_eq!(again["sandbox"], "warm", "{again}");
    assert_eq!(builds(&app).await, 2, "nothing built the second time");
    let health = app.get_json("/healthz").await;
    assert!(
        !health["warm_pool"]["images"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["image"] == image.as_str()),
        "the old image is no longer kept warm: {health}"
    );
}

async fn rebuild(app: &TestApp, project: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = app
        .client
        .post(app.url(&format!("/api/v1/projects/{project}/rebuild")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(json!(null)))
}

#[tokio::test]
async fn an_operator_rebuilds_a_projects_image_and_the_next_run_uses_the_new_one() {
    let app = app_with_project("iniconfig==2.0.0", 2).await;
    let (status, body) = rebuild(&app, "demo", Some("operator-secret")).await;
    assert_eq!(status, 409, "nothing to rebuild before a first run: {body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("next run builds one"),
        "{body}"
    );

    let first = run_demo(&app).await;
    let image = first["image"].as_str().unwrap().to_owned();
    let built_at = |projects: &Value| projects[0]["dependency_image"]["finished_at"].clone();
    let before = built_at(&app.get_json("/api/v1/projects").await);

    let (status, body) = rebuild(&app, "demo", None).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = rebuild(&app, "demo", Some("wrong")).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = rebuild(&app, "nope", Some("operator-secret")).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(builds(&app).await, 1, "a refused rebuild changed nothing");

    let (status, body) = rebuild(&app, "demo", Some("operator-secret")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["previous_image"], image.as_str());
    // The build starts at once; the projects list shows it until it is ready.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    let rebuilt = loop {
        let projects = app.get_json("/api/v1/projects").await;
        let listed = &projects[0]["dependency_image"];
        if listed["state"] == "ready" && built_at(&projects) != before {
            break listed.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rebuild never finished: {projects}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(rebuilt["image"], image.as_str(), "same inputs, same name");
    let next = run_demo(&app).await;
    assert_eq!(next["image"], image.as_str());
    assert_eq!(builds(&app).await, 1, "the run used the rebuilt image");

    // The page's button: operators only, and it does the same.
    let button = "action=\"/projects/demo/rebuild\"";
    let page = app.get("/projects").await.text().await.unwrap();
    assert!(!page.contains(button), "no button for a visitor");
    let operator = browser();
    let csrf = csrf_of(&app, &operator, "/operator").await;
    let signed_in = operator
        .post(app.url("/operator/sign-in"))
        .form(&[("_csrf", csrf.as_str()), ("token", "operator-secret")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let page = operator
        .get(app.url("/projects"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(button), "an operator sees the button");
    let before = built_at(&app.get_json("/api/v1/projects").await);
    let csrf = csrf_of(&app, &operator, "/projects").await;
    let pressed = operator
        .post(app.url("/projects/demo/rebuild"))
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(pressed.status(), 303);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        let projects = app.get_json("/api/v1/projects").await;
        if projects[0]["dependency_image"]["state"] == "ready" && built_at(&projects) != before {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the button's rebuild never finished: {projects}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn an_unknown_requirement_ends_the_run_error_with_pips_own_line() {
    let app = app_with_project("frobnicate==9", 1).await;
    let run = app.create_run(1, &["demo/tests/test_demo.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(300)).await;
    assert_eq!(run["status"], "error", "{run}");
    let reason = run["reason"].as_str().unwrap();
    assert!(
        reason.contains("No matching distribution found for frobnicate==9"),
        "{reason}"
    );
    // The build log is on the run's page.
    let page = app
        .get(&format!("/runs/{}", id(&run)))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("No matching distribution found for frobnicate==9"),
        "the run page shows pip's line"
    );
    // The next run gets the same answer without building again.
    let again = app.create_run(1, &["demo/tests/test_demo.py"]).await;
    let again = app.wait_finished(id(&again), Duration::from_secs(60)).await;
    assert_eq!(again["status"], "error");
    assert_eq!(again["reason"], run["reason"]);
    assert_eq!(builds(&app).await, 1);
}
