#!/usr/bin/env python3
"""Benchmark of test-executor: prints figures, checks nothing.

What it measures (each phase starts its own server, so figures do not mix):

  1. trivial run, bare docker: `docker run -i --rm` of the runner image with
     every sandbox setting the app uses, fed the same stdin tar the app sends
     (meta.json + a file with 3 passing tests); the floor the app is held to.
  2. trivial run through the app: POST /api/v1/runs, then GET the run every
     5 ms until its status is final; min/median/max and the ratio of the
     app's median to the bare docker median (the goal is <= 1.15). The server
     runs with its defaults, so with its default warm pool if it has one; the
     runs' `sandbox` and `timings_ms` fields are summarised when present.
  3. log ingestion: one run printing 200,000 lines of 84 bytes (every 10th
     on stderr); lines stored, wall time, lines/s, the server's RSS at idle
     and its peak RSS (VmHWM) right after the run.
  4. 5,000 tests: one run of a file with 5,000 trivial parametrised cases;
     wall time, results/s (5000 / (finished_at - started_at)), the results
     listed by the API, and the response time of the run page GET /runs/{id}.
  5. warm pool: phase 2 again with WARM_POOL=2 and with WARM_POOL=0, side by
     side with the bare docker run (the goal with the pool is <= 0.3x).

How to run it: `bash scripts/bench [--runs N] [--only 1,2,5] [--pause S]`.
The wrapper provisions Postgres and the runner image and builds the release
binary, then runs this script (Python 3.11, standard library only). It needs
DATABASE_URL (a role allowed to CREATE DATABASE), `psql`, `docker`, and
target/release/test-executor. The bench makes a database te_bench_<random>
and a temporary tests folder, and removes both at the end.
"""

import argparse
import http.client
import io
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BINARY = REPO / "target" / "release" / "test-executor"
IMAGE = os.environ.get("RUNNER_IMAGE", "test-executor-runner:latest")
FINAL = {"success", "failed", "error", "cancelled", "timed_out"}
POLL_FAST = 0.005  # phases 2 and 5: the spec's 5 ms
POLL_SLOW = 0.020  # phases 3 and 4: long runs, lighter on the server
LOG_LINES = 200_000
LOG_LINE_BYTES = 84  # newline included
MANY_TESTS = 5_000
PAGE_REQUESTS = 20

# The sandbox of engine.rs, spelt for the docker CLI.
DOCKER_RUN = [
    "docker", "run", "-i", "--rm",
    "--network", "none",
    "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges",
    "--user", "1000:1000",
    "--read-only",
    "--tmpfs", "/tmp:rw,exec,nosuid,nodev,size=256m,mode=1777",
    "--memory", "512m", "--memory-swap", "512m",
    "--cpus", "1",
    "--pids-limit", "256",
    IMAGE,
]

TEST_FILES = {
    "test_trivial.py": '''\
def test_addition():
    assert 1 + 1 == 2


def test_upper():
    assert "a".upper() == "A"


def test_sum():
    assert sum(range(4)) == 6
''',
    "test_log_flood.py": f'''\
import sys

LINES = {LOG_LINES}
WIDTH = {LOG_LINE_BYTES - 1}  # plus the newline


def test_flood():
    pad = "x" * (WIDTH - len("line 000000 "))
    out, err = sys.stdout, sys.stderr
    for i in range(LINES):
        (err if i % 10 == 9 else out).write(f"line {{i:06d}} {{pad}}\\n")
    out.flush()
    err.flush()
''',
    "test_many.py": f'''\
import pytest


@pytest.mark.parametrize("i", range({MANY_TESTS}))
def test_case(i):
    assert i >= 0
''',
}
FLOOD_LINE = re.compile(r"line (\d{6}) x+$")


class BenchError(Exception):
    """Something went wrong; the message says what (with request/response)."""


# ---------------------------------------------------------------- helpers


def ms(seconds):
    return seconds * 1000.0


def stats_ms(samples):
    """(min, median, max) in ms of samples in seconds."""
    return (ms(min(samples)), ms(statistics.median(samples)), ms(max(samples)))


def fmt_stats(samples):
    lo, med, hi = stats_ms(samples)
    return f"{lo:7.0f} / {med:7.0f} / {hi:7.0f} ms  (min / median / max, n={len(samples)})"


def row(label, value):
    print(f"  {label:<44} {value}")


def heading(text, load=True):
    print()
    print(text)
    print("-" * len(text))
    if load:
        row("load average (1 min) at the start", f"{os.getloadavg()[0]:.2f}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_ts(text):
    """RFC 3339 (any number of fraction digits, Z or offset) to datetime."""
    m = re.fullmatch(r"(.+T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
    if not m:
        raise BenchError(f"unreadable timestamp {text!r}")
    frac = (m.group(2) or ".").ljust(7, "0")[:7]
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(m.group(1) + frac + tz)


def proc_status(pid, field):
    """A field of /proc/PID/status in MiB (e.g. VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise BenchError(f"{field} not in /proc/{pid}/status")


def psql(url, sql):
    done = subprocess.run(
        ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        raise BenchError(f"psql {sql!r}: {done.stderr.strip()}")
    return done.stdout.strip()


def with_database(url, name):
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def payload(files, run_id=1, environment_id=1):
    """The stdin tar the app sends: .te/meta.json first, then the files."""
    meta = {
        "run_id": run_id,
        "environment_id": environment_id,
        "token": secrets.token_hex(16),
        "files": list(files),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        members = [(".te/meta.json", json.dumps(meta).encode())]
        members += [(name, TEST_FILES[name].encode()) for name in files]
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.uid = info.gid = 1000
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# ---------------------------------------------------------------- HTTP


class Client:
    """A keep-alive HTTP/1.1 client for one server."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def request(self, method, path, body=None):
        """Returns (status, body bytes); GETs are retried once on a dropped connection."""
        attempts = 2 if method == "GET" else 1
        for attempt in range(attempts):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                headers = {}
                data = None
                if body is not None:
                    data = json.dumps(body).encode()
                    headers["Content-Type"] = "application/json"
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt + 1 == attempts:
                    raise
        raise AssertionError("unreachable")

    def json(self, method, path, body=None, expect=(200,)):
        status, data = self.request(method, path, body)
        if status not in expect:
            sent = f" {json.dumps(body)}" if body is not None else ""
            raise BenchError(
                f"{method} {path}{sent}\n    -> HTTP {status}: {data.decode(errors='replace')[:2000]}"
            )
        return json.loads(data)

    def close(self):
        if self.conn is not None:
            self.conn.close()


# ---------------------------------------------------------------- server


class Server:
    """target/release/test-executor on a free port, killed on exit."""

    def __init__(self, bench, label, extra_env=None):
        self.bench = bench
        self.label = label
        self.extra_env = extra_env or {}
        self.proc = None
        self.client = None
        self.log_path = bench.workdir / f"server-{label}.log"

    def __enter__(self):
        port = free_port()
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.bench.db_url,
            BIND=f"127.0.0.1:{port}",
            TESTS_DIR=str(self.bench.tests_dir),
            RUST_LOG="warn",
            MAX_PARALLEL_RUNS="2",
        )
        env.update(self.extra_env)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(BINARY)], env=env, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.client = Client(port)
        try:
            self._wait_healthy()
            if self.bench.instance is None:
                try:
                    self.bench.instance = psql(self.bench.db_url, "select id from installation")
                except BenchError:
                    pass
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_healthy(self, timeout=60):
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"server ({self.label}) exited with {self.proc.returncode} before /healthz answered 200\n"
                    + self.log_tail()
                )
            try:
                status, data = self.client.request("GET", "/healthz")
                if status == 200:
                    return
                last = f"HTTP {status}: {data.decode(errors='replace')}"
            except OSError as e:
                last = str(e)
                self.client.close()
                self.client.conn = None
            time.sleep(0.05)
        raise BenchError(f"server ({self.label}): /healthz not 200 after {timeout} s ({last})\n" + self.log_tail())

    def log_tail(self, lines=20):
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "    server log (last lines):\n" + "\n".join("      " + l for l in text[-lines:])

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.bench.note(f"server ({self.label}) ignored SIGTERM for 10 s; killed")
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self._note_log()
        return False

    def _note_log(self):
        """Warnings and errors the server logged are worth a look."""
        text = self.log_path.read_text(errors="replace").splitlines()
        noisy = [l for l in text if re.search(r"\b(WARN|ERROR)\b", l)]
        if noisy:
            self.bench.note(
                f"server ({self.label}) logged {len(noisy)} WARN/ERROR line(s), e.g.:\n"
                + "\n".join("      " + re.sub(r"\x1b\[[0-9;]*m", "", l)[:300] for l in noisy[:3])
            )

    @property
    def pid(self):
        return self.proc.pid


# ---------------------------------------------------------------- bench


class Bench:
    def __init__(self, args):
        self.args = args
        self.figures = []  # (phase, figure, value)
        self.notes = []
        self.failed = []
        self.docker_samples = None
        self.env_counter = 0
        self.instance = None
        self.admin_url = os.environ.get("DATABASE_URL")
        if not self.admin_url:
            raise BenchError("DATABASE_URL is not set (run through scripts/bench)")
        if not BINARY.exists():
            raise BenchError(f"{BINARY} is missing: cargo build --release")
        self.db_name = f"te_bench_{secrets.token_hex(4)}"
        self.db_url = with_database(self.admin_url, self.db_name)

    def note(self, text):
        self.notes.append(text)

    def figure(self, phase, name, value):
        self.figures.append((phase, name, value))

    def next_environment(self):
        self.env_counter = self.env_counter % 100 + 1
        return self.env_counter

    # -- running things

    def docker_run_once(self, data):
        """Seconds for one `docker run` fed `data`; stdout goes to /dev/null."""
        start = time.perf_counter()
        done = subprocess.run(DOCKER_RUN, input=data, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise BenchError(
                f"docker run exited with {done.returncode}\n    stderr: "
                + done.stderr.decode(errors="replace")[-2000:]
            )
        return elapsed

    def app_run(self, server, file, poll, timeout=120):
        """POSTs a run of `file` and polls it until final; (seconds, run JSON)."""
        body = {"username": "bench", "environment_id": self.next_environment(), "files": [file]}
        client = server.client
        start = time.perf_counter()
        run = client.json("POST", "/api/v1/runs", body, expect=(200, 201))
        path = f"/api/v1/runs/{run['id']}"
        while run["status"] not in FINAL:
            if time.perf_counter() - start > timeout:
                raise BenchError(f"run #{run['id']} not final after {timeout} s: {json.dumps(run)}")
            time.sleep(poll)
            run = client.json("GET", path)
        elapsed = time.perf_counter() - start
        return elapsed, run

    def check_success(self, server, run, what):
        if run["status"] == "success":
            return
        after = max(int(run.get("log_lines") or 0) - 30, 0)
        lines = server.client.json("GET", f"/api/v1/runs/{run['id']}/logs?after={after}&limit=5000")
        tail = "\n".join("      " + l["line"] for l in lines[-30:])
        raise BenchError(
            f"{what}: run #{run['id']} ended {run['status']} (reason {run.get('reason')!r}, "
            f"exit code {run.get('exit_code')})\n    GET /api/v1/runs/{run['id']} -> {json.dumps(run)}\n"
            f"    last log lines:\n{tail}"
        )

    def trivial_app_runs(self, server, label):
        """1 warm-up + N trivial runs through the app; returns the N (seconds, run JSON)."""
        elapsed, run = self.app_run(server, "test_trivial.py", POLL_FAST)
        self.check_success(server, run, f"{label} warm-up")
        results = []
        for _ in range(self.args.runs):
            time.sleep(self.args.pause)
            elapsed, run = self.app_run(server, "test_trivial.py", POLL_FAST)
            self.check_success(server, run, label)
            if run["summary"]["passed"] != 3:
                self.note(f"{label}: run #{run['id']} reports {run['summary']} (3 passed expected)")
            results.append((elapsed, run))
        return results

    @staticmethod
    def sandbox_mix(results):
        """"12 warm (median 280 ms), 3 plain (median 700 ms)" from the runs' `sandbox`, if the app reports it."""
        kinds = {}
        for elapsed, run in results:
            kinds.setdefault(run.get("sandbox") or "not reported", []).append(elapsed)
        return ", ".join(f"{len(v)} {k} (median {ms(statistics.median(v)):.0f} ms)" for k, v in sorted(kinds.items()))

    @staticmethod
    def timings(results):
        """Medians of the app's own per-phase timings (`timings_ms`), if it reports them."""
        keys = ["queued", "container_ready", "pytest", "stored"]  # the order they happen in
        for _, run in results:
            for k in run.get("timings_ms") or {}:
                if k not in keys:
                    keys.append(k)
        parts = []
        for k in keys:
            values = [run["timings_ms"][k] for _, run in results
                      if isinstance((run.get("timings_ms") or {}).get(k), (int, float))]
            if values:
                parts.append(f"{k} {statistics.median(values):.0f}")
        return ", ".join(parts) + " ms" if parts else "not reported"

    # -- phases

    def phase1_docker(self):
        """Trivial run, bare docker: the floor."""
        heading(f"Phase 1 - trivial run, bare `docker run -i --rm` ({IMAGE})")
        data = payload(["test_trivial.py"])
        row("payload", f"{len(data)} bytes of tar on stdin")
        self.docker_run_once(data)  # warm-up
        samples = []
        for _ in range(self.args.runs):
            time.sleep(self.args.pause)
            samples.append(self.docker_run_once(data))
        self.docker_samples = samples
        row("docker run, trivial", fmt_stats(samples))
        self.figure("1 bare docker", "trivial run, min / median / max", "%.0f / %.0f / %.0f ms" % stats_ms(samples))

    def phase2_app(self):
        """Trivial run through the app, against phase 1."""
        heading("Phase 2 - trivial run through the app (POST, poll every 5 ms until final)")
        with Server(self, "phase2") as server:
            results = self.trivial_app_runs(server, "phase 2")
        samples = [elapsed for elapsed, _ in results]
        docker_med = statistics.median(self.docker_samples)
        app_med = statistics.median(samples)
        ratio = app_med / docker_med
        row("app, trivial", fmt_stats(samples))
        row("  sandboxes (WARM_POOL unset)", self.sandbox_mix(results))
        row("  app's timings_ms, medians", self.timings(results))
        row("docker run, trivial (phase 1)", fmt_stats(self.docker_samples))
        row("ratio app / docker (medians)", f"{ratio:.2f}x   (goal <= 1.15x)")
        self.figure("2 app", "trivial run, min / median / max", "%.0f / %.0f / %.0f ms" % stats_ms(samples))
        self.figure("2 app", "ratio app / docker run (medians)", f"{ratio:.2f}x (goal <= 1.15x)")
        self.figure("2 app", "sandboxes (WARM_POOL unset)", self.sandbox_mix(results))

    def phase3_logs(self):
        """200,000 lines of output through the app."""
        heading(f"Phase 3 - log ingestion ({LOG_LINES:,} lines of {LOG_LINE_BYTES} B, every 10th on stderr)")
        with Server(self, "phase3") as server:
            time.sleep(1.0)
            idle_rss = proc_status(server.pid, "VmRSS")
            elapsed, run = self.app_run(server, "test_log_flood.py", POLL_SLOW, timeout=900)
            peak_rss = proc_status(server.pid, "VmHWM")
            after_rss = proc_status(server.pid, "VmRSS")
            self.check_success(server, run, "phase 3")
            total, ours, ours_err, missing = self.count_logs(server, run["id"])
        bare = self.docker_run_once(payload(["test_log_flood.py"]))
        run_secs = self.run_seconds(run)
        row("run", f"#{run['id']} {run['status']}, log_lines in run JSON: {run['log_lines']:,}")
        row("lines stored (all, via the API)", f"{total:,}")
        row("  of them the test's lines", f"{ours:,} of {LOG_LINES:,} ({ours_err:,} on stderr, {LOG_LINES // 10:,} expected)")
        row("wall time POST -> final", f"{elapsed:.2f} s")
        row("started_at -> finished_at", f"{run_secs:.2f} s" if run_secs else "n/a")
        row("lines/s (test's lines / wall time)", f"{ours / elapsed:,.0f}")
        row("MB/s (test's bytes / wall time)", f"{ours * LOG_LINE_BYTES / elapsed / 1e6:.1f}")
        row("reference: bare docker run, to /dev/null", f"{bare:.2f} s = {LOG_LINES / bare:,.0f} lines/s (app takes {elapsed / bare:.2f}x)")
        row("server RSS at idle (VmRSS)", f"{idle_rss:.1f} MiB")
        row("server peak RSS (VmHWM)", f"{peak_rss:.1f} MiB")
        row("server RSS after the run (VmRSS)", f"{after_rss:.1f} MiB")
        if ours != LOG_LINES or ours_err != LOG_LINES // 10:
            self.note(f"phase 3: stored {ours:,} of the test's {LOG_LINES:,} lines ({ours_err:,} stderr); "
                      f"missing line numbers (first 20): {missing[:20]}")
        if run["log_lines"] != total:
            self.note(f"phase 3: run JSON says log_lines={run['log_lines']:,}, the API listed {total:,}")
        self.figure("3 logs", "lines stored (test's / all)", f"{ours:,} / {total:,}")
        self.figure("3 logs", "wall time POST -> final", f"{elapsed:.2f} s")
        self.figure("3 logs", "ingestion rate", f"{ours / elapsed:,.0f} lines/s")
        self.figure("3 logs", "same file, bare docker run to /dev/null", f"{bare:.2f} s = {LOG_LINES / bare:,.0f} lines/s")
        self.figure("3 logs", "server RSS idle / peak (VmHWM)", f"{idle_rss:.1f} / {peak_rss:.1f} MiB")

    def count_logs(self, server, run_id):
        """Pages through /logs; returns (all lines, the test's distinct lines, of them on stderr, missing numbers)."""
        total = 0
        seen = {}  # the test's line number -> stream
        query = "limit=5000"  # no `after` at first: from the very first line
        while True:
            page = server.client.json("GET", f"/api/v1/runs/{run_id}/logs?{query}")
            if not page:
                break
            for line in page:
                total += 1
                # search, not match: pytest -v writes the node id and the
                # test's first line on one line
                m = FLOOD_LINE.search(line["line"])
                if m:
                    seen[int(m.group(1))] = line["stream"]
            query = f"after={page[-1]['seq']}&limit=5000"
        ours_err = sum(stream == "stderr" for stream in seen.values())
        missing = sorted(set(range(LOG_LINES)) - set(seen))
        return total, len(seen), ours_err, missing

    def run_seconds(self, run):
        if not run.get("started_at") or not run.get("finished_at"):
            return None
        return (parse_ts(run["finished_at"]) - parse_ts(run["started_at"])).total_seconds()

    def phase4_many(self):
        """5,000 tests in one run."""
        heading(f"Phase 4 - {MANY_TESTS:,} tests in one run")
        with Server(self, "phase4") as server:
            elapsed, run = self.app_run(server, "test_many.py", POLL_SLOW, timeout=900)
            self.check_success(server, run, "phase 4")
            run = server.client.json("GET", f"/api/v1/runs/{run['id']}")
            run_id = run["id"]
            listed = self.count_tests(server, run_id)
            page = self.time_page(server, run_id)
        bare = self.docker_run_once(payload(["test_many.py"]))
        run_secs = self.run_seconds(run)
        passed = run["summary"]["passed"]
        row("run", f"#{run_id} {run['status']}, summary {json.dumps(run['summary'])}")
        row("summary.passed", f"{passed:,}" + ("" if passed == MANY_TESTS else f"   (!= {MANY_TESTS:,})"))
        row("wall time POST -> final", f"{elapsed:.2f} s")
        row("started_at -> finished_at", f"{run_secs:.2f} s" if run_secs else "n/a")
        rate = f"{MANY_TESTS / run_secs:,.0f} results/s" if run_secs else "n/a"
        row("result ingestion rate", rate)
        row("reference: bare docker run", f"{bare:.2f} s = {MANY_TESTS / bare:,.0f} tests/s (app takes {elapsed / bare:.2f}x)")
        row("GET /api/v1/runs/{id}/tests", listed)
        row("GET /runs/{id} (run page)", page)
        if passed != MANY_TESTS:
            self.note(f"phase 4: summary.passed is {passed}, not {MANY_TESTS}")
        self.figure("4 5,000 tests", "wall time POST -> final", f"{elapsed:.2f} s")
        self.figure("4 5,000 tests", "result ingestion rate", rate)
        self.figure("4 5,000 tests", "same file, bare docker run", f"{bare:.2f} s = {MANY_TESTS / bare:,.0f} tests/s")
        self.figure("4 5,000 tests", "summary.passed", f"{passed:,}")
        self.figure("4 5,000 tests", "GET /api/v1/runs/{id}/tests", listed)
        self.figure("4 5,000 tests", "run page GET /runs/{id}", page)

    def count_tests(self, server, run_id):
        """Pages through /api/v1/runs/{id}/tests (offset, limit); counts results and passes."""
        base = f"/api/v1/runs/{run_id}/tests"
        status, data = server.client.request("GET", base + "?limit=1")
        if status == 404:
            self.note(f"phase 4: GET {base} answered 404 (endpoint not there yet?); skipped")
            return "skipped (404)"
        if status != 200:
            raise BenchError(f"GET {base}?limit=1\n    -> HTTP {status}: {data.decode(errors='replace')[:2000]}")
        listed = passed = pages = 0
        nodeids = set()
        start = time.perf_counter()
        while True:
            page = server.client.json("GET", f"{base}?offset={listed}&limit=1000")
            if not isinstance(page, list):
                return f"answered 200 but not a list: {json.dumps(page)[:200]}"
            if not page:
                break
            pages += 1
            listed += len(page)
            passed += sum(t.get("outcome") == "passed" for t in page)
            nodeids.update(t.get("nodeid") for t in page)
        took = time.perf_counter() - start
        text = f"{listed:,} listed ({passed:,} passed, {len(nodeids):,} distinct) in {pages} pages, {ms(took):.0f} ms"
        if listed != MANY_TESTS or passed != MANY_TESTS or len(nodeids) != MANY_TESTS:
            self.note(f"phase 4: GET {base} listed {listed} results, {passed} passed, "
                      f"{len(nodeids)} distinct node ids ({MANY_TESTS} expected)")
        return text

    def time_page(self, server, run_id):
        path = f"/runs/{run_id}"
        status, data = server.client.request("GET", path)
        if status == 404:
            self.note(f"phase 4: GET {path} answered 404 (run page not built yet?); skipped")
            return "skipped (404)"
        if status != 200:
            raise BenchError(f"GET {path}\n    -> HTTP {status}: {data.decode(errors='replace')[:2000]}")
        samples = []
        for _ in range(PAGE_REQUESTS):
            start = time.perf_counter()
            status, data = server.client.request("GET", path)
            samples.append(time.perf_counter() - start)
            if status != 200:
                raise BenchError(f"GET {path} -> HTTP {status} on a repeat")
        return f"median {ms(statistics.median(samples)):.1f} ms over {PAGE_REQUESTS} ({len(data) / 1024:,.0f} KiB)"

    def phase5_pool(self):
        """Phase 2 with WARM_POOL=2 and WARM_POOL=0."""
        heading("Phase 5 - warm pool (phase 2 with WARM_POOL=2, then WARM_POOL=0)")
        results = {}
        for pool in (2, 0):
            with Server(self, f"phase5-pool{pool}", {"WARM_POOL": str(pool)}) as server:
                time.sleep(3.0)  # let a pool fill before the warm-up
                results[pool] = self.trivial_app_runs(server, f"phase 5 WARM_POOL={pool}")
        docker = self.docker_samples
        pooled = [elapsed for elapsed, _ in results[2]]
        plain = [elapsed for elapsed, _ in results[0]]
        docker_med, with_pool, without = (statistics.median(x) for x in (docker, pooled, plain))
        print(f"  {'':<22} {'docker run':>12} {'app, pool 2':>12} {'app, pool 0':>12}")
        for name, pick in (("median", statistics.median), ("min", min), ("max", max)):
            print(f"  {name:<22} " + " ".join(f"{ms(pick(x)):>9.0f} ms" for x in (docker, pooled, plain)))
        print(f"  {'ratio to docker run':<22} {1:>11.2f}x {with_pool / docker_med:>11.2f}x {without / docker_med:>11.2f}x")
        verdict = "(goal with the pool <= 0.30x)"
        if abs(with_pool - without) <= 0.10 * without:
            verdict += "  (pool not implemented?)"
        print(f"  {verdict}")
        row("sandboxes, WARM_POOL=2", self.sandbox_mix(results[2]))
        row("sandboxes, WARM_POOL=0", self.sandbox_mix(results[0]))
        row("app's timings_ms medians, WARM_POOL=2", self.timings(results[2]))
        row("app's timings_ms medians, WARM_POOL=0", self.timings(results[0]))
        row("each run, WARM_POOL=2 (ms)", " ".join(f"{ms(x):.0f}" for x in pooled))
        self.figure("5 warm pool", "app median, WARM_POOL=2", f"{ms(with_pool):.0f} ms = {with_pool / docker_med:.2f}x docker (goal <= 0.3x)")
        self.figure("5 warm pool", "app median, WARM_POOL=0", f"{ms(without):.0f} ms = {without / docker_med:.2f}x docker")
        self.figure("5 warm pool", "sandboxes, WARM_POOL=2", self.sandbox_mix(results[2]))
        if "not implemented" in verdict:
            self.note("phase 5: WARM_POOL=2 and WARM_POOL=0 within 10% of each other (pool not implemented?)")

    # -- driver

    PHASES = {1: "phase1_docker", 2: "phase2_app", 3: "phase3_logs", 4: "phase4_many", 5: "phase5_pool"}

    def run(self, phases):
        print(f"test-executor bench: {time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPUs, "
              f"runs={self.args.runs}, pause={self.args.pause:g} s, phases {','.join(map(str, phases))}")
        binary = BINARY.relative_to(REPO) if BINARY.is_relative_to(REPO) else BINARY
        print(f"  binary {binary}, image {IMAGE}, database {self.db_name}")
        self.figure("-", "conditions", f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start, "
                    f"runs={self.args.runs}, pause {self.args.pause:g} s")
        psql(self.admin_url, f"create database {self.db_name}")
        try:
            with tempfile.TemporaryDirectory(prefix="te-bench-") as tmp:
                self.workdir = Path(tmp)
                self.tests_dir = self.workdir / "tests"
                self.tests_dir.mkdir()
                for name, text in TEST_FILES.items():
                    (self.tests_dir / name).write_text(text)
                for n in phases:
                    try:
                        getattr(self, self.PHASES[n])()
                    except (BenchError, OSError, http.client.HTTPException, KeyError, ValueError) as e:
                        self.failed.append(n)
                        print(f"\n  PHASE {n} FAILED: {type(e).__name__}: {e}")
                        self.figure(f"{n}", "phase failed", f"{type(e).__name__}: {str(e).splitlines()[0][:120]}")
                        if n == 1:
                            print("  (phases 2 and 5 need the docker figures: stopping)")
                            break
        finally:
            self.cleanup()
        self.report()
        return 1 if self.failed else 0

    def cleanup(self):
        if self.instance:
            ids = subprocess.run(
                ["docker", "ps", "-aq", "--filter", f"label=te.instance={self.instance}"],
                capture_output=True, text=True,
            ).stdout.split()
            if ids:
                self.note(f"{len(ids)} container(s) of the bench's instance were left behind; removed")
                subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
        try:
            psql(self.admin_url, f"drop database if exists {self.db_name} with (force)")
        except BenchError as e:
            print(f"warning: could not drop {self.db_name}: {e}", file=sys.stderr)

    def report(self):
        if self.notes:
            heading("Notes", load=False)
            for text in self.notes:
                print(f"  - {text}")
        heading("Markdown", load=False)
        print()
        print("| phase | figure | value |")
        print("|---|---|---|")
        for phase, name, value in self.figures:
            print(f"| {phase} | {name} | {value} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs in phases 1, 2 and 5 (default 15)")
    parser.add_argument("--only", default="1,2,3,4,5", help="phases to run, e.g. 1,2 (default all)")
    parser.add_argument("--pause", type=float, default=0.5,
                        help="seconds of rest before each timed trivial run (default 0.5)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    try:
        phases = sorted({int(p) for p in args.only.split(",") if p.strip()})
    except ValueError:
        parser.error(f"--only takes phase numbers like 1,2 (got {args.only!r})")
    if not phases or not set(phases) <= set(Bench.PHASES):
        parser.error("--only takes phase numbers from 1 to 5")
    if {2, 5} & set(phases) and 1 not in phases:
        print("note: phases 2 and 5 compare with bare docker: running phase 1 too")
        phases = [1] + phases
    try:
        sys.exit(Bench(args).run(phases))
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
