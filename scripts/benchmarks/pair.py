"""Trivial runs two at a time (MAX_PARALLEL_RUNS=2): latency and runs per minute, app against bare docker."""

import threading

from .common import TRIVIAL, Client, app_run, bare_run, spread, timings, two_at_once, wait_removed

RUNS = 20


def run(ctx):
    bare_wall, bare_cpu, bare = two_at_once(lambda: bare_run([TRIVIAL]), RUNS)
    with ctx.server("pair", WARM_POOL="2") as srv:
        local = threading.local()

        def one():
            local.client = getattr(local, "client", None) or Client(srv.port)
            return app_run(srv, TRIVIAL, client=local.client)

        app_run(srv, TRIVIAL)  # warm-up
        wait_removed(ctx.instance)
        app_wall, app_cpu, results = two_at_once(one, RUNS, then=lambda: wait_removed(ctx.instance))
    app = [s for s, _ in results]
    bare_rate, app_rate = RUNS / bare_wall * 60, RUNS / app_wall * 60
    ctx.figure(f"bare docker, {RUNS} runs, each: min / median / max", spread(bare))
    ctx.figure(f"warm app, {RUNS} runs, each: min / median / max", spread(app))
    ctx.figure("warm app's timings (medians)", timings([r for _, r in results]))
    ctx.figure("throughput, bare docker / app", f"{bare_rate:.0f} / {app_rate:.0f} runs per minute")
    ctx.figure("machine's busy CPU per run, bare docker / app",
               f"{bare_cpu / RUNS * 1000:,.0f} / {app_cpu / RUNS * 1000:,.0f} ms (of {2 * 1000 * bare_wall / RUNS:,.0f} / {2 * 1000 * app_wall / RUNS:,.0f} ms available)")
    ctx.figure("throughput app / bare", f"{app_rate / bare_rate:.2f}x (goal >= 1.5x)")
