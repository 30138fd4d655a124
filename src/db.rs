//! The connection pool and migrations.

use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::{postgres::PgPoolOptions, PgPool};

pub async fn connect(url: &str) -> Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(32)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .context("connecting to Postgres (DATABASE_URL)")
}

pub async fn migrate(db: &PgPool) -> Result<()> {
    sqlx::migrate!("./migrations")
        .run(db)
        .await
        .context("applying database migrations")
}
