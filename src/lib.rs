//! test-executor: runs a team's pytest files in sandboxed Docker containers,
//! one environment at a time, with every log line in Postgres.

pub(crate) mod catalog;
pub(crate) mod check_driver;
pub(crate) mod checks;
pub mod client;
pub mod config;
pub mod db;
pub mod dependencies;
pub mod engine;
pub(crate) mod environment_id;
pub mod environments;
pub mod error;
pub mod executor;
pub(crate) mod health;
pub(crate) mod labels;
pub mod limits;
pub(crate) mod logs;
pub(crate) mod measures;
pub(crate) mod openapi;
pub(crate) mod operators;
pub(crate) mod projects;
pub(crate) mod readiness;
pub(crate) mod results;
pub(crate) mod routes;
pub(crate) mod runs;
pub(crate) mod scrape;
pub(crate) mod server;
pub(crate) mod state;
pub(crate) mod store;
pub mod telemetry;
pub(crate) mod trees;
pub(crate) mod web;
pub(crate) mod workers;

pub use routes::app;
pub use server::serve_as;
pub use state::{AppState, Role};
