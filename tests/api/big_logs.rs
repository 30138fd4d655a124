//! Big logs: earlier pages (`before=`), search (`q=`), the raw text
//! (`log.txt`, streamed in bounded memory by the real server binary) and
//! the viewer's line links and pages.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{id, TestApp};
use crate::hostile_flood::Server;

const MANY_LINES: &str = r#"
import sys

def test_prints_200000_lines():
    out, err = sys.stdout, sys.stderr
    for i in range(200000):
        (err if i % 10 == 0 else out).write(f"line {i:06d} " + "x" * 60 + "\n")
"#;

/// A queued run (no executor) whose log is `lines` rows made by SQL:
/// `line N ...` (every 10th on stderr) and a few special ones.
async fn run_with_log(lines: i32) -> (TestApp, i64) {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let run = app.create_run(1, &["test_math.py"]).await;
    let run_id = id(&run);
    sqlx::query(
        "insert into run_logs (run_id, seq, stream, ts, line)
         select $1, g, case when g % 10 = 0 then 2 else 1 end, now(),
                case g when 777 then 'Progress: 50% done_now' when 778 then 'Ärger im Büro'
                       else 'line ' || g || ' Fox' end
           from generate_series(0, $2 - 1) g",
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
    (app, run_id)
}

fn seqs(lines: &Value) -> Vec<i64> {
    lines
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["seq"].as_i64().unwrap())
        .collect()
}

/// Pages back from the end with `before=` and checks 0..n without a gap.
async fn page_back(app: &TestApp, run_id: i64, n: i64) {
    let mut before = n;
    let mut seen = Vec::new();
    loop {
        let page = app
            .get_json(&format!(
                "/api/v1/runs/{run_id}/logs?before={before}&limit=5000"
            ))
            .await;
        let page = seqs(&page);
        if page.is_empty() {
            break;
        }
        assert!(page.windows(2).all(|w| w[0] + 1 == w[1]), "ascending");
        assert_eq!(*page.last().unwrap(), before - 1, "no gap below {before}");
        before = page[0];
        seen.splice(0..0, page);
    }
    assert_eq!(seen, (0..n).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_200000_line_log_streams_whole_in_bounded_memory_pages_back_and_is_searched() {
    let server = Server::start(&[("test_many_lines.py", MANY_LINES)], None).await;
    let app = &server.app;
    let run = app.create_run(8, &["test_many_lines.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(240)).await;
    assert_eq!(run["status"], "success", "{run}");
    let run_id = id(&run);
    let stored: Vec<String> =
        sqlx::query_scalar("select line from run_logs where run_id = $1 order by seq")
            .bind(run_id)
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert!(stored.len() > 200_000);

    // log.txt: every line in order, while the RSS stays within 16 MiB of
    // where it started.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (start_rss, _) = server.memory();
    let mut response = app.get(&format!("/runs/{run_id}/log.txt")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    let disposition = response.headers()["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    let mut body = Vec::new();
    let mut peak = start_rss;
    while let Some(chunk) = response.chunk().await.unwrap() {
        body.extend_from_slice(&chunk);
        peak = peak.max(server.memory().0);
        // a slow reader: the server must wait, not buffer
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let text = String::from_utf8(body).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), stored.len(), "every line");
    assert!(lines.iter().zip(&stored).all(|(a, b)| a == b), "in order");
    let grown_kib = peak.saturating_sub(start_rss);
    eprintln!(
        "log.txt: {} bytes; RSS {start_rss} KiB, peak {peak} KiB",
        text.len()
    );
    assert!(
        grown_kib <= 16 * 1024,
        "RSS grew by {grown_kib} KiB while streaming"
    );

    // One stream only: stderr holds every 10th line.
    let stderr = app
        .get(&format!("/runs/{run_id}/log.txt?stream=stderr"))
        .await
        .text()
        .await
        .unwrap();
    let numbered = stderr.lines().filter(|l| l.starts_with("line ")).count();
    assert_eq!(numbered, 20_000);

    // q= finds a line from the middle, case-insensitively, with its seq.
    let hits = app
        .get_json(&format!("/api/v1/runs/{run_id}/logs?q=LINE%20100000%20"))
        .await;
    let hits = hits.as_array().unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    let seq = hits[0]["seq"].as_i64().unwrap() as usize;
    assert!(stored[seq].starts_with("line 100000 "), "{}", stored[seq]);
    assert_eq!(hits[0]["stream"], "stderr");

    page_back(app, run_id, stored.len() as i64).await;
}

#[tokio::test]
async fn before_pages_back_to_the_start_and_after_and_stream_still_work() {
    let (app, run_id) = run_with_log(12_345).await;
    page_back(&app, run_id, 12_345).await;
    let page = app
        .get_json(&format!("/api/v1/runs/{run_id}/logs?before=100&limit=3"))
        .await;
    assert_eq!(seqs(&page), [97, 98, 99]);
    let page = app
        .get_json(&format!("/api/v1/runs/{run_id}/logs?after=97&limit=2"))
        .await;
    assert_eq!(seqs(&page), [98, 99]);
    let errs = app
        .get_json(&format!(
            "/api/v1/runs/{run_id}/logs?before=100&limit=3&stream=stderr"
        ))
        .await;
    assert_eq!(seqs(&errs), [70, 80, 90]);
    assert!(errs
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["stream"] == "stderr"));
}

#[tokio::test]
async fn search_is_case_insensitive_takes_wildcards_literally_and_pages_both_ways() {
    let (app, run_id) = run_with_log(5_000).await;
    let logs = |q: &str| format!("/api/v1/runs/{run_id}/logs?{q}");
    // "%" and "_" are plain characters
    let hits = app.get_json(&logs("q=50%25%20done_")).await;
    assert_eq!(seqs(&hits), [777]);
    assert!(seqs(&app.get_json(&logs("q=_")).await).len() == 1);
    // non-ASCII text is matched case-insensitively too
    assert_eq!(seqs(&app.get_json(&logs("q=%C3%A4RGER")).await), [778]);
    // case-insensitive, in order, bounded by limit
    let hits = app.get_json(&logs("q=fOX&limit=3")).await;
    assert_eq!(seqs(&hits), [0, 1, 2]);
    let hit = &hits.as_array().unwrap()[0];
    assert_eq!(hit["line"], "line 0 Fox");
    assert!(hit["ts"].is_string() && hit["stream"] == "stderr");
    // next and previous hits around a line
    let next = app.get_json(&logs("q=line%2012&after=12&limit=2")).await;
    assert_eq!(seqs(&next), [120, 121]);
    let previous = app.get_json(&logs("q=line%2012&before=120&limit=2")).await;
    assert_eq!(seqs(&previous), [12]);
    let stderr = app.get_json(&logs("q=line%2012&stream=stderr")).await;
    assert_eq!(
        seqs(&stderr),
        [120, 1200, 1210, 1220, 1230, 1240, 1250, 1260, 1270, 1280, 1290]
    );
    assert_eq!(
        app.get_json(&logs("q=nowhere")).await,
        serde_json::json!([])
    );
}

#[tokio::test]
async fn bad_log_parameters_are_refused_with_a_message() {
    let (app, run_id) = run_with_log(10).await;
    for (query, says) in [
        ("after=1&before=5", "not both"),
        ("limit=0", "limit must be between 1 and 5000"),
        ("limit=5001", "limit must be between 1 and 5000"),
        ("q=x&limit=1001", "limit must be between 1 and 1000"),
        ("stream=both", "use stdout or stderr"),
        ("q=", "search text (q) is empty"),
        ("before=x", "bad query parameters"),
        ("q=a%00b", "NUL"),
    ] {
        let response = app
            .get(&format!("/api/v1/runs/{run_id}/logs?{query}"))
            .await;
        assert_eq!(response.status(), 422, "{query}");
        let body: Value = response.json().await.unwrap();
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(says), "{query}: {error}");
    }
    let long = "x".repeat(201);
    let response = app
        .get(&format!("/api/v1/runs/{run_id}/logs?q={long}"))
        .await;
    assert_eq!(response.status(), 422);
    let response = app.get(&format!("/runs/{run_id}/log.txt?stream=x")).await;
    assert_eq!(response.status(), 422);
    let response = app.get(&format!("/runs/{run_id}?line=zero")).await;
    assert_eq!(response.status(), 422);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("line must be a line number"));
    assert_eq!(app.get("/runs/999999/log.txt").await.status(), 404);
}

#[tokio::test]
async fn the_cut_marker_stays_in_either_stream_of_log_txt() {
    let app = TestApp::spawn_with(&[], |c| c.log_cap_lines = 5).await;
    let run = app.create_run(1, &["test_output.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(60)).await;
    for stream in ["", "?stream=stdout", "?stream=stderr"] {
        let text = app
            .get(&format!("/runs/{}/log.txt{stream}", id(&run)))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            text.contains("[test-executor] log cut here"),
            "{stream}: {text}"
        );
    }
}

#[tokio::test]
async fn whole_log_downloads_at_once_are_limited_and_free_again_when_their_readers_leave() {
    // 40 MB of log: more than the socket buffers hold, so a download whose
    // reader does not read keeps streaming (and holds its permit).
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let run_id = id(&app.create_run(1, &["test_math.py"]).await);
    sqlx::query(
        "insert into run_logs (run_id, seq, stream, ts, line)
         select $1, g, 1, now(), g || ' ' || repeat(md5(g::text), 31) from generate_series(0, 39999) g",
    )
    .bind(run_id)
    .execute(&app.db)
    .await
    .unwrap();
    let path = format!("/runs/{run_id}/log.txt");
    let mut held = Vec::new();
    for _ in 0..4 {
        // state::LOG_DOWNLOADS_AT_ONCE
        let response = app.get(&path).await;
        assert_eq!(response.status(), 200);
        held.push(response);
    }
    let refused = app.get(&path).await;
    assert_eq!(refused.status(), 429);
    let message = refused.text().await.unwrap();
    assert!(message.contains("try again in a moment"), "{message}");

    // The readers leave: their streams end and the next download is whole.
    drop(held);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let response = loop {
        let response = app.get(&path).await;
        if response.status() == 200 || std::time::Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(response.status(), 200, "the permits came back");
    let text = response.text().await.unwrap();
    assert_eq!(text.lines().count(), 40_000);
}

#[tokio::test]
async fn the_page_opens_around_a_line_lists_hits_and_loads_earlier_pages() {
    let (app, run_id) = run_with_log(10_000).await;
    let page = |q: String| {
        let app = &app;
        async move { app.get(&q).await.text().await.unwrap() }
    };
    // the tail: the last 2000 lines and a loader for the ones above
    let tail = page(format!("/runs/{run_id}")).await;
    assert!(tail.contains("id=\"L10000\"") && tail.contains("id=\"L8001\""));
    assert!(!tail.contains("id=\"L8000\""));
    assert!(tail.contains(&format!(
        "/runs/{run_id}/fragments/logs/earlier?before=8000"
    )));
    // a line: its neighbourhood, the line marked, loaders both ways
    let around = page(format!("/runs/{run_id}?line=4322")).await;
    assert!(around.contains("target\" id=\"L4322\""), "target marked");
    assert!(around.contains("id=\"L3322\"") && !around.contains("id=\"L3321\""));
    assert!(around.contains("id=\"L5321\"") && !around.contains("id=\"L5322\""));
    assert!(around.contains("fragments/logs/earlier?before=3321"));
    assert!(around.contains("fragments/logs/later?after=5320"));
    assert!(!around.contains("log-poller"));
    // a line near (or past) the end: the last page, with the tail poller
    let end = page(format!("/runs/{run_id}?line=99999")).await;
    assert!(end.contains("id=\"L8001\"") && end.contains("id=\"L10000\""));
    assert!(end.contains("log-poller") && !end.contains("log-later"));
    // earlier and later pages
    let earlier = page(format!("/runs/{run_id}/fragments/logs/earlier?before=3320")).await;
    assert!(earlier.contains("id=\"L3320\"") && earlier.contains("id=\"L1321\""));
    assert!(earlier.contains("earlier?before=1320"));
    let first = page(format!("/runs/{run_id}/fragments/logs/earlier?before=1000")).await;
    assert!(first.contains("id=\"L1\"") && !first.contains("log-earlier"));
    let later = page(format!("/runs/{run_id}/fragments/logs/later?after=7999")).await;
    assert!(later.contains("id=\"L8001\"") && later.contains("id=\"L10000\""));
    assert!(!later.contains("log-later"), "the end reached");
    // a search: hits with context, the first opened, next/previous
    let search = page(format!("/runs/{run_id}?q=LINE%20500%20")).await;
    assert!(search.contains("Line 501"), "the hit's number");
    assert!(search.contains("target\" id=\"L501\""));
    assert!(
        search.contains("line 499 Fox") && search.contains("line 501 Fox"),
        "context"
    );
    let search = page(format!("/runs/{run_id}?q=line%20500&line=501")).await;
    assert!(search.contains("hit-next") && search.contains("line=5001#L5001"));
    assert!(!search.contains("class=\"hit-previous\""));
}
