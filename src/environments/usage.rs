//! Live resource use of the runs holding environments, from the engine's
//! stats, against their limits; and what the host has.

use futures_util::future::join_all;
use serde::Serialize;

use super::Environment;
use crate::{executor::container_name, state::AppState};

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
        let cpu = stats.cpu_stats.as_ref()?;
        let pre = stats.precpu_stats.as_ref()?;
        let used = |c: &bollard::models::ContainerCpuStats| {
            c.cpu_usage
                .as_ref()
                .and_then(|u| u.total_usage)
                .unwrap_or(0)
        };
        let cpu_delta = used(cpu).saturating_sub(used(pre)) as f64;
        let system_delta = cpu
            .system_cpu_usage
            .unwrap_or(0)
            .saturating_sub(pre.system_cpu_usage.unwrap_or(0)) as f64;
        let online = f64::from(cpu.online_cpus.unwrap_or(1));
        let cpu_percent = if system_delta > 0.0 {
            cpu_delta / system_delta * online * 100.0
        } else {
            0.0
        };
        let memory = stats.memory_stats.as_ref()?;
        let cache = memory
            .stats
            .as_ref()
            .and_then(|s| s.get("cache").or_else(|| s.get("inactive_file")).copied())
            .unwrap_or(0);
        Some(Usage {
            environment_id: env.id.get(),
            run_id,
            cpu_percent,
            cpu_limit_percent: env.limits.cpus() * 100.0,
            memory_bytes: memory.usage.unwrap_or(0).saturating_sub(cache),
            memory_limit_bytes: memory.limit.unwrap_or(env.limits.memory_bytes() as u64),
            pids: stats
                .pids_stats
                .as_ref()
                .and_then(|p| p.current)
                .unwrap_or(0),
        })
    });
    join_all(samples).await.into_iter().flatten().collect()
}
