//! Operators: who may change environments and cancel anyone's run. An
//! operator proves it with `OPERATOR_TOKEN`, as `Authorization: Bearer` on
//! the API or once on the sign-in page (a session flag afterwards).

use std::{
    collections::VecDeque,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    extract::{FromRequestParts, State},
    http::{header::AUTHORIZATION, request::Parts, HeaderMap},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::Form;
use maud::{html, Markup};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use crate::{
    error::{AppError, AppResult},
    server::AppState,
    web::{
        html_error::PageResult,
        page::{page, Nav},
        session,
    },
};

pub const DISABLED: &str =
    "operator actions are disabled on this server: start it with OPERATOR_TOKEN set to a secret to enable them";

/// Proof that the request comes from an operator.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let session = Session::from_request_parts(parts, state).await.ok();
        if is_operator(&parts.headers, session.as_ref(), state).await? {
            Ok(Operator)
        } else {
            Err(AppError::Unauthorized(
                "only operators may do this: send Authorization: Bearer <OPERATOR_TOKEN>, or sign in at /operator".into(),
            ))
        }
    }
}

/// Whether the request is an operator's: `Ok(false)` without credentials,
/// an error for a wrong token or when operators are disabled.
pub async fn is_operator(
    headers: &HeaderMap,
    session: Option<&Session>,
    state: &AppState,
) -> AppResult<bool> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim());
    let Some(expected) = state
        .config
        .operator_token
        .as_deref()
        .filter(|t| !t.is_empty())
    else {
        return match bearer {
            Some(_) => Err(AppError::Forbidden(DISABLED.into())),
            None => Ok(false),
        };
    };
    if let Some(value) = bearer {
        let token = value.strip_prefix("Bearer ").unwrap_or("");
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

fn secret_matches(given: &str, expected: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// Failed sign-ins allowed per minute, for everyone together: guessing the
/// token through the form is hopeless, and a person who mistyped waits.
const FAILURES_PER_MINUTE: usize = 10;

#[derive(Default)]
pub struct SignInLimiter {
    failures: Mutex<VecDeque<Instant>>,
}

impl SignInLimiter {
    fn blocked(&self) -> bool {
        let mut failures = self.failures.lock().unwrap();
        while failures
            .front()
            .is_some_and(|t| t.elapsed() > Duration::from_secs(60))
        {
            failures.pop_front();
        }
        failures.len() >= FAILURES_PER_MINUTE
    }

    fn failed(&self) {
        self.failures.lock().unwrap().push_back(Instant::now());
    }
}

pub async fn sign_in_page(State(state): State<AppState>, session: Session) -> PageResult<Markup> {
    render(&state, &session, None).await
}

async fn render(state: &AppState, session: &Session, error: Option<&str>) -> PageResult<Markup> {
    let csrf = session::csrf_token(session).await?;
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
    session: Session,
    Form(form): Form<SignInForm>,
) -> PageResult<Response> {
    session::verify_csrf(&session, &form._csrf).await?;
    let Some(expected) = state.config.operator_token.as_deref() else {
        return Err(AppError::Forbidden(DISABLED.into()).into());
    };
    if state.sign_in_limiter.blocked() {
        return Err(AppError::TooManyRequests.into());
    }
    if !secret_matches(form.token.trim(), expected) {
        state.sign_in_limiter.failed();
        tracing::warn!("failed operator sign-in");
        let page = render(&state, &session, Some("That is not the operator token.")).await?;
        return Ok((axum::http::StatusCode::UNAUTHORIZED, page).into_response());
    }
    session::set_operator(&session, true).await?;
    Ok(Redirect::to("/environments").into_response())
}

#[derive(Deserialize)]
pub struct SignOutForm {
    #[serde(default)]
    _csrf: String,
}

pub async fn sign_out(session: Session, Form(form): Form<SignOutForm>) -> PageResult<Response> {
    session::verify_csrf(&session, &form._csrf).await?;
    session::set_operator(&session, false).await?;
    Ok(Redirect::to("/operator").into_response())
}
