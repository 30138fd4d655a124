//! Operators: who may change environments and cancel anyone's run. An
//! operator proves it with `OPERATOR_TOKEN`, as `Authorization: Bearer` on
//! the API or once on the sign-in page (afterwards the session holds the
//! token's fingerprint, and is signed out when the token changes). Wrong
//! tokens are limited per client address on both paths.

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{header::AUTHORIZATION, request::Parts, HeaderMap},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use maud::{html, Markup};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use crate::{
    error::{AppError, AppResult},
    state::AppState,
    web::{
        csrf::CsrfCookie,
        extract::{ClientAddr, Form},
        html_error::{HtmlError, PageResult},
        page::{page, Nav},
        session::{self, CsrfForm},
    },
};

const TOO_MANY_ATTEMPTS: &str = "too many attempts; wait a minute and try again";

pub const DISABLED: &str =
    "operator actions are disabled on this server: start it with OPERATOR_TOKEN set to a secret to enable them";

/// Proof that the request comes from an operator: the bearer token, never
/// the session cookie (a browser sends the cookie along with whatever a page
/// makes it send; the API is for scripts).
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if is_operator(&parts.headers, None, state).await? {
            Ok(Operator)
        } else {
            Err(AppError::Unauthorized(
                "only operators may do this: send Authorization: Bearer <OPERATOR_TOKEN>".into(),
            ))
        }
    }
}

/// Whether the request is an operator's: `Ok(false)` without credentials,
/// an error for a wrong token or when operators are disabled. The API
/// passes no session (bearer only); a page may pass its session.
pub async fn is_operator(
    headers: &HeaderMap,
    session: Option<&Session>,
    state: &AppState,
) -> AppResult<bool> {
    let Some(expected) = state.config.operator_token.as_deref() else {
        return match bearer(headers) {
            Some(_) => Err(AppError::Forbidden(DISABLED.into())),
            None => Ok(false),
        };
    };
    if let Some(token) = bearer(headers) {
        return if secret_matches(token, expected) {
            Ok(true)
        } else {
            Err(AppError::Forbidden("the operator token is wrong".into()))
        };
    }
    match session {
        Some(session) => session::is_operator(session).await,
        None => Ok(false),
    }
}

/// The token of an `Authorization` header; `Some("")` for a header that is
/// not a bearer token, so it counts as a wrong one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?;
    let value = value.to_str().unwrap_or("").trim();
    Some(value.strip_prefix("Bearer ").unwrap_or("").trim())
}

/// Compares a secret in constant time. Both sides are hashed first: digests
/// have one length, so the timing does not even tell the secret's length.
pub(crate) fn secret_matches(given: &str, expected: &str) -> bool {
    let (given, expected) = (Sha256::digest(given), Sha256::digest(expected));
    bool::from(given.as_slice().ct_eq(expected.as_slice()))
}

/// What a signed-in session stores instead of a flag: a hash of the token it
/// proved, so a session outlives no token change (and holds no token).
fn fingerprint(token: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"test-executor operator session\0")
        .chain_update(token.as_bytes())
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Middleware of the API: every `Authorization` header is checked here, so
/// wrong tokens are counted and limited per client address (and logged)
/// before any handler sees them.
pub async fn limit_bearer_guesses(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    request: Request,
    next: Next,
) -> Response {
    let (Some(expected), Some(token)) = (
        state.config.operator_token.as_deref(),
        bearer(request.headers()),
    ) else {
        return next.run(request).await;
    };
    if let Some(wait) = state.operator_limiter.blocked(addr) {
        tracing::debug!(%addr, "operator token refused: too many wrong ones from this address");
        return (
            retry_after(wait),
            AppError::TooManyRequests(TOO_MANY_ATTEMPTS.into()),
        )
            .into_response();
    }
    if !secret_matches(token, expected) {
        let failures = state.operator_limiter.failed(addr);
        tracing::warn!(%addr, failures, "wrong operator bearer token");
        return AppError::Forbidden("the operator token is wrong".into()).into_response();
    }
    next.run(request).await
}

/// Tells a limited client when to come back (whole seconds, rounded up).
fn retry_after(wait: std::time::Duration) -> [(axum::http::HeaderName, String); 1] {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    [(axum::http::header::RETRY_AFTER, secs.to_string())]
}

/// Middleware of the pages: drops the operator flag of a session signed in
/// with another token than the current one (or while operators are now
/// disabled), on every request, so rotating the token signs everyone out.
pub async fn bind_sessions(
    State(state): State<AppState>,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    if let Err(err) = drop_stale_operator(&state, &session).await {
        return HtmlError(err).into_response();
    }
    next.run(request).await
}

async fn drop_stale_operator(state: &AppState, session: &Session) -> AppResult<()> {
    let Some(stored) = session::operator_fingerprint(session).await? else {
        return Ok(());
    };
    let current = state.config.operator_token.as_deref().map(fingerprint);
    if !current.is_some_and(|current| secret_matches(&stored, &current)) {
        tracing::info!("operator session signed out: the operator token has changed");
        session::forget_operator(session).await?;
    }
    Ok(())
}

pub async fn sign_in_page(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
) -> PageResult<Markup> {
    render(&state, &session, &cookie, None).await
}

async fn render(
    state: &AppState,
    session: &Session,
    cookie: &CsrfCookie,
    error: Option<&str>,
) -> PageResult<Markup> {
    let csrf = session::csrf_token(session, cookie).await?;
    let signed_in = session::is_operator(session).await?;
    Ok(page(
        "Operator",
        Nav::Environments,
        html! {
            h1 { "Operator sign-in" }
            @if state.config.operator_token.is_none() {
                article.warning { p { (DISABLED) "." } }
            } @else if signed_in {
                p { "You are signed in as an operator: you may change environments and cancel anyone's run." }
                form method="post" action="/operator/sign-out" {
                    input type="hidden" name="_csrf" value=(csrf);
                    a href="/environments" { "Environments" } " "
                    button.secondary type="submit" { "Sign out" }
                }
            } @else {
                form method="post" action="/operator/sign-in" {
                    input type="hidden" name="_csrf" value=(csrf);
                    label {
                        "Operator token"
                        input type="password" name="token" required autocomplete="current-password"
                            aria-invalid=[error.map(|_| "true")];
                        @if let Some(e) = error { small.error { (e) } }
                    }
                    button type="submit" { "Sign in" }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    _csrf: String,
}

pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    session: Session,
    cookie: CsrfCookie,
    Form(form): Form<SignInForm>,
) -> PageResult<Response> {
    session::verify_csrf(&session, &cookie, &form._csrf).await?;
    let Some(expected) = state.config.operator_token.as_deref() else {
        return Err(AppError::Forbidden(DISABLED.into()).into());
    };
    if let Some(wait) = state.operator_limiter.blocked(addr) {
        tracing::debug!(%addr, "operator sign-in refused: too many wrong tokens from this address");
        return Ok((
            retry_after(wait),
            HtmlError(AppError::TooManyRequests(TOO_MANY_ATTEMPTS.into())),
        )
            .into_response());
    }
    if !secret_matches(form.token.trim(), expected) {
        let failures = state.operator_limiter.failed(addr);
        tracing::warn!(%addr, failures, "failed operator sign-in");
        let page = render(
            &state,
            &session,
            &cookie,
            Some("That is not the operator token."),
        )
        .await?;
        return Ok((axum::http::StatusCode::UNAUTHORIZED, page).into_response());
    }
    tracing::info!(%addr, "operator signed in");
    session::sign_in_operator(&session, &fingerprint(expected)).await?;
    Ok(Redirect::to("/environments").into_response())
}

pub async fn sign_out(
    session: Session,
    cookie: CsrfCookie,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    session::verify_csrf(&session, &cookie, &form._csrf).await?;
    session::sign_out_operator(&session).await?;
    Ok(Redirect::to("/operator").into_response())
}

/// The sign-in page and the sign-in and sign-out forms.
pub fn page_routes() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/operator", get(sign_in_page))
        .route("/operator/sign-in", post(sign_in))
        .route("/operator/sign-out", post(sign_out))
}
