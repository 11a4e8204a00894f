import CLibBPF
import Glibc

/// BPF ring-buffer maps read through libbpf, one or several (a ring per CPU) behind one poll. Records are
/// decoded into `Event`s and handed to the handler of the poll in progress; libbpf calls back on the
/// polling thread, so no record outlives a poll.
final class RingBufferReader<Event> {
  private let name: String
  private let decode: (UnsafeRawBufferPointer) -> Event
  private let sink = RecordSink()
  private var ringBuffer: OpaquePointer?

  /// `name` says whose buffer it is in error messages ("the sampler's").
  convenience init(mapFD: Int32, name: String, decode: @escaping (UnsafeRawBufferPointer) -> Event)
    throws(BPFError)
  {
    try self.init(mapFDs: [mapFD], name: name, decode: decode)
  }

  /// Reads every ring of `mapFDs` (at least one); records of different rings come in no set order.
  init(mapFDs: [Int32], name: String, decode: @escaping (UnsafeRawBufferPointer) -> Event)
    throws(BPFError)
  {
    self.name = name
    self.decode = decode
    let context = Unmanaged.passUnretained(sink).toOpaque()
    guard let first = mapFDs.first else {
      throw BPFError(.ringBuffer, errno: EINVAL, context: "\(name) ring buffer has no rings")
    }
    ringBuffer = ring_buffer__new(first, RecordSink.callback, context, nil)
    guard ringBuffer != nil else {
      throw BPFError(.ringBuffer, errno: errno, context: "cannot open \(name) ring buffer")
    }
    for (index, fd) in mapFDs.enumerated().dropFirst() {
      let status = ring_buffer__add(ringBuffer, fd, RecordSink.callback, context)
      guard status == 0 else {
        close()
        throw BPFError(
          .ringBuffer, errno: -status, context: "cannot open \(name) ring buffer number \(index)")
      }
    }
  }

  deinit { close() }

  /// Waits up to `timeoutMilliseconds` for a wakeup, then takes every record present, including those
  /// submitted without a wakeup. An interrupted wait (a signal) is not an error.
  func poll(timeoutMilliseconds: Int32, handler: (Event) -> Void) throws(BPFError) -> Int {
    guard let ringBuffer else { return 0 }
    let decode = self.decode
    return try withoutActuallyEscaping(handler) { (handler) throws(BPFError) -> Int in
      sink.consume = { handler(decode($0)) }
      defer { sink.consume = nil }
      let woken = ring_buffer__poll(ringBuffer, timeoutMilliseconds)
      guard woken >= 0 || woken == -EINTR else {
        throw BPFError(.ringBuffer, errno: -woken, context: "reading \(name) ring buffer failed")
      }
      let drained = ring_buffer__consume(ringBuffer)
      guard drained >= 0 else {
        throw BPFError(.ringBuffer, errno: -drained, context: "reading \(name) ring buffer failed")
      }
      return Int(max(woken, 0)) + Int(drained)
    }
  }

  func close() {
    if let ringBuffer { ring_buffer__free(ringBuffer) }
    ringBuffer = nil
  }
}

/// The C callback's target: type-erased so one @convention(c) function serves every event type.
private final class RecordSink {
  var consume: ((UnsafeRawBufferPointer) -> Void)?

  static let callback:
    @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, Int) -> Int32 = {
      context, data, size in
      guard let context, let data else { return 0 }
      let sink = Unmanaged<RecordSink>.fromOpaque(context).takeUnretainedValue()
      sink.consume?(UnsafeRawBufferPointer(start: data, count: size))
      return 0
    }
}
