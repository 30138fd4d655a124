"""One CPU-bound suite in 1 environment and over 2 (each 1 CPU): wall time side by side."""

import statistics
from datetime import datetime

from .common import TESTS, BenchError, app_run

CPU_BOUND = "test_cpu_bound.py"
# 24 tests of about 0.4 s of CPU each, four of them three times as long:
# durations the queue orders longest first once one run recorded them.
TESTS[CPU_BOUND] = '''\
import time

import pytest


def burn(seconds):
    end = time.process_time() + seconds
    n = 0
    while time.process_time() < end:
        n += 1
    return n


@pytest.mark.parametrize("n", range(4))
def test_long(n):
    assert burn(1.2) > 0


@pytest.mark.parametrize("n", range(20))
def test_short(n):
    assert burn(0.4) > 0
'''
REPEATS = 3


def run(ctx):
    with ctx.server("shards", WARM_POOL="2") as srv:
        one = {"username": "bench", "environment_id": 41, "files": [CPU_BOUND]}
        two = {**one, "environment_id": 42, "shards": [42, 43]}
        app_run(srv, CPU_BOUND, body=one)  # records the durations; warms the sandboxes
        singles, sharded, apart = [], [], []
        for _ in range(REPEATS):
            singles.append(app_run(srv, CPU_BOUND, body=one)[0])
            seconds, parent = app_run(srv, CPU_BOUND, body=two)
            sharded.append(seconds)
            shards = srv.client.json("GET", f"/api/v1/runs/{parent['id']}/shards")["shards"]
            if len(shards) != 2 or parent["summary"]["passed"] != 24:
                raise BenchError(f"run #{parent['id']}: {len(shards)} shards, {parent['summary']}")
            ends = [srv.client.json("GET", f"/api/v1/runs/{s['run_id']}")["finished_at"] for s in shards]
            apart.append(abs(_seconds(ends[0]) - _seconds(ends[1])))
    one_s, two_s = statistics.median(singles), statistics.median(sharded)
    ctx.figure(f"1 environment (1 CPU), {REPEATS} runs: median", f"{one_s:.2f} s ({', '.join(f'{s:.2f}' for s in singles)})")
    ctx.figure(f"2 shards (1 CPU each), {REPEATS} runs: median", f"{two_s:.2f} s ({', '.join(f'{s:.2f}' for s in sharded)})")
    ctx.figure("shards' ends apart (median; longest test 1.2 s of CPU)", f"{statistics.median(apart):.2f} s")
    ctx.figure("2 shards / 1 environment", f"{two_s / one_s:.2f}x (goal <= 0.6x)")
    ctx.note("shards: each run is timed from its POST to its final status (?wait=), the sharded one to its parent's verdict; "
             "runs alternate (single, sharded) after one untimed run that records the durations.")


def _seconds(stamp):
    """RFC 3339 from the API -> seconds since the epoch."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
