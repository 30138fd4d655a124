//! Runs becoming final, as Postgres announces them (the `run_final`
//! channel, migration 0019): one listening connection per process, opened
//! by the first request that waits, fanned out to the requests waiting on a
//! run (`GET /api/v1/runs/{id}?wait=`). The announcements come from
//! whichever process ended the run, on any host, so a web-only process
//! hears its workers' runs end.
//!
//! A notice can be missed while the listening connection reconnects: the
//! listener then tells every waiter to read its run again (`RESYNC`), and a
//! waiter also reads it every `RECHECK` whatever happens. At most
//! `MAX_WAITERS` requests wait at once; more are answered at once, and at
//! shutdown every wait ends.

use std::{
    sync::{Arc, Once},
    time::Duration,
};

use sqlx::{postgres::PgListener, PgPool};
use tokio::{
    sync::{broadcast, OwnedSemaphorePermit, Semaphore},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

/// The channel of migration 0019.
const CHANNEL: &str = "run_final";
/// How often a waiter reads its run again, notice or not.
const RECHECK: Duration = Duration::from_secs(5);
/// Pause before listening again after the connection failed.
const RETRY: Duration = Duration::from_secs(1);
/// Notices a slow waiter may fall behind by before it reads its run again.
const BACKLOG: usize = 1024;
/// Requests held at once; each reads its run once per notice of its own.
pub const MAX_WAITERS: usize = 256;
/// Sent to every waiter after a reconnect: read your run again.
const RESYNC: i64 = 0;

#[derive(Clone)]
pub struct Finals {
    db: PgPool,
    notices: broadcast::Sender<i64>,
    listening: Arc<Once>,
    seats: Arc<Semaphore>,
    closed: CancellationToken,
}

impl Finals {
    /// Listens from the first `waiter` on, for the life of the process.
    pub fn new(db: &PgPool) -> Finals {
        let (notices, _) = broadcast::channel(BACKLOG);
        Finals {
            db: db.clone(),
            notices,
            listening: Arc::new(Once::new()),
            seats: Arc::new(Semaphore::new(MAX_WAITERS)),
            closed: CancellationToken::new(),
        }
    }

    /// A waiter on run `id` for at most `wait`, listening from now on (so
    /// an end between this call and the caller's first read is heard);
    /// `None` when `MAX_WAITERS` already wait or the process is stopping:
    /// the caller answers at once.
    pub fn waiter(&self, id: i64, wait: Duration) -> Option<Waiter> {
        if wait.is_zero() || self.closed.is_cancelled() {
            return None;
        }
        let seat = self.seats.clone().try_acquire_owned().ok()?;
        self.listening.call_once(|| {
            let (db, sender) = (self.db.clone(), self.notices.clone());
            tokio::spawn(listen(db, sender));
        });
        Some(Waiter {
            notices: self.notices.subscribe(),
            id,
            deadline: Instant::now() + wait,
            closed: self.closed.clone(),
            _seat: seat,
        })
    }

    /// Ends every wait now and refuses new ones (the server is stopping).
    pub fn close(&self) {
        self.closed.cancel();
    }
}

/// Use: read the run; while it is active and `next()` is true, read again.
pub struct Waiter {
    notices: broadcast::Receiver<i64>,
    id: i64,
    deadline: Instant,
    closed: CancellationToken,
    _seat: OwnedSemaphorePermit,
}

impl Waiter {
    /// Waits until the run may have ended (its notice, a resync, or
    /// `RECHECK`), at most until the deadline; false, at once, when the
    /// deadline has passed or the process is stopping.
    pub async fn next(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline || self.closed.is_cancelled() {
            return false;
        }
        let until = self.deadline.min(now + RECHECK);
        tokio::select! {
            _ = tokio::time::timeout_at(until, heard(&mut self.notices, self.id)) => true,
            _ = self.closed.cancelled() => false,
        }
    }
}

/// Returns when `id` (or a resync) is announced, or when notices were
/// dropped (this waiter fell behind) and the run must be read again.
async fn heard(notices: &mut broadcast::Receiver<i64>, id: i64) {
    loop {
        match notices.recv().await {
            Ok(ended) if ended == id || ended == RESYNC => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            // The listener never drops its sender; the recheck still runs.
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

async fn listen(db: PgPool, sender: broadcast::Sender<i64>) {
    loop {
        if let Err(err) = forward(&db, &sender).await {
            tracing::warn!(
                error = format!("{err:#}"),
                "not hearing runs end; waiting requests read their runs every few seconds"
            );
        }
        let _ = sender.send(RESYNC);
        tokio::time::sleep(RETRY).await;
    }
}

async fn forward(db: &PgPool, sender: &broadcast::Sender<i64>) -> anyhow::Result<()> {
    let mut listener = PgListener::connect_with(db).await?;
    listener.listen(CHANNEL).await?;
    // Anything that ended before this connection listened was missed.
    let _ = sender.send(RESYNC);
    loop {
        // `None`: the connection was lost, and the next call reconnects;
        // notices sent meanwhile are gone.
        match listener.try_recv().await? {
            Some(notice) => {
                if let Ok(id) = notice.payload().parse::<i64>() {
                    // No receiver (nobody waiting) is not an error.
                    let _ = sender.send(id);
                }
            }
            None => {
                let _ = sender.send(RESYNC);
            }
        }
    }
}
