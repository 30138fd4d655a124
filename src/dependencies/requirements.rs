//! Requirement lines are data. A project's requirements files, its build
//! backend's requirements and its own metadata may name packages (PEP 508:
//! a name, extras, version specifiers, markers) and nothing else: no pip
//! option (`-e`, `--index-url`, `--find-links`...), no path, no URL. pip
//! reads a requirements file as options too, so a line that slipped through
//! could point pip at any host or folder; here it is refused with the line
//! named. `-r` and `-c` may include another requirements file of the
//! project, which is checked the same way.

use std::collections::BTreeSet;

use super::{DeclaringFile, ProjectSource};

/// How deep `-r` inclusions may nest.
const MAX_DEPTH: usize = 8;
/// More requirement lines than this are refused (a real project has dozens).
const MAX_LINES: usize = 2_000;
/// The longest requirement line accepted.
const MAX_LINE: usize = 1_000;

/// The validated requirements of a project's files: lines pip installs and
/// lines it is constrained by.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Requirements {
    pub install: Vec<String>,
    pub constraints: Vec<String>,
}

/// A line that is not a requirement, named so a person can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: `{line}` is refused: {why}")]
pub struct Refused {
    /// `requirements.txt line 3`, or where the line came from.
    pub origin: String,
    pub line: String,
    pub why: String,
}

impl Requirements {
    /// Every line of the project's installed requirements files (and what
    /// they include), checked.
    pub fn of_files(project: &ProjectSource) -> Result<Requirements, Refused> {
        let mut out = Requirements::default();
        let mut seen = BTreeSet::new();
        for path in project.requirement_files() {
            read_file(project, path, Kind::Install, 0, &mut seen, &mut out)?;
        }
        // A tree whose install the server writes: its declared dependencies
        // and test extras (checked already), as pip would have read them.
        if let Some(meta) = project.written() {
            out.add("pyproject.toml [project] dependencies", &meta.requires)?;
            // pip never installs the project itself from the index (a
            // dependency naming it would put that package before the tree's
            // code on sys.path): a requirement on it fails with pip's reason.
            out.constraints.push(format!("{}<0", meta.name));
        }
        Ok(out)
    }

    /// Adds requirements from elsewhere (a build backend's, a project's
    /// metadata), each checked; `origin` names where they came from.
    pub fn add(&mut self, origin: &str, lines: &[String]) -> Result<(), Refused> {
        for line in lines {
            let checked = check(line).map_err(|why| Refused {
                origin: origin.to_owned(),
                line: shown(line),
                why,
            })?;
            self.push_install(checked, origin)?;
        }
        Ok(())
    }

    fn push_install(&mut self, line: String, origin: &str) -> Result<(), Refused> {
        if self.install.len() + self.constraints.len() >= MAX_LINES {
            return Err(Refused {
                origin: origin.to_owned(),
                line: shown(&line),
                why: format!("more than {MAX_LINES} requirements"),
            });
        }
        if !self.install.contains(&line) {
            self.install.push(line);
        }
        Ok(())
    }

    /// The lines as a requirements file pip reads.
    pub fn install_file(&self) -> String {
        self.install.iter().map(|l| format!("{l}\n")).collect()
    }

    pub fn constraints_file(&self) -> String {
        self.constraints.iter().map(|l| format!("{l}\n")).collect()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Install,
    Constraint,
}

fn read_file(
    project: &ProjectSource,
    path: &str,
    kind: Kind,
    depth: usize,
    seen: &mut BTreeSet<(String, bool)>,
    out: &mut Requirements,
) -> Result<(), Refused> {
    if !seen.insert((path.to_owned(), kind == Kind::Constraint)) {
        return Ok(());
    }
    let file = find(project, path).expect("only declaring files are read");
    let text = String::from_utf8_lossy(&file.bytes);
    for (number, line) in logical_lines(&text) {
        let origin = format!("{path} line {number}");
        let refuse = |why: String| Refused {
            origin: origin.clone(),
            line: shown(&line),
            why,
        };
        if let Some((option, target)) = inclusion(&line) {
            let nested = if option == "r" {
                kind
            } else {
                Kind::Constraint
            };
            let target = included_path(path, target).map_err(refuse)?;
            if find(project, &target).is_none() {
                return Err(refuse(format!(
                    "{target} is not a requirements file of the project \
                     (only requirements*.txt, constraints*.txt and requirements/*.txt \
                     at the project's root are read)"
                )));
            }
            if depth >= MAX_DEPTH {
                return Err(refuse(format!("inclusions nest deeper than {MAX_DEPTH}")));
            }
            read_file(project, &target, nested, depth + 1, seen, out)?;
            continue;
        }
        let checked = check(&line).map_err(refuse)?;
        match kind {
            Kind::Install => out.push_install(checked, &origin)?,
            Kind::Constraint => {
                if out.install.len() + out.constraints.len() >= MAX_LINES {
                    return Err(refuse(format!("more than {MAX_LINES} requirements")));
                }
                if !out.constraints.contains(&checked) {
                    out.constraints.push(checked)
                }
            }
        }
    }
    Ok(())
}

fn find<'a>(project: &'a ProjectSource, path: &str) -> Option<&'a DeclaringFile> {
    project.declaring.iter().find(|f| f.path == path)
}

/// The file's lines as pip joins them (a trailing `\` continues a line),
/// without comments and blank lines, numbered from 1.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (index, raw) in text.lines().enumerate() {
        if current.is_empty() {
            start = index + 1;
        }
        match raw.strip_suffix('\\') {
            // pip ends a comment line there, backslash or not
            Some(head) if !raw.trim_start().starts_with('#') => current.push_str(head),
            _ => {
                current.push_str(raw);
                let line = strip_comment(&current).trim().to_owned();
                if !line.is_empty() {
                    out.push((start, line));
                }
                current.clear();
            }
        }
    }
    let line = strip_comment(&current).trim().to_owned();
    if !line.is_empty() {
        out.push((start, line));
    }
    out
}

/// pip's comments: `#` at the start or after whitespace.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

/// `-r FILE`, `--requirement=FILE`, `-c FILE`...: the option (`r` or `c`)
/// and the file.
fn inclusion(line: &str) -> Option<(&'static str, &str)> {
    for (option, short, long) in [("r", "-r", "--requirement"), ("c", "-c", "--constraint")] {
        if let Some(rest) = line.strip_prefix(long) {
            if let Some(value) = rest.strip_prefix('=') {
                return Some((option, value.trim()));
            }
            if rest.is_empty() || rest.starts_with(char::is_whitespace) {
                return Some((option, rest.trim()));
            }
        } else if let Some(rest) = line.strip_prefix(short) {
            // `-r file`, `-r=file` and pip's `-rfile`.
            return Some((option, rest.strip_prefix('=').unwrap_or(rest).trim()));
        }
    }
    None
}

/// The included file's path relative to the project's root: relative to
/// the including file's folder, never absolute, never leaving the root.
fn included_path(from: &str, target: &str) -> Result<String, String> {
    if target.is_empty() {
        return Err("names no file".into());
    }
    if target.contains("://") || target.starts_with('/') || target.contains('\\') {
        return Err("only a requirements file of the project may be included".into());
    }
    let mut parts: Vec<&str> = match from.rsplit_once('/') {
        Some((dir, _)) => dir.split('/').collect(),
        None => Vec::new(),
    };
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("it leaves the project's folder".into());
                }
            }
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

/// One requirement (PEP 508 without a URL), with pip's `--hash` options at
/// most; returns it trimmed. The reason says what is wrong.
pub fn check(line: &str) -> Result<String, String> {
    let line = line.trim();
    if line.len() > MAX_LINE {
        return Err(format!("longer than {MAX_LINE} characters"));
    }
    if line.starts_with('-') {
        return Err(
            "pip options are not accepted in requirements (only package names, extras, \
             versions and markers; an operator may add an index or links through the \
             server's PIP_* settings)"
                .into(),
        );
    }
    if line.contains("://") || line.contains('@') {
        return Err("URLs are not accepted (PEP 508 direct references are refused)".into());
    }
    if line.contains(['$', '`', '\\']) {
        return Err("`$`, backquotes and backslashes are not accepted".into());
    }
    if line.chars().any(|c| c.is_whitespace() && c != ' ') {
        return Err("only plain spaces may separate its parts".into());
    }
    // pip splits a line at its first space-separated token that starts
    // with `-` and reads the rest as options (unquoted as a shell would):
    // that rest may hold `--hash=` options and nothing else.
    let tokens: Vec<&str> = line.split(' ').filter(|t| !t.is_empty()).collect();
    let first_option = tokens
        .iter()
        .position(|t| t.starts_with('-'))
        .unwrap_or(tokens.len());
    if let Some(token) = tokens[first_option..].iter().find(|t| !is_hash_option(t)) {
        return Err(format!(
            "only `--hash=` options may follow a requirement, not `{token}`"
        ));
    }
    let requirement = tokens[..first_option].join(" ");
    let (spec, marker) = match requirement.split_once(';') {
        Some((spec, marker)) => (spec.trim(), Some(marker.trim())),
        None => (requirement.trim(), None),
    };
    let name_end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
        .unwrap_or(spec.len());
    let name = &spec[..name_end];
    if name.is_empty()
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Err("it does not start with a package name (paths are not accepted)".into());
    }
    let rest = &spec[name_end..];
    if rest.contains('/') {
        return Err("paths are not accepted".into());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || " ._-*+!,<>=~[]()".contains(c);
    if let Some(bad) = rest.chars().find(|c| !allowed(*c)) {
        return Err(format!("`{bad}` has no place in a version specifier"));
    }
    if let Some(marker) = marker {
        let allowed = |c: char| c.is_ascii_alphanumeric() || " ._-*+!,<>=~()'\"".contains(c);
        if marker.is_empty() || marker.chars().any(|c| !allowed(c)) {
            return Err("the environment marker holds characters markers do not use".into());
        }
    }
    Ok(tokens.join(" "))
}

fn is_hash_option(token: &str) -> bool {
    let Some(value) = token.strip_prefix("--hash=") else {
        return false;
    };
    let Some((algorithm, digest)) = value.split_once(':') else {
        return false;
    };
    matches!(algorithm, "sha256" | "sha384" | "sha512")
        && !digest.is_empty()
        && digest.chars().all(|c| c.is_ascii_hexdigit())
}

/// A line as shown in a message: at most 200 characters.
fn shown(line: &str) -> String {
    let mut out: String = line.chars().take(200).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests;
