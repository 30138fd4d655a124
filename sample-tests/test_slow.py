"""Slow tests that sleep a few seconds, printing as they go."""

import time

import pytest


@pytest.mark.parametrize("seconds", [1, 2, 3])
def test_sleeps(seconds):
    for step in range(seconds):
        print(f"sleeping: {step + 1}/{seconds} s", flush=True)
        time.sleep(1)
    assert True


def test_progress_over_time():
    for percent in (0, 25, 50, 75, 100):
        print(f"progress {percent}%", flush=True)
        time.sleep(0.5)
