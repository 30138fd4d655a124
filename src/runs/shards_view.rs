//! A sharded run's shards on its page: each shard's run, environment,
//! status, the test it runs now and how many it took; and for a shard, the
//! run it is part of. In the status panel, so it refreshes with it.

use maud::{html, Markup};

use super::components::status_badge;
use crate::store::shards::{self, ShardState};
use crate::{error::AppResult, state::AppState, store::Run};

/// A sharded run's queue and shards.
pub struct Shards {
    pub shards: Vec<ShardState>,
    /// Tests in the queue, and of those not taken yet.
    pub total: i64,
    pub waiting: i64,
}

pub async fn of(state: &AppState, run: &Run) -> AppResult<Option<Shards>> {
    if run.shards.is_none() {
        return Ok(None);
    }
    let (shards, total, waiting) = shards::progress(&state.db, run.id).await?;
    Ok(Some(Shards {
        shards,
        total,
        waiting,
    }))
}

pub fn section(s: &Shards) -> Markup {
    let reported: i64 = s.shards.iter().map(|x| x.reported).sum();
    html! {
        div #shards.shards {
            p.progress-text {
                @if s.total == 0 { "Sharded over " (s.shards.len()) " environments: collecting the tests…" }
                @else {
                    (reported) " of " (s.total) " tests reported over " (s.shards.len()) " shards"
                    @if s.waiting > 0 { " · " (s.waiting) " waiting to be taken" }
                }
            }
            div.overflow-auto { table.shards-table {
                thead { tr { th { "Shard" } th { "Run" } th { "Environment" } th { "Status" } th { "Tests taken" } th { "Failed" } th { "Now running" } } }
                tbody {
                    @for shard in &s.shards {
                        tr {
                            td data-label="Shard" { (shard.shard_index) }
                            td data-label="Run" { a href={ "/runs/" (shard.run_id) } { "#" (shard.run_id) } }
                            td data-label="Environment" { (shard.environment_id) }
                            td data-label="Status" { (status_badge(shard.status)) }
                            td data-label="Tests taken" { (shard.taken) }
                            td data-label="Failed" { (shard.failed) }
                            td data-label="Now running" {
                                @if let (true, Some(test)) = (shard.status.is_active(), &shard.current_test) { code { (test) } }
                                @else { span.muted { "—" } }
                            }
                        }
                    }
                }
            } }
        }
    }
}

/// "Shard 2 of run #41" on a shard's page.
pub fn part_of(run: &Run) -> Option<Markup> {
    let (parent, index) = (run.shard_of?, run.shard_index?);
    Some(html! {
        div { dt { "Shard" } dd { (index) " of " a href={ "/runs/" (parent) } { "run #" (parent) } } }
    })
}

/// A sharded run's queue and shards, as JSON.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ShardsJson {
    /// Tests in the queue (once a shard collected them), and of those not taken yet.
    pub tests: i64,
    pub waiting: i64,
    pub shards: Vec<ShardState>,
}

/// A sharded run's shards: each one's run, environment, status, the test
/// it runs now and how many it took and reported.
#[utoipa::path(get, path = "/api/v1/runs/{id}/shards", tag = "runs",
    params(("id" = i64, Path, description = "the sharded run")),
    responses(
        (status = 200, body = ShardsJson),
        (status = 404, description = "no such run, or it is not sharded", body = crate::error::ErrorBody),
    ))]
pub async fn api(
    axum::extract::State(state): axum::extract::State<AppState>,
    crate::web::extract::Path(id): crate::web::extract::Path<i64>,
) -> AppResult<crate::web::extract::Json<ShardsJson>> {
    let run = crate::store::runs::get(&state.db, id).await?;
    let Some(s) = of(&state, &run).await? else {
        return Err(crate::error::AppError::NotFound(format!(
            "run #{id} is not sharded"
        )));
    };
    Ok(crate::web::extract::Json(ShardsJson {
        tests: s.total,
        waiting: s.waiting,
        shards: s.shards,
    }))
}
