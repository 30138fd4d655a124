"""Real projects from the package index: first run (with its dependency build), second run, and pytest by hand in a container of the same image, side by side; a warm project run against the trivial warm run."""

import shutil
import subprocess
import tarfile
import time

from .common import (DOCKER_FLAGS, FINAL, IMAGE, REPO, TRIVIAL, BenchError, app_run, ratio, series, spread,
                     timings)

# (name, version, test files in the unpacked sdist, layout)
PROJECTS = [
    ("six", "1.16.0", ["test_six.py"], "module beside its tests"),
    ("toolz", "0.12.0", ["toolz/tests/test_dicttoolz.py", "toolz/tests/test_functoolz.py",
                         "toolz/tests/test_itertoolz.py", "toolz/tests/test_curried.py"], "package with tests inside"),
    ("pytz", "2023.3", ["pytz/tests/test_tzinfo.py", "pytz/tests/test_lazy.py"], "package with tests inside"),
    ("humanize", "4.9.0", ["tests/test_filesize.py", "tests/test_i18n.py", "tests/test_number.py",
                           "tests/test_time.py"], "src/ layout, tests extra"),
]
# A project with one small requirement and the trivial test: a warm project run.
DEMO = "demo-project"
DEMO_TEST = "import iniconfig\n\n\ndef test_addition():\n    assert 1 + 1 == 2\n\n\ndef test_upper():\n" \
            "    assert 'a'.upper() == 'A'\n\n\ndef test_sum():\n    assert sum(range(4)) == 6\n"
RUNS = 10


def sdist(name, version):
    """The sdist, from target/pypi-sdists/ (the tests' cache) or downloaded there."""
    cache = REPO / "target" / "pypi-sdists"
    file = cache / f"{name}-{version}.tar.gz"
    if not file.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d", str(cache),
                               f"{name}=={version}"], capture_output=True, text=True)
        if done.returncode != 0 or not file.is_file():
            raise BenchError(f"pip download {name}=={version}: {done.stderr.strip()[-500:]}")
    return file


def unpack(ctx, name, version):
    with tarfile.open(sdist(name, version)) as tar:
        tar.extractall(ctx.tests_dir, filter="data")
    folder = ctx.tests_dir / f"{name}-{version}"
    # Compiled translations are .gitignored: a run (and a checkout) has none.
    for mo in folder.rglob("*.mo"):
        mo.unlink()
    return folder


def project_run(srv, files):
    """POST to final of a run of `files`: (seconds, run JSON)."""
    body = {"username": "bench", "environment_id": 99, "files": files}
    start = time.perf_counter()
    run = srv.client.json("POST", "/api/v1/runs", body)
    while run["status"] not in FINAL:
        if time.perf_counter() - start > 900:
            raise BenchError(f"run #{run['id']} not final after 900 s")
        time.sleep(0.005)
        run = srv.client.json("GET", f"/api/v1/runs/{run['id']}")
    elapsed = time.perf_counter() - start
    if run["status"] != "success":
        raise BenchError(f"run #{run['id']} ended {run['status']}: {run.get('reason')}\n{srv.log_tail()}")
    return elapsed, run


def counts(run):
    s = run["summary"]
    return f"{s['passed']} passed, {s['failed']} failed, {s['skipped']} skipped"


def by_hand(image, folder, files):
    """pytest by hand in a sandboxed container of `image`, the tree copied to
    /tmp/work (where a dependency image's editable install points):
    (seconds, pytest's closing line). Removal outside the clock."""
    name = f"te-bench-byhand-{time.monotonic_ns():x}"
    flags = [f for f in DOCKER_FLAGS if f != "-i"]
    script = f"cp -r /src /tmp/work && cd /tmp/work && python3 -m pytest -p no:cacheprovider --color=no -q {' '.join(files)}"
    start = time.perf_counter()
    done = subprocess.run(["docker", "run", "--name", name, "--label", "te.bench=1", *flags,
                           "-v", f"{folder}:/src:ro", image, "sh", "-c", script], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    last = (done.stdout.strip().splitlines() or [""])[-1].strip("= ")
    if " passed" not in last:
        raise BenchError(f"pytest by hand in {image}: {done.stdout[-500:]}{done.stderr[-500:]}")
    return elapsed, last.split(" in ")[0]


def remove_images(ctx):
    """The dependency images this bench's installation built (they carry its database's name)."""
    ids = subprocess.run(["docker", "images", "-q", "--filter", f"label=te.dependency-db={ctx.db_name}"],
                         capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rmi", "-f", *sorted(set(ids))], capture_output=True)


def run(ctx):
    folders = {name: unpack(ctx, name, version) for name, version, _, _ in PROJECTS}
    demo = ctx.tests_dir / DEMO
    (demo / "tests").mkdir(parents=True, exist_ok=True)
    (demo / "requirements-test.txt").write_text("iniconfig==2.0.0\n")
    (demo / "tests" / "test_demo.py").write_text(DEMO_TEST)
    try:
        with ctx.server("projects", WARM_POOL="2") as srv:
            for name, version, tests, layout in PROJECTS:
                files = [f"{name}-{version}/{t}" for t in tests]
                first, run1 = project_run(srv, files)
                # The pool warms the project's image (if it has one) meanwhile.
                time.sleep(3)
                second, run2 = project_run(srv, files)
                hand, line = by_hand(run2["image"], folders[name], tests)
                ctx.figure(f"{name} {version} ({layout}), image",
                           f"{run2['image']}; {counts(run2)} (by hand: {line})")
                ctx.figure(f"{name}: first run / second run / pytest by hand in a container",
                           f"{first:.2f} s ({run1['sandbox']}) / {second:.2f} s ({run2['sandbox']}) / {hand:.2f} s")
                ctx.figure(f"{name}: second run / by hand", f"{second / hand:.2f}x (goal <= 1.2x)")
                if counts(run1) != counts(run2):
                    raise BenchError(f"{name}: first and second runs counted differently")
            project_run(srv, [f"{DEMO}/tests/test_demo.py"])  # builds the demo's image
            time.sleep(3)
            warm_project = series(lambda: project_run(srv, [f"{DEMO}/tests/test_demo.py"]), RUNS, ctx.args.pause)
            warm_trivial = series(lambda: app_run(srv, TRIVIAL), RUNS, ctx.args.pause)
        project = [s for s, _ in warm_project]
        trivial = [s for s, _ in warm_trivial]
        ctx.figure("trivial test in a project with a requirement, warm: min / median / max", spread(project))
        ctx.figure("same, app's timings (medians)", timings([r for _, r in warm_project]))
        ctx.figure("trivial test, runner image, warm: min / median / max", spread(trivial))
        ctx.figure("warm project run / warm trivial run (medians)", ratio(project, trivial))
    finally:
        remove_images(ctx)
        for folder in list(folders.values()) + [demo]:
            shutil.rmtree(folder, ignore_errors=True)
