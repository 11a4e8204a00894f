#!/usr/bin/env python3
"""The three Python-frame figures of issue 18, computed the same way for py-spy and for flamespan.

usage: figures.py [--source-dir DIR] PROFILE...       one table row per profile
       figures.py --folded PROFILE.pb.gz              flamespan's pprof as folded stacks with lines

A PROFILE is py-spy's raw output (`py-spy record --native --full-filenames -f raw`: folded stacks, root
first, Python frames as `function (file:line)`, native ones as `symbol (library)`), or flamespan's pprof
(`flamespan record -o X.pb.gz`), which has each Python frame's file and line (its folded output has names
only). The pprof is turned into the same folded form: Python frames (a function whose file ends in .py or
is `<frozen …>`, and `[unknown Python frame]`) as `function (file:line)`, native frames as
`function (mapping's file name)`.

On the workload samples/python/chain_main.py, the figures are:
  1. running function: of the samples inside the interpreter (any Python frame, or a native
     _PyEval_EvalFrameDefault), those whose innermost Python frame has a name, a file and a line that
     lies inside that function's source (between its def line and its last line, read from the file
     with ast; the lines of files that cannot be read, such as <frozen importlib._bootstrap>, only need to
     be positive, and are counted apart);
  2. chain in order: of the samples whose Python frames name any function of the chain from outer down,
     those whose Python frames, root first, are exactly a prefix of
     <module> main outer middle recurse×12 inner (spin_main | spin_lib | hash_block | report_stack …), each
     in its own file;
  3. native under hashlib: of the samples whose innermost Python frame is hash_block, those with a
     native frame of the C extension or of OpenSSL below it (a symbol with sha256 in its name, or code in
     _hashlib.*.so or libcrypto.so); an address no profiler could place in a file does not count.
The goals are ≥ 99.5 %, ≥ 99.5 % and ≥ 95 %. Exit status 1 when a pprof profile misses one (py-spy's rows
are for comparison), 2 on bad input.
"""
import ast
import gzip
import os
import re
import sys

GOALS = (99.5, 99.5, 95.0)
RECURSION_DEPTH = 12
MAIN_FILE, LIB_FILE = "chain_main.py", "chain_lib.py"
CHAIN_HEAD = [("<module>", MAIN_FILE), ("main", MAIN_FILE), ("outer", MAIN_FILE), ("middle", LIB_FILE)]
CHAIN_TAIL = [("inner", LIB_FILE)]
CHAIN_LEAVES = {("spin_main", MAIN_FILE), ("spin_lib", LIB_FILE), ("hash_block", LIB_FILE)}
# From outer down: <module> and main are names other files use too (site.main at start-up).
CHAIN_NAMES = {name for name, _ in CHAIN_HEAD[2:] + CHAIN_TAIL} | {"recurse"} | {n for n, _ in CHAIN_LEAVES}
UNKNOWN_PYTHON = "[unknown Python frame]"
OPENSSL = re.compile(r"sha256|libcrypto\.so|_hashlib\.", re.IGNORECASE)
FRAME = re.compile(r"^(?P<name>.*) \((?P<where>[^()]*?)(?::(?P<line>\d+))?\)$")


class Frame:
    __slots__ = ("name", "file", "line", "python", "text")

    def __init__(self, name, file, line, python, text):
        self.name, self.file, self.line, self.python, self.text = name, file, line, python, text


def is_python_file(path):
    return path.endswith(".py") or path.startswith("<frozen ")


def parse_frame(text):
    if text == UNKNOWN_PYTHON:
        return Frame(text, None, 0, True, text)
    match = FRAME.match(text)
    if not match:
        return Frame(text, None, 0, False, text)
    where = match.group("where")
    line = int(match.group("line") or 0)
    python = is_python_file(where)
    return Frame(match.group("name"), where if python else None, line, python, text)


def read_folded(path):
    """(frames root first, count) per line of folded text."""
    stacks = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            stacks.append(([parse_frame(part) for part in stack.split(";")], int(count)))
    return stacks


# --- pprof (perftools.profiles.Profile), decoded by hand: only the fields the figures need. ---


def varint(data, offset):
    value = shift = 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, offset
        shift += 7


def fields(data):
    """(field number, value) pairs; a length-delimited value is bytes, a varint an int."""
    offset = 0
    while offset < len(data):
        key, offset = varint(data, offset)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, offset = varint(data, offset)
        elif wire == 2:
            length, offset = varint(data, offset)
            value, offset = data[offset : offset + length], offset + length
        elif wire == 1:
            value, offset = int.from_bytes(data[offset : offset + 8], "little"), offset + 8
        elif wire == 5:
            value, offset = int.from_bytes(data[offset : offset + 4], "little"), offset + 4
        else:
            raise ValueError(f"wire type {wire} at byte {offset}")
        yield number, value


def packed_or_single(value):
    if isinstance(value, int):
        return [value]
    numbers, offset = [], 0
    while offset < len(value):
        number, offset = varint(value, offset)
        numbers.append(number)
    return numbers


def read_pprof(path):
    """(frames root first, count) per sample, named as described in the module's docstring."""
    data = open(path, "rb").read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    strings, samples, locations, functions, mappings = [], [], {}, {}, {}
    for number, value in fields(data):
        if number == 6:
            strings.append(value.decode("utf-8", "replace"))
        elif number == 2:
            location_ids, values = [], []
            for field, item in fields(value):
                if field == 1:
                    location_ids += packed_or_single(item)
                elif field == 2:
                    values += packed_or_single(item)
            samples.append((location_ids, values[0] if values else 0))
        elif number == 4:
            location = {"mapping": 0, "lines": []}
            for field, item in fields(value):
                if field == 1:
                    location["id"] = item
                elif field == 2:
                    location["mapping"] = item
                elif field == 4:
                    line = dict(fields(item))
                    location["lines"].append((line.get(1, 0), line.get(2, 0)))
            locations[location.get("id", 0)] = location
        elif number == 5:
            function = dict(fields(value))
            functions[function.get(1, 0)] = (function.get(2, 0), function.get(4, 0))
        elif number == 3:
            mapping = dict(fields(value))
            mappings[mapping.get(1, 0)] = mapping.get(5, 0)

    def frames_of(location_id):
        location = locations[location_id]
        library = os.path.basename(strings[mappings.get(location["mapping"], 0)])
        # A location's lines are its inline chain, innermost first.
        for function_id, line in location["lines"]:
            name_index, file_index = functions[function_id]
            name, file = strings[name_index], strings[file_index]
            if name == UNKNOWN_PYTHON or is_python_file(file):
                yield Frame(name, file or None, line, True, f"{name} ({file}:{line})")
            else:
                yield Frame(name, None, 0, False, f"{name} ({library})" if library else name)
        if not location["lines"]:
            yield Frame("[unsymbolized]", None, 0, False, f"[unsymbolized] ({library})")

    stacks = []
    for location_ids, count in samples:
        leaf_first = [frame for location_id in location_ids for frame in frames_of(location_id)]
        stacks.append((leaf_first[::-1], count))
    return stacks


def read_profile(path):
    return read_pprof(path) if path.endswith((".pb.gz", ".pb")) else read_folded(path)


# --- Function extents from the sources. ---


class Sources:
    def __init__(self, source_dir):
        self.source_dir = source_dir
        self.extents = {}

    def resolve(self, file):
        if os.path.isabs(file) or not self.source_dir:
            return file
        return os.path.join(self.source_dir, file)

    def functions(self, file):
        """{name: [(first line, last line)]} of `file`, or None when it cannot be read."""
        path = self.resolve(file)
        if path not in self.extents:
            try:
                text = open(path, encoding="utf-8").read()
                tree = ast.parse(text)
            except (OSError, SyntaxError, ValueError):
                self.extents[path] = None
                return None
            table = {"<module>": [(1, max(1, text.count("\n") + 1))]}
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
                    name = "<lambda>" if isinstance(node, ast.Lambda) else node.name
                    table.setdefault(name, []).append((first, node.end_lineno))
                elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                    name = {ast.ListComp: "<listcomp>", ast.SetComp: "<setcomp>"}.get(type(node))
                    name = name or {ast.DictComp: "<dictcomp>"}.get(type(node), "<genexpr>")
                    table.setdefault(name, []).append((node.lineno, node.end_lineno))
            self.extents[path] = table
        return self.extents[path]

    def line_inside(self, frame):
        """True or False when the file can be read; None when it cannot (the line is then only > 0)."""
        if not frame.file or frame.line <= 0 or frame.name == UNKNOWN_PYTHON:
            return False
        table = self.functions(frame.file)
        if table is None:
            return None
        # py-spy names a frame by co_name, flamespan by co_qualname (Handler.do_GET): match the last part.
        name = frame.name.rsplit(".", 1)[-1]
        return any(first <= frame.line <= last for first, last in table.get(name, []))


# --- The figures. ---


def in_file(frame, base):
    return frame.file is not None and os.path.basename(frame.file) == base


def chain_in_order(python_frames):
    expected = CHAIN_HEAD + [("recurse", LIB_FILE)] * RECURSION_DEPTH + CHAIN_TAIL
    for index, frame in enumerate(python_frames):
        if index < len(expected):
            name, base = expected[index]
            if frame.name != name or not in_file(frame, base):
                return False
        elif index == len(expected):
            # The first unit's report_stack runs traceback's own frames below it.
            if frame.name.rsplit(".", 1)[-1] == "report_stack" and in_file(frame, MAIN_FILE):
                return True
            if not any(frame.name == n and in_file(frame, b) for n, b in CHAIN_LEAVES):
                return False
        else:
            return False
    return True


def figures(stacks, sources):
    interpreter = named = unverified = chain_selected = chain_good = hash_selected = hash_good = 0
    for frames, count in stacks:
        python = [frame for frame in frames if frame.python]
        if python or any(frame.name == "_PyEval_EvalFrameDefault" for frame in frames):
            interpreter += count
            verdict = sources.line_inside(python[-1]) if python else False
            if verdict is None:
                unverified += count
            if verdict is not False:
                named += count
        if any(frame.name in CHAIN_NAMES for frame in python):
            chain_selected += count
            if chain_in_order(python):
                chain_good += count
        if python and python[-1].name == "hash_block":
            hash_selected += count
            below = frames[frames.index(python[-1]) + 1 :]
            if any(not frame.python and OPENSSL.search(frame.text) for frame in below):
                hash_good += count
    return [(named, interpreter), (chain_good, chain_selected), (hash_good, hash_selected)], unverified


def percent(part, whole):
    return 100.0 * part / whole if whole else 0.0


def main(arguments):
    source_dir = None
    if arguments[:1] == ["--source-dir"]:
        source_dir, arguments = arguments[1], arguments[2:]
    if arguments[:1] == ["--folded"] and len(arguments) == 2:
        for frames, count in read_pprof(arguments[1]):
            print(";".join(frame.text for frame in frames), count)
        return 0
    if not arguments:
        print(__doc__, file=sys.stderr)
        return 2
    sources = Sources(source_dir)
    labels = ("function+line in the interpreter", "chain in order", "native under hash_block")
    print(f"{'profile':<36} " + " ".join(f"{label:>34}" for label in labels))
    status = 0
    # Sums over the runs of each profiler: py-spy's raw files and flamespan's pprof files.
    totals = {}
    for path in arguments:
        try:
            stacks = read_profile(path)
        except (OSError, ValueError, IndexError, KeyError) as error:
            print(f"figures.py: cannot read {path}: {error}", file=sys.stderr)
            return 2
        rows, unverified = figures(stacks, sources)
        gated = path.endswith((".pb.gz", ".pb"))
        kind = "all flamespan runs" if gated else "all py-spy runs"
        totals[kind] = [(a + c, b + d) for (a, b), (c, d) in zip(totals.get(kind, [(0, 0)] * 3), rows)]
        print_row(os.path.basename(path), rows)
        if unverified:
            print(f"  ({unverified} samples in files that could not be read: lines only checked > 0)")
        for (part, whole), goal, label in zip(rows, GOALS, labels):
            if gated and (whole == 0 or percent(part, whole) < goal):
                print(f"  misses the goal: {label} {percent(part, whole):.2f}% < {goal}%")
                status = 1
    if len(arguments) > 1:
        for kind, rows in totals.items():
            print_row(kind, rows)
    return status


def print_row(label, rows):
    cells = [f"{percent(a, b):6.2f}% ({a}/{b})" for a, b in rows]
    print(f"{label:<36} " + " ".join(f"{cell:>34}" for cell in cells))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
