"""A project with a Postgres service (sample-tests/notes_app): its dependency build against `pip install` by hand, and its second run against the same tests by hand beside a Postgres of the same image, fresh or already up."""

import os
import shutil
import subprocess
import tempfile
import time

from .common import DOCKER_FLAGS, REPO, BenchError, psql, spread
from .projects import counts, project_run, remove_images

APP = "notes_app"
FILES = [f"{APP}/tests/test_notes.py"]
RUNS = 5
SERVICE_ENV = {"POSTGRES_USER": "notes", "POSTGRES_PASSWORD": "not-a-secret", "POSTGRES_DB": "notes"}
TEST_ENV = {"NOTES_DB_HOST": "127.0.0.1", "NOTES_DB_NAME": "notes", "NOTES_DB_USER": "notes",
            "NOTES_DB_PASSWORD": "not-a-secret"}
# The runner waits for a service's port the same way: connect until it answers.
WAIT_AND_TEST = ("python3 -c \"import socket,time\nwhile True:\n  try: socket.create_connection(('127.0.0.1',5432),1).close(); break\n"
                 "  except OSError: time.sleep(0.05)\" && cp -r /src /tmp/work && cd /tmp/work && "
                 "python3 -m pytest -p no:cacheprovider --color=no -q tests")


def postgres_image():
    offered = dict(p.split("=", 1) for p in os.environ.get("SERVICE_IMAGES", "").split(",") if "=" in p)
    if "postgres" not in offered:
        raise BenchError("SERVICE_IMAGES offers no postgres (scripts/bench runs ensure_service_images)")
    return offered["postgres"]


def docker(*args, check=True):
    done = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise BenchError(f"docker {' '.join(args[:3])}: {done.stderr.strip()[-500:]}")
    return done.stdout.strip()


def start_postgres(image):
    name = f"te-bench-pg-{time.monotonic_ns():x}"
    env = [a for k, v in SERVICE_ENV.items() for a in ("-e", f"{k}={v}")]
    docker("run", "-d", "--name", name, "--label", "te.bench=1", "--network", "none", *env, image)
    return name


def pytest_beside(image, postgres, folder):
    """pytest in a sandboxed container of the run's image, in the Postgres
    container's network namespace, once its port answers: pytest's closing line."""
    flags = [f for f in DOCKER_FLAGS if f not in ("-i", "--network", "none")]
    env = [a for k, v in TEST_ENV.items() for a in ("-e", f"{k}={v}")]
    name = f"te-bench-byhand-{time.monotonic_ns():x}"
    done = subprocess.run(["docker", "run", "--name", name, "--label", "te.bench=1", *flags, "--network",
                           f"container:{postgres}", *env, "-v", f"{folder}:/src:ro", image, "sh", "-c", WAIT_AND_TEST],
                          capture_output=True, text=True)
    docker("rm", "-f", name, check=False)
    last = (done.stdout.strip().splitlines() or [""])[-1].strip("= ")
    if " passed" not in last:
        raise BenchError(f"pytest beside Postgres: {done.stdout[-500:]}{done.stderr[-500:]}")
    return last.split(" in ")[0]


def by_hand_fresh(image, pg_image, folder):
    """A fresh Postgres and the tests, as the app does per run: seconds
    (the removals outside the clock)."""
    start = time.perf_counter()
    postgres = start_postgres(pg_image)
    try:
        line = pytest_beside(image, postgres, folder)
        return time.perf_counter() - start, line
    finally:
        docker("rm", "-f", postgres, check=False)


def pip_by_hand(folder, wheels=None):
    """`pip install -r requirements.txt` into a new venv on this host, no
    cache: what the build does the first time (download and install); with
    `wheels`, offline from that folder (what a rebuild does)."""
    offline = ["--no-index", "--find-links", wheels] if wheels else []
    with tempfile.TemporaryDirectory() as venv:
        subprocess.run(["python3", "-m", "venv", venv], check=True)
        start = time.perf_counter()
        done = subprocess.run([f"{venv}/bin/pip", "install", "-q", "--no-cache-dir", *offline, "-r",
                               str(folder / "requirements.txt")], capture_output=True, text=True)
        elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(f"pip install by hand: {done.stderr[-500:]}")
    return elapsed


def wheels_of(folder, into):
    """The requirements' wheels, downloaded into `into` (outside any clock)."""
    done = subprocess.run(["pip", "download", "-q", "--only-binary", ":all:", "-d", into, "-r",
                           str(folder / "requirements.txt")], capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"pip download: {done.stderr[-500:]}")


def build_figures(ctx, srv, folder):
    """The first build (an empty wheels volume: it downloads) and a rebuild
    (a changed requirements file, a new key: the kept wheels alone), each
    against pip by hand doing the same."""
    first, _ = project_run(srv, FILES)
    build = build_seconds(ctx)
    hand_pip = pip_by_hand(folder)
    ctx.figure(f"{APP}: dependency build, first (downloads; new wheels volume) / pip install by hand, no cache",
               f"{build:.2f} s / {hand_pip:.2f} s = {build / hand_pip:.2f}x (goal <= 1.3x); "
               f"the first run took {first:.2f} s")
    with open(folder / "requirements.txt", "a") as f:
        f.write("# a changed line: a new key, built from the kept wheels\n")
    again, _ = project_run(srv, FILES)
    rebuild = build_seconds(ctx)
    with tempfile.TemporaryDirectory() as wheels:
        wheels_of(folder, wheels)
        hand_offline = pip_by_hand(folder, wheels)
    ctx.figure(f"{APP}: dependency rebuild (kept wheels) / pip install by hand from local wheels",
               f"{rebuild:.2f} s / {hand_offline:.2f} s = {rebuild / hand_offline:.2f}x; "
               f"that run took {again:.2f} s")


def build_seconds(ctx):
    out = psql(ctx.db_url, f"select extract(epoch from finished_at - started_at) from dependency_images "
                           f"where project = '{APP}' and state = 'ready' order by finished_at desc limit 1")
    if not out:
        raise BenchError(f"no ready dependency image of {APP}")
    return float(out)


def run(ctx):
    pg_image = postgres_image()
    folder = ctx.tests_dir / APP
    # A wheels volume of the bench's own: the first build downloads, as on
    # a new machine, whatever earlier builds here kept.
    wheels_volume = f"te-bench-wheels-{time.monotonic_ns():x}"
    shutil.copytree(REPO / "sample-tests" / APP, folder)
    try:
        with ctx.server("services", WARM_POOL="2", DEPS_PIP_CACHE_VOLUME=wheels_volume) as srv:
            build_figures(ctx, srv, folder)
            second = [project_run(srv, FILES) for _ in range(RUNS)]
        image = second[-1][1]["image"]
        fresh = [by_hand_fresh(image, pg_image, folder) for _ in range(RUNS)]
        postgres = start_postgres(pg_image)
        try:
            pytest_beside(image, postgres, folder)  # Postgres up before the clock
            up = []
            for _ in range(RUNS):
                start = time.perf_counter()
                pytest_beside(image, postgres, folder)
                up.append(time.perf_counter() - start)
        finally:
            docker("rm", "-f", postgres, check=False)
        app = [s for s, _ in second]
        ctx.figure(f"{APP}: later runs (fresh Postgres each, {second[-1][1]['sandbox']}): min / median / max",
                   spread(app) + f"; {counts(second[-1][1])} (by hand: {fresh[-1][1]})")
        ctx.figure("same by hand, a fresh Postgres each: min / median / max", spread([s for s, _ in fresh]))
        ctx.figure("same by hand, Postgres already up: min / median / max", spread(up))
        median = sorted(app)[len(app) // 2]
        ctx.figure(f"{APP}: app / by hand with a fresh Postgres (medians)",
                   f"{median / sorted(s for s, _ in fresh)[len(fresh) // 2]:.2f}x (goal <= 1.5x)")
        ctx.figure(f"{APP}: app / by hand with Postgres already up (medians)",
                   f"{median / sorted(up)[len(up) // 2]:.2f}x")
    finally:
        remove_images(ctx)
        docker("volume", "rm", "-f", wheels_volume, check=False)
        shutil.rmtree(folder, ignore_errors=True)
