import FlamespanBPF
import FlamespanELF
import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

/// The sampler walking the frame chain of a real CPython 3.11 (Debian's /usr/bin/python3) at sample
/// time. The script prints each function's code object address (`id()` is the address in CPython), so
/// every sampled frame can be checked against the code that was really running.
@Suite(.serialized, .requires(.bpf, .root, .file(PythonWorkload.interpreter)))
struct PythonWalkTests {
  @Test func walksTheRunningChainInnermostFirstWithItsEvalLoopEntries() throws {
    let python = try PythonWorkload(depth: 10)
    let sampler = try CPUSampler(
      configuration: SamplerConfiguration(
        frequency: 199, pids: [python.pid], userStackCopyBytes: 512))
    defer { sampler.close() }

    // Not yet published: the sampler must leave the process's samples without interpreter frames.
    let beforePublishing = try python.collect(from: sampler, seconds: 0.4)
    #expect(beforePublishing.contains { $0.tid == python.pid })
    #expect(beforePublishing.allSatisfy { $0.interpreterStack == nil })
    #expect(sampler.counters().pythonStacks == 0)

    let publishedAt = monotonicNanos()
    try sampler.publishInterpreter(pid: python.pid, layout: python.layout)
    let published = try python.collect(from: sampler, seconds: 1.5).filter {
      $0.timeNanos > publishedAt && $0.tid == python.pid
    }
    let withdrawnAt = monotonicNanos()
    sampler.withdrawInterpreter(pid: python.pid)
    let afterWithdrawing = try python.collect(from: sampler, seconds: 0.4).filter {
      $0.timeNanos > withdrawnAt
    }

    // spin ← a(0) ← b(1) … ← b(5), which calls a(4) through map(): the eval loop entered again, so a(4)
    // is an entry frame, as is the module's frame, which the interpreter ran from C.
    var expected: [(code: UInt64, isEntry: Bool)] = [(python.codes.spin, false)]
    for n in 0...10 {
      let code = n % 2 == 0 ? python.codes.a : python.codes.b
      expected.append((code, n == 4))
    }
    expected.append((python.codes.module, true))

    #expect(published.count >= 50, "only \(published.count) samples of the spinning thread")
    for sample in published {
      guard let stack = sample.interpreterStack else {
        Issue.record("a sample of the published process came without its Python frames")
        continue
      }
      #expect(stack.status == .complete)
      #expect(stack.threadState != 0)
      let got = stack.frames.map { (code: $0.code, isEntry: $0.isEntry) }
      #expect(got.map(\.code) == expected.map(\.code))
      #expect(got.map(\.isEntry) == expected.map(\.isEntry))
      // The stamp is co_firstlineno, read from the live code object.
      let lines = stack.frames.map(\.stamp)
      #expect(lines.first == python.codes.spinLine)
    }
    // Every walked chain started at the same thread state: the main thread's.
    #expect(Set(published.compactMap { $0.interpreterStack?.threadState }).count == 1)
    let counters = sampler.counters()
    #expect(counters.pythonStacks >= UInt64(published.count))
    #expect(counters.pythonTruncated == 0)
    #expect(counters.pythonReadFailed == 0)

    #expect(!afterWithdrawing.isEmpty)
    #expect(afterWithdrawing.allSatisfy { $0.interpreterStack == nil })
  }

  @Test func eachThreadShowsItsOwnChain() throws {
    let python = try PythonWorkload(depth: 2, withWorkerThread: true)
    let sampler = try CPUSampler(
      configuration: SamplerConfiguration(
        frequency: 199, pids: [python.pid], userStackCopyBytes: 512))
    defer { sampler.close() }
    let publishedAt = monotonicNanos()
    try sampler.publishInterpreter(pid: python.pid, layout: python.layout)
    let samples = try python.collect(from: sampler, seconds: 2.0).filter {
      $0.timeNanos > publishedAt
    }
    let worker = try #require(python.workerTID)
    let main = samples.filter { $0.tid == python.pid }
    let workers = samples.filter { $0.tid == worker }
    // The two threads share the GIL, so each runs about half the time.
    #expect(main.count >= 20 && workers.count >= 20, "main \(main.count), worker \(workers.count)")

    let mainChain: [UInt64] = [
      python.codes.spin, python.codes.a, python.codes.b, python.codes.a, python.codes.module,
    ]
    for sample in main {
      #expect(sample.interpreterStack?.frames.map(\.code) == mainChain)
    }
    let mainCodes: Set<UInt64> = [python.codes.a, python.codes.b, python.codes.spin]
    for sample in workers {
      guard let stack = sample.interpreterStack else {
        Issue.record("a sample of the worker thread came without its Python frames")
        continue
      }
      #expect(stack.status == .complete)
      // worker_inner ← worker_outer ← threading's run, _bootstrap_inner and _bootstrap.
      #expect(
        Array(stack.frames.prefix(2).map(\.code)) == [
          python.codes.workerInner, python.codes.workerOuter,
        ])
      #expect(stack.frames.count == 5)
      #expect(!stack.frames.contains { mainCodes.contains($0.code) })
      // threading's bootstrap is called from C, so the outermost frame entered the eval loop.
      #expect(stack.frames.last?.isEntry == true)
    }
    let mainStates = Set(main.compactMap { $0.interpreterStack?.threadState })
    let workerStates = Set(workers.compactMap { $0.interpreterStack?.threadState })
    #expect(mainStates.count == 1 && workerStates.count == 1)
    #expect(mainStates.isDisjoint(with: workerStates))
  }

  @Test func aChainDeeperThanTheWalkIsTruncatedAndCounted() throws {
    let python = try PythonWorkload(depth: 100)
    let sampler = try CPUSampler(
      configuration: SamplerConfiguration(
        frequency: 199, pids: [python.pid], userStackCopyBytes: 512))
    defer { sampler.close() }
    let publishedAt = monotonicNanos()
    try sampler.publishInterpreter(pid: python.pid, layout: python.layout)
    let samples = try python.collect(from: sampler, seconds: 1.0).filter {
      $0.timeNanos > publishedAt && $0.tid == python.pid
    }
    #expect(samples.count >= 30)
    for sample in samples {
      guard let stack = sample.interpreterStack else {
        Issue.record("a sample of the published process came without its Python frames")
        continue
      }
      #expect(stack.status == .truncated)
      #expect(stack.frames.count == 64)
      // The innermost frames are kept: spin, then a(0), b(1), a(2), …
      var expected = [python.codes.spin]
      for n in 0..<63 { expected.append(n % 2 == 0 ? python.codes.a : python.codes.b) }
      #expect(stack.frames.map(\.code) == expected)
    }
    #expect(sampler.counters().pythonTruncated >= UInt64(samples.count))
  }

  @Test func aWrongTSSAddressIsAReadFailureNotAChain() throws {
    let python = try PythonWorkload(depth: 2)
    let sampler = try CPUSampler(
      configuration: SamplerConfiguration(
        frequency: 199, pids: [python.pid], userStackCopyBytes: 512))
    defer { sampler.close() }
    var layout = python.layout
    layout.tssAddress = 8  // the first page is never mapped
    let publishedAt = monotonicNanos()
    try sampler.publishInterpreter(pid: python.pid, layout: layout)
    let samples = try python.collect(from: sampler, seconds: 0.6).filter {
      $0.timeNanos > publishedAt && $0.tid == python.pid
    }
    #expect(!samples.isEmpty)
    for sample in samples {
      #expect(sample.interpreterStack?.status == .readFailed(errno: EFAULT))
      #expect(sample.interpreterStack?.frames.isEmpty == true)
    }
    #expect(sampler.counters().pythonReadFailed >= UInt64(samples.count))
    #expect(sampler.counters().pythonStacks == 0)
  }

  @Test func rejectsLayoutsTheWalkCannotFollow() throws {
    let sampler = try CPUSampler(
      configuration: SamplerConfiguration(frequency: 99, pids: [getpid()], userStackCopyBytes: 512))
    defer { sampler.close() }
    let good = PythonWorkload.layout311(tssAddress: 0x1000)
    var outsideTheWindow = good
    outsideTheWindow.framePrevious = 72
    var bothWays = good
    bothWays.threadStateCurrentFrame = 80
    var neither = good
    neither.threadStateCFrame = nil
    neither.cframeCurrentFrame = nil
    for layout in [outsideTheWindow, bothWays, neither] {
      #expect(throws: BPFError.self) {
        try sampler.publishInterpreter(pid: getpid(), layout: layout)
      }
    }
    try sampler.publishInterpreter(pid: getpid(), layout: good)
    sampler.withdrawInterpreter(pid: getpid())
    sampler.withdrawInterpreter(pid: getpid())  // twice is no error
  }
}

func monotonicNanos() -> UInt64 {
  var now = timespec()
  clock_gettime(CLOCK_MONOTONIC, &now)
  return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// /usr/bin/python3 running a known recursion, stopped when the test drops it.
final class PythonWorkload {
  static let interpreter = "/usr/bin/python3"

  struct Codes: Decodable {
    var a: UInt64
    var b: UInt64
    var spin: UInt64
    var module: UInt64
    var workerInner: UInt64
    var workerOuter: UInt64
    var spinLine: UInt32
    /// Where the interpreter itself has `_PyRuntime` (ctypes), to check the address the test computes.
    var runtime: UInt64
  }

  let directory: TemporaryDirectory
  let process: BackgroundProcess
  let codes: Codes
  let layout: CPythonWalkLayout
  /// The worker thread's tid, when the script started one.
  let workerTID: Int32?
  var pid: Int32 { process.pid }

  /// a(depth) → b(depth-1) → a … → a(0) → spin(); b(5) calls a(4) through map(), from C. With a worker
  /// thread: worker_outer → worker_inner, spinning too. Returns once every thread spins.
  init(depth: Int, withWorkerThread: Bool = false) throws {
    directory = try TemporaryDirectory("python-walk")
    let script = directory.file("walk.py")
    try Self.script.write(toFile: script, atomically: true, encoding: .utf8)
    var arguments = [Self.interpreter, script, String(depth)]
    if withWorkerThread { arguments.append("--worker") }
    process = try BackgroundProcess(arguments, logs: directory.url, label: "python")
    guard let line = process.waitForLine(startingWith: "codes ") else {
      throw TestFailure("python did not print its code addresses: \(process.stderr)")
    }
    codes = try JSONDecoder().decode(
      Codes.self, from: Data(line.dropFirst("codes ".count).utf8))
    guard process.waitForLine(startingWith: "spinning") != nil else {
      throw TestFailure("python did not reach its spin loop: \(process.stderr)")
    }
    if withWorkerThread {
      guard let worker = process.waitForLine(startingWith: "worker spinning "),
        let tid = Int32(worker.dropFirst("worker spinning ".count))
      else { throw TestFailure("python's worker thread did not start: \(process.stderr)") }
      workerTID = tid
    } else {
      workerTID = nil
    }
    let runtime = try Self.runtimeAddress(pid: process.pid)
    guard runtime == codes.runtime else {
      throw TestFailure(
        "_PyRuntime from .dynsym and the load bias is \(runtime), the interpreter has it at \(codes.runtime)"
      )
    }
    layout = Self.layout311(tssAddress: runtime + 592)
  }

  /// CPython 3.11 on x86-64 (release build; checked with gdb against a libpython with DWARF) and glibc
  /// 2.36's thread-specific data: key k's value is at fsbase + 0x318 + 16 k, for k < 32.
  static func layout311(tssAddress: UInt64) -> CPythonWalkLayout {
    CPythonWalkLayout(
      tssAddress: tssAddress, tsdDataOffset: 0x318, tsdStride: 16, tsdKeyLimit: 32,
      threadStateCFrame: 56, cframeCurrentFrame: 8, threadStateCurrentFrame: nil,
      frameCode: 32, framePrevious: 48, frameInstruction: 56, frameOwner: 69, frameIsEntry: 68,
      codeStamp: 72)
  }

  /// Samples of this process for `seconds`.
  func collect(from sampler: CPUSampler, seconds: TimeInterval) throws -> [RawSample] {
    var samples: [RawSample] = []
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
      try sampler.poll(timeoutMilliseconds: 100) { event in
        if case .sample(let sample) = event, sample.pid == pid { samples.append(sample) }
      }
    }
    return samples
  }

  /// `_PyRuntime` in the running process: its .dynsym value plus the executable's load bias.
  static func runtimeAddress(pid: Int32) throws -> UInt64 {
    let path = try #require(
      realpath(interpreter, nil).map { pointer in
        defer { free(pointer) }
        return String(cString: pointer)
      })
    let file = try #require(FileBytes(path: path))
    let elf = try ELFFile(read: file.read)
    let symbol = try #require(try dynamicSymbol("_PyRuntime", in: elf, file: file))
    let firstSegment = try #require(elf.segments.first { $0.fileOffset == 0 })
    let maps = try String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)
    // The mapping of the file's start: its address less the segment's page-aligned link address.
    let start = try #require(
      maps.split(separator: "\n").lazy.compactMap { line -> UInt64? in
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 6, fields[5] == path, UInt64(fields[2], radix: 16) == 0 else {
          return nil
        }
        return UInt64(fields[0].split(separator: "-")[0], radix: 16)
      }.first)
    return start - (firstSegment.virtualAddress & ~0xfff) + symbol
  }

  /// The value of a defined symbol in .dynsym (Elf64_Sym: name u32, info u8, other u8, shndx u16,
  /// value u64, size u64).
  static func dynamicSymbol(_ name: String, in elf: ELFFile, file: FileBytes) throws -> UInt64? {
    let symbols = try #require(elf.section(named: ".dynsym"))
    let strings = try #require(elf.section(named: ".dynstr"))
    let table = try #require(file.read(symbols.fileOffset, Int(symbols.size)))
    let names = try #require(file.read(strings.fileOffset, Int(strings.size)))
    let wanted = Array(name.utf8)
    for start in stride(from: 0, to: table.count - 23, by: 24) {
      func little(_ offset: Int, _ count: Int) -> UInt64 {
        (0..<count).reduce(0) { $0 | UInt64(table[start + offset + $1]) << (8 * $1) }
      }
      let nameOffset = Int(little(0, 4))
      let section = little(6, 2)
      guard section != 0, nameOffset + wanted.count < names.count,
        Array(names[nameOffset..<(nameOffset + wanted.count)]) == wanted,
        names[nameOffset + wanted.count] == 0
      else { continue }
      return little(8, 8)
    }
    return nil
  }

  private static let script = """
    import ctypes, json, sys, threading

    def a(n):
        if n == 0:
            return spin()
        return b(n - 1)

    def b(n):
        if n == 5:
            # Called from C (map's next), so the eval loop is entered anew for a(4).
            return next(map(a, [n - 1]))
        return a(n - 1)

    def spin():
        print("spinning", flush=True)
        x = 0
        while True:
            x += 1

    def worker_inner():
        print("worker spinning", threading.get_native_id(), flush=True)
        x = 0
        while True:
            x += 1

    def worker_outer():
        worker_inner()

    sys.setrecursionlimit(10000)
    print("codes " + json.dumps({
        "a": id(a.__code__), "b": id(b.__code__), "spin": id(spin.__code__),
        "module": id(sys._getframe().f_code), "workerInner": id(worker_inner.__code__),
        "workerOuter": id(worker_outer.__code__), "spinLine": spin.__code__.co_firstlineno,
        "runtime": ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime")),
    }), flush=True)
    if "--worker" in sys.argv:
        threading.Thread(target=worker_outer, daemon=True).start()
    a(int(sys.argv[1]))
    """
}
