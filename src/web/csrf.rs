//! The CSRF cookie: a random token in a cookie of its own (double submit),
//! so an anonymous visitor's forms are protected without a stored session.
//! A page on another site can make a browser send this cookie with a forged
//! post, but cannot read it, so it cannot echo it in the form. Once a
//! session is written, it keeps the token too (`web::session`), so a cookie
//! set by a sibling host cannot forge a signed-in person's forms.

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{header, request::Parts, HeaderMap, HeaderValue},
    middleware::Next,
    response::Response,
};
use rand::Rng;
use subtle::ConstantTimeEq;
use time::Duration;
use tower_sessions::cookie::{Cookie, SameSite};

use super::html_error::HtmlError;
use crate::error::AppError;

/// Characters in a token: 32 alphanumerics, about 190 bits.
pub const TOKEN_LEN: usize = 32;

/// A browser keeps its token this long (as long as an idle session lives).
const LIFETIME: Duration = Duration::days(30);

/// How the cookie is set: `Secure` behind HTTPS, and then under the
/// `__Host-` prefix, which browsers accept only from this very host over
/// HTTPS (no sibling host or plain-HTTP answer can plant one).
#[derive(Clone, Copy, Debug)]
pub struct CookieSettings {
    pub secure: bool,
}

impl CookieSettings {
    pub fn name(self) -> &'static str {
        if self.secure {
            "__Host-te_csrf"
        } else {
            "te_csrf"
        }
    }

    fn cookie(self, token: &str) -> Cookie<'static> {
        Cookie::build((self.name(), token.to_owned()))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .max_age(LIFETIME)
            .build()
    }
}

/// This request's CSRF cookie token: the one the browser sent, or a new
/// one that the response sets.
#[derive(Clone, Debug)]
pub struct CsrfCookie {
    token: String,
    sent: bool,
}

impl CsrfCookie {
    /// The token to put in this response's forms (when the session keeps none).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether `submitted` is the token the browser sent in its cookie; a
    /// token minted for this very request proves nothing.
    pub fn matches(&self, submitted: &str) -> bool {
        self.sent && tokens_match(&self.token, submitted)
    }
}

/// Compares two tokens in time that does not depend on where they differ.
pub fn tokens_match(expected: &str, submitted: &str) -> bool {
    bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
}

pub fn new_token() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(TOKEN_LEN)
        .map(char::from)
        .collect()
}

/// Middleware of the pages: reads the browser's token (or mints one and
/// sets it on the response), and hands it to handlers as a `CsrfCookie`.
/// Nothing is stored on the server.
pub async fn issue(
    State(settings): State<CookieSettings>,
    mut request: Request,
    next: Next,
) -> Response {
    let sent = sent_token(request.headers(), settings.name());
    let cookie = CsrfCookie {
        sent: sent.is_some(),
        token: sent.unwrap_or_else(new_token),
    };
    let set = (!cookie.sent).then(|| settings.cookie(&cookie.token));
    request.extensions_mut().insert(cookie);
    let mut response = next.run(request).await;
    if let Some(set) = set {
        let value = HeaderValue::try_from(set.to_string())
            .expect("a cookie of alphanumerics is a valid header");
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The well-formed token among the request's cookies; anything else (a
/// cookie of another length or alphabet) is ignored and replaced.
fn sent_token(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|c| c.name() == name)
        .map(|c| c.value().to_owned())
        .find(|v| v.len() == TOKEN_LEN && v.bytes().all(|b| b.is_ascii_alphanumeric()))
}

impl<S: Send + Sync> FromRequestParts<S> for CsrfCookie {
    type Rejection = HtmlError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<CsrfCookie>()
            .cloned()
            .ok_or_else(|| {
                HtmlError(AppError::Internal(anyhow::anyhow!(
                    "the CSRF cookie middleware is not on this route"
                )))
            })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{header, HeaderMap, HeaderValue};

    use super::{new_token, sent_token, tokens_match, CookieSettings};

    fn cookies(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn a_well_formed_token_is_read_from_among_other_cookies() {
        let token = new_token();
        let headers = cookies(&format!("id=abc; te_csrf={token}; other=1"));
        assert_eq!(sent_token(&headers, "te_csrf"), Some(token));
    }

    #[test]
    fn a_malformed_token_counts_as_none() {
        for bad in ["short", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", ""] {
            assert_eq!(
                sent_token(&cookies(&format!("te_csrf={bad}")), "te_csrf"),
                None
            );
        }
    }

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(tokens_match(&a, &a.clone()));
        assert!(!tokens_match(&a, &b));
        assert!(!tokens_match(&a, &a[..31]));
    }

    #[test]
    fn a_secure_cookie_is_host_only() {
        let secure = CookieSettings { secure: true }.cookie("t").to_string();
        assert!(secure.starts_with("__Host-te_csrf=t"), "{secure}");
        assert!(
            secure.contains("Secure") && secure.contains("Path=/"),
            "{secure}"
        );
        let plain = CookieSettings { secure: false }.cookie("t").to_string();
        assert!(
            plain.starts_with("te_csrf=t") && !plain.contains("Secure"),
            "{plain}"
        );
        assert!(
            plain.contains("HttpOnly") && plain.contains("SameSite=Lax"),
            "{plain}"
        );
    }
}
