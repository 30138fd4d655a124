//! The API's docs page renders from the binary alone, and the runs table
//! fits a 1280 px window.

use std::time::Duration;

use serde_json::json;

use crate::{helpers::TestApp, Browser};

#[tokio::test]
async fn the_api_docs_page_renders_every_operation_from_this_server_alone() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    browser.csp_violations().await;
    browser.client.goto(&app.url("/api/docs")).await.unwrap();
    browser
        .until("the operations drawn", Duration::from_secs(20), || async {
            browser.count(".swagger-ui .opblock").await >= 14
        })
        .await;
    let title = browser.text(".swagger-ui .info .title").await;
    assert!(title.contains("test-executor"), "{title}");
    assert!(browser.count(".swagger-ui .opblock-tag").await >= 4);
    // Everything it loaded (scripts, styles, the document) came from here.
    let loaded = browser
        .eval(
            "return performance.getEntriesByType('resource').map(e => e.name)
                 .concat([location.href])",
        )
        .await;
    let loaded: Vec<&str> = loaded
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        loaded.iter().any(|u| u.ends_with("/api/v1/openapi.json")),
        "{loaded:?}"
    );
    let elsewhere: Vec<_> = loaded
        .iter()
        .filter(|u| !u.starts_with(&app.address))
        .collect();
    assert!(elsewhere.is_empty(), "loaded from elsewhere: {elsewhere:?}");
    assert_eq!(browser.csp_violations().await, Vec::<String>::new());
    browser.screenshot("api-docs").await;
    browser.close().await;
}

#[tokio::test]
async fn the_runs_table_shows_its_duration_column_in_a_1280_px_window() {
    let long_path = "a_rather_long_folder_name_for_tests/another_nested_folder_inside_it/\
                     test_a_file_with_quite_a_long_descriptive_name.py";
    let app = TestApp::spawn_with(&[(long_path, "def test_x():\n    pass\n")], |c| {
        c.no_executor = true
    })
    .await;
    let long_user = "a-person-with-a-rather-long-username-of-sixty-four-characters-xx";
    for environment in [11, 12, 13] {
        let response = app
            .post_json(
                "/api/v1/runs",
                &json!({"username": long_user, "environment_id": environment,
                        "files": [long_path, "test_math.py", "test_failing.py"]}),
            )
            .await;
        assert_eq!(response.status(), 201);
    }
    // As finished runs with every kind of count (nothing executes here).
    sqlx::query(
        "update runs set status = 'failed', holds_environment = false,
                started_at = now() - interval '1 hour', finished_at = now(),
                collected = 123456, passed = 100000, failed = 12345, skipped = 11000,
                xfailed = 100, xpassed = 10, errors = 1",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let browser = Browser::start().await;
    browser.client.goto(&app.url("/")).await.unwrap();
    browser.find("table.runs").await;
    let sizes = browser
        .eval(
            "const th = [...document.querySelectorAll('table.runs th')].pop();
             const box = document.querySelector('table.runs').parentElement;
             return {header: th.textContent, right: th.getBoundingClientRect().right,
                     viewport: document.documentElement.clientWidth,
                     scroll: box.scrollWidth, width: box.clientWidth};",
        )
        .await;
    assert_eq!(sizes["header"], "Duration");
    let viewport = sizes["viewport"].as_f64().unwrap();
    assert!((1250.0..=1280.0).contains(&viewport), "{sizes}");
    assert!(
        sizes["right"].as_f64().unwrap() <= viewport,
        "the Duration header ends off screen: {sizes}"
    );
    assert!(
        sizes["scroll"].as_f64().unwrap() <= sizes["width"].as_f64().unwrap(),
        "the table scrolls sideways: {sizes}"
    );
    browser.screenshot("runs-crowded").await;
    browser.close().await;
}
