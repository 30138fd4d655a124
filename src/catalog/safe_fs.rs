//! Reading files of an untrusted tree: only regular files, reached from a
//! trusted root one component at a time without following any symlink,
//! opened so that a FIFO or a device can never block the thread, and never
//! read past a cap. A hostile project names whatever it likes `.gitignore`
//! or `conftest.py`, and a row in the database may name any path at all.

use std::{
    fs::{File, Metadata, OpenOptions},
    io::{self, Read},
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

/// Why a file of the tree was not read; each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0:?} is not a plain relative path (no `..`, no leading `/`)")]
    BadPath(String),
    #[error("{path} is reached through {through}, which is a symlink or not a folder")]
    NotFolder { path: String, through: String },
    #[error("{0} is not a regular file (a symlink, a FIFO or a device is never read)")]
    NotRegular(String),
    #[error("{0} does not exist")]
    Missing(String),
    #[error("{0} is larger than {1} bytes")]
    TooLarge(String, u64),
    #[error("reading {0}: {1}")]
    Io(String, #[source] io::Error),
}

/// `relative`'s parts, when it is a plain relative path: `/`-separated, no
/// empty part, no `.` or `..`, no NUL.
fn plain_parts(relative: &str) -> Result<Vec<&str>, ReadError> {
    let parts: Vec<&str> = relative.split('/').collect();
    let plain = !relative.contains('\0')
        && parts
            .iter()
            .all(|p| !p.is_empty() && *p != "." && *p != "..");
    if plain {
        Ok(parts)
    } else {
        Err(ReadError::BadPath(relative.to_owned()))
    }
}

fn metadata_of(path: &Path, shown: &str) -> Result<Metadata, ReadError> {
    std::fs::symlink_metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => ReadError::Missing(shown.to_owned()),
        _ => ReadError::Io(shown.to_owned(), e),
    })
}

/// The path of `relative` under `root`, once every folder on the way is a
/// real folder (not a symlink to one) and the file itself a regular file.
pub fn regular_beneath(root: &Path, relative: &str) -> Result<PathBuf, ReadError> {
    let parts = plain_parts(relative)?;
    let mut path = root.to_owned();
    let (last, folders) = parts.split_last().expect("split yields a part");
    for (i, folder) in folders.iter().enumerate() {
        path.push(folder);
        let through = parts[..=i].join("/");
        if !metadata_of(&path, &through)?.file_type().is_dir() {
            return Err(ReadError::NotFolder {
                path: relative.to_owned(),
                through,
            });
        }
    }
    path.push(last);
    if !metadata_of(&path, relative)?.file_type().is_file() {
        return Err(ReadError::NotRegular(relative.to_owned()));
    }
    Ok(path)
}

/// Reads `relative` under `root` (see [`regular_beneath`]), at most `cap` bytes.
pub fn read_beneath(root: &Path, relative: &str, cap: u64) -> Result<Vec<u8>, ReadError> {
    let path = regular_beneath(root, relative)?;
    read_regular(&path, relative, cap)
}

/// Reads a regular file of at most `cap` bytes; `shown` names it in errors.
/// The file is checked before it is opened (a FIFO is never opened), opened
/// without following a symlink and without blocking, and checked again once
/// open, so a file swapped in between is refused too.
pub fn read_regular(path: &Path, shown: &str, cap: u64) -> Result<Vec<u8>, ReadError> {
    let before = metadata_of(path, shown)?;
    check_regular(&before, shown, cap)?;
    let io = |e| ReadError::Io(shown.to_owned(), e);
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    let opened = file.metadata().map_err(io)?;
    check_regular(&opened, shown, cap)?;
    if (opened.dev(), opened.ino()) != (before.dev(), before.ino()) {
        return Err(ReadError::NotRegular(shown.to_owned()));
    }
    read_capped(file, shown, cap)
}

fn check_regular(meta: &Metadata, shown: &str, cap: u64) -> Result<(), ReadError> {
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular(shown.to_owned()));
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge(shown.to_owned(), cap));
    }
    Ok(())
}

/// Reads to the end, but never more than `cap` bytes: the file may grow
/// while it is read.
fn read_capped(file: File, shown: &str, cap: u64) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::Io(shown.to_owned(), e))?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge(shown.to_owned(), cap));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("te-safe-fs-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(dir.join("real")).unwrap();
        std::fs::write(dir.join("real/test_a.py"), "ok").unwrap();
        dir
    }

    #[test]
    fn a_regular_file_under_real_folders_is_read() {
        let dir = scratch();
        let bytes = read_beneath(&dir, "real/test_a.py", 10);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(bytes.unwrap(), b"ok");
    }

    #[test]
    fn a_file_under_a_symlinked_folder_is_refused_by_name() {
        let dir = scratch();
        std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
        let err = read_beneath(&dir, "link/test_a.py", 10).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(err, ReadError::NotFolder { .. }), "{err}");
        assert!(err.to_string().contains("link/test_a.py"), "{err}");
    }

    #[test]
    fn symlinks_fifos_and_devices_are_never_opened() {
        let dir = scratch();
        std::os::unix::fs::symlink("/dev/zero", dir.join("zero")).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(dir.join("fifo"))
            .status()
            .unwrap();
        assert!(made.success());
        let results = [
            read_beneath(&dir, "zero", 10),
            read_beneath(&dir, "fifo", 10),
            read_regular(Path::new("/dev/zero"), "/dev/zero", 10),
        ];
        std::fs::remove_dir_all(&dir).unwrap();
        for result in results {
            assert!(
                matches!(result, Err(ReadError::NotRegular(_))),
                "{result:?}"
            );
        }
    }

    #[test]
    fn traversing_absolute_and_empty_paths_are_refused() {
        let dir = scratch();
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "real/../real/test_a.py",
            "",
            "a//b",
        ] {
            let err = read_beneath(&dir, bad, 10).unwrap_err();
            assert!(matches!(err, ReadError::BadPath(_)), "{bad}: {err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_over_the_cap_is_refused() {
        let dir = scratch();
        let err = read_beneath(&dir, "real/test_a.py", 1).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(err, ReadError::TooLarge(_, 1)), "{err}");
    }
}
