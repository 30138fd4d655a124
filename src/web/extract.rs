//! Extractors whose rejections are `AppError`s, so malformed JSON, queries and
//! paths get the same `{"error": "..."}` answer as every other bad input,
//! and a malformed form gets the HTML error page.

use axum::{
    extract::{
        rejection::{JsonRejection, PathRejection, QueryRejection},
        FromRequest, FromRequestParts,
    },
    response::{IntoResponse, Response},
};

use super::html_error::HtmlError;
use crate::error::AppError;

#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct Query<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct Path<T>(pub T);

/// A form body, read as `axum_extra`'s `Form` reads it (repeated keys fill a
/// `Vec`), whose rejection renders as the HTML error page.
#[derive(FromRequest)]
#[from_request(via(axum_extra::extract::Form), rejection(HtmlError))]
pub struct Form<T>(pub T);

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        AppError::Invalid(format!(
            "the request body is not valid JSON for this call: {}",
            rejection.body_text()
        ))
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        AppError::Invalid(format!("bad query parameters: {}", rejection.body_text()))
    }
}

impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> Self {
        AppError::NotFound(format!("no such page: {}", rejection.body_text()))
    }
}

impl From<axum_extra::extract::FormRejection> for AppError {
    fn from(rejection: axum_extra::extract::FormRejection) -> Self {
        AppError::Invalid(format!(
            "the form could not be read: {}",
            rejection.body_text()
        ))
    }
}

/// A JSON body that may be left out: empty is `T::default()`. Called inside
/// the handler (not an extractor) so its error comes after the checks before it.
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, AppError> {
    if body.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| AppError::Invalid(format!("the request body is not valid for this call: {e}")))
}

/// The address the request came from, as the socket saw it (no proxy
/// headers are trusted). Unknown (a router driven without a socket) is
/// `0.0.0.0`.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub std::net::IpAddr);

impl ClientAddr {
    pub fn of(parts: &axum::http::request::Parts) -> ClientAddr {
        ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |c| c.0.ip()),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr::of(parts))
    }
}
