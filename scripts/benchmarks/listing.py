"""The runs list at 1,000,000 runs (inserted with SQL) under `wrk -c8`, and the run JSON."""

import re
import shutil
import statistics
import subprocess
import time

from .common import BenchError, psql

ROWS = 1_000_000
USERS = 1_000
SECONDS = 10
# 1,000 users, 100 environments, mostly finished; ids spread evenly.
INSERT = f"""
insert into runs (username, environment_id, files, file_sha256, status, reason, exit_code,
                  millicpus, memory_mb, pids_limit, timeout_secs, created_at, started_at, finished_at,
                  log_lines, collected, passed, failed)
select 'user' || (n % {USERS}), 1 + (n * 7) % 100, array['test_trivial.py'], array[md5(n::text) || md5(n::text)],
       (array['success', 'success', 'success', 'failed', 'error', 'cancelled', 'timed_out'])[1 + n % 7],
       null, 0, 1000, 512, 256, 900,
       now() - make_interval(secs => {ROWS} - n), now() - make_interval(secs => {ROWS} - n),
       now() - make_interval(secs => {ROWS} - n) + interval '1 second',
       10, 3, 3, 0
  from generate_series(1, {ROWS}) as n;
analyze runs;
"""
TARGETS = [
    ("/", "/"),
    ("/?username=", "/?username=user417"),
    ("/?environment_id=&status=", "/?environment_id=42&status=failed"),
]


def run(ctx):
    if not shutil.which("wrk"):
        raise BenchError("wrk is not installed (scripts/bench installs Debian's)")
    # The server makes the schema; NO_EXECUTOR: the rows are history.
    with ctx.server("listing", NO_EXECUTOR="true") as srv:
        start = time.perf_counter()
        psql(ctx.db_url, INSERT)
        ctx.note(f"listing: {ROWS:,} runs inserted with SQL in {time.perf_counter() - start:.0f} s")
        for label, path in TARGETS:
            status, _ = srv.client.request("GET", path)
            if status != 200:
                raise BenchError(f"GET {path} -> HTTP {status}")
            rate, p99 = wrk(f"http://127.0.0.1:{srv.port}{path}")
            ctx.figure(f"GET {label} (wrk -t2 -c8, {SECONDS} s)", f"{rate:,.0f} req/s, p99 {p99:.1f} ms (goal >= 3,000, <= 10 ms)")
        run_id = psql(ctx.db_url, f"select id from runs order by id limit 1 offset {ROWS // 2}")
        samples = []
        for _ in range(200):
            t = time.perf_counter()
            srv.client.json("GET", f"/api/v1/runs/{run_id}")
            samples.append(time.perf_counter() - t)
        ctx.figure("GET /api/v1/runs/{id}, median of 200", f"{statistics.median(samples) * 1000:.2f} ms (goal < 2 ms)")


def wrk(url):
    """(requests/s, p99 ms) of `wrk --latency` on url."""
    done = subprocess.run(["wrk", "-t2", "-c8", f"-d{SECONDS}s", "--latency", url], capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"wrk {url}: {done.stderr.strip()}")
    out = done.stdout
    if re.search(r"Non-2xx or 3xx responses: \d+", out):
        raise BenchError(f"wrk {url}: some answers were not 2xx/3xx\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out).groups()
    return rate, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
