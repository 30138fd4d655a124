#!/usr/bin/env python3
"""Benchmark of test-executor: prints one table of figures, checks nothing.

Each phase (scripts/benchmarks/<name>.py) starts its own server(s) on the
bench's own fresh database, so figures do not mix. The wrapper
`scripts/bench` provisions and builds the release binary; this needs
DATABASE_URL (a role allowed to CREATE DATABASE), psql, docker, wrk and rsync.
The database te_bench_<random>, the tests folder and the bench's
containers are removed at the end.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmarks import (biglogs, burst, listing, logs, many, pair, projects, resources, services, shards, trees,  # noqa: E402
                        trivial, weight, workers)
from benchmarks.common import BENCH_LABEL, BINARY, IMAGE, TESTS, BenchError, Ctx, load, psql  # noqa: E402

PHASES = {m.__name__.split(".")[-1]: m for m in (trivial, burst, pair, weight, logs, many, listing, biglogs, projects, services, shards, resources, workers, trees)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per paused trivial series (default 15)")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds before each paused run (default 0.5)")
    parser.add_argument("--only", default=",".join(PHASES), help=f"phases, comma-separated (default all: {','.join(PHASES)})")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in PHASES]
    if args.runs < 1 or not names or unknown:
        parser.error(f"--runs >= 1; --only takes names from {','.join(PHASES)} (unknown: {','.join(unknown)})")
    admin_url = os.environ.get("DATABASE_URL")
    if not admin_url or not BINARY.exists():
        parser.error("needs DATABASE_URL and target/release/test-executor: run it through scripts/bench")

    with tempfile.TemporaryDirectory(prefix="te-bench-") as tmp:
        ctx = Ctx(args, admin_url, Path(tmp))
        ctx.tests_dir.mkdir()
        for name, text in TESTS.items():
            (ctx.tests_dir / name).write_text(text)
        psql(admin_url, f"create database {ctx.db_name}")
        failed = []
        print(f"test-executor bench, {time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} CPUs, image {IMAGE}, "
              f"runs={args.runs}, pause {args.pause:g} s\n")
        print("| phase | figure | value |\n|---|---|---|")
        try:
            for name in names:
                ctx.phase = name
                ctx.figure("conditions at the start", load())
                try:
                    PHASES[name].run(ctx)
                except Exception as e:  # noqa: BLE001 - reported, next phase
                    failed.append(name)
                    ctx.figure("FAILED", f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
                    ctx.note(f"{name} failed:\n{traceback.format_exc()}")
            ctx.phase = "-"
            ctx.figure("conditions at the end", load())
        finally:
            cleanup(ctx)
        for text in ctx.notes:
            print(f"\n- {text}")
    return 1 if failed else 0


def cleanup(ctx):
    """The bench's own containers only: its instance's and its bare runs."""
    filters = [f"label={BENCH_LABEL}"] + ([f"label=te.instance={ctx.instance}"] if ctx.instance else [])
    for f in filters:
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f], capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
    # The dependency images its projects built carry its database's name.
    images = subprocess.run(["docker", "images", "-q", "--filter", f"label=te.dependency-db={ctx.db_name}"],
                            capture_output=True, text=True).stdout.split()
    if images:
        subprocess.run(["docker", "rmi", "-f", *sorted(set(images))], capture_output=True)
    try:
        psql(ctx.admin_url, f"drop database if exists {ctx.db_name} with (force)")
    except BenchError as e:
        print(f"warning: could not drop {ctx.db_name}: {e}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
