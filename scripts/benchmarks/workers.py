"""Workers: runs per minute with one worker and with two (a second Docker engine on this machine), side by side.

Each series is a `test-executor web` process and `test-executor worker`
processes (MAX_PARALLEL_RUNS=2 each, the default warm pool) on the bench's
database. The second worker drives a dockerd this phase starts (its own
data-root, exec-root and socket, `--bridge none --iptables=false
--ip-masq=false`, the runner image copied by `docker save | docker load`)
and removes at the end. A series queues RUNS trivial runs over 20
environments at once and times the first POST to the last final status.
With two cores expect no gain: the point is that the second worker costs
nothing. Needs root (dockerd).
"""

import contextlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .common import FINAL, IMAGE, TRIVIAL, BenchError

RUNS = 40


@contextlib.contextmanager
def second_engine():
    """A dockerd of our own with the runner image: its DOCKER_HOST."""
    if shutil.which("dockerd") is None:
        raise BenchError("dockerd is not on PATH: the second engine cannot start")
    folder = Path(tempfile.mkdtemp(prefix="te-bench-engine-"))
    (folder / "config.json").write_text("{}")
    driver = subprocess.run(["docker", "info", "--format", "{{.Driver}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    host = f"unix://{folder / 'docker.sock'}"
    with open(folder / "dockerd.log", "w") as log:
        proc = subprocess.Popen(
            ["dockerd", "--config-file", str(folder / "config.json"), "--storage-driver", driver,
             "--data-root", str(folder / "data"), "--exec-root", str(folder / "exec"), "-H", host,
             "--pidfile", str(folder / "dockerd.pid"), "--bridge", "none", "--iptables=false", "--ip-masq=false"],
            stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(["docker", "-H", host, "info"], capture_output=True).returncode:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the second dockerd did not start: {(folder / 'dockerd.log').read_text()[-500:]}")
            time.sleep(0.2)
        subprocess.run(f"docker save {IMAGE} | docker -H {host} load", shell=True, check=True, capture_output=True)
        yield host
    finally:
        ids = subprocess.run(["docker", "-H", host, "ps", "-aq"], capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "-H", host, "rm", "-f", *ids], capture_output=True)
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def series(ctx, hosts):
    """RUNS runs queued at once, one worker per engine in `hosts`:
    (seconds, outcomes, runs per worker)."""
    with contextlib.ExitStack() as stack:
        web = stack.enter_context(ctx.server(f"workers-{len(hosts)}-web", role="web"))
        for i, host in enumerate(hosts):
            env = {"WORKER_NAME": f"bench-{len(hosts)}-{i}"} | ({"DOCKER_HOST": host} if host else {})
            stack.enter_context(ctx.server(f"workers-{len(hosts)}-worker{i}", role="worker", **env))
        time.sleep(3)  # the warm pools fill
        began = time.perf_counter()
        ids = [web.client.json("POST", "/api/v1/runs", {"username": "bench", "environment_id": 1 + i % 20,
                                                        "files": [TRIVIAL], "queue_if_busy": True})["id"]
               for i in range(RUNS)]
        pending, outcomes, by_worker = set(ids), {}, {}
        while pending:
            if time.perf_counter() - began > 600:
                raise BenchError(f"{len(pending)} of {RUNS} runs not final after 600 s")
            time.sleep(0.05)
            for run_id in list(pending):
                run = web.client.json("GET", f"/api/v1/runs/{run_id}")
                if run["status"] in FINAL:
                    pending.discard(run_id)
                    outcomes[run["status"]] = outcomes.get(run["status"], 0) + 1
                    by_worker[run.get("worker")] = by_worker.get(run.get("worker"), 0) + 1
        elapsed = time.perf_counter() - began
    return elapsed, outcomes, by_worker


def run(ctx):
    with second_engine() as host:
        for hosts in ([None], [None, host]):
            elapsed, outcomes, by_worker = series(ctx, hosts)
            ctx.figure(f"{len(hosts)} worker(s) on {len(hosts)} engine(s), {RUNS} runs queued at once",
                       f"{elapsed:.1f} s, {RUNS / elapsed * 60:.0f} runs per minute; "
                       + ", ".join(f"{n} {s}" for s, n in sorted(outcomes.items())) + "; per worker "
                       + ", ".join(f"{w} {n}" for w, n in sorted(by_worker.items(), key=str)))
