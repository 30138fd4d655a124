//! A tree's metadata when `pyproject.toml` states all of it (PEP 621:
//! name, version, dependencies, extras and entry points, none `dynamic`),
//! with a pure-Python backend and nothing else driving the build. Such a
//! tree is not installed by pip: its image is built from the declared
//! requirements alone, like a requirements-only tree's, and the server
//! writes the project's development install itself (`own_files.rs`). No
//! file of the tree runs in its build, so its image is keyed by its
//! declaring files and serves every tree that declares the same.
//!
//! Everything here comes from the tree, so is hostile: names, versions and
//! entry points are checked strictly and bounded; a bad one is refused
//! with the key named.

use std::collections::{BTreeSet, HashMap};

use super::{declared::TEST_EXTRAS, requirements};

mod entry_points;

use entry_points::entry_points;
#[cfg(test)]
use entry_points::object_ref;

/// Backends whose editable install of a pure-Python project is a path
/// `.pth` plus metadata: the same thing the server writes.
const BACKENDS: &[&str] = &[
    "setuptools.build_meta",
    "setuptools.build_meta:__legacy__",
    "hatchling.build",
    "flit_core.buildapi",
    "pdm.backend",
    "poetry.core.masonry.api",
];
/// Fields that, computed by the backend, make the metadata not static.
const NEEDED: &[&str] = &[
    "name",
    "version",
    "dependencies",
    "optional-dependencies",
    "scripts",
    "gui-scripts",
    "entry-points",
];
const MAX_NAME: usize = 100;
/// Extras the test extras may name, themselves included.
const MAX_EXTRAS: usize = 100;
const MAX_VERSION: usize = 64;
const MAX_ENTRY_POINTS: usize = 200;
const MAX_OBJECT_REF: usize = 200;
const MAX_REQUIREMENTS: usize = 500;

/// Where the project's code is imported from in a run's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportRoot {
    /// The tree's root (a flat layout).
    Root,
    /// Its `src/` folder.
    Src,
}

/// Static metadata, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticMeta {
    pub name: String,
    pub version: String,
    /// The dependencies and the test extras' (the project's own extras
    /// they name expanded), each a checked requirement line.
    pub requires: Vec<String>,
    /// `(group, name, object reference)`; scripts are `console_scripts`.
    pub entry_points: Vec<(String, String, String)>,
    pub import_root: ImportRoot,
}

/// `Ok(None)`: not static (pip installs the project, running its code);
/// `Err`: static, but a value is refused (named).
pub fn read(
    pyproject: &str,
    setup_py: bool,
    setup_cfg: Option<&str>,
    import_root: ImportRoot,
) -> Result<Option<StaticMeta>, String> {
    if setup_py || setup_cfg.is_some_and(drives_setuptools) {
        return Ok(None);
    }
    let Ok(table) = toml::from_str::<toml::Table>(pyproject) else {
        return Ok(None);
    };
    let Some(project) = table.get("project").and_then(|p| p.as_table()) else {
        return Ok(None);
    };
    if !pure_backend(&table) || dynamic(project) {
        return Ok(None);
    }
    let (Some(name), Some(version)) = (project.get("name"), project.get("version")) else {
        return Ok(None);
    };
    let name = string(name, "name").and_then(check_name)?;
    let version = string(version, "version").and_then(check_version)?;
    let requires = requires(project, &name)?;
    let entry_points = entry_points(project)?;
    Ok(Some(StaticMeta {
        name,
        version,
        requires,
        entry_points,
        import_root,
    }))
}

/// The `[project]` name as written, if any (for the layout's rule).
pub fn declared_name(pyproject: &str) -> Option<String> {
    let table = toml::from_str::<toml::Table>(pyproject).ok()?;
    let name = table.get("project")?.get("name")?.as_str()?;
    check_name(name.to_owned()).ok()
}

/// A `setup.cfg` with `[metadata]` or `[options…]` drives setuptools.
fn drives_setuptools(text: &str) -> bool {
    text.lines().map(str::trim).any(|line| {
        line.eq_ignore_ascii_case("[metadata]") || line.to_ascii_lowercase().starts_with("[options")
    })
}

/// A known pure-Python backend, no in-tree backend, no build hook or
/// extension module that would make files the server does not write.
fn pure_backend(table: &toml::Table) -> bool {
    let system = table.get("build-system");
    let backend = system
        .and_then(|s| s.get("build-backend"))
        .and_then(|b| b.as_str())
        .unwrap_or("setuptools.build_meta:__legacy__");
    if !BACKENDS.contains(&backend) || system.is_some_and(|s| s.get("backend-path").is_some()) {
        return false;
    }
    let tool = table.get("tool");
    let at = |path: &[&str]| {
        let mut value = tool;
        for key in path {
            value = value.and_then(|v| v.get(*key));
        }
        value
    };
    let hatch_hooks = at(&["hatch", "build", "hooks"]).is_some()
        || at(&["hatch", "build", "targets"])
            .and_then(|t| t.as_table())
            .is_some_and(|targets| targets.values().any(|t| t.get("hooks").is_some()));
    let extensions = at(&["setuptools", "ext-modules"]).is_some();
    let pdm_script = at(&["pdm", "build", "custom-hook"]).is_some()
        || at(&["pdm", "build", "run-setuptools"]).is_some();
    let poetry_script = at(&["poetry", "build"]).is_some();
    !(hatch_hooks || extensions || pdm_script || poetry_script || other_layout(&at))
}

/// Whether the backend's settings put the code somewhere the layout's rule
/// (the root or `src/`) would not find it: a setuptools `package-dir` or
/// `where`, hatch `packages` or `sources`, pdm's `package-dir` or poetry's
/// `from` naming another folder.
fn other_layout<'t>(at: &dyn Fn(&[&str]) -> Option<&'t toml::Value>) -> bool {
    let mut folders: Vec<String> = Vec::new();
    let mut strings = |value: Option<&toml::Value>, first_part: bool| {
        let values: Vec<&toml::Value> = match value {
            Some(toml::Value::Array(items)) => items.iter().collect(),
            Some(toml::Value::Table(table)) => table.values().collect(),
            Some(other) => vec![other],
            None => Vec::new(),
        };
        for value in values {
            let text = match value {
                // poetry's `{include = "pkg"}` is at the root
                toml::Value::Table(t) => t.get("from").map_or(Some(""), |f| f.as_str()),
                other => other.as_str(),
            };
            // an unexpected value is taken for another folder
            let text = text.unwrap_or("?");
            let folder = if first_part {
                text.rsplit_once('/').map_or("", |(dir, _)| dir)
            } else {
                text
            };
            folders.push(folder.to_owned());
        }
    };
    strings(at(&["setuptools", "package-dir"]), false);
    strings(at(&["setuptools", "packages", "find", "where"]), false);
    strings(
        at(&["hatch", "build", "targets", "wheel", "packages"]),
        true,
    );
    strings(
        at(&["hatch", "build", "targets", "wheel", "sources"]),
        false,
    );
    strings(at(&["hatch", "build", "sources"]), false);
    strings(at(&["pdm", "build", "package-dir"]), false);
    strings(at(&["poetry", "packages"]), false);
    folders.iter().any(|folder| {
        let top = folder
            .trim_start_matches("./")
            .split('/')
            .next()
            .unwrap_or("");
        !matches!(top, "" | "." | "src")
    })
}

fn dynamic(project: &toml::Table) -> bool {
    match project.get("dynamic") {
        None => false,
        Some(toml::Value::Array(items)) => items
            .iter()
            .any(|i| i.as_str().is_none_or(|f| NEEDED.contains(&f))),
        Some(_) => true,
    }
}

fn string(value: &toml::Value, key: &str) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("pyproject.toml: [project] {key} must be a string"))
}

/// PEP 508 names: letters, digits, `.`, `_`, `-`, starting and ending with
/// a letter or digit.
fn check_name(name: String) -> Result<String, String> {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let ok = name.len() <= MAX_NAME
        && edge(name.chars().next())
        && edge(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(name)
    } else {
        Err(format!(
            "pyproject.toml: [project] name {:?} is not a project name (letters, digits, `.`, `_`, \
             `-`, at most {MAX_NAME} characters)",
            shown(&name)
        ))
    }
}

/// A PEP 440 version's characters: starts with a digit (or `v` and one),
/// then letters, digits, `.`, `!`, `+`, `-`, `_`.
fn check_version(version: String) -> Result<String, String> {
    let digits = version.strip_prefix(['v', 'V']).unwrap_or(&version);
    let ok = version.len() <= MAX_VERSION
        && digits.starts_with(|c: char| c.is_ascii_digit())
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '!' | '+' | '-' | '_'));
    if ok {
        Ok(version)
    } else {
        Err(format!(
            "pyproject.toml: [project] version {:?} is not a version (PEP 440, at most \
             {MAX_VERSION} characters)",
            shown(&version)
        ))
    }
}

/// The name as `importlib.metadata` compares it: lowercase, runs of
/// `-_.` as one `_` (also the dist-info folder's name).
pub fn normalized(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('_') {
                out.push('_');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// The dependencies and the test extras, the project's own extras named
/// from them expanded (`name[core]` in `tests`), each line checked.
fn requires(project: &toml::Table, name: &str) -> Result<Vec<String>, String> {
    let own = normalized(name);
    let extras = project.get("optional-dependencies");
    let list = |value: Option<&toml::Value>, key: &str| -> Result<Vec<String>, String> {
        let Some(value) = value else {
            return Ok(Vec::new());
        };
        let items = value.as_array().ok_or(format!(
            "pyproject.toml: [project] {key} must be a list of strings"
        ))?;
        items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(format!(
                "pyproject.toml: [project] {key} must be a list of strings"
            ))
    };
    // Each extra found by its normalized name once (a hostile table may
    // hold thousands), and the expansion bounded while it runs.
    let by_name: HashMap<String, &toml::Value> = extras
        .and_then(|e| e.as_table())
        .map(|t| t.iter().map(|(k, v)| (normalized(k), v)).collect())
        .unwrap_or_default();
    let too_many = || format!("pyproject.toml: more than {MAX_REQUIREMENTS} dependencies");
    let mut lines = list(project.get("dependencies"), "dependencies")?;
    let mut wanted: Vec<String> = TEST_EXTRAS.split(',').map(str::to_owned).collect();
    let mut done = BTreeSet::new();
    while let Some(extra) = wanted.pop() {
        let extra = normalized(&extra);
        if done.contains(&extra) {
            continue;
        }
        if done.len() >= MAX_EXTRAS {
            return Err(format!(
                "pyproject.toml: the test extras name more than {MAX_EXTRAS} extras"
            ));
        }
        done.insert(extra.clone());
        let key = format!("optional-dependencies.{extra}");
        for line in list(by_name.get(&extra).copied(), &key)? {
            match own_extras(&line, &own) {
                Some(more) => wanted.extend(more),
                None => lines.push(line),
            }
            if lines.len() > MAX_REQUIREMENTS || wanted.len() > MAX_REQUIREMENTS {
                return Err(too_many());
            }
        }
    }
    if lines.len() > MAX_REQUIREMENTS {
        return Err(too_many());
    }
    let mut checked = Vec::new();
    for line in lines {
        let line = requirements::check(&line).map_err(|why| {
            format!(
                "pyproject.toml [project] dependencies: `{}` is refused: {why}",
                shown(&line)
            )
        })?;
        if !checked.contains(&line) {
            checked.push(line);
        }
    }
    Ok(checked)
}

/// For a requirement on the project itself (`name[a,b]`), its extras.
fn own_extras(line: &str, own: &str) -> Option<Vec<String>> {
    let line = line.trim();
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(line.len());
    if normalized(&line[..end]) != own {
        return None;
    }
    let rest = line[end..].trim_start();
    let extras = rest
        .strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .map(|(inside, _)| inside)
        .unwrap_or("");
    Some(
        extras
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

/// A value as shown in a refusal: at most 100 characters, controls escaped
/// (a newline would forge a line of the reason or the build log).
fn shown(value: &str) -> String {
    value
        .chars()
        .take(MAX_NAME)
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

#[cfg(test)]
#[path = "static_meta/tests.rs"]
mod tests;
