"""Each test's CPU time and peak memory, for te_plugin's result records.

CPU: the process's CPU time (every thread, user and system) from the test's
start to its end. Memory: the process's resident set, read from
/proc/self/statm every 50 ms by one daemon thread while a test runs, plus
the kernel's high-water mark (getrusage's ru_maxrss) when it rose during the
test, which catches a peak shorter than a sampling interval. Memory held by
processes a test started is not counted.
"""

import os
import resource
import threading
import time

INTERVAL = 0.05
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes():
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


def max_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PerTest:
    def __init__(self):
        self._peak = 0
        self._running = False
        self._cpu = 0.0
        self._high_water = 0
        self._wake = threading.Event()
        self._thread = None

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._sample, name="te-usage", daemon=True)
            self._thread.start()
        self._high_water = max_rss_bytes()
        self._peak = rss_bytes()
        self._cpu = time.process_time()
        self._running = True
        self._wake.set()

    def finish(self):
        """(cpu_ms, peak_rss_bytes) of the test that just ended."""
        if not self._running:
            return None, None
        self._running = False
        cpu_ms = int(round((time.process_time() - self._cpu) * 1000))
        peak = max(self._peak, rss_bytes())
        high_water = max_rss_bytes()
        if high_water > self._high_water:
            peak = max(peak, high_water)
        return max(cpu_ms, 0), peak

    def _sample(self):
        while True:
            if not self._running:
                self._wake.clear()
                self._wake.wait()
            rss = rss_bytes()
            if rss > self._peak:
                self._peak = rss
            time.sleep(INTERVAL)
