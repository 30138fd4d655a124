//! A small tree uploaded by the browser on `/runs/new` (`.tar.gz`), run as
//! a client's tree; garbage and forged forms refused.

use std::time::Duration;

use serde_json::json;

use crate::{
    helpers::{browser, csrf_of, id, TestApp},
    trees::last_run,
};

/// A multipart body as a browser's form sends it.
fn multipart(fields: &[(&str, &str)], archive: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--BOUNDARY\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"archive\"; filename=\"up.tar.gz\"\r\n\
Content-Type: application/gzip\r\n\r\n",
    );
    body.extend_from_slice(archive);
    body.extend_from_slice(b"\r\n--BOUNDARY--\r\n");
    body
}

#[tokio::test]
async fn a_browser_uploads_a_tar_gz_on_the_new_run_page_and_it_runs_without_its_symlink() {
    let app = TestApp::spawn().await;
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content) in [
        ("up/pytest.ini", "[pytest]\n"),
        ("up/tests/test_up.py", "def test_up():\n    assert True\n"),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, path, content.as_bytes())
            .unwrap();
    }
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    tar.append_link(&mut link, "up/tests/test_passwd.py", "/etc/passwd")
        .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar.into_inner().unwrap()).unwrap();
    let archive = gz.finish().unwrap();

    let browser = browser();
    let csrf = csrf_of(&app, &browser, "/runs/new").await;
    let send = |fields: Vec<(&'static str, String)>, archive: Vec<u8>| {
        let fields: Vec<(&str, String)> = fields;
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        browser
            .post(app.url("/runs/upload"))
            .header("content-type", "multipart/form-data; boundary=BOUNDARY")
            .body(multipart(&pairs, &archive))
            .send()
    };
    let fields = vec![
        ("_csrf", csrf.clone()),
        ("username", "ann".into()),
        ("environment_id", "4".into()),
    ];
    let response = send(fields.clone(), archive).await.unwrap();
    assert_eq!(response.status(), 303, "{:?}", response.text().await);
    let run = last_run(&app).await;
    assert_eq!(run["project"], "tree:up", "{run}");
    assert_eq!(
        run["files"],
        json!(["tests/test_up.py"]),
        "the symlink is left out: {run}"
    );
    let run = app.wait_finished(id(&run), Duration::from_secs(60)).await;
    assert_eq!(run["status"], "success", "{run}");

    // Garbage, and a form without its token: refused, nothing written.
    let runs = app.count_runs().await;
    let response = send(fields, b"not an archive".to_vec()).await.unwrap();
    assert_eq!(response.status(), 422);
    let forged = vec![
        ("_csrf", "x".repeat(32)),
        ("username", "ann".into()),
        ("environment_id", "4".into()),
    ];
    let response = send(forged, b"whatever".to_vec()).await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(app.count_runs().await, runs);
}
