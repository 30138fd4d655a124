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

/// "38 passed · 2 failed"
pub fn counts(run: &Run) -> Markup {
    let parts = [
        (run.passed, "passed"),
        (run.failed, "failed"),
        (run.errors, "error"),
        (run.skipped, "skipped"),
        (run.xfailed, "xfailed"),
        (run.xpassed, "xpassed"),
    ];
    html! {
        span.counts {
            @for (i, (n, label)) in parts.iter().filter(|(n, _)| *n > 0).enumerate() {
                @if i > 0 { " · " }
                span class={ "count-" (label) } { (n) " " (label) }
            }
        }
    }
}
