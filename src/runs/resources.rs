//! A run's resource use: `GET /api/v1/runs/{id}/resources` (with
//! `?after_ms=` for live polling) and the run page's chart fragment.

use axum::{
    extract::State,
    http::HeaderValue,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::chart;
use crate::{
    error::AppResult,
    state::AppState,
    store::{
        self,
        resources::{self, Sample},
    },
    web::{
        extract::{Json, Path, Query},
        html_error::PageResult,
    },
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AfterQuery {
    /// Only samples taken later than this many ms after the start.
    pub after_ms: Option<i32>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ResourceLimitsJson)]
pub struct LimitsJson {
    pub cpus: f64,
    pub cpu_percent: f64,
    pub memory_mb: i32,
    pub memory_bytes: i64,
    pub pids_limit: i32,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ResourcesJson {
    pub limits: LimitsJson,
    pub peak_memory_bytes: Option<i64>,
    pub cpu_seconds: Option<f64>,
    pub peak_pids: Option<i32>,
    pub samples: Vec<Sample>,
}

/// A run's CPU, memory and pids over time against its limits, with its
/// peaks; `after_ms` gives only newer samples (live polling).
#[utoipa::path(get, path = "/api/v1/runs/{id}/resources", tag = "runs",
    params(("id" = i64, Path, description = "the run's id"), AfterQuery),
    responses((status = 200, body = ResourcesJson), (status = 404, body = crate::error::ErrorBody)))]
pub async fn api(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(query): Query<AfterQuery>,
) -> AppResult<Json<ResourcesJson>> {
    let run = store::runs::get(&state.db, id).await?;
    let mut samples = resources::samples(&state.db, id, query.after_ms).await?;
    if let Some(after) = query.after_ms {
        samples.retain(|s| s.t_ms > after);
    }
    let l = &run.limits;
    Ok(Json(ResourcesJson {
        limits: LimitsJson {
            cpus: l.cpus(),
            cpu_percent: l.cpus() * 100.0,
            memory_mb: l.memory_mb,
            memory_bytes: l.memory_bytes(),
            pids_limit: l.pids_limit,
        },
        peak_memory_bytes: run.resources.peak_memory_bytes,
        cpu_seconds: run.resources.cpu_seconds,
        peak_pids: run.resources.peak_pids,
        samples,
    }))
}

#[derive(Debug, Deserialize)]
pub struct FragmentQuery {
    pub after_ms: i32,
    pub span_ms: i64,
}

/// The chart's poll: only the new points while they fit the chart's time
/// axis; the whole section (without a poller once the run is over) otherwise.
pub async fn fragment(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(query): Query<FragmentQuery>,
) -> PageResult<Response> {
    // The status first: points stored before it turned final are then all read.
    let run = store::runs::get(&state.db, id).await?;
    let samples = resources::samples(&state.db, id, Some(query.after_ms)).await?;
    let fits = samples
        .last()
        .is_none_or(|s| i64::from(s.t_ms) <= query.span_ms)
        && chart::elapsed_ms(&run) <= query.span_ms;
    if run.status.is_active() && fits {
        return Ok(chart::update(&run, &samples, query.after_ms, query.span_ms).into_response());
    }
    let all = resources::samples(&state.db, id, None).await?;
    let mut response = chart::section(&run, &all).into_response();
    let headers = response.headers_mut();
    headers.insert("HX-Retarget", HeaderValue::from_static("#resources"));
    headers.insert("HX-Reswap", HeaderValue::from_static("outerHTML"));
    Ok(response)
}
