//! The search's part of the log viewer: the hits listed under the search
//! box, with a line of context each, and the previous and next hit.

use maud::{html, Markup};

use super::page_link;
use crate::{
    logs::{self, LogLine, Search, StreamFilter},
    state::AppState,
    web::{components::ansi_line, html_error::PageResult},
};

/// The hits just before and after `target` as far as the listed hits tell
/// (`Some(answer)`), or `None` where a query must: the list holds every hit
/// from `from` (the start when `None`) up to its last one, or on to the end
/// unless there are `more`.
pub(super) fn listed_neighbours(
    listed: &[LogLine],
    more: bool,
    from: Option<i32>,
    target: i32,
) -> (Option<Option<i32>>, Option<Option<i32>>) {
    let start = from.unwrap_or(0);
    let end = match listed.last() {
        Some(last) if more => last.seq,
        _ => i32::MAX,
    };
    if target < start || target > end {
        return (None, None);
    }
    let previous = listed.iter().rev().find(|h| h.seq < target).map(|h| h.seq);
    let next = listed.iter().find(|h| h.seq > target).map(|h| h.seq);
    (
        (previous.is_some() || start == 0).then_some(previous),
        (next.is_some() || !more).then_some(next),
    )
}

/// The first hit after `after`, or the last before `before`.
pub(super) async fn neighbour_hit(
    state: &AppState,
    id: i64,
    q: &str,
    stream: StreamFilter,
    (after, before): (Option<i32>, Option<i32>),
) -> PageResult<Option<i32>> {
    let search = Search {
        text: q,
        stream,
        after,
        before,
        limit: 1,
    };
    Ok(logs::search(&state.db, id, &search)
        .await?
        .first()
        .map(|l| l.seq))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn hit_list(
    id: i64,
    q: &str,
    stream: StreamFilter,
    hits: &[LogLine],
    context: &[LogLine],
    more: bool,
    target: Option<i32>,
    neighbours: Option<(Option<i32>, Option<i32>)>,
) -> Markup {
    let line_at = |seq: i32| context.iter().find(|l| l.seq == seq);
    html! {
        div.log-hits {
            p.hit-nav {
                @if hits.is_empty() {
                    "No line contains " q { (q) } "."
                } @else {
                    (hits.len()) @if more { "+" }
                    @if hits.len() == 1 && !more { " line contains " } @else { " lines contain " }
                    q { (q) } "."
                    @if let Some((previous, next)) = neighbours {
                        " "
                        @if let Some(p) = previous {
                            a.hit-previous href=(page_link(id, p, Some(q), stream)) { "← Previous hit" }
                        } @else { span.muted { "← Previous hit" } }
                        " · "
                        @if let Some(n) = next {
                            a.hit-next href=(page_link(id, n, Some(q), stream)) { "Next hit →" }
                        } @else { span.muted { "Next hit →" } }
                    }
                }
            }
            @if !hits.is_empty() {
                ol.hits {
                    @for hit in hits {
                        li class=[(Some(hit.seq) == target).then_some("current")] {
                            a.hit href=(page_link(id, hit.seq, Some(q), stream)) { "Line " (hit.seq + 1) }
                            div.hit-context {
                                @if let Some(before) = line_at(hit.seq - 1) { div.ctx { (ansi_line(&before.line)) } }
                                div.ctx.match { (ansi_line(&hit.line)) }
                                @if let Some(after) = line_at(hit.seq + 1) { div.ctx { (ansi_line(&after.line)) } }
                            }
                        }
                    }
                }
                @if more {
                    @if let Some(last) = hits.last() {
                        a.more-hits href={ (page_link(id, last.seq, Some(q), stream).split('#').next().unwrap_or_default()) "&from=" (last.seq + 2) } { "More hits" }
                    }
                }
            }
        }
    }
}
