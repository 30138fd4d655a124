//! `check-flaky` and `bisect`: start a check on a run's failed test,
//! follow it until it is over, print its verdict. Exit code 0 when it has
//! a verdict, 2 when it ended without one or the request failed.

use std::time::Duration;

use clap::Args;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{api::Api, sanitize, ServerArg, Verdict};

#[derive(Args, Debug, Clone)]
pub struct CheckFlaky {
    #[command(flatten)]
    server: ServerArg,
    /// The finished run in which the test failed.
    run_id: i64,
    /// The failed test's node id, as the run's tests name it.
    nodeid: String,
    /// How many times to run it alone (1–50).
    #[arg(long, default_value_t = 10)]
    times: u32,
    /// Your name: the check's runs are yours (default: the run's user).
    #[arg(long, env = "TEST_EXECUTOR_USER")]
    user: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct Bisect {
    #[command(flatten)]
    server: ServerArg,
    /// The finished run in which the test failed.
    run_id: i64,
    /// The failed test's node id, as the run's tests name it.
    nodeid: String,
    /// Your name: the check's runs are yours (default: the run's user).
    #[arg(long, env = "TEST_EXECUTOR_USER")]
    user: Option<String>,
}

/// The fields of `GET /api/v1/checks/{id}` the client prints.
#[derive(Debug, Deserialize)]
struct Check {
    id: i64,
    status: String,
    progress: String,
    summary: Option<String>,
    reason: Option<String>,
    verdict: Option<Value>,
}

pub async fn check_flaky(args: CheckFlaky) -> Verdict {
    let body = json!({"nodeid": args.nodeid, "times": args.times, "username": args.user});
    let path = format!("/api/v1/runs/{}/flaky-check", args.run_id);
    start_and_follow(&args.server, &path, &body).await
}

pub async fn bisect(args: Bisect) -> Verdict {
    let body = json!({"nodeid": args.nodeid, "username": args.user});
    let path = format!("/api/v1/runs/{}/bisect", args.run_id);
    start_and_follow(&args.server, &path, &body).await
}

async fn start_and_follow(server: &ServerArg, path: &str, body: &Value) -> Verdict {
    let api = match Api::new(&server.server) {
        Ok(api) => api,
        Err(err) => {
            eprintln!("error: {err}");
            return Verdict::Error;
        }
    };
    let mut check: Check = match api.post(path, body, None).await {
        Ok(check) => check,
        Err(err) => {
            eprintln!("error: {err}");
            return Verdict::Error;
        }
    };
    eprintln!("check #{}: {}/checks/{}", check.id, api.base(), check.id);
    let mut said = String::new();
    while check.status == "running" {
        if check.progress != said {
            eprintln!("  {}", sanitize(&check.progress, false));
            said = check.progress.clone();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        check = match api.get(&format!("/api/v1/checks/{}", check.id), &[]).await {
            Ok(check) => check,
            Err(err) => {
                eprintln!("error: {err}");
                return Verdict::Error;
            }
        };
    }
    print_end(&check)
}

fn print_end(check: &Check) -> Verdict {
    match &check.summary {
        Some(summary) => {
            println!("{}", sanitize(summary, false));
            let messages = check
                .verdict
                .as_ref()
                .and_then(|v| v["messages"].as_array());
            for message in messages.into_iter().flatten() {
                println!(
                    "  {}",
                    sanitize(message.as_str().unwrap_or_default(), false)
                );
            }
            Verdict::Success
        }
        None => {
            let reason = check.reason.as_deref().unwrap_or("no reason given");
            println!(
                "check #{} {}: {}",
                check.id,
                check.status,
                sanitize(reason, false)
            );
            Verdict::Error
        }
    }
}
