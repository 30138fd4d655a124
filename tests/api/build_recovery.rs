//! A dependency build you can watch and recover from: its output reaches
//! the run page while the run waits for it; a failed build puts its reason,
//! last lines and whole log on the run page; the failure is answered again
//! for a short back-off, and "Retry build" builds again at once.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{id, TestApp};

/// An in-tree build backend that says it started, takes a few seconds and
/// gives up with its own message.
const BACKEND: &str = "import time\n\n\
def _give_up(*args, **kwargs):\n    print('te-backend-started', flush=True)\n    time.sleep(4)\n    raise RuntimeError('te-backend-gives-up')\n\n\
get_requires_for_build_editable = get_requires_for_build_wheel = _give_up\n\
build_editable = build_wheel = _give_up\n";

const PYPROJECT: &str = "[build-system]\nrequires = []\nbuild-backend = \"slow_backend\"\n\
backend-path = [\".\"]\n\n[project]\nname = \"broken\"\nversion = \"1.0\"\n";

async fn started_at(app: &TestApp) -> time::OffsetDateTime {
    sqlx::query_scalar("select started_at from dependency_images where project = 'broken'")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn page(app: &TestApp, run: i64) -> String {
    app.get(&format!("/runs/{run}")).await.text().await.unwrap()
}

#[tokio::test]
async fn a_failed_build_is_shown_answered_again_and_retried_at_once() {
    let app = TestApp::spawn_with(
        &[
            ("broken/pyproject.toml", PYPROJECT),
            ("broken/slow_backend.py", BACKEND),
            ("broken/tests/test_x.py", "def test_x():\n    pass\n"),
        ],
        |_| {},
    )
    .await;
    let first = id(&app.create_run(1, &["broken/tests/test_x.py"]).await);

    // While it installs, the page shows the build's output so far.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let html = page(&app, first).await;
        if html.contains("Build output") && html.contains("==&gt; te-depbuild-") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the build's output never showed while it ran:\n{html}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let state: String =
        sqlx::query_scalar("select state from dependency_images where project = 'broken'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        state, "building",
        "the output showed before the build ended"
    );

    let run = app.wait_finished(first, Duration::from_secs(300)).await;
    assert_eq!(run["status"], "error", "{run}");
    let html = page(&app, first).await;
    for expected in [
        "The dependency build of broken failed",
        "te-backend-gives-up",
        "Retry build",
        &format!("/runs/{first}/build.log"),
    ] {
        assert!(
            html.contains(expected),
            "no {expected:?} on the page:\n{html}"
        );
    }
    let log = app.get(&format!("/runs/{first}/build.log")).await;
    assert_eq!(log.status(), 200);
    let log = log.text().await.unwrap();
    assert!(
        log.contains("te-backend-started") && log.contains("te-backend-gives-up"),
        "{log}"
    );

    // Within the back-off, the next run is answered from the failure.
    let built = started_at(&app).await;
    let second = id(&app.create_run(1, &["broken/tests/test_x.py"]).await);
    let second = app.wait_finished(second, Duration::from_secs(60)).await;
    assert_eq!(second["status"], "error", "{second}");
    assert_eq!(started_at(&app).await, built, "the failure was built again");

    // "Retry build" builds again at once.
    let retried = app
        .post_json(
            &format!("/api/v1/runs/{first}/retry-build"),
            &json!({"username": "bob"}),
        )
        .await;
    assert_eq!(retried.status(), 201);
    let retried: Value = retried.json().await.unwrap();
    assert_eq!(retried["username"], "bob");
    assert_eq!(retried["files"], json!(["broken/tests/test_x.py"]));
    let retried = app
        .wait_finished(id(&retried), Duration::from_secs(300))
        .await;
    assert_eq!(retried["status"], "error", "{retried}");
    assert!(
        started_at(&app).await > built,
        "the retry did not build again"
    );

    // Once the 10-minute back-off is over, the next run builds again.
    let retried_at = started_at(&app).await;
    sqlx::query(
        "update dependency_images set finished_at = finished_at - interval '10 minutes 1 second' \
         where project = 'broken'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let later = id(&app.create_run(1, &["broken/tests/test_x.py"]).await);
    let later = app.wait_finished(later, Duration::from_secs(300)).await;
    assert_eq!(later["status"], "error", "{later}");
    assert!(
        started_at(&app).await > retried_at,
        "the run after the back-off did not build again"
    );

    // A run that needed no build has nothing to retry.
    let plain = id(&app.create_run(2, &["test_math.py"]).await);
    app.wait_finished(plain, Duration::from_secs(60)).await;
    let refused = app
        .post_json(
            &format!("/api/v1/runs/{plain}/retry-build"),
            &json!({"username": "bob"}),
        )
        .await;
    assert_eq!(refused.status(), 409);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("needed no dependency build"),
        "{body}"
    );
}
