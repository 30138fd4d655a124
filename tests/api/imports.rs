//! A run's imports go through the runner's shortcut (`runner-image/
//! te_imports.py`: paths under /usr and /tmp opened from directories opened
//! once, not through the image's root), and find exactly what Python would
//! find without it: the same files, new modules written during the run, and
//! sources for tracebacks; `importlib.metadata`, deferred (`te_deferred.py`),
//! works once used.

use std::time::Duration;

use crate::helpers::{id, TestApp};

const IMPORTS: &str = r#"
import importlib, inspect, json, os, sys

import conftest as helper


def test_the_shortcut_is_in_place():
    bootstrap = sys.modules["_frozen_importlib_external"]
    assert type(bootstrap._os).__module__ == "te_imports", type(bootstrap._os)


def test_modules_have_their_real_paths_and_sources():
    assert helper.__file__ == "/tmp/work/imports/conftest.py", helper.__file__
    assert "return 42" in inspect.getsource(helper.answer)
    assert json.__file__ == "/usr/lib/python3.11/json/__init__.py", json.__file__
    import _pytest.python
    assert _pytest.python.__file__.startswith("/usr/lib/python3/dist-packages/_pytest/")


def test_a_module_written_during_the_run_is_found_and_reloaded():
    with open("/tmp/work/imports/late.py", "w") as f:
        f.write("VALUE = 1\n")
    importlib.invalidate_caches()
    import late
    assert late.VALUE == 1
    with open("/tmp/work/imports/late.py", "w") as f:
        f.write("VALUE = 2  # a longer line, so the size differs\n")
    os.utime("/tmp/work/imports/late.py", (0, 0))
    assert importlib.reload(late).VALUE == 2


def test_importlib_metadata_is_loaded_when_first_used():
    # te_deferred: nothing read it before this test, so nothing loaded it
    assert "email" not in sys.modules
    from importlib.metadata import version
    import importlib.metadata as metadata
    import pytest
    assert version("pytest") == metadata.version("pytest") == pytest.__version__
    assert any(d.metadata["Name"] == "pytest" for d in metadata.distributions())


def test_a_missing_module_is_still_missing():
    try:
        import no_such_module_here  # noqa: F401
        raise AssertionError("imported a module that does not exist")
    except ModuleNotFoundError:
        pass


def test_a_failure_shows_the_line_that_failed():
    assert helper.answer() == 41
"#;

/// Sent with the run, as every conftest file above its tests is.
const HELPER: &str = "def answer():\n    return 42\n";

#[tokio::test]
async fn imports_find_the_same_files_as_python_and_failures_show_their_source() {
    let app = TestApp::spawn_with(
        &[
            ("imports/test_imports.py", IMPORTS),
            ("imports/conftest.py", HELPER),
        ],
        |_| {},
    )
    .await;
    let run = app.create_run(9, &["imports/test_imports.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(60)).await;
    let logs = app.log_text(id(&run)).await.join("\n");
    assert_eq!(run["status"], "failed", "{run}\n{logs}");
    assert_eq!(run["summary"]["passed"], 5, "{run}\n{logs}");
    assert_eq!(run["summary"]["failed"], 1, "{run}\n{logs}");
    assert!(
        logs.contains("assert helper.answer() == 41"),
        "the failing line is shown: {logs}"
    );
}
