//! test-executor: runs a team's pytest files in sandboxed Docker containers,
//! one environment at a time, with every log line in Postgres.

pub mod catalog;
pub mod config;
pub mod db;
pub mod dependencies;
pub mod engine;
pub mod environment_id;
pub mod environments;
pub mod error;
pub mod executor;
pub mod health;
pub mod limits;
pub mod logs;
pub mod operators;
pub mod projects;
pub mod results;
pub mod routes;
pub mod runs;
pub mod server;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod web;

pub use config::Config;
pub use routes::app;
pub use server::serve;
pub use state::AppState;
