//! Where a run hung, or is now: every thread's Python stack shortly before
//! its deadline, or when someone asked ("Where is it now?", `ask`), as the
//! runner sent them (`runner-image/te_hang.py`), bounded, kept with the run
//! (`runs.hang_stacks`, the latest wins) and shown on its page.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::{
    error::{AppError, AppResult},
    store::RunStatus,
};

const MAX_THREADS: usize = 16;
const MAX_FRAMES: usize = 40;
const MAX_TEXT: usize = 300;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Stacks {
    /// The test running when they were taken.
    pub test: Option<String>,
    /// Taken because someone asked, not before the deadline.
    #[serde(default)]
    pub asked: bool,
    /// The main thread first.
    pub threads: Vec<ThreadStack>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ThreadStack {
    pub name: String,
    #[serde(default)]
    pub main: bool,
    /// Outermost first: `[file, line, function]`; a run's own files are
    /// named as pytest names them, others by their full path.
    #[schema(value_type = Vec<Vec<String>>)]
    pub frames: Vec<(String, i64, String)>,
}

fn cap(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let mut at = MAX_TEXT - '…'.len_utf8();
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
        text.push('…');
    }
    text
}

impl Stacks {
    /// Within the bounds, whatever the runner (or the tested code) sent.
    pub fn capped(self) -> Stacks {
        Stacks {
            test: self.test.map(cap),
            asked: self.asked,
            threads: self
                .threads
                .into_iter()
                .take(MAX_THREADS)
                .map(|t| {
                    let skip = t.frames.len().saturating_sub(MAX_FRAMES);
                    ThreadStack {
                        name: cap(t.name),
                        main: t.main,
                        frames: t
                            .frames
                            .into_iter()
                            .skip(skip)
                            .map(|(file, line, function)| (cap(file), line.max(0), cap(function)))
                            .collect(),
                    }
                })
                .collect(),
        }
    }

    /// Where it is stuck: the innermost frame of the main thread in one of
    /// the run's own files (a relative path), else its innermost frame.
    pub fn stuck_at(&self) -> Option<&(String, i64, String)> {
        let main = self
            .threads
            .iter()
            .find(|t| t.main)
            .or(self.threads.first())?;
        main.frames
            .iter()
            .rev()
            .find(|(file, _, _)| !file.starts_with('/') && !file.starts_with('<'))
            .or(main.frames.last())
    }
}

/// The stacks kept with run `id`, if it hung long enough to send them.
pub async fn of_run(db: &PgPool, id: i64) -> AppResult<Option<Stacks>> {
    let stacks: Option<Option<sqlx::types::Json<Stacks>>> =
        sqlx::query_scalar("select hang_stacks from runs where id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(stacks.flatten().map(|json| json.0))
}

/// Asks a running run where it is: raises its `stacks_asked`, which the
/// executor following it turns into a signal to its runner. Refused unless
/// the run is running (a queued one has no stack yet, a finished one none).
pub async fn ask(db: &PgPool, id: i64) -> AppResult<()> {
    let asked: Option<i64> = sqlx::query_scalar(
        "update runs set stacks_asked = stacks_asked + 1
          where id = $1 and status = 'running' returning id",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    if asked.is_some() {
        return Ok(());
    }
    let status: Option<RunStatus> = sqlx::query_scalar("select status from runs where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?;
    match status {
        None => Err(AppError::NotFound(format!("run #{id} does not exist"))),
        Some(status) => Err(AppError::Conflict(format!(
            "run #{id} is {}: only a running run can say where it is",
            status.label()
        ))),
    }
}
