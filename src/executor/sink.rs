//! Stores a run's output as it arrives: log lines and test results are
//! buffered and written in one statement per batch, never one round-trip per
//! line. The counters start from zero even when resuming after a crash: the
//! output is replayed from the start and lines already stored are skipped,
//! so every line is stored exactly once with the same sequence number.
//!
//! Everything a run sends is bounded here: log lines by count and bytes,
//! results by count and bytes, collect errors and the JUnit report by size.
//! What is cut or dropped is counted and said in the log (and in the reason),
//! and memory holds at most one batch whatever the run prints.

use time::OffsetDateTime;

use super::{
    outcome::Ending,
    output::{Piece, Record, Stream, TestResult},
};
use crate::store::Summary;

/// Hand over when this many lines (or bytes) are waiting, or at the next
/// tick; the writer stores what queued up meanwhile together.
const BATCH_LINES: usize = 8192;
const BATCH_BYTES: usize = 1024 * 1024;
/// The JUnit report is kept up to this size; a larger one is not kept at all
/// (a cut XML file is no report).
pub const MAX_JUNIT_BYTES: usize = 8 * 1024 * 1024;
/// Results stored per run, and their bytes; beyond, they still count in the
/// summary (and so in the verdict) but are not stored one by one.
pub const MAX_RESULTS: i32 = 100_000;
pub const MAX_RESULT_BYTES: u64 = 64 * 1024 * 1024;
/// Collection errors kept for the reason; the rest are only counted.
pub const MAX_COLLECT_ERRORS: usize = 20;

/// What was cut or dropped from a run's output, for the log and the reason.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Records with the run's token that were not valid records.
    pub invalid_records: u64,
    /// Valid results beyond `MAX_RESULTS`/`MAX_RESULT_BYTES`.
    pub results: u64,
    /// Collection errors beyond `MAX_COLLECT_ERRORS` (counted all the same).
    pub collect_errors: u64,
    pub junit_too_large: bool,
}

pub struct Sink {
    run_id: i64,
    cap_bytes: u64,
    cap_lines: u64,
    /// Lines of the run's own output kept (executor notes are not counted).
    kept_lines: u64,
    /// Lines (and results) below these positions are stored already.
    stored_lines: i32,
    stored_results: i32,
    next_seq: i32,
    bytes: u64,
    truncated: bool,
    lines: Batch,
    next_result: i32,
    results: Vec<(i32, TestResult)>,
    /// Memory of `results`.
    results_memory: usize,
    results_bytes: u64,
    pub summary: Summary,
    pub current_test: Option<String>,
    /// Which finished test raised the memory held the most (the OOM reason).
    pub rises: rises::Rises,
    /// When the current test started (as its record arrived).
    current_since: Option<OffsetDateTime>,
    pub collect_errors: Vec<(String, Option<String>)>,
    pub collect_error_count: u64,
    pub exit_status: Option<i32>,
    pub junit: String,
    /// The runner's last `usage` record: (CPU ms, peak RSS KiB).
    pub usage: Option<(i64, i64)>,
    /// Where the run was when its deadline neared or someone asked (the
    /// last such record)…
    pub stacks: Option<crate::store::stacks::Stacks>,
    /// …and whether it came after the last flush (it goes with the next).
    stacks_new: bool,
    pub dropped: Dropped,
}

#[derive(Default)]
struct Batch {
    bytes: usize,
    seq: Vec<i32>,
    stream: Vec<i16>,
    ts: Vec<OffsetDateTime>,
    line: Vec<String>,
}

/// What a buffered line costs besides its text: its sequence number, stream,
/// timestamp and `String` header. Counted so that a flood of empty lines is
/// bounded by memory too, not only by its (zero) bytes of text.
const LINE_OVERHEAD: usize = 64;

/// What a buffered result costs besides its text.
const RESULT_OVERHEAD: usize = 256;

impl Batch {
    /// Memory it holds, roughly.
    fn memory(&self) -> usize {
        self.bytes + self.seq.len() * LINE_OVERHEAD
    }

    fn append(&mut self, mut later: Batch) {
        self.bytes += later.bytes;
        self.seq.append(&mut later.seq);
        self.stream.append(&mut later.stream);
        self.ts.append(&mut later.ts);
        self.line.append(&mut later.line);
    }
}

fn results_memory(results: &[(i32, TestResult)]) -> usize {
    results
        .iter()
        .map(|(_, r)| result_bytes(r) + RESULT_OVERHEAD)
        .sum()
}

impl Sink {
    /// `stored_lines`/`stored_results`: how much is in the database already
    /// (non-zero only when resuming a run after a crash).
    pub fn new(
        run_id: i64,
        (cap_bytes, cap_lines): (u64, u64),
        stored_lines: i32,
        stored_results: i32,
    ) -> Sink {
        Sink {
            run_id,
            cap_bytes,
            cap_lines,
            kept_lines: 0,
            stored_lines,
            stored_results,
            next_seq: 0,
            bytes: 0,
            truncated: false,
            lines: Batch::default(),
            next_result: 0,
            results: Vec::new(),
            results_memory: 0,
            results_bytes: 0,
            summary: Summary::default(),
            current_test: None,
            rises: rises::Rises::default(),
            current_since: None,
            collect_errors: Vec::new(),
            collect_error_count: 0,
            exit_status: None,
            usage: None,
            stacks: None,
            stacks_new: false,
            junit: String::new(),
            dropped: Dropped::default(),
        }
    }

    /// Whether enough is buffered to write now rather than at the next tick.
    pub fn batch_full(&self) -> bool {
        self.lines.seq.len() + self.results.len() >= BATCH_LINES
            || self.buffered_bytes() >= BATCH_BYTES
    }

    /// Whether the log is full: further text is not stored (records still are).
    pub fn log_full(&self) -> bool {
        self.truncated
    }

    pub fn accept(&mut self, pieces: Vec<Piece>) {
        for piece in pieces {
            match piece {
                Piece::Line { stream, text } => self.line(stream, text),
                Piece::Record(record) => self.record(record),
                Piece::Invalid => self.dropped.invalid_records += 1,
            }
        }
    }

    /// A line the executor itself adds to the log (e.g. why it killed the
    /// run). Notes are few and bypass the cap, so they are seen even after it.
    pub fn note(&mut self, text: impl Into<String>) {
        self.push_line(Stream::Stderr, format!("[test-executor] {}", text.into()));
    }

    fn line(&mut self, stream: Stream, text: String) {
        if self.truncated {
            return;
        }
        let size = text.len() as u64 + 1;
        let cut = if self.kept_lines >= self.cap_lines {
            Some(format!("{} lines", self.cap_lines))
        } else if self.bytes + size > self.cap_bytes {
            Some(format!("{} MiB", self.cap_bytes / (1024 * 1024)))
        } else {
            None
        };
        if let Some(cap) = cut {
            self.truncated = true;
            self.note(format!(
                "log cut here: the run printed more than the cap of {cap}; the rest was not stored (the run went on)"
            ));
            return;
        }
        self.bytes += size;
        self.kept_lines += 1;
        self.push_line(stream, text);
    }

    fn push_line(&mut self, stream: Stream, text: String) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if seq < self.stored_lines {
            return;
        }
        self.lines.bytes += text.len();
        self.lines.seq.push(seq);
        self.lines.stream.push(stream as i16);
        self.lines.ts.push(OffsetDateTime::now_utc());
        // Postgres text cannot hold NUL bytes.
        self.lines.line.push(if text.contains('\0') {
            text.replace('\0', "\u{2400}")
        } else {
            text
        });
    }

    fn record(&mut self, record: Record) {
        match record {
            Record::Collected { n } => self.summary.collected = Some(n),
            Record::Start { nodeid } => {
                self.current_test = Some(nodeid);
                self.current_since = Some(OffsetDateTime::now_utc());
            }
            Record::Result(result) => {
                self.summary.count(&result.outcome);
                if self.current_test.as_deref() == Some(&result.nodeid) {
                    self.current_test = None;
                }
                self.rises.saw(&result.nodeid, result.peak_rss_bytes);
                self.keep_result(result);
            }
            Record::CollectError { nodeid, message } => {
                self.summary.errors = self.summary.errors.saturating_add(1);
                self.collect_error_count += 1;
                if self.collect_errors.len() < MAX_COLLECT_ERRORS {
                    self.collect_errors.push((nodeid, message));
                } else {
                    self.dropped.collect_errors += 1;
                }
            }
            // The current test stays: one that started and never reported
            // (e.g. it called `pytest.exit`) is named in the reason.
            Record::Finish { exitstatus } => self.exit_status = Some(exitstatus),
            Record::Usage {
                cpu_ms,
                max_rss_kib,
            } => self.usage = Some((cpu_ms, max_rss_kib)),
            // A shard's asks: the follower hands them to its feed.
            Record::Tests { .. } | Record::Next => {}
            Record::Stacks(stacks) => {
                self.stacks = Some(stacks);
                self.stacks_new = true;
            }
            Record::Junit { data } => {
                if self.dropped.junit_too_large {
                    return;
                }
                if self.junit.len() + data.len() > MAX_JUNIT_BYTES {
                    self.dropped.junit_too_large = true;
                    self.junit = String::new();
                    self.note(format!(
                        "the JUnit report is larger than {} MiB and was not kept",
                        MAX_JUNIT_BYTES / (1024 * 1024)
                    ));
                    return;
                }
                self.junit.push_str(&data);
            }
        }
    }

    /// Keeps a result to store, within the caps (beyond them it is only
    /// counted, by the caller).
    fn keep_result(&mut self, result: TestResult) {
        let size = result_bytes(&result);
        if self.next_result >= MAX_RESULTS || self.results_bytes + size as u64 > MAX_RESULT_BYTES {
            if self.dropped.results == 0 {
                self.note(format!(
                    "results beyond {MAX_RESULTS} (or {} MiB) are counted but not stored one by one",
                    MAX_RESULT_BYTES / (1024 * 1024)
                ));
            }
            self.dropped.results += 1;
            return;
        }
        self.results_bytes += size as u64;
        let idx = self.next_result;
        self.next_result += 1;
        if idx >= self.stored_results {
            self.results_memory += size + RESULT_OVERHEAD;
            self.results.push((idx, result));
        }
    }

    /// Says in the log what was dropped; called once the output has ended.
    pub fn note_dropped(&mut self) {
        let d = self.dropped.clone();
        if d.invalid_records > 0 {
            self.note(format!(
                "{} invalid records carrying the run's token were dropped",
                d.invalid_records
            ));
        }
        if d.collect_errors > 0 {
            self.note(format!(
                "{} collection errors in all; the first {MAX_COLLECT_ERRORS} were kept",
                self.collect_error_count
            ));
        }
        if d.results > 0 {
            self.note(format!("{} results were counted but not stored", d.results));
        }
    }

    /// What the verdict is decided from, once the container has stopped.
    pub fn ending(&self, exit_code: Option<i64>, oom_killed: bool, timed_out: bool) -> Ending<'_> {
        Ending {
            exit_code,
            oom_killed,
            timed_out,
            summary: self.summary.clone(),
            current_test: self.current_test.as_deref(),
            grew_most: self.rises.most.as_ref().map(|(t, b)| (t.as_str(), *b)),
            held_bytes: self.rises.held_bytes,
            collect_errors: &self.collect_errors,
            collect_error_count: self.collect_error_count,
            pytest_exit: self.exit_status,
            invalid_records: self.dropped.invalid_records,
            peak_memory_bytes: None,
            shard: false,
        }
    }

    /// Bytes of output buffered and not yet handed to the writer.
    pub fn buffered_bytes(&self) -> usize {
        self.lines.memory() + self.results_memory
    }

    /// Hands what is buffered, with a snapshot of the run's counters, to the
    /// writer (`Flush::store`). From here on the writer owns these lines: it
    /// keeps them until they are stored, so nothing is taken before it is safe.
    pub fn flush(&mut self) -> Flush {
        let lines = std::mem::take(&mut self.lines);
        let results = std::mem::take(&mut self.results);
        self.results_memory = 0;
        self.stored_lines = self.stored_lines.max(self.next_seq);
        self.stored_results = self.stored_results.max(self.next_result);
        Flush {
            run_id: self.run_id,
            lines,
            results,
            next_seq: self.next_seq,
            bytes: self.bytes,
            truncated: self.truncated,
            summary: self.summary.clone(),
            current_test: self.current_test.clone(),
            stacks: std::mem::take(&mut self.stacks_new)
                .then(|| self.stacks.clone())
                .flatten(),
        }
    }
}

fn result_bytes(r: &TestResult) -> usize {
    r.nodeid.len()
        + r.outcome.len()
        + r.message.as_ref().map_or(0, String::len)
        + r.longrepr.as_ref().map_or(0, String::len)
}

mod flush;
mod interrupt;
pub mod rises;
pub use flush::Flush;

#[cfg(test)]
mod tests;
