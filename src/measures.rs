//! Prometheus metrics: the names, the recorder, and the calls that count.
//! Counters and histograms are recorded where things happen (run created,
//! claimed, finished; a log batch stored; an HTTP request answered); the
//! gauges are read when `/metrics` is scraped (see `scrape.rs`).
//!
//! The recorder is global (one per process) and installed once, by
//! `install`; before that, recording does nothing.

use std::{
    sync::OnceLock,
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::Response,
};
use metrics::{counter, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const RUNS_CREATED: &str = "te_runs_created_total";
pub const RUNS_FINISHED: &str = "te_runs_finished_total";
pub const RUN_DURATION: &str = "te_run_duration_seconds";
pub const RUN_QUEUED: &str = "te_run_queued_seconds";
pub const LOG_LINES: &str = "te_log_lines_stored_total";
pub const LOG_BYTES: &str = "te_log_bytes_stored_total";
pub const LOG_FLUSH: &str = "te_log_flush_seconds";
pub const STORE_FAILURES: &str = "te_store_failures_total";
pub const HTTP_REQUESTS: &str = "te_http_requests_total";
pub const HTTP_DURATION: &str = "te_http_request_duration_seconds";

const RUN_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];
const QUEUED_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];
const FAST_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder (once; later calls return the same
/// handle) and keeps its histograms drained between scrapes.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(RUN_DURATION.into()), RUN_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(RUN_QUEUED.into()), QUEUED_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(LOG_FLUSH.into()), FAST_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), FAST_BUCKETS)
                })
                .expect("bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder (a test's) may be installed already: this
            // handle then renders nothing, which is all that goes wrong.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "a metrics recorder was installed already; /metrics shows only gauges"
                );
            }
            let upkeep = handle.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let mut every = tokio::time::interval(Duration::from_secs(5));
                    loop {
                        every.tick().await;
                        upkeep.run_upkeep();
                    }
                });
            }
            handle
        })
        .clone()
}

pub fn run_created(environment: i32) {
    counter!(RUNS_CREATED, "environment" => environment.to_string()).increment(1);
}

/// A run ended with `status` (`success`, `failed`, …) after running for
/// `ran` (`None` when it never started: cancelled while queued).
pub fn run_finished(status: &'static str, environment: i32, ran: Option<Duration>) {
    counter!(RUNS_FINISHED, "status" => status, "environment" => environment.to_string())
        .increment(1);
    if let Some(ran) = ran {
        histogram!(RUN_DURATION, "status" => status).record(ran.as_secs_f64());
    }
}

/// A run was claimed by an executor after waiting `queued`.
pub fn run_started(queued: Duration) {
    histogram!(RUN_QUEUED).record(queued.as_secs_f64());
}

/// A batch of `lines` log lines (`bytes` of text) was stored, taking `took`.
pub fn logs_stored((lines, bytes): (usize, usize), took: Duration) {
    counter!(LOG_LINES).increment(lines as u64);
    counter!(LOG_BYTES).increment(bytes as u64);
    histogram!(LOG_FLUSH).record(took.as_secs_f64());
}

/// A write (`what`: a fixed description) failed and is retried or given up.
pub fn store_failed(what: &'static str) {
    counter!(STORE_FAILURES, "what" => what).increment(1);
}

/// Middleware (a route layer): counts each answered request by its route
/// pattern (`/api/v1/runs/{id}`, never the raw URI), method and status.
pub async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method: &'static str = match request.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    histogram!(HTTP_DURATION, "route" => route.clone()).record(started.elapsed().as_secs_f64());
    counter!(HTTP_REQUESTS, "route" => route, "method" => method, "status" => status).increment(1);
    response
}
