//! The log viewer in Chromium: earlier pages while scrolling up (the view
//! stays put), a bounded DOM, a search that opens a hit in the middle, `#L`
//! links, and the tail following a running run.

use std::time::Duration;

use serde_json::{json, Value};

use super::{
    helpers::{id, TestApp},
    Browser,
};

/// Prints 3,000 lines at once, then one line every 100 ms for a while.
const CHATTY: &str = r#"
import sys, time

def test_chatty():
    for i in range(3000):
        print(f"early {i}")
    sys.stdout.flush()
    for i in range(300):
        print(f"late {i}", flush=True)
        time.sleep(0.1)
"#;

/// A queued run (no executor) with `lines` log lines made by SQL.
async fn run_with_log(app: &TestApp, lines: i32) -> i64 {
    let run = app.create_run(1, &["test_math.py"]).await;
    let run_id = id(&run);
    sqlx::query(
        "insert into run_logs (run_id, seq, stream, ts, line)
         select $1, g, 1, now(), 'line ' || (g + 1) || ' of the log' from generate_series(0, $2 - 1) g",
    )
    .bind(run_id)
    .bind(lines)
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query("update runs set log_lines = $2 where id = $1")
        .bind(run_id)
        .bind(lines)
        .execute(&app.db)
        .await
        .unwrap();
    run_id
}

async fn js(browser: &Browser, script: &str) -> Value {
    browser.client.execute(script, vec![]).await.unwrap()
}

/// The number of the first line rendered in the log.
async fn first_line(browser: &Browser) -> i64 {
    js(
        browser,
        "const l = document.querySelector('#log .ln'); return l ? Number(l.dataset.seq) + 1 : -1",
    )
    .await
    .as_i64()
    .unwrap()
}

/// Whether line `n` is within the visible part of the log box.
async fn line_in_view(browser: &Browser, n: i64) -> bool {
    js(
        browser,
        &format!(
            "const l = document.getElementById('L{n}'), box = document.getElementById('log');
             if (!l) return false;
             const a = l.getBoundingClientRect(), b = box.getBoundingClientRect();
             return a.top >= b.top - 1 && a.bottom <= b.bottom + 1;"
        ),
    )
    .await
        == json!(true)
}

#[tokio::test]
async fn a_reader_scrolls_back_searches_and_follows_line_links_in_a_big_log() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let run_id = run_with_log(&app, 30_000).await;
    let browser = Browser::start().await;
    let c = &browser.client;

    // The tail opens at the bottom.
    c.goto(&app.url(&format!("/runs/{run_id}"))).await.unwrap();
    browser.find("#L30000").await;
    assert_eq!(browser.count("#log .ln").await, 2000);
    browser
        .until("the tail in view", Duration::from_secs(5), || async {
            line_in_view(&browser, 30_000).await
        })
        .await;
    browser.mark_page().await;

    // Scrolling to the top loads the 2,000 lines above; what was at the
    // top stays where it was.
    js(&browser, "document.getElementById('log').scrollTop = 0").await;
    browser
        .until("an earlier page", Duration::from_secs(10), || async {
            first_line(&browser).await == 26_001
        })
        .await;
    assert!(
        line_in_view(&browser, 28_001).await,
        "the line at the top before stays in view"
    );
    assert!(!line_in_view(&browser, 26_001).await, "no jump to the top");
    js(&browser, "document.getElementById('logs').scrollIntoView()").await;
    browser.screenshot("log-earlier").await;

    // More pages: the DOM keeps at most 10,000 lines, dropping the tail.
    for page in 1..=4 {
        let before = first_line(&browser).await;
        js(&browser, "document.getElementById('log').scrollTop = 0").await;
        browser
            .until(
                &format!("earlier page {page}"),
                Duration::from_secs(10),
                || async { first_line(&browser).await < before },
            )
            .await;
    }
    assert_eq!(first_line(&browser).await, 18_001);
    assert_eq!(browser.count("#log .ln").await, 10_000);
    assert_eq!(browser.count("#L30000").await, 0, "the far end dropped");
    assert_eq!(
        browser.count("#log-later").await,
        1,
        "a loader in its place"
    );
    assert!(browser.page_was_not_reloaded().await);

    // A search jumps to a hit in the middle, highlighted and in view.
    let q = browser.find("input[name=q]").await;
    q.send_keys("LINE 15000 OF").await.unwrap();
    browser
        .find("form.log-search button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser.find("#L15000.target").await;
    browser
        .until("the hit in view", Duration::from_secs(5), || async {
            line_in_view(&browser, 15_000).await
        })
        .await;
    let hits = browser.text(".log-hits").await;
    assert!(hits.contains("Line 15000"), "{hits}");
    browser.screenshot("log-search").await;

    // Next and previous move between hits.
    c.goto(&app.url(&format!("/runs/{run_id}?q=line%202000&line=2000")))
        .await
        .unwrap();
    browser.find("#L2000.target").await;
    browser.find("a.hit-next").await.click().await.unwrap();
    browser.find("#L20000.target").await;
    browser.find("a.hit-previous").await.click().await.unwrap();
    browser.find("#L2000.target").await;

    // A #L link opens the page around that line, even far from the tail.
    c.goto(&app.url(&format!("/runs/{run_id}#L4321")))
        .await
        .unwrap();
    browser
        .until("the linked line", Duration::from_secs(10), || async {
            line_in_view(&browser, 4321).await
        })
        .await;
    let matched = js(
        &browser,
        "return document.getElementById('L4321').matches(':target')",
    )
    .await;
    assert_eq!(matched, json!(true), "the line is highlighted");
    browser.screenshot("log-line-link").await;
    browser.close().await;
}

#[tokio::test]
async fn the_tail_follows_a_running_run_after_earlier_pages_were_opened() {
    let app = TestApp::spawn_with(&[("test_chatty.py", CHATTY)], |_| {}).await;
    let run = app
        .post_json(
            "/api/v1/runs",
            &json!({"username": "ann", "environment_id": 2, "files": ["test_chatty.py"]}),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    let run_id = id(&run);
    app.wait_for(run_id, Duration::from_secs(60), |r| {
        r["log_lines"].as_i64().unwrap_or(0) > 3000
    })
    .await;
    let browser = Browser::start().await;
    let c = &browser.client;
    c.goto(&app.url(&format!("/runs/{run_id}"))).await.unwrap();
    browser.find("#log .ln").await;
    // Read earlier lines...
    js(&browser, "document.getElementById('log').scrollTop = 0").await;
    browser
        .until("an earlier page", Duration::from_secs(10), || async {
            first_line(&browser).await == 1
        })
        .await;
    // ...then go back down: new lines keep arriving and stay in view.
    js(
        &browser,
        "const l = document.getElementById('log'); l.scrollTop = l.scrollHeight",
    )
    .await;
    let last = || async {
        js(&browser, "const all = document.querySelectorAll('#log .ln'); return Number(all[all.length - 1].dataset.seq) + 1")
            .await
            .as_i64()
            .unwrap()
    };
    let seen = last().await;
    browser
        .until("new lines at the tail", Duration::from_secs(30), || async {
            last().await > seen + 10
        })
        .await;
    let newest = last().await;
    browser
        .until(
            "the newest line in view",
            Duration::from_secs(5),
            || async { line_in_view(&browser, newest).await || last().await > newest },
        )
        .await;
    let text = browser.text("#log").await;
    assert!(text.contains("late "), "the running run's new lines");
    browser.close().await;
    let _ = app
        .post_json(
            &format!("/api/v1/runs/{run_id}/cancel"),
            &json!({"username": "ann"}),
        )
        .await;
    app.wait_finished(run_id, Duration::from_secs(60)).await;
}
