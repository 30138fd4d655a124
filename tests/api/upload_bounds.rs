//! Upload bodies are bounded in time as in size: a body that trickles in
//! is answered 408 at `UPLOAD_BODY_TIMEOUT_SECS`, and the browser's upload
//! is refused on its form token before its archive is read.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::TestApp;

/// Sends `head` and then `body`, one byte every 200 ms, on a raw
/// connection; the status line of the answer, if one comes within 10 s.
async fn answer_while_trickling(app: &TestApp, head: String, body: Vec<u8>) -> Option<String> {
    let address = app.address.trim_start_matches("http://");
    let stream = TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(head.as_bytes()).await.unwrap();
    let trickle = tokio::spawn(async move {
        for byte in body {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // then hold the connection without sending the rest
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), reader.read(&mut answer)).await;
    trickle.abort();
    let n = read.ok()?.ok()?;
    let text = String::from_utf8_lossy(&answer[..n]).into_owned();
    Some(text.lines().next().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_content_upload_that_trickles_past_the_deadline_is_answered_408() {
    let app = TestApp::spawn_with(&[], |c| c.upload_body_timeout_secs = 2).await;
    let sha = "a".repeat(64);
    let head = format!(
        "PUT /api/v1/blobs/{sha}?username=ann HTTP/1.1\r\nHost: test\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n"
    );
    let status = answer_while_trickling(&app, head, vec![b'x'; 1000]).await;
    let status = status.expect("an answer before the whole body arrived");
    assert!(status.contains(" 408 "), "{status}");
}

/// A multipart head whose first field is `first` (= `value`), then the
/// start of an archive that never ends.
fn form_start(first: &str, value: &str) -> Vec<u8> {
    format!(
        "--B\r\nContent-Disposition: form-data; name=\"{first}\"\r\n\r\n{value}\r\n\
         --B\r\nContent-Disposition: form-data; name=\"archive\"; filename=\"a.tar.gz\"\r\n\r\n\
         archive-bytes"
    )
    .into_bytes()
}

#[tokio::test]
async fn a_forged_browser_upload_is_refused_before_its_archive_arrives() {
    let app = TestApp::spawn().await;
    for (first, value) in [("_csrf", "x".repeat(32)), ("username", "ann".to_owned())] {
        let head = "POST /runs/upload HTTP/1.1\r\nHost: test\r\n\
                    Content-Type: multipart/form-data; boundary=B\r\n\
                    Content-Length: 50000000\r\n\r\n"
            .to_owned();
        // sent at once (no trickle needed): the rest never comes
        let status = answer_while_trickling(
            &app,
            head + &String::from_utf8_lossy(&form_start(first, &value)),
            Vec::new(),
        )
        .await;
        let status = status.expect("an answer before the archive arrived");
        assert!(status.contains(" 403 "), "{first}: {status}");
    }
    assert_eq!(app.count_runs().await, 0);
}
