import CFlamespanABI
import FlamespanModel

/// Turns ring-buffer records into `SamplerEvent`s. Sizes are checked against the C layout first, so a
/// short or foreign record becomes `.malformed` instead of a read past its end.
enum EventDecoder {
  static func decode(_ record: UnsafeRawBufferPointer) -> SamplerEvent {
    guard record.count >= 4, let base = record.baseAddress else {
      return .malformed(size: record.count)
    }
    let kind = base.loadUnaligned(as: UInt32.self)
    switch kind {
    case UInt32(FS_EVENT_SAMPLE.rawValue):
      guard record.count >= MemoryLayout<fs_sample>.size else {
        return .malformed(size: record.count)
      }
      return .sample(decodeSample(base))
    case UInt32(FS_EVENT_SAMPLE_WITH_STACK.rawValue):
      let stackOffset = Int(FS_SAMPLE_WITH_STACK_HEADER_BYTES)
      guard record.count >= stackOffset else { return .malformed(size: record.count) }
      return decodeSampleWithStack(record, stackOffset: stackOffset)
    case UInt32(FS_EVENT_EXEC.rawValue), UInt32(FS_EVENT_EXIT.rawValue):
      guard record.count >= MemoryLayout<fs_process_event>.size else {
        return .malformed(size: record.count)
      }
      let event = base.loadUnaligned(as: fs_process_event.self)
      let name = withUnsafeBytes(of: event.comm) { cString($0) }
      let change: ProcessChange = kind == UInt32(FS_EVENT_EXEC.rawValue) ? .exec : .exit
      return .process(
        change, pid: Int32(bitPattern: event.pid), timeNanos: event.time_ns, name: name)
    default:
      return .malformed(size: record.count)
    }
  }

  private static func decodeSample(_ base: UnsafeRawPointer) -> RawSample {
    let header = base.loadUnaligned(as: fs_sample.self)
    let kernelOffset = MemoryLayout<fs_sample>.offset(of: \fs_sample.kernel_stack)!
    let userOffset = MemoryLayout<fs_sample>.offset(of: \fs_sample.user_stack)!
    let kernel = stack(base + kernelOffset, byteCount: header.kernel_stack_bytes)
    let user = stack(base + userOffset, byteCount: header.user_stack_bytes)
    let span = withUnsafeBytes(of: header.span) { bytes -> SpanContext? in
      let trace = Array(bytes[0..<Int(FS_TRACE_ID_LEN)])
      let spanID = Array(bytes[Int(FS_TRACE_ID_LEN)..<Int(FS_TRACE_ID_LEN + FS_SPAN_ID_LEN)])
      // A zero span id is how the L7 tracer withdraws a span in place (see publish_span in l7.bpf.c).
      let none = trace.allSatisfy({ $0 == 0 }) || spanID.allSatisfy({ $0 == 0 })
      return none ? nil : SpanContext(traceID: trace, spanID: spanID)
    }
    return RawSample(
      pid: Int32(bitPattern: header.pid),
      tid: Int32(bitPattern: header.tid),
      cpu: header.cpu,
      timeNanos: header.time_ns,
      threadName: withUnsafeBytes(of: header.comm) { cString($0) },
      kernelStack: kernel,
      userStack: user,
      kernelStackErrno: header.kernel_stack_bytes < 0 ? -header.kernel_stack_bytes : nil,
      userStackErrno: header.user_stack_bytes < 0 ? -header.user_stack_bytes : nil,
      span: span
    )
  }

  /// Variable length: the header, then `stack_copy_bytes` of stack, which must fit in the record.
  private static func decodeSampleWithStack(_ record: UnsafeRawBufferPointer, stackOffset: Int)
    -> SamplerEvent
  {
    let base = record.baseAddress!
    let regsOffset = MemoryLayout<fs_sample_with_stack>.offset(of: \fs_sample_with_stack.regs)!
    let countOffset = MemoryLayout<fs_sample_with_stack>.offset(
      of: \fs_sample_with_stack.stack_copy_bytes)!
    let errorOffset = MemoryLayout<fs_sample_with_stack>.offset(
      of: \fs_sample_with_stack.stack_copy_error)!
    let regs = base.loadUnaligned(fromByteOffset: regsOffset, as: fs_user_regs.self)
    let copied = Int(base.loadUnaligned(fromByteOffset: countOffset, as: UInt32.self))
    let error = base.loadUnaligned(fromByteOffset: errorOffset, as: Int32.self)
    guard copied <= Int(FS_MAX_USER_STACK_COPY), record.count >= stackOffset + copied,
      let interpreterStack = InterpreterStackDecoder.decode(
        base + MemoryLayout<fs_sample_with_stack>.offset(of: \fs_sample_with_stack.python)!)
    else {
      return .malformed(size: record.count)
    }
    var sample = decodeSample(base)
    sample.interpreterStack = interpreterStack.record
    sample.userStackCopy = UserStackCopy(
      registers: UserRegisters(ip: regs.ip, sp: regs.sp, bp: regs.bp),
      bytes: Array(UnsafeRawBufferPointer(rebasing: record[stackOffset..<(stackOffset + copied)])),
      stopErrno: error < 0 ? -error : nil)
    return .sample(sample)
  }

  private static func stack(_ start: UnsafeRawPointer, byteCount: Int32) -> [UInt64] {
    guard byteCount > 0 else { return [] }
    let depth = min(Int(byteCount) / 8, Int(FS_MAX_STACK_DEPTH))
    var frames: [UInt64] = []
    frames.reserveCapacity(depth)
    for index in 0..<depth {
      let address = start.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)
      if address == 0 { break }
      frames.append(address)
    }
    return frames
  }

  static func cString(_ bytes: UnsafeRawBufferPointer) -> String {
    let end = bytes.firstIndex(of: 0) ?? bytes.count
    return String(decoding: bytes[0..<end], as: UTF8.self)
  }
}
