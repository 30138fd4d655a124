//! Turns a container's output bytes into log lines and plugin records.
//!
//! Each stream (stdout, stderr) is split on newlines on its own, so the
//! result depends only on the bytes, not on how the engine chunked them:
//! replaying a container's output after a crash gives the same lines with the
//! same sequence numbers. The runner's plugin writes each record on stderr as
//! `\x1e<token> <json>\n`; the token is secret to the run, so a test that
//! prints something that looks like a record only adds a log line.
//!
//! The code under test runs in the plugin's process and can find the token,
//! so a record is still untrusted input: it is parsed, checked and cut to
//! size here, and one that does not pass is an `Invalid` piece the sink only
//! counts.

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// A line longer than this is cut into pieces, so memory stays bounded.
pub const MAX_LINE_BYTES: usize = 256 * 1024;
/// Node ids are cut to this size (keeping a hash of the whole id, so cut ids
/// stay distinct); the history is indexed by a hash anyway (migration 0007).
pub const MAX_NODEID_BYTES: usize = 2048;
/// A test's one-line message, and its full report.
pub const MAX_MESSAGE_BYTES: usize = 2048;
pub const MAX_LONGREPR_BYTES: usize = 32 * 1024;
/// The outcomes `run_tests.outcome` accepts.
pub const OUTCOMES: [&str; 6] = ["passed", "failed", "skipped", "xfailed", "xpassed", "error"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout = 1,
    Stderr = 2,
}

#[derive(Debug, PartialEq)]
pub enum Piece {
    Line {
        stream: Stream,
        text: String,
    },
    Record(Record),
    /// A line carrying the run's token that is not a valid record: dropped
    /// and counted, never stored and never able to fail a batch.
    Invalid,
}

/// What the runner's pytest plugin reports.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Record {
    Collected {
        n: i32,
    },
    Start {
        nodeid: String,
    },
    Result(TestResult),
    CollectError {
        nodeid: String,
        message: Option<String>,
    },
    Finish {
        exitstatus: i32,
    },
    Junit {
        data: String,
    },
    /// What the kernel counted for the run's processes once pytest ended:
    /// the totals of a run shorter than the engine's first stats tick.
    Usage {
        cpu_ms: i64,
        max_rss_kib: i64,
    },
    /// Every thread's Python stack shortly before the deadline (te_hang).
    Stacks(crate::store::stacks::Stacks),
    /// A shard's collected node ids, in chunks, and how many it collected
    /// in all (te_shard).
    Tests {
        nodeids: Vec<String>,
        #[serde(default)]
        total: i64,
    },
    /// A shard asks for its next test; the executor answers on stdin.
    Next,
}

/// Most node ids one `tests` record may carry (te_shard sends 100).
const MAX_TESTS_PER_RECORD: usize = 1000;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TestResult {
    pub nodeid: String,
    pub outcome: String,
    #[serde(default)]
    pub duration_ms: i32,
    pub message: Option<String>,
    pub longrepr: Option<String>,
    /// The test's CPU time and peak resident memory in the pytest process.
    #[serde(default)]
    pub cpu_ms: Option<i32>,
    #[serde(default)]
    pub peak_rss_bytes: Option<i64>,
}

impl Record {
    /// The record made safe to keep and store, or `None` when it is not one
    /// the plugin could have sent.
    fn checked(self) -> Option<Record> {
        Some(match self {
            Record::Collected { n } if n < 0 => return None,
            Record::Usage {
                cpu_ms,
                max_rss_kib,
            } if cpu_ms < 0 || max_rss_kib < 0 => return None,
            Record::Start { nodeid } => Record::Start {
                nodeid: cap_nodeid(nodeid),
            },
            Record::Result(r) => {
                if !OUTCOMES.contains(&r.outcome.as_str()) || r.nodeid.is_empty() {
                    return None;
                }
                Record::Result(TestResult {
                    nodeid: cap_nodeid(r.nodeid),
                    outcome: r.outcome,
                    duration_ms: r.duration_ms.max(0),
                    message: r.message.map(|m| cap_text(m, MAX_MESSAGE_BYTES)),
                    longrepr: r.longrepr.map(|m| cap_text(m, MAX_LONGREPR_BYTES)),
                    cpu_ms: r.cpu_ms.filter(|ms| *ms >= 0),
                    peak_rss_bytes: r.peak_rss_bytes.filter(|b| *b >= 0),
                })
            }
            Record::CollectError { nodeid, message } => Record::CollectError {
                nodeid: cap_nodeid(nodeid),
                message: message.map(|m| cap_text(m, MAX_MESSAGE_BYTES)),
            },
            Record::Stacks(stacks) => Record::Stacks(stacks.capped()),
            Record::Tests { nodeids, total }
                if nodeids.len() > MAX_TESTS_PER_RECORD || total < 0 =>
            {
                return None
            }
            Record::Tests { nodeids, total } => Record::Tests {
                nodeids: nodeids.into_iter().map(cap_nodeid).collect(),
                total,
            },
            other => other,
        })
    }
}

/// Cuts text to at most `max` bytes on a character boundary, and says so.
pub fn cap_text(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    const MARK: &str = " [truncated]";
    text.truncate(floor_char_boundary(&text, max - MARK.len()));
    text.push_str(MARK);
    text
}

/// Cuts a node id to `MAX_NODEID_BYTES`, ending in a hash of the whole id so
/// that two long ids differing only at the end stay two tests.
pub fn cap_nodeid(mut nodeid: String) -> String {
    if nodeid.len() <= MAX_NODEID_BYTES {
        return nodeid;
    }
    let hash = Sha256::digest(nodeid.as_bytes());
    let suffix: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    nodeid.truncate(floor_char_boundary(&nodeid, MAX_NODEID_BYTES - 20));
    nodeid.push_str("…#");
    nodeid.push_str(&suffix);
    nodeid
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

pub struct Splitter {
    marker: Vec<u8>,
    partial: [Vec<u8>; 2],
    keep_text: bool,
}

impl Splitter {
    pub fn new(token: &str) -> Splitter {
        let mut marker = vec![0x1e];
        marker.extend_from_slice(token.as_bytes());
        marker.push(b' ');
        Splitter {
            marker,
            partial: [Vec::new(), Vec::new()],
            keep_text: true,
        }
    }

    /// Once the log is full, text lines are only counted by nobody: skip
    /// making them, and keep looking for records.
    pub fn keep_text(&mut self, keep: bool) {
        self.keep_text = keep;
    }

    /// Feeds bytes of one stream; complete lines go to `out`.
    pub fn push(&mut self, stream: Stream, mut data: &[u8], out: &mut Vec<Piece>) {
        // Records only come on stderr: once text is not kept, stdout is
        // dropped unread (a flood of lines costs nothing but the copy).
        if stream == Stream::Stdout && !self.keep_text {
            self.partial[0] = Vec::new();
            return;
        }
        while !data.is_empty() {
            let buf = &mut self.partial[stream as usize - 1];
            let room = MAX_LINE_BYTES - buf.len();
            match memchr::memchr(b'\n', &data[..data.len().min(room)]) {
                Some(at) => {
                    buf.extend_from_slice(&data[..at]);
                    data = &data[at + 1..];
                    let line = std::mem::take(buf);
                    self.emit(stream, line, out);
                }
                None if data.len() < room => {
                    buf.extend_from_slice(data);
                    data = &[];
                }
                None => {
                    buf.extend_from_slice(&data[..room]);
                    data = &data[room..];
                    let line = std::mem::take(buf);
                    self.emit(stream, line, out);
                }
            }
        }
    }

    /// Emits what is left without a final newline.
    pub fn finish(&mut self, out: &mut Vec<Piece>) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.partial[stream as usize - 1]);
            if !rest.is_empty() {
                self.emit(stream, rest, out);
            }
        }
    }

    fn emit(&self, stream: Stream, mut line: Vec<u8>, out: &mut Vec<Piece>) {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if stream == Stream::Stderr {
            if let Some(at) = find(&line, &self.marker) {
                let json = &line[at + self.marker.len()..];
                if at > 0 && self.keep_text {
                    out.push(text(stream, &line[..at]));
                }
                let record = serde_json::from_slice::<Record>(json)
                    .ok()
                    .and_then(Record::checked);
                out.push(record.map_or(Piece::Invalid, Piece::Record));
                return;
            }
        }
        if self.keep_text {
            out.push(text(stream, &line));
        }
    }
}

fn text(stream: Stream, bytes: &[u8]) -> Piece {
    Piece::Line {
        stream,
        text: String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

#[cfg(test)]
mod tests;
