"""Where a run hangs: shortly before its deadline, every thread's Python
stack, sent as one "stacks" record tagged with the test running then.

A daemon thread sleeps until the deadline less a lead (3 s, or a quarter of
a short limit), then reads sys._current_frames(): a test asleep, waiting on
a lock or in a loop of Python code lets it run (a C call that holds the GIL
for seconds would not; faulthandler could, but gives text, not records).
Bounded: 16 threads, the innermost 40 frames of each, short strings.
"""

import sys
import threading
import time
import traceback

LEAD_SECS = 3.0
MAX_THREADS = 16
MAX_FRAMES = 40
TEXT_CAP = 300


def _short(text):
    return text if len(text) <= TEXT_CAP else text[:TEXT_CAP - 1] + "\u2026"


def _path(filename, work):
    """A file of the run as pytest names it (relative to the work folder)."""
    prefix = work.rstrip("/") + "/"
    return filename[len(prefix):] if filename.startswith(prefix) else filename


def stacks(work, skip_ident):
    names = {t.ident: t.name for t in threading.enumerate()}
    threads = []
    for ident, frame in sys._current_frames().items():
        if ident == skip_ident:
            continue
        summary = traceback.extract_stack(frame)[-MAX_FRAMES:]
        threads.append({
            "name": _short(names.get(ident, f"thread {ident}")),
            "main": ident == threading.main_thread().ident,
            "frames": [[_short(_path(f.filename, work)), f.lineno or 0, _short(f.name)]
                       for f in summary],
        })
    threads.sort(key=lambda t: not t["main"])
    return threads[:MAX_THREADS]


def watch(plugin, deadline_secs, work):
    """Starts the watch; the record goes out once, if the run lasts."""
    if not deadline_secs or deadline_secs <= 0:
        return
    lead = min(LEAD_SECS, deadline_secs / 4)
    at = time.monotonic() + deadline_secs - lead

    def run():
        time.sleep(max(0.0, at - time.monotonic()))
        plugin.emit({
            "t": "stacks",
            "test": plugin.current,
            "threads": stacks(work, threading.get_ident()),
        })

    threading.Thread(target=run, name="te-hang-watch", daemon=True).start()
