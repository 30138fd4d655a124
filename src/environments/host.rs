//! What the host has, what the running runs are allowed, and what the
//! engine says it cannot enforce.

use maud::{html, Markup};

use super::{changes::HostCapacity, Environment};
use crate::{error::AppResult, state::AppState};

pub async fn capacity(state: &AppState) -> AppResult<HostCapacity> {
    let info = state.engine.info().await?;
    Ok(HostCapacity {
        cpus: info.cpus.max(1),
        memory_mb: info.memory_bytes / (1024 * 1024),
    })
}

/// Engine warnings turned into what they mean for the limits.
pub fn unenforced(warnings: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for w in warnings {
        let lower = w.to_lowercase();
        let meaning = if lower.contains("swap") {
            "memory swap limits are not enforced (a run may use swap beyond its memory limit)"
        } else if lower.contains("cfs") || lower.contains("cpu") {
            "CPU limits are not enforced"
        } else if lower.contains("pids") {
            "process limits are not enforced"
        } else if lower.contains("memory") {
            "memory limits are not enforced"
        } else {
            continue;
        };
        out.push(meaning.to_string());
    }
    out.dedup();
    out
}

/// The host card of the environments page.
pub async fn describe(state: &AppState, envs: &[Environment]) -> Markup {
    let info = match state.engine.info().await {
        Ok(info) => info,
        Err(err) => {
            return html! { article.warning { p { "The Docker engine does not answer: " (format!("{err:#}")) } } }
        }
    };
    let busy: Vec<&Environment> = envs.iter().filter(|e| e.busy_run_id.is_some()).collect();
    // Warm sandboxes count too: each may use the pool's default limits
    // until a run takes it and gets its own.
    let warm = state.executor.as_ref().map_or(0, |e| e.pool_status().ready);
    let pool_limits = crate::limits::DEFAULT_LIMITS;
    let cpus = busy.iter().map(|e| e.limits.cpus()).fold(0.0, |a, b| a + b)
        + warm as f64 * pool_limits.cpus();
    let memory: i64 = busy
        .iter()
        .map(|e| i64::from(e.limits.memory_mb))
        .sum::<i64>()
        + warm as i64 * i64::from(pool_limits.memory_mb);
    let host_memory = info.memory_bytes / (1024 * 1024);
    let parallel = state.config.max_parallel_runs();
    html! {
        article.host {
            dl.timings {
                div { dt { "Host" } dd { (info.cpus) " CPUs · " (host_memory) " MiB" } }
                div { dt { "Runs at once" } dd { "up to " (parallel) } }
                div { dt { "Held now" } dd { (busy.len()) @if busy.len() == 1 { " environment" } @else { " environments" } } }
                div { dt { "Warm sandboxes" } dd { (warm) " ready" } }
                div { dt { "Allowed in all" } dd { (format!("{cpus:.2}")) " CPUs · " (memory) " MiB" } }
            }
            @if cpus > info.cpus as f64 || memory > host_memory {
                p.error { "The running runs are allowed more than the host has: they will compete for it." }
            }
            @for w in unenforced(&info.warnings) { p.error { "On this host " (w) "." } }
            @if !info.warnings.is_empty() {
                details { summary { "Docker engine warnings" } ul { @for w in &info.warnings { li { (w) } } } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_warnings_say_which_limit_is_not_enforced() {
        let warnings = vec![
            "WARNING: No swap limit support".to_string(),
            "WARNING: No cpu cfs quota support".to_string(),
            "WARNING: bridge-nf-call-iptables is disabled".to_string(),
        ];
        let out = unenforced(&warnings);
        assert_eq!(out.len(), 2);
        assert!(out[0].contains("swap") && out[1].contains("CPU"));
    }
}
