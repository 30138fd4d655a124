//! The scripts the steps run: the download step's (`fetch.sh`), the
//! project steps' (`build.sh`, metadata or install) and the reader of pip's
//! report (`requires.py`).

use super::{quote, BUILD_DIR, DOWNLOADS_RO, KEPT_RO, RUNTIME_ROOT, VENV};

/// A download step: `wheels` resolves with wheels only (no code of any
/// package runs) into the kept wheels; `sources` also takes source
/// archives (whose metadata hooks run, third-party code with nothing but
/// the proxy to reach) into this build's own volume. Either reaches the
/// index only through the forwarder and the proxy.
pub(super) const FETCH: &str = r#"set -eu
ctx=/var/cache/te-fetch
. "$ctx/pip.env"
python3 "$ctx/egress.py" forward 3128 /var/cache/te-net/proxy.sock &
pip=/opt/te/pip/pip
case "$1" in
wheels)
    dest=/var/cache/te-pip/wheels
    mkdir -p "$dest"
    export PIP_FIND_LINKS="$dest${PIP_FIND_LINKS:+ $PIP_FIND_LINKS}"
    echo "==> pip download --only-binary :all: (wheels only, kept for later builds)"
    exec python3 "$pip" download --only-binary :all: --dest "$dest" -r "$ctx/requirements.txt" -c "$ctx/constraints.txt"
    ;;
sources)
    dest=/var/cache/te-pip
    export PIP_FIND_LINKS="/var/cache/te-wheels/wheels${PIP_FIND_LINKS:+ $PIP_FIND_LINKS}"
    echo "==> pip download --prefer-binary (source archives too, for this build only)"
    exec python3 "$pip" download --prefer-binary --dest "$dest" -r "$ctx/requirements.txt" -c "$ctx/constraints.txt"
    ;;
esac
"#;

/// A project step, offline (it runs the project's code when the project
/// installs itself, and then only from its tree): `metadata` prints the
/// project's own requirements (`te-requires: ...`, checked by the server
/// like any requirement line), `install` makes the venv that is committed:
/// one that sees the image's packages (pytest among them), made without
/// pip (the image's own pip, `/opt/te/pip`, runs pip, so the venv carries no pip of its
/// own), the build's files removed, and no `sitecustomize` or
/// `usercustomize` left in it (they would run in every later run).
pub(super) fn build_script(project_args: &[String]) -> String {
    let args: Vec<String> = project_args.iter().map(|a| quote(a)).collect();
    format!(
        r#"set -eu
b={BUILD_DIR}
pip=/opt/te/pip/pip
export PIP_NO_INDEX=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off
export PIP_FIND_LINKS="{KEPT_RO}/wheels {DOWNLOADS_RO}"
cd "$b"
case "$1" in
metadata)
    cd {RUNTIME_ROOT}
    echo "==> the project's own requirements (pip install --dry-run --no-deps, offline)"
    python3 "$pip" install --dry-run --no-deps --ignore-installed --report "$b/report.json" {args}
    python3 "$b/requires.py" "$b/report.json"
    ;;
install)
    echo '==> python3 -m venv --without-pip --system-site-packages {VENV}'
    python3 -m venv --without-pip --system-site-packages {VENV}
    {into_tree}
    echo '==> pip install --no-index (offline) {shown}'
    {VENV}/bin/python "$pip" install -r "$b/requirements.txt" -c "$b/constraints.txt" {args}
    if [ -d "$b/own" ]; then
        echo '==> the install the server wrote (static metadata)'
        for site in {VENV}/lib/python3*/site-packages; do cp -R "$b/own/site-packages/." "$site/"; done
        if [ -d "$b/own/bin" ]; then cp -R "$b/own/bin/." {VENV}/bin/; fi
    fi
    cd /
    rm -rf {RUNTIME_ROOT} "$b"
    rm -f {VENV}/lib/python3*/site-packages/sitecustomize.py {VENV}/lib/python3*/site-packages/usercustomize.py
    echo '==> done'
    ;;
esac
"#,
        args = args.join(" "),
        // `-m venv` runs from the build's own folder: from the tree, a
        // `venv.py` of the project's would run instead
        into_tree = if project_args.is_empty() {
            String::new()
        } else {
            format!("cd {RUNTIME_ROOT}")
        },
        shown = project_args.join(" ").replace('\'', ""),
    )
}

/// Prints the project's requirements from pip's report, with the markers
/// evaluated here (the test extras requested, and the extras of its own
/// that they name: `myproj[tests-core]` is never asked of the index).
pub(super) const REQUIRES: &str = r#"import json, sys
sys.path.insert(0, "/opt/te/pip")
from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.utils import canonicalize_name
with open(sys.argv[1]) as f:
    report = json.load(f)
for item in report.get("install", []):
    meta = item.get("metadata", {})
    own = canonicalize_name(meta.get("name", ""))
    reqs = [Requirement(line) for line in meta.get("requires_dist", []) or []]
    extras = {"", "test", "tests", "testing"}
    wanted = lambda req: req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras)
    grew = True
    while grew:
        grew = False
        for req in reqs:
            if canonicalize_name(req.name) == own and wanted(req) and set(req.extras) - extras:
                extras |= set(req.extras)
                grew = True
    for req in reqs:
        if canonicalize_name(req.name) != own and wanted(req):
            req.marker = None
            print("te-requires:", req)
"#;
