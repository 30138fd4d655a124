//! Operators' changes to environments: create, edit, disable, delete. Limits
//! are checked against what the host can give before anything is written.

use serde::Deserialize;
use sqlx::PgPool;

use crate::{
    environment_id::EnvironmentId,
    error::{AppError, AppResult},
    limits::{Limits, DEFAULT_LIMITS},
};

/// What the host offers, to refuse limits it could never honour.
#[derive(Debug, Clone, Copy)]
pub struct HostCapacity {
    pub cpus: i64,
    pub memory_mb: i64,
}

/// Limits as an operator gives them; absent fields keep their value.
#[derive(Debug, Default, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsChange {
    pub cpus: Option<f64>,
    pub memory_mb: Option<i64>,
    pub pids_limit: Option<i64>,
    pub timeout_secs: Option<i64>,
    pub enabled: Option<bool>,
    /// Only workers having all these labels take the environment's runs.
    pub required_labels: Option<Vec<String>>,
}

impl LimitsChange {
    /// The required labels, sorted and distinct, if given.
    fn labels(&self) -> Option<Vec<String>> {
        self.required_labels.as_ref().map(|labels| {
            let mut labels: Vec<String> = labels.iter().map(|l| l.trim().to_owned()).collect();
            labels.sort();
            labels.dedup();
            labels
        })
    }

    /// Applies the change to `current`, refusing values that are impossible
    /// or that the host cannot give.
    pub fn apply(&self, current: Limits, host: HostCapacity) -> AppResult<Limits> {
        let mut limits = current;
        if let Some(cpus) = self.cpus {
            if !cpus.is_finite() || cpus < 0.01 {
                return Err(AppError::Invalid(format!(
                    "cpus must be at least 0.01, not {cpus}"
                )));
            }
            if cpus > host.cpus as f64 {
                return Err(AppError::Invalid(format!(
                    "cpus {cpus} is more than this host has ({} CPUs)",
                    host.cpus
                )));
            }
            limits.millicpus = (cpus * 1000.0).round() as i32;
        }
        if let Some(mb) = self.memory_mb {
            if mb < 16 {
                return Err(AppError::Invalid(format!(
                    "memory_mb must be at least 16 MiB, not {mb}"
                )));
            }
            if mb > host.memory_mb {
                return Err(AppError::Invalid(format!(
                    "memory_mb {mb} is more than this host has ({} MiB)",
                    host.memory_mb
                )));
            }
            limits.memory_mb = mb as i32;
        }
        if let Some(pids) = self.pids_limit {
            if !(8..=100_000).contains(&pids) {
                return Err(AppError::Invalid(format!(
                    "pids_limit must be between 8 and 100000, not {pids}"
                )));
            }
            limits.pids_limit = pids as i32;
        }
        if let Some(labels) = &self.required_labels {
            crate::labels::check(labels)
                .map_err(|err| AppError::Invalid(format!("required_labels: {err}")))?;
        }
        if let Some(secs) = self.timeout_secs {
            if !(1..=86_400).contains(&secs) {
                return Err(AppError::Invalid(format!(
                    "timeout_secs must be between 1 and 86400 (a day), not {secs}"
                )));
            }
            limits.timeout_secs = secs as i32;
        }
        Ok(limits)
    }
}

/// An environment's settings as an operator sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub limits: Limits,
    pub enabled: bool,
    pub required_labels: Vec<String>,
}

impl Settings {
    /// What differs from `before`, in words: "time limit 900 s → 42 s".
    pub fn changes_from(&self, before: &Settings) -> Vec<String> {
        let (a, b) = (&before.limits, &self.limits);
        let mut out = Vec::new();
        let mut differ = |what: &str, old: String, new: String| {
            if old != new {
                out.push(format!("{what} {old} → {new}"));
            }
        };
        differ(
            "CPUs",
            format!("{:.2}", a.cpus()),
            format!("{:.2}", b.cpus()),
        );
        differ(
            "memory",
            format!("{} MiB", a.memory_mb),
            format!("{} MiB", b.memory_mb),
        );
        differ(
            "processes",
            a.pids_limit.to_string(),
            b.pids_limit.to_string(),
        );
        differ(
            "time limit",
            format!("{} s", a.timeout_secs),
            format!("{} s", b.timeout_secs),
        );
        let labels = |l: &[String]| {
            if l.is_empty() {
                "none".into()
            } else {
                l.join(", ")
            }
        };
        differ(
            "required labels",
            labels(&before.required_labels),
            labels(&self.required_labels),
        );
        let state = |on: bool| if on { "enabled" } else { "disabled" }.to_owned();
        differ("state", state(before.enabled), state(self.enabled));
        out
    }
}

/// Creates an environment that does not exist yet (defaults for what is not given).
pub async fn create(
    db: &PgPool,
    id: EnvironmentId,
    change: &LimitsChange,
    host: HostCapacity,
) -> AppResult<()> {
    let limits = change.apply(DEFAULT_LIMITS, host)?;
    let enabled = change.enabled.unwrap_or(true);
    super::store::insert(db, id, limits, enabled, change.labels()).await
}

/// Changes an environment; the next run in it gets the new limits. Its row is
/// locked while it changes, so a run being created waits for a disable and
/// is then refused. Returns what changed, in words (nothing: empty).
pub async fn update(
    db: &PgPool,
    id: EnvironmentId,
    change: &LimitsChange,
    host: HostCapacity,
) -> AppResult<Vec<String>> {
    let mut tx = db.begin().await?;
    let before = super::store::settings_locked(&mut tx, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("environment {id} does not exist")))?;
    let after = Settings {
        limits: change.apply(before.limits, host)?,
        enabled: change.enabled.unwrap_or(before.enabled),
        required_labels: change
            .labels()
            .unwrap_or_else(|| before.required_labels.clone()),
    };
    super::store::set(&mut tx, id, &after).await?;
    tx.commit().await?;
    Ok(after.changes_from(&before))
}

/// Deletes an environment nobody is using or waiting for.
pub async fn delete(db: &PgPool, id: EnvironmentId) -> AppResult<()> {
    super::store::delete_unused(db, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: HostCapacity = HostCapacity {
        cpus: 2,
        memory_mb: 4096,
    };

    #[test]
    fn a_change_keeps_what_it_does_not_name() {
        let change = LimitsChange {
            timeout_secs: Some(5),
            ..Default::default()
        };
        let limits = change.apply(DEFAULT_LIMITS, HOST).unwrap();
        assert_eq!(
            limits,
            Limits {
                timeout_secs: 5,
                ..DEFAULT_LIMITS
            }
        );
    }

    #[test]
    fn impossible_and_oversized_limits_are_refused() {
        for change in [
            LimitsChange {
                cpus: Some(0.0),
                ..Default::default()
            },
            LimitsChange {
                cpus: Some(-1.0),
                ..Default::default()
            },
            LimitsChange {
                cpus: Some(f64::NAN),
                ..Default::default()
            },
            LimitsChange {
                cpus: Some(3.0),
                ..Default::default()
            },
            LimitsChange {
                memory_mb: Some(0),
                ..Default::default()
            },
            LimitsChange {
                memory_mb: Some(8192),
                ..Default::default()
            },
            LimitsChange {
                pids_limit: Some(0),
                ..Default::default()
            },
            LimitsChange {
                timeout_secs: Some(0),
                ..Default::default()
            },
            LimitsChange {
                timeout_secs: Some(10_000_000),
                ..Default::default()
            },
        ] {
            assert!(change.apply(DEFAULT_LIMITS, HOST).is_err(), "{change:?}");
        }
    }

    #[test]
    fn a_change_is_told_in_words_and_what_stayed_is_not_mentioned() {
        let before = Settings {
            limits: DEFAULT_LIMITS,
            enabled: true,
            required_labels: vec![],
        };
        let after = Settings {
            limits: Limits {
                timeout_secs: 42,
                ..DEFAULT_LIMITS
            },
            enabled: false,
            required_labels: vec!["big".into(), "gpu".into()],
        };
        assert_eq!(
            after.changes_from(&before),
            [
                "time limit 900 s → 42 s",
                "required labels none → big, gpu",
                "state enabled → disabled"
            ]
        );
        assert!(before.changes_from(&before).is_empty());
    }

    #[test]
    fn fractional_cpus_are_kept_exactly() {
        let change = LimitsChange {
            cpus: Some(0.5),
            ..Default::default()
        };
        assert_eq!(change.apply(DEFAULT_LIMITS, HOST).unwrap().millicpus, 500);
    }
}
