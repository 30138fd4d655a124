//! How a run is drawn in the pages: its status badge, its duration and its
//! test counts.

use maud::{html, Markup};

use time::OffsetDateTime;

use crate::store::{RunStatus, Summary};
use crate::web::components::duration;

pub fn status_badge(status: RunStatus) -> Markup {
    html! { span class={ "badge status-" (status.as_str()) } { (status.label()) } }
}

/// From start to finish (or to now, while running); "—" before the start.
pub fn run_duration(
    started_at: Option<OffsetDateTime>,
    finished_at: Option<OffsetDateTime>,
) -> String {
    crate::store::duration(started_at, finished_at)
        .map(duration)
        .unwrap_or_else(|| "—".into())
}

/// "38 passed · 2 failed", each count with its own class.
pub fn counts(summary: &Summary) -> Markup {
    html! {
        span.counts {
            @for (i, (n, label)) in summary.nonzero().into_iter().enumerate() {
                @if i > 0 { " · " }
                span class={ "count-" (label) } { (n) " " (label) }
            }
        }
    }
}

/// Where a run's files came from: "the tests folder", or "tree a1b2c3… sent
/// by ann" with the tree as a download (or said to be gone).
pub fn source(run: &crate::store::Run, tree: Option<&crate::trees::Tree>) -> Markup {
    html! {
        @match (&run.tree_id, tree) {
            (None, _) => "the tests folder",
            (Some(_), Some(tree)) => {
                "tree " code.sha title=(tree.id) { (tree.short_id()) }
                " (" (tree.name) ", " (tree.files) " files) sent by " (tree.username) " · "
                a href={ "/api/v1/trees/" (tree.id) "/tar" } download { "download (tar)" }
            }
            (Some(id), None) => {
                "tree " code.sha title=(id) { (id.get(..12).unwrap_or(id)) "…" }
                span.muted { " (deleted after RETENTION_DAYS unused)" }
            }
        }
    }
}
