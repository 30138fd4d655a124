"""Allocates memory in 64 MiB steps up to 1 GiB, printing as it goes.

In an environment with a 512 MiB limit the container is killed for memory
part-way; with more memory the test passes.
"""

STEP_MIB = 64
TOTAL_MIB = 1024


def test_allocates_past_512_mib():
    blocks = []
    for step in range(1, TOTAL_MIB // STEP_MIB + 1):
        # Filled with non-zero bytes, so every page is really used.
        blocks.append(b"x" * (STEP_MIB * 1024 * 1024))
        print(f"allocated {step * STEP_MIB} MiB", flush=True)
    assert len(blocks) * STEP_MIB == TOTAL_MIB
