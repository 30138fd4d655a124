//! A shard's feed: the follower hands over what the shard's runner asks
//! (te_shard's `tests` and `next` records); this task fills the sharded
//! run's queue from the first collection it sees and answers each ask on the
//! container's stdin with the next test taken from the queue, or none. It
//! owns the stdin once the files are written; when the follower is done with
//! the run, the channel closes and stdin with it.

use std::{pin::Pin, time::Duration};

use serde_json::json;
use sqlx::PgPool;
use tokio::{
    io::{AsyncWrite, AsyncWriteExt},
    sync::mpsc,
    task::JoinHandle,
};

use super::output::Record;
use crate::store::shard_queue::{self, Take, MAX_TESTS};

/// How often a shard with nothing to take looks again while another shard
/// still runs a test that would come back, should that shard die.
const LOOK_AGAIN: Duration = Duration::from_millis(250);

/// The follower's side: gathers the shard's collected node ids and hands
/// them over with its first ask. A bounded channel that drops extra asks: an
/// honest runner has one at a time, and a flood must not grow memory or
/// hold up the follower.
pub struct Asker {
    asks: mpsc::Sender<Vec<String>>,
    collected: Vec<String>,
}

impl Asker {
    pub fn see(&mut self, record: &Record) {
        match record {
            Record::Tests { nodeids } => {
                let room = MAX_TESTS.saturating_sub(self.collected.len());
                self.collected.extend(nodeids.iter().take(room).cloned());
            }
            Record::Next => {
                let _ = self.asks.try_send(std::mem::take(&mut self.collected));
            }
            _ => {}
        }
    }
}

pub type Input = Pin<Box<dyn AsyncWrite + Send>>;

/// Writes the files, then answers the shard `me` of `parent` until the
/// follower drops its `Asker`.
pub fn start(
    db: PgPool,
    parent: i64,
    me: i64,
    payload: Vec<u8>,
    mut input: Input,
) -> (Asker, JoinHandle<std::io::Result<()>>) {
    let (tx, mut asks) = mpsc::channel::<Vec<String>>(4);
    let task = tokio::spawn(async move {
        input.write_all(&payload).await?;
        input.flush().await?;
        while let Some(collected) = asks.recv().await {
            if !collected.is_empty() {
                if let Err(err) = shard_queue::fill(&db, parent, &collected).await {
                    tracing::warn!(error = format!("{err:#}"), "filling the shards' queue");
                }
            }
            let next = next_test(&db, parent, me, &asks).await;
            let line = format!("{}\n", json!({ "next": next }));
            input.write_all(line.as_bytes()).await?;
            input.flush().await?;
        }
        input.shutdown().await
    });
    let asker = Asker {
        asks: tx,
        collected: Vec::new(),
    };
    (asker, task)
}

/// The next test for the shard, waiting while another shard's test may come
/// back; `None` when the queue is done, the follower let go, or the database
/// failed (the shard ends its share; its tests stay for the others).
async fn next_test(
    db: &PgPool,
    parent: i64,
    me: i64,
    asks: &mpsc::Receiver<Vec<String>>,
) -> Option<String> {
    loop {
        match shard_queue::take(db, parent, me).await {
            Ok(Take::Test(nodeid)) => return Some(nodeid),
            Ok(Take::Done) => return None,
            Ok(Take::Later) if !asks.is_closed() => tokio::time::sleep(LOOK_AGAIN).await,
            Ok(Take::Later) => return None,
            Err(err) => {
                tracing::warn!(error = format!("{err:#}"), "taking a shard's next test");
                return None;
            }
        }
    }
}
