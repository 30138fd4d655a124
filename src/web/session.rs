//! What the browser session remembers: the username, the CSRF token of its
//! forms, and whether an operator signed in (and with which token).

use rand::Rng;
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use crate::error::{AppError, AppResult};

const USERNAME: &str = "username";
const CSRF: &str = "csrf";
const OPERATOR: &str = "operator";

fn session_error(err: tower_sessions::session::Error) -> AppError {
    AppError::Internal(anyhow::Error::new(err).context("reading the browser session"))
}

pub async fn username(session: &Session) -> AppResult<Option<String>> {
    session.get(USERNAME).await.map_err(session_error)
}

pub async fn remember_username(session: &Session, name: &str) -> AppResult<()> {
    session.insert(USERNAME, name).await.map_err(session_error)
}

/// The token every state-changing form of this session carries.
pub async fn csrf_token(session: &Session) -> AppResult<String> {
    if let Some(token) = session.get::<String>(CSRF).await.map_err(session_error)? {
        return Ok(token);
    }
    let token: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    session.insert(CSRF, &token).await.map_err(session_error)?;
    Ok(token)
}

/// Refuses a form post that does not carry this session's token: a page on
/// another site can make a browser post a form, but cannot read the token.
pub async fn verify_csrf(session: &Session, submitted: &str) -> AppResult<()> {
    let expected: Option<String> = session.get(CSRF).await.map_err(session_error)?;
    match expected {
        Some(expected) if bool::from(expected.as_bytes().ct_eq(submitted.as_bytes())) => Ok(()),
        _ => Err(AppError::Forbidden(
            "this form has expired or was sent from another site; reload the page and try again"
                .into(),
        )),
    }
}

/// An operator's form post: this session's CSRF token, and an operator
/// signed in. `action` completes "only operators may …".
pub async fn verify_operator_form(
    session: &Session,
    submitted: &str,
    action: &str,
) -> AppResult<()> {
    verify_csrf(session, submitted).await?;
    if !is_operator(session).await? {
        return Err(AppError::Unauthorized(format!(
            "only operators may {action}: sign in at /operator"
        )));
    }
    Ok(())
}

/// Whether an operator signed in with this session. The flag is the
/// fingerprint of the token they signed in with; the server drops it from
/// every session whose fingerprint is not the current token's (see
/// `operators::bind_sessions`), so rotating the token signs everyone out.
pub async fn is_operator(session: &Session) -> AppResult<bool> {
    Ok(operator_fingerprint(session).await?.is_some())
}

/// The token fingerprint stored at sign-in; anything else (a flag written
/// by an older version) counts as signed out.
pub async fn operator_fingerprint(session: &Session) -> AppResult<Option<String>> {
    let value: Option<serde_json::Value> = session.get(OPERATOR).await.map_err(session_error)?;
    Ok(match value {
        Some(serde_json::Value::String(fingerprint)) if !fingerprint.is_empty() => {
            Some(fingerprint)
        }
        _ => None,
    })
}

/// Signs an operator in (with the fingerprint of the token they proved) or
/// out (`None`). The session id changes either way, so an id seen before
/// the change is worth nothing after it.
pub async fn set_operator(session: &Session, fingerprint: Option<&str>) -> AppResult<()> {
    session.cycle_id().await.map_err(session_error)?;
    match fingerprint {
        Some(fingerprint) => session
            .insert(OPERATOR, fingerprint)
            .await
            .map_err(session_error),
        None => forget_operator(session).await,
    }
}

/// Drops the operator flag without changing the session id (the request
/// that finds a stale flag may be a background poll).
pub async fn forget_operator(session: &Session) -> AppResult<()> {
    session
        .remove_value(OPERATOR)
        .await
        .map(drop)
        .map_err(session_error)
}

/// The body of a form that carries nothing but the session's CSRF token
/// (sign out, cancel a run, delete an environment).
#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub _csrf: String,
}
