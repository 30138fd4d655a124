//! A tree's manifest as a client sends it: a name and, per file, its path,
//! mode and sha256 (and size). Everything in it is hostile input: each path
//! is checked (relative, no `..`, no empty or `.` segment, no control
//! character, not the payload's own `.te/`), only regular files are taken,
//! and the whole is held to the project caps. Its id is the sha256 of its
//! canonical form, so the same tree sent twice is one tree.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{config::Caps, error::AppError};

/// A regular file (git's mode for one).
pub const MODE_FILE: u32 = 0o100644;
/// An executable regular file.
pub const MODE_EXECUTABLE: u32 = 0o100755;
/// The longest path taken (bytes), and the longest segment.
const MAX_PATH_BYTES: usize = 1024;
const MAX_SEGMENT_BYTES: usize = 255;
/// The longest tree name.
const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Entry {
    /// Relative to the tree's root, `/`-separated.
    pub path: String,
    /// 33188 (0o100644) or 33261 (0o100755): regular files only.
    pub mode: u32,
    /// sha256 of the content, lowercase hex.
    pub sha256: String,
    /// The content's length in bytes.
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Manifest {
    /// The tree's name (its folder's name): the project's name in runs, so
    /// runs of one tree's later versions share dependency images.
    pub name: String,
    pub files: Vec<Entry>,
}

impl Manifest {
    /// Checks every field and the caps: 422 for a bad path, mode, hash or
    /// name, 413 (naming the cap) for too many files or bytes. The files
    /// come back sorted by path.
    pub fn check(mut self, caps: Caps) -> Result<Manifest, AppError> {
        check_name(&self.name)?;
        if self.files.len() > caps.files {
            return Err(AppError::TooLarge(format!(
                "the tree has {} files, over the cap of {} (PROJECT_CAP_FILES); \
                 list generated or vendored folders in its .gitignore",
                self.files.len(),
                caps.files
            )));
        }
        let bytes = self
            .files
            .iter()
            .fold(0u64, |sum, f| sum.saturating_add(f.size));
        if bytes > caps.bytes {
            return Err(AppError::TooLarge(format!(
                "the tree is {:.1} MiB, over the cap of {:.1} MiB (PROJECT_CAP_BYTES); \
                 list large data or generated files in its .gitignore",
                bytes as f64 / 1048576.0,
                caps.bytes as f64 / 1048576.0
            )));
        }
        self.files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut folders = BTreeSet::new();
        for (i, entry) in self.files.iter().enumerate() {
            check_path(&entry.path)?;
            check_mode(entry)?;
            if !is_sha256(&entry.sha256) {
                return Err(invalid(
                    &entry.path,
                    "its sha256 is not 64 lowercase hex digits",
                ));
            }
            if i > 0 && self.files[i - 1].path == entry.path {
                return Err(invalid(&entry.path, "it is listed twice"));
            }
            let mut at = 0;
            while let Some(slash) = entry.path[at..].find('/') {
                folders.insert(&entry.path[..at + slash]);
                at += slash + 1;
            }
        }
        if let Some(both) = self
            .files
            .iter()
            .find(|f| folders.contains(f.path.as_str()))
        {
            return Err(invalid(&both.path, "it is both a file and a folder"));
        }
        Ok(self)
    }

    /// The tree's id: sha256 over its name and its sorted entries.
    pub fn id(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(b"te-tree-1\0");
        hash.update(self.name.as_bytes());
        hash.update(b"\0");
        for f in &self.files {
            hash.update(format!(
                "{}\0{:o}\0{}\0{}\n",
                f.path, f.mode, f.sha256, f.size
            ));
        }
        hex(&hash.finalize())
    }

    /// The distinct contents it names.
    pub fn blobs(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self.files.iter().map(|f| f.sha256.as_str()).collect();
        set.into_iter().map(str::to_owned).collect()
    }

    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn invalid(path: &str, why: &str) -> AppError {
    let shown: String = path.chars().take(200).collect();
    AppError::Invalid(format!("tree file {shown:?} is refused: {why}"))
}

fn check_name(name: &str) -> Result<(), AppError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(AppError::Invalid(format!(
            "tree name {:?}: 1 to {MAX_NAME_CHARS} letters, digits, `.`, `_` or `-`, \
             not starting with `.` or `-`",
            name.chars().take(100).collect::<String>()
        )))
    }
}

/// A path a folder can hold: relative, every segment a plain name.
pub fn check_path(path: &str) -> Result<(), AppError> {
    if path.is_empty() || path.len() > MAX_PATH_BYTES {
        return Err(invalid(path, "a path has 1 to 1024 bytes"));
    }
    if path.starts_with('/') {
        return Err(invalid(path, "an absolute path"));
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return Err(invalid(path, "a control character or a backslash in it"));
    }
    for segment in path.split('/') {
        match segment {
            "" => return Err(invalid(path, "an empty segment (`//` or a trailing `/`)")),
            "." | ".." => return Err(invalid(path, "a `.` or `..` segment")),
            s if s.len() > MAX_SEGMENT_BYTES => {
                return Err(invalid(path, "a segment over 255 bytes"))
            }
            _ => {}
        }
    }
    if path == ".te" || path.starts_with(".te/") {
        return Err(invalid(path, "`.te/` is where the run's own metadata goes"));
    }
    Ok(())
}

fn check_mode(entry: &Entry) -> Result<(), AppError> {
    match entry.mode {
        MODE_FILE | MODE_EXECUTABLE => Ok(()),
        mode => {
            let kind = match mode & 0o170000 {
                0o120000 => "a symlink",
                0o010000 => "a FIFO",
                0o020000 | 0o060000 => "a device",
                0o040000 => "a folder",
                0o140000 => "a socket",
                _ => "not a regular file's mode",
            };
            Err(invalid(
                &entry.path,
                &format!(
                    "mode {mode:o} is {kind}; a tree holds regular files only (100644 or 100755)"
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, mode: u32) -> Entry {
        Entry {
            path: path.into(),
            mode,
            sha256: "a".repeat(64),
            size: 1,
        }
    }

    fn manifest(files: Vec<Entry>) -> Manifest {
        Manifest {
            name: "proj".into(),
            files,
        }
    }

    #[test]
    fn traversing_absolute_and_odd_paths_are_refused() {
        for bad in [
            "/etc/passwd",
            "../x.py",
            "a/../../x.py",
            "a//b.py",
            "a/",
            "./a.py",
            "",
            "a\nb.py",
            ".te/meta.json",
            "a\\..\\b",
        ] {
            let err = manifest(vec![entry(bad, MODE_FILE)]).check(Caps::default());
            assert!(matches!(err, Err(AppError::Invalid(_))), "{bad:?}");
        }
        let ok = manifest(vec![
            entry("src/pkg/a.py", MODE_FILE),
            entry(".gitignore", MODE_EXECUTABLE),
        ]);
        assert!(ok.check(Caps::default()).is_ok());
    }

    #[test]
    fn only_regular_files_are_taken() {
        for (mode, kind) in [
            (0o120777, "symlink"),
            (0o010644, "FIFO"),
            (0o020644, "device"),
        ] {
            let err = manifest(vec![entry("x", mode)])
                .check(Caps::default())
                .unwrap_err();
            assert!(err.to_string().contains(kind), "{err}");
        }
    }

    #[test]
    fn caps_are_named_and_duplicates_refused() {
        let few = Caps {
            bytes: 100,
            files: 1,
        };
        let err = manifest(vec![entry("a", MODE_FILE), entry("b", MODE_FILE)])
            .check(few)
            .unwrap_err();
        assert!(
            matches!(&err, AppError::TooLarge(m) if m.contains("PROJECT_CAP_FILES")),
            "{err}"
        );
        let mut big = entry("a", MODE_FILE);
        big.size = 101;
        let err = manifest(vec![big]).check(few).unwrap_err();
        assert!(
            matches!(&err, AppError::TooLarge(m) if m.contains("PROJECT_CAP_BYTES")),
            "{err}"
        );
        let twice = manifest(vec![entry("a", MODE_FILE), entry("a", MODE_FILE)]);
        assert!(twice.check(Caps::default()).is_err());
        let both = manifest(vec![entry("a", MODE_FILE), entry("a/b", MODE_FILE)]);
        assert!(both.check(Caps::default()).is_err());
    }

    #[test]
    fn the_id_ignores_the_order_sent_and_follows_content() {
        let a = manifest(vec![entry("b", MODE_FILE), entry("a", MODE_FILE)])
            .check(Caps::default())
            .unwrap();
        let b = manifest(vec![entry("a", MODE_FILE), entry("b", MODE_FILE)])
            .check(Caps::default())
            .unwrap();
        assert_eq!(a.id(), b.id());
        let mut c = b.clone();
        c.files[0].sha256 = "b".repeat(64);
        assert_ne!(a.id(), c.id());
        assert!(is_sha256(&a.id()));
    }
}
