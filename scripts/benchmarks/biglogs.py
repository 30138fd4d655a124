"""A run at the line cap (1,000,000 lines of 32 bytes, inserted with SQL): the run
page, one earlier page, searches (a miss scans every line), log.txt throughput."""

import http.client
import statistics
import time

from .common import BenchError, psql, rss_mib

LINES = 1_000_000
TIMES = 5
# A finished run, and its lines: 32 bytes with the newline, every 10th on
# stderr (1,000,000 of them fit the 32 MiB byte cap too).
INSERT = f"""
insert into runs (username, environment_id, files, file_sha256, status, reason, exit_code,
                  millicpus, memory_mb, pids_limit, timeout_secs, created_at, started_at, finished_at,
                  log_lines, collected, passed, failed)
values ('bench', 1, array['test_big.py'], array[md5('x') || md5('x')], 'success', null, 0,
        1000, 512, 256, 900, now(), now(), now(), {LINES}, 1, 1, 0);
insert into run_logs (run_id, seq, stream, ts, line)
select (select max(id) from runs), g, case when g % 10 = 9 then 2 else 1 end, now(),
       'line ' || lpad(g::text, 7, '0') || ' ' || repeat('x', 18)
  from generate_series(0, {LINES - 1}) as g;
analyze run_logs;
"""


def run(ctx):
    with ctx.server("biglogs", NO_EXECUTOR="true") as srv:
        start = time.perf_counter()
        psql(ctx.db_url, INSERT)
        run_id = psql(ctx.db_url, "select max(id) from runs")
        ctx.note(f"biglogs: {LINES:,} lines inserted with SQL in {time.perf_counter() - start:.0f} s")
        median, size = timed(srv, f"/runs/{run_id}")
        ctx.figure(f"run page at {LINES:,} lines (the last 2,000), median of {TIMES}", f"{median:.1f} ms, {size / 1024:,.0f} KiB")
        median, size = timed(srv, f"/runs/{run_id}/fragments/logs/earlier?before={LINES // 2}")
        ctx.figure("one earlier page (2,000 lines, HTML fragment)", f"{median:.1f} ms, {size / 1024:,.0f} KiB")
        median, _ = timed(srv, f"/api/v1/runs/{run_id}/logs?before={LINES // 2}&limit=2000")
        ctx.figure("one earlier page (2,000 lines, JSON)", f"{median:.1f} ms")
        median, size = timed(srv, f"/api/v1/runs/{run_id}/logs?q=LINE%200500000%20&limit=100")
        if size < 40:
            raise BenchError("the search for the middle line found nothing")
        ctx.figure("search, one line in the middle (scans all)", f"{median:.1f} ms (goal <= 300 ms)")
        median, _ = timed(srv, f"/api/v1/runs/{run_id}/logs?q=Traceback&limit=100")
        ctx.figure("search, no hit (scans all)", f"{median:.1f} ms (goal <= 300 ms)")
        median, _ = timed(srv, f"/api/v1/runs/{run_id}/logs?q=XXXX&limit=100")
        ctx.figure("search, 100 hits at the start", f"{median:.1f} ms")
        median, _ = timed(srv, f"/runs/{run_id}?q=line%200500000%20")
        ctx.figure("run page opened at a search's hit", f"{median:.1f} ms")
        idle = rss_mib(srv.pid)
        seconds, size, peak = download(srv, f"/runs/{run_id}/log.txt")
        if size != LINES * 32:
            raise BenchError(f"log.txt has {size:,} bytes, not {LINES * 32:,}")
        ctx.figure("log.txt, whole log", f"{size / 1e6:.0f} MB in {seconds:.2f} s = {size / 1e6 / seconds:.0f} MB/s")
        ctx.figure("server RSS before / peak during log.txt", f"{idle:.1f} / {peak:.1f} MiB")


def timed(srv, path):
    """(median ms, body bytes) of TIMES GETs of path."""
    samples, size = [], 0
    for _ in range(TIMES):
        t = time.perf_counter()
        status, body = srv.client.request("GET", path)
        samples.append(time.perf_counter() - t)
        if status != 200:
            raise BenchError(f"GET {path} -> HTTP {status}: {body[:300]!r}")
        size = len(body)
    return statistics.median(samples) * 1000, size


def download(srv, path):
    """(seconds, bytes, peak RSS MiB) of reading path to the end."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)
    t = time.perf_counter()
    conn.request("GET", path)
    resp = conn.getresponse()
    if resp.status != 200:
        raise BenchError(f"GET {path} -> HTTP {resp.status}")
    size, peak, chunks = 0, 0.0, 0
    while chunk := resp.read(1 << 16):
        size += len(chunk)
        chunks += 1
        if chunks % 16 == 0:
            peak = max(peak, rss_mib(srv.pid))
    seconds = time.perf_counter() - t
    conn.close()
    return seconds, size, max(peak, rss_mib(srv.pid))
