"""One of each outcome: passed, failed, skipped, xfailed and xpassed."""

import sys

import pytest


def test_passes():
    assert "executor".upper() == "EXECUTOR"


def test_fails():
    assert [1, 2, 3] == [1, 2, 4]


@pytest.mark.skip(reason="feature not implemented yet")
def test_skipped():
    raise AssertionError("never runs")


@pytest.mark.skipif(sys.version_info < (3, 99), reason="needs Python 3.99")
def test_skipped_on_this_python():
    pass


@pytest.mark.xfail(reason="known rounding bug")
def test_expected_failure():
    assert 0.1 + 0.2 == 0.3


@pytest.mark.xfail(reason="bug was fixed upstream")
def test_unexpected_pass():
    assert round(2.675, 2) in (2.67, 2.68)
