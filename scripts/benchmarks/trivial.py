"""Trivial run (3 passing tests), paused between runs: cold app against cold bare docker, then warm."""

from .common import TRIVIAL, app_run, bare_run, ratio, series, spread, timings


def bare_trivial(ctx):
    """The paused bare series, shared with other phases."""
    return ctx.once("bare-trivial", lambda: series(lambda: bare_run([TRIVIAL]), ctx.args.runs, ctx.args.pause))


def run(ctx):
    bare = bare_trivial(ctx)
    ctx.figure("bare docker run, min / median / max", spread(bare))
    for label, pool, goal in (("cold app (WARM_POOL=0)", "0", "goal <= 1.15x"), ("warm app (WARM_POOL=2)", "2", None)):
        with ctx.server(f"trivial-pool{pool}", WARM_POOL=pool) as srv:
            results = series(lambda: app_run(srv, TRIVIAL), ctx.args.runs, ctx.args.pause)
        app = [s for s, _ in results]
        ctx.figure(f"{label}, min / median / max", spread(app))
        ctx.figure(f"{label} / bare docker (medians)", ratio(app, bare) + (f" ({goal})" if goal else ""))
        ctx.figure(f"{label}, app's timings (medians)", timings([r for _, r in results]))
