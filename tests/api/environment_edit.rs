//! The operator's edit page for one environment: a page of its own (not a
//! form in a table cell), a message after Save saying what changed, and a
//! refused value shown beside what was typed.

use crate::helpers::{browser, csrf_of, TestApp};

/// An operator's browser, signed in; its session's CSRF token.
async fn operator(app: &TestApp) -> (reqwest::Client, String) {
    let client = browser();
    let csrf = csrf_of(app, &client, "/operator").await;
    let response = client
        .post(app.url("/operator/sign-in"))
        .form(&[("_csrf", csrf.as_str()), ("token", "operator-secret")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    // The sign-out form carries the session's new token.
    let csrf = csrf_of(app, &client, "/operator").await;
    (client, csrf)
}

async fn page(client: &reqwest::Client, app: &TestApp, path: &str) -> (u16, String) {
    let response = client.get(app.url(path)).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn fields<'a>(csrf: &'a str, timeout: &'a str, labels: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("_csrf", csrf),
        ("cpus", "1"),
        ("memory_mb", "512"),
        ("pids_limit", "256"),
        ("timeout_secs", timeout),
        ("required_labels", labels),
        ("enabled", "on"),
    ]
}

#[tokio::test]
async fn saving_an_environment_says_what_changed_once() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let (client, csrf) = operator(&app).await;
    let (status, list) = page(&client, &app, "/environments").await;
    assert_eq!(status, 200);
    assert!(
        list.contains("href=\"/environments/7/edit\""),
        "each row links its edit page"
    );
    assert!(
        !list.contains("name=\"timeout_secs\" min=\"1\" value=\"900\""),
        "no form in the table"
    );

    let (status, edit) = page(&client, &app, "/environments/7/edit").await;
    assert_eq!(status, 200);
    assert!(edit.contains("action=\"/environments/7\"") && edit.contains("value=\"900\""));

    let saved = client
        .post(app.url("/environments/7"))
        .form(&fields(&csrf, "42", "gpu, big"))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 303);
    assert_eq!(saved.headers()["location"], "/environments");
    let (_, after) = page(&client, &app, "/environments").await;
    assert!(
        after.contains(
            "Environment 7 saved: time limit 900 s → 42 s; required labels none → big, gpu."
        ),
        "the message says what changed"
    );
    let (_, again) = page(&client, &app, "/environments").await;
    assert!(
        !again.contains("Environment 7 saved"),
        "the message shows once"
    );

    client
        .post(app.url("/environments/7"))
        .form(&fields(&csrf, "42", "gpu, big"))
        .send()
        .await
        .unwrap();
    let (_, same) = page(&client, &app, "/environments").await;
    assert!(same.contains("Environment 7 saved: nothing changed."));
}

#[tokio::test]
async fn a_refused_value_is_shown_on_the_edit_page_with_what_was_typed() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let (client, csrf) = operator(&app).await;
    let refused = client
        .post(app.url("/environments/8"))
        .form(&fields(&csrf, "999999", "big"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let html = refused.text().await.unwrap();
    assert!(
        html.contains("timeout_secs must be between 1 and 86400"),
        "{html}"
    );
    assert!(html.contains("value=\"999999\""), "what was typed is kept");
    assert!(
        html.contains("action=\"/environments/8\""),
        "on the edit page"
    );
    let env = &app.get_json("/api/v1/environments").await[7];
    assert_eq!(env["timeout_secs"], 900, "nothing was written: {env}");
}

#[tokio::test]
async fn the_edit_page_is_for_operators_only() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let (status, html) = page(&browser(), &app, "/environments/7/edit").await;
    assert_eq!(status, 401);
    assert!(html.contains("sign in at /operator"));
    let (client, _) = operator(&app).await;
    assert_eq!(page(&client, &app, "/environments/101/edit").await.0, 422);
    assert_eq!(page(&client, &app, "/environments/55/edit").await.0, 200);
}
