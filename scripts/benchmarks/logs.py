"""200,000 lines of 84 bytes (every 10th on stderr): POST -> final against bare docker, memory, order, first line."""

import re
import time

from .common import TESTS, BenchError, app_run, bare_run, ratio, rss_mib, spread

LINES = 200_000
WIDTH = 84  # newline included
FLOOD = "test_log_flood.py"
FIRST = "test_first_line.py"
TESTS[FLOOD] = f'''\
import sys


def test_flood():
    pad = "x" * ({WIDTH - 1} - len("line 000000 "))
    out, err = sys.stdout, sys.stderr
    for i in range({LINES}):
        (err if i % 10 == 9 else out).write(f"line {{i:06d}} {{pad}}\\n")
    out.flush()
    err.flush()
'''
TESTS[FIRST] = '''\
import sys
import time


def test_first_line():
    print(f"printed at {time.time():.6f}", flush=True)
    time.sleep(3)
'''
LINE = re.compile(r"line (\d{6}) x+$")
PRINTED = re.compile(r"printed at (\d+\.\d+)")


def run(ctx):
    # Cold against cold: the bare run starts a fresh container too.
    with ctx.server("logs", WARM_POOL="0") as srv:
        time.sleep(1.0)
        idle = rss_mib(srv.pid)
        app, bare = [], []
        for _ in range(3):
            bare.append(bare_run([FLOOD]))
            elapsed, flood = app_run(srv, FLOOD)
            app.append(elapsed)
        peak = rss_mib(srv.pid, "VmHWM")
        stored, total = check_lines(srv, flood["id"])
        first = first_line_delay(srv)
    ctx.figure(f"{LINES:,} lines, bare docker run (output streamed to the host), 3 runs", spread(bare))
    ctx.figure(f"{LINES:,} lines, app POST -> final (WARM_POOL=0), 3 runs", spread(app))
    ctx.figure(f"{LINES:,} lines, app / bare (medians)", ratio(app, bare) + " (goal <= 1.1x)")
    ctx.figure("lines stored (the test's, each once, in order / all)", f"{stored:,} / {total:,}")
    ctx.figure("server RSS idle / peak (VmHWM) / growth", f"{idle:.1f} / {peak:.1f} / {peak - idle:.1f} MiB (goal growth <= 32 MiB)")
    ctx.figure("first line on GET /logs after its print", f"{first * 1000:,.0f} ms (goal <= 1 s)")


def check_lines(srv, run_id):
    """Pages through /logs: the test's lines must be there once each, in
    order (by seq) within each stream; (test's lines, all lines)."""
    total, last = 0, {}
    seen = set()
    after = None
    while True:
        query = "limit=5000" + (f"&after={after}" if after is not None else "")
        page = srv.client.json("GET", f"/api/v1/runs/{run_id}/logs?{query}")
        if not page:
            break
        for line in page:
            total += 1
            m = LINE.search(line["line"])
            if not m:
                continue
            n, stream = int(m.group(1)), line["stream"]
            want = "stderr" if n % 10 == 9 else "stdout"
            if n in seen or stream != want or n <= last.get(stream, -1):
                raise BenchError(f"run #{run_id}: line {n} on {stream} is repeated, misplaced or out of order")
            seen.add(n)
            last[stream] = n
        after = page[-1]["seq"]
    if len(seen) != LINES:
        raise BenchError(f"run #{run_id}: {LINES - len(seen):,} of the test's lines are missing")
    return len(seen), total


def first_line_delay(srv):
    """Seconds from the test's print (its own clock, the host's) to the line on GET /logs."""
    run = srv.client.json("POST", "/api/v1/runs", {"username": "bench", "environment_id": 100, "files": [FIRST]})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in srv.client.json("GET", f"/api/v1/runs/{run['id']}/logs?limit=100"):
            m = PRINTED.search(line["line"])
            if m:
                seen = time.time()
                while srv.client.json("GET", f"/api/v1/runs/{run['id']}")["status"] in ("queued", "running"):
                    time.sleep(0.1)
                return seen - float(m.group(1))
        time.sleep(0.01)
    raise BenchError(f"run #{run['id']}: its first line not on /logs after 60 s")
