//! `EnvironmentId`: a number people pick, always within 1..=100.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(try_from = "i64", into = "i32")]
#[sqlx(transparent)]
#[schema(description = "an environment's number, 1–100")]
pub struct EnvironmentId(i32);

impl EnvironmentId {
    pub const MIN: i32 = 1;
    pub const MAX: i32 = 100;

    pub fn get(self) -> i32 {
        self.0
    }

    pub fn all() -> impl Iterator<Item = EnvironmentId> {
        (Self::MIN..=Self::MAX).map(EnvironmentId)
    }
}

impl TryFrom<i64> for EnvironmentId {
    type Error = AppError;

    fn try_from(value: i64) -> Result<Self, AppError> {
        if (i64::from(Self::MIN)..=i64::from(Self::MAX)).contains(&value) {
            Ok(EnvironmentId(value as i32))
        } else {
            Err(AppError::Invalid(format!(
                "environment must be a number from {} to {}, not {value}",
                Self::MIN,
                Self::MAX
            )))
        }
    }
}

impl std::str::FromStr for EnvironmentId {
    type Err = AppError;

    fn from_str(s: &str) -> Result<Self, AppError> {
        let n: i64 = s.trim().parse().map_err(|_| {
            AppError::Invalid(format!(
                "environment must be a number from {} to {}, not {s:?}",
                Self::MIN,
                Self::MAX
            ))
        })?;
        n.try_into()
    }
}

impl From<EnvironmentId> for i32 {
    fn from(id: EnvironmentId) -> i32 {
        id.0
    }
}

impl fmt::Display for EnvironmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_one_to_a_hundred() {
        assert_eq!(EnvironmentId::try_from(1).unwrap().get(), 1);
        assert_eq!("100".parse::<EnvironmentId>().unwrap().get(), 100);
        assert_eq!(EnvironmentId::all().count(), 100);
    }

    #[test]
    fn refuses_numbers_outside_the_range_and_words() {
        for bad in [0, 101, -1, i64::MAX] {
            assert!(EnvironmentId::try_from(bad).is_err(), "{bad}");
        }
        let err = "seven".parse::<EnvironmentId>().unwrap_err().to_string();
        assert!(err.contains("1 to 100"), "{err}");
    }

    #[test]
    fn deserializes_only_valid_numbers() {
        assert!(serde_json::from_str::<EnvironmentId>("7").is_ok());
        assert!(serde_json::from_str::<EnvironmentId>("0").is_err());
        assert!(serde_json::from_str::<EnvironmentId>("\"7\"").is_err());
    }
}
