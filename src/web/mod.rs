//! The web toolkit every domain uses: the page shell, components, sessions,
//! extractors, headers and HTML errors. It imports no domain module; the
//! routes are merged in `routes.rs`.

pub mod components;
pub mod csrf;
pub mod extract;
pub mod headers;
pub mod html_error;
pub mod json_only;
pub mod limiter;
pub mod multipart;
pub mod page;
pub mod session;
pub mod session_store;
