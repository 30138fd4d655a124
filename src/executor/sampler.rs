//! Samples a run's container while it lives: CPU (share of one CPU), memory
//! (working set) and pids, from the engine's stats stream: one reading at
//! each of the engine's stats ticks, about once a second, the first within
//! a second. The peak is the kernel's high-water mark where the engine
//! reports it (cgroup v1 `max_usage`), so a spike between readings counts;
//! an OOM kill means the limit was reached. Samples and the run's totals go
//! to the writer in batches;
//! past `MAX_POINTS` the interval doubles and older points are thinned, so a
//! run keeps at most about 1,000 of them. The peaks are kept from every
//! reading, thinned or not. A run's services are read beside its container
//! and added to each of its points (`sampler/services.rs`).

mod services;

use std::pin::Pin;

use bollard::models::ContainerStatsResponse;
use futures_util::{Stream, StreamExt};
use time::OffsetDateTime;

use std::time::Duration;

use crate::{
    engine::{stats::Figures, Engine},
    limits::Limits,
    store::resources::{Resources, Sample, MAX_POINTS},
};

/// Readings of the run's container (0) and of its services (1, 2, …).
type Readings = Pin<Box<dyn Stream<Item = (usize, Option<ContainerStatsResponse>)> + Send>>;

/// What goes to the writer: new points, the totals after them, and whether
/// the stored points must be thinned to one per so many milliseconds.
#[derive(Debug, Clone)]
pub struct SampleBatch {
    pub run_id: i64,
    pub samples: Vec<Sample>,
    pub totals: Resources,
    pub thin_to_ms: Option<i32>,
}

impl SampleBatch {
    pub async fn store(&self, db: &sqlx::PgPool) -> anyhow::Result<()> {
        crate::store::resources::store_samples(
            db,
            self.run_id,
            &self.samples,
            &self.totals,
            self.thin_to_ms,
        )
        .await
    }
}

pub struct Sampler {
    run_id: i64,
    /// Off when `SAMPLE_RESOURCES` is false: nothing is read or stored.
    on: bool,
    started_at: OffsetDateTime,
    readings: Option<Readings>,
    /// CPU time is counted from this (a warm container's wait before the
    /// run is not the run's); the first reading's when not given.
    cpu_baseline_ns: Option<u64>,
    last: Option<Figures>,
    points: Points,
    totals: Resources,
    changed: bool,
    services: services::ServiceFigures,
}

/// The points not yet stored, and how the stored ones are thinned.
#[derive(Debug, Default)]
struct Points {
    pending: Vec<Sample>,
    /// Points stored (or pending) since sampling began, roughly.
    kept: usize,
    /// 0: every reading is a point; otherwise one point per slot this long.
    every_ms: i32,
    last_slot: Option<i32>,
    thin_to_ms: Option<i32>,
}

impl Points {
    fn slot(&self, t_ms: i32) -> i32 {
        if self.every_ms > 0 {
            t_ms / self.every_ms
        } else {
            t_ms
        }
    }

    fn push(&mut self, sample: Sample) {
        let slot = self.slot(sample.t_ms);
        if self.last_slot == Some(slot) {
            // one point per slot: the highest memory, unless stored already
            let every_ms = self.every_ms;
            if let Some(last) = self.pending.last_mut() {
                let last_slot = if every_ms > 0 {
                    last.t_ms / every_ms
                } else {
                    last.t_ms
                };
                if last_slot == slot && sample.memory_bytes > last.memory_bytes {
                    *last = sample;
                }
            }
            return;
        }
        self.last_slot = Some(slot);
        self.pending.push(sample);
        self.kept += 1;
        if self.kept > MAX_POINTS {
            self.every_ms = if self.every_ms == 0 {
                2000
            } else {
                self.every_ms.saturating_mul(2)
            };
            self.thin_to_ms = Some(self.every_ms);
            self.kept = self.kept.div_ceil(2);
            self.last_slot = Some(self.slot(sample.t_ms));
        }
    }
}

impl Sampler {
    /// Starts reading the container's stats. CPU time is counted from
    /// `cpu_baseline_ns` (what a warm container used before the run took
    /// it; 0 for a container started for the run; the first reading's when
    /// `None`). `stored_peak` is the peak a resumed run had reached already.
    pub fn start(
        engine: &Engine,
        run_id: i64,
        name: &str,
        started_at: Option<OffsetDateTime>,
        cpu_baseline_ns: Option<u64>,
        stored_peak: Option<i64>,
    ) -> Sampler {
        // The stream's first reading comes at the engine's next stats tick
        // (within a second), as a one-shot reading asked for now would: one
        // request to the engine per run, not two.
        let readings = engine.stats_stream(name).map(|r| (0, r.ok()));
        Sampler {
            run_id,
            on: true,
            started_at: started_at.unwrap_or_else(OffsetDateTime::now_utc),
            readings: Some(Box::pin(readings)),
            cpu_baseline_ns,
            last: None,
            points: Points::default(),
            totals: Resources {
                peak_memory_bytes: stored_peak,
                ..Resources::default()
            },
            changed: false,
            services: services::ServiceFigures::default(),
        }
    }

    /// Also reads these service containers, whose figures are added to
    /// the run's.
    pub fn with_services(mut self, engine: &Engine, names: Vec<String>) -> Sampler {
        if names.is_empty() {
            return self;
        }
        let Some(own) = self.readings.take() else {
            return self;
        };
        self.services = services::ServiceFigures::new(names.len());
        let mut all = vec![own];
        for (i, name) in names.iter().enumerate() {
            let stream = engine.stats_stream(name).map(move |r| (i + 1, r.ok()));
            all.push(Box::pin(stream));
        }
        self.readings = Some(Box::pin(futures_util::stream::select_all(all)));
        self
    }

    /// Sampling off: nothing is read or stored.
    pub fn off(run_id: i64) -> Sampler {
        Sampler {
            run_id,
            on: false,
            started_at: OffsetDateTime::now_utc(),
            readings: None,
            cpu_baseline_ns: None,
            last: None,
            points: Points::default(),
            totals: Resources::default(),
            changed: false,
            services: services::ServiceFigures::default(),
        }
    }

    pub fn reading(&self) -> bool {
        self.readings.is_some()
    }

    /// The next reading; `None` once the stream ended (the container stopped).
    pub async fn next(&mut self) -> Option<(usize, Option<ContainerStatsResponse>)> {
        let next = self.readings.as_mut()?.next().await;
        if next.is_none() {
            self.readings = None;
        }
        next
    }

    /// Takes a reading in: the run container's is a point, and the totals;
    /// a service's is added to the next.
    pub fn accept(&mut self, (from, reading): (usize, Option<ContainerStatsResponse>)) {
        let Some(figures) = reading.as_ref().and_then(Figures::of) else {
            return;
        };
        if from > 0 {
            self.services.update(from - 1, figures);
            return;
        }
        let t_ms = (OffsetDateTime::now_utc() - self.started_at)
            .whole_milliseconds()
            .clamp(0, i32::MAX as i128) as i32;
        self.record(t_ms, figures);
    }

    fn record(&mut self, t_ms: i32, figures: Figures) {
        let cpu_percent = self
            .last
            .and_then(|before| figures.cpu_percent_since(&before))
            .unwrap_or(0.0);
        self.last = Some(figures);
        let baseline = *self.cpu_baseline_ns.get_or_insert(figures.cpu_total_ns);
        let added = self.services.added();
        let cpu_percent = cpu_percent + added.cpu_percent;
        let cpu_ns = figures.cpu_total_ns.saturating_sub(baseline) + added.cpu_ns;
        let memory = figures.memory_bytes.saturating_add(added.memory_bytes);
        let memory = i64::try_from(memory).unwrap_or(i64::MAX);
        let high_water = figures
            .high_water_bytes
            .map_or(0, |h| i64::try_from(h).unwrap_or(i64::MAX));
        let pids = i32::try_from(figures.pids + added.pids).unwrap_or(i32::MAX);
        let t = &mut self.totals;
        t.peak_memory_bytes = Some(t.peak_memory_bytes.unwrap_or(0).max(memory).max(high_water));
        t.peak_pids = Some(t.peak_pids.unwrap_or(0).max(pids));
        t.cpu_seconds = Some(cpu_ns as f64 / 1e9);
        t.peak_cpu_percent = Some(t.peak_cpu_percent.unwrap_or(0.0).max(cpu_percent as f32));
        self.changed = true;
        self.points.push(Sample {
            t_ms,
            cpu_percent: cpu_percent as f32,
            memory_bytes: memory,
            pids,
        });
    }

    /// Takes in the runner's own count at pytest's end (`usage`: CPU ms,
    /// peak RSS KiB): the totals are the larger of it and the readings. A
    /// run that ended before the engine's first reading has only this one,
    /// and a reading taken as the container stopped sees little. Held to
    /// what the limits allow: the code under test can forge the record, and
    /// so only raise its own figures. Pids stay as read.
    pub fn merge_runner_count(
        &mut self,
        usage: Option<(i64, i64)>,
        limits: &Limits,
        ran_for: Duration,
    ) {
        let (Some((cpu_ms, rss_kib)), true) = (usage, self.on) else {
            return;
        };
        let cpu_cap = limits.nano_cpus() as f64 / 1e9 * (ran_for.as_secs_f64() + 1.0);
        let cpu = (cpu_ms as f64 / 1000.0).min(cpu_cap);
        let peak = rss_kib.saturating_mul(1024).min(limits.memory_bytes());
        let t = &mut self.totals;
        t.cpu_seconds = Some(t.cpu_seconds.unwrap_or(0.0).max(cpu));
        t.peak_memory_bytes = Some(t.peak_memory_bytes.unwrap_or(0).max(peak));
        self.changed = true;
    }

    /// The container was killed for memory: the kernel does that only when
    /// the cgroup's usage reached its limit, so that is its high-water mark
    /// (which its cgroup, gone with the container, can no longer be asked).
    pub fn killed_for_memory(&mut self, limits: &Limits) {
        let t = &mut self.totals;
        t.peak_memory_bytes = Some(t.peak_memory_bytes.unwrap_or(0).max(limits.memory_bytes()));
        self.changed = true;
    }

    /// The batch to store, if anything changed since the last one.
    pub fn take(&mut self) -> Option<SampleBatch> {
        if !self.changed {
            return None;
        }
        self.changed = false;
        Some(SampleBatch {
            run_id: self.run_id,
            samples: std::mem::take(&mut self.points.pending),
            totals: self.totals,
            thin_to_ms: self.points.thin_to_ms.take(),
        })
    }

    /// When the run started, as its sample times count.
    pub fn started_at(&self) -> OffsetDateTime {
        self.started_at
    }

    /// The highest memory seen (or stored before a resume).
    pub fn peak_memory_bytes(&self) -> Option<i64> {
        self.totals.peak_memory_bytes
    }
}

#[cfg(test)]
mod tests;
