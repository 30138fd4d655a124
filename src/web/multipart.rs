//! A `multipart/form-data` body (a form with a file), read from bytes
//! already bounded by the caller: each part's name, file name and content.
//! Only what the upload form sends is understood; anything else is a 422.

use crate::error::AppError;

/// Parts beyond this many are refused (the upload form has four).
const MAX_PARTS: usize = 16;

pub struct Part<'a> {
    pub name: String,
    pub filename: Option<String>,
    pub content: &'a [u8],
}

fn bad(why: &str) -> AppError {
    AppError::Invalid(format!("the form's body could not be read: {why}"))
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Result<String, AppError> {
    let (essence, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !essence.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Err(bad("send it as multipart/form-data"));
    }
    params
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .filter(|b| !b.is_empty() && b.len() <= 70)
        .ok_or_else(|| bad("no boundary"))
}

/// The parts of `body`, in order.
pub fn parse<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, AppError> {
    let delimiter = format!("\r\n--{boundary}");
    let finder = memchr::memmem::Finder::new(delimiter.as_bytes());
    let first = format!("--{boundary}");
    let mut rest = body
        .strip_prefix(first.as_bytes())
        .ok_or_else(|| bad("it does not start with its boundary"))?;
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or_else(|| bad("a malformed boundary line"))?;
        let end = finder
            .find(rest)
            .ok_or_else(|| bad("a part without an end"))?;
        parts.push(part(&rest[..end])?);
        if parts.len() > MAX_PARTS {
            return Err(bad("too many parts"));
        }
        rest = &rest[end + delimiter.len()..];
    }
}

/// The first part of a body still arriving, once it is whole; `None` while
/// its end has not arrived.
pub fn first_part<'a>(body: &'a [u8], boundary: &str) -> Result<Option<Part<'a>>, AppError> {
    let first = format!("--{boundary}\r\n");
    if body.len() < first.len() && first.as_bytes().starts_with(body) {
        return Ok(None);
    }
    let rest = body
        .strip_prefix(first.as_bytes())
        .ok_or_else(|| bad("it does not start with its boundary"))?;
    let delimiter = format!("\r\n--{boundary}");
    match memchr::memmem::find(rest, delimiter.as_bytes()) {
        Some(end) => Ok(Some(part(&rest[..end])?)),
        None => Ok(None),
    }
}

fn part(bytes: &[u8]) -> Result<Part<'_>, AppError> {
    let split =
        memchr::memmem::find(bytes, b"\r\n\r\n").ok_or_else(|| bad("a part without headers"))?;
    let headers = std::str::from_utf8(&bytes[..split]).map_err(|_| bad("headers not UTF-8"))?;
    let disposition = headers
        .split("\r\n")
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-disposition")
                .then_some(value)
        })
        .ok_or_else(|| bad("a part without a name"))?;
    let param = |key: &str| {
        disposition.split(';').find_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            (k == key).then(|| v.trim_matches('"').to_owned())
        })
    };
    Ok(Part {
        name: param("name").ok_or_else(|| bad("a part without a name"))?,
        filename: param("filename"),
        content: &bytes[split + 4..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_with_a_file_is_read_and_garbage_refused() {
        let body = b"--XY\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nann\r\n--XY\r\n\
Content-Disposition: form-data; name=\"archive\"; filename=\"p.tar\"\r\nContent-Type: application/x-tar\r\n\r\n\
a\r\nb\r\n--XY--\r\n";
        let b = boundary("multipart/form-data; boundary=XY").unwrap();
        let parts = parse(body, &b).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "username");
        assert_eq!(parts[0].content, b"ann");
        assert_eq!(parts[1].filename.as_deref(), Some("p.tar"));
        assert_eq!(parts[1].content, b"a\r\nb");
        assert!(parse(b"garbage", &b).is_err());
        assert!(parse(b"--XY\r\nno end", &b).is_err());
        assert!(boundary("application/json").is_err());
    }

    #[test]
    fn the_first_part_is_read_once_whole() {
        let body =
            b"--XY\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\ntok\r\n--XY\r\nmore";
        for cut in [0, 3, 10, body.len() - 12] {
            assert!(first_part(&body[..cut], "XY").unwrap().is_none(), "{cut}");
        }
        let part = first_part(body, "XY").unwrap().unwrap();
        assert_eq!((part.name.as_str(), part.content), ("_csrf", &b"tok"[..]));
        assert!(first_part(b"garbage here", "XY").is_err());
    }
}
