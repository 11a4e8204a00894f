#!/usr/bin/env python3
"""Acceptance figures for stacks through language runtimes, from folded profiles.

usage: stacks.py collapse PERF_SCRIPT_TXT > OUT.folded
           `perf script -F comm,tid,ip,sym,dso` output → folded stacks (root first, thread name first), with
           the same conventions as flamespan's .folded: JIT frames named from a perf map get " [jit]",
           unnamed frames in anonymous memory are "[anon] 0xADDR", other unnamed frames "FILE+0xADDR".
       stacks.py figures WORKLOAD PROFILER FOLDED >> ROWS
           One tab-separated row per figure: workload, profiler, figure, numerator, denominator, goal (%).
       stacks.py table ROWS [GATED_PROFILER_PREFIX]
           Prints the table; exits 1 if a figure of a profiler whose name starts with the prefix (default
           "flamespan") misses its goal or rests on fewer than MIN_SAMPLES samples (default 100).
"""
import os
import re
import sys

MIN_SAMPLES = int(os.environ.get("MIN_SAMPLES", "100"))

# Hot functions and the roots a complete stack reaches, per workload.
# Hot: the handler chain, or sha256 (which only main.burn calls), so that a stack cut short above the
# assembly (crypto/sha256.block uses BP as a scratch register) still counts as hot.
GO_HOT = re.compile(r"^main\.(burn|level[1-5]|handle)$|^crypto/sha256\.")
GO_ROOTS = {"runtime.goexit", "main.main"}
# A named Go frame: the standard library's packages and main (the samples use nothing else).
GO_NAMED = re.compile(
    r"^(type\.\.|go\.|(main|runtime|internal|vendor|net|crypto|sync|syscall|bufio|io|fmt|os|strconv|time"
    r"|context|reflect|sort|strings|bytes|errors|unicode|math|hash|log|mime|path|encoding|compress"
    r"|container|text)[./])"
)
UNNAMED = re.compile(r"^\[unknown\]|^\[anon\]|^0x[0-9a-f]+$|\+0x[0-9a-f]+$")
JIT_SUFFIX = " [jit]"
# A frame that names a JavaScript function: flamespan drops V8's tag ("JS:*burnSlow /x.js:18:18" becomes
# "burnSlow"), perf keeps it; V8's own code keeps other tags ("Builtin:", "BytecodeHandler:", "Stub:").
# A Java method: "long JavaHttp.flamespanMixLight(long)", not "Interpreter" or "StubRoutines (1)".
JS_FUNCTION = re.compile(r"^(JS|LazyCompile|Function|Script|Eval):|^(?![A-Za-z]+:)")
JAVA_METHOD = re.compile(r"[\w$]+\.[\w$<>]+\(")

NATIVE = {
    "nofp_templates": (re.compile(r"^Mixer<\d+>::(mix|step)(\(|$)"), {"main"}),
    "nofp_rust": (re.compile(r"^nofp_rust::mix$"), {"main"}),
}


def read_folded(path):
    """(frames without the thread name, count) per line."""
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        yield stack.split(";")[1:], int(count)


def is_jit(frame):
    return frame.endswith(JIT_SUFFIX) or frame.startswith("[anon]")


def jit_named(frame, names_function):
    if not frame.endswith(JIT_SUFFIX):
        return False
    name = frame[: -len(JIT_SUFFIX)]
    return not UNNAMED.search(name) and bool(names_function.search(name))


def share(stacks, select, satisfy):
    selected = satisfied = 0
    for frames, count in stacks:
        if select(frames):
            selected += count
            if satisfy(frames):
                satisfied += count
    return satisfied, selected


def figures(workload, path):
    stacks = list(read_folded(path))
    rows = []
    if workload in NATIVE:
        hot, roots = NATIVE[workload]
        rows.append(("hot samples reaching main", *share(
            stacks, lambda f: any(hot.search(x) for x in f), lambda f: any(x in roots for x in f)), 99))
    elif workload.startswith("go_http"):
        is_hot = lambda f: any(GO_HOT.match(x) for x in f)
        rows.append(("hot samples reaching runtime.goexit/main.main", *share(
            stacks, is_hot, lambda f: any(x in GO_ROOTS for x in f)), 99))
        hot = [(f, c) for f, c in stacks if is_hot(f)]
        label = "Go frames named (hot samples)"
        if not hot:  # a profiler that names nothing has no hot samples: count every sample's frames
            hot, label = stacks, "Go frames named (all samples: none named hot)"
        named = unnamed = 0
        for frames, count in hot:
            for frame in frames:
                if frame.startswith("[kernel]"):
                    continue
                if UNNAMED.search(frame):
                    unnamed += count
                elif GO_NAMED.match(frame):
                    named += count
        rows.append((label, named, named + unnamed, 99))
    elif workload in ("node_http", "java_http"):
        names_function = JS_FUNCTION if workload == "node_http" else JAVA_METHOD
        rows.append(("JIT-leaf samples naming a " + ("JS function" if workload == "node_http" else "Java method"),
                     *share(stacks, lambda f: bool(f) and is_jit(f[-1]), lambda f: jit_named(f[-1], names_function)),
                     90))
        if workload == "node_http":
            burn = re.compile(r"\bburn(Slow|Fast)\b")
            rows.append(("all samples naming burnSlow/burnFast", *share(
                stacks, lambda f: True, lambda f: any(burn.search(x) for x in f)), 75))
        else:
            hot = re.compile(r"\bJavaHttp\.flamespan(SieveHeavy|MixLight)\(")
            rows.append(("all samples naming the hot methods", *share(
                stacks, lambda f: True, lambda f: any(hot.search(x) for x in f)), None))
    else:
        sys.exit(f"stacks.py: unknown workload {workload}")
    return rows


FRAME = re.compile(r"^\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$")


def collapse(path):
    counts = {}
    thread, frames = None, []

    def flush():
        if thread is not None and frames:
            key = ";".join([thread] + list(reversed(frames)))
            counts[key] = counts.get(key, 0) + 1

    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if not line.strip():
            flush()
            thread, frames = None, []
            continue
        if not line[0].isspace():
            flush()
            parts = line.rsplit(None, 1)  # "comm with spaces TID"
            thread, frames = (parts[0] if len(parts) == 2 else line.strip()), []
            continue
        match = FRAME.match(line)
        if not match:
            continue
        address, symbol, dso = match.groups()
        symbol = re.sub(r"\+0x[0-9a-f]+$", "", symbol)
        known = symbol and symbol != "[unknown]"
        if re.search(r"/perf-\d+\.map$", dso):
            frames.append(symbol + JIT_SUFFIX if known else f"[anon] 0x{address}")
        elif known:
            frames.append(symbol)
        elif dso in ("//anon", "[anon]", "[unknown]", "") or dso.startswith("[anon"):
            frames.append(f"[anon] 0x{address}" if "anon" in dso else f"[unknown] 0x{address}")
        else:
            frames.append(f"{os.path.basename(dso)}+0x{address}")
    flush()
    for key in sorted(counts):
        print(f"{key.replace(chr(10), ' ')} {counts[key]}")


def table(rows_path, gated):
    rows = [line.rstrip("\n").split("\t") for line in open(rows_path) if line.strip()]
    header = ("workload", "profiler", "figure", "samples", "share", "goal", "")
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(3)] if rows else [8, 8, 6]
    print(f"{header[0]:<{widths[0]}}  {header[1]:<{widths[1]}}  {header[2]:<{widths[2]}}  {'samples':>11}  {'share':>7}  goal")
    failed = []
    for workload, profiler, figure, num, den, goal in rows:
        num, den = int(num), int(den)
        percent = 100.0 * num / den if den else 0.0
        verdict = ""
        if goal != "-" and profiler.startswith(gated):
            ok = den >= MIN_SAMPLES and percent >= float(goal)
            verdict = "ok" if ok else ("MISSED" if den >= MIN_SAMPLES else f"MISSED (< {MIN_SAMPLES} samples)")
            if not ok:
                failed.append(f"{workload} {profiler}: {figure} {percent:.1f}% < {goal}% ({num}/{den})")
        goal_text = f">= {goal}%" if goal != "-" else ""
        print(f"{workload:<{widths[0]}}  {profiler:<{widths[1]}}  {figure:<{widths[2]}}  {num:>5}/{den:<5}  "
              f"{percent:6.1f}%  {goal_text:<7} {verdict}")
    for line in failed:
        print("MISSED: " + line, file=sys.stderr)
    return 1 if failed else 0


def main():
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "collapse" and len(sys.argv) == 3:
        collapse(sys.argv[2])
    elif command == "figures" and len(sys.argv) == 5:
        workload, profiler, path = sys.argv[2:5]
        for figure, num, den, goal in figures(workload, path):
            print("\t".join([workload, profiler, figure, str(num), str(den), "-" if goal is None else str(goal)]))
    elif command == "table" and len(sys.argv) in (3, 4):
        sys.exit(table(sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else "flamespan"))
    else:
        sys.exit(__doc__)


main()
