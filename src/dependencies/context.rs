//! What a build container receives: one tar unpacked at `/` holding the
//! project's tree at the runtime path, the build script, pip's settings and
//! the CA bundle. pip's settings travel in a file the script reads (and
//! removes), never in the container's environment, which a commit would
//! keep in the image.

use std::path::Path;

use anyhow::{Context, Result};

use super::{ProjectSource, RUNTIME_ROOT, VENV};
use crate::{catalog::safe_fs, config::DependencyBuildConfig};

/// Where the build's own files go (removed before the commit).
pub const BUILD_DIR: &str = "/tmp/te-build";
/// Where the pip cache volume is mounted (the runner image makes it uid 1000's).
pub const PIP_CACHE: &str = "/var/cache/te-pip";
/// A tree larger than this is not built.
pub const MAX_TREE_BYTES: u64 = 64 * 1024 * 1024;

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

/// The tar uploaded to `/` of the build container.
pub fn build_context(
    project: &ProjectSource,
    pip_args: &[String],
    settings: &DependencyBuildConfig,
) -> Result<Vec<u8>> {
    let mut tar = Tar::new();
    let build_dir = BUILD_DIR.trim_start_matches('/');
    tar.dir(build_dir)?;
    let mut env = vec![
        ("PIP_CACHE_DIR".to_owned(), PIP_CACHE.to_owned()),
        ("PIP_DISABLE_PIP_VERSION_CHECK".to_owned(), "1".to_owned()),
        ("PIP_NO_INPUT".to_owned(), "1".to_owned()),
        ("PIP_PROGRESS_BAR".to_owned(), "off".to_owned()),
    ];
    let passed = [
        ("PIP_INDEX_URL", &settings.pip_index_url),
        ("PIP_EXTRA_INDEX_URL", &settings.pip_extra_index_url),
        ("PIP_TRUSTED_HOST", &settings.pip_trusted_host),
        ("PIP_DEFAULT_TIMEOUT", &settings.pip_default_timeout),
    ];
    for (name, value) in passed {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            env.push((name.to_owned(), value.to_owned()));
        }
    }
    if let Some(cert) = &settings.pip_cert {
        let bytes = std::fs::read(cert)
            .with_context(|| format!("reading the CA bundle PIP_CERT={}", cert.display()))?;
        tar.file(&format!("{build_dir}/ca.pem"), &bytes, 0o644)?;
        env.push(("PIP_CERT".to_owned(), format!("{BUILD_DIR}/ca.pem")));
    }
    if let Some(links) = settings.pip_find_links.as_deref().filter(|v| !v.is_empty()) {
        let mut passed_links = Vec::new();
        for link in links.split_whitespace() {
            if link.contains("://") {
                passed_links.push(link.to_owned());
            } else if Path::new(link).is_dir() {
                let target = format!("{build_dir}/find-links");
                tar.dir(&target)?;
                for entry in std::fs::read_dir(link).with_context(|| format!("listing {link}"))? {
                    let entry = entry?;
                    if entry.file_type()?.is_file() {
                        let name = entry.file_name().to_string_lossy().into_owned();
                        let bytes = std::fs::read(entry.path())?;
                        tar.file(&format!("{target}/{name}"), &bytes, 0o644)?;
                    }
                }
                passed_links.push(format!("{BUILD_DIR}/find-links"));
            }
        }
        if !passed_links.is_empty() {
            env.push(("PIP_FIND_LINKS".to_owned(), passed_links.join(" ")));
        }
    }
    let env_file: String = env
        .iter()
        .map(|(k, v)| format!("export {k}={}\n", quote(v)))
        .collect();
    tar.file(&format!("{build_dir}/pip.env"), env_file.as_bytes(), 0o600)?;
    tar.file(
        &format!("{build_dir}/build.sh"),
        script(pip_args).as_bytes(),
        0o755,
    )?;
    tar.file(
        &format!("{build_dir}/missing_wheels.py"),
        MISSING_WHEELS.as_bytes(),
        0o644,
    )?;
    add_tree(
        &mut tar,
        &project.root,
        RUNTIME_ROOT.trim_start_matches('/'),
    )?;
    tar.finish()
}

/// The build, as the container runs it: a venv that sees the image's
/// packages (pytest among them), made without pip (the image's pip wheel
/// runs pip, so the image carries no pip of its own); pip with the
/// project's arguments from the runtime path, first offline from the wheels
/// kept in the cache volume, else from the index (pip prefers an index's
/// link to an equal local one, so a mere `--find-links` would download
/// again); the wheels it had to download kept for the next builds (the
/// index's responses carry no cache headers here, so pip's own HTTP cache
/// keeps nothing); then the build's files removed so the commit holds only
/// the venv.
pub fn script(pip_args: &[String]) -> String {
    let args: Vec<String> = pip_args.iter().map(|a| quote(a)).collect();
    format!(
        "set -eu\n\
         . {BUILD_DIR}/pip.env\n\
         wheels={PIP_CACHE}/wheels\n\
         mkdir -p \"$wheels\"\n\
         export PIP_FIND_LINKS=\"$wheels${{PIP_FIND_LINKS:+ $PIP_FIND_LINKS}}\"\n\
         pip=\"$(ls /usr/share/python-wheels/pip-*.whl | tail -n 1)/pip\"\n\
         echo '==> python3 -m venv --without-pip --system-site-packages {VENV}'\n\
         python3 -m venv --without-pip --system-site-packages {VENV}\n\
         cd {RUNTIME_ROOT}\n\
         echo '==> pip install --no-index {shown} (from the kept wheels)'\n\
         if {VENV}/bin/python \"$pip\" install --no-index {args} > {BUILD_DIR}/offline.log 2>&1; then\n\
         cat {BUILD_DIR}/offline.log\n\
         else\n\
         tail -n 3 {BUILD_DIR}/offline.log\n\
         echo '==> not all kept: pip install {shown}'\n\
         {VENV}/bin/python \"$pip\" install {args}\n\
         echo '==> keeping the wheels of this build for the next ones'\n\
         {VENV}/bin/python {BUILD_DIR}/missing_wheels.py \"$wheels\" {BUILD_DIR}\n\
         keep() {{ {VENV}/bin/python \"$pip\" download -q --only-binary :all: -d \"$wheels\" \"$@\"; }}\n\
         [ ! -s {BUILD_DIR}/missing.txt ] || keep --no-deps -r {BUILD_DIR}/missing.txt \\\n\
         || while read -r w; do keep --no-deps \"$w\" || echo \"(no wheel kept for $w)\"; done < {BUILD_DIR}/missing.txt\n\
         [ ! -s {BUILD_DIR}/backend.txt ] || keep -r {BUILD_DIR}/backend.txt || echo '(the build backend was not kept)'\n\
         fi\n\
         cd /\n\
         rm -rf {RUNTIME_ROOT} {BUILD_DIR}\n\
         echo '==> done'\n",
        shown = pip_args.join(" ").replace('\'', ""),
        args = args.join(" "),
    )
}

/// Writes what to keep: `missing.txt`, the venv's own distributions the
/// wheel cache lacks (`name==version`, not the editable project), and
/// `backend.txt`, the build backend's requirements (kept with their
/// dependencies, which the isolated build installs too; wheels already kept
/// are not downloaded again).
const MISSING_WHEELS: &str = r#"import json, os, re, sys, sysconfig
from importlib import metadata

wheels, out = sys.argv[1], sys.argv[2]
missing = open(os.path.join(out, "missing.txt"), "w")
backend = open(os.path.join(out, "backend.txt"), "w")
norm = lambda n: re.sub(r"[-_.]+", "_", n).lower()
have = set()
for f in os.listdir(wheels):
    if f.endswith(".whl"):
        parts = f.split("-")
        have.add((norm(parts[0]), parts[1]))
site = sysconfig.get_paths()["purelib"]
for dist in metadata.distributions(path=[site]):
    direct = dist.read_text("direct_url.json")
    if direct and json.loads(direct).get("dir_info", {}).get("editable"):
        continue
    name, version = dist.metadata["Name"], dist.version
    if (norm(name), version) not in have:
        print(f"{name}=={version}", file=missing)
try:
    import tomllib
    with open("pyproject.toml", "rb") as f:
        requires = tomllib.load(f).get("build-system", {}).get("requires", [])
except (OSError, ValueError):
    requires = []
# What backends add for an editable build (get_requires_for_build_editable).
EDITABLE_EXTRAS = {"hatchling": ["editables"], "setuptools": ["wheel"]}
for req in requires:
    print(req, file=backend)
    name = norm(re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0])
    for extra in EDITABLE_EXTRAS.get(name.replace("_", "-"), []):
        print(extra, file=backend)
if not requires and os.path.exists("setup.py"):
    print("setuptools\nwheel", file=backend)
"#;

/// A POSIX shell single-quoted word.
fn quote(value: &str) -> String {
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
            tar.file(&name, &bytes, 0o644)?;
        }
        // Symlinks are not followed: they could point anywhere on this machine.
    }
    Ok(())
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

    fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(mode);
        header.set_uid(1000);
        header.set_gid(1000);
        header.set_mtime(0);
        header
    }

    fn dir(&mut self, path: &str) -> Result<()> {
        let mut header = Self::header(tar::EntryType::Directory, 0, 0o755);
        self.inner
            .append_data(&mut header, format!("{path}/"), std::io::empty())
            .with_context(|| format!("adding {path} to the build context"))
    }

    fn file(&mut self, path: &str, bytes: &[u8], mode: u32) -> Result<()> {
        let mut header = Self::header(tar::EntryType::Regular, bytes.len() as u64, mode);
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

    #[test]
    fn arguments_reach_the_script_quoted() {
        let script = script(&["-r".into(), "req's.txt".into()]);
        assert!(script.contains(r"install '-r' 'req'\''s.txt'"), "{script}");
        assert!(script.starts_with("set -eu\n"));
    }

    #[test]
    fn pips_settings_travel_in_a_file_with_the_ca_bundle() {
        let root = std::env::temp_dir().join(format!("te-context-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("ca.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
        let mut settings = crate::config::DependencyBuildConfig::from_env();
        settings.pip_cert = Some(root.join("ca.pem"));
        settings.pip_index_url = Some("https://user:pw@index.example/simple".into());
        settings.pip_find_links = None;
        let project = ProjectSource::discover("demo", &root).unwrap();
        let bytes = build_context(&project, &["x".into()], &settings).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut files = std::collections::HashMap::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
            files.insert(name, text);
        }
        let env = &files["tmp/te-build/pip.env"];
        assert!(
            env.contains("export PIP_CERT='/tmp/te-build/ca.pem'"),
            "{env}"
        );
        assert!(env.contains("export PIP_INDEX_URL='https://user:pw@index.example/simple'"));
        assert_eq!(
            files["tmp/te-build/ca.pem"],
            "-----BEGIN CERTIFICATE-----\n"
        );
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn the_tree_skips_caches_and_virtualenvs_and_is_owned_by_the_builder() {
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
        let settings = crate::config::DependencyBuildConfig::from_env();
        let bytes = build_context(&project, &["x".into()], &settings).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            assert_eq!(entry.header().uid().unwrap(), 1000);
            names.push(entry.path().unwrap().to_string_lossy().into_owned());
        }
        assert!(
            names.contains(&"tmp/work/src/pkg/__init__.py".to_string()),
            "{names:?}"
        );
        assert!(names.contains(&"tmp/te-build/build.sh".to_string()));
        assert!(names.contains(&"tmp/te-build/missing_wheels.py".to_string()));
        assert!(!names
            .iter()
            .any(|n| n.contains(".git") || n.contains("pyvenv") || n.contains("__pycache__")));
        std::fs::remove_dir_all(root).unwrap();
    }
}
