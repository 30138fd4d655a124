//! `[build] system_packages`: Debian's packages installed into the project's
//! image by a trusted step (apt, no project code), made once per package
//! list and shared; the tests run as before (uid 1000, no network) and see
//! the programs and headers; a package Debian does not have ends the run
//! `error` naming it.

use std::{process::Command, time::Duration};

use crate::helpers::{id, TestApp};

const JQ_TEST: &str = "import os, shutil, subprocess\n\n\
    def test_the_declared_program_is_there():\n    \
        assert shutil.which('jq') == '/usr/bin/jq'\n    \
        out = subprocess.run(['jq', '-n', '1 + 2'], capture_output=True, text=True, check=True)\n    \
        assert out.stdout.strip() == '3'\n\n\
    def test_the_tests_are_still_not_root():\n    \
        assert os.getuid() == 1000\n";

const PLAIN_TEST: &str = "import shutil\n\n\
    def test_a_project_without_packages_does_not_get_them():\n    \
        assert shutil.which('jq') is None\n";

/// Removes the images made for `packages` before (an earlier run of the
/// suite on this runner image), so the first build here makes it.
fn forget_system_image(packages: &str) {
    let listed = Command::new("docker")
        .args(["images", "-q", "--filter"])
        .arg(format!("label=te.system-packages={packages}"))
        .output()
        .unwrap();
    for image in String::from_utf8_lossy(&listed.stdout).split_whitespace() {
        let _ = Command::new("docker").args(["rmi", "-f", image]).output();
    }
}

async fn build_log(app: &TestApp, project: &str) -> String {
    sqlx::query_scalar("select log from dependency_images where project = $1")
        .bind(project)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn declared_debian_packages_reach_the_tests_and_the_same_list_is_made_once() {
    forget_system_image("jq");
    let toml = "[build]\nsystem_packages = [\"jq\"]\n";
    let app = TestApp::spawn_with(
        &[
            ("one/test-executor.toml", toml),
            ("one/test_jq.py", JQ_TEST),
            ("two/test-executor.toml", toml),
            ("two/test_jq.py", JQ_TEST),
            ("plain/pytest.ini", "[pytest]\n"),
            ("plain/test_plain.py", PLAIN_TEST),
        ],
        |_| {},
    )
    .await;
    for (project, made) in [
        ("one", "apt-get install --no-download"),
        ("two", "(made before)"),
    ] {
        let run = app.create_run(1, &[&format!("{project}/test_jq.py")]).await;
        let run = app.wait_finished(id(&run), Duration::from_secs(300)).await;
        let log = build_log(&app, project).await;
        assert_eq!(run["status"], "success", "{run}\n{log}");
        assert_eq!(run["summary"]["passed"], 2, "{run}");
        assert!(log.contains(made), "{project}: {log}");
    }
    let run = app.create_run(1, &["plain/test_plain.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(60)).await;
    assert_eq!(run["status"], "success", "{run}");
}

#[tokio::test]
async fn a_package_debian_does_not_have_ends_the_run_error_naming_it() {
    let app = TestApp::spawn_with(
        &[
            (
                "odd/test-executor.toml",
                "[build]\nsystem_packages = [\"te-no-such-package\"]\n",
            ),
            ("odd/test_x.py", "def test_x():\n    pass\n"),
        ],
        |_| {},
    )
    .await;
    let run = app.create_run(1, &["odd/test_x.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(300)).await;
    assert_eq!(run["status"], "error", "{run}");
    let reason = run["reason"].as_str().unwrap();
    assert!(
        reason.contains("Unable to locate package te-no-such-package"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_c_extension_builds_from_source_against_the_declared_headers() {
    let app = TestApp::spawn_with(
        &[
            (
                "pg/test-executor.toml",
                "[build]\nsystem_packages = [\"libpq-dev\", \"gcc\", \"python3-dev\"]\n",
            ),
            ("pg/requirements.txt", "psycopg2==2.9.10\n"),
            (
                "pg/test_pg.py",
                "import psycopg2, psycopg2._psycopg\n\n\
                 def test_built_here_against_libpq():\n    \
                     assert psycopg2._psycopg.__file__.endswith('.so')\n    \
                     assert psycopg2.__libpq_version__ >= 150000\n",
            ),
        ],
        |_| {},
    )
    .await;
    let run = app.create_run(1, &["pg/test_pg.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(600)).await;
    let log = build_log(&app, "pg").await;
    assert_eq!(run["status"], "success", "{run}\n{log}");
    assert!(
        log.contains("psycopg2-2.9.10.tar.gz"),
        "built from source: {log}"
    );
}
