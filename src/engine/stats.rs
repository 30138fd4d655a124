//! A container's resource figures, read from the engine's stats: CPU time
//! used, memory as its working set (usage without the inactive page cache,
//! as `docker stats` shows it) and pids. One reading, for the live usage view
//! and for the executor's sampler alike.

use anyhow::{Context, Result};
use bollard::{
    models::{ContainerCpuStats, ContainerStatsResponse},
    query_parameters::StatsOptions,
};
use futures_util::{Stream, StreamExt};

use super::{timed, Engine, CALL_TIMEOUT};

/// Reading a container's stats from the engine.
impl Engine {
    /// One sample of a container's resource use.
    pub async fn stats_once(&self, id: &str) -> Result<Option<ContainerStatsResponse>> {
        self.one_reading(id, false).await
    }

    /// A container's stats about once a second while it runs (the engine's
    /// own pace); the stream ends when the container stops. Not timed: it
    /// lives as long as the container, and its reader selects beside it.
    pub fn stats_stream(
        &self,
        id: &str,
    ) -> impl Stream<Item = Result<ContainerStatsResponse, bollard::errors::Error>> + Send + 'static
    {
        let options = StatsOptions {
            stream: true,
            one_shot: false,
        };
        self.docker.stats(id, Some(options))
    }

    /// One reading at once, without waiting for the engine's next interval
    /// (no `precpu_stats`): the first sample of a run.
    pub async fn stats_now(&self, id: &str) -> Result<Option<ContainerStatsResponse>> {
        self.one_reading(id, true).await
    }

    /// One stats reading; `None` when the container is gone.
    async fn one_reading(
        &self,
        id: &str,
        one_shot: bool,
    ) -> Result<Option<ContainerStatsResponse>> {
        let options = StatsOptions {
            stream: false,
            one_shot,
        };
        let mut stream = self.docker.stats(id, Some(options));
        let what = || format!("reading the stats of container {id}");
        match timed(CALL_TIMEOUT, what, stream.next()).await? {
            Some(Ok(stats)) => Ok(Some(stats)),
            Some(Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            }))
            | None => Ok(None),
            Some(Err(err)) => Err(err).with_context(what),
        }
    }
}

/// One reading of a container's cgroup.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    /// CPU time used since the container started, in nanoseconds.
    pub cpu_total_ns: u64,
    /// The host's CPU time (all CPUs), the clock `cpu_total_ns` is read against.
    pub system_ns: Option<u64>,
    pub online_cpus: u32,
    /// Working set: usage minus the inactive file cache.
    pub memory_bytes: u64,
    /// The kernel's own high-water mark of the cgroup's memory since it
    /// was made (cgroup v1 `max_usage`, page cache included): a spike
    /// between two readings still shows in the next. The engine gives none
    /// on cgroup v2 (its stats carry no `memory.peak`).
    pub high_water_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    pub pids: u64,
}

impl Figures {
    /// The figures of a reading; `None` for the empty reading a stopped
    /// container gives (its cgroup is gone).
    pub fn of(stats: &ContainerStatsResponse) -> Option<Figures> {
        let cpu = stats.cpu_stats.as_ref()?;
        let memory = stats.memory_stats.as_ref()?;
        let usage = memory.usage.filter(|u| *u > 0)?;
        let cache = memory
            .stats
            .as_ref()
            .and_then(|s| {
                s.get("inactive_file")
                    .or_else(|| s.get("total_inactive_file"))
                    .or_else(|| s.get("cache"))
                    .copied()
            })
            .unwrap_or(0);
        Some(Figures {
            cpu_total_ns: total_usage(cpu),
            system_ns: cpu.system_cpu_usage,
            online_cpus: cpu.online_cpus.unwrap_or(1).max(1),
            memory_bytes: usage.saturating_sub(cache),
            high_water_bytes: memory.max_usage.filter(|m| *m > 0),
            memory_limit_bytes: memory.limit.filter(|l| *l > 0),
            pids: stats
                .pids_stats
                .as_ref()
                .and_then(|p| p.current)
                .unwrap_or(0),
        })
    }

    /// Share of one CPU (100 = one full CPU) between `before` and this
    /// reading; `None` when the host's clock did not move.
    pub fn cpu_percent_since(&self, before: &Figures) -> Option<f64> {
        let used = self.cpu_total_ns.saturating_sub(before.cpu_total_ns) as f64;
        let system = self.system_ns?.checked_sub(before.system_ns?)? as f64;
        (system > 0.0).then(|| used / system * f64::from(self.online_cpus) * 100.0)
    }
}

/// Share of one CPU over the interval the engine measured itself (a
/// non-streamed reading carries the previous one as `precpu_stats`).
pub fn cpu_percent(stats: &ContainerStatsResponse) -> f64 {
    let (Some(cpu), Some(pre)) = (&stats.cpu_stats, &stats.precpu_stats) else {
        return 0.0;
    };
    let used = total_usage(cpu).saturating_sub(total_usage(pre)) as f64;
    let system = cpu
        .system_cpu_usage
        .unwrap_or(0)
        .saturating_sub(pre.system_cpu_usage.unwrap_or(0)) as f64;
    let online = f64::from(cpu.online_cpus.unwrap_or(1));
    if system > 0.0 {
        used / system * online * 100.0
    } else {
        0.0
    }
}

fn total_usage(cpu: &ContainerCpuStats) -> u64 {
    cpu.cpu_usage
        .as_ref()
        .and_then(|u| u.total_usage)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(cpu_total_ns: u64, system_ns: u64) -> Figures {
        Figures {
            cpu_total_ns,
            system_ns: Some(system_ns),
            online_cpus: 2,
            memory_bytes: 1,
            high_water_bytes: None,
            memory_limit_bytes: None,
            pids: 1,
        }
    }

    #[test]
    fn cpu_is_a_share_of_one_cpu() {
        // half a second of CPU in one second of wall time on 2 CPUs (2 s of host time)
        let a = figures(1_000_000_000, 10_000_000_000);
        let b = figures(1_500_000_000, 12_000_000_000);
        assert_eq!(b.cpu_percent_since(&a), Some(50.0));
        assert_eq!(a.cpu_percent_since(&a), None);
    }

    #[test]
    fn the_empty_reading_of_a_stopped_container_has_no_figures() {
        assert_eq!(Figures::of(&ContainerStatsResponse::default()), None);
    }
}
