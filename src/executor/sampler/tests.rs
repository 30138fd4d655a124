//! The sampler's totals, its peaks and how it thins a long run's points.

use super::*;

fn figures(cpu_s: f64, memory_bytes: u64) -> Figures {
    Figures {
        cpu_total_ns: (cpu_s * 1e9) as u64,
        system_ns: None,
        online_cpus: 1,
        memory_bytes,
        high_water_bytes: None,
        memory_limit_bytes: None,
        pids: 3,
    }
}

#[test]
fn totals_keep_the_peak_and_count_cpu_from_the_first_reading() {
    let mut sampler = Sampler::off(1);
    sampler.cpu_baseline_ns = None;
    sampler.record(0, figures(0.5, 10));
    sampler.record(1000, figures(1.5, 300));
    sampler.record(2000, figures(2.5, 20));
    let batch = sampler.take().unwrap();
    assert_eq!(batch.samples.len(), 3);
    assert_eq!(batch.totals.peak_memory_bytes, Some(300));
    assert_eq!(batch.totals.cpu_seconds, Some(2.0));
    assert_eq!(batch.totals.peak_pids, Some(3));
    assert!(sampler.take().is_none(), "nothing new");
}

#[test]
fn the_runners_count_raises_the_totals_held_to_the_limits() {
    let limits = Limits {
        millicpus: 500,
        memory_mb: 64,
        pids_limit: 64,
        timeout_secs: 60,
    };
    let mut on = Sampler::off(1);
    on.on = true;
    on.merge_runner_count(Some((300, 20_000)), &limits, Duration::from_millis(200));
    let batch = on.take().unwrap();
    assert!(batch.samples.is_empty());
    assert_eq!(batch.totals.cpu_seconds, Some(0.3));
    assert_eq!(batch.totals.peak_memory_bytes, Some(20_000 * 1024));
    // a forged count is held to the limits: 0.5 CPU for 1.2 s, 64 MiB
    let mut forged = Sampler::off(1);
    forged.on = true;
    forged.merge_runner_count(
        Some((900_000, 1 << 40)),
        &limits,
        Duration::from_millis(200),
    );
    let batch = forged.take().unwrap();
    assert_eq!(batch.totals.cpu_seconds, Some(0.6));
    assert_eq!(batch.totals.peak_memory_bytes, Some(64 * 1024 * 1024));
    // beside readings, the larger figures count
    let mut read = Sampler::off(1);
    read.on = true;
    read.cpu_baseline_ns = Some(0);
    read.record(0, figures(0.5, 40 << 20));
    read.take();
    read.merge_runner_count(Some((300, 20_000)), &limits, Duration::from_millis(900));
    let batch = read.take().unwrap();
    assert_eq!(batch.totals.cpu_seconds, Some(0.5));
    assert_eq!(batch.totals.peak_memory_bytes, Some(40 << 20));
    // with sampling off, nothing
    let mut off = Sampler::off(1);
    off.merge_runner_count(Some((300, 20_000)), &limits, Duration::from_millis(200));
    assert!(off.take().is_none());
}

#[test]
fn the_peak_is_the_kernels_high_water_mark_or_the_limit_at_a_kill() {
    let mut sampler = Sampler::off(1);
    sampler.record(
        0,
        Figures {
            high_water_bytes: Some(200 << 20),
            ..figures(0.1, 30 << 20)
        },
    );
    assert_eq!(
        sampler.peak_memory_bytes(),
        Some(200 << 20),
        "a spike between readings"
    );
    let limits = Limits {
        millicpus: 1000,
        memory_mb: 256,
        pids_limit: 64,
        timeout_secs: 60,
    };
    sampler.killed_for_memory(&limits);
    assert_eq!(sampler.peak_memory_bytes(), Some(256 << 20));
}

#[test]
fn a_long_run_keeps_at_most_max_points() {
    let mut sampler = Sampler::off(1);
    let mut stored = std::collections::BTreeMap::new();
    for i in 0..20_000 {
        sampler.record(i * 1000, figures(0.0, (i % 97) as u64));
        if i % 10 == 0 {
            let batch = sampler.take().unwrap();
            for s in batch.samples {
                stored.insert(s.t_ms, s.memory_bytes);
            }
            if let Some(every) = batch.thin_to_ms {
                // as the store thins: one per slot, the highest memory
                let mut best: std::collections::BTreeMap<i32, (i64, i32)> = Default::default();
                for (&t, &m) in &stored {
                    let e = best.entry(t / every).or_insert((m, t));
                    if (m, t) > *e {
                        *e = (m, t);
                    }
                }
                stored = best.values().map(|&(m, t)| (t, m)).collect();
            }
        }
    }
    assert!(stored.len() <= MAX_POINTS + 10, "{} points", stored.len());
    assert!(
        stored.len() >= MAX_POINTS / 2 - 10,
        "{} points",
        stored.len()
    );
    assert_eq!(
        *stored.values().max().unwrap(),
        96,
        "the peak survives thinning"
    );
}

#[tokio::test]
async fn the_runs_own_readings_stay_with_or_without_services() {
    // (streams are lazy: nothing is asked of the engine here)
    let engine = Engine::connect().unwrap();
    let alone = Sampler::start(&engine, 1, "te-x-run-1", None, Some(0), None)
        .with_services(&engine, Vec::new());
    assert!(alone.reading(), "a run without services is still read");
    let with = Sampler::start(&engine, 1, "te-x-run-1", None, Some(0), None)
        .with_services(&engine, vec!["te-x-run-1-svc-db".into()]);
    assert!(with.reading());
}

#[test]
fn a_services_reading_adds_to_the_runs_next_point() {
    let mut sampler = Sampler::off(1);
    sampler.services = services::ServiceFigures::new(1);
    sampler.cpu_baseline_ns = Some(0);
    let db = ContainerStatsResponse {
        cpu_stats: Some(bollard::models::ContainerCpuStats {
            cpu_usage: Some(bollard::models::ContainerCpuUsage {
                total_usage: Some(2_000_000_000),
                ..Default::default()
            }),
            ..Default::default()
        }),
        memory_stats: Some(bollard::models::ContainerMemoryStats {
            usage: Some(40),
            ..Default::default()
        }),
        ..Default::default()
    };
    sampler.accept((1, Some(db)));
    assert!(sampler.take().is_none(), "a service's reading is no point");
    sampler.record(0, figures(1.0, 10));
    let batch = sampler.take().unwrap();
    assert_eq!(batch.samples[0].memory_bytes, 50);
    assert_eq!(batch.totals.cpu_seconds, Some(3.0));
    assert_eq!(batch.samples[0].pids, 3);
}
