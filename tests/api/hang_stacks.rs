//! Where a run hung, or is now: shortly before its deadline, and when
//! someone asks ("Where is it now?"), the runner sends every thread's Python
//! stack, tagged with the running test; the page names the test and the file
//! and line it is at, the API serves the stacks.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{browser, csrf_of, id, TestApp};

/// It also sends the deadline's signal itself, early: the stacks kept are
/// the latest, those of the executor's ask near the deadline.
const HANGS: &str = "import os, signal, threading, time\n\n\
def wait_for():\n    time.sleep(60)\n\n\
def test_quick():\n    pass\n\n\
def test_hangs():\n    threading.Thread(target=time.sleep, args=(60,), name='helper-sleeper', daemon=True).start()\n    os.kill(os.getpid(), signal.SIGUSR2)\n    wait_for()\n";

#[tokio::test]
async fn a_timed_out_run_names_the_test_and_the_line_it_is_stuck_at() {
    let app = TestApp::spawn_with(&[("test_hangs.py", HANGS)], |_| {}).await;
    app.set_limits(5, 512, 5).await;
    let run = id(&app.create_run(5, &["test_hangs.py"]).await);
    let done = app.wait_finished(run, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "timed_out", "{done}");

    let page = app.get(&format!("/runs/{run}")).await.text().await.unwrap();
    for expected in [
        "Timed out</strong> in <code>test_hangs.py::test_hangs</code>",
        "stuck at <code>test_hangs.py:4</code> in <code>wait_for()</code>",
        "helper-sleeper",
    ] {
        assert!(
            page.contains(expected),
            "no {expected:?} on the page:\n{page}"
        );
    }

    let stacks: Value = app.get_json(&format!("/api/v1/runs/{run}/stacks")).await;
    assert_eq!(stacks["test"], "test_hangs.py::test_hangs", "{stacks}");
    let main = &stacks["threads"][0];
    assert_eq!(main["main"], true, "{stacks}");
    let frames = main["frames"].as_array().unwrap();
    let innermost_own = frames
        .iter()
        .rev()
        .find(|f| f[0] == "test_hangs.py")
        .expect("a frame in the test file");
    assert_eq!(innermost_own[1], 4, "{stacks}");
    assert_eq!(innermost_own[2], "wait_for", "{stacks}");

    // A run that never neared its deadline has none.
    let quick = id(&app.create_run(6, &["test_math.py"]).await);
    app.wait_finished(quick, Duration::from_secs(60)).await;
    let none = app.get(&format!("/api/v1/runs/{quick}/stacks")).await;
    assert_eq!(none.status(), 404);
}

const WAITS: &str = "import time\n\n\
def poll_forever():\n    while True:\n        time.sleep(0.05)\n\n\
def test_waits():\n    poll_forever()\n";

/// The latest stacks once they were asked for in `test` (an earlier ask's
/// answer, from before the test started, may come first).
async fn asked_stacks(app: &TestApp, run: i64, test: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        let response = app.get(&format!("/api/v1/runs/{run}/stacks")).await;
        if response.status() == 200 {
            last = response.json().await.unwrap();
            if last["asked"] == true && last["test"] == test {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("run {run} sent no stacks in {test} within 10 s of being asked: {last}");
}

#[tokio::test]
async fn a_running_run_asked_where_it_is_names_the_test_and_the_line_live() {
    let app = TestApp::spawn_with(&[("test_waits.py", WAITS)], |_| {}).await;
    let run = id(&app.create_run(1, &["test_waits.py"]).await);
    // Asked as soon as it runs (its runner may not listen yet): the run
    // goes on, and asking again once the test runs gets the answer.
    app.wait_for(run, Duration::from_secs(60), |r| r["status"] != "queued")
        .await;
    let early = app
        .post_json(&format!("/api/v1/runs/{run}/stacks"), &Value::Null)
        .await;
    assert_eq!(early.status(), 202);
    let running = app
        .wait_for(run, Duration::from_secs(60), |r| {
            r["current_test"] == "test_waits.py::test_waits"
        })
        .await;
    assert_eq!(running["status"], "running", "{running}");

    // From the page, as a person would.
    let browser = browser();
    let page = format!("/runs/{run}");
    let csrf = csrf_of(&app, &browser, &page).await;
    let html = browser
        .get(app.url(&page))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Where is it now?"), "{html}");
    let asked = browser
        .post(app.url(&format!("/runs/{run}/stacks")))
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 303);
    let stacks = asked_stacks(&app, run, "test_waits.py::test_waits").await;
    let frames = stacks["threads"][0]["frames"].as_array().unwrap();
    assert!(
        frames
            .iter()
            .any(|f| f[0] == "test_waits.py" && f[1] == 5 && f[2] == "poll_forever"),
        "{stacks}"
    );
    let fragment = app
        .get(&format!("/runs/{run}/fragments/status"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        fragment.contains("When asked, it was</strong> in <code>test_waits.py::test_waits</code>")
            && fragment.contains("at <code>test_waits.py:5</code> in <code>poll_forever()</code>"),
        "{fragment}"
    );

    // Asking changed nothing about the run; once over, it cannot be asked.
    let still = app.get_json(&format!("/api/v1/runs/{run}")).await;
    assert_eq!(still["status"], "running", "{still}");
    let cancel = app
        .post_json(
            &format!("/api/v1/runs/{run}/cancel"),
            &serde_json::json!({"username": "ann"}),
        )
        .await;
    assert_eq!(cancel.status(), 200);
    let done = app.wait_finished(run, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    let late = app
        .post_json(&format!("/api/v1/runs/{run}/stacks"), &Value::Null)
        .await;
    assert_eq!(late.status(), 409);
    let body: Value = late.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("only a running run"),
        "{body}"
    );
    let unknown = app
        .client
        .post(app.url("/api/v1/runs/999999/stacks"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}
