"""Tests that write to stdout, stderr and the logging module."""

import logging
import sys

log = logging.getLogger("sample.output")


def test_prints_to_stdout():
    for i in range(3):
        print(f"stdout line {i}")
    assert True


def test_prints_to_stderr():
    print("something on stderr", file=sys.stderr)
    print("and a second stderr line", file=sys.stderr)


def test_logs_at_several_levels():
    log.debug("debug message (below the INFO level shown live)")
    log.info("info message")
    log.warning("warning message")
    log.error("error message")


def test_unicode_and_long_lines():
    print("héllo wörld ✓ — ünïcode")
    print("x" * 2000)
