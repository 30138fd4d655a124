//! The JSON API's state-changing calls take JSON bodies only. A form on some
//! page (even one of this site) can make a browser post
//! `application/x-www-form-urlencoded`, `multipart/form-data` or
//! `text/plain` without asking, but not `application/json`: requiring it
//! keeps browsers from being used to call the API.
//!
//! One exception: a PUT of `application/octet-stream` (a tree's file,
//! `/api/v1/blobs/{sha256}`). No form can PUT, and a cross-site `fetch` PUT
//! is preflighted whatever its type, so this opens nothing to other sites.

use axum::{
    extract::Request,
    http::{header, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::json;

pub const MESSAGE: &str = "this API takes JSON only: send the body with \
     `Content-Type: application/json` (or no body and no Content-Type at all)";

/// Middleware: 415 for a POST/PUT/PATCH/DELETE that carries a body or a
/// content type other than JSON. A call without a body (cancel, delete) may
/// leave the content type out.
pub async fn require_json(request: Request, next: Next) -> Response {
    if is_safe(request.method()) || is_json_or_bodyless(&request) || is_octet_put(&request) {
        next.run(request).await
    } else {
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            axum::Json(json!({ "error": MESSAGE })),
        )
            .into_response()
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_octet_put(request: &Request) -> bool {
    let octets = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/octet-stream"));
    request.method() == Method::PUT && octets
}

fn is_json_or_bodyless(request: &Request) -> bool {
    let headers = request.headers();
    match headers.get(header::CONTENT_TYPE) {
        Some(value) => value.to_str().is_ok_and(is_json),
        None => {
            let chunked = headers.contains_key(header::TRANSFER_ENCODING);
            let length = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            !chunked && matches!(length, None | Some(0))
        }
    }
}

/// `application/json`, with parameters (`; charset=utf-8`) or not, and the
/// `+json` types (`application/merge-patch+json`).
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_types_are_recognised_and_form_types_are_not() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/plain",
            "text/json",
            "application/jsonp",
            "",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }
}
