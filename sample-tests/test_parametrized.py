"""A few hundred generated cases: 300 parametrised tests."""

import pytest


def collatz_steps(n):
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


@pytest.mark.parametrize("n", range(1, 201))
def test_collatz_reaches_one(n):
    assert collatz_steps(n) >= 0


@pytest.mark.parametrize("a, b", [(a, b) for a in range(10) for b in range(10)])
def test_addition_commutes(a, b):
    assert a + b == b + a
