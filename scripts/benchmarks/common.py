"""What every benchmark phase shares: a server, HTTP, timed runs, the table.

How to add a phase: write `scripts/benchmarks/<name>.py` with a docstring
(its first line is the phase's title) and a function `run(ctx)`, then add
`<name>` to `PHASES` in `scripts/bench.py`. In `run(ctx)`:

  - `with ctx.server("label", WARM_POOL="0") as srv:` starts the release
    binary on a free port with that environment (on the bench's database,
    tests folder TESTS) and stops it on exit; `srv.client.json(...)` talks
    to it, `srv.pid` is its process (for `rss_mib`).
  - `app_run(srv, "test_x.py")` POSTs a run and waits for its final status:
    (seconds, run JSON with `timings_ms` and `sandbox`).
  - `bare_run(["test_x.py"])` times the same files through a plain
    `docker run` of the same image with the same sandbox flags; the
    container is removed outside the clock, as the app removes its own
    after the run's final status is recorded.
  - `ctx.figure(name, value)` prints one row of the bench's one
    table (markdown) at once; `ctx.note(text)` goes below it. Print
    nothing else, so each figure is printed once.
  - Add test files to TESTS. Raise BenchError on anything unexpected: the
    driver reports it as the phase's failure and goes on with the next.
"""

import concurrent.futures
import http.client
import io
import itertools
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import tarfile
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("BENCH_BINARY", REPO / "target" / "release" / "test-executor"))
IMAGE = os.environ.get("RUNNER_IMAGE", "test-executor-runner:latest")
FINAL = {"success", "failed", "error", "cancelled", "timed_out"}
# Names this bench's database and labels its bare containers, so that its
# cleanup touches nothing of another bench running beside it.
BENCH_ID = secrets.token_hex(4)
BENCH_LABEL = f"te.bench={BENCH_ID}"

# The sandbox of src/engine/sandbox.rs (an environment's default limits),
# spelt for the docker CLI. No --rm: see bare_run.
DOCKER_FLAGS = (
    "-i --network none --cap-drop ALL --security-opt no-new-privileges --user 1000:1000 --read-only"
    " --tmpfs /tmp:rw,exec,nosuid,nodev,size=256m,mode=1777 --ipc private --memory 512m --memory-swap 512m"
    " --cpus 1 --pids-limit 256 --log-driver json-file --log-opt max-size=256m --log-opt max-file=1"
).split()

TRIVIAL = "test_trivial.py"
TESTS = {
    TRIVIAL: '''\
def test_addition():
    assert 1 + 1 == 2


def test_upper():
    assert "a".upper() == "A"


def test_sum():
    assert sum(range(4)) == 6
''',
}


class BenchError(Exception):
    """Something unexpected; the message says what (with request and answer)."""


def spread(samples):
    """'min / median / max' of seconds, in ms."""
    return " / ".join(f"{x * 1000:,.0f}" for x in (min(samples), statistics.median(samples), max(samples))) + " ms"


def ratio(app, bare):
    return f"{statistics.median(app) / statistics.median(bare):.2f}x"


def timings(runs):
    """Medians of the runs' own `timings_ms`, and how many had which `sandbox`."""
    keys = list(dict.fromkeys(["queued", "container_ready", "pytest", "stored"]
                              + [k for r in runs for k in r.get("timings_ms") or {}]))
    parts = [f"{k} {statistics.median(v):.0f}" for k in keys
             if (v := [r["timings_ms"][k] for r in runs if k in (r.get("timings_ms") or {})])]
    kinds = [r.get("sandbox") or "?" for r in runs]
    return ", ".join(parts) + " ms; " + ", ".join(f"{kinds.count(k)} {k}" for k in sorted(set(kinds)))


_last_cpu = None


def _cpu_times():
    """(total, steal) jiffies of all CPUs, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(fields[:8]), fields[7]


def busy_cpu_seconds():
    """CPU seconds all CPUs spent busy (not idle, not waiting on I/O), from
    /proc/stat: the machine's whole cost of what ran meanwhile."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def load():
    """Load average, and the share of CPU time the hypervisor stole since
    the previous call (a VM's neighbours): both slow every figure."""
    global _last_cpu
    now = _cpu_times()
    text = "load average %.2f / %.2f / %.2f" % os.getloadavg()
    if _last_cpu is not None and now[0] > _last_cpu[0]:
        text += f"; {100 * (now[1] - _last_cpu[1]) / (now[0] - _last_cpu[0]):.0f}% of CPU time stolen since the row above"
    _last_cpu = now
    return text


def rss_mib(pid, field="VmRSS"):
    """A field of /proc/PID/status in MiB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    raise BenchError(f"{field} not in /proc/{pid}/status")


def psql(url, sql):
    done = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"psql: {done.stderr.strip()} (in {sql.strip()[:80]!r})")
    return done.stdout.strip()


class Client:
    """A keep-alive HTTP/1.1 client for one server (one per thread)."""

    def __init__(self, port):
        self.port, self.conn = port, None

    def request(self, method, path, body=None):
        """(status, body bytes); a GET is retried once on a dropped connection."""
        for attempt in range(2 if method == "GET" else 1):
            self.conn = self.conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                data = json.dumps(body).encode() if body is not None else None
                self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt == 1 or method != "GET":
                    raise

    def json(self, method, path, body=None):
        status, data = self.request(method, path, body)
        if status not in (200, 201):
            sent = f" {json.dumps(body)}" if body is not None else ""
            raise BenchError(f"{method} {path}{sent} -> HTTP {status}: {data.decode(errors='replace')[:1000]}")
        return json.loads(data)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Server:
    """The release binary on a free port with the bench's database and
    tests folder plus `env`; stopped on exit, its WARN/ERROR lines noted."""

    def __init__(self, ctx, label, env, role=None):
        self.ctx, self.label, self.env, self.role = ctx, label, env, role
        self.log_path = ctx.workdir / f"server-{label}.log"

    def __enter__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = dict(os.environ, DATABASE_URL=self.ctx.db_url, BIND=f"127.0.0.1:{self.port}",
                   TESTS_DIR=str(self.ctx.tests_dir), RUST_LOG="warn", MAX_PARALLEL_RUNS="2", **self.env)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([str(BINARY)] + ([self.role] if self.role else []), env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        self.client = Client(self.port)
        try:
            deadline = time.monotonic() + 60
            while not self._healthy():
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"server {self.label} did not answer /healthz\n{self.log_tail()}")
                time.sleep(0.05)
            self.ctx.instance = self.ctx.instance or psql(self.ctx.db_url, "select id from installation")
        except BaseException:
            self.__exit__()
            raise
        return self

    def _healthy(self):
        try:
            return self.client.request("GET", "/healthz")[0] == 200
        except OSError:
            self.client.close()
            return False

    def log_tail(self, n=20):
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def __exit__(self, *exc):
        self.client.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.ctx.note(f"server {self.label} ignored SIGTERM for 15 s; killed")
            self.proc.kill()
            self.proc.wait()
        noisy = [re.sub(r"\x1b\[[0-9;]*m", "", l)[:200] for l in self.log_path.read_text(errors="replace").splitlines()
                 if re.search(r"\b(WARN|ERROR)\b", l)]
        if noisy:
            self.ctx.note(f"server {self.label} logged {len(noisy)} WARN/ERROR line(s), e.g. " + " | ".join(noisy[:2]))

    @property
    def pid(self):
        return self.proc.pid


_environments = itertools.cycle(range(1, 100))  # 100 is logs.py's


def app_run(srv, file, client=None, timeout=900, body=None):
    """POSTs a run of `file` (in the next environment, so back-to-back runs
    never wait for one; or `body` as it is) and waits for its final status
    with `?wait=` (the answer comes when the run ends; no polling): (seconds,
    run JSON). A run that does not succeed is an error."""
    client = client or srv.client
    body = body or {"username": "bench", "environment_id": next(_environments), "files": [file]}
    start = time.perf_counter()
    run = client.json("POST", "/api/v1/runs", body)
    while run["status"] not in FINAL:
        if time.perf_counter() - start > timeout:
            raise BenchError(f"run #{run['id']} not final after {timeout} s")
        run = client.json("GET", f"/api/v1/runs/{run['id']}?wait=60")
    elapsed = time.perf_counter() - start
    if run["status"] != "success":
        raise BenchError(f"run #{run['id']} ended {run['status']}: {run.get('reason')}\n{srv.log_tail()}")
    return elapsed, run


def payload(files):
    """The stdin tar the app sends: .te/meta.json first, then the files."""
    meta = {"run_id": 1, "environment_id": 1, "token": secrets.token_hex(16), "files": list(files)}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in [(".te/meta.json", json.dumps(meta).encode())] + [(f, TESTS[f].encode()) for f in files]:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), 0o644, 1000, 1000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def bare_run(files, extra_flags=()):
    """Seconds of a plain `docker run` of the same files, its output streamed
    to the host and thrown away. Like the app's clock, which stops at the
    recorded final status, the clock stops at the container's exit; the
    removal comes after it."""
    name = f"te-bench-bare-{secrets.token_hex(6)}"
    data = payload(files)
    start = time.perf_counter()
    done = subprocess.run(["docker", "run", "--name", name, "--label", BENCH_LABEL, *DOCKER_FLAGS, *extra_flags, IMAGE],
                          input=data, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    oom = subprocess.run(["docker", "inspect", "-f", "{{.State.OOMKilled}}", name], capture_output=True, text=True)
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    if done.returncode != 0:
        raise BenchError(f"docker run {name} exited with {done.returncode} (OOMKilled: {oom.stdout.strip() or '?'}): "
                         f"{done.stderr.decode(errors='replace')[-1000:]}")
    return elapsed


def series(fn, runs, pause):
    """`runs` timed calls of fn() after one untimed warm-up, each after `pause` s."""
    fn()
    out = []
    for _ in range(runs):
        time.sleep(pause)
        out.append(fn())
    return out


def two_at_once(fn, total, then=lambda: None):
    """Calls fn() `total` times from two threads, then then(): (wall seconds,
    busy CPU seconds of the whole machine, results)."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        start, cpu = time.perf_counter(), busy_cpu_seconds()
        results = [f.result() for f in [pool.submit(fn) for _ in range(total)]]
        then()
        return time.perf_counter() - start, busy_cpu_seconds() - cpu, results


def wait_removed(instance, timeout=60):
    """Waits until no container of the app's runs is left: the app removes
    them behind running tests (src/executor/reaper.rs), bare docker right
    after each run, and a throughput counts both sides' removals."""
    deadline = time.monotonic() + timeout
    while subprocess.run(["docker", "ps", "-aq", "--filter", f"name=te-{instance}-run-"],
                         capture_output=True, text=True).stdout.strip():
        if time.monotonic() > deadline:
            raise BenchError(f"the app's run containers were not removed within {timeout} s")
        time.sleep(0.02)


class Ctx:
    """One bench: its arguments, database, tests folder and notes."""

    def __init__(self, args, admin_url, workdir):
        self.args, self.admin_url, self.workdir = args, admin_url, workdir
        self.db_name = f"te_bench_{BENCH_ID}"
        self.db_url = urllib.parse.urlunsplit(urllib.parse.urlsplit(admin_url)._replace(path="/" + self.db_name))
        self.tests_dir = workdir / "tests"
        self.instance, self.notes, self.cache, self.phase = None, [], {}, "-"

    def server(self, label, role=None, **env):
        """`role`: None (serve), "web" or "worker"."""
        return Server(self, label, env, role)

    def once(self, key, fn):
        """fn()'s value, computed once per bench (a baseline phases share)."""
        if key not in self.cache:
            self.cache[key] = fn()
        return self.cache[key]

    def figure(self, name, value):
        """One row of the bench's one table, printed at once."""
        print(f"| {self.phase} | {name} | {value} |", flush=True)

    def note(self, text):
        self.notes.append(text)
