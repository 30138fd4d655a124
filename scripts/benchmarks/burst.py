"""20 trivial runs back to back (no pause), warm app against bare docker."""

from .common import TRIVIAL, app_run, bare_run, ratio, series, spread, timings

RUNS = 20


def run(ctx):
    bare = series(lambda: bare_run([TRIVIAL]), RUNS, 0)
    with ctx.server("burst", WARM_POOL="2") as srv:
        results = series(lambda: app_run(srv, TRIVIAL), RUNS, 0)
    app = [s for s, _ in results]
    ctx.figure("bare docker run, min / median / max", spread(bare))
    ctx.figure("warm app, min / median / max", spread(app))
    ctx.figure("warm app / bare docker (medians)", ratio(app, bare) + " (goal <= 0.25x)")
    ctx.figure("warm app's timings (medians)", timings([r for _, r in results]))
