import FlamespanRecorder
import Foundation

/// One POST the agent owes a backend.
struct ExportRequest: Sendable {
  /// "otlp-profiles", "otlp-traces" or "pyroscope": the label of its counters.
  var destination: String
  var endpoint: HTTPEndpoint
  var headers: [(String, String)]
  var body: [UInt8]
}

/// The requests of one window. A window leaves the queue when every request has been delivered or
/// refused for good.
struct ExportBatch: Sendable {
  var sequence: Int
  var requests: [ExportRequest]
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
}

/// A bounded in-memory queue with one sender thread. Windows go out oldest first; a failed request is
/// retried with exponential backoff (with jitter) while newer windows wait behind it, so order is kept.
/// When the queue is over a bound the oldest windows are dropped and counted: during a long outage the
/// newest data is the most useful, and memory stays fixed.
final class ExportQueue: @unchecked Sendable {
  let limits: ExportQueueLimits
  private let condition = NSCondition()
  private var batches: [ExportBatch] = []
  private var counters = ExportCounters()
  private var stopping = false
  private var deadline: UInt64 = .max
  private var senderDone = false
  private var started = false
  private let log: @Sendable (String) -> Void

  init(limits: ExportQueueLimits, log: @escaping @Sendable (String) -> Void) {
    self.limits = limits
    self.log = log
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
    condition.lock()
    batches.append(batch)
    counters.windowsEnqueued += 1
    counters.bytesQueued += batch.bytes
    var dropped = 0
    while batches.count > limits.maximumWindows
      || (counters.bytesQueued > limits.maximumBytes && batches.count > 1)
    {
      counters.bytesQueued -= batches.removeFirst().bytes
      counters.windowsDropped += 1
      dropped += 1
    }
    counters.windowsQueued = batches.count
    condition.broadcast()
    condition.unlock()
    if dropped > 0 { log("export queue over its bound: dropped the \(dropped) oldest window(s)") }
  }

  /// Sends what is queued until it is empty or `deadlineNanos` (CLOCK_MONOTONIC) passes, then stops the
  /// sender. Returns the windows still queued, which are lost.
  func drain(until deadlineNanos: UInt64) -> Int {
    condition.lock()
    stopping = true
    deadline = deadlineNanos
    condition.broadcast()
    while started && !senderDone { condition.wait() }
    let left = batches.count
    condition.unlock()
    return left
  }

  private func senderLoop() {
    var backoff = limits.initialBackoffNanos
    while true {
      condition.lock()
      while batches.isEmpty && !stopping { condition.wait() }
      if batches.isEmpty || (stopping && Monotonic.now() >= deadline) {
        senderDone = true
        condition.broadcast()
        condition.unlock()
        return
      }
      let batch = batches[0]
      let timeout =
        stopping
        ? max(1, Int((deadline &- Monotonic.now()) / 1_000_000_000)) : limits.requestTimeoutSeconds
      condition.unlock()

      var remaining: [ExportRequest] = []
      var failure: String?
      for request in batch.requests {
        if failure != nil {
          remaining.append(request)
          continue
        }
        switch send(request, timeoutSeconds: timeout) {
        case .delivered: break
        case .refused: break
        case .retry(let reason):
          failure = reason
          remaining.append(request)
        }
      }

      condition.lock()
      if let index = batches.firstIndex(where: { $0.sequence == batch.sequence }) {
        counters.bytesQueued -= batches[index].bytes
        if remaining.isEmpty {
          batches.remove(at: index)
          counters.windowsExported += 1
        } else {
          batches[index].requests = remaining
          counters.bytesQueued += batches[index].bytes
        }
      }
      counters.windowsQueued = batches.count
      if let failure {
        counters.lastError = failure
        // Wait out the backoff, but wake for shutdown so the final drain starts at once.
        let jittered = backoff / 2 + UInt64.random(in: 0...(backoff / 2))
        var waitUntil = Monotonic.now() + jittered
        if stopping { waitUntil = min(waitUntil, deadline) }
        while Monotonic.now() < waitUntil {
          let seconds = Double(waitUntil - Monotonic.now()) / 1e9
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
      let response = try HTTPClient.post(
        request.endpoint, headers: request.headers, body: request.body,
        timeoutSeconds: timeoutSeconds)
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

enum Monotonic {
  static func now() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
  }

  static func realtimeNanos() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
  }
}
