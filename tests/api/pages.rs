//! The HTML pages through HTTP: escaping, CSRF, the form's answers, and
//! live parts that stop polling once a run is over.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{browser, csrf_of, id, TestApp};

const HOSTILE: &str = r#"
def test_hostile_output():
    print("<img src=x onerror=alert(1)><script>alert(2)</script>")
"#;

#[tokio::test]
async fn hostile_usernames_and_log_lines_are_escaped() {
    let app = TestApp::spawn_with(&[("test_hostile.py", HOSTILE)], |_| {}).await;
    let response = app
        .post_json("/api/v1/runs", &json!({"username": "<script>alert(3)</script>", "environment_id": 1, "files": ["test_hostile.py"]}))
        .await;
    let run: serde_json::Value = response.json().await.unwrap();
    app.wait_finished(id(&run), Duration::from_secs(60)).await;
    for path in [
        format!("/runs/{}", id(&run)),
        "/".to_string(),
        format!("/runs/{}/fragments/logs?after=-1", id(&run)),
    ] {
        let html = app.get(&path).await.text().await.unwrap();
        assert!(!html.contains("<script>alert"), "{path} has raw script");
        assert!(!html.contains("<img src=x"), "{path} has a raw img");
    }
    let page = app
        .get(&format!("/runs/{}", id(&run)))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("&lt;script&gt;alert(3)&lt;/script&gt;"),
        "username shown escaped"
    );
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "log line shown escaped"
    );
}

#[tokio::test]
async fn a_forged_cross_site_form_post_is_refused_and_changes_nothing() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let form = [
        ("username", "mallory"),
        ("environment_id", "1"),
        ("files", "test_math.py"),
    ];
    let no_token = browser()
        .post(app.url("/runs"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 403);
    let browser = browser();
    let _ = csrf_of(&app, &browser, "/runs/new").await;
    let mut wrong = form.to_vec();
    wrong.push(("_csrf", "0123456789abcdef0123456789abcdef"));
    let wrong_token = browser
        .post(app.url("/runs"))
        .form(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_token.status(), 403);
    assert!(wrong_token.text().await.unwrap().contains("another site"));
    assert_eq!(app.count_runs().await, 0);
}

#[tokio::test]
async fn the_form_starts_a_run_remembers_the_user_and_answers_a_busy_environment() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let browser = browser();
    let csrf = csrf_of(&app, &browser, "/runs/new").await;
    let form = [
        ("_csrf", csrf.as_str()),
        ("username", "ann"),
        ("environment_id", "5"),
        ("files", "test_math.py"),
        ("files", "api/test_users.py"),
    ];
    let created = browser
        .post(app.url("/runs"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 303);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/runs/"), "{location}");
    let holder = location.trim_start_matches("/runs/");

    let again = browser
        .get(app.url("/runs/new"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        again.contains("value=\"ann\""),
        "the username is remembered"
    );

    let busy = browser
        .post(app.url("/runs"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(busy.status(), 409);
    let page = busy.text().await.unwrap();
    assert!(
        page.contains(&format!("busy with run #{holder}")),
        "names the holder"
    );
    assert!(
        page.contains(&format!("href=\"/runs/{holder}\"")),
        "links the holder"
    );
    assert!(page.contains("Wait in line"), "offers to wait");
    assert!(
        page.contains("value=\"api/test_users.py\" checked"),
        "keeps the chosen files"
    );

    let mut wait = form.to_vec();
    wait.push(("queue_if_busy", "on"));
    let queued = browser
        .post(app.url("/runs"))
        .form(&wait)
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), 303);
    assert_eq!(app.count_runs().await, 2);
}

#[tokio::test]
async fn form_errors_are_shown_by_their_fields_and_what_was_typed_is_kept() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let browser = browser();
    let csrf = csrf_of(&app, &browser, "/runs/new").await;
    let form = [
        ("_csrf", csrf.as_str()),
        ("username", "  "),
        ("environment_id", "0"),
        ("files", "test_math.py"),
    ];
    let response = browser
        .post(app.url("/runs"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let page = response.text().await.unwrap();
    assert!(page.contains("enter a username"), "username error");
    assert!(page.contains("1 to 100"), "environment error");
    assert!(page.contains("value=\"test_math.py\" checked"), "file kept");
    let none = [
        ("_csrf", csrf.as_str()),
        ("username", "ann"),
        ("environment_id", "3"),
    ];
    let page = browser
        .post(app.url("/runs"))
        .form(&none)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("choose at least one test file"));
    assert_eq!(app.count_runs().await, 0);
}

#[tokio::test]
async fn the_csrf_and_session_cookies_are_http_only_and_same_site() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let browser = browser();
    let response = browser.get(app.url("/runs/new")).send().await.unwrap();
    let csrf_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csrf_cookie.starts_with("te_csrf="), "{csrf_cookie}");
    let csrf = csrf_of(&app, &browser, "/runs/new").await;
    let form = [
        ("_csrf", csrf.as_str()),
        ("username", "ann"),
        ("environment_id", "5"),
        ("files", "test_math.py"),
    ];
    let created = browser
        .post(app.url("/runs"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 303);
    let session_cookie = created.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(session_cookie.starts_with("id="), "{session_cookie}");
    for cookie in [csrf_cookie, session_cookie] {
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    }
}

#[tokio::test]
async fn live_parts_poll_while_a_run_is_active_and_stop_when_it_is_over() {
    let app = TestApp::spawn().await;
    let run = app.create_run(6, &["test_slow.py"]).await;
    let run_id = id(&run);
    app.wait_for(run_id, Duration::from_secs(30), |r| {
        r["status"] == "running"
    })
    .await;
    let live = app
        .get(&format!("/runs/{run_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(live.contains("id=\"log-poller\""), "the log tail polls");
    assert!(
        live.contains(&format!("hx-get=\"/runs/{run_id}/fragments/status\"")),
        "the status polls"
    );
    let table = app.get("/").await.text().await.unwrap();
    assert!(
        table.contains(&format!("/fragments/runs/{run_id}/row")),
        "the active row polls"
    );

    app.wait_finished(run_id, Duration::from_secs(60)).await;
    let done = app
        .get(&format!("/runs/{run_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !done.contains("hx-trigger"),
        "nothing polls on a finished run"
    );
    let status = app
        .get(&format!("/runs/{run_id}/fragments/status"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !status.contains("hx-trigger"),
        "the status fragment stops polling"
    );
    let table = app.get("/").await.text().await.unwrap();
    assert!(
        !table.contains(&format!("/fragments/runs/{run_id}/row")),
        "the finished row is still"
    );
}

#[tokio::test]
async fn the_runs_poller_answers_204_until_a_newer_run_exists() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let first = id(&app.create_run(1, &["test_math.py"]).await);
    let idle = app
        .get(&format!("/fragments/runs/newer?after={first}"))
        .await;
    assert_eq!(idle.status(), 204);
    let second = id(&app.create_run(2, &["test_math.py"]).await);
    let newer = app
        .get(&format!("/fragments/runs/newer?after={first}"))
        .await;
    assert_eq!(newer.status(), 200);
    let html = newer.text().await.unwrap();
    assert!(
        html.contains(&format!("id=\"run-{second}\""))
            && !html.contains(&format!("id=\"run-{first}\""))
    );
    assert!(
        html.contains(&format!("newer?after={second}")),
        "the poller moves on"
    );
    let filtered = app
        .get(&format!(
            "/fragments/runs/newer?after={first}&environment_id=9"
        ))
        .await;
    assert_eq!(filtered.status(), 204, "filters apply");
}

#[tokio::test]
async fn pages_for_missing_things_are_404_pages() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let response = app.get("/runs/424242").await;
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("does not exist"));
    assert_eq!(app.get("/tests").await.status(), 422);
}
