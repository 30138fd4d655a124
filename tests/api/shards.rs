//! Sharding (issue 30): one suite over several environments, the tests
//! taken one at a time from a queue in Postgres, longest recorded first;
//! one verdict for the whole; a dead shard's test goes to another; a
//! cancel of the parent cancels every shard.

use std::{collections::BTreeMap, time::Duration};

use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::helpers::{id, remove_containers, TestApp};

/// 40 tests: four take 2 s, the rest a few milliseconds; one reads stdin,
/// which a shard's tests see at its end, as any run's do.
const FORTY: &str = r#"
import subprocess
import sys
import time
import pytest

@pytest.mark.parametrize("n", range(4))
def test_long(n):
    time.sleep(2)

@pytest.mark.parametrize("n", range(35))
def test_short(n):
    time.sleep(0.02)

def test_stdin_is_at_its_end():
    assert sys.stdin.read() == ""
    assert subprocess.run(["cat"], capture_output=True, timeout=5).stdout == b""
"#;

/// 20 tests of half a second each.
const TWENTY_SLOW: &str = r#"
import time
import pytest

@pytest.mark.parametrize("n", range(20))
def test_slow(n):
    time.sleep(0.5)
"#;

async fn create_sharded(app: &TestApp, file: &str, shards: Value) -> reqwest::Response {
    app.post_json(
        "/api/v1/runs",
        &json!({"username": "ann", "environment_id": 1, "files": [file], "shards": shards}),
    )
    .await
}

/// Each shard's run, and the node ids of every result it stored.
async fn shard_results(app: &TestApp, parent: i64) -> BTreeMap<i64, Vec<String>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "select t.run_id, t.nodeid from run_tests t join runs r on r.id = t.run_id
          where r.shard_of = $1 order by t.run_id, t.idx",
    )
    .bind(parent)
    .fetch_all(&app.db)
    .await
    .unwrap();
    let mut by_shard: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (run, nodeid) in rows {
        by_shard.entry(run).or_default().push(nodeid);
    }
    by_shard
}

#[tokio::test]
async fn a_suite_over_two_environments_runs_every_test_once_and_the_shards_end_together() {
    let app = TestApp::spawn_with(&[("test_forty.py", FORTY)], |_| {}).await;
    // The durations become known from one run in one environment.
    let single = id(&app.create_run(1, &["test_forty.py"]).await);
    let single = app.wait_finished(single, Duration::from_secs(120)).await;
    assert_eq!(single["status"], "success", "{single}");

    let created = create_sharded(&app, "test_forty.py", json!(2)).await;
    assert_eq!(created.status(), 201);
    let parent: Value = created.json().await.unwrap();
    assert_eq!(parent["shards"], 2, "{parent}");
    let parent_id = id(&parent);
    // While the shards run, the parent counts what they reported so far.
    let live = app
        .wait_for(parent_id, Duration::from_secs(60), |run| {
            run["summary"]["passed"].as_i64().unwrap_or(0) > 0 || run["status"] != "running"
        })
        .await;
    assert_eq!(live["status"], "running", "{live}");
    assert_eq!(live["summary"]["collected"], 40, "{live}");
    let parent = app.wait_finished(parent_id, Duration::from_secs(120)).await;
    assert_eq!(parent["status"], "success", "{parent}");
    for key in ["collected", "passed"] {
        assert_eq!(parent["summary"][key], single["summary"][key], "{parent}");
    }

    // Every test ran exactly once, in one shard or the other, and both ran some.
    let by_shard = shard_results(&app, parent_id).await;
    assert_eq!(by_shard.len(), 2, "both shards ran tests: {by_shard:?}");
    let mut all: Vec<&String> = by_shard.values().flatten().collect();
    all.sort();
    let ran = all.len();
    all.dedup();
    assert_eq!((ran, all.len()), (40, 40), "{by_shard:?}");
    let parent_results: i64 =
        sqlx::query_scalar("select count(distinct nodeid) from run_tests where run_id = $1")
            .bind(parent_id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(parent_results, 40);

    // Longest first: the four 2 s tests head the queue.
    let head: Vec<String> = sqlx::query_scalar(
        "select nodeid from shard_tests where parent_id = $1 order by position limit 4",
    )
    .bind(parent_id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(head.iter().all(|n| n.contains("test_long")), "{head:?}");

    // The shards' pytest sessions ended within the longest test (2 s) of each other.
    let ends: Vec<OffsetDateTime> =
        sqlx::query_scalar("select exited_at from runs where shard_of = $1 order by shard_index")
            .bind(parent_id)
            .fetch_all(&app.db)
            .await
            .unwrap();
    let apart = (ends[0] - ends[1]).abs();
    println!("the shards ended {apart} apart");
    assert!(
        apart <= time::Duration::seconds(2),
        "the shards ended {apart} apart"
    );

    let shards = app
        .get_json(&format!("/api/v1/runs/{parent_id}/shards"))
        .await;
    assert_eq!(shards["tests"], 40, "{shards}");
    assert_eq!(shards["waiting"], 0, "{shards}");
    let page = app
        .get(&format!("/runs/{parent_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("40 of 40 tests reported over 2 shards"),
        "{page}"
    );
    remove_containers(&app.instance);
}

#[tokio::test]
async fn a_shard_killed_mid_run_leaves_its_tests_to_the_other_and_the_verdict_says_so() {
    let app = TestApp::spawn_with(&[("test_slow.py", TWENTY_SLOW)], |_| {}).await;
    let parent = create_sharded(&app, "test_slow.py", json!([1, 2])).await;
    assert_eq!(parent.status(), 201);
    let parent_id = id(&parent.json().await.unwrap());
    let first: i64 =
        sqlx::query_scalar("select id from runs where shard_of = $1 and shard_index = 1")
            .bind(parent_id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    app.wait_for(first, Duration::from_secs(60), |run| {
        run["summary"]["passed"].as_i64().unwrap_or(0) >= 2
    })
    .await;
    let name = test_executor::executor::container_name(&app.instance, first);
    let removed = std::process::Command::new("docker")
        .args(["rm", "-f", &name])
        .output()
        .unwrap();
    assert!(removed.status.success(), "{removed:?}");

    let parent = app.wait_finished(parent_id, Duration::from_secs(120)).await;
    let killed = app.get_json(&format!("/api/v1/runs/{first}")).await;
    assert_eq!(killed["status"], "error", "{killed}");
    assert_eq!(parent["status"], "error", "{parent}");
    let reason = parent["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("shard 1 (run #{first}) ended error")),
        "{reason}"
    );
    // Still, every test reported once: the other shard took the rest,
    // and the test the killed shard was in.
    assert_eq!(parent["summary"]["passed"], 20, "{parent}");
    let by_shard = shard_results(&app, parent_id).await;
    let mut all: Vec<&String> = by_shard.values().flatten().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 20, "{by_shard:?}");
    remove_containers(&app.instance);
}

#[tokio::test]
async fn cancelling_a_sharded_run_cancels_every_shard() {
    let app = TestApp::spawn_with(&[("test_slow.py", TWENTY_SLOW)], |_| {}).await;
    let parent = create_sharded(&app, "test_slow.py", json!(2)).await;
    assert_eq!(parent.status(), 201);
    let parent_id = id(&parent.json().await.unwrap());
    app.wait_for(parent_id, Duration::from_secs(60), |_| true)
        .await;
    let shards: Vec<i64> = sqlx::query_scalar("select id from runs where shard_of = $1")
        .bind(parent_id)
        .fetch_all(&app.db)
        .await
        .unwrap();
    app.wait_for(shards[0], Duration::from_secs(60), |run| {
        run["status"] == "running"
    })
    .await;
    let cancelled = app
        .post_json(
            &format!("/api/v1/runs/{parent_id}/cancel"),
            &json!({"username": "ann"}),
        )
        .await;
    assert!(cancelled.status().is_success(), "{}", cancelled.status());
    let parent = app.wait_finished(parent_id, Duration::from_secs(60)).await;
    assert_eq!(parent["status"], "cancelled", "{parent}");
    for shard in shards {
        let run = app.get_json(&format!("/api/v1/runs/{shard}")).await;
        assert_eq!(run["status"], "cancelled", "{run}");
    }
    remove_containers(&app.instance);
}

#[tokio::test]
async fn bad_shard_requests_are_refused_and_write_nothing() {
    let app = TestApp::spawn_with(&[("test_slow.py", TWENTY_SLOW)], |_| {}).await;
    for (shards, says) in [
        (json!(0), "shards: ask for 1 to 32"),
        (json!(33), "shards: ask for 1 to 32"),
        (json!([2, 3]), "must hold environment_id (1)"),
        (json!([]), "list 1 to 32"),
        (json!("two"), ""),
    ] {
        let response = create_sharded(&app, "test_slow.py", shards.clone()).await;
        assert_eq!(response.status(), 422, "{shards}");
        let body = response.text().await.unwrap();
        assert!(body.contains(says), "{shards}: {body}");
    }
    let both = app
        .post_json(
            "/api/v1/runs",
            &json!({"username": "ann", "environment_id": 1, "files": ["test_slow.py"],
                    "shards": 2, "node_ids": ["test_slow.py::test_slow[1]"]}),
        )
        .await;
    assert_eq!(both.status(), 422);
    assert_eq!(app.count_runs().await, 0);
}

#[tokio::test]
async fn shards_run_on_two_workers_and_share_one_queue() {
    let one_slot = |name: &'static str| {
        move |c: &mut test_executor::config::Config| {
            c.max_parallel_runs = Some(1);
            c.warm_pool = Some(1);
            c.worker.worker_name = Some(name.to_owned());
        }
    };
    let a = TestApp::spawn_with(&[("test_slow.py", TWENTY_SLOW)], one_slot("shard-worker-a")).await;
    let b = TestApp::spawn_on(
        &a.database_url().await,
        &[("test_slow.py", TWENTY_SLOW)],
        one_slot("shard-worker-b"),
    )
    .await;
    let parent = create_sharded(&a, "test_slow.py", json!(2)).await;
    assert_eq!(parent.status(), 201);
    let parent_id = id(&parent.json().await.unwrap());
    let parent = a.wait_finished(parent_id, Duration::from_secs(120)).await;
    assert_eq!(parent["status"], "success", "{parent}");
    assert_eq!(parent["summary"]["passed"], 20, "{parent}");
    let workers: Vec<Option<String>> =
        sqlx::query_scalar("select worker_name from runs where shard_of = $1 order by shard_index")
            .bind(parent_id)
            .fetch_all(&a.db)
            .await
            .unwrap();
    assert_eq!(workers.len(), 2);
    assert_ne!(
        workers[0], workers[1],
        "one shard on each worker: {workers:?}"
    );
    let by_shard = shard_results(&a, parent_id).await;
    assert_eq!(by_shard.len(), 2, "both took tests: {by_shard:?}");
    assert_eq!(by_shard.values().map(Vec::len).sum::<usize>(), 20);
    remove_containers(&a.instance);
    remove_containers(&b.instance);
}

#[tokio::test]
async fn the_runs_list_tells_a_sharded_run_and_its_shards_apart() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let created = app
        .post_json(
            "/api/v1/runs",
            &json!({"username": "ann", "environment_id": 1, "files": ["test_math.py"],
                    "shards": [1, 2]}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let parent = id(&created.json().await.unwrap());
    let html = app.get("/").await.text().await.unwrap();
    assert!(html.contains("2 shards"), "{html}");
    let of_parent = format!("shard of <a href=\"/runs/{parent}\">#{parent}</a>");
    assert_eq!(html.matches(&of_parent).count(), 2, "{html}");
}
