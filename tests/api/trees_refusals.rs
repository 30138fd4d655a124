//! The server's refusals of hostile trees, hand-made as a hostile client
//! would send them: traversing paths, links and devices, bad hashes,
//! contents never uploaded, unknown trees, caps and quotas — each a clear
//! 4xx that writes nothing; and retention of unused trees.

use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{
    helpers::{id, TestApp},
    trees::{checkout, client_in, count, entry, upload, SUBMIT},
};

#[tokio::test]
async fn hand_made_manifests_with_traversal_links_or_devices_are_refused_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let ok = b"def test_ok():\n    pass\n";
    assert_eq!(upload(&app, ok).await.status(), 201);
    for (bad, mode) in [
        ("../escape.py", 0o100644),
        ("/etc/passwd", 0o100644),
        ("a//test_x.py", 0o100644),
        ("a/./test_x.py", 0o100644),
        (".te/meta.json", 0o100644),
        ("passwd.py", 0o120777),
        ("pipe.py", 0o010644),
        ("dev.py", 0o020644),
    ] {
        let manifest = json!({"username": "ann", "name": "evil",
            "files": [entry("test_ok.py", 0o100644, ok), entry(bad, mode, ok)]});
        for path in ["/api/v1/trees/missing", "/api/v1/trees"] {
            let response = app.post_json(path, &manifest).await;
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            assert_eq!(status, 422, "{bad} at {path}: {body}");
            assert!(
                body["error"].as_str().unwrap().contains("refused"),
                "{body}"
            );
        }
    }
    assert_eq!(count(&app, "trees").await, 0);
    assert_eq!(count(&app, "tree_files").await, 0);
}

#[tokio::test]
async fn a_tree_over_a_cap_is_refused_with_the_cap_named() {
    let app = TestApp::spawn_with(&[], |c| {
        c.project_cap_files = 3;
        c.project_cap_bytes = 1000;
    })
    .await;
    let dir = checkout();
    let (code, stdout, stderr) = client_in(&app, &dir, SUBMIT).await;
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("PROJECT_CAP_FILES") && stderr.contains("413"),
        "{stderr}"
    );
    let big = vec![b'x'; 2000];
    let manifest =
        json!({"username": "ann", "name": "big", "files": [entry("big.py", 0o100644, &big)]});
    let response = app.post_json("/api/v1/trees/missing", &manifest).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("PROJECT_CAP_BYTES"),
        "{body}"
    );
    let response = upload(&app, &big).await;
    assert_eq!(response.status(), 413, "a content over the cap is not read");
    assert_eq!(count(&app, "tree_blobs").await, 0);
    assert_eq!(count(&app, "trees").await, 0);
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn bad_hashes_unknown_trees_and_missing_contents_get_a_clear_4xx_and_write_nothing() {
    let app = TestApp::spawn().await;
    let content = b"def test_ok():\n    pass\n";
    let wrong = format!("{:x}", Sha256::digest(b"something else"));
    let response = app
        .client
        .put(app.url(&format!("/api/v1/blobs/{wrong}?username=ann")))
        .header("content-type", "application/octet-stream")
        .body(content.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("nothing was stored"),
        "{body}"
    );
    let response = app
        .client
        .put(app.url("/api/v1/blobs/not-a-hash?username=ann"))
        .header("content-type", "application/octet-stream")
        .body(content.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let response = app
        .client
        .put(app.url(&format!("/api/v1/blobs/{wrong}?username=ann")))
        .header("content-type", "text/plain")
        .body(content.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415, "only octets or JSON");
    assert_eq!(count(&app, "tree_blobs").await, 0);

    // A tree whose contents were never uploaded.
    let manifest =
        json!({"username": "ann", "name": "t", "files": [entry("test_ok.py", 0o100644, content)]});
    let missing: Value = app
        .post_json("/api/v1/trees/missing", &manifest)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(missing["missing"].as_array().unwrap().len(), 1, "{missing}");
    let response = app.post_json("/api/v1/trees", &manifest).await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("not uploaded"),
        "{body}"
    );
    assert_eq!(count(&app, "trees").await, 0);

    // Unknown trees.
    for tree in ["f".repeat(64), "../../etc".to_owned()] {
        let response = app
            .post_json(
                "/api/v1/runs",
                &json!({"username": "ann", "environment_id": 1, "tree_id": tree}),
            )
            .await;
        assert_eq!(response.status(), 404, "{tree}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("no tree"),
            "{body}"
        );
    }
    assert_eq!(
        app.get(&format!("/api/v1/trees/{}", "0".repeat(64)))
            .await
            .status(),
        404
    );
    assert_eq!(app.count_runs().await, 0);

    // Uploaded, then made and run by id: the API's own path.
    assert_eq!(upload(&app, content).await.status(), 201);
    let response = app.post_json("/api/v1/trees", &manifest).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        created["tree"]["received_bytes"],
        content.len(),
        "{created}"
    );
    let again = app.post_json("/api/v1/trees", &manifest).await;
    assert_eq!(again.status(), 200, "the same tree again is the one stored");
    let tree_id = created["tree"]["id"].as_str().unwrap();
    let response = app
        .post_json(
            "/api/v1/runs",
            &json!({"username": "bob", "environment_id": 2, "tree_id": tree_id}),
        )
        .await;
    let run: Value = response.json().await.unwrap();
    assert_eq!(run["files"], json!(["test_ok.py"]), "{run}");
    let run = app.wait_finished(id(&run), Duration::from_secs(60)).await;
    assert_eq!(run["status"], "success", "{run}");
}

#[tokio::test]
async fn a_manifest_of_many_files_is_read_past_the_usual_body_limit() {
    let app = TestApp::spawn().await;
    let files: Vec<Value> = (0..15_000)
        .map(|i| {
            entry(
                &format!("pkg/module_with_a_long_name_{i:05}.py"),
                0o100644,
                format!("x = {i}\n").as_bytes(),
            )
        })
        .collect();
    let manifest = json!({"username": "ann", "name": "many", "files": files});
    assert!(
        manifest.to_string().len() > 2 * 1024 * 1024,
        "over axum's default 2 MiB"
    );
    let response = app.post_json("/api/v1/trees/missing", &manifest).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["missing"].as_array().unwrap().len(), 15_000);
}

#[tokio::test]
async fn retention_deletes_unused_trees_and_then_their_contents() {
    let app = TestApp::spawn_with(&[], |c| {
        c.retention_days = Some(0);
        c.retention_interval_secs = 1;
    })
    .await;
    let content = b"def test_ok():\n    pass\n";
    assert_eq!(upload(&app, content).await.status(), 201);
    let manifest =
        json!({"username": "ann", "name": "t", "files": [entry("test_ok.py", 0o100644, content)]});
    let response = app.post_json("/api/v1/trees", &manifest).await;
    assert!(response.status().is_success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count(&app, "trees").await + count(&app, "tree_blobs").await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the retention pass deletes them"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_username_past_its_quota_is_refused_naming_it_and_others_are_not() {
    let app = TestApp::spawn_with(&[], |c| c.tree_quota_bytes = 100).await;
    assert_eq!(upload(&app, &[b'a'; 60]).await.status(), 201);
    let response = upload(&app, &[b'b'; 60]).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("TREE_QUOTA_BYTES"),
        "{body}"
    );
    assert_eq!(count(&app, "tree_blobs").await, 1, "nothing written");
    // content already stored costs nothing more
    assert_eq!(upload(&app, &[b'a'; 60]).await.status(), 201);
    let sha = format!("{:x}", Sha256::digest([b'b'; 60]));
    let response = app
        .client
        .put(app.url(&format!("/api/v1/blobs/{sha}?username=bob")))
        .header("content-type", "application/octet-stream")
        .body(vec![b'b'; 60])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "bob has a quota of his own");
}

#[tokio::test]
async fn the_server_wide_total_holds_whatever_the_usernames() {
    let app = TestApp::spawn_with(&[], |c| c.tree_total_bytes = 100).await;
    assert_eq!(upload(&app, &[b'a'; 60]).await.status(), 201);
    let sha = format!("{:x}", Sha256::digest([b'c'; 60]));
    let response = app
        .client
        .put(app.url(&format!("/api/v1/blobs/{sha}?username=mallory")))
        .header("content-type", "application/octet-stream")
        .body(vec![b'c'; 60])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413, "a new username is no way around it");
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("TREE_TOTAL_BYTES"),
        "{body}"
    );
    assert_eq!(count(&app, "tree_blobs").await, 1, "nothing written");
}
