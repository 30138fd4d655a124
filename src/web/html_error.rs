//! Errors of the HTML pages: the same `AppError`, shown as a page.

use axum::response::{IntoResponse, Response};

use super::page::error_page;
use crate::error::AppError;

pub struct HtmlError(pub AppError);

pub type PageResult<T> = Result<T, HtmlError>;

impl<E: Into<AppError>> From<E> for HtmlError {
    fn from(err: E) -> Self {
        HtmlError(err.into())
    }
}

impl IntoResponse for HtmlError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        (status, error_page(status, &self.0.public_message())).into_response()
    }
}
