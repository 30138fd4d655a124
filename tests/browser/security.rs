//! The pages work under the Content-Security-Policy (Chromium reports no
//! violation), and a report with planted markup runs no script.

use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::Value;

use super::{
    helpers::{id, TestApp},
    Browser,
};

/// A test that rewrites pytest's JUnit report into an XHTML page whose
/// script would mark the page and the origin's storage.
const PLANT_MARKUP: &str = r#"
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

/// chromedriver's `POST /session/{id}/se/log`: the console messages since
/// the last call.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(r#"{"type": "browser"}"#.into()),
        )
    }
}

impl Browser {
    /// The console messages about the Content-Security-Policy since the last call.
    pub(crate) async fn csp_violations(&self) -> Vec<String> {
        let log = self.client.issue_cmd(BrowserLog).await.unwrap();
        log.as_array()
            .expect("the browser log is a list")
            .iter()
            .filter_map(|entry| entry["message"].as_str())
            .filter(|m| m.contains("Content Security Policy"))
            .map(String::from)
            .collect()
    }

    pub(crate) async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }
}

#[tokio::test]
async fn the_pages_and_their_live_parts_run_under_the_policy_without_violations() {
    let app = TestApp::spawn().await;
    let run = app.create_run(47, &["test_slow.py"]).await;
    let browser = Browser::start().await;
    let c = &browser.client;
    browser.csp_violations().await;

    c.goto(&app.url("/runs/new")).await.unwrap();
    browser
        .find("[data-file-filter]")
        .await
        .send_keys("slow")
        .await
        .unwrap();
    assert_eq!(
        browser.count("li[data-path]:not([hidden])").await,
        2,
        "app.js runs: the filter leaves the two slow files"
    );
    c.goto(&app.url(&format!("/runs/{}", id(&run))))
        .await
        .unwrap();
    browser.mark_page().await;
    browser
        .until(
            "htmx to poll the run to its end",
            Duration::from_secs(60),
            || async { browser.text("#run-status .badge").await == "success" },
        )
        .await;
    assert!(browser.count("#log .ln").await > 0, "log lines swapped in");
    assert!(
        browser.page_was_not_reloaded().await,
        "htmx swapped in place"
    );
    assert_eq!(
        browser
            .eval("return document.querySelectorAll('style').length")
            .await,
        0,
        "htmx injected no <style>"
    );
    for page in ["/", "/tests", "/operator"] {
        c.goto(&app.url(page)).await.unwrap();
        browser.find("main").await;
    }
    // Signed in, the environments page links the operator's edit page.
    browser
        .find("input[name=token]")
        .await
        .send_keys("operator-secret")
        .await
        .unwrap();
    browser
        .find("main form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser.find("#env-7 a.edit").await.click().await.unwrap();
    browser.find(".edit-panel form").await;
    c.goto(&app.url("/")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await; // a few polls of the runs table
    let violations = browser.csp_violations().await;
    assert!(violations.is_empty(), "CSP violations: {violations:#?}");

    // The detector works: an inline script is blocked and reported.
    browser
        .eval(
            "const s = document.createElement('script'); \
             s.textContent = 'window.__inline = 1'; document.head.appendChild(s); return null",
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        browser.eval("return window.__inline ?? null").await,
        Value::Null
    );
    let violations = browser.csp_violations().await;
    assert!(
        violations.iter().any(|m| m.contains("script")),
        "the blocked inline script is reported: {violations:#?}"
    );
    browser.close().await;
}

#[tokio::test]
async fn a_report_with_planted_markup_runs_no_script_in_the_browser() {
    let app = TestApp::spawn_with(&[("test_plant.py", PLANT_MARKUP)], |_| {}).await;
    let run = app.create_run(48, &["test_plant.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(90)).await;
    let report = app.url(&format!("/runs/{}/junit.xml", id(&run)));
    let response = app.client.get(&report).send().await.unwrap();
    let headers = response.headers().clone();
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("sandbox"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("<script>localStorage"),
        "the report holds the planted markup (else this test proves nothing)"
    );

    let browser = Browser::start().await;
    let c = &browser.client;
    c.goto(&app.url("/")).await.unwrap();
    // Opening the report downloads it (the navigation may report an abort).
    let _ = c.goto(&report).await;
    let saved = browser
        .downloads
        .join(format!("run-{}-junit.xml", id(&run)));
    browser
        .until(
            "the report to be saved as a file",
            Duration::from_secs(10),
            || async {
                std::fs::read_to_string(&saved)
                    .is_ok_and(|xml| xml.contains("<script>localStorage"))
            },
        )
        .await;
    assert_eq!(
        browser
            .eval("return document.documentElement.getAttribute('data-pwned')")
            .await,
        Value::Null,
        "the planted script did not run"
    );
    c.goto(&app.url("/")).await.unwrap();
    assert_eq!(
        browser.eval("return localStorage.getItem('pwned')").await,
        Value::Null,
        "the planted script did not reach the app's origin"
    );
    browser.close().await;
}
