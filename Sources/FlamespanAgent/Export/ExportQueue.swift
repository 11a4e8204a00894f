import FlamespanModel
import FlamespanRecorder
import Foundation

/// One POST the agent owes a backend.
struct ExportRequest: Sendable {
  /// "otlp-profiles", "otlp-traces" or "pyroscope": the label of its counters.
  var destination: String
  var endpoint: HTTPEndpoint
  var headers: [(String, String)]
  var body: [UInt8]
  /// What the export journal keeps besides the body, so that a restart can rebuild the request from the
  /// configuration it then has: the endpoint's part after the configured base (Pyroscope's per-window
  /// `/ingest?…`; empty for OTLP, whose endpoint is the whole configured URL) and the headers that
  /// describe the body. The configured headers carry credentials and are never written to disk.
  var suffix = ""
  var bodyHeaders: [(String, String)] = []
}

/// The requests of one window. A window leaves the queue when every request has been delivered or
/// refused for good.
struct ExportBatch: Sendable {
  var sequence: Int
  var requests: [ExportRequest]
  /// The window's name in the store (`<startMs>-<endMs>-<id>`), under which the journal keeps it; nil
  /// when the agent runs without a store (then the queue is in memory only).
  var name: String?
  /// Destinations already delivered or refused for good, which the journal's marker records.
  var settled: [String] = []
  /// Set by the queue, unique within it (restored windows and new ones may share a recorder sequence
  /// number).
  var id = 0
  var bytes: Int { requests.reduce(0) { $0 + $1.body.count } }
}

struct ExportQueueLimits: Sendable {
  var maximumWindows = 60
  var maximumBytes = 64 << 20
  var initialBackoffNanos: UInt64 = 500_000_000
  var maximumBackoffNanos: UInt64 = 30_000_000_000
  var requestTimeoutSeconds = 10
}

struct ExportCounters: Sendable {
  var windowsQueued = 0
  var bytesQueued = 0
  /// Windows that had something to send: always windowsExported + windowsDropped + windowsQueued.
  var windowsEnqueued = 0
  var windowsExported = 0
  /// Windows dropped, oldest first, because the queue was over its window or byte bound.
  var windowsDropped = 0
  var requestsSent: [String: Int] = [:]
  /// Failed attempts (connection errors, 5xx, 429): retried.
  var exportErrors: [String: Int] = [:]
  /// Requests the backend refused for good (4xx other than 408 and 429): not retried.
  var requestsRejected: [String: Int] = [:]
  var lastError: String?
  /// Windows found in the journal at start and queued again (also counted in windowsEnqueued).
  var windowsRestored = 0
  /// Journal entries that could not be read at start (truncated, corrupt): skipped and deleted.
  var journalCorrupt = 0
  /// Windows the journal could not write (the disk full even after the store made room): they are queued
  /// in memory only, and a restart will not send them.
  var journalWriteErrors = 0
}

/// A bounded queue with one sender thread. Windows go out oldest first; a failed request is retried with
/// exponential backoff (with jitter) while newer windows wait behind it, so order is kept. When the queue
/// is over a bound the oldest windows are dropped and counted: during a long outage the newest data is the
/// most useful, and memory stays fixed. With a journal every queued window is also on disk until it is
/// settled or dropped, so a restart (even after `kill -9`) sends what was queued: at least once, since a
/// request delivered just before a crash, whose marker was not yet written, is sent again.
final class ExportQueue: @unchecked Sendable {
  let limits: ExportQueueLimits
  let journal: ExportJournal?
  /// One client for the queue's life, so connections stay open between windows; shut down by drain().
  private let client: ExportHTTPClient
  private let condition = NSCondition()
  private var batches: [ExportBatch] = []
  private var counters = ExportCounters()
  private var stopping = false
  private var deadline: UInt64 = .max
  private var senderDone = false
  private var started = false
  private var nextID = 0
  private let log: @Sendable (String) -> Void

  init(
    limits: ExportQueueLimits, journal: ExportJournal? = nil,
    client: ExportHTTPClient = ExportHTTPClient(),
    log: @escaping @Sendable (String) -> Void
  ) {
    self.limits = limits
    self.journal = journal
    self.client = client
    self.log = log
  }

  /// The windows queued now, oldest first, by store name (nil for windows without one).
  var queuedNames: [String?] {
    condition.lock()
    defer { condition.unlock() }
    return batches.map(\.name)
  }

  var snapshot: ExportCounters {
    condition.lock()
    defer { condition.unlock() }
    return counters
  }

  func start() {
    condition.lock()
    started = true
    condition.unlock()
    let thread = Thread { [self] in senderLoop() }
    thread.name = "flamespan-export"
    thread.start()
  }

  func enqueue(_ batch: ExportBatch) {
    guard !batch.requests.isEmpty else { return }
    var batch = batch
    // On disk before the sender can see it, so a settled window's files are never written after removal.
    if let journal, let name = batch.name {
      do { try journal.persist(name: name, requests: batch.requests) } catch {
        log(
          "export journal: cannot keep window \(name) on disk (\(error)); it is queued in memory only"
        )
        batch.name = nil
        condition.lock()
        counters.journalWriteErrors += 1
        condition.unlock()
      }
    }
    add([batch], restored: false)
  }

  /// Queues the windows a journal replay found (oldest first), before `start()`. The queue's bounds apply
  /// as to new windows: past them the oldest are dropped, counted, and their journal entries deleted.
  func restore(_ restored: [ExportBatch], corrupt: Int = 0) {
    condition.lock()
    counters.journalCorrupt += corrupt
    condition.unlock()
    add(restored.filter { !$0.requests.isEmpty }, restored: true)
  }

  private func add(_ added: [ExportBatch], restored: Bool) {
    guard !added.isEmpty else { return }
    condition.lock()
    for var batch in added {
      nextID += 1
      batch.id = nextID
      batches.append(batch)
      counters.windowsEnqueued += 1
      counters.bytesQueued += batch.bytes
    }
    var dropped: [ExportBatch] = []
    while batches.count > limits.maximumWindows
      || (counters.bytesQueued > limits.maximumBytes && batches.count > 1)
    {
      let batch = batches.removeFirst()
      counters.bytesQueued -= batch.bytes
      counters.windowsDropped += 1
      dropped.append(batch)
    }
    if restored { counters.windowsRestored += added.count - dropped.count }
    counters.windowsQueued = batches.count
    condition.broadcast()
    condition.unlock()
    for name in dropped.compactMap(\.name) { journal?.remove(name: name) }
    if !dropped.isEmpty {
      log("export queue over its bound: dropped the \(dropped.count) oldest window(s)")
    }
  }

  /// Sends what is queued until it is empty or `deadlineNanos` (CLOCK_MONOTONIC) passes, then stops the
  /// sender and closes the connections. Returns the windows still queued, which are lost.
  func drain(until deadlineNanos: UInt64) -> Int {
    condition.lock()
    stopping = true
    deadline = deadlineNanos
    condition.broadcast()
    while started && !senderDone { condition.wait() }
    let left = batches.count
    condition.unlock()
    client.shutdown()
    return left
  }

  private func senderLoop() {
    var backoff = limits.initialBackoffNanos
    while true {
      condition.lock()
      while batches.isEmpty && !stopping { condition.wait() }
      if batches.isEmpty || (stopping && KernelClock.monotonicNanos() >= deadline) {
        senderDone = true
        condition.broadcast()
        condition.unlock()
        return
      }
      let batch = batches[0]
      let timeout =
        stopping
        ? max(1, Int((deadline &- KernelClock.monotonicNanos()) / 1_000_000_000))
        : limits.requestTimeoutSeconds
      condition.unlock()

      var remaining: [ExportRequest] = []
      var settled: [String] = []
      var failure: String?
      for request in batch.requests {
        if failure != nil {
          remaining.append(request)
          continue
        }
        switch send(request, timeoutSeconds: timeout) {
        case .delivered, .refused: settled.append(request.destination)
        case .retry(let reason):
          failure = reason
          remaining.append(request)
        }
      }

      condition.lock()
      var journalUpdate: (name: String, settled: [String]?)?
      if let index = batches.firstIndex(where: { $0.id == batch.id }) {
        counters.bytesQueued -= batches[index].bytes
        if remaining.isEmpty {
          batches.remove(at: index)
          counters.windowsExported += 1
          if let name = batch.name { journalUpdate = (name, nil) }
        } else {
          batches[index].requests = remaining
          batches[index].settled += settled
          counters.bytesQueued += batches[index].bytes
          if let name = batch.name, !settled.isEmpty {
            journalUpdate = (name, batches[index].settled)
          }
        }
      }
      counters.windowsQueued = batches.count
      condition.unlock()
      // A window dropped meanwhile had its entry deleted; a marker written after that is an orphan, which
      // the next replay deletes.
      if let journal, let update = journalUpdate {
        if let settled = update.settled {
          journal.markSettled(name: update.name, destinations: settled)
        } else {
          journal.remove(name: update.name)
        }
      }
      condition.lock()
      if let failure {
        counters.lastError = failure
        // Wait out the backoff, but wake for shutdown so the final drain starts at once.
        let jittered = backoff / 2 + UInt64.random(in: 0...(backoff / 2))
        var waitUntil = KernelClock.monotonicNanos() + jittered
        if stopping { waitUntil = min(waitUntil, deadline) }
        while KernelClock.monotonicNanos() < waitUntil {
          let seconds = Double(waitUntil - KernelClock.monotonicNanos()) / 1e9
          _ = condition.wait(until: Date(timeIntervalSinceNow: seconds))
          if stopping && deadline < waitUntil { waitUntil = deadline }
        }
        backoff = min(backoff * 2, limits.maximumBackoffNanos)
      } else {
        backoff = limits.initialBackoffNanos
      }
      condition.unlock()
    }
  }

  private enum Outcome {
    case delivered
    case refused
    case retry(String)
  }

  private func send(_ request: ExportRequest, timeoutSeconds: Int) -> Outcome {
    let outcome: Outcome
    do {
      let response = try client.post(
        request.endpoint, destination: request.destination, headers: request.headers,
        body: request.body, timeoutSeconds: timeoutSeconds)
      switch response.status {
      case 200..<300: outcome = .delivered
      case 408, 429, 500...599:
        outcome = .retry("\(request.destination): HTTP \(response.status) from \(request.endpoint)")
      default:
        let detail = String(decoding: response.body.prefix(200), as: UTF8.self)
        log(
          "\(request.destination): \(request.endpoint) refused a window with HTTP \(response.status): \(detail)"
        )
        outcome = .refused
      }
    } catch {
      outcome = .retry("\(request.destination): \(error.description)")
    }
    condition.lock()
    switch outcome {
    case .delivered: counters.requestsSent[request.destination, default: 0] += 1
    case .refused: counters.requestsRejected[request.destination, default: 0] += 1
    case .retry: counters.exportErrors[request.destination, default: 0] += 1
    }
    condition.unlock()
    return outcome
  }
}

/// The export queue on disk, in the store's `queue/` directory, so a restart sends what was queued even
/// after `kill -9` or a crash. One entry per window, both files written whole (AtomicFile):
/// - `<window>.q`: the magic `FSQ1`, then the requests (for each: destination, endpoint suffix, the
///   headers describing the body, the body; lengths as 32-bit little-endian), then a CRC-32 of all that.
/// - `<window>.sent`: the destinations already delivered or refused for good, one per line; the next start
///   sends only the others.
/// An entry is deleted once every destination is settled, or when the queue drops its window. A replay
/// skips, counts and deletes entries it cannot read (truncated, corrupt, wrong magic), and never fails.
final class ExportJournal: @unchecked Sendable {
  struct StoredRequest: Sendable, Equatable {
    var destination: String
    var suffix: String
    var bodyHeaders: [[String]]
    var body: [UInt8]
  }

  struct Entry: Sendable, Equatable {
    var name: String
    var requests: [StoredRequest]
  }

  struct Replay: Sendable {
    /// Oldest first (by the window's start, then name).
    var entries: [Entry]
    /// Entries skipped because their `.q` or `.sent` file could not be read.
    var corrupt: Int
  }

  static let magic: [UInt8] = Array("FSQ1".utf8)
  static let entrySuffix = ".q"
  static let markerSuffix = ".sent"

  let directory: String
  private let writer: WindowStore.Writer
  /// Called when a write finds the disk full: frees room (the store deletes its oldest window) and says
  /// whether it could.
  private let makeRoom: @Sendable () -> Bool

  init(
    directory: String,
    writer: @escaping WindowStore.Writer = { bytes, path throws(StoreWriteError) in
      try AtomicFile.write(bytes, to: path, permissions: 0o600, flush: false)
    },
    makeRoom: @escaping @Sendable () -> Bool = { false }
  ) throws {
    self.directory = directory
    self.writer = writer
    self.makeRoom = makeRoom
    try FileManager.default.createDirectory(
      atPath: directory, withIntermediateDirectories: true,
      attributes: [.posixPermissions: 0o700])
  }

  private func path(_ name: String, _ suffix: String) -> String { "\(directory)/\(name)\(suffix)" }

  private func write(_ bytes: [UInt8], to path: String) throws(StoreWriteError) {
    try WindowStore.write(bytes, to: path, with: writer, makingRoom: makeRoom)
  }

  func persist(name: String, requests: [ExportRequest]) throws(StoreWriteError) {
    let stored = requests.map {
      StoredRequest(
        destination: $0.destination, suffix: $0.suffix,
        bodyHeaders: $0.bodyHeaders.map { [$0.0, $0.1] }, body: $0.body)
    }
    try write(Self.encode(stored), to: path(name, Self.entrySuffix))
  }

  /// Records the destinations settled so far. A marker that cannot be written only means those requests
  /// are sent again after a restart.
  func markSettled(name: String, destinations: [String]) {
    let text = destinations.map { $0 + "\n" }.joined()
    try? write(Array(text.utf8), to: path(name, Self.markerSuffix))
  }

  func remove(name: String) {
    unlink(path(name, Self.entrySuffix))
    unlink(path(name, Self.markerSuffix))
  }

  /// Reads every entry, minus the destinations its marker settles. Deletes what it cannot use: unreadable
  /// entries (counted), entries with nothing left to send, and markers without an entry.
  func replay() -> Replay {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    let entryNames = Set(
      names.filter { $0.hasSuffix(Self.entrySuffix) }.map {
        String($0.dropLast(Self.entrySuffix.count))
      })
    for name in names where name.hasSuffix(Self.markerSuffix) {
      if !entryNames.contains(String(name.dropLast(Self.markerSuffix.count))) {
        unlink("\(directory)/\(name)")
      }
    }
    var entries: [Entry] = []
    var corrupt = 0
    for name in entryNames {
      guard let data = FileManager.default.contents(atPath: path(name, Self.entrySuffix)),
        var requests = Self.decode([UInt8](data))
      else {
        corrupt += 1
        remove(name: name)
        continue
      }
      if let marker = FileManager.default.contents(atPath: path(name, Self.markerSuffix)) {
        if let settled = Self.decodeMarker([UInt8](marker)) {
          requests.removeAll { settled.contains($0.destination) }
        } else {
          // What was settled is unknown: everything is sent again (at least once), and the marker goes.
          corrupt += 1
          unlink(path(name, Self.markerSuffix))
        }
      }
      if requests.isEmpty {
        remove(name: name)
        continue
      }
      entries.append(Entry(name: name, requests: requests))
    }
    func order(_ name: String) -> (Int64, String) {
      (Int64(name.prefix { $0 != "-" }) ?? 0, name)
    }
    entries.sort { order($0.name) < order($1.name) }
    return Replay(entries: entries, corrupt: corrupt)
  }

  static func encode(_ requests: [StoredRequest]) -> [UInt8] {
    var out = magic
    func u32(_ value: Int) {
      withUnsafeBytes(of: UInt32(value).littleEndian) { out.append(contentsOf: $0) }
    }
    func bytes(_ value: [UInt8]) {
      u32(value.count)
      out.append(contentsOf: value)
    }
    u32(requests.count)
    for request in requests {
      bytes(Array(request.destination.utf8))
      bytes(Array(request.suffix.utf8))
      u32(request.bodyHeaders.count)
      for header in request.bodyHeaders {
        bytes(Array(header[0].utf8))
        bytes(Array(header[1].utf8))
      }
      bytes(request.body)
    }
    let checksum = CRC32.checksum(out)
    withUnsafeBytes(of: checksum.littleEndian) { out.append(contentsOf: $0) }
    return out
  }

  /// nil for anything but a whole, intact entry.
  static func decode(_ data: [UInt8]) -> [StoredRequest]? {
    guard data.count >= magic.count + 8, Array(data.prefix(magic.count)) == magic else {
      return nil
    }
    let payload = data[..<(data.count - 4)]
    var checksum: UInt32 = 0
    for (shift, byte) in data.suffix(4).enumerated() { checksum |= UInt32(byte) << (8 * shift) }
    guard CRC32.checksum(payload) == checksum else { return nil }
    var offset = payload.startIndex + magic.count
    func u32() -> Int? {
      guard payload.endIndex - offset >= 4 else { return nil }
      var value: UInt32 = 0
      for shift in 0..<4 { value |= UInt32(payload[offset + shift]) << (8 * shift) }
      offset += 4
      return Int(value)
    }
    func bytes() -> [UInt8]? {
      guard let count = u32(), payload.endIndex - offset >= count else { return nil }
      defer { offset += count }
      return Array(payload[offset..<(offset + count)])
    }
    func text() -> String? { bytes().flatMap { String(validating: $0, as: UTF8.self) } }
    guard let count = u32(), count <= 16 else { return nil }
    var requests: [StoredRequest] = []
    for _ in 0..<count {
      guard let destination = text(), let suffix = text(), let headerCount = u32(),
        headerCount <= 64
      else { return nil }
      var headers: [[String]] = []
      for _ in 0..<headerCount {
        guard let name = text(), let value = text() else { return nil }
        headers.append([name, value])
      }
      guard let body = bytes() else { return nil }
      requests.append(
        StoredRequest(destination: destination, suffix: suffix, bodyHeaders: headers, body: body))
    }
    return offset == payload.endIndex ? requests : nil
  }

  /// Destination names, one per line; nil when the marker holds anything else.
  static func decodeMarker(_ data: [UInt8]) -> Set<String>? {
    guard let text = String(validating: data, as: UTF8.self), text.isEmpty || text.hasSuffix("\n")
    else { return nil }
    var names: Set<String> = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
      guard !line.isEmpty, line.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
        return nil
      }
      names.insert(String(line))
    }
    return names
  }
}

/// CRC-32 (IEEE 802.3, as zlib and gzip), for the export journal's entries.
enum CRC32 {
  private static let table: [UInt32] = (0..<256).map { index in
    var value = UInt32(index)
    for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
    return value
  }

  static func checksum<Bytes: Collection>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
    return crc ^ 0xFFFF_FFFF
  }
}
