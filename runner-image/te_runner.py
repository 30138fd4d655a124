"""Entry point of every test-executor run container (PID 1).

Protocol: the container is started with stdin attached; pytest is imported
first (so a pre-started container is ready), then an uncompressed tar stream
is read from stdin. Its first member is `.te/meta.json`:

    {"run_id": 42, "environment_id": 3, "token": "<32 hex>",
     "files": ["test_a.py", "nested/test_b.py"], "sys_path": [".", "src"]}

the other members are unpacked into /tmp/work: a project's whole tree (the
files are then relative to its root), or the test files and the conftest.py
files above them. pytest runs from /tmp/work with the files named in
meta.json (and nothing else) as arguments, so a project's ini/pyproject
settings and conftest hierarchy apply; the folders in `sys_path` (a project's
root, and `src` for a src layout) come first on sys.path, as a development
install would make them importable. te_plugin reports each event on stderr
as a record prefixed with "\\x1e" and the token. A bad stream exits with
BAD_INPUT (70), outside pytest's own exit statuses 0-5.
"""

import te_imports

# First, so that every import below finds its files without the root.
te_imports.install()

import json
import os
import resource
import sys
import tarfile

import te_deferred

# The runner image has no third-party pytest plugins; skip scanning for
# them, and with it importing importlib.metadata. A dependency image (a
# venv, src/dependencies) has the project's own (pytest-mock,
# pytest-asyncio...), which its tests expect loaded.
if not os.environ.get("VIRTUAL_ENV"):
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    te_deferred.defer()

import pytest

import te_plugin


def warm_up():
    """Imports what pytest.main loads, so a pre-started container spends its
    wait on it rather than the run's time."""
    import importlib

    from _pytest.config import default_plugins

    for name in default_plugins:
        try:
            importlib.import_module(f"_pytest.{name}")
        except ImportError:
            pass


warm_up()

WORK = "/tmp/work"
REPORT_DIR = "/tmp/te"
META = ".te/meta.json"
MAX_META_BYTES = 1 << 20
JUNIT_CHUNK = 32 * 1024
# The server keeps reports up to 8 MiB; one chunk more tells it this one
# was larger, without reading a huge file to the end.
JUNIT_CAP = 8 * 1024 * 1024 + JUNIT_CHUNK
BAD_INPUT = 70


class ProtocolError(Exception):
    pass


def relative_parts(name):
    """Splits a member or file name into safe relative path parts."""
    if not isinstance(name, str) or not name or name.startswith("/") or "\0" in name:
        raise ProtocolError(f"refusing path {name!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ProtocolError(f"refusing path {name!r}")
    return parts


def read_meta(tar):
    member = tar.next()
    if member is None or relative_parts(member.name) != META.split("/") or not member.isreg():
        raise ProtocolError(f"the first tar member must be {META}")
    if member.size > MAX_META_BYTES:
        raise ProtocolError(f"{META} is too large")
    meta = json.loads(tar.extractfile(member).read().decode("utf-8"))
    if not isinstance(meta, dict):
        raise ProtocolError(f"{META} must hold an object")
    token = meta.get("token")
    if not isinstance(token, str) or len(token) != 32 or not all(c in "0123456789abcdefABCDEF" for c in token):
        raise ProtocolError("token must be 32 hex characters")
    for key in ("run_id", "environment_id"):
        if not isinstance(meta.get(key), int) or isinstance(meta.get(key), bool):
            raise ProtocolError(f"{key} must be an integer")
    files = meta.get("files")
    if not isinstance(files, list) or not files:
        raise ProtocolError("files must be a non-empty list")
    sys_path = meta.setdefault("sys_path", [])
    if not isinstance(sys_path, list) or len(sys_path) > 8:
        raise ProtocolError("sys_path must be a short list")
    return meta


def import_paths(sys_path):
    """The folders to import from, each inside the work folder."""
    paths = []
    for name in sys_path:
        if name == ".":
            paths.append(WORK)
        else:
            paths.append(os.path.join(WORK, *relative_parts(name)))
    return paths


def extract(tar):
    """Unpacks regular files and directories only; returns the files' paths."""
    written = set()
    while (member := tar.next()) is not None:
        parts = relative_parts(member.name)
        if parts[0] == ".te":
            raise ProtocolError(f"unexpected member {member.name!r}")
        target = os.path.join(WORK, *parts)
        if member.isdir():
            os.makedirs(target, mode=0o755, exist_ok=True)
        elif member.isreg():
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            src = tar.extractfile(member)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(1 << 16):
                    out.write(chunk)
            written.add("/".join(parts))
        else:
            raise ProtocolError(f"refusing {member.name!r}: not a regular file or directory")
    return written


def test_args(files, written):
    args = []
    for name in files:
        path = "/".join(relative_parts(name))
        if path.startswith("-") or "::" in path or path not in written:
            raise ProtocolError(f"refusing file {name!r}: not a test file in the stream")
        args.append(path)
    return args


def cpu_ms(usage):
    return int((usage.ru_utime + usage.ru_stime) * 1000)


def send_usage(plugin, before):
    """The run's CPU time and peak memory as the kernel counted them: the
    totals of a run that ends before the engine's first stats reading."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    plugin.emit({
        "t": "usage",
        "cpu_ms": cpu_ms(own) - cpu_ms(before) + cpu_ms(children),
        "max_rss_kib": max(own.ru_maxrss, children.ru_maxrss),
    })


def main():
    # What the wait for the payload (and a warm container's imports) used
    # is not the run's.
    before = resource.getrusage(resource.RUSAGE_SELF)
    os.makedirs(WORK, mode=0o755, exist_ok=True)
    os.makedirs(REPORT_DIR, mode=0o755, exist_ok=True)
    try:
        with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as tar:
            meta = read_meta(tar)
            written = extract(tar)
        files = test_args(meta["files"], written)
        paths = import_paths(meta["sys_path"])
    except (ProtocolError, tarfile.TarError, OSError, ValueError, UnicodeDecodeError) as e:
        print(f"te_runner: bad input: {e}", file=sys.stderr, flush=True)
        return BAD_INPUT

    os.chdir(WORK)
    sys.path[:0] = paths
    if paths:
        # Subprocesses the tests start import the same way.
        os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    os.environ["TE_RUN_ID"] = str(meta["run_id"])
    os.environ["TE_ENVIRONMENT_ID"] = str(meta["environment_id"])
    plugin = te_plugin.Plugin(meta["token"])
    args = [
        "-p", "no:cacheprovider",
        "-s",
        "--color=yes",
        "-o", "log_cli=true",
        "--log-cli-level=INFO",
        f"--junitxml={REPORT_DIR}/junit.xml",
        "-o", "junit_family=xunit2",
        f"--rootdir={WORK}",
        *files,
    ]
    status = pytest.main(args, plugins=[plugin])
    send_junit(plugin)
    send_usage(plugin, before)
    return status


def send_junit(plugin):
    """Sends pytest's JUnit report as records: /tmp is gone once the container stops."""
    try:
        with open(f"{REPORT_DIR}/junit.xml", encoding="utf-8", errors="replace") as f:
            sent = 0
            while sent < JUNIT_CAP and (chunk := f.read(JUNIT_CHUNK)):
                plugin.emit({"t": "junit", "data": chunk})
                sent += len(chunk)
    except OSError:
        pass


if __name__ == "__main__":
    status = main()
    # Everything is reported; skip the interpreter's teardown (tens of ms
    # a run) — the container ends with this process.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(status))
