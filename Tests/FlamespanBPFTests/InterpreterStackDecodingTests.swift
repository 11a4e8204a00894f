import CFlamespanABI
import FlamespanModel
import Testing

@testable import FlamespanBPF

/// Stack-copy records with a Python part, built byte for byte as profile.bpf.c writes them, through the
/// same decoder the ring buffer reader uses.
@Suite struct InterpreterStackDecodingTests {
  static let header = Int(FS_SAMPLE_WITH_STACK_HEADER_BYTES)
  static let python = MemoryLayout<fs_sample_with_stack>.offset(of: \fs_sample_with_stack.python)!

  /// A record with `stackBytes` of stack and the given Python part; the unused frame slots hold junk,
  /// as they do in the sampler's reused scratch record.
  static func record(
    status: fs_python_stack_status, frames: [fs_python_frame], readError: Int32 = 0,
    count: UInt32? = nil, stackBytes: Int = 16
  ) -> [UInt8] {
    var bytes = [UInt8](repeating: 0xa5, count: header + stackBytes)
    var sample = fs_sample()
    sample.kind = FS_EVENT_SAMPLE_WITH_STACK.rawValue
    sample.pid = 42
    sample.tid = 43
    sample.kernel_stack_bytes = 0
    sample.user_stack_bytes = 0
    withUnsafeBytes(of: sample) { bytes.replaceSubrange(0..<$0.count, with: $0) }
    func put<T>(_ value: T, at offset: Int) {
      withUnsafeBytes(of: value) { bytes.replaceSubrange(offset..<(offset + $0.count), with: $0) }
    }
    put(count ?? UInt32(frames.count), at: python)
    put(status.rawValue, at: python + 4)
    put(readError, at: python + 8)
    put(UInt32(0), at: python + 12)
    put(UInt64(0x7f00_1234_5000), at: python + 16)
    for (index, frame) in frames.enumerated() { put(frame, at: python + 24 + index * 24) }
    let countOffset = MemoryLayout<fs_sample_with_stack>.offset(
      of: \fs_sample_with_stack.stack_copy_bytes)!
    put(UInt32(stackBytes), at: countOffset)
    put(Int32(0), at: countOffset + 4)
    return bytes
  }

  static func frame(code: UInt64, entry: Bool) -> fs_python_frame {
    var frame = fs_python_frame()
    frame.code = code
    frame.instruction = code + 0x40
    frame.stamp = UInt32(truncatingIfNeeded: code >> 4)
    frame.owner = 0
    frame.is_entry = entry ? 1 : 0
    return frame
  }

  static func decode(_ bytes: [UInt8]) -> SamplerEvent {
    bytes.withUnsafeBytes { EventDecoder.decode($0) }
  }

  @Test func aWalkedChainComesBackInnermostFirstWithOnlyItsFrames() throws {
    let frames = [
      Self.frame(code: 0x1000, entry: false), Self.frame(code: 0x2000, entry: false),
      Self.frame(code: 0x3000, entry: true),
    ]
    guard
      case .sample(let sample) = Self.decode(
        Self.record(status: FS_PYTHON_STACK_COMPLETE, frames: frames))
    else {
      Issue.record("a well-formed record did not decode")
      return
    }
    let stack = try #require(sample.interpreterStack)
    #expect(stack.status == .complete)
    #expect(stack.threadState == 0x7f00_1234_5000)
    #expect(stack.frames.map(\.code) == [0x1000, 0x2000, 0x3000])
    #expect(stack.frames.map(\.isEntry) == [false, false, true])
    #expect(stack.frames[1].instruction == 0x2040 && stack.frames[1].stamp == 0x200)
    #expect(sample.userStackCopy?.bytes.count == 16)
  }

  @Test func statusesMapToTheModel() throws {
    let one = [Self.frame(code: 0x1000, entry: true)]
    guard
      case .sample(let truncated) = Self.decode(
        Self.record(status: FS_PYTHON_STACK_TRUNCATED, frames: one)),
      case .sample(let failed) = Self.decode(
        Self.record(status: FS_PYTHON_STACK_READ_FAILED, frames: one, readError: -14)),
      case .sample(let none) = Self.decode(Self.record(status: FS_PYTHON_STACK_NONE, frames: []))
    else {
      Issue.record("a well-formed record did not decode")
      return
    }
    #expect(truncated.interpreterStack?.status == .truncated)
    #expect(failed.interpreterStack?.status == .readFailed(errno: 14))
    #expect(failed.interpreterStack?.frames.count == 1)
    #expect(none.interpreterStack == nil)
  }

  @Test func recordsTheSamplerCannotHaveWrittenAreMalformed() {
    let one = [Self.frame(code: 0x1000, entry: true)]
    let inputs: [[UInt8]] = [
      // More frames than the walk follows.
      Self.record(
        status: FS_PYTHON_STACK_COMPLETE, frames: one, count: UInt32(FS_MAX_PYTHON_FRAMES) + 1),
      // A status the sampler does not write.
      Self.record(status: fs_python_stack_status(rawValue: 9), frames: one),
      // A read failure without its errno.
      Self.record(status: FS_PYTHON_STACK_READ_FAILED, frames: one, readError: 0),
      // Cut inside the Python part, and cut just before the stack bytes.
      Array(Self.record(status: FS_PYTHON_STACK_COMPLETE, frames: one)[0..<(Self.python + 100)]),
      Array(
        Self.record(status: FS_PYTHON_STACK_COMPLETE, frames: one, stackBytes: 0)[
          0..<(Self.header - 1)]),
    ]
    for input in inputs {
      guard case .malformed(let size) = Self.decode(input) else {
        Issue.record("a record of \(input.count) bytes decoded as a sample")
        continue
      }
      #expect(size == input.count)
    }
  }
}
