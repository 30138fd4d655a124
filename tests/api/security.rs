//! Security headers on every response, run-produced reports served as inert
//! downloads, and a JSON API that browsers cannot be made to call.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{browser, csrf_of, id, TestApp};

const TOKEN: &str = "operator-secret";

/// A test that rewrites pytest's JUnit report into an XHTML page with a
/// script, the way a hostile test would try to reach the browser.
pub const PLANT_MARKUP: &str = r#"
import pytest

PAGE = """<?xml version="1.0"?>
<html xmlns="http://www.w3.org/1999/xhtml"><body>
<p id="planted">planted</p>
<script>localStorage.setItem("pwned", "1"); document.documentElement.setAttribute("data-pwned", "1");</script>
</body></html>
"""

class Rewrite:
    def __init__(self, path):
        self.path = path

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config):
        with open(self.path, "w") as f:
            f.write(PAGE)

def test_plants_markup_in_the_report(request):
    request.config.pluginmanager.register(Rewrite(request.config.option.xmlpath), "rewrite")
"#;

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("{} has no {name} header", response.url()))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let run = app.create_run(41, &["test_math.py"]).await;
    let form_post = app
        .client
        .post(app.url("/api/v1/runs"))
        .form(&[("username", "ann")])
        .send()
        .await
        .unwrap();
    let mut responses = vec![form_post];
    for path in [
        "/".to_string(),
        "/runs/new".to_string(),
        format!("/runs/{}", id(&run)),
        format!("/runs/{}/fragments/status", id(&run)),
        "/environments".to_string(),
        "/operator".to_string(),
        "/tests".to_string(),
        "/healthz".to_string(),
        "/api/v1/environments".to_string(),
        "/api/v1/runs/999999".to_string(),
        "/assets/app.js".to_string(),
        "/assets/no-such-file.js".to_string(),
        "/no-such-page".to_string(),
    ] {
        responses.push(app.get(&path).await);
    }
    for response in &responses {
        let csp = header(response, "content-security-policy");
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-eval"), "{csp}");
        let script_src = csp.split(';').find(|d| d.contains("script-src")).unwrap();
        assert!(!script_src.contains("unsafe-inline"), "{csp}");
        assert_eq!(header(response, "x-content-type-options"), "nosniff");
        assert_eq!(header(response, "referrer-policy"), "same-origin");
        assert_eq!(header(response, "x-frame-options"), "DENY");
    }
}

#[tokio::test]
async fn pages_carry_no_inline_script_and_keep_htmx_from_injecting_styles() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let run = app.create_run(42, &["test_math.py"]).await;
    for path in [
        "/".to_string(),
        "/runs/new".to_string(),
        format!("/runs/{}", id(&run)),
        "/environments".to_string(),
        "/operator".to_string(),
        "/tests".to_string(),
    ] {
        let html = app.get(&path).await.text().await.unwrap();
        let lower = html.to_ascii_lowercase();
        for (at, _) in lower.match_indices("<script") {
            let tag = &lower[at..at + lower[at..].find('>').unwrap()];
            assert!(tag.contains(" src="), "{path}: inline script {tag}");
        }
        assert!(!lower.contains("<style"), "{path}: inline <style>");
        assert!(!lower.contains("hx-on"), "{path}: hx-on runs code");
        let handlers = ["onclick=", "onload=", "onchange=", "oninput=", "onsubmit="];
        for handler in handlers {
            assert!(!lower.contains(handler), "{path}: {handler}");
        }
        assert!(
            html.contains(r#"name="htmx-config""#) && html.contains("includeIndicatorStyles"),
            "{path}: htmx is told not to inject its <style>"
        );
    }
}

#[tokio::test]
async fn a_report_with_planted_markup_is_served_as_an_inert_attachment() {
    let app = TestApp::spawn_with(&[("test_plant.py", PLANT_MARKUP)], |_| {}).await;
    let run = app.create_run(43, &["test_plant.py"]).await;
    app.wait_finished(id(&run), Duration::from_secs(90)).await;
    let response = app.get(&format!("/runs/{}/junit.xml", id(&run))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-disposition"),
        format!("attachment; filename=\"run-{}-junit.xml\"", id(&run))
    );
    let csp = header(&response, "content-security-policy");
    assert!(csp.starts_with("sandbox"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    let body = response.text().await.unwrap();
    assert!(
        body.contains("<script>localStorage"),
        "the planted markup is what was stored (else this test proves nothing): {body}"
    );
}

#[tokio::test]
async fn a_form_post_to_a_json_route_gets_415_and_changes_nothing() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let form = app
        .client
        .post(app.url("/api/v1/runs"))
        .form(&[
            ("username", "ann"),
            ("environment_id", "44"),
            ("files", "test_math.py"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    let body: Value = form.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Content-Type: application/json"),
        "{body}"
    );
    for content_type in ["text/plain", "multipart/form-data; boundary=x"] {
        let response = app
            .client
            .post(app.url("/api/v1/runs"))
            .header("content-type", content_type)
            .body(r#"{"username": "ann", "environment_id": 44, "files": ["test_math.py"]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 415, "{content_type}");
    }
    let untyped_body = app
        .client
        .post(app.url("/api/v1/runs"))
        .body(r#"{"username": "ann", "environment_id": 44, "files": ["test_math.py"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(untyped_body.status(), 415, "a body needs a content type");
    let operator_form = app
        .client
        .patch(app.url("/api/v1/environments/44"))
        .bearer_auth(TOKEN)
        .form(&[("cpus", "0.5")])
        .send()
        .await
        .unwrap();
    assert_eq!(operator_form.status(), 415, "even with the token");
    assert_eq!(app.count_runs().await, 0);
    let env = &app.get_json("/api/v1/environments").await[43];
    assert_eq!(env["cpus"], 1.0, "{env}");
    // JSON still works, with or without a charset.
    let json = app
        .client
        .post(app.url("/api/v1/runs"))
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"username": "ann", "environment_id": 44, "files": ["test_math.py"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 201);
}

#[tokio::test]
async fn an_operators_cookie_cannot_create_an_environment_through_the_api() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let deleted = app
        .client
        .delete(app.url("/api/v1/environments/45"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let operator = browser();
    let csrf = csrf_of(&app, &operator, "/operator").await;
    let signed_in = operator
        .post(app.url("/operator/sign-in"))
        .form(&[("_csrf", csrf.as_str()), ("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let page = operator
        .get(app.url("/environments"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Signed in as operator"),
        "the cookie is an operator's on the pages"
    );

    // What a same-site page could make the operator's browser send.
    let form = operator
        .post(app.url("/api/v1/environments/45"))
        .form(&[("cpus", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    let bodyless = operator
        .post(app.url("/api/v1/environments/45"))
        .send()
        .await
        .unwrap();
    assert_eq!(bodyless.status(), 401);
    let as_json = operator
        .post(app.url("/api/v1/environments/45"))
        .json(&json!({"cpus": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(as_json.status(), 401);
    let answer: Value = as_json.json().await.unwrap();
    assert!(
        answer["error"].as_str().unwrap().contains("Bearer"),
        "{answer}"
    );
    let envs = app.get_json("/api/v1/environments").await;
    assert!(
        envs.as_array().unwrap().iter().all(|e| e["id"] != 45),
        "environment 45 was not created"
    );
}

/// The scripts give the database role a random password (kept in a file only
/// root reads): the fixed one they once set, which a hostile build could
/// guess, is refused.
#[tokio::test]
async fn the_database_refuses_the_old_fixed_password() {
    let url =
        std::env::var("DATABASE_URL").expect("DATABASE_URL must be set (scripts/test sets it)");
    let Some((scheme_user, rest)) = url.split_once("://").and_then(|(_, r)| r.split_once('@'))
    else {
        panic!("DATABASE_URL names no user");
    };
    let user = scheme_user.split(':').next().unwrap();
    assert_ne!(
        scheme_user, "test_executor:test_executor",
        "the scripts still set the fixed password"
    );
    let guessed = format!("postgres://{user}:{user}@{rest}");
    let err = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&guessed)
        .await
        .expect_err("the guessed password was accepted");
    assert!(
        format!("{err}").contains("password authentication failed"),
        "{err}"
    );
}
