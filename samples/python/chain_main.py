"""A CPython workload with a known call chain across two files, for checking Python frames in profiles.

    python3 chain_main.py [SECONDS] [STACK_JSON]      (defaults: 5 seconds; STACK_JSON from $CHAIN_STACK_JSON)

With CHAIN_SETTLE_SECONDS=S in the environment it first runs S more seconds that are not counted (a
profiler attaches meanwhile), then counts SECONDS.

Each work unit runs, root first:

    <module> → main → outer → middle (chain_lib.py) → recurse × 12 (chain_lib.py) → inner (chain_lib.py) →
        spin_main (this file, pure Python)
        spin_lib (chain_lib.py, pure Python)
        hash_block (chain_lib.py) → hashlib.sha256 on 1 MiB → OpenSSL

The first unit writes traceback.extract_stack(), taken in inner, to STACK_JSON (when given): a list of
{"name", "file", "line"}, root first. At the end it prints
`work units: N in S s (R per s), C CPU s (U per CPU s); checksum X`: its speed in wall time and in its own
CPU time (the process's, which includes the kernel's work on its behalf, such as a BPF sampler's), which
bench/python/overhead.sh compares with and without a profiler.
"""
import json
import os
import sys
import time
import traceback

import chain_lib


class Work:
    """How much each hot function does per unit: about 45 %, 30 % and 25 % of the time, in that order."""

    main_rounds = 60_000
    lib_rounds = 40_000
    hashes = 3


def spin_main(rounds):
    total = 1
    for value in range(rounds):
        total = (total ^ (value * 2654435761)) & 0xFFFFFFFF
    return total


def outer(seconds, settle, stack_path):
    reported = not stack_path

    def report_stack():
        nonlocal reported
        if reported:
            return
        reported = True
        # Without this function's own frame: the stack as inner sees it.
        frames = traceback.extract_stack()[:-1]
        records = [{"name": f.name, "file": os.path.abspath(f.filename), "line": f.lineno} for f in frames]
        with open(stack_path, "w", encoding="utf-8") as output:
            json.dump(records, output)

    units = 0
    checksum = 0
    began = time.monotonic()
    counting_from = began + settle
    deadline = counting_from + seconds
    counting = settle <= 0
    cpu_began = time.process_time()
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if not counting and now >= counting_from:
            counting, units, began, cpu_began = True, 0, now, time.process_time()
        checksum = (checksum + chain_lib.middle(spin_main, report_stack, Work)) & 0xFFFFFFFF
        units += 1
    return units, time.monotonic() - began, time.process_time() - cpu_began, checksum


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    stack_path = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("CHAIN_STACK_JSON", "")
    settle = float(os.environ.get("CHAIN_SETTLE_SECONDS", "0"))
    units, elapsed, cpu, checksum = outer(seconds, settle, stack_path)
    print(
        f"work units: {units} in {elapsed:.3f} s ({units / elapsed:.2f} per s), "
        f"{cpu:.3f} CPU s ({units / max(cpu, 1e-9):.2f} per CPU s); checksum {checksum:08x}",
        flush=True,
    )


if __name__ == "__main__":
    main()
