"""Checks that the sandbox has no network: connecting out must fail.

It passes when the connection attempt raises OSError ("Network is
unreachable"). Outside a test-executor run (TE_RUN_ID unset) it is skipped,
and it never tries to connect while a network interface other than the
loopback exists, so it sends no traffic anywhere.
"""

import os
import socket

import pytest


def test_outbound_connection_is_blocked():
    if "TE_RUN_ID" not in os.environ:
        pytest.skip("only meaningful inside a test-executor sandbox")
    interfaces = sorted(set(os.listdir("/sys/class/net")) - {"lo"})
    assert not interfaces, f"the sandbox has network interfaces: {interfaces}"
    with pytest.raises(OSError) as excinfo:
        socket.create_connection(("1.1.1.1", 53), timeout=3)
    print(f"connection failed as expected: {excinfo.value}")
