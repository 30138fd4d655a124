//! Live resource use of the runs holding environments (with their
//! services), from the engine's stats, against their limits; and what the
//! host has.

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
        let mut usage = Usage {
            environment_id: env.id.get(),
            run_id,
            cpu_percent: stats::cpu_percent(&stats),
            cpu_limit_percent: env.limits.cpus() * 100.0,
            memory_bytes: figures.memory_bytes,
            memory_limit_bytes: figures
                .memory_limit_bytes
                .unwrap_or(env.limits.memory_bytes() as u64),
            pids: figures.pids,
        };
        add_services(state, &mut usage, executor.services_of(run_id)).await;
        Some(usage)
    });
    join_all(samples).await.into_iter().flatten().collect()
}

/// A run's services (`[[services]]`) count with it: each has the run's
/// limits, so the limits shown grow with them.
async fn add_services(state: &AppState, usage: &mut Usage, services: Vec<String>) {
    let (cpu_limit, memory_limit) = (usage.cpu_limit_percent, usage.memory_limit_bytes);
    let readings = join_all(services.iter().map(|name| state.engine.stats_once(name))).await;
    for stats in readings.into_iter().filter_map(|r| r.ok().flatten()) {
        let Some(figures) = Figures::of(&stats) else {
            continue;
        };
        usage.cpu_percent += stats::cpu_percent(&stats);
        usage.cpu_limit_percent += cpu_limit;
        usage.memory_bytes += figures.memory_bytes;
        usage.memory_limit_bytes += memory_limit;
        usage.pids += figures.pids;
    }
}
