//! Turns a container's output bytes into log lines and plugin records.
//!
//! Each stream (stdout, stderr) is split on newlines on its own, so the
//! result depends only on the bytes, not on how the engine chunked them:
//! replaying a container's output after a crash gives the same lines with the
//! same sequence numbers. The runner's plugin writes each record on stderr as
//! `\x1e<token> <json>\n`; the token is secret to the run, so a test that
//! prints something that looks like a record only adds a log line.

use serde::Deserialize;

/// A line longer than this is cut into pieces, so memory stays bounded.
pub const MAX_LINE_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout = 1,
    Stderr = 2,
}

#[derive(Debug, PartialEq)]
pub enum Piece {
    Line { stream: Stream, text: String },
    Record(Record),
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
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TestResult {
    pub nodeid: String,
    pub outcome: String,
    #[serde(default)]
    pub duration_ms: i32,
    pub message: Option<String>,
    pub longrepr: Option<String>,
}

pub struct Splitter {
    marker: Vec<u8>,
    partial: [Vec<u8>; 2],
}

impl Splitter {
    pub fn new(token: &str) -> Splitter {
        let mut marker = vec![0x1e];
        marker.extend_from_slice(token.as_bytes());
        marker.push(b' ');
        Splitter {
            marker,
            partial: [Vec::new(), Vec::new()],
        }
    }

    /// Feeds bytes of one stream; complete lines go to `out`.
    pub fn push(&mut self, stream: Stream, mut data: &[u8], out: &mut Vec<Piece>) {
        while !data.is_empty() {
            let buf = &mut self.partial[stream as usize - 1];
            let room = MAX_LINE_BYTES - buf.len();
            match data.iter().take(room).position(|b| *b == b'\n') {
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
                if let Ok(record) = serde_json::from_slice::<Record>(json) {
                    if at > 0 {
                        out.push(text(stream, &line[..at]));
                    }
                    out.push(Piece::Record(record));
                    return;
                }
            }
        }
        out.push(text(stream, &line));
    }
}

fn text(stream: Stream, bytes: &[u8]) -> Piece {
    Piece::Line {
        stream,
        text: String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(pieces: &[Piece]) -> Vec<String> {
        pieces
            .iter()
            .map(|p| match p {
                Piece::Line { stream, text } => format!("{stream:?}:{text}"),
                Piece::Record(r) => format!("record:{r:?}"),
            })
            .collect()
    }

    #[test]
    fn splits_each_stream_on_its_own_whatever_the_chunks() {
        let mut s = Splitter::new("tok");
        let mut out = Vec::new();
        s.push(Stream::Stdout, b"hel", &mut out);
        s.push(Stream::Stderr, b"oops\n", &mut out);
        s.push(Stream::Stdout, b"lo\r\nworld\n", &mut out);
        s.push(Stream::Stdout, b"tail", &mut out);
        s.finish(&mut out);
        assert_eq!(
            lines(&out),
            ["Stderr:oops", "Stdout:hello", "Stdout:world", "Stdout:tail"]
        );
    }

    #[test]
    fn records_need_the_runs_token() {
        let mut s = Splitter::new("secret");
        let mut out = Vec::new();
        s.push(
            Stream::Stderr,
            b"\x1esecret {\"t\":\"collected\",\"n\":3}\n",
            &mut out,
        );
        s.push(
            Stream::Stderr,
            b"\x1eguess {\"t\":\"collected\",\"n\":9}\n",
            &mut out,
        );
        s.push(
            Stream::Stdout,
            b"\x1esecret {\"t\":\"collected\",\"n\":9}\n",
            &mut out,
        );
        assert_eq!(out[0], Piece::Record(Record::Collected { n: 3 }));
        assert!(matches!(
            &out[1],
            Piece::Line {
                stream: Stream::Stderr,
                ..
            }
        ));
        assert!(matches!(
            &out[2],
            Piece::Line {
                stream: Stream::Stdout,
                ..
            }
        ));
    }

    #[test]
    fn text_before_a_record_on_the_same_line_stays_a_log_line() {
        let mut s = Splitter::new("k");
        let mut out = Vec::new();
        s.push(
            Stream::Stderr,
            b"no newline\x1ek {\"t\":\"finish\",\"exitstatus\":0}\n",
            &mut out,
        );
        assert_eq!(
            lines(&out),
            ["Stderr:no newline", "record:Finish { exitstatus: 0 }"]
        );
    }

    #[test]
    fn very_long_lines_are_cut_into_bounded_pieces() {
        let mut s = Splitter::new("k");
        let mut out = Vec::new();
        let long = vec![b'x'; MAX_LINE_BYTES * 2 + 10];
        s.push(Stream::Stdout, &long, &mut out);
        s.push(Stream::Stdout, b"\n", &mut out);
        let sizes: Vec<usize> = out
            .iter()
            .map(|p| match p {
                Piece::Line { text, .. } => text.len(),
                Piece::Record(_) => 0,
            })
            .collect();
        assert_eq!(sizes, [MAX_LINE_BYTES, MAX_LINE_BYTES, 10]);
    }

    #[test]
    fn invalid_utf8_is_kept_readable() {
        let mut s = Splitter::new("k");
        let mut out = Vec::new();
        s.push(Stream::Stdout, b"caf\xe9\n", &mut out);
        assert_eq!(lines(&out), ["Stdout:caf\u{fffd}"]);
    }
}
