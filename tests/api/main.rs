//! Black-box tests through HTTP, against a real Postgres and the real Docker engine.

mod dependencies;
mod dependencies_project;
mod exclusivity;
mod execution;
mod faults_attach;
mod faults_orphans;
mod faults_postgres;
mod health;
mod helpers;
mod hostile;
mod hostile_flood;
mod logs;
mod operator_access;
mod operators;
mod pages;
mod pool;
mod projects;
mod projects_deps;
mod projects_real;
mod races;
mod recovery;
mod resources;
mod results;
mod runs_api;
mod sandbox;
mod security;
