//! How a run is drawn in the pages: its status badge, its duration and its
//! test counts.

use maud::{html, Markup};

use super::{Run, RunStatus};
use crate::web::components::duration;

pub fn status_badge(status: RunStatus) -> Markup {
    html! { span class={ "badge status-" (status.as_str()) } { (status.label()) } }
}

pub fn run_duration(run: &Run) -> String {
    run.duration().map(duration).unwrap_or_else(|| "—".into())
}

/// "38 passed · 2 failed", each count with its own class.
pub fn counts(run: &Run) -> Markup {
    html! {
        span.counts {
            @for (i, (n, label)) in run.summary.nonzero().into_iter().enumerate() {
                @if i > 0 { " · " }
                span class={ "count-" (label) } { (n) " " (label) }
            }
        }
    }
}
