//! Where browser sessions live (Postgres), how their cookie is set, and the
//! periodic deletion of expired ones, so the table does not grow forever.

use std::time::Duration;

use sqlx::PgPool;
use tower_sessions::{cookie::SameSite, ExpiredDeletion, Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

/// Sessions end after 30 days without a visit.
const INACTIVITY: time::Duration = time::Duration::days(30);

pub fn layer(db: &PgPool, secure_cookies: bool) -> SessionManagerLayer<PostgresStore> {
    SessionManagerLayer::new(PostgresStore::new(db.clone()))
        .with_secure(secure_cookies)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_expiry(Expiry::OnInactivity(INACTIVITY))
}

/// Deletes expired sessions every `period`, for as long as the process lives.
/// Unlike the store's own `continuously_delete_expired`, a failed round (e.g.
/// while Postgres restarts) is logged and the next round tries again.
pub fn delete_expired_periodically(db: PgPool, period: Duration) {
    let store = PostgresStore::new(db);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(err) = store.delete_expired().await {
                tracing::warn!(error = %err, "deleting expired sessions failed; trying again later");
            }
        }
    });
}
