//! `SERVICE_IMAGES`: the service images this server offers a project's
//! `[[services]]` (`image = "postgres"`), as `short=engine-image` pairs.

use std::{collections::BTreeMap, str::FromStr};

/// The default: the Postgres and Redis images `scripts/lib.sh`
/// (`ensure_service_images`) builds offline from Debian's packages and tags
/// `:latest`.
pub const DEFAULT_SERVICE_IMAGES: &str =
    "postgres=test-executor-postgres:latest,redis=test-executor-redis:latest";

/// Short name → engine image (`postgres` → `postgres:16`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceImages(BTreeMap<String, String>);

impl ServiceImages {
    /// The short names a project may declare, sorted.
    pub fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    /// The engine image a short name stands for.
    pub fn image(&self, short: &str) -> Option<&str> {
        self.0.get(short).map(String::as_str)
    }
}

impl FromStr for ServiceImages {
    type Err = String;

    /// `postgres=IMAGE,redis=IMAGE`; empty offers none.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (short, image) = pair
                .split_once('=')
                .map(|(s, i)| (s.trim(), i.trim()))
                .ok_or_else(|| format!("{pair:?} is not NAME=IMAGE (e.g. postgres=postgres:16)"))?;
            let short_ok = !short.is_empty()
                && short.len() <= 64
                && short
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
            if !short_ok {
                return Err(format!(
                    "{short:?} is not a service name: lowercase letters, digits, - _ ."
                ));
            }
            if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!("the image of {short:?} is empty or has blanks"));
            }
            if map.insert(short.to_owned(), image.to_owned()).is_some() {
                return Err(format!("{short:?} is named twice"));
            }
        }
        Ok(ServiceImages(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_read_and_bad_ones_refused() {
        let images: ServiceImages = "postgres=postgres:16, redis = r:7".parse().unwrap();
        assert_eq!(images.names(), ["postgres", "redis"]);
        assert_eq!(images.image("redis"), Some("r:7"));
        assert_eq!(images.image("mysql"), None);
        assert!("".parse::<ServiceImages>().unwrap().names().is_empty());
        let default: ServiceImages = DEFAULT_SERVICE_IMAGES.parse().unwrap();
        assert_eq!(default.names(), ["postgres", "redis"]);
        for bad in ["postgres", "Pg=x", "pg=", "pg=a b", "pg=x,pg=y"] {
            assert!(bad.parse::<ServiceImages>().is_err(), "{bad}");
        }
    }
}
