//! Services declared by a project (`[[services]]` in `test-executor.toml`):
//! the sample app's tests reach a fresh Postgres as `db:5432` through
//! psycopg and pass; its memory and processes count in the run's samples;
//! the service container is gone afterwards. A service whose port never
//! opens, or that stops, ends the run `error` naming it, within its
//! timeout. A Redis service answers by its name. Real Docker and the
//! offline images (`scripts/lib.sh` `ensure_service_images`).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{id, TestApp};

/// The service containers of this app's runs still present.
fn service_containers(app: &TestApp) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args([
            "ps",
            "-a",
            "--format",
            "{{.Names}}",
            "--filter",
            &format!("label=te.instance={}", app.instance),
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|n| n.contains("-svc-"))
        .map(str::to_owned)
        .collect()
}

async fn until_no_services(app: &TestApp) -> Vec<String> {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let left = service_containers(app);
        if left.is_empty() || Instant::now() > until {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The sandbox of the run's first service container, read while it runs:
/// its network mode, read-only root, dropped capabilities, security
/// options, user and networks (the run's container named, not its id).
async fn service_sandbox(app: &TestApp) -> Option<String> {
    let until = Instant::now() + Duration::from_secs(200);
    while Instant::now() < until {
        if let Some(name) = service_containers(app).first() {
            let out = std::process::Command::new("docker")
                .args([
                    "inspect",
                    "-f",
                    "{{.HostConfig.NetworkMode}} ro={{.HostConfig.ReadonlyRootfs}} \
                     drop={{.HostConfig.CapDrop}} add={{.HostConfig.CapAdd}} \
                     {{.HostConfig.SecurityOpt}} user={{.Config.User}} \
                     networks={{len .NetworkSettings.Networks}}",
                    name,
                ])
                .output()
                .expect("docker inspect");
            let run = name.split("-svc-").next().unwrap_or_default();
            let run_id = std::process::Command::new("docker")
                .args(["inspect", "-f", "{{.Id}}", run])
                .output()
                .expect("docker inspect");
            let run_id = String::from_utf8_lossy(&run_id.stdout).trim().to_owned();
            let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            // (a container not started yet has no network settings to read)
            if !text.is_empty() && !run_id.is_empty() {
                return Some(
                    text.replace(&format!("container:{run_id}"), &format!("container:{run}")),
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// A query that keeps the database busy long enough for a few samples.
const SLOW_QUERY: (&str, &str) = (
    "notes_app/tests/test_sampled.py",
    "def test_a_slow_query(conn):\n    \
         conn.execute('SELECT pg_sleep(3)')\n",
);

#[tokio::test]
async fn the_sample_app_passes_against_its_postgres_and_the_service_goes_with_the_run() {
    let app = TestApp::spawn_with(&[SLOW_QUERY], |_| {}).await;
    let run = app
        .create_run(1, &["notes_app/tests/test_notes.py", SLOW_QUERY.0])
        .await;
    let (run, sandbox) = tokio::join!(
        app.wait_finished(id(&run), Duration::from_secs(240)),
        service_sandbox(&app)
    );
    let logs = app.log_text(id(&run)).await.join("\n");
    assert_eq!(run["status"], "success", "{run}\n{logs}");
    assert_eq!(run["summary"]["passed"], 4, "{run}");
    // In the run's namespace only (no network of its own), sandboxed as a run.
    let sandbox = sandbox.expect("the service container was seen");
    let run_container = format!("te-{}-run-{}", app.instance, id(&run));
    let expected = format!(
        "container:{run_container} ro=true drop=[ALL] add=[] [no-new-privileges] \
         user=postgres networks=0"
    );
    assert_eq!(sandbox, expected);
    let left = until_no_services(&app).await;
    assert!(left.is_empty(), "service containers left: {left:?}");
    // Postgres' own processes (postmaster, checkpointer, writers, the
    // backend: 6 or more) count with pytest's.
    let resources: Value = app
        .get_json(&format!("/api/v1/runs/{}/resources", id(&run)))
        .await;
    let pids = resources["peak_pids"].as_i64().unwrap_or(0);
    assert!(
        pids >= 6,
        "the service's processes are counted: {resources}"
    );
}

const NEVER_READY: &[(&str, &str)] = &[
    ("deaf/pytest.ini", "[pytest]\n"),
    (
        "deaf/test-executor.toml",
        "[[services]]\nname = \"cache\"\nimage = \"postgres\"\n\
         env = { POSTGRES_PASSWORD = \"x\" }\nready = \"tcp:6399\"\n",
    ),
    ("deaf/test_x.py", "def test_x():\n    pass\n"),
    ("dies/pytest.ini", "[pytest]\n"),
    (
        "dies/test-executor.toml",
        "[[services]]\nname = \"db\"\nimage = \"postgres\"\nready = \"tcp:5432\"\n",
    ),
    ("dies/test_x.py", "def test_x():\n    pass\n"),
];

#[tokio::test]
async fn a_service_never_ready_or_stopped_ends_the_run_error_naming_it() {
    let app = TestApp::spawn_with(NEVER_READY, |c| {
        c.dependencies.service_ready_timeout_secs = 5;
    })
    .await;
    let started = Instant::now();
    let deaf = app.create_run(1, &["deaf/test_x.py"]).await;
    let deaf = app.wait_finished(id(&deaf), Duration::from_secs(60)).await;
    let took = started.elapsed();
    let reason = deaf["reason"].as_str().unwrap_or_default();
    assert_eq!(deaf["status"], "error", "{deaf}");
    assert!(
        reason.contains(
            "service cache (postgres) did not accept a connection on port 6399 within 5 s"
        ),
        "{reason}"
    );
    // its last lines (Postgres listens on 5432), or none yet on a loaded
    // machine (initdb prints nothing)
    assert!(
        reason.contains("; its last lines:\n") || reason.ends_with("; it printed nothing"),
        "{reason}"
    );
    assert!(took < Duration::from_secs(30), "ended after {took:?}");
    assert_eq!(deaf["summary"]["passed"], 0, "no test ran: {deaf}");

    // Without POSTGRES_PASSWORD the image's entrypoint refuses to start.
    let dies = app.create_run(2, &["dies/test_x.py"]).await;
    let dies = app.wait_finished(id(&dies), Duration::from_secs(60)).await;
    let reason = dies["reason"].as_str().unwrap_or_default();
    assert_eq!(dies["status"], "error", "{dies}");
    assert!(
        reason.contains("service db (postgres) stopped before it was ready (exit code 1)"),
        "{reason}"
    );
    assert!(reason.contains("POSTGRES_PASSWORD must be set"), "{reason}");
    let left = until_no_services(&app).await;
    assert!(left.is_empty(), "service containers left: {left:?}");
}

const REDIS: &[(&str, &str)] = &[
    ("cached/pytest.ini", "[pytest]\n"),
    (
        "cached/test-executor.toml",
        "[env]\nCACHE_HOST = \"cache\"\n\n\
         [[services]]\nname = \"cache\"\nimage = \"redis\"\nready = \"tcp:6379\"\n",
    ),
    (
        "cached/test_cache.py",
        "import os, socket\n\n\
         def ask(*words):\n    \
             with socket.create_connection((os.environ['CACHE_HOST'], 6379), 5) as s:\n        \
                 s.sendall(b' '.join(w.encode() for w in words) + b'\\r\\n')\n        \
                 return s.recv(100)\n\n\
         def test_redis_answers_by_its_service_name():\n    \
             assert ask('PING') == b'+PONG\\r\\n'\n    \
             assert ask('SET', 'k', 'v') == b'+OK\\r\\n'\n    \
             assert ask('GET', 'k') == b'$1\\r\\nv\\r\\n'\n",
    ),
];

#[tokio::test]
async fn a_redis_service_answers_by_its_name() {
    let app = TestApp::spawn_with(REDIS, |_| {}).await;
    let run = app.create_run(1, &["cached/test_cache.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(60)).await;
    let logs = app.log_text(id(&run)).await.join("\n");
    assert_eq!(run["status"], "success", "{run}\n{logs}");
    assert_eq!(run["summary"]["passed"], 1, "{run}");
}
