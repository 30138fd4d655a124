//! Small pieces shared by the pages: status badges, durations, times, and
//! log lines with their ANSI colours.

use maud::{html, Markup};
use time::{macros::format_description, OffsetDateTime};

pub fn outcome_badge(outcome: &str) -> Markup {
    html! { span class={ "badge outcome-" (outcome) } { (outcome) } }
}

/// "1 m 05 s", "2.3 s", "340 ms"
pub fn duration(d: time::Duration) -> String {
    let ms = d.whole_milliseconds().max(0);
    match ms {
        0..=999 => format!("{ms} ms"),
        1000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{} m {:02} s", ms / 60_000, (ms / 1000) % 60),
        _ => format!("{} h {:02} m", ms / 3_600_000, (ms / 60_000) % 60),
    }
}

/// A time as a `<time>` element: readable UTC text, machine-readable value.
pub fn timestamp(t: Option<OffsetDateTime>) -> Markup {
    time_element(t, |t| {
        t.format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
        ))
    })
}

/// A compact time for tables: the time of day when it is today (UTC),
/// else the date.
pub fn short_time(t: Option<OffsetDateTime>) -> Markup {
    time_element(t, |t| {
        if t.date() == OffsetDateTime::now_utc().date() {
            t.format(format_description!("[hour]:[minute]:[second]"))
        } else {
            t.format(format_description!("[year]-[month]-[day]"))
        }
    })
}

fn time_element(
    t: Option<OffsetDateTime>,
    text: impl Fn(OffsetDateTime) -> Result<String, time::error::Format>,
) -> Markup {
    match t {
        None => html! { span.muted { "—" } },
        Some(t) => {
            let iso = t
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let text = text(t).unwrap_or_default();
            html! { time datetime=(iso) title=(iso) { (text) } }
        }
    }
}

/// One log line with ANSI SGR colours turned into classes; every other
/// escape sequence is dropped. Text is escaped by maud.
pub fn ansi_line(text: &str) -> Markup {
    let segments = ansi_segments(text);
    html! {
        @for (class, segment) in segments {
            @if class.is_empty() { (segment) } @else { span class=(class) { (segment) } }
        }
    }
}

/// Splits a line into (classes, text) pieces.
pub fn ansi_segments(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut style = Style::default();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            current.push(c);
            continue;
        }
        if chars.peek() != Some(&'[') {
            continue;
        }
        chars.next();
        let mut params = String::new();
        let mut last = None;
        for p in chars.by_ref() {
            if p.is_ascii_digit() || p == ';' {
                params.push(p);
            } else {
                last = Some(p);
                break;
            }
        }
        if last == Some('m') {
            if !current.is_empty() {
                out.push((style.classes(), std::mem::take(&mut current)));
            }
            style.apply(&params);
        }
    }
    if !current.is_empty() {
        out.push((style.classes(), current));
    }
    out
}

#[derive(Default, Clone, Copy)]
struct Style {
    bold: bool,
    fg: Option<u8>,
}

impl Style {
    fn apply(&mut self, params: &str) {
        let codes: Vec<u32> = params.split(';').map(|p| p.parse().unwrap_or(0)).collect();
        for code in codes {
            match code {
                0 => *self = Style::default(),
                1 => self.bold = true,
                22 => self.bold = false,
                30..=37 => self.fg = Some((code - 30) as u8),
                90..=97 => self.fg = Some((code - 90 + 8) as u8),
                39 => self.fg = None,
                _ => {}
            }
        }
    }

    fn classes(&self) -> String {
        let mut classes = Vec::new();
        if self.bold {
            classes.push("ansi-bold".to_string());
        }
        if let Some(fg) = self.fg {
            classes.push(format!("ansi-fg{fg}"));
        }
        classes.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_become_classes_and_other_escapes_vanish() {
        let segments =
            ansi_segments("\u{1b}[32mok\u{1b}[0m plain \u{1b}[1;31mbad\u{1b}[0m\u{1b}[2K");
        assert_eq!(
            segments,
            vec![
                ("ansi-fg2".to_string(), "ok".to_string()),
                (String::new(), " plain ".to_string()),
                ("ansi-bold ansi-fg1".to_string(), "bad".to_string()),
            ]
        );
    }

    #[test]
    fn log_text_is_escaped() {
        let html = ansi_line("<script>alert(1)</script>").into_string();
        assert_eq!(html, "&lt;script&gt;alert(1)&lt;/script&gt;");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(time::Duration::milliseconds(340)), "340 ms");
        assert_eq!(duration(time::Duration::milliseconds(2345)), "2.3 s");
        assert_eq!(duration(time::Duration::seconds(65)), "1 m 05 s");
    }
}
