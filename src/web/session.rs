//! What the browser session remembers: the username, the CSRF token of its
//! forms, and whether an operator signed in.

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

pub async fn is_operator(session: &Session) -> AppResult<bool> {
    Ok(session
        .get::<bool>(OPERATOR)
        .await
        .map_err(session_error)?
        .unwrap_or(false))
}

pub async fn set_operator(session: &Session, operator: bool) -> AppResult<()> {
    session.cycle_id().await.map_err(session_error)?;
    session
        .insert(OPERATOR, operator)
        .await
        .map_err(session_error)
}
