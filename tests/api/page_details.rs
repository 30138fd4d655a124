//! Small things a newcomer meets on every page: the icon the pages name
//! (and no 404 for `/favicon.ico`), and the outcome tabs with their counts.

use std::{collections::BTreeMap, time::Duration};

use crate::helpers::{id, TestApp};

#[tokio::test]
async fn the_pages_name_an_icon_and_favicon_ico_is_no_404() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let legacy = app.get("/favicon.ico").await;
    assert_eq!(legacy.status(), 204, "nothing, rather than a 404");
    let page = app.get("/").await.text().await.unwrap();
    assert!(
        page.contains(r#"<link rel="icon" type="image/svg+xml" href="/assets/favicon.svg">"#),
        "{page}"
    );
    let icon = app.get("/assets/favicon.svg").await;
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    assert!(icon.text().await.unwrap().starts_with("<svg"));
}

#[tokio::test]
async fn the_outcome_tabs_count_the_tests_of_each_outcome() {
    let app = TestApp::spawn().await;
    let run_id = id(&app.create_run(9, &["test_mixed.py"]).await);
    app.wait_finished(run_id, Duration::from_secs(60)).await;
    let tests = app.get_json(&format!("/api/v1/runs/{run_id}/tests")).await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for t in tests.as_array().unwrap() {
        *counts
            .entry(t["outcome"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert!(counts.len() >= 3, "several outcomes: {counts:?}");
    let html = app
        .get(&format!("/runs/{run_id}/fragments/tests"))
        .await
        .text()
        .await
        .unwrap();
    let total: usize = counts.values().sum();
    assert!(
        html.contains(&format!(r#">all <span class="n">{total}</span>"#)),
        "{html}"
    );
    for (outcome, n) in &counts {
        assert!(
            html.contains(&format!(r#">{outcome} <span class="n">{n}</span>"#)),
            "{outcome} {n}: {html}"
        );
    }
    assert!(!counts.contains_key("error"));
    assert!(
        !html.contains(">error <span"),
        "no tab for an outcome no test had"
    );

    // A chosen outcome keeps its tab, counted, even at zero.
    let chosen = app
        .get(&format!("/runs/{run_id}/fragments/tests?outcome=error"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        chosen.contains(r#">error <span class="n">0</span>"#),
        "{chosen}"
    );
    crate::helpers::remove_containers(&app.instance);
}
