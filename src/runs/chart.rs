//! A run's CPU and memory over time as server-rendered SVG: memory against
//! its limit, CPU against its limit (each limit a dashed line), an OOM kill
//! marked at its moment, and the peaks beside. No client chart library:
//! while the run runs, the poller brings only the new points, appended to
//! each chart as a nested `<svg>` in the same coordinates; the time axis is
//! fixed until the run outgrows it, and then the whole chart is drawn again.

use std::fmt::Write;

use maud::{html, Markup};
use time::OffsetDateTime;

use crate::store::{resources::Sample, Run, RunStatus};

/// Chart coordinates: x in 0..=W over the time span, y in 0..=H with the
/// limit drawn at `LIMIT_Y` (a little headroom above it).
const W: f64 = 1000.0;
const H: f64 = 200.0;
const LIMIT_Y: f64 = 20.0;
/// The time spans a running run's chart takes, in seconds: the smallest
/// that holds it (then the next, drawn afresh).
const SPANS_S: [i64; 12] = [
    30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400,
];

/// What one chart draws: which value, against which limit.
#[derive(Clone, Copy)]
enum Series {
    Memory,
    Cpu,
}

impl Series {
    fn class(self) -> &'static str {
        match self {
            Series::Memory => "mem",
            Series::Cpu => "cpu",
        }
    }

    fn value(self, s: &Sample) -> f64 {
        match self {
            Series::Memory => s.memory_bytes as f64,
            Series::Cpu => f64::from(s.cpu_percent),
        }
    }

    fn limit(self, run: &Run) -> f64 {
        match self {
            Series::Memory => run.limits.memory_bytes() as f64,
            Series::Cpu => run.limits.cpus() * 100.0,
        }
        .max(1.0)
    }
}

/// Milliseconds since the run started (to its end once over).
pub fn elapsed_ms(run: &Run) -> i64 {
    let Some(start) = run.started_at else {
        return 0;
    };
    let end = run
        .exited_at
        .or(run.finished_at)
        .unwrap_or_else(OffsetDateTime::now_utc);
    (end - start).whole_milliseconds().max(0) as i64
}

/// The time axis: for a running run, the smallest span holding it; for an
/// ended one, exactly its length.
pub fn span_ms(run: &Run, samples: &[Sample]) -> i64 {
    let last = samples.last().map_or(0, |s| i64::from(s.t_ms));
    let needed = elapsed_ms(run).max(last).max(1000);
    if run.status.is_active() {
        SPANS_S
            .iter()
            .map(|s| s * 1000)
            .find(|span| *span >= needed)
            .unwrap_or(needed)
    } else {
        needed
    }
}

fn x(t_ms: i32, span_ms: i64) -> f64 {
    (f64::from(t_ms) / span_ms.max(1) as f64 * W).clamp(0.0, W)
}

fn y(value: f64, limit: f64) -> f64 {
    (H - value / limit * (H - LIMIT_Y)).clamp(0.0, H)
}

/// A value as the chart's axis and tooltips say it.
fn value_text(series: Series, value: f64) -> String {
    match series {
        Series::Memory => mib(value as i64),
        Series::Cpu => format!("{value:.0} %"),
    }
}

/// A moment on the time axis: tenths of a second on a short axis.
fn time_text(ms: i64, span_ms: i64) -> String {
    if span_ms < 10_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        seconds(ms)
    }
}

/// One hover target per point, a column as wide as a second (at least a
/// unit) from the top to the bottom, whose title tells the point: the chart
/// stretches to its box, so a dot would be drawn as an ellipse.
fn tooltips(series: Series, samples: &[Sample], span_ms: i64) -> Markup {
    let width = (W * 1000.0 / span_ms.max(1) as f64).max(1.0);
    html! {
        g.tips {
            @for s in samples {
                rect x=(format!("{:.1}", (x(s.t_ms, span_ms) - width / 2.0).max(0.0))) y="0"
                    width=(format!("{width:.1}")) height=(H) {
                    title { (time_text(i64::from(s.t_ms), span_ms)) ": " (value_text(series, series.value(s))) }
                }
            }
        }
    }
}

/// The points of one series as a polyline, in chart coordinates.
fn polyline(series: Series, run: &Run, samples: &[Sample], span_ms: i64) -> Markup {
    let limit = series.limit(run);
    let mut points = String::with_capacity(samples.len() * 14);
    for s in samples {
        let _ = write!(
            points,
            "{:.1},{:.1} ",
            x(s.t_ms, span_ms),
            y(series.value(s), limit)
        );
    }
    html! { polyline class={ "line " (series.class()) } points=(points.trim_end()) {} }
}

/// New points for a chart, to append: a nested `<svg>` in the same coordinates.
fn points_layer(series: Series, run: &Run, samples: &[Sample], span_ms: i64) -> Markup {
    html! {
        svg viewBox={ "0 0 " (W) " " (H) } width=(W) height=(H) preserveAspectRatio="none" overflow="visible" {
            (polyline(series, run, samples, span_ms))
            (tooltips(series, samples, span_ms))
        }
    }
}

/// When the run was killed for memory, the moment (ms after its start).
fn oom_at(run: &Run) -> Option<i64> {
    let killed = run.status == RunStatus::Failed
        && run
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("killed: out of memory"));
    killed.then(|| elapsed_ms(run))
}

/// The chart with its axes: values at the limit, half of it and zero on
/// the left, the limit line named, times below. HTML beside the SVG, not
/// text in it: the SVG stretches to its box and would stretch the text.
fn plot(series: Series, run: &Run, samples: &[Sample], span_ms: i64) -> Markup {
    let limit = series.limit(run);
    let pct = |y: f64| format!("top:{:.1}%", y / H * 100.0);
    let limit_text = match series {
        Series::Memory => format!("limit {}", value_text(series, limit)),
        Series::Cpu => format!(
            "limit {} ({} CPU)",
            value_text(series, limit),
            run.limits.cpus()
        ),
    };
    html! {
        div.plot {
            div.y-axis aria-hidden="true" {
                span style=(pct(LIMIT_Y)) { (value_text(series, limit)) }
                span style=(pct(y(0.5, 1.0))) { (value_text(series, limit / 2.0)) }
                span style=(pct(H)) { "0" }
            }
            div.plot-area {
                (chart(series, run, samples, span_ms))
                span.limit-label style=(pct(LIMIT_Y)) { (limit_text) }
            }
            div.x-axis aria-hidden="true" {
                @for i in 0..=4 { span { (time_text(span_ms * i / 4, span_ms)) } }
            }
        }
    }
}

fn chart(series: Series, run: &Run, samples: &[Sample], span_ms: i64) -> Markup {
    let label = match series {
        Series::Memory => "Memory (working set) against the memory limit",
        Series::Cpu => "CPU (percent of one CPU) against the CPU limit",
    };
    let oom = oom_at(run).filter(|_| matches!(series, Series::Memory));
    html! {
        svg.chart role="img" aria-label=(label) viewBox={ "0 0 " (W) " " (H) } preserveAspectRatio="none" {
            line.grid x1="0" y1=(H) x2=(W) y2=(H) {}
            line.grid x1="0" y1=(y(0.5, 1.0)) x2=(W) y2=(y(0.5, 1.0)) {}
            line.limit x1="0" y1=(LIMIT_Y) x2=(W) y2=(LIMIT_Y) {}
            g id={ (series.class()) "-points" } {
                (points_layer(series, run, samples, span_ms))
            }
            @if let Some(at) = oom {
                line.oom x1=(x(at.min(i32::MAX as i64) as i32, span_ms)) y1="0"
                    x2=(x(at.min(i32::MAX as i64) as i32, span_ms)) y2=(H) {}
            }
        }
    }
}

/// "301 MiB" (a tenth below 10 MiB).
pub fn mib(bytes: i64) -> String {
    let m = bytes as f64 / (1024.0 * 1024.0);
    if m < 10.0 {
        format!("{m:.1} MiB")
    } else {
        format!("{m:.0} MiB")
    }
}

fn seconds(ms: i64) -> String {
    if ms >= 120_000 {
        format!("{} min", ms / 60_000)
    } else {
        format!("{} s", ms / 1000)
    }
}

/// The peaks beside the chart; replaced as new points come.
fn peaks(run: &Run, oob: bool) -> Markup {
    let r = &run.resources;
    let l = &run.limits;
    html! {
        dl #resources-peaks.peaks hx-swap-oob=[oob.then_some("true")] {
            div { dt { "Peak memory" } dd {
                @if let Some(p) = r.peak_memory_bytes { (mib(p)) } @else { "—" }
                " of " (l.memory_mb) " MiB"
            } }
            div { dt { "CPU time" } dd {
                @if let Some(c) = r.cpu_seconds { (format!("{c:.1}")) " CPU-s" } @else { "—" }
            } }
            div { dt { "Peak CPU (% of one CPU)" } dd {
                @match r.peak_cpu_percent {
                    // Busy only between two readings: used, but too briefly to show.
                    Some(c) if c < 0.5 && r.cpu_seconds.is_some_and(|s| s > 0.0) => "under 1 %",
                    Some(c) => (format!("{c:.0} %")),
                    None => "—",
                }
                " of " (format!("{:.0}", l.cpus() * 100.0)) " %"
            } }
            div { dt { "Peak processes" } dd {
                @if let Some(p) = r.peak_pids { (p) } @else { "—" }
                " of " (l.pids_limit)
            } }
        }
    }
}

/// The poller that asks for the points after `after_ms`, while the run runs.
fn poller(run: &Run, after_ms: i32, span_ms: i64) -> Markup {
    html! {
        @if run.status.is_active() {
            div #resources-poller hx-get={ "/runs/" (run.id) "/fragments/resources?after_ms=" (after_ms) "&span_ms=" (span_ms) }
                hx-trigger="every 1s" hx-swap="outerHTML" {}
        }
    }
}

/// The whole section: both charts, the peaks, and the poller while running.
pub fn section(run: &Run, samples: &[Sample]) -> Markup {
    let span = span_ms(run, samples);
    let last = samples.last().map_or(-1, |s| s.t_ms);
    html! {
        section #resources.resources {
            h2 { "CPU and memory" }
            @if samples.is_empty() && !run.status.is_active() {
                p.muted { "No samples: the run did not get to run, or sampling was off." }
            } @else {
                div.resource-charts {
                    div.charts {
                        figure {
                            figcaption {
                                span.key.mem { "Memory" } " · " span.key.limit { "limit " (run.limits.memory_mb) " MiB" }
                                @if oom_at(run).is_some() { " · " span.key.oom { "killed for memory" } }
                            }
                            (plot(Series::Memory, run, samples, span))
                        }
                        figure {
                            figcaption {
                                span.key.cpu { "CPU, % of one CPU" } " · " span.key.limit { "limit " (run.limits.cpus()) " CPU" }
                            }
                            (plot(Series::Cpu, run, samples, span))
                        }
                    }
                    (peaks(run, false))
                }
            }
            (poller(run, last, span))
        }
    }
}

/// What a poll answers within the same time axis: the new points appended
/// to each chart, the peaks, and the next poller.
pub fn update(run: &Run, samples: &[Sample], after_ms: i32, span_ms: i64) -> Markup {
    let last = samples.last().map_or(after_ms, |s| s.t_ms);
    html! {
        (poller(run, last, span_ms))
        @if samples.len() > 1 {
            svg hx-swap-oob="beforeend:#mem-points" { (points_layer(Series::Memory, run, samples, span_ms)) }
            svg hx-swap-oob="beforeend:#cpu-points" { (points_layer(Series::Cpu, run, samples, span_ms)) }
        }
        (peaks(run, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_map_to_the_chart_with_the_limit_below_the_top() {
        assert_eq!(y(0.0, 100.0), H);
        assert_eq!(y(100.0, 100.0), LIMIT_Y);
        assert_eq!(y(1e12, 100.0), 0.0, "clamped");
        assert_eq!(x(500, 1000), W / 2.0);
    }
}
