"""A shard's test loop: the tests come one at a time from the server.

A shard run (meta.json's "shard": true) collects every test of its files,
sends their node ids ("tests" records, in chunks), and then, instead of
running them in order, asks for its next test ("next" record) and reads the
answer, one JSON line on stdin after the tar: {"next": "<node id>"} or
{"next": null} when the suite's queue is done. The executor takes the test
from the queue in Postgres that all the suite's shards share, so an idle
shard takes work as soon as it has none (work stealing).

The ask is made when pytest tears the current test down (it needs to know the
next test to keep the fixtures they share): `Following` stands for the next
item until pytest first looks at it. A closed stdin, or an answer that is not
valid, ends the shard's share; a node id this shard did not collect is
reported as an error rather than lost.
"""

import json
import os

import pytest

import te_plugin

# A `tests` record carries at most this many ids, and this many bytes of
# them: well inside the server's line limit, escapes and all.
CHUNK = 100
CHUNK_BYTES = 32 * 1024
MAX_LINE = 64 * 1024


class Following:
    """The next item, asked for on first use."""

    def __init__(self, fetch):
        self._fetch = fetch
        self._asked = False
        self._item = None

    def resolve(self):
        if not self._asked:
            self._asked = True
            self._item = self._fetch()
        return self._item

    def __bool__(self):
        return self.resolve() is not None

    def __getattr__(self, name):
        item = self.resolve()
        if item is None:
            raise AttributeError(name)
        return getattr(item, name)


class Shard:
    def __init__(self, plugin):
        self._plugin = plugin
        # The answers come on stdin; the tests (and what they start) get
        # /dev/null there, as a run that is not a shard has its stdin at its
        # end: a test reading stdin neither hangs nor takes an answer.
        self._fd = os.dup(0)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        self._buf = b""
        self._closed = False
        self._items = {}
        self.ran = 0

    def _read_line(self):
        while b"\n" not in self._buf:
            if self._closed or len(self._buf) > MAX_LINE:
                return None
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                self._closed = True
                return None
            # The tar's last zero block may still be ahead of the answers.
            self._buf = (self._buf + chunk).lstrip(b"\0")
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def _ask(self):
        """The next test's node id, or None when there is none."""
        if self._closed:
            return None
        self._plugin.emit({"t": "next"})
        line = self._read_line()
        try:
            nodeid = json.loads(line)["next"] if line is not None else None
        except (ValueError, TypeError, KeyError):
            self._closed = True
            return None
        if nodeid is not None and not isinstance(nodeid, str):
            self._closed = True
            return None
        return nodeid

    def _next_item(self):
        while (nodeid := self._ask()) is not None:
            item = self._items.get(nodeid)
            if item is not None:
                return item
            self._plugin.emit({
                "t": "result", "nodeid": nodeid, "outcome": "error", "duration_ms": 0,
                "message": "this shard did not collect the test (collection differs between shards)",
                "longrepr": None,
            })
            self.ran += 1
        return None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session):
        self._items = {te_plugin._nodeid(item.nodeid): item for item in session.items}
        total = len(self._items)
        chunk, size = [], 0
        for nodeid in self._items:
            if chunk and (len(chunk) == CHUNK or size + len(nodeid) > CHUNK_BYTES):
                self._plugin.emit({"t": "tests", "total": total, "nodeids": chunk})
                chunk, size = [], 0
            chunk.append(nodeid)
            size += len(nodeid.encode("utf-8", "replace"))
        if chunk:
            self._plugin.emit({"t": "tests", "total": total, "nodeids": chunk})

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(f"{session.testsfailed} errors during collection")
        if session.config.option.collectonly:
            return True
        try:
            item = self._next_item()
            while item is not None:
                following = Following(self._next_item)
                item.config.hook.pytest_runtest_protocol(item=item, nextitem=following)
                self.ran += 1
                if session.shouldfail:
                    raise session.Failed(session.shouldfail)
                if session.shouldstop:
                    raise session.Interrupted(session.shouldstop)
                item = following.resolve()
        finally:
            # What this shard ran is what it "collected": its share.
            self._plugin.emit({"t": "collected", "n": self.ran})
        return True
