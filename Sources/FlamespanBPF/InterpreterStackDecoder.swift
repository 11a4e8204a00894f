import CFlamespanABI
import FlamespanModel

/// Reads the `python` part of a stack-copy record (`struct fs_python_stack`). Its frames are read by
/// offset, `count` of them only: the sampler does not clear the rest of the array between samples.
enum InterpreterStackDecoder {
  /// A decoded chain; `record` is nil when the sampler walked nothing (status "none").
  struct Decoded {
    var record: InterpreterStackRecord?
  }

  private static let framesOffset = 24
  private static let frameStride = 24

  /// nil when the part is not one the sampler writes: more frames than it walks, or an unknown status.
  /// The caller has checked that the record holds the whole `fs_python_stack`.
  static func decode(_ start: UnsafeRawPointer) -> Decoded? {
    let count = Int(start.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
    let rawStatus = start.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
    let readError = start.loadUnaligned(fromByteOffset: 8, as: Int32.self)
    let threadState = start.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
    guard count <= Int(FS_MAX_PYTHON_FRAMES) else { return nil }
    let status: InterpreterStackStatus
    switch rawStatus {
    case FS_PYTHON_STACK_NONE.rawValue: return Decoded(record: nil)
    case FS_PYTHON_STACK_COMPLETE.rawValue: status = .complete
    case FS_PYTHON_STACK_TRUNCATED.rawValue: status = .truncated
    case FS_PYTHON_STACK_READ_FAILED.rawValue:
      // The sampler stores the helper's negative errno; 0 or a positive value is no errno it writes.
      guard readError < 0 else { return nil }
      status = .readFailed(errno: -readError)
    default: return nil
    }
    var frames: [InterpreterFrameRecord] = []
    frames.reserveCapacity(count)
    for index in 0..<count {
      let frame = start.loadUnaligned(
        fromByteOffset: framesOffset + index * frameStride, as: fs_python_frame.self)
      frames.append(
        InterpreterFrameRecord(
          code: frame.code, instruction: frame.instruction, stamp: frame.stamp, owner: frame.owner,
          isEntry: frame.is_entry != 0))
    }
    return Decoded(
      record: InterpreterStackRecord(threadState: threadState, frames: frames, status: status))
  }
}
