//! The terminal client (`test-executor submit|runs|logs|cancel`), the real
//! binary against the real server: exit codes, the logs and counts it prints,
//! a busy environment's holder on stderr.

use std::{process::Output, time::Duration};

use serde_json::Value;

use crate::helpers::{id, TestApp};

const SAYS_HELLO: &str = r#"
def test_prints_and_passes():
    print("hello from the client test")
    print("\x1b[2J\x1b]0;title\x07cleared?")

def test_also_passes():
    assert 2 + 2 == 4
"#;

const HOLDS: &str = r#"
import time

def test_holds_the_environment():
    print("holding", flush=True)
    time.sleep(120)
"#;

const EXTRA: &[(&str, &str)] = &[
    ("client/test_hello.py", SAYS_HELLO),
    ("client/test_holds.py", HOLDS),
];

/// Runs the client binary with `args` against `app` and returns its output.
async fn client(app: &TestApp, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_test-executor"));
    command
        .args(args)
        .env_clear()
        .env("TEST_EXECUTOR_URL", &app.address)
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the client ended within 2 minutes")
        .expect("running the client")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn submit_exits_0_for_a_passing_file_and_prints_its_logs_and_counts() {
    let app = TestApp::spawn_with(EXTRA, |_| {}).await;
    let output = client(
        &app,
        &[
            "submit",
            "--user",
            "ann",
            "--env",
            "1",
            "client/test_hello.py",
        ],
    )
    .await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("hello from the client test"), "{stdout}");
    assert!(stdout.contains("success: 2 passed of 2"), "{stdout}");
    // What the test printed reaches the terminal without its control characters.
    assert!(
        !stdout.contains('\x1b') && !stdout.contains('\x07'),
        "{stdout:?}"
    );
    assert!(stdout.contains("\u{FFFD}[2J"), "{stdout:?}");
    assert!(
        stderr.contains("/runs/"),
        "the run's page is named: {stderr}"
    );
    assert!(
        !stderr.contains("waiting"),
        "an idle host takes the run at once, nothing to wait for: {stderr}"
    );
    assert!(stderr.contains("tests: 2/2 · 2 passed"), "{stderr}");

    // `runs` lists it, `logs` prints its logs again.
    let runs = client(&app, &["runs", "--user", "ann", "--status", "success"]).await;
    let (list, _) = text(&runs);
    assert_eq!(runs.status.code(), Some(0));
    assert!(list.contains("ann") && list.contains("2 passed"), "{list}");
    let run = app.get_json("/api/v1/runs?username=ann").await[0].clone();
    let run_id = run["id"].as_i64().unwrap();
    let created = run["created_at"].as_str().unwrap();
    let readable = format!("{} {}", &created[..10], &created[11..19]);
    assert!(
        list.contains(&readable) && !list.contains(created),
        "times to the second, not raw ISO: {list}"
    );
    let logs = client(&app, &["logs", &run_id.to_string()]).await;
    assert_eq!(logs.status.code(), Some(0));
    assert!(text(&logs).0.contains("hello from the client test"));
}

#[tokio::test]
async fn submit_exits_1_when_tests_fail_and_quiet_prints_only_the_verdict() {
    let app = TestApp::spawn_with(EXTRA, |_| {}).await;
    let output = client(
        &app,
        &[
            "submit",
            "--user",
            "bob",
            "--env",
            "2",
            "--quiet",
            "test_failing.py",
        ],
    )
    .await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("failed: 3 failed of 3"), "{stdout}");
    assert_eq!(
        stdout.lines().count(),
        1,
        "--quiet: the verdict only: {stdout}"
    );
    assert!(stderr.is_empty(), "{stderr}");
}

#[tokio::test]
async fn submit_exits_3_on_a_busy_environment_naming_the_holder_then_waits_in_line() {
    let app = TestApp::spawn_with(EXTRA, |_| {}).await;
    let holder = app.create_run(3, &["client/test_holds.py"]).await;
    let holder_id = id(&holder);
    app.wait_for(holder_id, Duration::from_secs(60), |run| {
        run["log_lines"].as_i64() > Some(0)
    })
    .await;

    let output = client(
        &app,
        &["submit", "--user", "bob", "--env", "3", "test_math.py"],
    )
    .await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("run #{holder_id} by ann")),
        "the holder is named: {stderr}"
    );
    assert!(stderr.contains("--wait-in-line"), "{stderr}");

    // With --wait-in-line it queues, and runs once the holder is cancelled.
    let mut waiting = tokio::process::Command::new(env!("CARGO_BIN_EXE_test-executor"));
    waiting
        .args([
            "submit",
            "--user",
            "bob",
            "--env",
            "3",
            "--wait-in-line",
            "test_math.py",
        ])
        .env_clear()
        .env("TEST_EXECUTOR_URL", &app.address)
        .kill_on_drop(true);
    let waiting = waiting
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let queued: Value = app
            .get_json("/api/v1/runs?username=bob&status=queued")
            .await;
        if queued.as_array().is_some_and(|runs| !runs.is_empty()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob's run never queued"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Only its user (or an operator) may cancel: the client says so and exits 2.
    let refused = client(&app, &["cancel", &holder_id.to_string(), "--user", "bob"]).await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused).1.contains("only ann"),
        "{}",
        text(&refused).1
    );
    let cancel = client(&app, &["cancel", &holder_id.to_string(), "--user", "ann"]).await;
    assert_eq!(cancel.status.code(), Some(0), "{:?}", text(&cancel));
    assert!(text(&cancel).0.contains("cancelled"), "{:?}", text(&cancel));

    let output = tokio::time::timeout(Duration::from_secs(120), waiting.wait_with_output())
        .await
        .expect("the waiting client ended")
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("waiting:"),
        "it said why it waited: {stderr}"
    );
    assert!(stdout.contains("success: 4 passed of 4"), "{stdout}");
    assert!(
        stderr.contains("tests: 4/4 · 4 passed"),
        "the progress reaches the end: {stderr}"
    );

    // The cancelled holder's verdict, followed afterwards: exit 2.
    let follow = client(&app, &["logs", "--follow", &holder_id.to_string()]).await;
    let (stdout, _) = text(&follow);
    assert_eq!(follow.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("holding") && stdout.contains("cancelled"),
        "{stdout}"
    );
}

#[tokio::test]
async fn unreachable_servers_and_unknown_files_exit_2_with_a_message() {
    let app = TestApp::spawn_with(EXTRA, |_| {}).await;
    let output = client(
        &app,
        &["submit", "--user", "ann", "--env", "1", "no_such_test.py"],
    )
    .await;
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no_such_test.py") && stderr.contains("(422)"),
        "{stderr}"
    );

    let output = client(&app, &["runs", "--server", "http://127.0.0.1:9"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).1.contains("cannot reach http://127.0.0.1:9"));
}
