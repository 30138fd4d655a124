//! Each run's CPU and memory over time (real Docker, real Postgres): memory
//! steps, CPU-seconds at two CPU limits, an OOM kill's last samples and its
//! reason, the API's `after_ms`, and the operator view's hint.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{id, remove_containers, TestApp};

const MIB: f64 = 1024.0 * 1024.0;

const GROW: &str = r#"
import time

def test_grows_in_60_mib_steps():
    blocks = []
    for _ in range(5):
        blocks.append(b"x" * (60 * 1024 * 1024))
        time.sleep(1.5)
    time.sleep(1)
    assert len(blocks) == 5
"#;

const BURN: &str = r#"
import time

def test_burns_cpu_for_6_seconds():
    start = time.process_time()
    end = time.monotonic() + 6
    n = 0
    while time.monotonic() < end:
        n += 1
    print("process cpu", time.process_time() - start)
"#;

const HOG: &str = r#"
import time

def test_hog():
    blocks = []
    while True:
        blocks.append(b"x" * (4 * 1024 * 1024))
        time.sleep(0.1)
"#;

async fn set_cpus(app: &TestApp, environment: i32, millicpus: i32, memory_mb: i32) {
    sqlx::query(
        "update environments set millicpus = $2, memory_mb = $3, timeout_secs = 120 where id = $1",
    )
    .bind(environment)
    .bind(millicpus)
    .bind(memory_mb)
    .execute(&app.db)
    .await
    .unwrap();
}

async fn resources(app: &TestApp, run: i64) -> Value {
    app.get_json(&format!("/api/v1/runs/{run}/resources")).await
}

fn memory(samples: &[Value]) -> Vec<f64> {
    samples
        .iter()
        .map(|s| s["memory_bytes"].as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn memory_grown_in_steps_rises_over_the_run_and_peaks_near_300_mib() {
    let app = TestApp::spawn_with(&[("res/test_grow.py", GROW)], |_| {}).await;
    set_cpus(&app, 41, 1000, 512).await;
    let run = app.create_run(41, &["res/test_grow.py"]).await;
    let run_id = id(&run);
    // the first sample lands within about a second of the start
    let started = tokio::time::Instant::now();
    let first = loop {
        let r = resources(&app, run_id).await;
        if !r["samples"].as_array().unwrap().is_empty() {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no sample: {r}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let run = app.wait_finished(run_id, Duration::from_secs(90)).await;
    assert_eq!(run["status"], "success", "{run}");
    let r = resources(&app, run_id).await;
    let samples = r["samples"].as_array().unwrap();
    let mem = memory(samples);
    assert!(samples.len() >= 6, "about one a second: {r}");
    // rises: the last third is far above the first third
    let third = mem.len() / 3;
    let early = mem[..third].iter().cloned().fold(0.0, f64::max);
    let late = mem[mem.len() - third..].iter().cloned().fold(0.0, f64::max);
    assert!(
        late > early + 150.0 * MIB,
        "early {early}, late {late}: {mem:?}"
    );
    let times: Vec<i64> = samples
        .iter()
        .map(|s| s["t_ms"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    let peak = r["peak_memory_bytes"].as_f64().unwrap();
    assert!(
        (peak / MIB - 300.0).abs() <= 45.0,
        "peak {} MiB should be within 15% of 300 MiB",
        peak / MIB
    );
    assert_eq!(run["resources"]["peak_memory_bytes"].as_f64(), Some(peak));
    assert!(r["peak_pids"].as_i64().unwrap() >= 1, "{r}");
    assert_eq!(r["limits"]["memory_mb"], 512);
    // only newer points with after_ms
    let after = times[times.len() / 2];
    let newer = app
        .get_json(&format!("/api/v1/runs/{run_id}/resources?after_ms={after}"))
        .await;
    let newer: Vec<i64> = newer["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["t_ms"].as_i64().unwrap())
        .collect();
    assert_eq!(newer, times[times.len() / 2 + 1..].to_vec());
    let bad = app
        .get(&format!("/api/v1/runs/{run_id}/resources?after_ms=soon"))
        .await;
    assert!(bad.status().is_client_error(), "{}", bad.status());
    let missing = app.get("/api/v1/runs/999999/resources").await;
    assert_eq!(missing.status(), 404);
    println!("first sample after {first:?} (from creating the run)");
    remove_containers(&app.instance);
}

async fn burn(app: &TestApp, environment: i32, millicpus: i32) -> (f64, f64) {
    set_cpus(app, environment, millicpus, 256).await;
    let run = app
        .create_run(i64::from(environment), &["res/test_burn.py"])
        .await;
    let run = app.wait_finished(id(&run), Duration::from_secs(90)).await;
    assert_eq!(run["status"], "success", "{run}");
    let logs = app.log_text(id(&run)).await.join("\n");
    let own: f64 = logs
        .split("process cpu ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the test's own CPU time: {logs}"));
    let cpu = run["resources"]["cpu_seconds"].as_f64().unwrap();
    (cpu, own)
}

#[tokio::test]
async fn a_cpu_burner_uses_about_its_limit_times_its_seconds() {
    let app = TestApp::spawn_with(&[("res/test_burn.py", BURN)], |_| {}).await;
    let (half, half_own) = burn(&app, 42, 500).await;
    let (one, one_own) = burn(&app, 43, 1000).await;
    println!(
        "0.5 CPU: {half:.2} CPU-s (own {half_own:.2}); 1 CPU: {one:.2} CPU-s (own {one_own:.2})"
    );
    for (sampled, own, nominal) in [(half, half_own, 3.0), (one, one_own, 6.0)] {
        // the sampled figure agrees with the test's own count (plus what
        // pytest itself used around it: a second at most)...
        assert!(
            sampled >= 0.75 * own && sampled <= 1.25 * own + 1.0,
            "{sampled} CPU-s sampled, {own} counted by the test"
        );
        // ...the limit holds (the test cannot use more than its share)...
        assert!(own <= 1.25 * nominal, "{own} CPU-s used, {nominal} allowed");
        // ...and the figure is about the limit times 6 s, unless the shared
        // host could not give the run its whole share (the test's own count
        // says so: the sampled figure ends at the engine's last one-second
        // tick, so it may miss up to a second of a host that was short)
        assert!(
            (sampled - nominal).abs() <= 0.25 * nominal || own < 0.9 * nominal,
            "{sampled} CPU-s, {nominal} expected (the test counted {own})"
        );
    }
    remove_containers(&app.instance);
}

#[tokio::test]
async fn an_oom_kill_shows_its_last_samples_near_the_limit_and_names_the_peak() {
    let app = TestApp::spawn_with(&[("res/test_hog.py", HOG)], |_| {}).await;
    set_cpus(&app, 44, 1000, 256).await;
    let run = app.create_run(44, &["res/test_hog.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(90)).await;
    assert_eq!(run["status"], "failed", "{run}");
    let reason = run["reason"].as_str().unwrap();
    let r = resources(&app, id(&run)).await;
    let peak_mib = (r["peak_memory_bytes"].as_f64().unwrap() / MIB).floor() as i64;
    assert_eq!(
        reason,
        format!("killed: out of memory (limit 256 MiB, peak {peak_mib} MiB) during res/test_hog.py::test_hog"),
    );
    let mem = memory(r["samples"].as_array().unwrap());
    // (the very last may be taken while the killed process is torn down)
    let last = mem[mem.len().saturating_sub(3)..]
        .iter()
        .cloned()
        .fold(0.0, f64::max);
    assert!(
        last >= 0.75 * 256.0 * MIB,
        "last samples {} MiB: {mem:?}",
        last / MIB
    );
    assert!(peak_mib >= 192, "{peak_mib}");

    // the operator view counts the kill, and gives no hint from one run
    let page = app.get("/environments").await.text().await.unwrap();
    assert!(page.contains("not enough runs yet (1 of 5)"), "{page}");
    let needs = app.get_json("/api/v1/environments/needs").await;
    let row = needs
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["environment_id"] == 44)
        .unwrap();
    assert_eq!(row["oom_kills"], 1, "{row}");
    assert_eq!(row["hint"], serde_json::Value::Null, "{row}");
    remove_containers(&app.instance);
}

const QUICK: &str = r#"
def test_quick():
    blocks = [b"x" * (8 * 1024 * 1024)]
    assert len(blocks[0]) == 8 * 1024 * 1024
"#;

#[tokio::test]
async fn a_run_shorter_than_the_engines_first_reading_still_gets_its_totals() {
    let app = TestApp::spawn_with(&[("res/test_quick.py", QUICK)], |_| {}).await;
    set_cpus(&app, 45, 1000, 256).await;
    let run = app.create_run(45, &["res/test_quick.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(60)).await;
    assert_eq!(run["status"], "success", "{run}");
    let r = resources(&app, id(&run)).await;
    let samples = r["samples"].as_array().unwrap().len();
    // from the engine's readings if one came, else the runner's own count
    let cpu = r["cpu_seconds"].as_f64().unwrap_or_else(|| panic!("{r}"));
    let peak = r["peak_memory_bytes"]
        .as_f64()
        .unwrap_or_else(|| panic!("{r}"));
    assert!(cpu > 0.0 && cpu < 5.0, "{r}");
    // Python, pytest and the test's 8 MiB, within the 256 MiB limit
    assert!(peak > 8.0 * MIB && peak <= 256.0 * MIB, "{r}");
    assert_eq!(run["resources"]["peak_memory_bytes"].as_f64(), Some(peak));
    println!(
        "{samples} samples; {cpu:.3} CPU-s, peak {:.1} MiB",
        peak / MIB
    );
    remove_containers(&app.instance);
}

#[tokio::test]
async fn the_operator_view_hints_only_from_the_fifth_finished_run() {
    let app = TestApp::spawn_with(&[("res/test_quick.py", QUICK)], |_| {}).await;
    let hint_of = |needs: Value| {
        let row = needs
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["environment_id"] == 46)
            .cloned();
        row.map(|r| r["hint"].clone())
    };
    for n in 1..=5 {
        let run = app.create_run(46, &["res/test_quick.py"]).await;
        app.wait_finished(id(&run), Duration::from_secs(60)).await;
        let page = app.get("/environments").await.text().await.unwrap();
        let hint = hint_of(app.get_json("/api/v1/environments/needs").await);
        if n < 5 {
            assert!(
                page.contains(&format!("not enough runs yet ({n} of 5)")),
                "{page}"
            );
            assert_eq!(hint, Some(Value::Null), "no hint after {n} runs");
        } else {
            assert!(!page.contains("not enough runs yet"));
            let hint = hint.unwrap();
            assert!(hint.as_str().unwrap().contains("MiB would do"), "{hint}");
        }
    }
    remove_containers(&app.instance);
}
