//! The connection pools and migrations.
//!
//! The login of `DATABASE_URL` owns the tables and migrates them; the work
//! itself runs as one of the roles `migrations/0020_roles.sql` makes: the
//! web as `te_web`, the executor as `te_worker` (each pool sets its role on
//! every connection it opens). A bug or an injected statement in the web
//! cannot write a verdict; one in a worker cannot read the sessions.

use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::{postgres::PgPoolOptions, Executor as _, PgPool};

/// Who a pool's statements run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbRole {
    /// The login itself: migrations, and tests that look underneath.
    Owner,
    /// Pages, the API and operators.
    Web,
    /// The executor.
    Worker,
}

impl DbRole {
    fn set_role(self) -> Option<&'static str> {
        match self {
            DbRole::Owner => None,
            DbRole::Web => Some("set role te_web"),
            DbRole::Worker => Some("set role te_worker"),
        }
    }
}

/// A pool of the login's own connections.
pub async fn connect(url: &str) -> Result<PgPool> {
    connect_as(url, DbRole::Owner).await
}

/// A pool whose connections act as `role`.
pub async fn connect_as(url: &str, role: DbRole) -> Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(32)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if let Some(statement) = role.set_role() {
                    conn.execute(statement).await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await
        .with_context(|| format!("connecting to Postgres (DATABASE_URL) as {role:?}"))
}

pub async fn migrate(db: &PgPool) -> Result<()> {
    sqlx::migrate!("./migrations")
        .run(db)
        .await
        .context("applying database migrations")
}
