//! Black-box tests through HTTP, against a real Postgres and the real Docker engine.

mod dependencies;
mod dependencies_project;
mod exclusivity;
mod execution;
mod health;
mod helpers;
mod logs;
mod operators;
mod pages;
mod pool;
mod recovery;
mod results;
mod runs_api;
mod sandbox;
