//! The page frame: `<head>`, navigation and scripts. Every full page is
//! built here; fragments are the same view functions rendered alone.

use maud::{html, Markup, DOCTYPE};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Runs,
    NewRun,
    Environments,
    Projects,
    Other,
}

const HTMX_CONFIG: &str =
    r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}"#;

pub fn page(title: &str, nav: Nav, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                // The CSP allows no inline script or <style>: htmx must neither
                // inject its indicator styles nor evaluate code from attributes,
                // nor run scripts that a swapped fragment might carry.
                meta name="htmx-config" content=(HTMX_CONFIG);
                title { (title) " · test-executor" }
                link rel="icon" type="image/svg+xml" href="/assets/favicon.svg";
                link rel="stylesheet" href="/assets/vendor/pico-2.1.1/pico.min.css";
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/vendor/htmx-2.0.11/htmx.min.js" defer {}
                script src="/assets/app.js" defer {}
            }
            body {
                header.container {
                    nav {
                        ul { li { a.brand href="/" { strong { "test-executor" } } } }
                        ul {
                            (nav_link("/", "Runs", nav == Nav::Runs))
                            (nav_link("/runs/new", "New run", nav == Nav::NewRun))
                            (nav_link("/projects", "Projects", nav == Nav::Projects))
                            (nav_link("/environments", "Environments", nav == Nav::Environments))
                        }
                    }
                }
                main.container { (content) }
            }
        }
    }
}

fn nav_link(href: &str, label: &str, current: bool) -> Markup {
    html! {
        li {
            @if current { a href=(href) aria-current="page" { (label) } }
            @else { a href=(href) { (label) } }
        }
    }
}

/// A page for a 4xx/5xx shown to a browser.
pub fn error_page(status: axum::http::StatusCode, message: &str) -> Markup {
    page(
        status.canonical_reason().unwrap_or("Error"),
        Nav::Other,
        html! {
            article.error-page {
                h1 { (status.as_u16()) " · " (status.canonical_reason().unwrap_or("Error")) }
                p { (message) }
                p { a href="/" { "Back to the runs" } }
            }
        },
    )
}
