"""pytest plugin that reports a test-executor run's progress as it happens.

Each event becomes one record written with a single os.write on fd 2:

    b"\\x1e" + token + b" " + compact JSON + b"\\n"

The token comes from the run's meta.json (never from the environment), so a
test printing something that looks like a record is just text. Records carry
"i", a counter from 0, and "t", the type: collected, start, result,
collect_error, finish (and junit and usage, sent by te_runner after the
session; stacks, by te_hang when the executor asks; tests and next, a
shard's, by te_shard). A result carries the
test's CPU time and peak memory (te_usage).
"""

import json
import os
import sys
import threading

import pytest

import te_usage

LONGREPR_CAP = 16 * 1024
MESSAGE_CAP = 500
# Node ids are cut as the server cuts them (output.rs, cap_nodeid): the first
# bytes, then "…#" and 16 hex digits of the whole id's SHA-256, so a record
# stays well under the server's line limit and cut ids stay distinct.
NODEID_CAP = 2048


def _nodeid(nodeid):
    data = nodeid.encode("utf-8", "replace")
    if len(data) <= NODEID_CAP:
        return nodeid
    import hashlib  # here: loading OpenSSL costs a few ms of every start-up

    digest = hashlib.sha256(data).hexdigest()[:16]
    return data[:NODEID_CAP - 20].decode("utf-8", "ignore") + "\u2026#" + digest


def _cap(text, limit):
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore") + "\n[truncated]"


def _first_line(text):
    for line in str(text).splitlines():
        if line.strip():
            return _cap(line.strip(), MESSAGE_CAP)
    return ""


def _exception_line(excinfo):
    """'AssertionError: assert 1 == 2' for an exception in a test phase."""
    value = excinfo.value
    if excinfo.typename == "FixtureLookupError":
        text = getattr(value, "msg", None) or f"fixture '{getattr(value, 'argname', '?')}' not found"
    elif isinstance(value, SyntaxError):
        text = value.msg
    else:
        text = str(value)
    line = _first_line(text)
    return f"{excinfo.typename}: {line}" if line else excinfo.typename


def _collect_error_line(longrepr):
    """The exception line of a collection error ('E   SyntaxError: ...')."""
    lines = [l[1:].strip() for l in longrepr.splitlines() if l.startswith("E ")]
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if head.replace(".", "").replace("_", "").isalnum() and head.endswith(("Error", "Exception", "Exit", "Interrupt")):
            return _cap(line, MESSAGE_CAP)
    return _cap(lines[-1], MESSAGE_CAP) if lines else _first_line(longrepr)


def _longrepr(report):
    return _cap(str(report.longrepr), LONGREPR_CAP) if report.longrepr else None


def _skip_reason(report):
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        reason = str(report.longrepr[2])
        return reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason
    return _first_line(report.longrepr or "") or None


class Plugin:
    def __init__(self, token):
        self._token = token.encode("ascii")
        self._i = 0
        self._reports = {}
        # The test running now (te_hang's record names it).
        self.current = None
        # te_hang emits from its own thread.
        self._lock = threading.Lock()
        self._usage = te_usage.PerTest()
        # A shard says what it collected at its end: its share (te_shard).
        self.shard = False

    def emit(self, record):
        with self._lock:
            record["i"] = self._i
            self._i += 1
            sys.stdout.flush()
            sys.stderr.flush()
            body = json.dumps(record, separators=(",", ":")).encode("ascii")
            os.write(2, b"\x1e" + self._token + b" " + body + b"\n")

    def pytest_collection_finish(self, session):
        if not self.shard:
            self.emit({"t": "collected", "n": len(session.items)})

    def pytest_collectreport(self, report):
        if report.failed:
            text = str(report.longrepr)
            self.emit({
                "t": "collect_error",
                "nodeid": _nodeid(report.nodeid),
                "message": _collect_error_line(text),
                "longrepr": _cap(text, LONGREPR_CAP),
            })

    def pytest_runtest_logstart(self, nodeid, location):
        self.current = _nodeid(nodeid)
        self._reports[nodeid] = []
        self.emit({"t": "start", "nodeid": _nodeid(nodeid)})
        self._usage.start()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if call.excinfo is not None:
            report.te_message = _exception_line(call.excinfo)

    def pytest_runtest_logreport(self, report):
        self._reports.setdefault(report.nodeid, []).append(report)

    def pytest_runtest_logfinish(self, nodeid, location):
        cpu_ms, peak_rss = self._usage.finish()
        reports = self._reports.pop(nodeid, [])
        outcome, message, longrepr = _aggregate(reports)
        self.emit({
            "t": "result",
            "nodeid": _nodeid(nodeid),
            "outcome": outcome,
            "duration_ms": int(round(sum(r.duration for r in reports) * 1000)),
            "message": message,
            "longrepr": longrepr,
            "cpu_ms": cpu_ms,
            "peak_rss_bytes": peak_rss,
        })

    def pytest_sessionfinish(self, session, exitstatus):
        self.emit({"t": "finish", "exitstatus": int(exitstatus)})


def _aggregate(reports):
    """(outcome, message, longrepr) of one test from its phase reports."""
    by_phase = {r.when: r for r in reports}
    broken = [r for r in reports if r.when in ("setup", "teardown") and r.failed]
    if broken:
        texts = [_longrepr(r) for r in reports if r.failed and r.longrepr]
        message = getattr(broken[0], "te_message", None) or _first_line(broken[0].longrepr or "")
        return "error", message or None, _cap("\n\n".join(texts), LONGREPR_CAP) if texts else None
    phase = by_phase.get("call") or by_phase.get("setup")
    if phase is None:
        return "error", "test did not run", None
    if hasattr(phase, "wasxfail"):
        reason = phase.wasxfail
        reason = reason[len("reason: "):] if reason.startswith("reason: ") else reason
        if phase.skipped:
            longrepr = _longrepr(phase) if phase.when == "call" else None
            return "xfailed", reason or getattr(phase, "te_message", None), longrepr
        if phase.passed:
            return "xpassed", reason or None, None
    if phase.skipped:
        return "skipped", _skip_reason(phase), None
    if phase.failed:
        message = getattr(phase, "te_message", None) or _first_line(phase.longrepr or "")
        return "failed", message or None, _longrepr(phase)
    return "passed", None, None
