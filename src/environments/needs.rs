//! What each environment really needs, from its last 20 finished runs: the
//! 95th percentile of their peak memory and peak CPU against the limits,
//! OOM kills and timeouts, and a hint in plain words.

use axum::extract::State;
use maud::{html, Markup};
use serde::Serialize;

use super::Environment;
use crate::{
    error::AppResult,
    limits::Limits,
    state::AppState,
    store::resources::{self, Needs},
    web::extract::Json,
};

const MIB: f64 = 1024.0 * 1024.0;

/// An environment's needs and what to do about them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NeedsJson {
    #[serde(flatten)]
    pub needs: Needs,
    pub hint: Option<String>,
}

/// Memory to suggest for runs that never went above `peak_mib`: twice
/// that, rounded up to a power of two, at least 64 MiB.
fn enough_mib(peak_mib: f64) -> i64 {
    ((peak_mib * 2.0).clamp(64.0, 1e12).ceil() as u64).next_power_of_two() as i64
}

/// Finished runs an environment needs before it gets a hint: one run says
/// little about the next ("64 MiB would do" after a single run misleads).
pub const MIN_RUNS_FOR_HINT: i64 = 5;

/// The hint in plain words, or `None` when the limits fit (or fewer than
/// `MIN_RUNS_FOR_HINT` runs finished).
pub fn hint(n: &Needs, limits: &Limits) -> Option<String> {
    if n.runs < MIN_RUNS_FOR_HINT {
        return None;
    }
    let limit = f64::from(limits.memory_mb);
    let mut hints = Vec::new();
    let p95 = n.p95_peak_memory_bytes.map(|b| b / MIB);
    if n.oom_kills > 0 || p95.is_some_and(|p| p >= 0.9 * limit) {
        let peak = p95.map_or(String::new(), |p| {
            format!("runs peak at {:.0} of {} MiB and ", p, limits.memory_mb)
        });
        hints.push(format!(
            "{peak}{} of the last {} were killed for memory: raise memory",
            n.oom_kills, n.runs
        ));
    } else if let Some(max) = n.max_peak_memory_bytes.map(|b| b as f64 / MIB) {
        let enough = enough_mib(max);
        if n.sampled == n.runs && enough < i64::from(limits.memory_mb) {
            hints.push(format!(
                "never above {:.0} MiB of {}: {enough} MiB would do",
                max.ceil(),
                limits.memory_mb
            ));
        }
    }
    let cpu_limit = limits.cpus() * 100.0;
    if let Some(cpu) = n.p95_peak_cpu_percent.filter(|c| *c >= 0.9 * cpu_limit) {
        hints.push(format!(
            "CPU peaks at {cpu:.0}% of {cpu_limit:.0}%: more CPU would make runs faster"
        ));
    }
    if n.timeouts > 0 {
        hints.push(format!(
            "{} of the last {} timed out: raise the time limit or speed the tests up",
            n.timeouts, n.runs
        ));
    }
    (!hints.is_empty()).then(|| hints.join("; "))
}

/// `GET /api/v1/environments/needs`: each environment's needs over its last
/// 20 finished runs (p95 of peak memory and CPU, OOM kills, timeouts) and a
/// hint (from 5 finished runs on).
#[utoipa::path(get, path = "/api/v1/environments/needs", tag = "environments",
    responses((status = 200, body = [NeedsJson])))]
pub async fn api(State(state): State<AppState>) -> AppResult<Json<Vec<NeedsJson>>> {
    let envs = super::store::list(&state.db).await?;
    let needs = resources::needs(&state.db).await?;
    Ok(Json(with_hints(&envs, needs)))
}

fn with_hints(envs: &[Environment], needs: Vec<Needs>) -> Vec<NeedsJson> {
    needs
        .into_iter()
        .filter_map(|n| {
            let env = envs.iter().find(|e| e.id.get() == n.environment_id)?;
            Some(NeedsJson {
                hint: hint(&n, &env.limits),
                needs: n,
            })
        })
        .collect()
}

/// The operator view's section: environments with finished runs only.
pub async fn section(state: &AppState, envs: &[Environment]) -> AppResult<Markup> {
    let needs = resources::needs(&state.db).await?;
    let rows: Vec<(NeedsJson, &Environment)> = with_hints(envs, needs)
        .into_iter()
        .filter(|n| n.needs.runs > 0)
        .filter_map(|n| {
            let env = envs.iter().find(|e| e.id.get() == n.needs.environment_id)?;
            Some((n, env))
        })
        .collect();
    let mib = |b: Option<f64>| b.map_or("—".to_owned(), |b| format!("{:.0}", b / MIB));
    Ok(html! {
        section #needs {
            h2 { "What the runs need" }
            p.muted { "Over each environment's last " (resources::RECENT_RUNS) " finished runs: the 95th percentile of their peaks." }
            @if rows.is_empty() { p.muted { "No finished runs yet." } }
            @else {
                div.overflow-auto { table.needs-table {
                    thead { tr {
                        th { "Env" } th { "Runs" } th { "Memory p95 / limit" } th { "CPU p95 / limit" }
                        th { "OOM kills" } th { "Timeouts" } th { "Hint" }
                    } }
                    tbody { @for (n, env) in &rows {
                        tr #{ "needs-" (env.id) } {
                            td { (env.id) }
                            td { (n.needs.runs) }
                            td { (mib(n.needs.p95_peak_memory_bytes)) " / " (env.limits.memory_mb) " MiB" }
                            td { @if let Some(c) = n.needs.p95_peak_cpu_percent { (format!("{c:.0}")) } @else { "—" }
                                 " / " (format!("{:.0}", env.limits.cpus() * 100.0)) "%" }
                            td { (n.needs.oom_kills) }
                            td { (n.needs.timeouts) }
                            td.hint {
                                @if n.needs.runs < MIN_RUNS_FOR_HINT {
                                    span.muted { "not enough runs yet (" (n.needs.runs) " of " (MIN_RUNS_FOR_HINT) ")" }
                                } @else if let Some(h) = &n.hint { (h) } @else { span.muted { "limits fit" } }
                            }
                        }
                    } }
                } }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(p95_mib: f64, max_mib: f64, oom: i64) -> Needs {
        Needs {
            environment_id: 1,
            runs: 20,
            sampled: 20,
            p95_peak_memory_bytes: Some(p95_mib * MIB),
            max_peak_memory_bytes: Some((max_mib * MIB) as i64),
            p95_peak_cpu_percent: Some(20.0),
            oom_kills: oom,
            timeouts: 0,
        }
    }

    fn limits(memory_mb: i32) -> Limits {
        Limits {
            millicpus: 1000,
            memory_mb,
            pids_limit: 256,
            timeout_secs: 60,
        }
    }

    #[test]
    fn runs_near_the_limit_or_killed_ask_for_more_memory() {
        assert_eq!(
            hint(&needs(480.0, 500.0, 2), &limits(512)).unwrap(),
            "runs peak at 480 of 512 MiB and 2 of the last 20 were killed for memory: raise memory"
        );
    }

    #[test]
    fn fewer_than_five_runs_give_no_hint_even_when_killed() {
        let few = Needs {
            runs: 4,
            sampled: 4,
            ..needs(480.0, 500.0, 4)
        };
        assert_eq!(hint(&few, &limits(512)), None);
        let five = Needs {
            runs: 5,
            sampled: 5,
            ..needs(55.0, 60.0, 0)
        };
        assert!(hint(&five, &limits(512)).is_some());
    }

    #[test]
    fn runs_far_below_the_limit_say_what_would_do() {
        assert_eq!(
            hint(&needs(55.0, 60.0, 0), &limits(512)).unwrap(),
            "never above 60 MiB of 512: 128 MiB would do"
        );
        assert_eq!(hint(&needs(200.0, 220.0, 0), &limits(512)), None);
    }
}
