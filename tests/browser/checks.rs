//! A person checks a failed test for flakiness from the run page and
//! watches the check reach its verdict on its own page, live.

use std::time::Duration;

use crate::{browser::Browser, helpers::TestApp};

const ALWAYS: &str = "def test_always():\n    raise AssertionError('always broken')\n";

#[tokio::test]
async fn a_person_checks_a_failed_test_for_flakiness_and_watches_the_verdict_arrive() {
    let app = TestApp::spawn_with(&[("test_always.py", ALWAYS)], |_| {}).await;
    let run = app.create_run(7, &["test_always.py"]).await;
    let run = run["id"].as_i64().unwrap();
    app.wait_finished(run, Duration::from_secs(60)).await;
    let browser = Browser::start().await;
    let c = &browser.client;
    c.goto(&app.url(&format!("/runs/{run}"))).await.unwrap();
    let times = browser
        .find("#run-tests .check-actions input[name=times]")
        .await;
    times.clear().await.unwrap();
    times.send_keys("3").await.unwrap();
    browser
        .find("#run-tests .check-actions form[action$='/flaky-check'] button")
        .await
        .click()
        .await
        .unwrap();
    browser
        .until("the check's page", Duration::from_secs(10), || async {
            browser
                .text("#check h1")
                .await
                .starts_with("Flakiness check #")
        })
        .await;
    browser.mark_page().await;
    browser
        .until("the verdict", Duration::from_secs(90), || async {
            browser.text("#check .verdict").await.contains("broken 3/3")
        })
        .await;
    assert!(browser.page_was_not_reloaded().await, "updated in place");
    assert_eq!(browser.count("#check table.check-runs tbody tr").await, 3);
    assert!(browser
        .text("#check .messages")
        .await
        .contains("AssertionError: always broken"));
    browser.screenshot("check").await;
    c.goto(&app.url("/tests?nodeid=test_always.py%3A%3Atest_always"))
        .await
        .unwrap();
    assert!(browser.text("#test-checks").await.contains("broken 3/3"));
    browser.close().await;
}
