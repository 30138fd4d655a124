"""A flaky test: it passes on even run ids and fails on odd ones.

The run id comes from TE_RUN_ID, which the runner sets for each run; runs
of the same file alternate, so per-test history marks this test flaky.
"""

import os


def test_depends_on_run_id_parity():
    run_id = int(os.environ.get("TE_RUN_ID", "0"))
    print(f"run id {run_id}")
    assert run_id % 2 == 0, f"run {run_id} is odd"
