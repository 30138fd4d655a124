//! A project's `test-executor.toml` (or `[tool.test-executor]`): its `[env]`
//! reaches the tests; an unknown key, a reserved variable or a service image
//! this server does not offer is a 422 naming the key, and nothing is queued.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{id, TestApp};

const APP: &[(&str, &str)] = &[
    ("app/pytest.ini", "[pytest]\n"),
    (
        "app/test-executor.toml",
        "[env]\nAPP_MODE = \"ci\"\nDB_PORT = 5432\n",
    ),
    (
        "app/test_env.py",
        "import os, subprocess, sys\n\n\
         def test_the_declared_variables_are_set():\n    \
             assert os.environ['APP_MODE'] == 'ci'\n    \
             assert os.environ['DB_PORT'] == '5432'\n\n\
         def test_subprocesses_see_them_too():\n    \
             out = subprocess.run([sys.executable, '-c', 'import os; print(os.environ[\"APP_MODE\"])'],\n        \
             capture_output=True, text=True, check=True).stdout\n    \
             assert out.strip() == 'ci'\n",
    ),
    ("bad/pytest.ini", "[pytest]\n"),
    ("bad/test_x.py", "def test_x():\n    pass\n"),
];

#[tokio::test]
async fn the_declared_env_reaches_the_tests() {
    let app = TestApp::spawn_with(APP, |_| {}).await;
    let run = app.create_run(1, &["app/test_env.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(60)).await;
    let logs = app.log_text(id(&run)).await.join("\n");
    assert_eq!(run["status"], "success", "{run}\n{logs}");
    assert_eq!(run["summary"]["passed"], 2, "{run}");
}

#[tokio::test]
async fn a_bad_declaration_is_a_422_naming_the_key_and_queues_nothing() {
    for (text, key) in [
        ("[envs]\nA = '1'\n", "test-executor.toml: envs: unknown key"),
        (
            "[env]\nPATH = '/x'\n",
            "test-executor.toml: env.PATH: reserved",
        ),
        (
            "[[services]]\nname = 'db'\nimage = 'mysql'\nready = 'tcp:3306'\n",
            "test-executor.toml: services[0].image: \"mysql\" is not a service image this \
             server offers: it offers postgres",
        ),
        (
            "[build]\nsystem_packages = ['libpq-dev', '-o=APT::x']\n",
            "test-executor.toml: build.system_packages[1]: a Debian package name",
        ),
    ] {
        let mut files = APP.to_vec();
        files.push(("bad/test-executor.toml", text));
        let app = TestApp::spawn_with(&files, |c| c.no_executor = true).await;
        let answer = app
            .post_json(
                "/api/v1/runs",
                &json!({"username": "ann", "environment_id": 1, "files": ["bad/test_x.py"]}),
            )
            .await;
        assert_eq!(answer.status(), 422, "{text}");
        let body: serde_json::Value = answer.json().await.unwrap();
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(key), "{text}: {error}");
        assert!(error.starts_with("project bad: "), "{error}");
        assert_eq!(app.count_runs().await, 0);
    }
}
