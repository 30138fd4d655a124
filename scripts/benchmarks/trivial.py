"""Trivial run (3 passing tests), paused between runs: cold app against cold bare docker, then warm;
and bare docker given the app's read-only /usr volume, to show what that alone is worth."""

import subprocess

from .common import IMAGE, TRIVIAL, app_run, bare_run, ratio, series, spread, timings


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
    # The app made the volume of the image (src/engine/usr_volume.rs).
    image_id = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", IMAGE],
                              capture_output=True, text=True).stdout.strip()
    volume = "te-usr-" + image_id.removeprefix("sha256:")[:20]
    with_volume = series(lambda: bare_run([TRIVIAL], ["-v", f"{volume}:/usr:ro"]), ctx.args.runs, ctx.args.pause)
    ctx.figure("bare docker run with the app's /usr volume, min / median / max", spread(with_volume))
    ctx.figure("bare docker run with the volume / without (medians)", ratio(with_volume, bare))
