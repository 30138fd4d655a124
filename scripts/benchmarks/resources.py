"""Resource sampling: the trivial run with sampling on and off, and the server's RSS with two sampled runs at once."""

import statistics
import threading
import time

from .common import TRIVIAL, BenchError, Client, app_run, rss_mib, series, spread, timings

SLEEPER = "test_resources_sleeper.py"
SLEEPER_TEXT = '''\
import time


def test_holds_memory_for_8_seconds():
    block = b"x" * (32 * 1024 * 1024)
    time.sleep(8)
    assert len(block) > 0
'''


def trivial_series(ctx, sampling):
    with ctx.server(f"resources-sampling-{sampling}", WARM_POOL="2", SAMPLE_RESOURCES=sampling) as srv:
        return series(lambda: app_run(srv, TRIVIAL), ctx.args.runs, ctx.args.pause)


def two_sampled(ctx, sampling):
    """Two 8 s runs at once: the server's highest RSS meanwhile (polled
    every 0.1 s), its RSS before, and the two runs' sample counts."""
    with ctx.server(f"resources-pair-{sampling}", WARM_POOL="2", SAMPLE_RESOURCES=sampling) as srv:
        app_run(srv, TRIVIAL)  # warm-up
        before = rss_mib(srv.pid)
        results, peak, done = [], [before], threading.Event()

        def watch():
            while not done.is_set():
                peak.append(rss_mib(srv.pid))
                time.sleep(0.1)

        watcher = threading.Thread(target=watch)
        watcher.start()
        runs = [threading.Thread(target=lambda: results.append(app_run(srv, SLEEPER, client=Client(srv.port))))
                for _ in range(2)]
        for t in runs:
            t.start()
        for t in runs:
            t.join()
        done.set()
        watcher.join()
        if len(results) != 2:
            raise BenchError(f"{2 - len(results)} of the two sampled runs failed (see the server's log)")
        counts = [len(srv.client.json("GET", f"/api/v1/runs/{r['id']}/resources")["samples"]) for _, r in results]
        return before, max(peak), counts, [r.get("resources") for _, r in results]


def run(ctx):
    (ctx.tests_dir / SLEEPER).write_text(SLEEPER_TEXT)
    # Interleaved halves (on, off, on, off), so a change in the machine's
    # load falls on both sides.
    on, off = [], []
    for _ in range(2):
        on += trivial_series(ctx, "true")
        off += trivial_series(ctx, "false")
    on_s, off_s = [s for s, _ in on], [s for s, _ in off]
    ctx.figure("warm trivial run, sampling on, min / median / max", spread(on_s))
    ctx.figure("warm trivial run, sampling off, min / median / max", spread(off_s))
    ctx.figure("sampling on / off (medians)",
               f"{statistics.median(on_s) / statistics.median(off_s):.2f}x (goal <= 1.05x)")
    ctx.figure("sampling on / off, app's timings (medians)",
               timings([r for _, r in on]) + " | " + timings([r for _, r in off]))
    for sampling in ("true", "false"):
        before, peak, counts, totals = two_sampled(ctx, sampling)
        label = "sampled" if sampling == "true" else "unsampled"
        ctx.figure(f"server RSS, two {label} 8 s runs at once: before / highest",
                   f"{before:.1f} / {peak:.1f} MiB")
        if sampling == "true":
            ctx.figure("samples stored per run; peaks", f"{counts}; " + ", ".join(
                f"{(t or {}).get('peak_memory_bytes', 0) / 1048576:.0f} MiB, {(t or {}).get('cpu_seconds') or 0:.2f} CPU-s"
                for t in totals))
