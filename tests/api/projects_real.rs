//! Real projects, as published: sdists that ship their tests, downloaded
//! once with pip (cached in `target/`), placed under the tests folder and
//! run through the app. Each must end `success` with the counts pytest gives
//! by hand in a container of the runner image.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::Value;
use tokio::process::Command;

use crate::helpers::{id, TestApp};

/// (sdist, version, its folder once unpacked, the test files in it).
pub struct Real {
    pub name: &'static str,
    pub version: &'static str,
    pub tests: &'static [&'static str],
}

/// A module beside its test file.
const SIX: Real = Real {
    name: "six",
    version: "1.16.0",
    tests: &["test_six.py"],
};

/// A package with its tests inside it.
const TOOLZ: Real = Real {
    name: "toolz",
    version: "0.12.0",
    tests: &[
        "toolz/tests/test_dicttoolz.py",
        "toolz/tests/test_functoolz.py",
        "toolz/tests/test_itertoolz.py",
        "toolz/tests/test_curried.py",
    ],
};

/// Another package with its tests inside it, in `setup.cfg`/`setup.py` form.
const PYTZ: Real = Real {
    name: "pytz",
    version: "2023.3",
    tests: &["pytz/tests/test_tzinfo.py", "pytz/tests/test_lazy.py"],
};

impl Real {
    pub fn folder(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }
}

/// The sdist, from `target/pypi-sdists/` or downloaded there first.
async fn sdist(real: &Real) -> PathBuf {
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pypi-sdists");
    let file = cache.join(format!("{}.tar.gz", real.folder()));
    if file.is_file() {
        return file;
    }
    // Download beside the cache and move into place, so two tests at once
    // never see half a file.
    let scratch = cache.join(format!("download-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&scratch).unwrap();
    let out = Command::new("pip")
        .args(["download", "--no-deps", "--no-binary", ":all:", "-q", "-d"])
        .arg(&scratch)
        .arg(format!("{}=={}", real.name, real.version))
        .output()
        .await
        .expect("running pip (the machine's pip settings reach the package index)");
    assert!(
        out.status.success(),
        "pip download {}: {}",
        real.name,
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(scratch.join(file.file_name().unwrap()), &file).unwrap();
    let _ = std::fs::remove_dir_all(scratch);
    file
}

/// A tests folder holding the given projects, unpacked from their sdists.
pub async fn tests_dir_with(reals: &[&Real]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("te-real-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    for real in reals {
        let archive = sdist(real).await;
        let status = Command::new("tar")
            .arg("xzf")
            .arg(&archive)
            .arg("-C")
            .arg(&dir)
            .status()
            .await
            .unwrap();
        assert!(status.success(), "unpacking {}", archive.display());
    }
    dir
}

/// (passed, failed, skipped, errors) from pytest's closing line.
fn counts(line: &str) -> (i64, i64, i64, i64) {
    let mut found = (0, 0, 0, 0);
    for part in line.split([',', ' ']).collect::<Vec<_>>().windows(2) {
        let Ok(n) = part[0].parse::<i64>() else {
            continue;
        };
        match part[1] {
            "passed" => found.0 = n,
            "failed" => found.1 = n,
            "skipped" => found.2 = n,
            "error" | "errors" => found.3 = n,
            _ => {}
        }
    }
    found
}

/// pytest by hand, in a container of the runner image, from a copy of the
/// project's folder: what a person would do in a checkout.
async fn by_hand(project: &Path, tests: &[&str]) -> (i64, i64, i64, i64) {
    let image = std::env::var("RUNNER_IMAGE").unwrap_or("test-executor-runner:latest".into());
    by_hand_in(&image, project, tests, "/tmp/p").await
}

/// pytest by hand in a container of `image`, the project copied to `workdir`.
pub async fn by_hand_in(
    image: &str,
    project: &Path,
    tests: &[&str],
    workdir: &str,
) -> (i64, i64, i64, i64) {
    let out = Command::new("docker")
        .args(["run", "--rm", "--network", "none", "-v"])
        .arg(format!("{}:/src:ro", project.display()))
        .arg(image)
        .args(["sh", "-c"])
        .arg(format!(
            "cp -r /src {workdir} && cd {workdir} && python3 -m pytest -p no:cacheprovider --color=no -q {}",
            tests.join(" ")
        ))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default().to_owned();
    assert!(last.contains(" in "), "pytest by hand: {stdout}");
    counts(&last)
}

pub fn app_counts(run: &Value) -> (i64, i64, i64, i64) {
    let s = &run["summary"];
    let n = |k: &str| s[k].as_i64().unwrap();
    (n("passed"), n("failed"), n("skipped"), n("error"))
}

async fn runs_like_by_hand(reals: &[&Real]) {
    let dir = tests_dir_with(reals).await;
    let tests_dir = dir.clone();
    let app = TestApp::spawn_with(&[], move |c| c.tests_dir = tests_dir).await;
    let listed = app.get_json("/api/v1/projects").await;
    for (environment, real) in (1..).zip(reals) {
        let folder = real.folder();
        assert!(
            listed
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == folder.as_str()),
            "{folder} is a project: {listed}"
        );
        let expected = by_hand(&dir.join(&folder), real.tests).await;
        assert!(expected.0 > 0, "{folder}: pytest by hand passed nothing");
        let files: Vec<String> = real.tests.iter().map(|t| format!("{folder}/{t}")).collect();
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        let run = app.create_run(environment, &files).await;
        let run = app.wait_finished(id(&run), Duration::from_secs(120)).await;
        let logs = app.log_text(id(&run)).await;
        let tail = logs[logs.len().saturating_sub(30)..].join("\n");
        assert_eq!(run["status"], "success", "{folder}: {run}\n{tail}");
        assert_eq!(run["project"], folder.as_str());
        assert_eq!(
            app_counts(&run),
            expected,
            "{folder}: the app's (passed, failed, skipped, errors) against pytest by hand\n{tail}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn pytest_closing_lines_are_read_as_counts() {
    assert_eq!(
        counts("184 passed, 16 skipped, 2 warnings in 0.61s"),
        (184, 0, 16, 0)
    );
    assert_eq!(counts("1 failed, 3 passed, 1 error in 1.00s"), (3, 1, 0, 1));
}

#[tokio::test]
async fn a_module_beside_its_test_file_runs_as_pytest_does_by_hand() {
    runs_like_by_hand(&[&SIX]).await;
}

#[tokio::test]
async fn packages_with_their_tests_inside_run_as_pytest_does_by_hand() {
    runs_like_by_hand(&[&TOOLZ, &PYTZ]).await;
}
