//! Live resource use of the runs holding environments, from the engine's
//! stats, against their limits; and what the host has.

use futures_util::future::join_all;
use serde::Serialize;

use super::Environment;
use crate::{
    engine::stats::{self, Figures},
    executor::container_name,
    state::AppState,
};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Usage {
    pub environment_id: i32,
    pub run_id: i64,
    /// Share of one CPU, in percent (100 = one full CPU).
    pub cpu_percent: f64,
    pub cpu_limit_percent: f64,
    pub memory_bytes: u64,
    pub memory_limit_bytes: u64,
    pub pids: u64,
}

/// One sample per busy environment, taken in parallel.
pub async fn sample(state: &AppState, envs: &[Environment]) -> Vec<Usage> {
    let Some(executor) = &state.executor else {
        return Vec::new();
    };
    let busy = envs.iter().filter_map(|e| Some((e, e.busy_run_id?)));
    let samples = busy.map(|(env, run_id)| async move {
        let name = container_name(executor.instance(), run_id);
        let stats = state.engine.stats_once(&name).await.ok().flatten()?;
        let figures = Figures::of(&stats)?;
        Some(Usage {
            environment_id: env.id.get(),
            run_id,
            cpu_percent: stats::cpu_percent(&stats),
            cpu_limit_percent: env.limits.cpus() * 100.0,
            memory_bytes: figures.memory_bytes,
            memory_limit_bytes: figures
                .memory_limit_bytes
                .unwrap_or(env.limits.memory_bytes() as u64),
            pids: figures.pids,
        })
    });
    join_all(samples).await.into_iter().flatten().collect()
}
