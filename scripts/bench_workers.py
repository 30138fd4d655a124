#!/usr/bin/env python3
"""Benchmark (figures, not a test): runs per minute with one worker and with
two, side by side. Both series use a fresh database, a `test-executor web`
process and `test-executor worker` processes (MAX_PARALLEL_RUNS=2 each, the
default warm pool); the second worker drives a second Docker engine that this
script starts (a dockerd with its own data-root, exec-root and socket in a
temp folder, `--bridge none --iptables=false --ip-masq=false`, the runner
image copied by `docker save | docker load`) and removes at the end.

Each series queues N runs (default 40) of a small passing test file over 20
environments at once and times the first POST to the last final status.
On a 2-core machine expect no gain: the point is that the second worker
costs nothing.

Run it as `bash scripts/bench-workers [--runs N]` (root: it starts dockerd).
Needs DATABASE_URL (a role allowed to CREATE DATABASE), `psql`, `docker`,
`dockerd`; uses target/release/test-executor if built, else target/debug.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGE = os.environ.get("RUNNER_IMAGE", "test-executor-runner:latest")
FINAL = {"success", "failed", "error", "cancelled", "timed_out"}
TEST_FILE = """
def test_addition():
    assert 1 + 1 == 2

def test_upper():
    assert "a".upper() == "A"
"""


def binary():
    for profile in ("release", "debug"):
        path = REPO / "target" / profile / "test-executor"
        if path.exists():
            return path
    sys.exit("build the binary first (cargo build --release)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(url, sql):
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                   check=True, capture_output=True)


def with_database(url, name):
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def http(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"content-type": "application/json"} if data else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


class Engine:
    """A second dockerd of our own, removed on exit."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="te-bench-engine-"))
        (self.dir / "config.json").write_text("{}")
        driver = subprocess.run(["docker", "info", "--format", "{{.Driver}}"],
                                capture_output=True, text=True, check=True).stdout.strip()
        self.host = f"unix://{self.dir / 'docker.sock'}"
        self.log = open(self.dir / "dockerd.log", "w")
        self.proc = subprocess.Popen(
            ["dockerd", "--config-file", str(self.dir / "config.json"), "--storage-driver", driver,
             "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "exec"),
             "-H", self.host, "--pidfile", str(self.dir / "dockerd.pid"),
             "--bridge", "none", "--iptables=false", "--ip-masq=false"],
            stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.time() + 30
        while subprocess.run(["docker", "-H", self.host, "info"], capture_output=True).returncode:
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"the second dockerd did not start: see {self.dir / 'dockerd.log'}")
            time.sleep(0.2)
        subprocess.run(f"docker save {IMAGE} | docker -H {self.host} load", shell=True,
                       check=True, capture_output=True)

    def close(self):
        ids = subprocess.run(["docker", "-H", self.host, "ps", "-aq"],
                             capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "-H", self.host, "rm", "-f", *ids], capture_output=True)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        subprocess.run(["rm", "-rf", str(self.dir)])


def start(role, env):
    port = free_port()
    proc = subprocess.Popen([str(binary()), role],
                            env={**env, "BIND": f"127.0.0.1:{port}"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            http("GET", f"{address}/healthz")
            return proc, address
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"{role} did not start")
            time.sleep(0.2)


def series(base_url, tests_dir, engine, workers, runs):
    name = f"te_bench_workers_{os.getpid()}_{workers}"
    psql(base_url, f"create database {name}")
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": with_database(base_url, name),
           "TESTS_DIR": str(tests_dir), "RUNNER_IMAGE": IMAGE, "MAX_PARALLEL_RUNS": "2",
           "RUST_LOG": "warn"}
    procs = []
    try:
        web, address = start("web", env)
        procs.append(web)
        procs.append(start("worker", {**env, "WORKER_NAME": "alpha"})[0])
        if workers == 2:
            procs.append(start("worker", {**env, "WORKER_NAME": "beta", "DOCKER_HOST": engine.host})[0])
        time.sleep(3)  # warm pools filled
        began = time.time()
        ids = [http("POST", f"{address}/api/v1/runs",
                    {"username": "bench", "environment_id": 1 + i % 20, "files": ["test_bench.py"],
                     "queue_if_busy": True})["id"] for i in range(runs)]
        pending = set(ids)
        by_worker, statuses = {}, {}
        while pending:
            time.sleep(0.1)
            for run_id in list(pending):
                run = http("GET", f"{address}/api/v1/runs/{run_id}")
                if run["status"] in FINAL:
                    pending.discard(run_id)
                    statuses[run["status"]] = statuses.get(run["status"], 0) + 1
                    by_worker[run.get("worker")] = by_worker.get(run.get("worker"), 0) + 1
        elapsed = time.time() - began
        return elapsed, statuses, by_worker
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        time.sleep(1)
        psql(base_url, f"drop database if exists {name} with (force)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    base_url = os.environ.get("DATABASE_URL")
    if not base_url:
        sys.exit("DATABASE_URL is required")
    print(f"bench-workers: {time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}, binary {binary().relative_to(REPO)}, {args.runs} runs")
    engine = Engine()
    try:
        with tempfile.TemporaryDirectory(prefix="te-bench-tests-") as tests_dir:
            (Path(tests_dir) / "test_bench.py").write_text(TEST_FILE)
            rows = []
            for workers in (1, 2):
                elapsed, statuses, by_worker = series(base_url, tests_dir, engine, workers, args.runs)
                rows.append((workers, elapsed, statuses, by_worker))
    finally:
        engine.close()
    print()
    print("| workers | engines | runs | wall time | runs per minute | outcomes | runs per worker |")
    print("|---|---|---|---|---|---|---|")
    for workers, elapsed, statuses, by_worker in rows:
        print(f"| {workers} | {workers} | {args.runs} | {elapsed:.1f} s | {args.runs / elapsed * 60:.0f} | "
              f"{', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))} | "
              f"{', '.join(f'{w} {n}' for w, n in sorted(by_worker.items(), key=str))} |")


if __name__ == "__main__":
    main()
