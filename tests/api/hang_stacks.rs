//! Where a run hung: shortly before its deadline the runner sends every
//! thread's Python stack, tagged with the running test; the page names the
//! test and the file and line it is stuck at, the API serves the stacks.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{id, TestApp};

const HANGS: &str = "import threading, time\n\n\
def wait_for():\n    time.sleep(60)\n\n\
def test_quick():\n    pass\n\n\
def test_hangs():\n    threading.Thread(target=time.sleep, args=(60,), name='helper-sleeper', daemon=True).start()\n    wait_for()\n";

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
