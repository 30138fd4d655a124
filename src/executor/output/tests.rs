//! Splitting output into lines and records, and checking records.

use super::*;

fn lines(pieces: &[Piece]) -> Vec<String> {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Line { stream, text } => format!("{stream:?}:{text}"),
            Piece::Record(r) => format!("record:{r:?}"),
            Piece::Invalid => "invalid".into(),
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
            Piece::Record(_) | Piece::Invalid => 0,
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

fn one(line: &[u8]) -> Piece {
    let mut s = Splitter::new("k");
    let mut out = Vec::new();
    s.push(Stream::Stderr, line, &mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    out.pop().unwrap()
}

#[test]
fn a_record_with_the_token_but_an_unknown_outcome_is_invalid() {
    let piece = one(b"\x1ek {\"t\":\"result\",\"nodeid\":\"a\",\"outcome\":\"great\"}\n");
    assert_eq!(piece, Piece::Invalid);
}

#[test]
fn records_of_the_wrong_shape_are_invalid_not_log_lines() {
    for line in [
        &b"\x1ek {\"t\":\"collected\",\"n\":\"three\"}\n"[..],
        b"\x1ek {\"t\":\"collected\",\"n\":-1}\n",
        b"\x1ek {\"t\":\"delete_everything\"}\n",
        b"\x1ek {\"t\":\"result\",\"nodeid\":\"a\",\"outcome\":\"passed\",\"duration_ms\":1e99}\n",
        b"\x1ek not json\n",
    ] {
        assert_eq!(
            one(line),
            Piece::Invalid,
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn long_node_ids_are_cut_and_stay_distinct() {
    let a = format!("t.py::test[{}a]", "x".repeat(6000));
    let b = format!("t.py::test[{}b]", "x".repeat(6000));
    let (a, b) = (cap_nodeid(a), cap_nodeid(b));
    assert!(a.len() <= MAX_NODEID_BYTES, "{}", a.len());
    assert_ne!(a, b);
    assert_eq!(cap_nodeid("t.py::short".into()), "t.py::short");
}

#[test]
fn long_messages_are_cut_on_a_character_boundary() {
    let cut = cap_text("é".repeat(5000), MAX_MESSAGE_BYTES);
    assert!(cut.len() <= MAX_MESSAGE_BYTES);
    assert!(cut.ends_with("[truncated]"));
}

#[test]
fn results_are_cut_to_size_and_negative_durations_clamped() {
    let json = format!(
        "\x1ek {{\"t\":\"result\",\"nodeid\":\"{}\",\"outcome\":\"failed\",\"duration_ms\":-5,\"message\":\"{}\"}}\n",
        "n".repeat(10_000),
        "m".repeat(10_000)
    );
    match one(json.as_bytes()) {
        Piece::Record(Record::Result(r)) => {
            assert!(r.nodeid.len() <= MAX_NODEID_BYTES);
            assert!(r.message.unwrap().len() <= MAX_MESSAGE_BYTES);
            assert_eq!(r.duration_ms, 0);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn without_text_only_records_come_out() {
    let mut s = Splitter::new("k");
    s.keep_text(false);
    let mut out = Vec::new();
    s.push(Stream::Stdout, b"\n\n\nhello\n", &mut out);
    s.push(
        Stream::Stderr,
        b"x\x1ek {\"t\":\"finish\",\"exitstatus\":0}\n",
        &mut out,
    );
    assert_eq!(lines(&out), ["record:Finish { exitstatus: 0 }"]);
}
