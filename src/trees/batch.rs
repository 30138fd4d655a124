//! A batch of contents in one body (`PUT /api/v1/blobs`): a tree's small
//! files go up many per request, stored in one transaction, instead of one
//! request and one transaction each. The body is records, each
//! `<sha256> <size>\n` (64 lowercase hex digits, a space, the size in
//! decimal, a newline) followed by exactly `size` bytes of content. Every
//! record is checked (its hash recomputed) before anything is stored.

use sha2::{Digest, Sha256};

use super::manifest;

/// The largest batch body: bigger files go up alone (`PUT /blobs/{sha256}`).
pub const MAX_BYTES: usize = 8 * 1024 * 1024;
/// The most contents in one batch.
pub const MAX_BLOBS: usize = 2_000;
/// The longest record header: 64 digits, a space, 20 digits, a newline.
const MAX_HEADER: usize = 64 + 1 + 20 + 1;

/// One content of a batch, its hash checked.
#[derive(Debug, PartialEq, Eq)]
pub struct Blob<'a> {
    pub sha256: &'a str,
    pub content: &'a [u8],
}

/// Why a batch is refused; nothing of it is stored.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// More contents than `MAX_BLOBS`.
    #[error("a batch holds at most {MAX_BLOBS} contents (the batch count cap): send the rest in another batch")]
    TooMany,
    #[error("batch record {index} (at byte {offset}): {why}; nothing was stored")]
    Malformed {
        index: usize,
        offset: usize,
        why: String,
    },
}

/// The records of `body`, each content's sha256 checked, in their order
/// (a content named twice is kept once).
pub fn parse(body: &[u8]) -> Result<Vec<Blob<'_>>, Refused> {
    let mut blobs: Vec<Blob<'_>> = Vec::new();
    let mut offset = 0;
    while offset < body.len() {
        if blobs.len() == MAX_BLOBS {
            return Err(Refused::TooMany);
        }
        let index = blobs.len();
        let malformed = |why: String| Refused::Malformed { index, offset, why };
        let (sha256, size, header) = header(&body[offset..]).map_err(malformed)?;
        let start = offset + header;
        let content = body
            .get(start..start.saturating_add(size))
            .ok_or_else(|| malformed(format!("claims {size} bytes, the body has fewer")))?;
        let actual = manifest::hex(&Sha256::digest(content));
        if actual != sha256 {
            return Err(malformed(format!(
                "the content's sha256 is {actual}, not {sha256}"
            )));
        }
        if !blobs.iter().any(|b| b.sha256 == sha256) {
            blobs.push(Blob { sha256, content });
        }
        offset = start + size;
    }
    Ok(blobs)
}

/// A record's `<sha256> <size>\n`: the hash, the size and the header's length.
fn header(rest: &[u8]) -> Result<(&str, usize, usize), String> {
    let window = &rest[..rest.len().min(MAX_HEADER)];
    let end = window
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("no `<sha256> <size>` line: expected 64 hex digits, a space, a size, a newline")?;
    let line = std::str::from_utf8(&window[..end]).map_err(|_| "the header is not text")?;
    let (sha256, size) = line
        .split_once(' ')
        .ok_or("the header is not `<sha256> <size>`")?;
    if !manifest::is_sha256(sha256) {
        return Err("a content is named by its sha256: 64 lowercase hex digits".into());
    }
    let size = size
        .parse::<usize>()
        .map_err(|_| format!("the size {size:?} is not a number of bytes"))?;
    Ok((sha256, size, end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(content: &[u8]) -> Vec<u8> {
        let sha = manifest::hex(&Sha256::digest(content));
        let mut out = format!("{sha} {}\n", content.len()).into_bytes();
        out.extend_from_slice(content);
        out
    }

    #[test]
    fn records_are_read_in_order_once_each() {
        let mut body = record(b"one");
        body.extend(record(b""));
        body.extend(record(b"one"));
        body.extend(record(b"two\nlines"));
        let blobs = parse(&body).unwrap();
        let contents: Vec<&[u8]> = blobs.iter().map(|b| b.content).collect();
        assert_eq!(contents, [&b"one"[..], b"", b"two\nlines"]);
        assert_eq!(parse(b"").unwrap(), []);
    }

    #[test]
    fn a_wrong_hash_names_the_record() {
        let mut body = record(b"good");
        let mut bad = record(b"bad");
        let n = bad.len();
        bad[n - 1] = b'D';
        body.extend(bad);
        let err = parse(&body).unwrap_err().to_string();
        assert!(err.starts_with("batch record 1 (at byte 71)"), "{err}");
        assert!(err.contains("sha256 is"), "{err}");
    }

    #[test]
    fn a_cut_or_malformed_record_is_refused() {
        let mut cut = record(b"content");
        cut.pop();
        assert!(parse(&cut).unwrap_err().to_string().contains("fewer"));
        for body in [&b"no newline here"[..], b"abc 3\nabc", b"x\n"] {
            assert!(matches!(parse(body), Err(Refused::Malformed { .. })));
        }
        let sha = "a".repeat(64);
        let huge = format!("{sha} 99999999999999999999\n");
        assert!(parse(huge.as_bytes()).is_err());
    }

    #[test]
    fn more_than_the_count_cap_is_refused() {
        let body: Vec<u8> = (0..=MAX_BLOBS)
            .flat_map(|i| record(i.to_string().as_bytes()))
            .collect();
        assert_eq!(parse(&body), Err(Refused::TooMany));
    }
}
