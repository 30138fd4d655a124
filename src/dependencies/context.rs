//! What the steps of a build receive, each as one tar. A download step
//! gets, in a volume of its own, its script, the forwarder, the checked
//! requirements and pip's settings (the index, the CA bundle, links: the
//! only step that sees them, and it runs no code of the project's). A step
//! that runs the project's code gets, at `/`, its script, the checked
//! requirements and, when the project installs itself, its tree at the
//! runtime path; nothing of pip's settings.

use std::path::Path;

mod scripts;

use anyhow::{Context, Result};
use scripts::{build_script, FETCH, REQUIRES};

use super::{egress, own_files, requirements::Requirements, ProjectSource, RUNTIME_ROOT, VENV};
use crate::{catalog::safe_fs, config::DependencyBuildConfig};

/// Where a project step's own files go (removed before the commit).
pub const BUILD_DIR: &str = "/tmp/te-build";
/// Where the kept wheels are mounted: read-write in the wheels download
/// (the runner image makes the folder uid 1000's, so the volume's first
/// mount is), read-only at `KEPT_RO` everywhere else.
pub const KEPT_RW: &str = "/var/cache/te-pip";
pub const KEPT_RO: &str = "/var/cache/te-wheels";
/// Where a build's own downloads (sources among them) are mounted:
/// read-write in the sources download (at `KEPT_RW`'s folder, for its
/// owner), read-only at `DOWNLOADS_RO` in the project's steps.
pub const DOWNLOADS_RO: &str = "/var/cache/te-dl";
/// Where the download steps' own files are (a volume of the build's: the
/// wheels pass receives them, the sources pass, which runs third-party
/// code, reads them read-only).
pub const FETCH_DIR: &str = "/var/cache/te-fetch";
/// A tree larger than this is not built.
pub const MAX_TREE_BYTES: u64 = 64 * 1024 * 1024;
/// The earliest file time in a tree sent: zip (wheels) cannot hold older.
const EARLIEST_MTIME: u64 = 315_619_200; // 1980-01-02

/// Folders never sent: version control, virtualenvs, caches, build outputs.
const SKIPPED_DIRS: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    "__pycache__",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "node_modules",
    "build",
    "dist",
];

/// The tar a download step gets in `FETCH_DIR`. The sources pass, where
/// third-party code runs, gets the index URLs without their credentials.
pub fn fetch_context(
    reqs: &Requirements,
    settings: &DependencyBuildConfig,
    credentials: bool,
) -> Result<Vec<u8>> {
    let mut tar = Tar::new();
    let mut env = vec![
        ("PIP_NO_CACHE_DIR".to_owned(), "1".to_owned()),
        ("PIP_DISABLE_PIP_VERSION_CHECK".to_owned(), "1".to_owned()),
        ("PIP_NO_INPUT".to_owned(), "1".to_owned()),
        ("PIP_PROGRESS_BAR".to_owned(), "off".to_owned()),
        (
            "PIP_PROXY".to_owned(),
            format!("http://127.0.0.1:{}", egress::FORWARD_PORT),
        ),
    ];
    let passed = [
        ("PIP_INDEX_URL", &settings.pip_index_url),
        ("PIP_EXTRA_INDEX_URL", &settings.pip_extra_index_url),
        ("PIP_TRUSTED_HOST", &settings.pip_trusted_host),
        ("PIP_DEFAULT_TIMEOUT", &settings.pip_default_timeout),
    ];
    for (name, value) in passed {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            let value = if credentials {
                value.to_owned()
            } else {
                without_credentials(value)
            };
            env.push((name.to_owned(), value));
        }
    }
    if let Some(cert) = &settings.pip_cert {
        let bytes = std::fs::read(cert)
            .with_context(|| format!("reading the CA bundle PIP_CERT={}", cert.display()))?;
        tar.file("ca.pem", &bytes, 0o644)?;
        env.push(("PIP_CERT".to_owned(), format!("{FETCH_DIR}/ca.pem")));
    }
    let links = find_links(&mut tar, settings)?;
    if !links.is_empty() {
        env.push(("PIP_FIND_LINKS".to_owned(), links.join(" ")));
    }
    let env_file: String = env
        .iter()
        .map(|(k, v)| format!("export {k}={}\n", quote(v)))
        .collect();
    tar.file("pip.env", env_file.as_bytes(), 0o600)?;
    tar.file("fetch.sh", FETCH.as_bytes(), 0o755)?;
    tar.file("egress.py", egress::SCRIPT.as_bytes(), 0o644)?;
    tar.file("requirements.txt", reqs.install_file().as_bytes(), 0o644)?;
    tar.file("constraints.txt", reqs.constraints_file().as_bytes(), 0o644)?;
    tar.finish()
}

/// URLs (space-separated) without their `user:password@`.
fn without_credentials(urls: &str) -> String {
    urls.split_whitespace()
        .map(|url| match url.split_once("://") {
            Some((scheme, rest)) => {
                let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                let host = rest[..end]
                    .rsplit_once('@')
                    .map_or(&rest[..end], |(_, h)| h);
                format!("{scheme}://{host}{}", &rest[end..])
            }
            None => url.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The operator's `PIP_FIND_LINKS`: URLs passed on, a local folder's files
/// copied in.
fn find_links(tar: &mut Tar, settings: &DependencyBuildConfig) -> Result<Vec<String>> {
    let mut passed = Vec::new();
    let Some(links) = settings.pip_find_links.as_deref() else {
        return Ok(passed);
    };
    for link in links.split_whitespace() {
        if link.contains("://") {
            passed.push(link.to_owned());
        } else if Path::new(link).is_dir() {
            tar.dir("find-links")?;
            for entry in std::fs::read_dir(link).with_context(|| format!("listing {link}"))? {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let bytes = std::fs::read(entry.path())?;
                    tar.file(&format!("find-links/{name}"), &bytes, 0o644)?;
                }
            }
            passed.push(format!("{FETCH_DIR}/find-links"));
        }
    }
    Ok(passed)
}

/// The tar a step running the project's code gets at `/`.
pub fn build_context(
    project: &ProjectSource,
    reqs: &Requirements,
    project_args: &[String],
) -> Result<Vec<u8>> {
    let mut tar = Tar::new();
    let build_dir = BUILD_DIR.trim_start_matches('/');
    tar.dir(build_dir)?;
    tar.file(
        &format!("{build_dir}/build.sh"),
        build_script(project_args).as_bytes(),
        0o755,
    )?;
    tar.file(
        &format!("{build_dir}/requires.py"),
        REQUIRES.as_bytes(),
        0o644,
    )?;
    tar.file(
        &format!("{build_dir}/requirements.txt"),
        reqs.install_file().as_bytes(),
        0o644,
    )?;
    tar.file(
        &format!("{build_dir}/constraints.txt"),
        reqs.constraints_file().as_bytes(),
        0o644,
    )?;
    // What the server writes for a tree with static metadata: the install
    // step copies it into the venv.
    if let Some(meta) = project.written() {
        add_own_files(
            &mut tar,
            &format!("{build_dir}/own"),
            own_files::files(meta),
        )?;
    }
    // Only a project that installs itself needs its files; one that only
    // lists requirements, or whose install the server writes, builds from
    // the checked lines, running none of its code (its image is shared by
    // every project declaring the same).
    if !project_args.is_empty() {
        add_tree(
            &mut tar,
            &project.root,
            RUNTIME_ROOT.trim_start_matches('/'),
        )?;
    }
    tar.finish()
}

/// Files under `target`, each folder made explicitly (for the builder's
/// user, who removes them).
fn add_own_files(tar: &mut Tar, target: &str, files: Vec<own_files::OwnFile>) -> Result<()> {
    let mut made = std::collections::BTreeSet::new();
    tar.dir(target)?;
    for (path, bytes, mode) in files {
        let mut folder = String::from(target);
        for part in path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, d)| d)
        {
            folder = format!("{folder}/{part}");
            if made.insert(folder.clone()) {
                tar.dir(&folder)?;
            }
        }
        tar.file(&format!("{target}/{path}"), &bytes, mode)?;
    }
    Ok(())
}

/// A POSIX shell single-quoted word.
pub(super) fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

fn add_tree(tar: &mut Tar, root: &Path, target: &str) -> Result<()> {
    tar.dir(target)?;
    let walker = walkdir::WalkDir::new(root)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            !(e.file_type().is_dir()
                && (SKIPPED_DIRS.contains(&name.as_ref())
                    || name.ends_with(".egg-info")
                    || e.path().join("pyvenv.cfg").exists()))
        });
    for entry in walker {
        let entry = entry.with_context(|| format!("walking {}", root.display()))?;
        let relative = entry
            .path()
            .strip_prefix(root)?
            .to_string_lossy()
            .into_owned();
        let name = format!("{target}/{relative}");
        if entry.file_type().is_dir() {
            tar.dir(&name)?;
        } else if entry.file_type().is_file() {
            // never more than the room left, and only if still a regular file
            let room = MAX_TREE_BYTES.saturating_sub(tar.bytes);
            let bytes = match safe_fs::read_regular(entry.path(), &relative, room) {
                Err(safe_fs::ReadError::TooLarge(..)) => anyhow::bail!(
                    "the project's tree is larger than {} MiB",
                    MAX_TREE_BYTES >> 20
                ),
                read => read?,
            };
            let mtime = entry
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            tar.file_at(&name, &bytes, 0o644, mtime)?;
        }
        // Symlinks are not followed: they could point anywhere on this machine.
    }
    Ok(())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Entries owned by uid 1000 (the builder's user), explicit folders included:
/// folders the engine creates on its own would belong to root.
struct Tar {
    inner: tar::Builder<Vec<u8>>,
    bytes: u64,
}

impl Tar {
    fn new() -> Tar {
        Tar {
            inner: tar::Builder::new(Vec::new()),
            bytes: 0,
        }
    }

    fn header(kind: tar::EntryType, size: u64, mode: u32, mtime: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(mode);
        header.set_uid(1000);
        header.set_gid(1000);
        header.set_mtime(mtime.max(EARLIEST_MTIME));
        header
    }

    fn dir(&mut self, path: &str) -> Result<()> {
        let mut header = Self::header(tar::EntryType::Directory, 0, 0o755, now());
        self.inner
            .append_data(&mut header, format!("{path}/"), std::io::empty())
            .with_context(|| format!("adding {path} to the build context"))
    }

    fn file(&mut self, path: &str, bytes: &[u8], mode: u32) -> Result<()> {
        self.file_at(path, bytes, mode, now())
    }

    /// A file with its own time (a tree's files keep theirs: build
    /// backends put them into wheels).
    fn file_at(&mut self, path: &str, bytes: &[u8], mode: u32, mtime: u64) -> Result<()> {
        let mut header = Self::header(tar::EntryType::Regular, bytes.len() as u64, mode, mtime);
        self.bytes += bytes.len() as u64;
        self.inner
            .append_data(&mut header, path, bytes)
            .with_context(|| format!("adding {path} to the build context"))
    }

    fn finish(self) -> Result<Vec<u8>> {
        self.inner
            .into_inner()
            .context("finishing the build context")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(bytes: &[u8]) -> std::collections::HashMap<String, (String, u64, u64)> {
        let mut archive = tar::Archive::new(bytes);
        let mut files = std::collections::HashMap::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let (uid, mtime) = (
                entry.header().uid().unwrap(),
                entry.header().mtime().unwrap(),
            );
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
            files.insert(name, (text, uid, mtime));
        }
        files
    }

    #[test]
    fn arguments_reach_the_script_quoted() {
        let script = build_script(&["-e".into(), ".[it's]".into()]);
        assert!(script.contains(r"'-e' '.[it'\''s]'"), "{script}");
        assert!(script.starts_with("set -eu\n"));
    }

    #[test]
    fn pips_settings_reach_the_download_step_only() {
        let root = std::env::temp_dir().join(format!("te-context-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("ca.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
        let mut settings = crate::config::DependencyBuildConfig::from_env();
        settings.pip_cert = Some(root.join("ca.pem"));
        settings.pip_index_url = Some("https://user:pw@index.example/simple".into());
        settings.pip_find_links = None;
        let mut reqs = Requirements::default();
        reqs.add("test", &["six==1.16.0".into()]).unwrap();
        let files = entries(&fetch_context(&reqs, &settings, true).unwrap());
        let env = &files["pip.env"].0;
        assert!(
            env.contains("export PIP_CERT='/var/cache/te-fetch/ca.pem'"),
            "{env}"
        );
        assert!(env.contains("export PIP_INDEX_URL='https://user:pw@index.example/simple'"));
        assert!(env.contains("export PIP_PROXY='http://127.0.0.1:3128'"));
        assert_eq!(files["ca.pem"].0, "-----BEGIN CERTIFICATE-----\n");
        assert_eq!(files["requirements.txt"].0, "six==1.16.0\n");
        let sources = entries(&fetch_context(&reqs, &settings, false).unwrap());
        let env = &sources["pip.env"].0;
        assert!(
            env.contains("export PIP_INDEX_URL='https://index.example/simple'"),
            "{env}"
        );
        assert!(sources
            .values()
            .all(|(text, _, _)| !text.contains("user:pw")));

        let project = ProjectSource::discover("demo", &root).unwrap();
        let built = entries(&build_context(&project, &reqs, &[]).unwrap());
        assert!(
            built.keys().all(|k| !k.ends_with("pip.env")),
            "{:?}",
            built.keys()
        );
        assert!(built.values().all(|(text, _, _)| !text.contains("user:pw")));
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn the_tree_skips_caches_and_virtualenvs_is_owned_by_the_builder_and_keeps_real_times() {
        let root = std::env::temp_dir().join(format!("te-context-{:x}", rand::random::<u64>()));
        for path in [
            "src/pkg/__init__.py",
            ".git/HEAD",
            "env/pyvenv.cfg",
            "src/pkg/__pycache__/x.pyc",
        ] {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        let project = ProjectSource::discover("demo", &root).unwrap();
        let args = ["-e".to_owned(), ".".to_owned()];
        let files = entries(&build_context(&project, &Requirements::default(), &args).unwrap());
        assert!(files.values().all(|(_, uid, _)| *uid == 1000));
        let (_, _, mtime) = files["tmp/work/src/pkg/__init__.py"];
        assert!(mtime > 1_700_000_000, "a file's own time is kept: {mtime}");
        assert!(files.contains_key("tmp/te-build/build.sh"));
        assert!(files.contains_key("tmp/te-build/requires.py"));
        assert!(!files
            .keys()
            .any(|n| n.contains(".git") || n.contains("pyvenv") || n.contains("__pycache__")));
        std::fs::write(
            root.join("pyproject.toml"),
            "[project]\nname = 'pkg'\nversion = '1'\n",
        )
        .unwrap();
        let written = ProjectSource::discover("demo", &root)
            .unwrap()
            .of_tree(&"a".repeat(64));
        let own = entries(&build_context(&written, &Requirements::default(), &[]).unwrap());
        assert_eq!(
            own["tmp/te-build/own/site-packages/_te_tree_pkg.pth"].0,
            "/tmp/work/src\n"
        );
        assert!(own.contains_key("tmp/te-build/own/site-packages/pkg-1.dist-info/"));
        assert!(own.values().all(|(_, uid, _)| *uid == 1000));
        assert!(
            !own.keys().any(|n| n.starts_with("tmp/work")),
            "a tree whose install the server writes sends none of its files: {:?}",
            own.keys()
        );
        let listing = entries(&build_context(&project, &Requirements::default(), &[]).unwrap());
        assert!(
            !listing.keys().any(|n| n.starts_with("tmp/work")),
            "a project that does not install itself runs none of its files: {:?}",
            listing.keys()
        );
        std::fs::remove_dir_all(root).unwrap();
    }
}
