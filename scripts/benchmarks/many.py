"""5,000 parametrised tests in one run: result ingestion, the results API and the run page."""

import statistics
import time

from .common import TESTS, BenchError, app_run, bare_run

CASES = 5_000
MANY = "test_many.py"
TESTS[MANY] = f'''\
import pytest


@pytest.mark.parametrize("i", range({CASES}))
def test_case(i):
    assert i >= 0
'''


def run(ctx):
    with ctx.server("many", WARM_POOL="0") as srv:  # cold, like the bare run
        elapsed, run_ = app_run(srv, MANY)
        listed, list_secs = list_results(srv, run_["id"])
        page = []
        for _ in range(20):
            start = time.perf_counter()
            status, body = srv.client.request("GET", f"/runs/{run_['id']}")
            page.append(time.perf_counter() - start)
            if status != 200:
                raise BenchError(f"GET /runs/{run_['id']} -> HTTP {status}")
    bare = bare_run([MANY])
    if run_["summary"]["passed"] != CASES or listed != CASES:
        raise BenchError(f"run #{run_['id']}: summary {run_['summary']}, {listed} results listed")
    ctx.figure("bare docker run / app POST -> final (WARM_POOL=0)", f"{bare:.2f} s / {elapsed:.2f} s = {elapsed / bare:.2f}x")
    ctx.figure("GET /api/v1/runs/{id}/tests, all pages", f"{CASES:,} results in {list_secs * 1000:,.0f} ms")
    ctx.figure("run page GET /runs/{id}, median of 20", f"{statistics.median(page) * 1000:.1f} ms ({len(body) // 1024:,} KiB)")


def list_results(srv, run_id):
    """(passed results listed, seconds) paging through the results API."""
    offset, passed, start = 0, 0, time.perf_counter()
    while True:
        page = srv.client.json("GET", f"/api/v1/runs/{run_id}/tests?offset={offset}&limit=1000")
        if not page:
            return passed, time.perf_counter() - start
        offset += len(page)
        passed += sum(t.get("outcome") == "passed" for t in page)
