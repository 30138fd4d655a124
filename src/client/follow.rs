//! Following a run: its new log lines through the `after=` cursor, a
//! progress line when its test counts change, and its verdict at the end.

use std::{
    io::{IsTerminal, Write},
    time::Duration,
};

use super::{
    api::{Api, ApiError, LogLine, Run},
    sanitize, Verdict,
};

/// How long each request for a running run waits for its end (`?wait=`):
/// the verdict comes as soon as the run ends, the logs and the progress
/// every half second.
const POLL: Duration = Duration::from_millis(500);
/// The page size the API allows at most.
const PAGE: usize = 5000;
/// Failed requests in a row tolerated (a server restarting) before giving up.
const RETRIES: u32 = 30;

pub struct Follower<'a> {
    api: &'a Api,
    run_id: i64,
    after: Option<i32>,
    /// Print the logs and the progress (not only the verdict).
    pub verbose: bool,
    colours: bool,
    last_progress: Option<String>,
    last_waiting: Option<String>,
}

impl<'a> Follower<'a> {
    pub fn new(api: &'a Api, run_id: i64) -> Follower<'a> {
        Follower {
            api,
            run_id,
            after: None,
            verbose: true,
            colours: std::io::stdout().is_terminal(),
            last_progress: None,
            last_waiting: None,
        }
    }

    /// Prints the log lines stored so far that were not printed yet.
    pub async fn print_new_logs(&mut self) -> Result<(), ApiError> {
        loop {
            let mut query = vec![("limit", PAGE.to_string())];
            if let Some(after) = self.after {
                query.push(("after", after.to_string()));
            }
            let page: Vec<LogLine> = self
                .api
                .get(&format!("/api/v1/runs/{}/logs", self.run_id), &query)
                .await?;
            let mut out = std::io::stdout().lock();
            for line in &page {
                if self.verbose {
                    let _ = writeln!(out, "{}", sanitize(&line.line, self.colours));
                }
                self.after = Some(line.seq);
            }
            let _ = out.flush();
            if page.len() < PAGE {
                return Ok(());
            }
        }
    }

    /// Follows the run until it is over and returns its verdict.
    pub async fn follow(&mut self) -> Verdict {
        let mut failures = 0;
        // The first answer at once, so what the run waits for shows.
        let mut wait = Duration::ZERO;
        loop {
            // The run first, then its logs: once it reads as over, every
            // line it will ever have is stored and printed below.
            let asked = std::time::Instant::now();
            let step = async {
                let run = self.api.run_waiting(self.run_id, wait).await?;
                self.print_new_logs().await?;
                Ok::<Run, ApiError>(run)
            };
            match step.await {
                Ok(run) => {
                    failures = 0;
                    self.progress(&run);
                    if run.is_over() {
                        return self.verdict(&run);
                    }
                    // The request waited already (unless the server did
                    // not: then the rest of the pause).
                    tokio::time::sleep(wait.saturating_sub(asked.elapsed())).await;
                    wait = POLL;
                    continue;
                }
                Err(err @ ApiError::Refused { status: 404, .. }) => {
                    eprintln!("error: {err}");
                    return Verdict::Error;
                }
                Err(err) => {
                    failures += 1;
                    if failures > RETRIES {
                        eprintln!("error: {err}; giving up on run #{}", self.run_id);
                        return Verdict::Error;
                    }
                    if failures == 1 {
                        eprintln!("warning: {err}; retrying");
                    }
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// "waiting: ..." and "tests: 3/5 · 3 passed · now test_x.py::t", on
    /// stderr, each only when it changed; the counts once more at the end,
    /// so the last line reads "tests: 5/5".
    fn progress(&mut self, run: &Run) {
        if !self.verbose {
            return;
        }
        self.waiting(run.waiting_for.as_deref());
        let summary = &run.summary;
        let over_with_tests = run.is_over() && summary.collected.is_some();
        if run.status != "running" && !over_with_tests {
            return;
        }
        let total = summary
            .collected
            .map_or_else(|| "?".to_string(), |n| n.to_string());
        let mut line = format!("tests: {}/{total} · {}", summary.done(), summary.text());
        if let Some(test) = run.current_test.as_ref().filter(|_| !run.is_over()) {
            line.push_str(&format!(" · now {}", sanitize(&cut(test, 200), false)));
        }
        if self.last_progress.as_ref() != Some(&line) {
            eprintln!("{line}");
            self.last_progress = Some(line);
        }
    }

    /// Says why the run waits, when that changed.
    fn waiting(&mut self, now: Option<&str>) {
        if now != self.last_waiting.as_deref() {
            if let Some(waiting) = now {
                eprintln!("waiting: {}", sanitize(waiting, false));
            }
            self.last_waiting = now.map(str::to_owned);
        }
    }

    /// Prints the verdict line on stdout and maps the status to an exit code.
    fn verdict(&self, run: &Run) -> Verdict {
        let summary = &run.summary;
        let total = summary
            .collected
            .map_or_else(String::new, |n| format!(" of {n}"));
        let mut line = format!("run #{} {}: {}{total}", run.id, run.status, summary.text());
        let counts = summary.text();
        if let Some(reason) = run
            .reason
            .as_deref()
            .filter(|r| !r.trim().is_empty() && *r != counts)
        {
            line.push_str(" — ");
            line.push_str(&sanitize(&cut(reason, 2000), false));
        }
        println!("{line}");
        match run.status.as_str() {
            "success" => Verdict::Success,
            "failed" => Verdict::TestsFailed,
            _ => Verdict::Error,
        }
    }
}

/// At most `max` characters of `text`, with "…" when cut.
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
