"""`submit --tree` of a 5,000-file tree, first time and unchanged, against `rsync -a` of it into the tests folder plus a catalog run of the same tests: each the client's whole life."""

import itertools
import shutil
import statistics
import subprocess
import time

from .common import BINARY, REPO, TRIVIAL, BenchError, app_run, timings

NAME = "treeproj"
GENERATED = 5_000
REPEATS = 3
# What a developer's working copy holds: a package under src/ (pytest.ini
# only, so the run needs no dependency build: the figure is the upload and
# the run, not pip), a few fast tests, and many small source files.
FILES = {
    "pytest.ini": "[pytest]\ntestpaths = tests\n",
    "src/calc/__init__.py": "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n",
    "src/calc/gen/__init__.py": "",
    "tests/test_calc.py": "from calc import add, sub\n\n\ndef test_adds():\n    assert add(2, 2) == 4\n\n\n"
                          "def test_subtracts():\n    assert sub(5, 3) == 2\n",
    "tests/test_gen.py": "import importlib\n\nimport pytest\n\n\n@pytest.mark.parametrize('i', [0, 1234, 4999])\n"
                         "def test_generated_module_arrived(i):\n"
                         "    module = importlib.import_module(f'calc.gen.m{i % 50:02}.mod_{i:04}')\n"
                         "    assert module.VALUE == i\n",
}
TESTS = ["tests/test_calc.py", "tests/test_gen.py"]
PASSED = 5
_environments = itertools.cycle(range(61, 69))


def make_tree(root):
    """The working copy: FILES and GENERATED modules of 10 to 2,010 bytes
    in 50 packages (as tests/api/trees.rs's ignored bench makes it)."""
    for path, text in FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    for m in range(50):
        (root / f"src/calc/gen/m{m:02}").mkdir()
        (root / f"src/calc/gen/m{m:02}/__init__.py").write_text("")
    for i in range(GENERATED):
        (root / f"src/calc/gen/m{i % 50:02}/mod_{i:04}.py").write_text(f"VALUE = {i}\n# {'x' * (i % 2000)}\n")
    return sum(1 for p in root.rglob("*") if p.is_file())


def submit(srv, *args):
    """The terminal client, from its start to its exit: (seconds, the run
    JSON). The run is found afterwards (--quiet prints only the verdict)."""
    env = next(_environments)
    cmd = [str(BINARY), "submit", "--server", f"http://127.0.0.1:{srv.port}", "--user", "bench",
           "--env", str(env), "--quiet", *args]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(f"{' '.join(cmd[1:])} exited {done.returncode}: {done.stdout[-500:]}{done.stderr[-500:]}\n"
                         f"{srv.log_tail()}")
    listed = srv.client.json("GET", f"/api/v1/runs?username=bench&environment_id={env}&limit=1")
    run = srv.client.json("GET", f"/api/v1/runs/{listed[0]['id']}")
    if run["summary"]["passed"] != PASSED:
        raise BenchError(f"run #{run['id']}: {run['summary']} (expected {PASSED} passed)")
    return elapsed, run


def rsync(src, dest):
    start = time.perf_counter()
    done = subprocess.run(["rsync", "-a", f"{src}/", str(dest)], capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"rsync -a {src}/ {dest}: {done.stderr.strip()[-500:]}")
    return time.perf_counter() - start


def run(ctx):
    if shutil.which("rsync") is None:
        raise BenchError("no rsync (scripts/bench installs it)")
    laptop = ctx.workdir / "laptop" / NAME
    laptop.mkdir(parents=True)
    dest = ctx.tests_dir / NAME
    catalog = [f"{NAME}/{t}" for t in TESTS]
    try:
        count = make_tree(laptop)
        with ctx.server("trees", WARM_POOL="2") as srv:
            app_run(srv, TRIVIAL)  # a warm pool for both sides

            def rest():
                time.sleep(max(ctx.args.pause, 2.0))  # the pool refills between runs

            rest()
            first_tree, tree_run = submit(srv, "--tree", str(laptop))
            rest()
            first_copy = rsync(laptop, dest)  # a fresh folder in the tests folder
            first_run, _ = submit(srv, *catalog)
            trees, copies, catalog_runs, runs = [], [], [], {"tree": [], "catalog": []}
            for _ in range(REPEATS):  # unchanged, alternating
                rest()
                seconds, again = submit(srv, "--tree", str(laptop))
                if again["tree_id"] != tree_run["tree_id"]:
                    raise BenchError(f"the unchanged tree got a new id: {again['tree_id']} != {tree_run['tree_id']}")
                trees.append(seconds)
                runs["tree"].append(again)
                rest()
                copies.append(rsync(laptop, dest))  # into the existing folder: nothing to copy
                seconds, again = submit(srv, *catalog)
                catalog_runs.append(seconds)
                runs["catalog"].append(again)
            tree = srv.client.json("GET", f"/api/v1/trees/{tree_run['tree_id']}")
            # One more unchanged send, untimed and not quiet: the client's own account of it.
            shown = subprocess.run([str(BINARY), "submit", "--server", f"http://127.0.0.1:{srv.port}", "--user", "bench",
                                    "--env", str(next(_environments)), "--tree", str(laptop)],
                                   capture_output=True, text=True)
        line = next((x for x in shown.stderr.splitlines() if x.startswith("tree ")), shown.stderr.strip()[-200:])
        second_pairs = [c + r for c, r in zip(copies, catalog_runs)]
        tree_median, copy_median = statistics.median(trees), statistics.median(second_pairs)
        ctx.figure("tree", f"{count:,} files on disk; the server's tree: {tree['files']:,} files, "
                           f"{tree['bytes'] / 2**20:.1f} MiB, received {tree['received_bytes'] / 2**20:.1f} MiB")
        ctx.figure("first `submit --tree`", f"{first_tree:.2f} s ({tree_run['sandbox']})")
        ctx.figure(f"second `submit --tree` (unchanged), {REPEATS} times: median",
                   f"{tree_median:.2f} s ({', '.join(f'{x:.2f}' for x in trees)}); then: {line}")
        ctx.figure("rsync -a + catalog run, first (fresh folder)",
                   f"{first_copy:.2f} + {first_run:.2f} = {first_copy + first_run:.2f} s")
        ctx.figure(f"rsync -a + catalog run, second (unchanged), {REPEATS} times: median",
                   f"{copy_median:.2f} s ({', '.join(f'{c:.2f}+{r:.2f}' for c, r in zip(copies, catalog_runs))})")
        ctx.figure("runs' timings (medians), tree / catalog",
                   f"{timings(runs['tree'])} / {timings(runs['catalog'])}")
        ctx.figure("second submit / second rsync + catalog run (medians)",
                   f"{tree_median / copy_median:.2f}x (goal <= 1.2x)")
        ctx.note("trees: each figure is the terminal client's whole life (`submit --quiet`, start to exit, the "
                 "release binary) or rsync's plus the client's; the tree is sent without FILEs (every test file "
                 f"found), the catalog run names its {len(TESTS)} files; the unchanged sends and copies alternate, "
                 f"{max(ctx.args.pause, 2.0):g} s apart so the warm pool refills.")
    finally:
        shutil.rmtree(dest, ignore_errors=True)
        shutil.rmtree(laptop.parent, ignore_errors=True)
