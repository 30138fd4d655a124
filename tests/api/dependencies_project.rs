//! A real project from the package index in its dependency image: a
//! `src/` layout that reads its own version from its package metadata and
//! whose tests need a package of its `tests` extra. Prints the figures of
//! the build (run with `--no-capture` to see them).

use std::{
    collections::HashMap,
    process::Command,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use test_executor::{dependencies, engine::Engine, limits::Limits};
use tokio::io::AsyncWriteExt;

use crate::dependencies::{pytest_counts, DepsFixture};

/// humanize: `src/` layout, hatchling + hatch-vcs, `__version__` from
/// `importlib.metadata`, tests that import freezegun (its `tests` extra).
const PROJECT: &str = "humanize";
const VERSION: &str = "4.9.0";

/// pytest as a person would run it, colours off so counts can be read.
const PYTEST: &str = "python3 -m pytest -p no:cacheprovider --color=no -q";

#[tokio::test]
async fn a_src_layout_project_reading_its_own_version_passes_offline_as_in_a_checkout() {
    let fixture = DepsFixture::new(PROJECT).await;
    let downloads = fixture.root.with_extension("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let pinned = format!("{PROJECT}=={VERSION}");
    run(Command::new("pip")
        .args([
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            &pinned,
            "-d",
        ])
        .arg(&downloads));
    run(Command::new("tar")
        .args(["--strip-components=1", "-xzf"])
        .arg(downloads.join(format!("{PROJECT}-{VERSION}.tar.gz")))
        .arg("-C")
        .arg(&fixture.root));

    let started = Instant::now();
    let built = fixture.ensure().await.unwrap();
    let build_time = started.elapsed();
    assert!(built.built, "{built:?}");
    let size = fixture
        .engine
        .image_facts(&built.image)
        .await
        .unwrap()
        .unwrap()
        .size
        .unwrap();

    let started = Instant::now();
    let in_image = fixture.run_by_hand(
        &built.image,
        &format!(
            "python3 -c 'import {PROJECT}; print(\"version\", {PROJECT}.__version__)' && {PYTEST}"
        ),
    );
    let by_hand_time = started.elapsed();
    assert!(
        in_image.contains(&format!("version {VERSION}")),
        "{in_image}"
    );

    // The same tests in a checkout, installed as a developer would.
    let venv = downloads.join("venv");
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "-e"])
        .arg(format!("{}[tests]", fixture.root.display())));
    let checkout = Command::new(venv.join("bin/python"))
        .args(PYTEST.split(' ').skip(1))
        .current_dir(&fixture.root)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let checkout = String::from_utf8_lossy(&checkout.stdout).into_owned();
    let counts = pytest_counts(&checkout);
    assert!(
        counts.contains(" passed") && !counts.contains("failed"),
        "{checkout}"
    );
    assert_eq!(pytest_counts(&in_image), counts, "{in_image}");

    // The same inputs again: nothing is built.
    let started = Instant::now();
    let again = fixture.ensure().await.unwrap();
    let cached_time = started.elapsed();
    assert!(!again.built);
    assert_eq!(again.image, built.image);
    assert!(cached_time < Duration::from_secs(2), "{cached_time:?}");

    // A forced rebuild, with pip's cache warm from the first build.
    let key = built.key.clone().unwrap();
    assert!(dependencies::rebuild(&fixture.db, &fixture.engine, &key)
        .await
        .unwrap());
    let started = Instant::now();
    let rebuilt = fixture.ensure().await.unwrap();
    let rebuild_time = started.elapsed();
    assert!(rebuilt.built);
    let row = dependencies::store::get(&fixture.db, &key)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !row.log.contains("Downloading") && !row.log.contains("not all kept"),
        "the rebuild downloaded again:\n{}",
        row.log
    );

    let probes = run_with_runner(
        &fixture.engine,
        &rebuilt.image,
        "test_sandbox.py",
        crate::sandbox::PROBES,
    )
    .await;
    assert!(probes.contains("6 passed"), "{probes}");

    let _ = std::fs::remove_dir_all(&downloads);
    println!("dependency image of {pinned} ({})", rebuilt.image);
    println!(
        "  first build (pip cache as found)   {:>8.1} s",
        build_time.as_secs_f64()
    );
    println!(
        "  image size                         {:>8.1} MB",
        size as f64 / 1e6
    );
    println!(
        "  same inputs again (no build)       {:>8.1} ms",
        cached_time.as_secs_f64() * 1e3
    );
    println!(
        "  rebuild with pip's cache warm      {:>8.1} s",
        rebuild_time.as_secs_f64()
    );
    println!(
        "  pytest by hand in the image        {:>8.1} s  {}",
        by_hand_time.as_secs_f64(),
        pytest_counts(&in_image)
    );
    println!("  pytest in a checkout               {:>8}    {counts}", "");
}

#[tokio::test]
async fn a_setuptools_project_imports_the_tree_of_the_run_with_its_installed_metadata() {
    let fixture = DepsFixture::new("setuptools-demo").await;
    fixture.write(
        "pyproject.toml",
        "[build-system]\nrequires = [\"setuptools>=64\"]\nbuild-backend = \"setuptools.build_meta\"\n\n\
         [project]\nname = \"te-demo\"\nversion = \"1.2.3\"\n\n\
         [project.optional-dependencies]\ntesting = [\"iniconfig==2.0.0\"]\n",
    );
    fixture.write(
        "src/te_demo/__init__.py",
        "import importlib.metadata\n__version__ = importlib.metadata.version('te-demo')\nANSWER = 41\n",
    );
    fixture.write(
        "tests/test_demo.py",
        "import iniconfig, te_demo\n\ndef test_version():\n    assert te_demo.__version__ == '1.2.3'\n\n\
         def test_answer():\n    assert te_demo.ANSWER == 42\n",
    );
    let image = fixture.ensure().await.unwrap();
    assert!(image.built);
    // The code changes after the build: the run's tree is what is imported.
    fixture.write(
        "src/te_demo/__init__.py",
        "import importlib.metadata\n__version__ = importlib.metadata.version('te-demo')\nANSWER = 42\n",
    );
    let output = fixture.run_by_hand(&image.image, PYTEST);
    assert_eq!(pytest_counts(&output), "2 passed", "{output}");
    let again = fixture.ensure().await.unwrap();
    assert!(!again.built, "a change outside the declaring files rebuilt");
}

/// Zip-based backends (flit_core, hatchling) refuse files older than 1980:
/// the tree keeps its files' own times, so a tree of files dated 1970 (as
/// some checkouts and archives leave them) installs too.
#[tokio::test]
async fn a_flit_project_with_files_dated_1970_installs_and_passes() {
    let fixture = DepsFixture::new("flit-demo").await;
    fixture.write(
        "pyproject.toml",
        "[build-system]\nrequires = [\"flit_core>=3.4,<4\"]\nbuild-backend = \"flit_core.buildapi\"\n\n\
         [project]\nname = \"te_flit_demo\"\nversion = \"0.3.0\"\ndescription = \"demo\"\n\n\
         [project.optional-dependencies]\ntest = [\"iniconfig==2.0.0\"]\n",
    );
    fixture.write(
        "te_flit_demo/__init__.py",
        "import importlib.metadata\n__version__ = importlib.metadata.version('te_flit_demo')\n",
    );
    fixture.write(
        "tests/test_flit.py",
        "import iniconfig, te_flit_demo\n\ndef test_version():\n    assert te_flit_demo.__version__ == '0.3.0'\n",
    );
    run(Command::new("find")
        .arg(&fixture.root)
        .args(["-exec", "touch", "-h", "-d", "@0", "{}", "+"]));
    let image = fixture
        .ensure()
        .await
        .unwrap_or_else(|f| panic!("{}", f.reason));
    assert!(image.built);
    let output = fixture.run_by_hand(&image.image, PYTEST);
    assert_eq!(pytest_counts(&output), "1 passed", "{output}");
}

/// The declared `[env]` reaches the project's install (its `setup.py` reads
/// a variable), never pip's settings.
#[tokio::test]
async fn the_declared_env_reaches_the_projects_install() {
    let fixture = DepsFixture::new("env-demo").await;
    fixture.write(
        "setup.py",
        "import os\nfrom setuptools import setup\n\
         assert 'PIP_INDEX_URL' not in os.environ and 'PIP_CERT' not in os.environ\n\
         setup(name='te-env-demo', version=os.environ['DEMO_VERSION'], py_modules=['te_env_demo'])\n",
    );
    fixture.write("te_env_demo.py", "");
    fixture.write("test-executor.toml", "[env]\nTE_DEMO_VERSION_X = \"bad\"\n");
    let refused = fixture
        .ensure()
        .await
        .expect_err("TE_ names are the runner's");
    assert!(
        refused.reason.contains("env.TE_DEMO_VERSION_X"),
        "{}",
        refused.reason
    );
    fixture.write("test-executor.toml", "[env]\nDEMO_VERSION = \"2.5.0\"\n");
    fixture.write(
        "tests/test_env.py",
        "import importlib.metadata\n\ndef test_version():\n    \
         assert importlib.metadata.version('te-env-demo') == '2.5.0'\n",
    );
    let image = fixture
        .ensure()
        .await
        .unwrap_or_else(|f| panic!("{}", f.reason));
    let output = fixture.run_by_hand(&image.image, PYTEST);
    assert_eq!(pytest_counts(&output), "1 passed", "{output}");
}

/// A test extra naming the project itself with another extra (attrs does):
/// that extra's requirements are installed, and the project's own name is
/// never asked of the index (a private name squatted there would be).
#[tokio::test]
async fn a_test_extra_naming_the_project_itself_is_expanded_not_downloaded() {
    let name = format!("te-selfref-{:08x}", rand::random::<u32>());
    let fixture = DepsFixture::new("selfref").await;
    fixture.write(
        "pyproject.toml",
        &format!(
            "[build-system]\nrequires = [\"setuptools>=64\"]\nbuild-backend = \"setuptools.build_meta\"\n\n\
             [project]\nname = \"{name}\"\nversion = \"1.0\"\n\n\
             [project.optional-dependencies]\ncore = [\"iniconfig==2.0.0\"]\ntests = [\"{name}[core]\"]\n\n\
             [tool.setuptools]\npy-modules = []\n"
        ),
    );
    fixture.write(
        "tests/test_core.py",
        "import iniconfig\n\ndef test_the_nested_extra_is_installed():\n    assert iniconfig\n",
    );
    let image = fixture
        .ensure()
        .await
        .unwrap_or_else(|f| panic!("{}", f.reason));
    let output = fixture.run_by_hand(&image.image, PYTEST);
    assert_eq!(pytest_counts(&output), "1 passed", "{output}");
}

fn run(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One test file run by the image's own runner (its command, as a run's
/// container has it) in a container made by `Engine::create_sandbox` (the
/// settings of every run); returns what it printed.
pub async fn run_with_runner(engine: &Engine, image: &str, file: &str, content: &str) -> String {
    let name = format!("te-test-probes-{:08x}", rand::random::<u32>());
    let limits = Limits {
        millicpus: 1000,
        memory_mb: 512,
        pids_limit: 256,
        timeout_secs: 120,
    };
    engine
        .create_sandbox(&name, image, HashMap::new(), &limits)
        .await
        .unwrap();
    let mut attached = engine.attach(&name).await.unwrap();
    engine.start(&name).await.unwrap();
    let meta = serde_json::json!({
        "run_id": 1, "environment_id": 1,
        "token": "0123456789abcdef0123456789abcdef",
        "files": [file],
    });
    let mut tar = tar::Builder::new(Vec::new());
    for (path, bytes) in [
        (".te/meta.json", meta.to_string().into_bytes()),
        (file, content.as_bytes().to_vec()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, path, bytes.as_slice())
            .unwrap();
    }
    attached
        .input
        .write_all(&tar.into_inner().unwrap())
        .await
        .unwrap();
    attached.input.shutdown().await.unwrap();
    let mut text = String::new();
    let collect = async {
        while let Some(Ok(chunk)) = attached.output.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
    };
    let finished = tokio::time::timeout(Duration::from_secs(120), collect).await;
    engine.remove(&name).await.unwrap();
    finished.expect("the probes finished in time");
    text
}
