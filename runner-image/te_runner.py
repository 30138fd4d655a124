"""Entry point of every test-executor run container (PID 1).

Protocol: the container is started with stdin attached; pytest is imported
first (so a pre-started container is ready), then an uncompressed tar stream
is read from stdin. Its first member is `.te/meta.json`:

    {"run_id": 42, "environment_id": 3, "token": "<32 hex>",
     "files": ["test_a.py", "nested/test_b.py"], "sys_path": [".", "src"],
     "deadline_secs": 900, "env": {"APP_MODE": "test"}, "shard": false}

the other members are unpacked into /tmp/work: a project's whole tree (the
files are then relative to its root), or the test files and the conftest.py
files above them. pytest runs from /tmp/work with the files named in
meta.json (and nothing else) as arguments, so a project's ini/pyproject
settings and conftest hierarchy apply; the folders in `sys_path` (a project's
root, and `src` for a src layout) come first on sys.path, as a development
install would make them importable. te_plugin reports each event on stderr
as a record prefixed with "\\x1e" and the token. A bad stream exits with
BAD_INPUT (70), outside pytest's own exit statuses 0-5. A shard of a
sharded run ("shard": true) keeps reading stdin after the tar: its tests
come one at a time (te_shard).

The run's own process is a child of this one (see `supervise`): PID 1 only
waits for it, and once `deadline_secs` (from the moment the meta is read)
and GRACE_SECS have passed it exits with DEADLINE_EXIT (124), which ends
every process of the container — so a container whose executor was killed
never outlives its run's deadline for long, whatever the tests do.
"""

import te_imports

# First, so that every import below finds its files without the root.
te_imports.install()

import json
import os
import resource
import signal
import sys
import tarfile
import time

import te_deferred

# The runner image has no third-party pytest plugins; skip scanning for
# them, and with it importing importlib.metadata. A dependency image (a
# venv, src/dependencies) has the project's own (pytest-mock,
# pytest-asyncio...), which its tests expect loaded.
if not os.environ.get("VIRTUAL_ENV"):
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    te_deferred.defer()

import pytest

import te_hang
import te_plugin
import te_shard


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
# A run names at most this many tests (node ids of at most 512 characters:
# together well inside MAX_META_BYTES); the server holds the same caps.
MAX_NODE_IDS = 1000
JUNIT_CHUNK = 32 * 1024
# The server keeps reports up to 8 MiB; one chunk more tells it this one
# was larger, without reading a huge file to the end.
JUNIT_CAP = 8 * 1024 * 1024 + JUNIT_CHUNK
BAD_INPUT = 70
# What the runner and the sandbox set, which a project's [env] may not.
OWN_VARIABLES = {"PATH", "HOME", "USER", "VIRTUAL_ENV"}
# The executor kills a run at its deadline; this is for a container that no
# executor watches any more: it ends itself this long after the deadline.
GRACE_SECS = 30
DEADLINE_EXIT = 124
# What PID 1 waits for: a child's end, and the executor asking for stacks
# (SIGUSR1: someone asked; SIGUSR2: the deadline is near), passed on.
ASKS = [signal.SIGUSR1, signal.SIGUSR2]
WAITED = [signal.SIGCHLD, *ASKS]


class ProtocolError(Exception):
    pass


class RawStdin:
    """stdin read as it comes: never past what the sender wrote, so a
    shard's answers that follow the tar stay in the pipe for te_shard."""

    def read(self, n):
        return os.read(0, n)


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
    # The project's declared variables; the server checked the names, the
    # runner checks them again and never lets one replace its own.
    env = meta.setdefault("env", {})
    if not isinstance(env, dict) or len(env) > 100:
        raise ProtocolError("env must be a small object")
    for name, value in env.items():
        if not (isinstance(name, str) and isinstance(value, str) and name.isidentifier()
                and len(value) <= 4096 and "\0" not in value):
            raise ProtocolError("env holds a bad variable")
        if name in OWN_VARIABLES or name.startswith(("TE_", "PIP_", "PYTHON", "PYTEST_", "LD_")):
            raise ProtocolError(f"env may not set {name}")
    # None only from a server older than the deadline watch
    if not isinstance(meta.setdefault("shard", False), bool):
        raise ProtocolError("shard must be true or false")
    deadline = meta.setdefault("deadline_secs", None)
    valid = isinstance(deadline, int) and not isinstance(deadline, bool) and 0 < deadline < 10**7
    if deadline is not None and not valid:
        raise ProtocolError("deadline_secs must be a positive integer")
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


def test_args(files, written, node_ids=None):
    """pytest's arguments: the files, or the node ids within them."""
    args = []
    for name in files:
        path = "/".join(relative_parts(name))
        if path.startswith("-") or "::" in path or path not in written:
            raise ProtocolError(f"refusing file {name!r}: not a test file in the stream")
        args.append(path)
    if node_ids is None:
        return args
    if not isinstance(node_ids, list) or not 0 < len(node_ids) <= MAX_NODE_IDS:
        raise ProtocolError("node_ids must be a short non-empty list")
    for node_id in node_ids:
        if not (isinstance(node_id, str) and len(node_id) <= 512
                and node_id.split("::")[0] in args and not node_id.startswith("-")
                and not any(ord(c) < 32 for c in node_id)):
            raise ProtocolError(f"refusing node id {str(node_id)[:200]!r}: not a test of the files")
    return list(node_ids)


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


def supervise():
    """Forks. The child returns (with the pipe on which it tells the
    deadline) and runs the run; this process, the container's PID 1, never
    returns: it waits for the child and exits with its status, or with
    DEADLINE_EXIT once the deadline plus GRACE_SECS has passed. Test code runs
    only in the child and cannot stop the watch: from inside the container,
    PID 1 receives only the signals it handles, and it handles none (SIGCHLD,
    SIGUSR1 and SIGUSR2 are blocked and waited for; the last two, the
    executor asking for stacks, go on to the child, whose te_hang answers)."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        # Until te_hang answers them, an early ask must not end the run.
        for signo in ASKS:
            signal.signal(signo, signal.SIG_IGN)
        return write_end
    os.close(write_end)
    os.close(0)
    signal.pthread_sigmask(signal.SIG_BLOCK, WAITED)
    deadline = read_deadline(read_end)
    os._exit(wait_for(child, deadline))


def read_deadline(fd):
    """The child's deadline in seconds, or None if it ended without one."""
    data = b""
    while chunk := os.read(fd, 64):
        data += chunk
        if len(data) > 64:
            return None
    os.close(fd)
    try:
        return int(data)
    except ValueError:
        return None


def reap(child):
    """Reaps every child that has ended (orphans are PID 1's to reap too);
    returns the run's exit status once it has ended (128 + the signal for
    a killed one, as a shell has it), else None."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return BAD_INPUT
        if pid == 0:
            return None
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code


def wait_for(child, deadline):
    ends_at = None if deadline is None else time.monotonic() + deadline + GRACE_SECS
    while (status := reap(child)) is None:
        if ends_at is None:
            pass_on(child, signal.sigwait(WAITED))
            continue
        left = ends_at - time.monotonic()
        if left <= 0:
            print(
                f"te_runner: the run's deadline ({deadline} s) and {GRACE_SECS} s more have passed"
                " with the run still going; the container ends itself",
                file=sys.stderr,
                flush=True,
            )
            os.kill(child, signal.SIGKILL)
            return DEADLINE_EXIT
        info = signal.sigtimedwait(WAITED, left)
        pass_on(child, info and info.si_signo)
    return status


def pass_on(child, signo):
    """An ask for stacks goes on to the run (te_hang answers it)."""
    if signo in ASKS:
        try:
            os.kill(child, signo)
        except ProcessLookupError:
            pass


def tell_deadline(pipe, meta):
    """Tells PID 1 the deadline, before any test code runs, and lets go of
    the pipe so nothing the tests start can write to it."""
    if meta["deadline_secs"] is not None:
        os.write(pipe, f"{meta['deadline_secs']}\n".encode())
    os.close(pipe)


def main(deadline_pipe):
    # What the wait for the payload (and a warm container's imports) used
    # is not the run's.
    before = resource.getrusage(resource.RUSAGE_SELF)
    os.makedirs(WORK, mode=0o755, exist_ok=True)
    os.makedirs(REPORT_DIR, mode=0o755, exist_ok=True)
    try:
        with tarfile.open(fileobj=RawStdin(), mode="r|") as tar:
            meta = read_meta(tar)
            tell_deadline(deadline_pipe, meta)
            written = extract(tar)
        files = test_args(meta["files"], written, meta.get("node_ids"))
        paths = import_paths(meta["sys_path"])
    except (ProtocolError, tarfile.TarError, OSError, ValueError, UnicodeDecodeError) as e:
        print(f"te_runner: bad input: {e}", file=sys.stderr, flush=True)
        return BAD_INPUT

    os.chdir(WORK)
    os.environ.update(meta["env"])
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
    plugins = [plugin]
    if meta["shard"]:
        plugin.shard = True
        plugins.append(te_shard.Shard(plugin))
    te_hang.watch(plugin, WORK)
    status = pytest.main(args, plugins=plugins)
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
    status = main(supervise())
    # Everything is reported; skip the interpreter's teardown (tens of ms
    # a run) — the container ends with this process.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(status))
