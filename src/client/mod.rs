//! The terminal client: `submit`, `runs`, `logs` and `cancel`, through the
//! JSON API only (`/api/v1`), so it works against any server it can reach.
//!
//! Exit codes (`submit`, `logs --follow`): 0 success, 1 tests failed,
//! 2 an error, a timeout, a cancel or a failed request, 3 the environment
//! is busy and `--wait-in-line` was not given (the holder named on stderr).

mod api;
mod checks;
mod commands;
mod follow;
mod terminal;
mod tree;

use std::process::ExitCode;

use clap::{Args, Subcommand};

pub use terminal::sanitize;

/// Where the server is.
#[derive(Args, Debug, Clone)]
pub struct ServerArg {
    /// The server's base URL.
    #[arg(
        long,
        env = "TEST_EXECUTOR_URL",
        default_value = "http://127.0.0.1:8000"
    )]
    pub server: String,
}

#[derive(Subcommand, Debug, Clone)]
pub enum ClientCommand {
    /// Create a run and follow it: its logs, then its tests; the exit code is its verdict.
    Submit(commands::Submit),
    /// List runs, newest first.
    Runs(commands::Runs),
    /// Print a run's logs (`--follow`: until it is over).
    Logs(commands::Logs),
    /// Cancel a run (your own with `--user`, anyone's with the operator token).
    Cancel(commands::Cancel),
    /// Run again only the failed and errored tests of a finished run, and follow it.
    RerunFailed(commands::RerunFailed),
    /// Run a failed test alone N times in fresh sandboxes and print the verdict: broken, flaky k/N or passing.
    CheckFlaky(checks::CheckFlaky),
    /// Find the earlier test of a run whose presence makes a failed test fail (an order bisect).
    Bisect(checks::Bisect),
}

/// How a client command ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Success = 0,
    TestsFailed = 1,
    Error = 2,
    Busy = 3,
}

impl From<Verdict> for ExitCode {
    fn from(v: Verdict) -> ExitCode {
        ExitCode::from(v as u8)
    }
}

/// Runs one client command; messages for the person go to stderr, the
/// run's logs and the verdict to stdout.
pub async fn run(command: ClientCommand) -> ExitCode {
    let verdict = match command {
        ClientCommand::Submit(args) => commands::submit(args).await,
        ClientCommand::Runs(args) => commands::runs(args).await,
        ClientCommand::Logs(args) => commands::logs(args).await,
        ClientCommand::Cancel(args) => commands::cancel(args).await,
        ClientCommand::RerunFailed(args) => commands::rerun_failed(args).await,
        ClientCommand::CheckFlaky(args) => checks::check_flaky(args).await,
        ClientCommand::Bisect(args) => checks::bisect(args).await,
    };
    verdict.into()
}
