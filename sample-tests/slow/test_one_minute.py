"""A test that runs for about a minute, reporting progress every 5 seconds.

Useful to watch live logs, cancel a run, or hit an environment's time limit.
"""

import time


def test_takes_about_a_minute():
    start = time.monotonic()
    for elapsed in range(0, 60, 5):
        print(f"{elapsed} s elapsed", flush=True)
        time.sleep(5)
    print(f"done after {time.monotonic() - start:.0f} s", flush=True)
