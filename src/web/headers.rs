//! Security headers on every response, and the headers that make a file
//! produced by a run an inert download.
//!
//! The policy allows scripts and styles from this server's files only: no
//! inline `<script>`, no `on…=` attributes, no `eval` (htmx runs with
//! `allowEval` off and without its injected indicator `<style>`, see the
//! `htmx-config` meta in `page.rs`). Inline `style="…"` attributes stay
//! allowed (`style-src-attr`): the meters and progress bars size themselves
//! with them, and a style attribute cannot run code.

use axum::{
    http::{header, HeaderName, HeaderValue},
    Router,
};
use tower_http::set_header::SetResponseHeaderLayer;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// The API's docs page (Swagger UI): the same, except the one `<style>`
/// element its script inserts, allowed by its hash. A new Swagger UI with
/// another style shows as a CSP violation in the browser test of the page.
pub const DOCS_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; \
     style-src-attr 'unsafe-inline'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// For content a run produced (its JUnit report, …): never a page of this
/// origin, even if a browser were talked into rendering it.
pub const SANDBOX_POLICY: &str = "sandbox; default-src 'none'";

/// Adds the headers to every response of `router` that does not set its own
/// (a download sets a stricter policy).
pub fn secure<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let headers: [(HeaderName, &'static str); 5] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        // For browsers that predate `frame-ancestors`.
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    headers.into_iter().fold(router, |router, (name, value)| {
        router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ))
    })
}

/// Headers for a download of run-produced content named `filename` (which
/// must be a plain ASCII name: it goes into a header unquoted of anything).
pub fn attachment(filename: &str) -> [(HeaderName, String); 3] {
    [
        (
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ),
        (header::CONTENT_SECURITY_POLICY, SANDBOX_POLICY.to_owned()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
    ]
}
