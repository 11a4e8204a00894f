import FlamespanModel
import FlamespanProcess
import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanRuntimes

/// A real CPython process for the plug-in's tests: Debian's /usr/bin/python3 (3.11.2) running a script
/// of two files, which reports, for every code object it defines, its address (`id`), its bytecode
/// length, its first traceable instruction and its line of every code unit (`co_lines`), and, from a
/// worker thread stopped in a known call chain, `traceback.extract_stack()` and the qualified names of
/// that chain; then it sleeps, so the process can be read while it stays as reported.
final class CPythonFixture: @unchecked Sendable {
  static let python = "/usr/bin/python3.11"

  /// What the script prints as its `report` line.
  struct Report: Decodable {
    struct Code: Decodable {
      var id: UInt64
      var qualname: String
      var file: String
      var units: Int
      var firstTraceable: Int
      /// (start byte, end byte, line or nil) from `co_lines()`.
      var lines: [[Int?]]

      enum CodingKeys: String, CodingKey {
        case id, qualname, file, units, lines
        case firstTraceable = "first_traceable"
      }

      /// The line `co_lines` gives code unit `unit`: nil when it has none; a unit it does not cover
      /// fails the test.
      func expectedLine(unit: Int) throws -> Int? {
        let entry = try #require(
          lines.first { ($0[0] ?? 0) <= unit * 2 && unit * 2 < ($0[1] ?? 0) },
          "co_lines of \(qualname) does not cover unit \(unit)")
        return entry[2]
      }
    }
    struct StackEntry: Decodable {
      var name: String
      var qualname: String
      var file: String
      var line: Int
    }
    var codes: [Code]
    /// The worker's stack, outermost first: traceback.extract_stack()'s name, file and line, and the
    /// qualified name of the same frame's code.
    var stack: [StackEntry]
    var workerNativeID: Int32
    /// A live str object: an address of the wrong type for a code object.
    var strID: UInt64

    enum CodingKeys: String, CodingKey {
      case codes, stack
      case workerNativeID = "worker_native_id"
      case strID = "str_id"
    }
  }

  static let mainScript = #"""
    import dis, importlib.util, json, os, sys, threading, time, traceback

    here = os.path.dirname(os.path.abspath(__file__))
    # A file name outside the BMP makes co_filename a UCS4 string.
    spec = importlib.util.spec_from_file_location("helpers", os.path.join(here, "hëlpers_𝔣.py"))
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)

    class Shape:
        def area(self, side):
            total = 0
            for step in range(side):
                total += step * side
            return total

    def größe(values):
        return [value * 2 for value in values]

    def outer(n):
        captured = n
        def inner(k):
            return k + captured
        return inner(n)

    def counter(limit):
        for index in range(limit):
            yield index

    stack_ready = threading.Event()
    reported = {}

    def h(x):
        reported["stack"] = chain(traceback.extract_stack(), sys._getframe()); stack_ready.set(); time.sleep(10**6)

    def g(x):
        return h(x)

    def worker():
        list(map(g, [1]))

    def chain(summaries, frame):
        qualnames = []
        while frame is not None:
            qualnames.append(frame.f_code.co_qualname)
            frame = frame.f_back
        qualnames.reverse()
        reported["worker_native_id"] = threading.get_native_id()
        return [{"name": s.name, "qualname": q, "file": s.filename, "line": s.lineno}
                for s, q in zip(summaries, qualnames, strict=True)]

    def describe(code):
        resume = next(i.offset for i in dis.get_instructions(code) if i.opname == "RESUME")
        return {"id": id(code), "qualname": code.co_qualname, "file": code.co_filename,
                "units": len(code.co_code) // 2, "first_traceable": resume // 2,
                "lines": [[start, end, line] for start, end, line in code.co_lines()]}

    def all_codes():
        found = []
        def visit(code):
            found.append(code)
            for constant in code.co_consts:
                if isinstance(constant, type(code)):
                    visit(constant)
        for function in [Shape.area, größe, outer, counter, h, g, worker, chain, describe,
                         helpers.計算, helpers.walk, helpers.Node.depth]:
            visit(function.__code__)
        return found

    threading.Thread(target=worker, daemon=True).start()
    stack_ready.wait()
    print("report " + json.dumps({"codes": [describe(c) for c in all_codes()],
                                  "stack": reported["stack"],
                                  "worker_native_id": reported["worker_native_id"],
                                  "str_id": id(Shape.area.__qualname__)}), flush=True)
    time.sleep(10**6)
    """#

  static let helperScript = #"""
    def 計算(n):
        total = 0
        for i in range(n):
            total += i
        return total

    def walk(depth):
        if depth == 0:
            return 0
        return walk(depth - 1) + 1

    class Node:
        def depth(self):
            try:
                return 1 + max(child.depth() for child in self.children)
            except ValueError:
                return 1
    """#

  let directory: TemporaryDirectory
  let process: BackgroundProcess
  let report: Report
  /// With a start gate: the plug-in as attached before the interpreter was initialized.
  private(set) var beforeStart: CPythonProcess?
  /// Its sampler layout then.
  private(set) var layoutBeforeStart: CPythonWalkLayout?

  /// A C program that embeds CPython through Debian's libpython3.11.so and runs the script as
  /// `__main__`: the interpreter is then a shared library, loaded at an address of its own.
  static let embeddingProgram = #"""
    #include <Python.h>
    #include <unistd.h>

    int main(int argc, char **argv) {
      if (argc != 2 && argc != 3) return 2;
      // With a second argument, wait for that file before starting the interpreter, so that a test can
      // attach to a process whose interpreter is not initialized yet.
      if (argc == 3) {
        puts("waiting");
        fflush(stdout);
        while (access(argv[2], F_OK) != 0) usleep(10000);
      }
      Py_Initialize();
      PyObject *runpy = PyImport_ImportModule("runpy");
      PyObject *result = runpy ? PyObject_CallMethod(runpy, "run_path", "sOs", argv[1], Py_None, "__main__") : NULL;
      if (result == NULL) PyErr_Print();
      return result == NULL;
    }
    """#

  /// Starts the script in Debian's python3.11, or, with `embedded`, in a C program built against
  /// libpython3.11.so.
  init(embedded: Bool = false, startGate: String? = nil, python: String = CPythonFixture.python)
    throws
  {
    directory = try TemporaryDirectory("cpython")
    let main = directory.url.appendingPathComponent("main_prog.py")
    try Data(Self.mainScript.utf8).write(to: main)
    try Data(Self.helperScript.utf8).write(
      to: directory.url.appendingPathComponent("hëlpers_𝔣.py"))
    var arguments = [python, "-u", main.path]
    if embedded {
      let source = directory.url.appendingPathComponent("embed.c")
      let program = directory.url.appendingPathComponent("embed")
      try Data(Self.embeddingProgram.utf8).write(to: source)
      let flags = try Run.checked([
        "/usr/bin/python3.11-config", "--embed", "--cflags", "--ldflags",
      ])
      .split(whereSeparator: \.isWhitespace).map(String.init)
      try Run.checked(["cc", source.path, "-o", program.path] + flags)
      arguments = [program.path, main.path] + (startGate.map { [$0] } ?? [])
    }
    process = try BackgroundProcess(arguments, label: "python")
    if let startGate {
      guard process.waitForLine(startingWith: "waiting", seconds: 30) != nil else {
        throw TestFailure("\(arguments[0]) did not start: \(process.stderr)")
      }
      // Attached here, before the interpreter exists; then let it start.
      beforeStart = try Self.attach(pid: process.pid, CPythonRuntime())
      layoutBeforeStart = beforeStart?.samplerLayout
      guard FileManager.default.createFile(atPath: startGate, contents: nil) else {
        throw TestFailure("cannot create \(startGate)")
      }
    }
    guard let line = process.waitForLine(startingWith: "report ", seconds: 30) else {
      throw TestFailure("\(arguments[0]) did not report: \(process.stderr)")
    }
    report = try JSONDecoder().decode(Report.self, from: Data(line.dropFirst(7).utf8))
  }

  var pid: Int32 { process.pid }

  /// The plug-in attached to the process as the recorder does: from its executable mappings.
  func attach(_ runtime: CPythonRuntime = CPythonRuntime()) throws -> CPythonProcess {
    try Self.attach(pid: pid, runtime)
  }

  static func attach(pid: Int32, _ runtime: CPythonRuntime) throws -> CPythonProcess {
    let maps = try ProcessInspector.readMaps(pid: pid)
    let attached = try #require(runtime.attach(pid: pid, maps: maps), "python was not detected")
    return try #require(attached as? CPythonProcess)
  }

  deinit { process.stop() }
}

/// Reads the process as the sampler does: the stamp of a code object, and a thread's frame chain.
struct SamplerEmulation {
  let memory: ProcessMemory
  let layout: CPythonWalkLayout

  func stamp(ofCode code: UInt64) throws -> UInt32 {
    try memory.readUInt32(code + UInt64(layout.codeStamp))
  }

  /// The frame chain from `threadState`, innermost first, the way the BPF walk records it.
  func frames(threadState: UInt64) throws -> [InterpreterFrameRecord] {
    var frame: UInt64
    if let currentFrame = layout.threadStateCurrentFrame {
      frame = try memory.readUInt64(threadState + UInt64(currentFrame))
    } else {
      let cframeOffset = try #require(layout.threadStateCFrame)
      let currentFrameOffset = try #require(layout.cframeCurrentFrame)
      let cframe = try memory.readUInt64(threadState + UInt64(cframeOffset))
      frame = try memory.readUInt64(cframe + UInt64(currentFrameOffset))
    }
    var records: [InterpreterFrameRecord] = []
    while frame != 0, records.count < 64 {
      let code = try memory.readUInt64(frame + UInt64(layout.frameCode))
      let instruction = try memory.readUInt64(frame + UInt64(layout.frameInstruction))
      let owner = try memory.read(frame + UInt64(layout.frameOwner), count: 1)[0]
      let isEntry = try layout.frameIsEntry.map {
        try memory.read(frame + UInt64($0), count: 1)[0] != 0
      }
      records.append(
        InterpreterFrameRecord(
          code: code, instruction: instruction, stamp: try stamp(ofCode: code), owner: owner,
          isEntry: isEntry ?? false))
      frame = try memory.readUInt64(frame + UInt64(layout.framePrevious))
    }
    return records
  }
}
