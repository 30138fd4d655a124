//! One batch of a run's output, handed from the follow loop to the writer
//! and stored in one transaction.

use anyhow::Result;
use sqlx::PgPool;

use super::{results_memory, Batch};
use crate::{
    executor::output::TestResult,
    store::{
        lifecycle::{self, OutputBatch, Progress},
        stacks::Stacks,
        Summary,
    },
};

/// One batch of output and the counters after it, ready to store.
pub struct Flush {
    pub(super) run_id: i64,
    pub(super) lines: Batch,
    pub(super) results: Vec<(i32, TestResult)>,
    pub(super) next_seq: i32,
    pub(super) bytes: u64,
    pub(super) truncated: bool,
    pub(super) summary: Summary,
    pub(super) current_test: Option<String>,
    /// Stacks the runner sent since the last batch (asked for, or near the
    /// deadline): stored with the counters, so the page shows them live.
    pub(super) stacks: Option<Stacks>,
}

impl Flush {
    /// Its log lines and their bytes of text.
    pub fn size(&self) -> (usize, usize) {
        (self.lines.seq.len(), self.lines.bytes)
    }

    /// Memory it holds, roughly.
    pub fn memory(&self) -> usize {
        self.lines.memory() + results_memory(&self.results)
    }

    /// Takes in the batch handed over after this one: its lines and results
    /// follow these, and its counters are the newer.
    pub fn absorb(&mut self, later: Flush) {
        debug_assert_eq!(self.run_id, later.run_id);
        self.lines.append(later.lines);
        self.results.extend(later.results);
        self.next_seq = later.next_seq;
        self.bytes = later.bytes;
        self.truncated = later.truncated;
        self.summary = later.summary;
        self.current_test = later.current_test;
        if later.stacks.is_some() {
            self.stacks = later.stacks;
        }
    }

    /// Writes the batch and the counters (`lifecycle::progress`) and returns
    /// the run's status; storing it twice changes nothing.
    pub async fn store(&self, db: &PgPool) -> Result<Progress> {
        let lines = &self.lines;
        let idx: Vec<i32> = self.results.iter().map(|(i, _)| *i).collect();
        let rest: Vec<&TestResult> = self.results.iter().map(|(_, r)| r).collect();
        let nodeid: Vec<&str> = rest.iter().map(|r| r.nodeid.as_str()).collect();
        let outcome: Vec<&str> = rest.iter().map(|r| r.outcome.as_str()).collect();
        let duration: Vec<i32> = rest.iter().map(|r| r.duration_ms).collect();
        let message: Vec<Option<&str>> = rest.iter().map(|r| r.message.as_deref()).collect();
        let longrepr: Vec<Option<&str>> = rest.iter().map(|r| r.longrepr.as_deref()).collect();
        let cpu_ms: Vec<Option<i32>> = rest.iter().map(|r| r.cpu_ms).collect();
        let peak_rss: Vec<Option<i64>> = rest.iter().map(|r| r.peak_rss_bytes).collect();
        let batch = OutputBatch {
            run_id: self.run_id,
            seq: &lines.seq,
            stream: &lines.stream,
            ts: &lines.ts,
            line: &lines.line,
            idx: &idx,
            nodeid: &nodeid,
            outcome: &outcome,
            duration_ms: &duration,
            message: &message,
            longrepr: &longrepr,
            cpu_ms: &cpu_ms,
            peak_rss_bytes: &peak_rss,
            next_seq: self.next_seq,
            bytes: self.bytes as i64,
            truncated: self.truncated,
            summary: &self.summary,
            current_test: self.current_test.as_deref(),
            stacks: self.stacks.as_ref(),
        };
        lifecycle::progress(db, &batch).await
    }
}
