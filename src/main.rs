use std::process::ExitCode;

use clap::{Parser, Subcommand};
use test_executor::{client::ClientCommand, config::Config, Role};

/// One binary, several roles; without a subcommand it serves (web and executor).
#[derive(Parser)]
#[command(
    version,
    about = "Runs pytest files in sandboxed Docker containers",
    after_help = "Without a subcommand: `serve`, with the same options."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What this process is. Add new subcommands here (each takes what it needs).
#[derive(Subcommand)]
enum Command {
    /// The web and the executor in one process (the default).
    Serve(Config),
    /// The web only: pages and API, no executor.
    Web(Config),
    /// The executor only, with a health port on BIND (`/healthz`).
    Worker(Config),
    /// The terminal client (`submit`, `runs`, `logs`, `cancel`): the JSON API only.
    #[command(flatten)]
    Client(ClientCommand),
}

fn main() -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("starting the async runtime");
    // No subcommand (options only, or nothing): `serve`, as before roles.
    let first = std::env::args_os().nth(1);
    let first = first.as_ref().and_then(|a| a.to_str());
    let named = first
        .is_some_and(|a| !a.starts_with('-') || ["-h", "--help", "-V", "--version"].contains(&a));
    let (role, config) = if named {
        match Cli::parse().command {
            Command::Serve(config) => (Role::Serve, config),
            Command::Web(config) => (Role::Web, config),
            Command::Worker(config) => (Role::Worker, config),
            Command::Client(command) => {
                return runtime.block_on(test_executor::client::run(command))
            }
        }
    } else {
        (Role::Serve, Config::parse())
    };
    test_executor::telemetry::init_as(config.log_format);
    match runtime.block_on(test_executor::serve_as(role, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:?}");
            ExitCode::FAILURE
        }
    }
}
