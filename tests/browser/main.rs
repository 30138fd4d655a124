//! Browser tests: Debian's headless Chromium driven through chromedriver
//! (started by the test), against the real app, Postgres and Docker.
//! Screenshots of the pages land in `docs/screenshots/`.

mod api_docs;
mod browser;
mod checks;
mod details;
#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
mod layouts;
mod logs;
mod security;

use std::time::Duration;

use browser::Browser;
use fantoccini::Locator;
use helpers::TestApp;

#[tokio::test]
async fn a_person_starts_a_run_and_watches_it_finish_live() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    let c = &browser.client;

    // The runs table, left open: the new run must appear here by itself.
    c.goto(&app.url("/")).await.unwrap();
    browser.mark_page().await;
    let table_window = c.window().await.unwrap();

    // The form, in a second window.
    let form_window = c.new_window(true).await.unwrap();
    c.switch_to_window(form_window.handle).await.unwrap();
    c.goto(&app.url("/runs/new")).await.unwrap();
    browser
        .find("input[name=username]")
        .await
        .send_keys("ann")
        .await
        .unwrap();
    browser
        .find("select[name=environment_id]")
        .await
        .select_by_value("3")
        .await
        .unwrap();
    browser
        .find("[data-file-filter]")
        .await
        .send_keys("slow")
        .await
        .unwrap();
    assert_eq!(
        browser.count("li[data-path]:not([hidden])").await,
        2,
        "the filter leaves the two slow files"
    );
    browser
        .find("li[data-path='test_slow.py'] input")
        .await
        .click()
        .await
        .unwrap();
    browser.screenshot("new-run").await;
    browser
        .find("form.new-run button[type=submit]:not([name])")
        .await
        .click()
        .await
        .unwrap();

    // The run page: log lines and test results arrive while it runs.
    browser.find("#run-status").await;
    let url = c.current_url().await.unwrap();
    assert!(url.path().starts_with("/runs/"), "{url}");
    browser.mark_page().await;
    browser
        .until("the first log lines", Duration::from_secs(30), || async {
            browser.count("#log .ln").await > 0
        })
        .await;
    let early = browser.count("#log .ln").await;
    browser
        .until("more log lines", Duration::from_secs(30), || async {
            browser.count("#log .ln").await > early
        })
        .await;
    browser
        .until(
            "the progress bar to advance",
            Duration::from_secs(30),
            || async {
                match c.find(Locator::Css(".progress")).await {
                    Ok(bar) => bar
                        .attr("aria-valuenow")
                        .await
                        .ok()
                        .flatten()
                        .is_some_and(|n| n != "0"),
                    Err(_) => false,
                }
            },
        )
        .await;
    browser
        .until("the test table", Duration::from_secs(30), || async {
            browser.count("#run-tests table.tests tr").await > 1
        })
        .await;
    browser
        .until("the final status", Duration::from_secs(60), || async {
            browser.text("#run-status .badge").await == "success"
        })
        .await;
    browser
        .until("the JUnit link", Duration::from_secs(10), || async {
            browser.count("#run-report a[href$='/junit.xml']").await == 1
        })
        .await;
    assert!(
        browser.page_was_not_reloaded().await,
        "the run page updated in place"
    );
    browser.screenshot("run").await;

    // Back on the table: the row appeared and reached its final status.
    c.switch_to_window(table_window).await.unwrap();
    browser
        .until(
            "the new row with its final status",
            Duration::from_secs(30),
            || async {
                match c
                    .find(Locator::Css("#runs-body tr:not(.poller) .badge"))
                    .await
                {
                    Ok(badge) => badge.text().await.unwrap_or_default() == "success",
                    Err(_) => false,
                }
            },
        )
        .await;
    assert!(
        browser.page_was_not_reloaded().await,
        "the runs table updated in place"
    );
    browser.screenshot("runs").await;
    browser.close().await;
}

#[tokio::test]
async fn a_person_cancels_a_running_run_from_its_page() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    let c = &browser.client;
    c.goto(&app.url("/runs/new")).await.unwrap();
    browser
        .find("input[name=username]")
        .await
        .send_keys("bob")
        .await
        .unwrap();
    browser
        .find("select[name=environment_id]")
        .await
        .select_by_value("4")
        .await
        .unwrap();
    browser
        .find("li[data-path='slow/test_one_minute.py'] input")
        .await
        .click()
        .await
        .unwrap();
    browser
        .find("form.new-run button[type=submit]:not([name])")
        .await
        .click()
        .await
        .unwrap();
    browser
        .until("the run to be running", Duration::from_secs(30), || async {
            browser.text("#run-status .badge").await == "running"
        })
        .await;
    browser
        .find(".actions button.secondary")
        .await
        .click()
        .await
        .unwrap();
    browser
        .until("the cancelled status", Duration::from_secs(15), || async {
            browser.text("#run-status .badge").await == "cancelled"
        })
        .await;
    let reason = browser.text("#run-status .reason").await;
    assert!(reason.contains("cancelled by bob"), "{reason}");
    browser
        .until(
            "the cancel line in the log",
            Duration::from_secs(10),
            || async { browser.text("#log").await.contains("cancelled by bob at ") },
        )
        .await;
    assert_eq!(browser.count("#run-report a").await, 0, "no report link");
    assert!(browser.text("#run-report").await.contains("cancelled"));
    browser.close().await;
}

#[tokio::test]
async fn an_operator_signs_in_and_changes_a_limit_and_the_labels_a_worker_needs() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    let c = &browser.client;
    c.goto(&app.url("/operator")).await.unwrap();
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
    let field = browser.find("input[name=timeout_secs]").await;
    field.clear().await.unwrap();
    field.send_keys("42").await.unwrap();
    let labels = browser.find("input[name=required_labels]").await;
    labels.send_keys("gpu, big").await.unwrap();
    browser.screenshot("environment-edit").await;
    browser
        .find(".edit-panel button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser
        .until(
            "the new limit on the page",
            Duration::from_secs(10),
            || async { browser.text("#env-7 td.timeout").await == "42 s" },
        )
        .await;
    assert_eq!(
        browser.text("article.flash").await,
        "Environment 7 saved: time limit 900 s → 42 s; required labels none → big, gpu."
    );
    let env = app.get_json("/api/v1/environments").await[6].clone();
    assert_eq!(env["timeout_secs"], 42);
    assert_eq!(
        env["required_labels"],
        serde_json::json!(["big", "gpu"]),
        "{env}"
    );
    assert_eq!(browser.text("#env-7 .labels").await, "needs big, gpu");
    browser.screenshot("environments").await;
    browser.close().await;
}

/// Points drawn in a chart: read through the SVG DOM, so only real SVG
/// polylines (not markup htmx failed to parse as SVG) count.
async fn chart_points(browser: &Browser, chart: &str) -> u64 {
    let script = format!(
        "return [...document.querySelectorAll('#{chart}-points polyline')]
            .reduce((n, p) => n + (p.points ? p.points.numberOfItems : 0), 0)"
    );
    browser
        .client
        .execute(&script, vec![])
        .await
        .ok()
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
}

#[tokio::test]
async fn the_resource_chart_grows_while_the_run_runs_and_stops_at_its_end() {
    let grow = "import time\n\ndef test_grows():\n    blocks = []\n    for _ in range(6):\n        blocks.append(b'x' * (20 * 1024 * 1024))\n        time.sleep(1)\n";
    let app = TestApp::spawn_with(&[("res/test_grow_slowly.py", grow)], |_| {}).await;
    let browser = Browser::start().await;
    let c = &browser.client;
    let run = app.create_run(5, &["res/test_grow_slowly.py"]).await;
    let run_id = helpers::id(&run);
    c.goto(&app.url(&format!("/runs/{run_id}"))).await.unwrap();
    browser.mark_page().await;
    browser.find("svg.chart").await;
    browser
        .until("points while running", Duration::from_secs(30), || async {
            chart_points(&browser, "mem").await >= 2
        })
        .await;
    let early = chart_points(&browser, "mem").await;
    browser
        .until(
            "more points while running",
            Duration::from_secs(30),
            || async {
                chart_points(&browser, "mem").await > early + 1
                    && browser.text("#run-status .badge").await == "running"
            },
        )
        .await;
    assert!(
        chart_points(&browser, "cpu").await > 1,
        "the CPU chart grows too"
    );
    c.execute(
        "document.getElementById('resources').scrollIntoView()",
        vec![],
    )
    .await
    .unwrap();
    browser.screenshot("run-resources").await;
    browser
        .until("the run to finish", Duration::from_secs(60), || async {
            browser.text("#run-status .badge").await == "success"
        })
        .await;
    browser
        .until("the poller to stop", Duration::from_secs(10), || async {
            browser.count("#resources-poller").await == 0
        })
        .await;
    let end = chart_points(&browser, "mem").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        chart_points(&browser, "mem").await,
        end,
        "no more points once over"
    );
    assert!(end > early, "{end} points at the end, {early} early");
    let peaks = browser.text("#resources-peaks").await;
    assert!(
        peaks.contains("Peak memory") && peaks.contains("of 512 MiB"),
        "{peaks}"
    );
    assert!(browser.page_was_not_reloaded().await);
    // a phone's width: the chart still fits the screen
    c.set_window_size(390, 844).await.unwrap();
    let width = c
        .execute(
            "return document.querySelector('svg.chart').getBoundingClientRect().width",
            vec![],
        )
        .await
        .unwrap();
    assert!(width.as_f64().unwrap() <= 390.0, "{width}");
    c.execute(
        "document.getElementById('resources').scrollIntoView()",
        vec![],
    )
    .await
    .unwrap();
    browser.screenshot("run-resources-phone").await;
    browser.close().await;
    helpers::remove_containers(&app.instance);
}
