//! A run as the `runs` table holds it, and its status.

use serde::Serialize;
use time::OffsetDateTime;

use super::{resources::Resources, Summary};
use crate::{environment_id::EnvironmentId, limits::Limits};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type, utoipa::ToSchema)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Success,
    Failed,
    Error,
    Cancelled,
    TimedOut,
}

impl RunStatus {
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Success,
        RunStatus::Failed,
        RunStatus::Error,
        RunStatus::Cancelled,
        RunStatus::TimedOut,
    ];

    pub fn is_active(self) -> bool {
        matches!(self, RunStatus::Queued | RunStatus::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Success => "success",
            RunStatus::Failed => "failed",
            RunStatus::Error => "error",
            RunStatus::Cancelled => "cancelled",
            RunStatus::TimedOut => "timed_out",
        }
    }

    /// As a person reads it.
    pub fn label(self) -> &'static str {
        match self {
            RunStatus::TimedOut => "timed out",
            other => other.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Run {
    pub id: i64,
    pub username: String,
    pub environment_id: EnvironmentId,
    pub files: Vec<String>,
    pub file_sha256: Vec<String>,
    pub status: RunStatus,
    pub holds_environment: bool,
    pub reason: Option<String>,
    pub exit_code: Option<i32>,
    #[sqlx(flatten)]
    pub limits: Limits,
    pub created_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub log_lines: i32,
    #[sqlx(flatten)]
    pub summary: Summary,
    pub current_test: Option<String>,
    pub ready_at: Option<OffsetDateTime>,
    pub exited_at: Option<OffsetDateTime>,
    pub warm: Option<bool>,
    /// The project whose tree went with the run, the tree's sha256, and the
    /// image of its container.
    pub project: Option<String>,
    pub tree_sha256: Option<String>,
    /// The client-sent tree its files are in (`None`: the tests folder).
    pub tree_id: Option<String>,
    pub image: Option<String>,
    /// Set while the executor gets the project's dependency image.
    pub installing_since: Option<OffsetDateTime>,
    /// The tests it runs (pytest node ids within `files`); `None`: all.
    pub node_ids: Option<Vec<String>>,
    /// The run whose failed tests this one runs again.
    pub rerun_of: Option<i64>,
    /// The check this run is a step of.
    pub check_id: Option<i64>,
    /// A sharded run: how many shards it asked for (its shards are runs
    /// with `shard_of` pointing here).
    pub shards: Option<i32>,
    /// A shard: the sharded run it is part of, and which shard (from 1).
    pub shard_of: Option<i64>,
    pub shard_index: Option<i32>,
    /// The dependency image the run needed (`dependency_images.key`).
    pub dependency_key: Option<String>,
    /// The worker (by name) that executes or executed the run.
    pub worker_name: Option<String>,
    /// How often someone asked where it is ("Where is it now?").
    pub stacks_asked: i32,
    /// Where a queued run stands with the workers (set by
    /// `runs::get_placed`, not stored).
    #[sqlx(skip)]
    pub placement: Option<super::workers::Placement>,
    /// Whether pytest's JUnit report is kept (`/runs/{id}/junit.xml`).
    pub has_junit: bool,
    /// Peak memory, CPU-seconds and peak pids, as sampled.
    #[sqlx(flatten)]
    pub resources: Resources,
}

impl Run {
    /// Why a queued run has not started yet; `None` once it has.
    pub fn waiting_for(&self) -> Option<String> {
        match (self.status, self.holds_environment) {
            (RunStatus::Queued, true) => match &self.placement {
                Some(p) if p.problem.is_some() => p.problem.clone(),
                // Taken in a moment (an idle host): nothing to wait for.
                Some(p) if p.free_slot => None,
                _ => Some(
                    "waiting for a free executor slot (the host runs a limited number at once)"
                        .into(),
                ),
            },
            (RunStatus::Queued, false) => Some(format!(
                "waiting in line for environment {}",
                self.environment_id
            )),
            (RunStatus::Running, _) => self.installing_since.map(|since| {
                let seconds = (OffsetDateTime::now_utc() - since).whole_seconds().max(0);
                crate::dependencies::waiting_text(seconds)
            }),
            _ => None,
        }
    }

    /// Where the time went: (phase, duration) for the phases known so far.
    pub fn phases(&self) -> Vec<(&'static str, time::Duration)> {
        let points = [
            ("queued", Some(self.created_at), self.started_at),
            ("container ready", self.started_at, self.ready_at),
            ("pytest", self.ready_at, self.exited_at),
            ("stored", self.exited_at, self.finished_at),
        ];
        points
            .into_iter()
            .filter_map(|(name, from, to)| Some((name, to? - from?)))
            .collect()
    }
}

/// From start to finish, or to now while running; `None` before the start.
pub fn duration(
    started_at: Option<OffsetDateTime>,
    finished_at: Option<OffsetDateTime>,
) -> Option<time::Duration> {
    let start = started_at?;
    let end = finished_at.unwrap_or_else(OffsetDateTime::now_utc);
    Some(end - start)
}
