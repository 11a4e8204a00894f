#!/usr/bin/env bash
# Symbolizer benchmark: `flamespan symbolize` against `llvm-symbolizer` on the same random addresses
# (inside functions, from the symbol tables) of several binaries. Prints per-binary times, the throughput
# ratio and the agreement (function chain + innermost file:line), and records them in RESULTS.md.
#
#   bench/symbolizer/run.sh [path/to/flamespan] [addresses-per-binary]
#
# BEFORE=/path/to/old/flamespan pairs two builds in one run: both symbolize the same addresses of each
# binary, REPEATS times (default 5) in alternating order, and the medians are compared, with a check that
# both print the same frames. (Separate runs move by ±30% on a shared 2-core machine.)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
flamespan="${1:-$root/.build/release/flamespan}"
per_binary="${2:-20000}"
llvm_symbolizer="${LLVM_SYMBOLIZER:-$(dirname "$(readlink -f "$(command -v swift)")")/llvm-symbolizer}"
[ -x "$llvm_symbolizer" ] || llvm_symbolizer="$(command -v llvm-symbolizer)"
[ -x "$flamespan" ] || { echo "no flamespan binary at $flamespan (build: swift build -c release)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cc -O2 -g "$here/fixtures/inline_chains.c" -o "$work/inline_chains-gcc"
clang -O2 -g "$here/fixtures/inline_chains.c" -o "$work/inline_chains-clang" 2>/dev/null || true
g++ -O2 -g "$here/fixtures/templates.cpp" -o "$work/templates-gxx"

binaries=("$work/inline_chains-gcc" "$work/templates-gxx" /lib/x86_64-linux-gnu/libc.so.6 /usr/bin/bash /usr/bin/gdb)
[ -x "$work/inline_chains-clang" ] && binaries+=("$work/inline_chains-clang")

python3 - "$flamespan" "$llvm_symbolizer" "$per_binary" "$here/RESULTS.md" "$work" "${binaries[@]}" <<'PY'
import json, os, random, re, subprocess, sys, time, datetime, platform
flamespan, llvm, per_binary, results_path, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
binaries = [b for b in sys.argv[6:] if os.path.exists(b)]

def function_symbols(binary):
    symbols = []
    for dynamic in ([], ["-D"]):
        out = subprocess.run(["nm", *dynamic, "-S", "--defined-only", binary], capture_output=True, text=True).stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) == 4 and f[2] in "tTwWiI" and int(f[1], 16) > 0:
                symbols.append((int(f[0], 16), int(f[1], 16)))
        if symbols:
            break
    return symbols

LAMBDA = re.compile(r"\{lambda\(([^)]*)\)#\d+\}")

def normalized(name):
    # C++ demanglers differ in presentation only: libstdc++ writes `{lambda(int)#1}` and `operator< <T>`,
    # LLVM writes `'lambda'(int)` and `operator<<T>`. Compare the names without that noise.
    return LAMBDA.sub(r"'lambda'(\1)", name).replace(" ", "")

def llvm_blocks(text):
    blocks, lines = [], []
    for line in text.split("\n"):
        if line == "":
            if lines: blocks.append(lines); lines = []
        else:
            lines.append(line)
    if lines: blocks.append(lines)
    result = []
    for block in blocks:
        frames = []
        for i in range(0, len(block) - 1, 2):
            parts = block[i + 1].rsplit(":", 2)
            frames.append((block[i], parts[0], int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else 0))
        result.append(frames)
    return result

rows, total_ours, total_llvm, agree_all, count_all = [], 0.0, 0.0, 0, 0
before = os.environ.get("BEFORE", "")
repeats = int(os.environ.get("REPEATS", "5")) if before else 1
paired, total_before, same_output = [], 0.0, True
import statistics

def timed(binary_to_run, target, text):
    t0 = time.perf_counter()
    result = subprocess.run([binary_to_run, "symbolize", "--binary", target], input=text, capture_output=True, text=True)
    return time.perf_counter() - t0, result
rng = random.Random(20240601)
for binary in binaries:
    symbols = function_symbols(binary)
    if not symbols:
        continue
    addresses = []
    for _ in range(per_binary):
        start, size = rng.choice(symbols)
        addresses.append(start + rng.randrange(size))
    text = "".join("0x%x\n" % a for a in addresses)
    ours_times, before_times = [], []
    for repeat in range(repeats):
        order = ["after", "before"] if before and repeat % 2 == 0 else ["before", "after"] if before else ["after"]
        for build in order:
            elapsed, result = timed(flamespan if build == "after" else before, binary, text)
            if build == "after":
                ours_times.append(elapsed); ours = result
            else:
                before_times.append(elapsed); theirs = result
    if before:
        same = theirs.stdout == ours.stdout
        same_output = same_output and same
        paired.append((binary, statistics.median(before_times), statistics.median(ours_times), same))
        total_before += statistics.median(before_times)
    llvm_start = time.perf_counter()
    ref = subprocess.run([llvm, "--obj=" + binary], input=text, capture_output=True, text=True)
    llvm_time = time.perf_counter() - llvm_start
    if ours.returncode != 0:
        print("flamespan failed on", binary, ours.stderr, file=sys.stderr); continue
    ours_lines = [json.loads(l) for l in ours.stdout.splitlines()]
    ref_blocks = llvm_blocks(ref.stdout)
    agree = 0
    examples = []
    for address, o, r in zip(addresses, ours_lines, ref_blocks):
        chain_r = [normalized(f[0]) for f in r if f[0] != "??"]
        chain_o = [normalized(f["function"]) for f in o["frames"] if f["function"] != "??"]
        same = chain_r == chain_o
        if same and r and r[0][2] != 0:
            same = bool(o["frames"]) and o["frames"][0]["file"] == r[0][1] and o["frames"][0]["line"] == r[0][2]
        if same: agree += 1
        elif len(examples) < 3: examples.append((hex(address), o["frames"][:3], r[:3]))
    n = len(addresses)
    ours_time = statistics.median(ours_times)
    total_ours += ours_time; total_llvm += llvm_time; agree_all += agree; count_all += n
    name = os.path.basename(binary) if not binary.startswith(work) else os.path.basename(binary) + " (fixture)"
    rows.append((name, n, ours_time, llvm_time, llvm_time / ours_time, 100.0 * agree / n))
    print(f"{name:32} {n:7} addrs  flamespan {ours_time:7.3f}s  llvm-symbolizer {llvm_time:7.3f}s  "
          f"speedup {llvm_time / ours_time:5.2f}x  agreement {100.0 * agree / n:6.2f}%")
    for e in examples: print("   differs:", e)

summary = (f"TOTAL {count_all} addresses: flamespan {total_ours:.3f}s ({count_all / total_ours:,.0f}/s), "
           f"llvm-symbolizer {total_llvm:.3f}s ({count_all / total_llvm:,.0f}/s), "
           f"throughput ratio {total_llvm / total_ours:.2f}x, agreement {100.0 * agree_all / count_all:.2f}%")
print(summary)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
llvm_version = subprocess.run([llvm, "--version"], capture_output=True, text=True).stdout.splitlines()
llvm_version = next((l.strip() for l in llvm_version if "version" in l.lower()), "?")
with open(results_path, "w") as out:
    out.write("# Symbolizer benchmark results\n\n")
    out.write("Produced by `bench/symbolizer/run.sh`; each run overwrites this file.\n\n")
    out.write(f"- Date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}\n")
    out.write(f"- Machine: {os.cpu_count()} CPUs (`nproc` {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()}), {cpu}\n")
    out.write(f"- Reference: {llvm} ({llvm_version})\n")
    out.write(f"- Addresses: {per_binary} random addresses inside functions per binary, one process run per binary for each tool (start-up and file parsing included)\n")
    out.write("- Agreement: same function chain (C++ names compared without spaces and with one lambda spelling, since libstdc++ and LLVM print them differently) and, where llvm-symbolizer has a line, the same innermost file:line\n\n")
    out.write("| binary | addresses | flamespan (s) | llvm-symbolizer (s) | throughput ratio | agreement |\n")
    out.write("| --- | ---: | ---: | ---: | ---: | ---: |\n")
    for name, n, a, b, ratio, agreement in rows:
        out.write(f"| {name} | {n} | {a:.3f} | {b:.3f} | {ratio:.2f}x | {agreement:.2f}% |\n")
    out.write(f"\n{summary}\n")
    if before:
        out.write(f"\n## Before and after, paired\n\n`BEFORE={before}` against `{flamespan}`: the same addresses, "
                  f"{repeats} runs of each build per binary in alternating order, medians.\n\n")
        out.write("| binary | before (s) | after (s) | after / before | same frames |\n| --- | ---: | ---: | ---: | --- |\n")
        for binary, b, a, same in paired:
            out.write(f"| {os.path.basename(binary)} | {b:.3f} | {a:.3f} | {a / b:.2f} | {'yes' if same else 'NO'} |\n")
        out.write(f"\nTOTAL before {total_before:.3f}s, after {total_ours:.3f}s: after / before {total_ours / total_before:.3f}; "
                  f"{'identical output' if same_output else 'OUTPUTS DIFFER'}\n")
if before:
    print(f"paired: before {total_before:.3f}s, after {total_ours:.3f}s, after/before {total_ours / total_before:.3f}, "
          f"{'identical output' if same_output else 'OUTPUTS DIFFER'}")
PY
