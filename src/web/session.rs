//! What the browser session remembers: the username, and whether an
//! operator signed in (with which token, and the CSRF token of their
//! forms). Only these writes store a session: everyone else's forms carry
//! the CSRF cookie's token (`web::csrf`), so anonymous visits store nothing.

use tower_sessions::Session;

use super::csrf::{new_token, tokens_match, CsrfCookie};
use crate::error::{AppError, AppResult};

const USERNAME: &str = "username";
const CSRF: &str = "csrf";
const OPERATOR: &str = "operator";
const FLASH: &str = "flash";

fn session_error(err: tower_sessions::session::Error) -> AppError {
    AppError::Internal(anyhow::Error::new(err).context("reading the browser session"))
}

pub async fn username(session: &Session) -> AppResult<Option<String>> {
    session.get(USERNAME).await.map_err(session_error)
}

/// Remembers the username, which stores the session. Its forms keep the
/// cookie's token (open tabs still work).
pub async fn remember_username(session: &Session, name: &str) -> AppResult<()> {
    session.insert(USERNAME, name).await.map_err(session_error)
}

/// The token every state-changing form of this browser carries: the one
/// its session keeps (an operator's), or else its CSRF cookie's. Reading it
/// writes nothing.
pub async fn csrf_token(session: &Session, cookie: &CsrfCookie) -> AppResult<String> {
    let bound: Option<String> = session.get(CSRF).await.map_err(session_error)?;
    Ok(bound.unwrap_or_else(|| cookie.token().to_owned()))
}

/// Refuses a form post that does not carry this browser's token: a page on
/// another site can make a browser post a form, but cannot read the token.
pub async fn verify_csrf(session: &Session, cookie: &CsrfCookie, submitted: &str) -> AppResult<()> {
    let bound: Option<String> = session.get(CSRF).await.map_err(session_error)?;
    let valid = match bound {
        Some(bound) => tokens_match(&bound, submitted),
        None => cookie.matches(submitted),
    };
    if valid {
        return Ok(());
    }
    Err(AppError::Forbidden(
        "this form has expired or was sent from another site; reload the page and try again".into(),
    ))
}

/// An operator's form post: this session's CSRF token, and an operator
/// signed in. `action` completes "only operators may …".
pub async fn verify_operator_form(
    session: &Session,
    cookie: &CsrfCookie,
    submitted: &str,
    action: &str,
) -> AppResult<()> {
    verify_csrf(session, cookie, submitted).await?;
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

/// Signs an operator in with the fingerprint of the token they proved. The
/// session id changes, so an id seen before is worth nothing after it, and
/// so does the CSRF token: the session keeps a new one, so a token known
/// before (a cookie a sibling host could plant) cannot forge operator posts.
pub async fn sign_in_operator(session: &Session, fingerprint: &str) -> AppResult<()> {
    session.cycle_id().await.map_err(session_error)?;
    session
        .insert(OPERATOR, fingerprint)
        .await
        .map_err(session_error)?;
    session
        .insert(CSRF, new_token())
        .await
        .map_err(session_error)
}

/// Signs an operator out: the session id changes too, or (no username to
/// keep) the session is deleted.
pub async fn sign_out_operator(session: &Session) -> AppResult<()> {
    if username(session).await?.is_some() {
        session.cycle_id().await.map_err(session_error)?;
    }
    forget_operator(session).await
}

/// Drops the operator flag and its CSRF token without changing the session
/// id (the request that finds a stale flag may be a background poll). A
/// session left with no username is deleted, not kept empty for 30 days.
pub async fn forget_operator(session: &Session) -> AppResult<()> {
    if username(session).await?.is_none() {
        return session.flush().await.map_err(session_error);
    }
    for key in [OPERATOR, CSRF] {
        session.remove_value(key).await.map_err(session_error)?;
    }
    Ok(())
}

/// A message for the next page this browser shows ("Environment 7 saved:
/// …"), after a form's redirect. Only operators' forms set one, and their
/// sessions are stored anyway.
pub async fn set_flash(session: &Session, text: &str) -> AppResult<()> {
    session.insert(FLASH, text).await.map_err(session_error)
}

/// The message left for this page, taken so it shows once. Writes nothing
/// when there is none: anonymous visits store no session.
pub async fn take_flash(session: &Session) -> AppResult<Option<String>> {
    let flash: Option<String> = session.get(FLASH).await.map_err(session_error)?;
    if flash.is_some() {
        session.remove_value(FLASH).await.map_err(session_error)?;
    }
    Ok(flash)
}

/// The body of a form that carries nothing but the CSRF token
/// (sign out, cancel a run, delete an environment).
#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub _csrf: String,
}
