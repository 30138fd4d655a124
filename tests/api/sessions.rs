//! Sessions are stored only when something is written to them: anonymous
//! visitors' forms are protected by a CSRF cookie instead, and an operator's
//! session keeps a CSRF token of its own.

use crate::helpers::{browser, csrf_of, TestApp};

const TOKEN: &str = "operator-secret";

async fn stored_sessions(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from tower_sessions.session")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn status_of(
    browser: &reqwest::Client,
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
) -> u16 {
    let response = browser.post(app.url(path)).form(form).send().await.unwrap();
    response.status().as_u16()
}

fn run_form(csrf: &str) -> [(&str, &str); 4] {
    [
        ("_csrf", csrf),
        ("username", "ann"),
        ("environment_id", "7"),
        ("files", "test_math.py"),
    ]
}

#[tokio::test]
async fn anonymous_visits_store_no_session_and_a_username_stores_one() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let returning = browser();
    for _ in 0..5 {
        for page in ["/runs/new", "/", "/operator", "/environments", "/projects"] {
            let first_visit = browser().get(app.url(page)).send().await.unwrap();
            assert_eq!(first_visit.status(), 200, "{page}");
            let again = returning.get(app.url(page)).send().await.unwrap();
            assert_eq!(again.status(), 200, "{page}");
        }
    }
    assert_eq!(
        stored_sessions(&app).await,
        0,
        "anonymous visits store nothing"
    );

    let csrf = csrf_of(&app, &returning, "/runs/new").await;
    assert_eq!(
        status_of(&returning, &app, "/runs", &run_form(&csrf)).await,
        303
    );
    assert_eq!(stored_sessions(&app).await, 1, "the username is stored");
    let form = returning
        .get(app.url("/runs/new"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(form.contains("value=\"ann\""), "and remembered");
    assert_eq!(
        csrf_of(&app, &returning, "/runs/new").await,
        csrf,
        "open tabs keep working"
    );
}

#[tokio::test]
async fn a_form_token_without_its_cookie_is_refused() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let csrf = csrf_of(&app, &browser(), "/runs/new").await;
    let stranger = browser();
    assert_eq!(
        status_of(&stranger, &app, "/runs", &run_form(&csrf)).await,
        403
    );
    // Even with a cookie of its own: the token must be the browser's.
    let _ = csrf_of(&app, &stranger, "/runs/new").await;
    assert_eq!(
        status_of(&stranger, &app, "/runs", &run_form(&csrf)).await,
        403
    );
    assert_eq!(app.count_runs().await, 0);
}

#[tokio::test]
async fn an_operators_forms_take_the_token_of_their_session_not_the_cookie() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let operator = browser();
    let before = csrf_of(&app, &operator, "/operator").await;
    let sign_in = [("_csrf", before.as_str()), ("token", TOKEN)];
    assert_eq!(
        status_of(&operator, &app, "/operator/sign-in", &sign_in).await,
        303
    );
    assert_eq!(stored_sessions(&app).await, 1);

    // A token known before sign-in (what a planted cookie would hold) is
    // worth nothing now.
    let known = [("_csrf", before.as_str())];
    assert_eq!(
        status_of(&operator, &app, "/environments/44/delete", &known).await,
        403
    );
    let after = csrf_of(&app, &operator, "/environments/44/edit").await;
    assert_ne!(after, before, "signing in gives the session a new token");
    let own = [("_csrf", after.as_str())];
    assert_eq!(
        status_of(&operator, &app, "/environments/44/delete", &own).await,
        303
    );
    let envs = app.get_json("/api/v1/environments").await;
    assert!(
        !envs.as_array().unwrap().iter().any(|e| e["id"] == 44),
        "the operator's own form worked"
    );

    assert_eq!(
        status_of(&operator, &app, "/operator/sign-out", &own).await,
        303
    );
    assert_eq!(
        stored_sessions(&app).await,
        0,
        "signing out deletes a session that holds no username"
    );
    let again = csrf_of(&app, &operator, "/operator").await;
    assert_eq!(again, before, "back to the cookie's token");
}
