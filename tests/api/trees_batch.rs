//! Contents sent many per request (`PUT /api/v1/blobs`): a good batch is
//! stored whole, a wrong hash or a batch over a cap stores nothing and says
//! why; and asking which contents are missing keeps the stored ones (and a
//! stored tree) from retention.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{
    helpers::TestApp,
    trees::{count, entry},
};

fn sha(content: &[u8]) -> String {
    format!("{:x}", Sha256::digest(content))
}

/// A batch body: `<sha256> <size>\n` and the content, for each.
fn batch(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (sha, content) in records {
        body.extend_from_slice(format!("{sha} {}\n", content.len()).as_bytes());
        body.extend_from_slice(content);
    }
    body
}

async fn put_batch(app: &TestApp, user: &str, body: Vec<u8>) -> (u16, Value) {
    let response = app
        .client
        .put(app.url(&format!("/api/v1/blobs?username={user}")))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_batch_is_stored_whole_and_a_wrong_hash_or_a_cap_stores_nothing() {
    let app = TestApp::spawn().await;
    let (a, b) = (&b"alpha\n"[..], &b"beta\n"[..]);
    let (sha_a, sha_b) = (sha(a), sha(b));

    // one wrong hash among good ones: 422 naming it, nothing stored
    let wrong = sha(b"something else");
    let (status, body) = put_batch(&app, "ann", batch(&[(&sha_a, a), (&wrong, b)])).await;
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("batch record 1") && error.contains(&wrong),
        "{error}"
    );
    assert_eq!(count(&app, "tree_blobs").await, 0, "nothing of it stored");

    // over the byte cap: 413 naming it, nothing stored
    let big = vec![b'x'; 8 * 1024 * 1024];
    let (status, body) = put_batch(&app, "ann", batch(&[(&sha(&big), &big)])).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("batch byte cap"),
        "{body}"
    );
    assert_eq!(count(&app, "tree_blobs").await, 0);

    // a malformed record: 422
    let (status, body) = put_batch(&app, "ann", b"not a record".to_vec()).await;
    assert_eq!(status, 422, "{body}");

    // good: both stored, then a manifest of them lacks nothing
    let (status, body) = put_batch(&app, "ann", batch(&[(&sha_a, a), (&sha_b, b)])).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body, json!({"blobs": 2, "bytes": 11, "stored": 2}));
    let (status, body) = put_batch(&app, "ann", batch(&[(&sha_a, a)])).await;
    assert_eq!((status, &body["stored"]), (201, &json!(0)), "{body}");
    let manifest = json!({"username": "ann", "name": "batched",
        "files": [entry("a.py", 0o100644, a), entry("b.py", 0o100644, b)]});
    let missing: Value = app
        .post_json("/api/v1/trees/missing", &manifest)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(missing["missing"], json!([]), "{missing}");
    let created = app.post_json("/api/v1/trees", &manifest).await;
    assert_eq!(created.status(), 201);
}

#[tokio::test]
async fn a_batch_over_the_count_cap_or_the_quota_is_refused_with_the_cap_named() {
    let app = TestApp::spawn_with(&[], |c| c.tree_quota_bytes = 100).await;
    let contents: Vec<Vec<u8>> = (0..2_001).map(|i| i.to_string().into_bytes()).collect();
    let hashes: Vec<String> = contents.iter().map(|c| sha(c)).collect();
    let records: Vec<(&str, &[u8])> = hashes
        .iter()
        .zip(&contents)
        .map(|(h, c)| (h.as_str(), c.as_slice()))
        .collect();
    let (status, body) = put_batch(&app, "ann", batch(&records)).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("batch count cap"),
        "{body}"
    );
    // 2,000 contents of 1–4 bytes: over ann's 100-byte quota, all or none
    let (status, body) = put_batch(&app, "ann", batch(&records[..2_000])).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("TREE_QUOTA_BYTES"),
        "{body}"
    );
    assert_eq!(count(&app, "tree_blobs").await, 0);
}

#[tokio::test]
async fn asking_what_is_missing_restarts_retention_for_what_is_stored() {
    let app = TestApp::spawn().await;
    let a = &b"kept\n"[..];
    let (status, _) = put_batch(&app, "ann", batch(&[(&sha(a), a)])).await;
    assert_eq!(status, 201);
    let age = |table: &'static str| {
        let db = app.db.clone();
        async move {
            let secs: f64 = sqlx::query_scalar(&format!(
                "select extract(epoch from now() - max(last_used_at))::float8 from {table}"
            ))
            .fetch_one(&db)
            .await
            .unwrap();
            secs
        }
    };
    let old = "set last_used_at = now() - interval '40 days'";
    sqlx::query(&format!("update tree_blobs {old}"))
        .execute(&app.db)
        .await
        .unwrap();
    let manifest = json!({"username": "ann", "name": "kept",
        "files": [entry("a.py", 0o100644, a), entry("b.py", 0o100644, b"new\n")]});
    let missing: Value = app
        .post_json("/api/v1/trees/missing", &manifest)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(missing["missing"], json!([sha(b"new\n")]), "{missing}");
    assert!(
        age("tree_blobs").await < 60.0,
        "the stored content was touched"
    );

    let manifest = json!({"username": "ann", "name": "kept",
        "files": [entry("a.py", 0o100644, a)]});
    assert_eq!(
        app.post_json("/api/v1/trees", &manifest).await.status(),
        201
    );
    sqlx::query(&format!("update trees {old}"))
        .execute(&app.db)
        .await
        .unwrap();
    let missing: Value = app
        .post_json("/api/v1/trees/missing", &manifest)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(missing["exists"], true, "{missing}");
    assert!(age("trees").await < 60.0, "the stored tree was touched");
}
