//! The server binary in a process of its own: a regression that aborts it or
//! sticks its runtime threads shows as a dead server or a timed-out request
//! rather than taking the test down with it, and the test can kill it with
//! SIGKILL and leave it dead.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::json;
use sqlx::PgPool;

use crate::helpers::fresh_database;

pub struct Server {
    child: Child,
    pub address: String,
    /// Every request gives up after a second.
    pub client: reqwest::Client,
    pub db: PgPool,
    tests_dir: PathBuf,
}

impl Server {
    /// Starts the server on a fresh database, serving `tests_dir` (removed
    /// when the server is dropped), with `env` added to its environment.
    pub async fn start(tests_dir: PathBuf, env: &[(&str, &str)]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let database_url = fresh_database().await;
        let child = Command::new(env!("CARGO_BIN_EXE_test-executor"))
            .env("DATABASE_URL", &database_url)
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("TESTS_DIR", &tests_dir)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the server binary");
        let mut server = Server {
            child,
            address: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(1))
                .build()
                .unwrap(),
            db: PgPool::connect_lazy(&database_url).unwrap(),
            tests_dir,
        };
        for _ in 0..100 {
            if reqwest::get(format!("{}/healthz", server.address))
                .await
                .is_ok()
            {
                return server;
            }
            assert!(server.alive(), "the server exited while starting");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not come up at {}", server.address);
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// GETs `path`, asserting a 200 within a second; returns the body.
    pub async fn quickly(&mut self, path: &str) -> String {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await;
        assert!(self.alive(), "the server died answering GET {path}");
        let response = response.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.unwrap()
    }

    pub async fn create_run(&self, environment: i64, file: &str) -> reqwest::Response {
        let body = json!({"username": "ann", "environment_id": environment, "files": [file]});
        let url = format!("{}/api/v1/runs", self.address);
        let sent = self.client.post(url).json(&body).send().await;
        sent.unwrap_or_else(|e| panic!("creating a run of {file}: {e}"))
    }

    /// Kills the server with SIGKILL: nothing of it runs after this.
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.tests_dir);
    }
}
