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

/// The follower's side: gathers the shard's collected node ids (those sent
/// before its first ask; later ones are ignored) and hands them over with
/// that ask. A bounded channel that drops extra asks: an honest runner has
/// one at a time, and a flood must not grow memory or hold up the follower.
pub struct Asker {
    asks: mpsc::Sender<Collected>,
    collected: Collected,
    asked: bool,
}

/// Node ids a shard collected (at most `MAX_TESTS`), and how many in all.
#[derive(Debug, Default)]
struct Collected {
    nodeids: Vec<String>,
    total: i64,
}

impl Asker {
    pub fn see(&mut self, record: &Record) {
        match record {
            Record::Tests { nodeids, total } if !self.asked => {
                let room = MAX_TESTS.saturating_sub(self.collected.nodeids.len());
                self.collected
                    .nodeids
                    .extend(nodeids.iter().take(room).cloned());
                self.collected.total = self.collected.total.max(*total);
            }
            Record::Next => {
                self.asked = true;
                let _ = self.asks.try_send(std::mem::take(&mut self.collected));
            }
            _ => {}
        }
    }
}

pub type Input = Pin<Box<dyn AsyncWrite + Send>>;

/// Writes the files, then answers the shard `me` of `parent` until the
/// follower drops its `Asker`. Once the queue is done for it, it answers
/// none without asking the database again.
pub fn start(
    db: PgPool,
    parent: i64,
    me: i64,
    payload: Vec<u8>,
    mut input: Input,
) -> (Asker, JoinHandle<std::io::Result<()>>) {
    let (tx, mut asks) = mpsc::channel::<Collected>(4);
    let task = tokio::spawn(async move {
        input.write_all(&payload).await?;
        input.flush().await?;
        let mut done = false;
        while let Some(collected) = asks.recv().await {
            if !collected.nodeids.is_empty() {
                // Fewer ids than it said it collected (a cap, a dropped
                // record): the parent's verdict says so.
                let total = collected.total.max(collected.nodeids.len() as i64);
                if let Err(err) = shard_queue::fill(&db, parent, &collected.nodeids, total).await {
                    tracing::warn!(error = format!("{err:#}"), "filling the shards' queue");
                }
            }
            let next = match done {
                true => None,
                false => next_test(&db, parent, me, &asks).await,
            };
            done = next.is_none();
            let line = format!("{}\n", json!({ "next": next }));
            input.write_all(line.as_bytes()).await?;
            input.flush().await?;
        }
        input.shutdown().await
    });
    let asker = Asker {
        asks: tx,
        collected: Collected::default(),
        asked: false,
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
    asks: &mpsc::Receiver<Collected>,
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
