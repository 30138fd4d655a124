//! The run's services in its samples: each service container's latest
//! reading (memory, pids, CPU share and time), added to the run
//! container's at each of its points, so the chart and the totals show what
//! the run used with its database.

use crate::engine::stats::Figures;

/// The latest reading of each service, and its CPU share since the one
/// before.
#[derive(Debug, Default)]
pub struct ServiceFigures {
    latest: Vec<Option<(Figures, f64)>>,
}

/// What the services add to a point.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Added {
    pub memory_bytes: u64,
    pub pids: u64,
    pub cpu_percent: f64,
    /// CPU time since each service started.
    pub cpu_ns: u64,
}

impl ServiceFigures {
    pub fn new(count: usize) -> ServiceFigures {
        ServiceFigures {
            latest: vec![None; count],
        }
    }

    /// Takes in service `index`'s reading.
    pub fn update(&mut self, index: usize, figures: Figures) {
        let Some(slot) = self.latest.get_mut(index) else {
            return;
        };
        let percent = slot
            .and_then(|(before, _)| figures.cpu_percent_since(&before))
            .unwrap_or(0.0);
        *slot = Some((figures, percent));
    }

    /// The sum of the services' latest readings.
    pub fn added(&self) -> Added {
        let mut sum = Added::default();
        for (figures, percent) in self.latest.iter().flatten() {
            sum.memory_bytes = sum.memory_bytes.saturating_add(figures.memory_bytes);
            sum.pids = sum.pids.saturating_add(figures.pids);
            sum.cpu_percent += percent;
            sum.cpu_ns = sum.cpu_ns.saturating_add(figures.cpu_total_ns);
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(cpu_ns: u64, system_ns: u64, memory_bytes: u64) -> Figures {
        Figures {
            cpu_total_ns: cpu_ns,
            system_ns: Some(system_ns),
            online_cpus: 1,
            memory_bytes,
            high_water_bytes: None,
            memory_limit_bytes: None,
            pids: 5,
        }
    }

    #[test]
    fn the_latest_readings_are_summed() {
        let mut services = ServiceFigures::new(2);
        assert_eq!(services.added(), Added::default());
        services.update(0, figures(1_000, 10_000, 100));
        services.update(0, figures(2_000, 12_000, 150));
        services.update(1, figures(500, 12_000, 50));
        services.update(7, figures(1, 1, 1));
        let added = services.added();
        assert_eq!(added.memory_bytes, 200);
        assert_eq!(added.pids, 10);
        assert_eq!(added.cpu_ns, 2_500);
        assert_eq!(added.cpu_percent, 50.0);
    }
}
