//! The run page's log viewer: a window of at most a few thousand lines
//! (the tail, or the neighbourhood of a line), earlier and later pages
//! loaded on demand, numbered lines (`#L123`, `?line=123`), and a search
//! with its hits. Everything works without JS; `assets/app.js` loads pages
//! while scrolling, keeps the scroll position and bounds the DOM.

use axum::extract::State;
use maud::{html, Markup};
use serde::Deserialize;

use crate::store::Run;
use crate::{
    error::AppError,
    logs::{self, LogLine, Search, StreamFilter},
    state::AppState,
    web::{
        components::ansi_line,
        extract::{Path, Query},
        html_error::PageResult,
    },
};

mod hits;
use hits::{hit_list, listed_neighbours, neighbour_hit};

/// Lines the page opens with, and in each earlier or later page.
pub const PAGE_LINES: i64 = 2000;
/// Hits listed under the search box.
const HITS_SHOWN: i64 = 100;

/// What the page shows of the log: `line` (1-based) and its neighbourhood,
/// the hits of `q` (listed after the line number `from`), or the tail.
#[derive(Debug, Default, Deserialize)]
pub struct LogView {
    pub line: Option<String>,
    pub q: Option<String>,
    pub stream: Option<String>,
    pub from: Option<String>,
}

struct Checked {
    /// The target's sequence number (line - 1).
    target: Option<i32>,
    q: Option<String>,
    stream: StreamFilter,
    /// Hits are listed after this sequence number.
    from: Option<i32>,
}

fn line_number(name: &str, text: Option<&str>) -> Result<Option<i32>, AppError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => match t.parse::<i32>() {
            Ok(n) if n >= 1 => Ok(Some(n - 1)),
            _ => Err(AppError::Invalid(format!(
                "{name} must be a line number (1 or more), not {t:?}"
            ))),
        },
    }
}

impl LogView {
    fn check(&self) -> Result<Checked, AppError> {
        let q = self.q.clone().filter(|q| !q.is_empty());
        if let Some(q) = &q {
            Search::check(q)?;
        }
        Ok(Checked {
            target: line_number("line", self.line.as_deref())?,
            q,
            stream: StreamFilter::parse(self.stream.as_deref())?,
            from: line_number("from", self.from.as_deref())?,
        })
    }
}

/// A link to the page showing `line` (a sequence number), keeping the search.
fn page_link(run_id: i64, seq: i32, q: Option<&str>, stream: StreamFilter) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(q) = q {
        query.append_pair("q", q);
        if let Some(name) = stream.name() {
            query.append_pair("stream", name);
        }
    }
    query.append_pair("line", &(seq + 1).to_string());
    format!("/runs/{run_id}?{}#L{}", query.finish(), seq + 1)
}

/// The logs section of the run page.
pub async fn section(state: &AppState, run: &Run, view: &LogView) -> PageResult<Markup> {
    let view = view.check()?;
    let id = run.id;
    let (hits, more_hits) = search_hits(state, id, &view).await?;
    // A search without a line opens at its first hit.
    let target = view
        .target
        .or_else(|| hits.as_ref().and_then(|h| h.first()).map(|l| l.seq));
    // The last page starts here; a window never starts below it.
    let last_page = (i64::from(run.log_lines) - PAGE_LINES).max(0) as i32;
    let first = match target {
        Some(t) => (t - (PAGE_LINES / 2) as i32).min(last_page).max(0),
        None => last_page,
    };
    let lines = logs::after(&state.db, id, Some(first - 1), PAGE_LINES).await?;
    let neighbours = match (&view.q, target, &hits) {
        (Some(q), Some(t), Some(listed)) => Some(
            neighbours(
                state,
                id,
                (q, view.stream),
                listed,
                more_hits,
                (view.from, t),
            )
            .await?,
        ),
        _ => None,
    };
    let context = match &hits {
        Some(hits) if !hits.is_empty() => {
            let seqs: Vec<i32> = hits.iter().map(|l| l.seq).collect();
            logs::context(&state.db, id, &seqs).await?
        }
        _ => Vec::new(),
    };
    let q = view.q.as_deref();
    Ok(html! {
        section.logs #logs {
            (tools(id, &view))
            @if let (Some(q), Some(hits)) = (q, &hits) {
                (hit_list(id, q, view.stream, hits, &context, more_hits, target, neighbours))
            }
            @if target.is_none() && first > 0 {
                p.muted { "The last " (PAGE_LINES) " of " (run.log_lines) " lines; scroll up for earlier ones." }
            }
            div #log.log role="log" aria-live="off" tabindex="0" data-run=(id) {
                @if first > 0 { (earlier_loader(id, first)) }
                (log_lines(&lines, target))
                (bottom(run, &lines, first - 1))
            }
        }
    })
}

/// The search's hits listed (at most `HITS_SHOWN`, after `from`), and
/// whether there are more; `None` without a search.
async fn search_hits(
    state: &AppState,
    id: i64,
    view: &Checked,
) -> PageResult<(Option<Vec<LogLine>>, bool)> {
    let Some(q) = &view.q else {
        return Ok((None, false));
    };
    let search = Search {
        text: q,
        stream: view.stream,
        after: view.from.map(|f| f - 1),
        before: None,
        limit: HITS_SHOWN + 1,
    };
    let mut hits = logs::search(&state.db, id, &search).await?;
    let more = hits.len() as i64 > HITS_SHOWN;
    hits.truncate(HITS_SHOWN as usize);
    Ok((Some(hits), more))
}

/// The hits before and after the target line, from the listed hits when
/// they hold them, else asked of the database.
async fn neighbours(
    state: &AppState,
    id: i64,
    (q, stream): (&str, StreamFilter),
    listed: &[LogLine],
    more_hits: bool,
    (from, target): (Option<i32>, i32),
) -> PageResult<(Option<i32>, Option<i32>)> {
    let (previous, next) = listed_neighbours(listed, more_hits, from, target);
    let previous = match previous {
        Some(known) => known,
        None => neighbour_hit(state, id, q, stream, (None, Some(target))).await?,
    };
    let next = match next {
        Some(known) => known,
        None => neighbour_hit(state, id, q, stream, (Some(target), None)).await?,
    };
    Ok((previous, next))
}

/// The section's head: links to the whole log, the search and "go to line".
fn tools(id: i64, view: &Checked) -> Markup {
    let q = view.q.as_deref();
    html! {
            div.log-head {
                h2 { "Logs" }
                nav.log-links {
                    a href={ "/runs/" (id) "?line=1#L1" } { "First lines" }
                    a href={ "/runs/" (id) } { "Last lines" }
                    a href={ "/runs/" (id) "/log.txt" } download { "log.txt" }
                    a href={ "/api/v1/runs/" (id) "/logs" } { "JSON" }
                }
            }
            div.log-tools {
                form.log-search role="search" method="get" action={ "/runs/" (id) } {
                    input type="search" name="q" value=[q] placeholder="Search the log"
                        aria-label="Search the log" maxlength=(logs::MAX_QUERY_CHARS);
                    select name="stream" aria-label="Stream" {
                        option value="" selected[view.stream.0.is_none()] { "stdout and stderr" }
                        option value="stdout" selected[view.stream.0 == Some(1)] { "stdout" }
                        option value="stderr" selected[view.stream.0 == Some(2)] { "stderr" }
                    }
                    button type="submit" { "Search" }
                }
                form.log-goto method="get" action={ "/runs/" (id) } {
                    input type="number" name="line" min="1" placeholder="Line"
                        aria-label="Go to line" value=[view.target.map(|t| t + 1)];
                    button.secondary type="submit" { "Go" }
                }
            }
    }
}

fn log_lines(lines: &[LogLine], target: Option<i32>) -> Markup {
    html! {
        @for line in lines {
            @let n = line.seq + 1;
            @let is_target = Some(line.seq) == target;
            div class={ "ln" @if line.stream == 2 { " err" } @if is_target { " target" } } id={ "L" (n) } data-seq=(line.seq) {
                a.lnum href={ "#L" (n) } autofocus[is_target] { (n) }
                span.lt { (ansi_line(&line.line)) }
            }
        }
    }
}

/// Loads the page of lines above `first` (a sequence number); without JS,
/// a link to the page around them.
fn earlier_loader(id: i64, first: i32) -> Markup {
    html! {
        a #log-earlier.log-more href={ "/runs/" (id) "?line=" (first) "#L" (first) }
            hx-get={ "/runs/" (id) "/fragments/logs/earlier?before=" (first) }
            hx-trigger="click, earlier" hx-swap="outerHTML" { "↑ Earlier lines" }
    }
}

fn later_loader(id: i64, last: i32) -> Markup {
    html! {
        a #log-later.log-more href={ "/runs/" (id) "?line=" (last + 2) "#L" (last + 2) }
            hx-get={ "/runs/" (id) "/fragments/logs/later?after=" (last) }
            hx-trigger="click, later" hx-swap="outerHTML" { "↓ Later lines" }
    }
}

/// What follows a window's last line: a loader when more lines are
/// stored, else the tail poller (while the run goes on).
fn bottom(run: &Run, lines: &[LogLine], before_first: i32) -> Markup {
    let last = lines.last().map_or(before_first, |l| l.seq);
    if lines.len() as i64 >= PAGE_LINES && last + 1 < run.log_lines {
        later_loader(run.id, last)
    } else {
        log_poller(run, last)
    }
}

/// The tail poller: replaced by the new lines and a new poller, or by
/// nothing once the run is over and every line has been shown.
fn log_poller(run: &Run, after: i32) -> Markup {
    html! {
        @if run.status.is_active() || after + 1 < run.log_lines {
            div #log-poller hx-get={ "/runs/" (run.id) "/fragments/logs?after=" (after) }
                hx-trigger="every 500ms" hx-swap="outerHTML" {}
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct AfterQuery {
    pub after: i32,
}

/// The tail: new lines after `after` and the next poller.
pub async fn logs_fragment(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(query): Query<AfterQuery>,
) -> PageResult<Markup> {
    // The status is read first: lines stored before it turned final are
    // then all visible below.
    let run = crate::store::runs::get(&state.db, id).await?;
    let lines = logs::after(&state.db, id, Some(query.after), logs::MAX_PAGE).await?;
    let last = lines.last().map_or(query.after, |l| l.seq);
    Ok(html! {
        (log_lines(&lines, None))
        (log_poller(&run, last))
    })
}

/// The next page of a window below `after`, and what follows it.
pub async fn later_fragment(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(query): Query<AfterQuery>,
) -> PageResult<Markup> {
    let run = crate::store::runs::get(&state.db, id).await?;
    let lines = logs::after(&state.db, id, Some(query.after), PAGE_LINES).await?;
    Ok(html! {
        (log_lines(&lines, None))
        (bottom(&run, &lines, query.after))
    })
}

#[derive(Debug, Deserialize)]
pub struct BeforeQuery {
    pub before: i32,
}

/// The page of lines above `before`, with the loader for the one above it.
pub async fn earlier_fragment(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(query): Query<BeforeQuery>,
) -> PageResult<Markup> {
    crate::store::runs::get(&state.db, id).await?;
    let lines = logs::before(
        &state.db,
        id,
        query.before,
        PAGE_LINES,
        StreamFilter::default(),
    )
    .await?;
    let first = lines.first().map_or(0, |l| l.seq);
    Ok(html! {
        @if first > 0 { (earlier_loader(id, first)) }
        (log_lines(&lines, None))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(seqs: &[i32]) -> Vec<LogLine> {
        seqs.iter()
            .map(|&seq| LogLine {
                seq,
                stream: 1,
                ts: time::OffsetDateTime::UNIX_EPOCH,
                line: String::new(),
            })
            .collect()
    }

    #[test]
    fn neighbours_come_from_the_list_only_where_it_covers_them() {
        let listed = hits(&[10, 20, 30]);
        // every hit listed: no query
        assert_eq!(
            listed_neighbours(&listed, false, None, 20),
            (Some(Some(10)), Some(Some(30)))
        );
        assert_eq!(
            listed_neighbours(&listed, false, None, 10),
            (Some(None), Some(Some(20)))
        );
        assert_eq!(
            listed_neighbours(&listed, false, None, 30),
            (Some(Some(20)), Some(None))
        );
        // more hits after the list: past its end, ask
        assert_eq!(
            listed_neighbours(&listed, true, None, 30),
            (Some(Some(20)), None)
        );
        assert_eq!(listed_neighbours(&listed, true, None, 40), (None, None));
        // listed from a later line: below the first listed, ask
        assert_eq!(
            listed_neighbours(&listed, false, Some(10), 10),
            (None, Some(Some(20)))
        );
        assert_eq!(listed_neighbours(&listed, false, Some(10), 5), (None, None));
    }
}
