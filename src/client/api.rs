//! The few calls of the JSON API the client makes, and the shapes it reads
//! back (only the fields it uses; unknown ones are ignored).

use std::{fmt, time::Duration};

use serde::{de::DeserializeOwned, Deserialize};
use serde_json::Value;

/// Largest response body read (a page of 5,000 log lines fits many times).
const MAX_BODY: usize = 64 * 1024 * 1024;

pub struct Api {
    base: String,
    http: reqwest::Client,
}

#[derive(Debug)]
pub enum ApiError {
    /// The server answered with an error: its status and message, and for a
    /// busy environment the run that holds it.
    Refused {
        status: u16,
        message: String,
        holder: Option<i64>,
    },
    /// The server could not be reached, or its answer not read.
    Transport(String),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Refused {
                status, message, ..
            } => write!(f, "{} ({status})", crate::client::sanitize(message, false)),
            ApiError::Transport(message) => f.write_str(message),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Run {
    pub id: i64,
    pub username: String,
    pub environment_id: i64,
    #[serde(default)]
    pub files: Vec<String>,
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub waiting_for: Option<String>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub summary: Summary,
    #[serde(default)]
    pub current_test: Option<String>,
}

impl Run {
    pub fn is_over(&self) -> bool {
        !matches!(self.status.as_str(), "queued" | "running")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub collected: Option<i64>,
    pub passed: i64,
    pub failed: i64,
    pub skipped: i64,
    pub xfailed: i64,
    pub xpassed: i64,
    pub error: i64,
}

impl Summary {
    pub fn done(&self) -> i64 {
        self.passed + self.failed + self.skipped + self.xfailed + self.xpassed + self.error
    }

    /// "3 passed · 1 failed", or "no test results".
    pub fn text(&self) -> String {
        let parts: Vec<String> = [
            (self.passed, "passed"),
            (self.failed, "failed"),
            (self.error, "errors"),
            (self.skipped, "skipped"),
            (self.xfailed, "xfailed"),
            (self.xpassed, "xpassed"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, label)| format!("{n} {label}"))
        .collect();
        if parts.is_empty() {
            "no test results".into()
        } else {
            parts.join(" · ")
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogLine {
    pub seq: i32,
    pub line: String,
}

impl Api {
    /// A client of the server at `server` (plain HTTP: no TLS is built in).
    pub fn new(server: &str) -> Result<Api, ApiError> {
        let base = server.trim().trim_end_matches('/').to_owned();
        if base.starts_with("https://") {
            return Err(ApiError::Transport(format!(
                "{base}: this client speaks plain HTTP only (no TLS is built in); \
                 use the server's http:// address, or a local TLS-terminating tunnel"
            )));
        }
        if !base.starts_with("http://") || base.len() <= "http://".len() {
            return Err(ApiError::Transport(format!(
                "--server {base:?} is not an http:// URL (e.g. http://127.0.0.1:8000)"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("test-executor-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Transport(format!("setting up the HTTP client: {e}")))?;
        Ok(Api { base, http })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        let request = self.http.get(self.url(path)).query(query);
        self.send(request).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
        bearer: Option<&str>,
    ) -> Result<T, ApiError> {
        let mut request = self.http.post(self.url(path)).json(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    /// PUTs raw bytes (`application/octet-stream`).
    pub async fn put_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        bytes: Vec<u8>,
    ) -> Result<T, ApiError> {
        let request = self
            .http
            .put(self.url(path))
            .query(query)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        self.send(request).await
    }

    pub async fn run(&self, id: i64) -> Result<Run, ApiError> {
        self.get(&format!("/api/v1/runs/{id}"), &[]).await
    }

    /// The run once it has ended, or as it is after `wait` (`?wait=`).
    pub async fn run_waiting(&self, id: i64, wait: Duration) -> Result<Run, ApiError> {
        let wait = wait.as_secs_f64().to_string();
        self.get(&format!("/api/v1/runs/{id}"), &[("wait", wait)])
            .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let mut response = request.send().await.map_err(|e| {
            ApiError::Transport(format!("cannot reach {}: {}", self.base, chain(&e)))
        })?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| ApiError::Transport(format!("reading the answer: {}", chain(&e))))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(ApiError::Transport(format!(
                    "the server's answer is larger than {} MiB",
                    MAX_BODY >> 20
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let message = value["error"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    let text = String::from_utf8_lossy(&body);
                    let text: String = text.chars().take(300).collect();
                    format!("the server answered {status}: {}", text.trim())
                });
            return Err(ApiError::Refused {
                status: status.as_u16(),
                message,
                holder: value["holder_run_id"].as_i64(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::Transport(format!(
                "{} answered something that is not this API's JSON ({e}): is it a test-executor server?",
                self.base
            ))
        })
    }
}

/// An error with its causes ("error sending request: connection refused").
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
