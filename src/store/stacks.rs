//! Where a run hung: every thread's Python stack shortly before its
//! deadline, as the runner sent them (`runner-image/te_hang.py`), bounded,
//! kept with the run (`runs.hang_stacks`) and shown on its page.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::error::AppResult;

const MAX_THREADS: usize = 16;
const MAX_FRAMES: usize = 40;
const MAX_TEXT: usize = 300;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Stacks {
    /// The test running when they were taken.
    pub test: Option<String>,
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
