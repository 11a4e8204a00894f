#!/usr/bin/env python3
"""Counts, in a folded profile or in `perf script` output, the samples of a workload whose stack holds a
hot function, and how many of those also reach the entry point (main).

usage: stack_stats.py folded FILE COMM HOT_REGEX MAIN_REGEX
       stack_stats.py perf   FILE COMM HOT_REGEX MAIN_REGEX   (FILE is `perf script -F comm,ip,sym` output)
Prints: hot complete percent
"""
import re
import sys


def folded_stacks(path, comm):
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if frames and frames[0] == comm:
            yield frames[1:], int(count)


def perf_stacks(path, comm):
    frames, current = [], None
    for line in open(path, encoding="utf-8", errors="replace"):
        if not line.strip():
            if current == comm and frames:
                yield list(reversed(frames)), 1
            frames, current = [], None
            continue
        if not line.startswith((" ", "\t")):
            current = line.split()[0]
            frames = []
        else:
            parts = line.split(None, 1)
            symbol = parts[1].strip() if len(parts) > 1 else "[unknown]"
            symbol = re.sub(r" \(inlined\)$", "", symbol)
            frames.append(re.sub(r"\+0x[0-9a-f]+$", "", symbol))
    if current == comm and frames:
        yield list(reversed(frames)), 1


def main():
    kind, path, comm, hot, entry = sys.argv[1:6]
    hot_re, entry_re = re.compile(hot), re.compile(entry)
    stacks = folded_stacks(path, comm) if kind == "folded" else perf_stacks(path, comm)
    hot_count = complete = 0
    for frames, count in stacks:
        if any(hot_re.search(frame) for frame in frames):
            hot_count += count
            if any(entry_re.fullmatch(frame) for frame in frames):
                complete += count
    percent = 100.0 * complete / hot_count if hot_count else 0.0
    print(f"{hot_count} {complete} {percent:.2f}")


main()
