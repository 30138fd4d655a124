//! The whole log of a run as plain text, streamed from Postgres: one query
//! whose rows are read as the client takes the bytes, so the server holds
//! a couple of chunks whatever the log's size.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use sqlx::PgPool;
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::StreamFilter;

/// Bytes gathered before a chunk is sent.
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks waiting for the client (besides the one being gathered).
const CHUNKS_AHEAD: usize = 2;
/// A client that takes no chunk for this long is dropped: the download
/// holds a database connection while it lasts.
const STALLED: Duration = Duration::from_secs(30);

/// The lines of `stream` (both when `None`), one per line, in order. The
/// executor's "log cut here" note stays in whichever stream is asked for.
/// `permit` is held until the last row is read (or the client goes away).
pub fn text(
    db: PgPool,
    run_id: i64,
    stream: StreamFilter,
    permit: OwnedSemaphorePermit,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(CHUNKS_AHEAD);
    tokio::spawn(async move {
        let _permit = permit;
        let mut rows = super::store::lines(&db, run_id, stream);
        let mut chunk = Vec::with_capacity(CHUNK_BYTES + 1024);
        loop {
            match rows.try_next().await {
                Ok(Some(line)) => {
                    chunk.extend_from_slice(line.as_bytes());
                    chunk.push(b'\n');
                    if chunk.len() >= CHUNK_BYTES {
                        let full =
                            std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_BYTES + 1024));
                        let sent = tokio::time::timeout(STALLED, tx.send(Ok(Bytes::from(full))));
                        if !matches!(sent.await, Ok(Ok(()))) {
                            return; // the client went away or stalled
                        }
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    tracing::warn!(run_id, error = %err, "reading a log as text failed");
                    let _ = tx.send(Err(std::io::Error::other(err))).await;
                    return;
                }
            }
        }
        if !chunk.is_empty() {
            let _ = tx.send(Ok(Bytes::from(chunk))).await;
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}
