"""Arithmetic checks that always pass."""

import math


def test_addition():
    assert 1 + 1 == 2


def test_multiplication():
    assert 6 * 7 == 42


def test_square_root():
    assert math.isclose(math.sqrt(2) ** 2, 2.0)


def test_integer_division():
    assert divmod(17, 5) == (3, 2)
