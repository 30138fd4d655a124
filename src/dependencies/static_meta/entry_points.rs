//! The entry points of static metadata (`[project.scripts]`,
//! `[project.gui-scripts]`, `[project.entry-points]`): names and object
//! references checked strictly, since the server writes them into the
//! dist-info and the venv's `bin`.

use super::{shown, MAX_ENTRY_POINTS, MAX_NAME, MAX_OBJECT_REF};

/// `[project.scripts]`, `[project.gui-scripts]` and `[project.entry-points]`.
pub(super) fn entry_points(project: &toml::Table) -> Result<Vec<(String, String, String)>, String> {
    let mut out = Vec::new();
    let mut groups: Vec<(String, &toml::Value)> = Vec::new();
    for (key, group) in [
        ("scripts", "console_scripts"),
        ("gui-scripts", "gui_scripts"),
    ] {
        if let Some(table) = project.get(key) {
            groups.push((group.to_owned(), table));
        }
    }
    if let Some(table) = project.get("entry-points") {
        let table = table
            .as_table()
            .ok_or("pyproject.toml: [project.entry-points] must be a table")?;
        for (group, value) in table {
            if !token(group, &['.', '_', '-']) {
                return Err(format!(
                    "pyproject.toml: entry point group {:?} is refused (letters, digits, `.`, \
                     `_`, `-`)",
                    shown(group)
                ));
            }
            groups.push((group.clone(), value));
        }
    }
    for (group, table) in groups {
        let table = table.as_table().ok_or(format!(
            "pyproject.toml: entry points {group} must be a table"
        ))?;
        for (name, value) in table {
            let value = value.as_str().unwrap_or_default().trim();
            if !token(name, &['.', '_', '-']) || !object_ref(value) {
                return Err(format!(
                    "pyproject.toml: entry point {group}.{} = {:?} is refused (a name of \
                     letters, digits, `.`, `_`, `-`, and `module.path:attribute`)",
                    shown(name),
                    shown(value)
                ));
            }
            let script = group == "console_scripts" || group == "gui_scripts";
            if script && venv_own(name) {
                return Err(format!(
                    "pyproject.toml: script {:?} is refused: the venv's own `python*`, `pip`, `pip3` \
                     and `activate*` stay",
                    shown(name)
                ));
            }
            out.push((group.clone(), name.clone(), value.to_owned()));
        }
    }
    if out.len() > MAX_ENTRY_POINTS {
        return Err(format!(
            "pyproject.toml: more than {MAX_ENTRY_POINTS} entry points"
        ));
    }
    Ok(out)
}

/// A name the venv's `bin` holds already (a script would replace it).
fn venv_own(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("python")
        || name.starts_with("activate")
        || name == "pip"
        || name == "pip3"
        || name.starts_with("pip3.")
}

/// A name of letters, digits and `extra`, not starting with one of
/// `extra`, at most 100 characters.
fn token(name: &str, extra: &[char]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
}

/// `module.path:attribute.path` (the attribute optional), identifiers only.
pub fn object_ref(value: &str) -> bool {
    let dotted = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|part| {
                part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
    };
    value.len() <= MAX_OBJECT_REF
        && match value.split_once(':') {
            Some((module, attr)) => dotted(module) && dotted(attr),
            None => dotted(value),
        }
}
