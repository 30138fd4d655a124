"""The warm pool's CPU weight: waiting sandboxes at cpu-shares 2 against 1024 (the default), back to back and two at once."""

from .common import TRIVIAL, Client, app_run, bare_run, ratio, series, spread, timings, two_at_once, wait_removed

RUNS = 20


def run(ctx):
    bare = series(lambda: bare_run([TRIVIAL]), RUNS, 0)
    ctx.figure("bare docker run, back to back, min / median / max", spread(bare))
    for shares in ("2", "1024"):
        with ctx.server(f"weight-{shares}", WARM_POOL="2", WARM_POOL_CPU_SHARES=shares) as srv:
            burst = series(lambda: app_run(srv, TRIVIAL), RUNS, 0)
            clients = {}

            def one():
                import threading
                me = threading.get_ident()
                clients[me] = clients.get(me) or Client(srv.port)
                return app_run(srv, TRIVIAL, client=clients[me])

            wall, _, pair = two_at_once(one, RUNS, then=lambda: wait_removed(ctx.instance))
        app = [s for s, _ in burst]
        ctx.figure(f"shares {shares}: back to back, min / median / max", spread(app))
        ctx.figure(f"shares {shares}: back to back / bare (medians)", ratio(app, bare) + " (goal <= 0.25x)")
        ctx.figure(f"shares {shares}: back to back, timings (medians)", timings([r for _, r in burst]))
        ctx.figure(f"shares {shares}: two at once, {RUNS} runs", f"{RUNS / wall * 60:.0f} runs per minute; "
                   + timings([r for _, r in pair]))
