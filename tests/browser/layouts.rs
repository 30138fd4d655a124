//! Every page fits a phone (390×844, mobile-emulated) and a 1280×900 window
//! with no sideways scroll: the document is never wider than the device
//! (a phone zooms out to fit wider content, so the device's width is the
//! measure, not `innerWidth`). Tables may scroll inside their own box on a
//! phone; at 1280 px nothing scrolls sideways at all. Screenshots of each
//! page land in `docs/screenshots/layout-{phone,desktop}-*.png`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::browser::{Browser, PHONE};
use crate::helpers::{self, id, TestApp};

const DESKTOP: (u32, u32) = (1280, 900);
const LONG_FILE: &str = "integration/payments/providers/test_refunds_with_partial_captures.py";
const LONG_TEST: &str = "def test_a_refund_of_a_partially_captured_payment_is_split_between_the_captures():\n    assert True\n";
const SLOW: &str = "import time\n\ndef test_runs_while_the_pages_are_measured():\n    for i in range(600):\n        print(f'{i} s', flush=True)\n        time.sleep(1)\n";
const USER: &str = "margaret-hamilton-apollo-guidance";

/// What the layout is measured by: the document's width, and (for the
/// failure message) the elements that stick out past the viewport.
const MEASURE: &str = r#"
const vw = document.documentElement.clientWidth;
const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
    + (typeof e.className === 'string' && e.className.trim() ? '.' + e.className.trim().split(/\s+/).join('.') : '');
const clipped = e => { for (let p = e.parentElement; p; p = p.parentElement) {
    const o = getComputedStyle(p).overflowX; if (o !== 'visible' && o !== 'clip' && p !== document.body && p !== document.documentElement) return true; } return false; };
const out = [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > vw + 1 && !clipped(e))
    .slice(0, 6).map(e => name(e) + ' ends at ' + Math.round(e.getBoundingClientRect().right));
const inner = [...document.querySelectorAll('body *')]
    .filter(e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX) && e.scrollWidth > e.clientWidth + 1)
    .slice(0, 6).map(e => name(e) + ' scrolls ' + e.scrollWidth + ' in ' + e.clientWidth);
return {width: document.documentElement.scrollWidth, out: out, inner: inner};
"#;

/// Each page under test, named for its screenshot.
fn pages(running: i64, finished: i64) -> Vec<(&'static str, String)> {
    let nodeid = format!(
        "{LONG_FILE}::test_a_refund_of_a_partially_captured_payment_is_split_between_the_captures"
    );
    let nodeid: String = form_urlencoded::byte_serialize(nodeid.as_bytes()).collect();
    vec![
        ("run-running", format!("/runs/{running}")),
        ("runs", "/".into()),
        ("new-run", "/runs/new".into()),
        ("run-finished", format!("/runs/{finished}")),
        ("projects", "/projects".into()),
        ("test-history", format!("/tests?nodeid={nodeid}")),
        ("operator", "/operator".into()),
        ("environments", "/environments".into()),
    ]
}

async fn sign_in(browser: &Browser, app: &TestApp) {
    browser.client.goto(&app.url("/operator")).await.unwrap();
    let token = browser.find("input[name=token]").await;
    token.send_keys("operator-secret").await.unwrap();
    browser
        .find("main form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser.find("#env-1").await;
}

/// Visits every page; what did not fit, one line per problem.
async fn misfits(
    browser: &Browser,
    app: &TestApp,
    device: &str,
    width: u32,
    pages: &[(&str, String)],
) -> Vec<String> {
    sign_in(browser, app).await;
    let mut problems = Vec::new();
    for (name, path) in pages {
        browser.client.goto(&app.url(path)).await.unwrap();
        browser.find("main").await;
        // Live parts (usage, charts, logs) fill in after the first paint.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let m: Value = browser.client.execute(MEASURE, vec![]).await.unwrap();
        let doc = m["width"].as_u64().unwrap_or(u64::MAX);
        if doc > u64::from(width) {
            problems.push(format!(
                "{device} {path}: {doc} px wide in {width} px: {}",
                m["out"]
            ));
        }
        if device == "desktop" && m["inner"].as_array().is_some_and(|a| !a.is_empty()) {
            problems.push(format!("{device} {path}: scrolls inside: {}", m["inner"]));
        }
        browser.screenshot(&format!("layout-{device}-{name}")).await;
    }
    problems
}

#[tokio::test]
async fn every_page_fits_a_phone_and_a_1280_px_window_without_sideways_scroll() {
    let project = [
        (
            "warehouse-inventory-reconciliation/pyproject.toml",
            "[project]\nname = \"warehouse\"\nversion = \"1\"\n",
        ),
        (
            "warehouse-inventory-reconciliation/tests/test_stock.py",
            "def test_stock():\n    assert 1\n",
        ),
        (LONG_FILE, LONG_TEST),
        ("slow/test_long.py", SLOW),
    ];
    let app = TestApp::spawn_with(&project, |_| {}).await;
    let finished = create(&app, 2, &[LONG_FILE, "test_math.py", "test_failing.py"]).await;
    app.wait_finished(finished, Duration::from_secs(60)).await;
    let running = create(&app, 3, &["slow/test_long.py"]).await;
    app.wait_for(running, Duration::from_secs(30), |r| {
        r["current_test"].is_string()
    })
    .await;
    let pages = pages(running, finished);

    let phone = Browser::start_phone().await;
    let mut problems = misfits(&phone, &app, "phone", PHONE.0, &pages).await;
    phone.close().await;
    let desktop = Browser::start().await;
    problems.extend(misfits(&desktop, &app, "desktop", DESKTOP.0, &pages).await);
    desktop.close().await;

    let cancel = app
        .post_json(
            &format!("/api/v1/runs/{running}/cancel"),
            &json!({"username": USER}),
        )
        .await;
    assert_eq!(cancel.status(), 200);
    helpers::remove_containers(&app.instance);
    assert!(
        problems.is_empty(),
        "pages that do not fit:\n{}",
        problems.join("\n")
    );
}

async fn create(app: &TestApp, environment: i64, files: &[&str]) -> i64 {
    let body = json!({"username": USER, "environment_id": environment, "files": files});
    let response = app.post_json("/api/v1/runs", &body).await;
    assert_eq!(response.status(), 201);
    id(&response.json().await.unwrap())
}
