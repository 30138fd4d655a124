use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Subcommand};
use test_executor::{client::ClientCommand, Config};

fn main() -> ExitCode {
    // The server (no subcommand) or one of the client's commands; the
    // server's settings (DATABASE_URL is required) are read only for the server.
    let command = ClientCommand::augment_subcommands(Config::command())
        .args_conflicts_with_subcommands(true)
        .subcommand_negates_reqs(true);
    let matches = command.get_matches();
    let runtime = tokio::runtime::Runtime::new().expect("starting the async runtime");
    if matches.subcommand().is_some() {
        let client = ClientCommand::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        return runtime.block_on(test_executor::client::run(client));
    }
    let config = Config::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    test_executor::telemetry::init();
    match runtime.block_on(test_executor::serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:?}");
            ExitCode::FAILURE
        }
    }
}
