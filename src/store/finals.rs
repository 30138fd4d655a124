//! Runs becoming final, as Postgres announces them (the `run_final`
//! channel, migration 0019): one listening connection per process, fanned
//! out to the requests waiting on a run (`GET /api/v1/runs/{id}?wait=`).
//! The announcements come from whichever process ended the run, on any
//! host, so a web-only process hears its workers' runs end.
//!
//! A notice can be missed (while the listening connection reconnects), so a
//! waiter also reads the run again every `RECHECK`: a missed notice costs
//! at most that much, never a wrong answer.

use std::time::Duration;

use sqlx::{postgres::PgListener, PgPool};
use tokio::{sync::broadcast, time::Instant};

/// The channel of migration 0019.
const CHANNEL: &str = "run_final";
/// How often a waiter reads its run again, notice or not.
const RECHECK: Duration = Duration::from_secs(1);
/// Pause before listening again after the connection failed.
const RETRY: Duration = Duration::from_secs(1);
/// Notices a slow waiter may fall behind by before it reads its run again.
const BACKLOG: usize = 1024;

#[derive(Clone)]
pub struct Finals {
    notices: broadcast::Sender<i64>,
}

impl Finals {
    /// Starts listening on its own connection, for the life of the process.
    pub fn listen(db: &PgPool) -> Finals {
        let (notices, _) = broadcast::channel(BACKLOG);
        let finals = Finals { notices };
        let (db, sender) = (db.clone(), finals.notices.clone());
        tokio::spawn(async move {
            loop {
                if let Err(err) = forward(&db, &sender).await {
                    tracing::warn!(
                        error = format!("{err:#}"),
                        "not hearing runs end; waiting requests read their runs every second"
                    );
                }
                tokio::time::sleep(RETRY).await;
            }
        });
        finals
    }

    /// A waiter on run `id` for at most `wait`, listening from now on (so
    /// an end between this call and the caller's first read is heard).
    pub fn waiter(&self, id: i64, wait: Duration) -> Waiter {
        Waiter {
            notices: self.notices.subscribe(),
            id,
            deadline: Instant::now() + wait,
        }
    }
}

/// Use: read the run; while it is active and `next()` is true, read again.
pub struct Waiter {
    notices: broadcast::Receiver<i64>,
    id: i64,
    deadline: Instant,
}

impl Waiter {
    /// Waits until the run may have ended (its notice, or `RECHECK`), at
    /// most until the deadline; false, at once, when the deadline has passed.
    pub async fn next(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        let until = self.deadline.min(now + RECHECK);
        let _ = tokio::time::timeout_at(until, heard(&mut self.notices, self.id)).await;
        true
    }
}

/// Returns when `id` is announced, or when notices were dropped (this
/// waiter fell behind) and the run must be read again.
async fn heard(notices: &mut broadcast::Receiver<i64>, id: i64) {
    loop {
        match notices.recv().await {
            Ok(ended) if ended == id => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            // The listener never drops its sender; the recheck still runs.
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

async fn forward(db: &PgPool, sender: &broadcast::Sender<i64>) -> anyhow::Result<()> {
    let mut listener = PgListener::connect_with(db).await?;
    listener.listen(CHANNEL).await?;
    loop {
        // `recv` reconnects by itself after a lost connection; an error
        // here means reconnecting failed.
        let notice = listener.recv().await?;
        if let Ok(id) = notice.payload().parse::<i64>() {
            // No receiver (nobody waiting) is not an error.
            let _ = sender.send(id);
        }
    }
}
