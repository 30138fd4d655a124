//! Rows in PostgreSQL's binary `COPY` format: what `COPY … FROM STDIN
//! (FORMAT binary)` reads, so a batch of log lines goes in one stream
//! rather than as statement parameters. Only the column types the tables
//! written this way use.

use time::OffsetDateTime;

/// The signature, flags and header-extension length that open the stream.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// 2000-01-01T00:00:00Z, PostgreSQL's epoch, in Unix seconds.
const PG_EPOCH_UNIX: i64 = 946_684_800;

/// A binary COPY stream being written, sent in pieces of about
/// `CHUNK_BYTES` so that neither it nor the connection's write buffer (which
/// keeps its size) ever holds a whole batch.
pub struct CopyRows {
    buf: Vec<u8>,
}

/// What is sent to Postgres at a time.
pub const CHUNK_BYTES: usize = 64 * 1024;

impl CopyRows {
    pub fn start() -> CopyRows {
        let mut buf = Vec::with_capacity(CHUNK_BYTES + 1024);
        buf.extend_from_slice(HEADER);
        CopyRows { buf }
    }

    /// Whether a piece is ready to be sent (`pending`, then `clear`).
    pub fn chunk_ready(&self) -> bool {
        self.buf.len() >= CHUNK_BYTES
    }

    /// What was written since the last `clear`.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Starts a row of `fields` columns; the fields follow in table order.
    pub fn row(&mut self, fields: i16) -> &mut Self {
        self.buf.extend_from_slice(&fields.to_be_bytes());
        self
    }

    fn field(&mut self, bytes: &[u8]) -> &mut Self {
        let len = i32::try_from(bytes.len()).expect("a field is below 1 GiB");
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(bytes);
        self
    }

    pub fn int8(&mut self, v: i64) -> &mut Self {
        self.field(&v.to_be_bytes())
    }

    pub fn int4(&mut self, v: i32) -> &mut Self {
        self.field(&v.to_be_bytes())
    }

    pub fn int2(&mut self, v: i16) -> &mut Self {
        self.field(&v.to_be_bytes())
    }

    /// Microseconds since PostgreSQL's epoch.
    pub fn timestamptz(&mut self, t: OffsetDateTime) -> &mut Self {
        let micros = (t.unix_timestamp() - PG_EPOCH_UNIX) * 1_000_000 + i64::from(t.microsecond());
        self.int8(micros)
    }

    /// UTF-8 text; PostgreSQL refuses NUL bytes, which the caller replaces.
    pub fn text(&mut self, s: &str) -> &mut Self {
        self.field(s.as_bytes())
    }

    /// The rest of the stream, trailer included.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_its_field_count_then_each_field_with_its_length() {
        let mut rows = CopyRows::start();
        rows.row(2).int4(7).text("hé");
        let bytes = rows.finish();
        let body = &bytes[HEADER.len()..];
        assert_eq!(
            body,
            [
                &[0, 2][..],
                &[0, 0, 0, 4, 0, 0, 0, 7],
                &[0, 0, 0, 3, b'h', 0xc3, 0xa9],
                &[0xff, 0xff]
            ]
            .concat()
        );
        assert_eq!(HEADER.len(), 19);
    }

    #[test]
    fn a_stream_sent_in_pieces_is_the_same_stream() {
        let write = |rows: &mut CopyRows, i: i32| {
            rows.row(2).int4(i).text(&"x".repeat(i as usize % 300));
        };
        let mut whole = CopyRows::start();
        let mut pieces = CopyRows::start();
        let mut sent = Vec::new();
        for i in 0..2000 {
            write(&mut whole, i);
            write(&mut pieces, i);
            if pieces.chunk_ready() {
                assert!(pieces.pending().len() < CHUNK_BYTES + 1024);
                sent.extend_from_slice(pieces.pending());
                pieces.clear();
            }
        }
        sent.extend_from_slice(&pieces.finish());
        let whole = whole.finish();
        assert!(whole.len() > 3 * CHUNK_BYTES);
        assert_eq!(sent, whole);
    }

    #[test]
    fn timestamps_count_microseconds_from_2000() {
        let mut rows = CopyRows::start();
        let t = OffsetDateTime::from_unix_timestamp(PG_EPOCH_UNIX + 1).unwrap()
            + time::Duration::microseconds(5);
        rows.row(1).timestamptz(t);
        let bytes = rows.finish();
        let field = &bytes[HEADER.len() + 2 + 4..HEADER.len() + 2 + 4 + 8];
        assert_eq!(i64::from_be_bytes(field.try_into().unwrap()), 1_000_005);
    }
}
