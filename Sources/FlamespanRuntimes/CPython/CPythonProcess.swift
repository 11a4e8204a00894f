import FlamespanModel
import FlamespanProcess
import Foundation

/// The CPython plug-in's view of one process: where its interpreter is loaded, the layout the sampler
/// walks it by (once the interpreter is initialized and the thread-state lookup is confirmed), and the
/// code objects its frames were named from. A new attach (the process exec'd) starts with an empty cache.
final class CPythonProcess: InterpreterRuntimeProcess, @unchecked Sendable {
  let pid: Int32
  let binary: CPythonBinary
  /// What the interpreter's link-time addresses are moved by in this process.
  let loadBias: UInt64
  let memory: ProcessMemory
  /// The TSD layout read off the process's own `pthread_getspecific`, tried before glibc's constants.
  let decodedTSD: ThreadSpecificDataLayout?

  /// How the thread-state lookup was confirmed on a live thread: the sampler gets a layout only then.
  struct ThreadStateCheck: Sendable, Hashable {
    /// The interpreter's TSS key.
    var key: UInt32
    var threadStatesChecked: Int
    /// Thread states found where the TSD layout says, through their own thread's fs base.
    var threadStatesConfirmed: Int
    var tsd: ThreadSpecificDataLayout
    /// Whether `tsd` was decoded from the process's `pthread_getspecific` (else: glibc's constants).
    var decodedFromLibrary: Bool
  }

  private let lock = NSLock()
  private var offsets: CPythonOffsets?
  private var layout: CPythonWalkLayout?
  private var check: ThreadStateCheck?
  /// Why the process cannot be walked; once set, it is final (until a new attach).
  private var problem: String?
  private var cache: CodeObjectCache
  private var unknownCount = 0

  static let unknownFrameName = "[unknown Python frame]"
  /// Bounds on the interpreter and thread lists walked to confirm the TSD layout: a corrupt list must
  /// not loop.
  static let maximumInterpreters = 64
  static let maximumThreadStates = 4096

  /// `offsets`, when given, replaces what the version would choose (tests of other versions' rules).
  init(
    pid: Int32, binary: CPythonBinary, loadBias: UInt64, codeCacheCapacity: Int,
    decodedTSD: ThreadSpecificDataLayout? = nil, offsets: CPythonOffsets? = nil
  ) {
    self.offsets = offsets
    self.decodedTSD = decodedTSD
    self.pid = pid
    self.binary = binary
    self.loadBias = loadBias
    memory = ProcessMemory(pid: pid)
    cache = CodeObjectCache(capacity: codeCacheCapacity)
  }

  var runtimeName: String { "cpython" }
  var versionDescription: String { binary.versionDescription }
  var samplerLayout: CPythonWalkLayout? { lock.withLock { layout } }
  var problems: String? { lock.withLock { problem } }
  var unknownFrames: Int { lock.withLock { unknownCount } }
  var threadStateCheck: ThreadStateCheck? { lock.withLock { check } }
  /// The offsets in use: tabled, or read from `_Py_DebugOffsets`; nil until known.
  var resolvedOffsets: CPythonOffsets? { lock.withLock { offsets } }

  /// The runtime address of a symbol of the interpreter.
  func address(of symbol: DynamicSymbolLookup.Symbol) -> UInt64 { symbol.value &+ loadBias }

  // The eval loop is unwound by its CFI like any native code, and named by the symbolizer.
  func owns(pc: UInt64, mapping: Mapping?) -> Bool { false }
  func step(_ frame: FrameRegisters, memory: StackMemory) -> RuntimeStep {
    .stop(.noCFI, detail: "the CPython plug-in does not unwind native code")
  }
  func symbolize(address: UInt64, mapping: Mapping?) -> RuntimeSymbol? { nil }

  func isEvalLoop(address: UInt64, mapping: Mapping?) -> Bool {
    guard let symbol = binary.symbols.evalFrame, symbol.size > 0 else { return false }
    let start = self.address(of: symbol)
    return address >= start && address - start < symbol.size
  }

  // MARK: The sampler's layout

  /// Looks for the layout while there is none and nothing ruled it out: the interpreter is initialized
  /// some time after exec, so the first attach usually finds its TSS key not yet created.
  func refresh() {
    lock.withLock {
      guard layout == nil, problem == nil else { return }
      do throws(CPythonProblem) {
        try establishLayout()
      } catch {
        problem = "\(versionDescription): \(error.description), native frames only"
      }
    }
  }

  private func establishLayout() throws(CPythonProblem) {
    guard let version = binary.version else {
      throw CPythonProblem("version not supported")
    }
    let runtime = address(of: binary.symbols.runtime)
    let offsets: CPythonOffsets
    if let known = self.offsets {
      offsets = known
    } else {
      offsets = try resolveOffsets(version: version, runtime: runtime)
      self.offsets = offsets
    }
    guard binary.symbols.codeType != nil else {
      throw CPythonProblem("PyCode_Type is not exported, so code objects cannot be checked")
    }
    let tssAddress = runtime &+ offsets.runtimeAutoTSSKey
    let tss: [UInt8]
    do {
      tss = try memory.read(tssAddress, count: 8)
    } catch {
      if error.kind == .permissionDenied { throw CPythonProblem("\(error)") }
      return  // gone, or not mapped yet: nothing to walk now
    }
    guard littleEndian(tss, 0, 4) != 0 else { return }  // not initialized yet
    let key = UInt32(truncatingIfNeeded: littleEndian(tss, 4, 4))
    var candidates = [(ThreadSpecificDataLayout.glibcX8664, false)]
    if let decodedTSD {
      candidates.insert((decodedTSD, true), at: 0)
    }
    var checked = 0
    for (tsd, decoded) in candidates where key < tsd.keyLimit {
      var found = confirmThreadSpecificData(
        runtime: runtime, offsets: offsets, key: key, tsd: tsd)
      guard found.threadStatesChecked > 0 else { return }  // no thread yet
      checked = found.threadStatesChecked
      guard found.threadStatesConfirmed > 0 else { continue }
      found.decodedFromLibrary = decoded
      check = found
      layout = offsets.walkLayout(tssAddress: tssAddress, tsd: tsd)
      return
    }
    guard checked > 0 else {
      throw CPythonProblem(
        "the thread-state TSS key \(key) is in glibc's second-level block, which is not followed")
    }
    throw CPythonProblem(
      "none of \(checked) thread states is where glibc's x86-64 TSD layout puts it, so threads "
        + "cannot be matched with their frames")
  }

  private func resolveOffsets(version: CPythonVersion, runtime: UInt64) throws(CPythonProblem)
    -> CPythonOffsets
  {
    if let tabled = CPythonOffsets.tabled(minor: version.minor), version.major == 3 {
      return tabled
    }
    guard version.major == 3, version.minor >= 13 else {
      throw CPythonProblem("version not supported")
    }
    let bytes: [UInt8]
    do {
      bytes = try memory.read(runtime, count: CPythonDebugOffsets.readBytes)
    } catch {
      throw CPythonProblem("_Py_DebugOffsets unreadable: \(error)")
    }
    return try CPythonDebugOffsets.offsets(from: bytes, version: version)
  }

  /// Walks every interpreter's thread states and checks, for each, that the TSD slot of `key` in its own
  /// thread (found from `thread_id`, the pthread_t, which glibc x86-64 makes the fs base) holds it.
  private func confirmThreadSpecificData(
    runtime: UInt64, offsets: CPythonOffsets, key: UInt32, tsd: ThreadSpecificDataLayout
  ) -> ThreadStateCheck {
    var result = ThreadStateCheck(
      key: key, threadStatesChecked: 0, threadStatesConfirmed: 0, tsd: tsd,
      decodedFromLibrary: false)
    var interpreter = (try? memory.readUInt64(runtime &+ offsets.runtimeInterpretersHead)) ?? 0
    var interpreters = 0
    while interpreter != 0, interpreters < Self.maximumInterpreters {
      interpreters += 1
      var threadState =
        (try? memory.readUInt64(interpreter &+ offsets.interpreterThreadsHead)) ?? 0
      var threads = 0
      while threadState != 0, threads < Self.maximumThreadStates {
        threads += 1
        result.threadStatesChecked += 1
        if let threadID = try? memory.readUInt64(threadState &+ offsets.threadStateThreadID),
          threadID != 0,
          let slot = try? memory.readUInt64(
            threadID &+ UInt64(bitPattern: tsd.dataOffset) &+ UInt64(key) * UInt64(tsd.stride)),
          slot == threadState
        {
          result.threadStatesConfirmed += 1
        }
        threadState = (try? memory.readUInt64(threadState &+ offsets.threadStateNext)) ?? 0
      }
      // PyInterpreterState.next is its first field.
      interpreter = (try? memory.readUInt64(interpreter)) ?? 0
    }
    return result
  }

  // MARK: Naming

  func name(_ stack: InterpreterStackRecord) -> [InterpreterFrame] {
    lock.withLock {
      var named: [InterpreterFrame] = []
      named.reserveCapacity(stack.frames.count)
      for record in stack.frames {
        if let shim = offsets?.shimFrameOwner, record.owner == shim {
          // 3.12+: the eval loop's entry shim ends the group of frames that one native call ran.
          if !named.isEmpty { named[named.count - 1].endsEvalGroup = true }
          continue
        }
        switch nameFrame(record) {
        case .named(let frame):
          named.append(InterpreterFrame(frame: frame, endsEvalGroup: record.isEntry))
        case .incomplete:
          continue
        case .unknown:
          unknownCount += 1
          // A process that exited takes its code objects with it; its pid may come back as another.
          if cache.count > 0, !ProcessInspector.exists(pid: pid) { cache.removeAll() }
          named.append(
            InterpreterFrame(
              frame: SourceFrame(function: Self.unknownFrameName), endsEvalGroup: record.isEntry,
              isUnknown: true))
        }
      }
      return named
    }
  }

  private enum FrameName {
    case named(SourceFrame)
    /// A frame still in its prologue (3.11+'s "incomplete" frame), which tracebacks leave out too.
    case incomplete
    case unknown
  }

  private func nameFrame(_ record: InterpreterFrameRecord) -> FrameName {
    guard let offsets, let codeType = binary.symbols.codeType else { return .unknown }
    let key = CodeObjectCache.Key(address: record.code, stamp: record.stamp)
    let code: CPythonCodeObject
    if let cached = cache.lookup(key) {
      code = cached
    } else {
      let types = CPythonCodeObject.TypeAddresses(
        code: address(of: codeType), unicode: binary.symbols.unicodeType.map(address(of:)),
        bytes: binary.symbols.bytesType.map(address(of:)))
      guard
        let read = try? CPythonCodeObject.read(
          at: record.code, memory: memory, offsets: offsets, types: types),
        // A different stamp: the object at this address is not the one the sampler saw.
        read.stamp == record.stamp
      else { return .unknown }
      cache.insert(read, for: key)
      code = read
    }
    let bytecode = record.code &+ offsets.codeBytecode
    // A frame is pushed with its instruction pointer one code unit before the bytecode (3.11, 3.12) or at
    // its start (3.13): below that is garbage, not a prologue.
    if record.owner != CPythonOffsets.generatorFrameOwner, record.instruction &+ 2 >= bytecode,
      record.instruction < bytecode &+ 2 &* UInt64(code.firstTraceable)
    {
      return .incomplete
    }
    let offset = record.instruction &- bytecode
    guard record.instruction >= bytecode, offset % 2 == 0, offset / 2 < UInt64(code.unitCount),
      let line = code.lineTable.line(atUnit: Int(offset / 2))
    else { return .unknown }
    return .named(
      SourceFrame(function: code.qualifiedName, file: code.fileName, line: line ?? 0))
  }
}
