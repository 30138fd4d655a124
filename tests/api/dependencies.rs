//! Dependency images, built through the engine from the real package index:
//! one build per key, rebuilt when a declaring file changes, pip's own line
//! when it fails, pruning that spares images in use.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use crate::helpers::fresh_database;
use sqlx::PgPool;
use test_executor::{
    config::DependencyBuildConfig,
    dependencies::{self, ProjectSource},
    engine::Engine,
};

mod cleanup;
mod hostile;

/// A database, the engine, the build settings from this machine's
/// environment, and a project folder of its own; removes the images the
/// test built when dropped.
pub struct DepsFixture {
    pub db: PgPool,
    pub engine: Engine,
    pub settings: DependencyBuildConfig,
    pub base: String,
    pub name: String,
    pub root: PathBuf,
}

impl DepsFixture {
    pub async fn new(stem: &str) -> DepsFixture {
        test_executor::telemetry::init();
        let db = test_executor::db::connect(&fresh_database().await)
            .await
            .unwrap();
        test_executor::db::migrate(&db).await.unwrap();
        let name = format!("{stem}-{:08x}", rand::random::<u32>());
        let root = std::env::temp_dir().join(format!("te-deps-{name}"));
        std::fs::create_dir_all(&root).unwrap();
        DepsFixture {
            db,
            engine: Engine::connect().unwrap(),
            settings: DependencyBuildConfig::from_env(),
            base: std::env::var("RUNNER_IMAGE")
                .unwrap_or_else(|_| "test-executor-runner:latest".into()),
            name,
            root,
        }
    }

    pub fn write(&self, path: &str, text: &str) {
        let path = self.root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub fn project(&self) -> ProjectSource {
        ProjectSource::discover(&self.name, &self.root).unwrap()
    }

    pub async fn ensure(&self) -> Result<dependencies::ImageRef, dependencies::BuildFailure> {
        dependencies::ensure_image(
            &self.db,
            &self.engine,
            &self.settings,
            &self.base,
            &self.project(),
        )
        .await
    }

    /// Runs `script` in a sandboxed container of `image` (`--network none`,
    /// read-only root, uid 1000, no capabilities), the project's tree
    /// unpacked at the runtime path first; returns its output.
    pub fn run_by_hand(&self, image: &str, script: &str) -> String {
        let tree = Command::new("tar")
            .args(["-C", self.root.to_str().unwrap(), "-cf", "-", "."])
            .output()
            .unwrap();
        assert!(tree.status.success());
        let full = format!(
            "mkdir -p {root} && cd {root} && tar -x && {script}",
            root = dependencies::RUNTIME_ROOT
        );
        let mut child = Command::new("docker")
            .args(["run", "--rm", "-i", "--network", "none", "--read-only"])
            .args(["--tmpfs", "/tmp:rw,exec,nosuid,nodev,size=256m,mode=1777"])
            .args(["--user", "1000:1000", "--cap-drop", "ALL"])
            .args([
                "--security-opt",
                "no-new-privileges",
                image,
                "sh",
                "-c",
                &full,
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&tree.stdout).unwrap();
        let out = child.wait_with_output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

impl Drop for DepsFixture {
    fn drop(&mut self) {
        let label = format!("label={}={}", dependencies::LABEL_PROJECT, self.name);
        if let Ok(out) = Command::new("docker")
            .args(["images", "-q", "--filter", &label])
            .output()
        {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(String::from)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rmi", "-f"])
                    .args(&ids)
                    .output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// pytest's closing counts ("550 passed, 2 skipped"), from its last line.
pub fn pytest_counts(output: &str) -> String {
    let line = output
        .lines()
        .rev()
        .find(|l| l.contains(" passed") || l.contains(" failed") || l.contains(" error"))
        .unwrap_or_else(|| panic!("no pytest summary in:\n{output}"));
    line.trim_matches('=')
        .trim()
        .split(" in ")
        .next()
        .unwrap()
        .to_string()
}

fn version_of(fixture: &DepsFixture, image: &str, package: &str) -> String {
    fixture
        .run_by_hand(
            image,
            &format!(
                "python3 -c 'import importlib.metadata as m; print(m.version(\"{package}\"))'"
            ),
        )
        .trim()
        .to_string()
}

#[tokio::test]
async fn a_project_that_declares_nothing_runs_on_the_base_image() {
    let fixture = DepsFixture::new("plain").await;
    fixture.write("pytest.ini", "[pytest]\n");
    fixture.write(
        "pyproject.toml",
        "[tool.pytest.ini_options]\naddopts = \"-q\"\n",
    );
    fixture.write("test_x.py", "def test_x(): pass\n");
    let image = fixture.ensure().await.unwrap();
    assert_eq!(image.image, fixture.base);
    assert_eq!(image.key, None);
    let rows: i64 = sqlx::query_scalar("select count(*) from dependency_images")
        .fetch_one(&fixture.db)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn concurrent_callers_in_two_processes_share_one_build_and_a_changed_requirement_rebuilds_once(
) {
    let fixture = DepsFixture::new("iniconfig-user").await;
    fixture.write("requirements-test.txt", "iniconfig==2.0.0\n");
    // A second pool stands for a second process: its own connections, so
    // only the advisory lock in Postgres can keep the two from both building.
    let other_db = PgPool::connect_with(fixture.db.connect_options().as_ref().clone())
        .await
        .unwrap();
    let project = fixture.project();
    let key = dependencies::key_of(&fixture.db, &fixture.engine, &fixture.base, &project)
        .await
        .unwrap()
        .unwrap();
    let first = dependencies::ensure_image(
        &fixture.db,
        &fixture.engine,
        &fixture.settings,
        &fixture.base,
        &project,
    );
    let second = dependencies::ensure_image(
        &other_db,
        &fixture.engine,
        &fixture.settings,
        &fixture.base,
        &project,
    );
    let watcher = async {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(text) = dependencies::waiting_for(&fixture.db, &key).await.unwrap() {
                return text;
            }
            assert!(Instant::now() < deadline, "never saw the build");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (a, b, waiting) = tokio::join!(first, second, watcher);
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.image, b.image);
    assert_eq!(
        [a.built, b.built].iter().filter(|b| **b).count(),
        1,
        "{a:?} {b:?}"
    );
    assert!(
        waiting.starts_with("installing dependencies (") && waiting.ends_with(" s)"),
        "{waiting}"
    );
    assert_eq!(version_of(&fixture, &a.image, "iniconfig"), "2.0.0");
    // pip's settings (an index's credentials, say) stay out of the image.
    let env = fixture
        .engine
        .image_facts(&a.image)
        .await
        .unwrap()
        .unwrap()
        .env;
    assert!(!env.iter().any(|v| v.starts_with("PIP_")), "{env:?}");
    assert!(
        env.iter().any(|v| v.starts_with("PATH=/opt/venv/bin:")),
        "{env:?}"
    );

    let started = Instant::now();
    let again = fixture.ensure().await.unwrap();
    assert!(!again.built);
    assert_eq!(again.image, a.image);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    fixture.write("requirements-test.txt", "iniconfig==1.1.1\n");
    let changed = fixture.ensure().await.unwrap();
    assert!(changed.built);
    assert_ne!(changed.image, a.image);
    assert_eq!(version_of(&fixture, &changed.image, "iniconfig"), "1.1.1");
    let changed_again = fixture.ensure().await.unwrap();
    assert!(!changed_again.built);
    assert_eq!(changed_again.image, changed.image);
}

#[tokio::test]
async fn a_pytest_plugin_of_the_requirements_is_loaded_by_the_runner() {
    let fixture = DepsFixture::new("plugin-user").await;
    fixture.write("requirements-test.txt", "pytest-mock==3.12.0\n");
    let image = fixture.ensure().await.unwrap();
    assert!(image.built);
    // `mocker` is pytest-mock's fixture: it exists only if the plugin loaded.
    let test = "import os\n\ndef test_mocker(mocker):\n    mocker.patch('os.getcwd', return_value='/x')\n    assert os.getcwd() == '/x'\n";
    let output = crate::dependencies_project::run_with_runner(
        &fixture.engine,
        &image.image,
        "test_plugin.py",
        test,
    )
    .await;
    assert!(output.contains("1 passed"), "{output}");
}

#[tokio::test]
async fn an_unknown_requirement_fails_with_pips_own_line_and_keeps_the_log() {
    let fixture = DepsFixture::new("frobnicate-user").await;
    fixture.write("requirements.txt", "frobnicate==9\n");
    let failure = fixture.ensure().await.unwrap_err();
    assert_eq!(
        failure.reason,
        "No matching distribution found for frobnicate==9"
    );
    let key = failure.key.clone().expect("the failure names its key");
    let row = dependencies::store::get(&fixture.db, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.state, "failed");
    assert!(row.log.contains("frobnicate==9"), "{}", row.log);
    assert_eq!(
        dependencies::waiting_for(&fixture.db, &key).await.unwrap(),
        None
    );
    // Runs that come next get the same answer without a second build.
    let started = Instant::now();
    let again = fixture.ensure().await.unwrap_err();
    assert_eq!(again.reason, failure.reason);
    assert!(started.elapsed() < Duration::from_secs(2));
}
