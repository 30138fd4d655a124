//! `Username`: who started a run. Free text, as people write their names,
//! but never empty, never absurdly long, never with control characters.

use std::fmt;

use serde::Serialize;

use crate::error::AppError;

const MAX_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Username, AppError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(AppError::Invalid("enter a username".into()));
        }
        if name.chars().count() > MAX_CHARS {
            return Err(AppError::Invalid(format!(
                "a username has at most {MAX_CHARS} characters"
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(AppError::Invalid(
                "a username cannot contain control characters".into(),
            ));
        }
        Ok(Username(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_names_as_written_but_trimmed() {
        assert_eq!(
            Username::parse("  Zoë O'Brien ").unwrap().as_str(),
            "Zoë O'Brien"
        );
        assert_eq!(
            Username::parse("<b>ann</b>").unwrap().as_str(),
            "<b>ann</b>"
        );
    }

    #[test]
    fn refuses_empty_long_and_control_characters() {
        assert!(Username::parse("   ").is_err());
        assert!(Username::parse(&"x".repeat(65)).is_err());
        assert!(Username::parse(&"é".repeat(64)).is_ok());
        assert!(Username::parse("ann\nbob").is_err());
        assert!(Username::parse("ann\u{7}").is_err());
    }
}
