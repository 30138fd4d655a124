//! Test helpers: a fresh database per test, the real server on a free port
//! with its executor and the real Docker engine, and a catalog of test files.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use test_executor::{config::Config, AppState};

pub struct TestApp {
    pub address: String,
    pub db: PgPool,
    pub client: reqwest::Client,
    pub instance: String,
    /// The database's name: the dependency images this app built carry it.
    pub database: String,
    /// The tests folder it serves.
    pub tests_dir: PathBuf,
}

/// A database of its own for one test, created from `DATABASE_URL`.
pub async fn fresh_database() -> String {
    let base =
        std::env::var("DATABASE_URL").expect("DATABASE_URL must be set (scripts/test sets it)");
    let name = format!("te_test_{:016x}", rand::random::<u64>());
    let mut admin = PgConnection::connect(&base)
        .await
        .expect("connecting to Postgres");
    admin
        .execute(format!("create database {name}").as_str())
        .await
        .expect("creating a test database");
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("DATABASE_URL ends with a database name");
    format!("{prefix}/{name}")
}

/// A folder of test files for one test: the sample tests plus `extra`.
pub fn test_files(extra: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("te-tests-{:016x}", rand::random::<u64>()));
    copy_dir(Path::new("sample-tests"), &dir);
    for (path, content) in extra {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

pub fn config(database_url: &str, tests_dir: &Path) -> Config {
    Config {
        database_url: database_url.to_owned(),
        bind: "127.0.0.1:0".parse().unwrap(),
        tests_dir: tests_dir.to_owned(),
        runner_image: std::env::var("RUNNER_IMAGE")
            .unwrap_or_else(|_| "test-executor-runner:latest".into()),
        max_parallel_runs: Some(2),
        // WARM_POOL in the environment runs the whole suite with or without the pool.
        warm_pool: std::env::var("WARM_POOL").ok().and_then(|v| v.parse().ok()),
        warm_pool_cpu_shares: 1024,
        operator_token: Some("operator-secret".into()),
        metrics_token: None,
        max_queued_per_user: test_executor::config::DEFAULT_MAX_QUEUED_PER_USER,
        max_queued: test_executor::config::DEFAULT_MAX_QUEUED,
        log_cap_bytes: 32 * 1024 * 1024,
        log_cap_lines: 1_000_000,
        sample_resources: true,
        no_executor: false,
        project_cap_bytes: 64 * 1024 * 1024,
        project_cap_files: 20_000,
        tree_quota_bytes: 1024 * 1024 * 1024,
        tree_total_bytes: 10 * 1024 * 1024 * 1024,
        upload_body_timeout_secs: 120,
        assets_dir: "assets".into(),
        secure_cookies: false,
        session_cleanup_secs: 3600,
        log_format: Default::default(),
        retention_days: None,
        retention_interval_secs: 3600,
        dependencies: test_executor::config::DependencyBuildConfig::from_env(),
        worker: test_executor::config::WorkerConfig::from_env(),
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[], |_| {}).await
    }

    /// Starts the app with extra test files and a tweaked configuration.
    pub async fn spawn_with(extra: &[(&str, &str)], tweak: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_on(&fresh_database().await, extra, tweak).await
    }

    /// Starts the app on a database that exists already (another app's, or
    /// one on a Postgres cluster of the test's own).
    pub async fn spawn_on(
        database_url: &str,
        extra: &[(&str, &str)],
        tweak: impl FnOnce(&mut Config),
    ) -> TestApp {
        test_executor::telemetry::init();
        let database_url = database_url.to_owned();
        let tests_dir = test_files(extra);
        let mut config = config(&database_url, &tests_dir);
        tweak(&mut config);
        let tests_dir = config.tests_dir.clone();
        let state = AppState::start(config).await.expect("starting the app");
        // The tests look underneath as the owner: the app's own pools act as
        // te_web and te_worker (migrations/0020_roles.sql).
        let db = test_executor::db::connect(&database_url)
            .await
            .expect("connecting as the owner");
        let instance = state
            .executor
            .as_ref()
            .map(|e| e.instance().to_owned())
            .unwrap_or_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(
                listener,
                test_executor::app(state)
                    .into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap();
        });
        let database = database_url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned();
        TestApp {
            address,
            db,
            client: reqwest::Client::new(),
            instance,
            database,
            tests_dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a run and returns its JSON, asserting it was accepted.
    pub async fn create_run(&self, environment: i64, files: &[&str]) -> Value {
        let response = self
            .post_json(
                "/api/v1/runs",
                &json!({"username": "ann", "environment_id": environment, "files": files}),
            )
            .await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "creating a run: {body}");
        body
    }

    /// Waits until the run has finished and returns it.
    pub async fn wait_finished(&self, run_id: i64, within: Duration) -> Value {
        self.wait_for(run_id, within, |run| {
            !matches!(run["status"].as_str(), Some("queued" | "running"))
        })
        .await
    }

    pub async fn wait_for(
        &self,
        run_id: i64,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let run = self.get_json(&format!("/api/v1/runs/{run_id}")).await;
            if done(&run) {
                return run;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "run {run_id} not there in {within:?}: {run}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every stored log line of a run, as text.
    pub async fn log_text(&self, run_id: i64) -> Vec<String> {
        sqlx::query_scalar("select line from run_logs where run_id = $1 order by seq")
            .bind(run_id)
            .fetch_all(&self.db)
            .await
            .unwrap()
    }

    pub async fn set_limits(&self, environment: i32, memory_mb: i32, timeout_secs: i32) {
        sqlx::query("update environments set memory_mb = $2, timeout_secs = $3 where id = $1")
            .bind(environment)
            .bind(memory_mb)
            .bind(timeout_secs)
            .execute(&self.db)
            .await
            .unwrap();
    }

    /// The URL of this app's database (to start a second app on it).
    pub async fn database_url(&self) -> String {
        let name: String = sqlx::query_scalar("select current_database()")
            .fetch_one(&self.db)
            .await
            .unwrap();
        let base = std::env::var("DATABASE_URL").unwrap();
        let (prefix, _) = base.rsplit_once('/').unwrap();
        format!("{prefix}/{name}")
    }

    pub async fn count_runs(&self) -> i64 {
        sqlx::query_scalar("select count(*) from runs")
            .fetch_one(&self.db)
            .await
            .unwrap()
    }
}

/// Removes every container of an installation (its runs' and its warm
/// sandboxes), so tests leave the engine as they found it.
pub fn remove_containers(instance: &str) {
    if instance.is_empty() {
        return;
    }
    let listed = std::process::Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=te.instance={instance}"),
        ])
        .output();
    if let Ok(out) = listed {
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect();
        if !ids.is_empty() {
            let _ = std::process::Command::new("docker")
                .arg("rm")
                .arg("-f")
                .args(&ids)
                .output();
        }
    }
}

/// Removes the dependency images (`te-deps/*`) an installation built: they
/// carry its database's name.
pub fn remove_dependency_images(database: &str) {
    if database.is_empty() {
        return;
    }
    let listed = std::process::Command::new("docker")
        .args([
            "images",
            "-q",
            "--filter",
            &format!(
                "label={}={database}",
                test_executor::dependencies::LABEL_DATABASE
            ),
        ])
        .output();
    if let Ok(out) = listed {
        let mut ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect();
        ids.dedup();
        if !ids.is_empty() {
            let _ = std::process::Command::new("docker")
                .args(["rmi", "-f"])
                .args(&ids)
                .output();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        remove_containers(&self.instance);
        remove_dependency_images(&self.database);
    }
}

/// A browser-like client: keeps cookies, does not follow redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The CSRF token of the form on `page`, as this browser's session has it.
pub async fn csrf_of(app: &TestApp, browser: &reqwest::Client, page: &str) -> String {
    let html = browser
        .get(app.url(page))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = html
        .find("name=\"_csrf\" value=\"")
        .expect("the form has a CSRF token")
        + 20;
    html[at..at + 32].to_string()
}

pub fn id(run: &Value) -> i64 {
    run["id"].as_i64().expect("run has an id")
}
