//! Small things seen in the browser: the projects page's dependency-image
//! badges tell "ready" from "failed" by colour.

use crate::browser::Browser;
use crate::helpers::TestApp;

const PROJECT: &str = "[project]\nname = \"p\"\nversion = \"1\"\n";
const TEST: &str = "def test_one():\n    assert 1\n";

/// Records a finished dependency image for `project` (as a build would).
async fn image(app: &TestApp, project: &str, state: &str, error: Option<&str>) {
    sqlx::query(
        "insert into dependency_images (key, project, prune_group, state, image, size_bytes, error, finished_at)
         values ($1, $1, $1, $2, 'te-deps:' || $1, 50000000, $3, now())",
    )
    .bind(project)
    .bind(state)
    .bind(error)
    .execute(&app.db)
    .await
    .unwrap();
}

async fn background(browser: &Browser, css: &str) -> String {
    let script =
        format!("return getComputedStyle(document.querySelector({css:?})).backgroundColor");
    let colour = browser.client.execute(&script, vec![]).await.unwrap();
    colour.as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn ready_and_failed_dependency_images_have_badges_of_their_own_colour() {
    let files = [
        ("alpha/pyproject.toml", PROJECT),
        ("alpha/test_a.py", TEST),
        ("beta/pyproject.toml", PROJECT),
        ("beta/test_b.py", TEST),
    ];
    let app = TestApp::spawn_with(&files, |c| c.no_executor = true).await;
    image(&app, "alpha", "ready", None).await;
    image(
        &app,
        "beta",
        "failed",
        Some("No matching distribution found for frobnicate==9"),
    )
    .await;
    let browser = Browser::start().await;
    browser.client.goto(&app.url("/projects")).await.unwrap();
    browser.find("tr[data-project=beta] .badge").await;
    let ready = background(&browser, "tr[data-project=alpha] .badge").await;
    let failed = background(&browser, "tr[data-project=beta] .badge").await;
    let plain = background(&browser, "tr[data-project=beta] code").await;
    assert_eq!(browser.text("tr[data-project=alpha] .badge").await, "ready");
    assert_eq!(browser.text("tr[data-project=beta] .badge").await, "failed");
    assert_ne!(ready, failed, "ready and failed differ");
    assert!(
        ready.starts_with("rgb(30, 138, 76)"),
        "ready is the theme's green: {ready}"
    );
    assert!(
        failed.starts_with("rgb(198, 40, 40)"),
        "failed is the theme's red: {failed}"
    );
    assert_ne!(ready, plain);
    browser.close().await;
}
