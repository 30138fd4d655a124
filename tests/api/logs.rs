use std::time::Duration;

use crate::helpers::{id, TestApp};

const MANY_LINES: &str = r#"
import sys

def test_prints_200000_lines():
    out, err = sys.stdout, sys.stderr
    for i in range(200000):
        (err if i % 10 == 0 else out).write(f"line {i:06d} " + "x" * 60 + "\n")
"#;

const TALKATIVE: &str = r#"
def test_talks_a_lot():
    for i in range(20000):
        print(f"chatter {i} " + "y" * 100)
"#;

#[tokio::test]
async fn a_200000_line_run_is_stored_whole_and_in_order() {
    let app = TestApp::spawn_with(&[("test_many_lines.py", MANY_LINES)], |_| {}).await;
    let run = app.create_run(8, &["test_many_lines.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(180)).await;
    assert_eq!(run["status"], "success", "{run}");
    let numbered: Vec<(i32, i16, String)> = sqlx::query_as(
        // pytest prints the file name first, so the first line may carry it as a prefix
        "select seq, stream, substring(line from 'line (\\d{6}) ') from run_logs
          where run_id = $1 and line ~ 'line \\d{6} ' order by seq",
    )
    .bind(id(&run))
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(numbered.len(), 200_000);
    let stderr_lines = numbered
        .iter()
        .filter(|(_, stream, _)| *stream == 2)
        .count();
    assert_eq!(stderr_lines, 20_000);
    // stdout lines keep their order among themselves, and so do stderr lines
    for stream in [1, 2] {
        let numbers: Vec<u32> = numbered
            .iter()
            .filter(|l| l.1 == stream)
            .map(|l| l.2.parse().unwrap())
            .collect();
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "stream {stream} in order"
        );
    }
    let seqs: Vec<i32> =
        sqlx::query_scalar("select seq from run_logs where run_id = $1 order by seq")
            .bind(id(&run))
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert!(
        seqs.iter().enumerate().all(|(i, s)| *s == i as i32),
        "sequence numbers have no gaps"
    );
}

#[tokio::test]
async fn logs_are_read_after_a_sequence_number() {
    let app = TestApp::spawn().await;
    let run = app.create_run(9, &["test_output.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(60)).await;
    let all = app
        .get_json(&format!("/api/v1/runs/{}/logs", id(&run)))
        .await;
    let all = all.as_array().unwrap();
    assert!(all.len() > 3);
    assert_eq!(all[0]["seq"], 0);
    let streams: Vec<&str> = all.iter().map(|l| l["stream"].as_str().unwrap()).collect();
    assert!(
        streams.contains(&"stdout") && streams.contains(&"stderr"),
        "{streams:?}"
    );
    let after = app
        .get_json(&format!("/api/v1/runs/{}/logs?after=2", id(&run)))
        .await;
    assert_eq!(after[0]["seq"], 3);
    assert_eq!(after.as_array().unwrap().len(), all.len() - 3);
}

#[tokio::test]
async fn output_past_the_cap_is_cut_with_a_marker_and_the_run_still_finishes() {
    let app = TestApp::spawn_with(&[("test_talkative.py", TALKATIVE)], |c| {
        c.log_cap_bytes = 256 * 1024
    })
    .await;
    let run = app.create_run(10, &["test_talkative.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(60)).await;
    assert_eq!(run["status"], "success", "{run}");
    let lines = app.log_text(id(&run)).await;
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    assert!(bytes <= 256 * 1024 + 200, "stored {bytes} bytes");
    assert!(
        lines.last().unwrap().contains("log cut here"),
        "{:?}",
        lines.last()
    );
}
