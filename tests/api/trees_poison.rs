//! Trees of the same name from two usernames never share what a build ran:
//! ann's tree plants a module into the dependency image it builds; bob's
//! tree of the same name and the same declaring files must not see it.
//! An installable tree's image is its own (keyed by the whole tree); a tree
//! that only lists requirements shares its image, whose build ran none of
//! its files.

use std::path::{Path, PathBuf};

use crate::helpers::TestApp;
use crate::trees::{client_in, last_run};

/// Writes `files` into `<base>/<user>/<name>` (the folder's name is the tree's).
fn tree(base: &Path, user: &str, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = base.join(user).join(name);
    for (path, content) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!("te-poison-{:016x}", rand::random::<u64>()))
}

/// Writes `planted_by_ann.py` into every site-packages of the venv being built.
const PLANT: &str = "import glob, os\n\
for d in glob.glob('/opt/venv/lib/python3*/site-packages'):\n    \
with open(os.path.join(d, 'planted_by_ann.py'), 'w') as f:\n        \
f.write('PLANTED = True\\n')\n";

const SEES_THE_PLANT: &str = "import importlib.util\n\n\
def test_the_plant_is_there():\n    \
assert importlib.util.find_spec('planted_by_ann') is not None\n";

const SEES_NO_PLANT: &str = "import importlib.util\n\n\
def test_nothing_planted():\n    \
assert importlib.util.find_spec('planted_by_ann') is None\n";

/// setup.py runs what a non-declaring file of the tree says: the same
/// setup.py in both trees, so the same declaring files.
const SETUP_PY: &str = "import os\nfrom setuptools import setup\n\
if os.path.exists('build_hook.py'):\n    exec(open('build_hook.py').read())\n\
setup(name='shared', version='1.0', py_modules=[])\n";

async fn submit_as(app: &TestApp, dir: &Path, user: &str) -> serde_json::Value {
    let args = ["submit", "--user", user, "--env", "1", "--tree", "."];
    let (code, stdout, stderr) = client_in(app, dir, &args).await;
    let run = last_run(app).await;
    assert_eq!(code, Some(0), "{user}: {stdout}\n{stderr}\n{run}");
    assert_eq!(run["username"], user, "{run}");
    run
}

#[tokio::test]
async fn an_installable_tree_never_runs_in_the_image_another_users_same_named_tree_built() {
    let app = TestApp::spawn().await;
    let base = scratch();
    let ann = tree(
        &base,
        "ann",
        "shared",
        &[
            ("setup.py", SETUP_PY),
            ("build_hook.py", PLANT),
            ("test_plant.py", SEES_THE_PLANT),
        ],
    );
    let bob = tree(
        &base,
        "bob",
        "shared",
        &[("setup.py", SETUP_PY), ("test_plant.py", SEES_NO_PLANT)],
    );
    // ann's own run sees what her build planted: the plant works
    let first = submit_as(&app, &ann, "ann").await;
    let second = submit_as(&app, &bob, "bob").await;
    assert_eq!(first["project"], "tree:shared");
    assert_eq!(second["project"], "tree:shared");
    assert_ne!(first["image"], second["image"], "{first}\n{second}");
    // ann again, unchanged: her own image again
    let again = submit_as(&app, &ann, "ann").await;
    assert_eq!(again["image"], first["image"], "{again}");
    std::fs::remove_dir_all(base).unwrap();
}

/// Run as `python3 -m venv` from the tree, this would make the venv and
/// plant into it; the build runs none of the tree's files.
const VENV_PY: &str = "import glob, os, runpy, sys\n\
sys.path = [p for p in sys.path if p not in ('', os.getcwd())]\n\
try:\n    runpy.run_module('venv', run_name='__main__', alter_sys=True)\n\
finally:\n    \
for d in glob.glob('/opt/venv/lib/python3*/site-packages'):\n        \
open(os.path.join(d, 'planted_by_ann.py'), 'w').write('PLANTED = True\\n')\n";

const USES_INICONFIG: &str = "import importlib.util\nimport iniconfig\n\n\
def test_nothing_planted():\n    \
assert importlib.util.find_spec('planted_by_ann') is None\n";

#[tokio::test]
async fn a_requirements_only_trees_shared_image_carries_nothing_its_first_sender_planted() {
    let app = TestApp::spawn().await;
    let base = scratch();
    let requirements = ("requirements.txt", "iniconfig==2.0.0\n");
    let ann = tree(
        &base,
        "ann",
        "listing",
        &[
            requirements,
            ("venv.py", VENV_PY),
            ("test_plant.py", USES_INICONFIG),
        ],
    );
    let bob = tree(
        &base,
        "bob",
        "listing",
        &[requirements, ("test_plant.py", USES_INICONFIG)],
    );
    let first = submit_as(&app, &ann, "ann").await;
    let second = submit_as(&app, &bob, "bob").await;
    assert_eq!(
        first["image"], second["image"],
        "the same checked requirements, one image: {first}\n{second}"
    );
    assert_ne!(first["tree_id"], second["tree_id"]);
    std::fs::remove_dir_all(base).unwrap();
}
