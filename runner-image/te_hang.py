"""Where a run hangs, or is now: when the executor asks, every thread's
Python stack, sent as one "stacks" record tagged with the test running then.

The executor asks with a signal that PID 1 passes on: SIGUSR2 shortly
before the deadline (by the executor's clock, the one that kills the run),
SIGUSR1 when someone asked "Where is it now?" (the record says `asked`).
The handler only notes it, in the main thread between two bytecodes (a
sleep or a lock wait is interrupted for it); a daemon thread then reads
sys._current_frames(): a test asleep, waiting on a lock or in a loop of
Python code lets it run (a C call that holds the GIL for seconds would
not; faulthandler could, but gives text, not records). Bounded: 16
threads, the innermost 40 frames of each, short strings, at most 20
asked-for records and 5 deadline ones a run (a test may signal itself; the
server keeps the latest, so an early SIGUSR2 does not use up the real one).
"""

import signal
import sys
import threading
import traceback

MAX_ASKED = 20
MAX_DEADLINE = 5
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


def watch(plugin, work):
    """Answers the executor's asks from a thread of its own."""
    wake = threading.Event()
    pending = {signal.SIGUSR1: 0, signal.SIGUSR2: 0}

    def note(signo, _frame):
        pending[signo] += 1
        wake.set()

    for signo in pending:
        signal.signal(signo, note)

    def send(asked):
        plugin.emit({
            "t": "stacks",
            "test": plugin.current,
            "asked": asked,
            "threads": stacks(work, threading.get_ident()),
        })

    def run():
        seen = {signal.SIGUSR1: 0, signal.SIGUSR2: 0}
        sent = {signal.SIGUSR1: 0, signal.SIGUSR2: 0}
        caps = {signal.SIGUSR1: MAX_ASKED, signal.SIGUSR2: MAX_DEADLINE}
        while True:
            wake.wait()
            wake.clear()
            for signo, cap in caps.items():
                # Asks that came together get one answer.
                if pending[signo] > seen[signo]:
                    seen[signo] = pending[signo]
                    if sent[signo] < cap:
                        sent[signo] += 1
                        send(signo == signal.SIGUSR1)

    threading.Thread(target=run, name="te-hang-watch", daemon=True).start()
