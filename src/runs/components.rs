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
