//! The client's commands: their arguments and what each does.

use clap::Args;
use serde_json::json;

use super::{
    api::{Api, ApiError, Run},
    follow::{cut, Follower},
    sanitize, ServerArg, Verdict,
};

#[derive(Args, Debug, Clone)]
pub struct Submit {
    #[command(flatten)]
    server: ServerArg,
    /// Your name, as the runs list shows it.
    #[arg(long, env = "TEST_EXECUTOR_USER")]
    user: String,
    /// The environment (1–100) to run in.
    #[arg(long = "env", value_name = "N")]
    environment: i64,
    /// Test files, as the server's catalog names them (relative to its TESTS_DIR);
    /// with --tree, paths within DIR (none: every test file found in it).
    #[arg(value_name = "FILE")]
    files: Vec<String>,
    /// Run this folder (your working copy) instead of the server's tests:
    /// packed as the catalog packs a project (.gitignore, VCS folders,
    /// virtualenvs, caches and build outputs left out); only the contents the
    /// server lacks are sent.
    #[arg(long, value_name = "DIR")]
    tree: Option<std::path::PathBuf>,
    /// Queue behind the run holding a busy environment instead of exiting 3.
    #[arg(long)]
    wait_in_line: bool,
    /// Split the tests over up to N environments free now (--env first),
    /// each shard taking the next test when it is done with one.
    #[arg(long, value_name = "N")]
    shards: Option<i64>,
    /// Print only the verdict line (no logs, no progress).
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args, Debug, Clone)]
pub struct Runs {
    #[command(flatten)]
    server: ServerArg,
    /// Only this user's runs.
    #[arg(long)]
    user: Option<String>,
    /// Only runs in this status (queued, running, success, failed, error, cancelled, timed_out).
    #[arg(long)]
    status: Option<String>,
    /// Only runs in this environment.
    #[arg(long = "env", value_name = "N")]
    environment: Option<i64>,
    /// How many runs (newest first).
    #[arg(long, default_value_t = 20)]
    limit: u32,
}

#[derive(Args, Debug, Clone)]
pub struct Logs {
    #[command(flatten)]
    server: ServerArg,
    /// The run's id.
    id: i64,
    /// Keep printing until the run is over; the exit code is then its verdict.
    #[arg(long, short)]
    follow: bool,
}

#[derive(Args, Debug, Clone)]
pub struct Cancel {
    #[command(flatten)]
    server: ServerArg,
    /// The run's id.
    id: i64,
    /// Your name: you may cancel your own runs.
    #[arg(long, env = "TEST_EXECUTOR_USER")]
    user: Option<String>,
    /// The operators' token: cancels anyone's run.
    #[arg(long, env = "TEST_EXECUTOR_OPERATOR_TOKEN", hide_env_values = true)]
    operator_token: Option<String>,
}

fn connect(server: &ServerArg) -> Result<Api, Verdict> {
    Api::new(&server.server).map_err(|err| {
        eprintln!("error: {err}");
        Verdict::Error
    })
}

pub async fn submit(args: Submit) -> Verdict {
    let api = match connect(&args.server) {
        Ok(api) => api,
        Err(v) => return v,
    };
    let mut body = json!({
        "username": args.user,
        "environment_id": args.environment,
        "files": args.files,
        "queue_if_busy": args.wait_in_line,
    });
    if let Some(shards) = args.shards {
        body["shards"] = json!(shards);
    }
    match &args.tree {
        Some(dir) => match send_tree(&api, dir, &args.user, args.quiet).await {
            Ok(tree_id) => body["tree_id"] = json!(tree_id),
            Err(v) => return v,
        },
        None if args.files.is_empty() => {
            eprintln!("error: name the test files to run, or --tree DIR");
            return Verdict::Error;
        }
        None => {}
    }
    start_and_follow(&api, "/api/v1/runs", &body, args.quiet).await
}

/// Sends `dir` as a tree and says what it cost; its id, or the verdict.
async fn send_tree(
    api: &Api,
    dir: &std::path::Path,
    user: &str,
    quiet: bool,
) -> Result<String, Verdict> {
    let sent = super::tree::send(api, dir, user).await.map_err(|err| {
        eprintln!("error: {}", sanitize(&err, false));
        Verdict::Error
    })?;
    if !quiet {
        eprintln!(
            "tree {}… ({} files, {} bytes): sent {} bytes in {} files; the server received {} new bytes",
            &sent.tree_id[..12.min(sent.tree_id.len())],
            sent.files,
            sent.bytes,
            sent.uploaded_bytes,
            sent.uploaded_files,
            sent.received_bytes
        );
    }
    Ok(sent.tree_id)
}

#[derive(Args, Debug, Clone)]
pub struct RerunFailed {
    #[command(flatten)]
    server: ServerArg,
    /// The finished run whose failed and errored tests run again.
    id: i64,
    /// Your name: the new run is yours.
    #[arg(long, env = "TEST_EXECUTOR_USER")]
    user: String,
    /// Run on the files as they are now, even if they changed since the run.
    #[arg(long)]
    use_current_content: bool,
    /// Queue behind the run holding a busy environment instead of exiting 3.
    #[arg(long)]
    wait_in_line: bool,
    /// Print only the verdict line (no logs, no progress).
    #[arg(long, short)]
    quiet: bool,
}

pub async fn rerun_failed(args: RerunFailed) -> Verdict {
    let api = match connect(&args.server) {
        Ok(api) => api,
        Err(v) => return v,
    };
    let body = json!({
        "username": args.user,
        "use_current_content": args.use_current_content,
        "queue_if_busy": args.wait_in_line,
    });
    let path = format!("/api/v1/runs/{}/rerun-failed", args.id);
    start_and_follow(&api, &path, &body, args.quiet).await
}

/// Creates a run with `body` at `path`, then follows it: its logs, then its
/// tests; the verdict is its outcome (3 when its environment is busy).
async fn start_and_follow(api: &Api, path: &str, body: &serde_json::Value, quiet: bool) -> Verdict {
    let run: Run = match api.post(path, body, None).await {
        Ok(run) => run,
        Err(ApiError::Refused {
            status: 409,
            message,
            holder: Some(holder),
        }) => {
            let environment = body["environment_id"].as_i64();
            eprintln!("{}", busy_message(api, environment, holder, &message).await);
            return Verdict::Busy;
        }
        Err(err) => {
            eprintln!("error: {err}");
            return Verdict::Error;
        }
    };
    if !quiet {
        eprintln!(
            "run #{} {} in environment {}: {}/runs/{}",
            run.id,
            run.status,
            run.environment_id,
            api.base(),
            run.id
        );
    }
    let mut follower = Follower::new(api, run.id);
    follower.verbose = !quiet;
    follower.follow().await
}

/// "environment 3 is busy: run #12 by ann (running). ..." — the holder
/// named, or the server's own message when the holder cannot be read.
async fn busy_message(api: &Api, environment: Option<i64>, holder: i64, message: &str) -> String {
    let advice = "wait for it, pick another environment, or pass --wait-in-line to queue behind it";
    match api.run(holder).await {
        Ok(run) => format!(
            "environment {} is busy: run #{holder} by {} ({}, since {} UTC); {advice}",
            environment.unwrap_or(run.environment_id),
            sanitize(&cut(&run.username, 64), false),
            run.status,
            readable_time(&run.created_at),
        ),
        Err(_) => format!("{}; {advice}", sanitize(message, false)),
    }
}

pub async fn runs(args: Runs) -> Verdict {
    let api = match connect(&args.server) {
        Ok(api) => api,
        Err(v) => return v,
    };
    let mut query = vec![("limit", args.limit.to_string())];
    if let Some(user) = args.user {
        query.push(("username", user));
    }
    if let Some(status) = args.status {
        query.push(("status", status));
    }
    if let Some(env) = args.environment {
        query.push(("environment_id", env.to_string()));
    }
    let runs: Vec<Run> = match api.get("/api/v1/runs", &query).await {
        Ok(runs) => runs,
        Err(err) => {
            eprintln!("error: {err}");
            return Verdict::Error;
        }
    };
    if runs.is_empty() {
        eprintln!("no runs");
        return Verdict::Success;
    }
    println!(
        "{:>7}  {:<9}  {:<16}  {:>3}  {:<28}  {:<19}  files",
        "id", "status", "user", "env", "tests", "created (UTC)"
    );
    for run in runs {
        let files = run.files.join(" ");
        println!(
            "{:>7}  {:<9}  {:<16}  {:>3}  {:<28}  {:<19}  {}",
            run.id,
            run.status,
            sanitize(&cut(&run.username, 16), false),
            run.environment_id,
            run.summary.text(),
            readable_time(&run.created_at),
            sanitize(&cut(&files, 80), false),
        );
    }
    Verdict::Success
}

/// "2026-03-07 12:03:04" from the API's "2026-03-07T12:03:04.123456Z" (UTC,
/// to the second); anything else as it came, made safe to print.
fn readable_time(iso: &str) -> String {
    let b = iso.as_bytes();
    let shaped = b.len() >= 19
        && b[10] == b'T'
        && b[..19]
            .iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16) || c.is_ascii_digit());
    if shaped {
        format!("{} {}", &iso[..10], &iso[11..19])
    } else {
        sanitize(&cut(iso, 40), false).into_owned()
    }
}

pub async fn logs(args: Logs) -> Verdict {
    let api = match connect(&args.server) {
        Ok(api) => api,
        Err(v) => return v,
    };
    let mut follower = Follower::new(&api, args.id);
    if args.follow {
        return follower.follow().await;
    }
    match follower.print_new_logs().await {
        Ok(()) => Verdict::Success,
        Err(err) => {
            eprintln!("error: {err}");
            Verdict::Error
        }
    }
}

pub async fn cancel(args: Cancel) -> Verdict {
    let api = match connect(&args.server) {
        Ok(api) => api,
        Err(v) => return v,
    };
    if args.user.is_none() && args.operator_token.is_none() {
        eprintln!(
            "error: say who cancels: --user NAME (your own run) or --operator-token (anyone's)"
        );
        return Verdict::Error;
    }
    let body = match &args.user {
        Some(user) => json!({ "username": user }),
        None => json!({}),
    };
    let path = format!("/api/v1/runs/{}/cancel", args.id);
    match api
        .post::<Run>(&path, &body, args.operator_token.as_deref())
        .await
    {
        Ok(run) => {
            println!("run #{} {}", run.id, run.status);
            Verdict::Success
        }
        Err(err) => {
            eprintln!("error: {err}");
            Verdict::Error
        }
    }
}

#[cfg(test)]
mod tests {
    use super::readable_time;

    #[test]
    fn times_read_to_the_second_without_the_iso_punctuation() {
        assert_eq!(
            readable_time("2026-03-07T12:03:04.123456Z"),
            "2026-03-07 12:03:04"
        );
        assert_eq!(readable_time("2026-03-07T12:03:04Z"), "2026-03-07 12:03:04");
        assert_eq!(readable_time("yesterday"), "yesterday");
    }
}
