import FlamespanTestSupport
import Foundation
import Glibc

/// A server started for one test, stopped with SIGKILL (with its children): launchers may hand it a
/// blocked SIGTERM, and a test must never hang on a server that ignores one.
final class PeerServer {
  let process = Process()
  let port: Int
  var pid: Int32 { process.processIdentifier }

  init(_ arguments: [String], port: Int, directory: URL? = nil) throws {
    self.port = port
    process.executableURL = URL(fileURLWithPath: arguments[0])
    process.arguments = Array(arguments.dropFirst())
    if let directory { process.currentDirectoryURL = directory }
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    // Ready when it accepts connections; bounded to 10 s.
    let deadline = Date().addingTimeInterval(10)
    while Date() < deadline {
      if Loopback.canConnect(port: port) { return }
      guard process.isRunning else { break }
      usleep(20_000)
    }
    stop()
    throw TestFailure("\(arguments[0]) did not listen on 127.0.0.1:\(port) within 10 s")
  }

  /// Stops the server and every process below it. The server is stopped (SIGSTOP) first so that it cannot
  /// start a new worker while its tree is read, and the whole tree is killed: a worker left alive keeps
  /// the descriptor through which Foundation learns that the server exited, and `waitUntilExit` would
  /// then wait forever on a zombie (seen once with nginx under a loaded machine).
  func stop() {
    guard process.isRunning else { return }
    kill(pid, SIGSTOP)
    for descendant in Self.descendants(of: pid) { kill(descendant, SIGKILL) }
    kill(pid, SIGKILL)
    process.waitUntilExit()
  }

  /// Every process below `pid`, children first found through /proc/PID/task/*/children.
  static func descendants(of pid: Int32) -> [Int32] {
    var found: [Int32] = []
    var pending = [pid]
    while let parent = pending.popLast(), found.count < 4096 {
      let tasks =
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(parent)/task")) ?? []
      for task in tasks {
        let children =
          (try? String(contentsOfFile: "/proc/\(parent)/task/\(task)/children", encoding: .utf8))
          ?? ""
        for child in children.split(separator: " ").compactMap({ Int32($0) }) {
          found.append(child)
          pending.append(child)
        }
      }
    }
    return found
  }

  deinit { stop() }
}

/// Plain sockets on 127.0.0.1, for traffic curl will not send (garbage, half a request).
enum Loopback {
  static func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    _ = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
  }

  static func connect(port: Int) -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let status = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard status == 0 else {
      close(fd)
      return nil
    }
    var timeout = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    return fd
  }

  static func canConnect(port: Int) -> Bool {
    guard let fd = connect(port: port) else { return false }
    close(fd)
    return true
  }

  /// Sends `bytes`, then reads until the peer closes or 2 s pass, then closes.
  static func send(_ bytes: [UInt8], port: Int, readReply: Bool = true) {
    guard let fd = connect(port: port) else { return }
    defer { close(fd) }
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    guard readReply else { return }
    var buffer = [UInt8](repeating: 0, count: 4096)
    while read(fd, &buffer, buffer.count) > 0 {}
  }
}

/// `flamespan record --pid PID` in the background for a fixed time, with its outputs in a directory.
final class Recording {
  let process = Process()
  let directory: URL
  var spansPath: URL { directory.appendingPathComponent("spans.json") }
  var pprofPath: URL { directory.appendingPathComponent("profile.pb.gz") }
  private let stderrPath: URL

  init(pid: Int32, seconds: Int, frequency: Int = 499, extra: [String] = []) throws {
    directory = try TestEnvironment.temporaryDirectory("l7record")
    stderrPath = directory.appendingPathComponent("stderr.txt")
    process.executableURL = URL(fileURLWithPath: TestEnvironment.flamespanBinary)
    process.arguments =
      [
        "record", "-q", "--pid", String(pid), "-d", String(seconds), "-F", String(frequency),
        "--spans-output", spansPath.path, "-o", pprofPath.path,
      ] + extra
    process.standardOutput = FileHandle.nullDevice
    try RecorderReadiness.captureStderr(of: process, into: stderrPath)
    try process.run()
    // Traffic sent before the programs are attached is not seen.
    guard RecorderReadiness.wait(for: process, stderrFile: stderrPath) else {
      if process.isRunning { kill(process.processIdentifier, SIGKILL) }
      throw TestFailure("flamespan record never started: \(stderrText)")
    }
  }

  private var stderrText: String { RecorderReadiness.text(of: stderrPath) }

  /// Waits for the recording to end (bounded) and returns its status and stderr.
  func finish(timeout: TimeInterval = 120) -> (status: Int32, stderr: String) {
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(50_000) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    return (process.terminationStatus, stderrText)
  }
}

/// The spans of an OTLP/JSON document, flattened.
struct ExportedSpan {
  var traceID: String
  var spanID: String
  var parentSpanID: String?
  var name: String
  var kind: Int
  var start: UInt64
  var end: UInt64
  var attributes: [String: String]
  var errorStatus: Bool

  static func read(_ url: URL) throws -> [ExportedSpan] {
    let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
    guard let document = object as? [String: Any],
      let resources = document["resourceSpans"] as? [[String: Any]]
    else { throw TestFailure("not an ExportTraceServiceRequest: \(url.path)") }
    var spans: [ExportedSpan] = []
    for resource in resources {
      for scope in resource["scopeSpans"] as? [[String: Any]] ?? [] {
        for span in scope["spans"] as? [[String: Any]] ?? [] {
          var attributes: [String: String] = [:]
          for attribute in span["attributes"] as? [[String: Any]] ?? [] {
            let value = attribute["value"] as? [String: Any]
            attributes[attribute["key"] as? String ?? ""] =
              (value?["stringValue"] as? String) ?? (value?["intValue"] as? String)
          }
          spans.append(
            ExportedSpan(
              traceID: span["traceId"] as? String ?? "", spanID: span["spanId"] as? String ?? "",
              parentSpanID: span["parentSpanId"] as? String, name: span["name"] as? String ?? "",
              kind: span["kind"] as? Int ?? 0,
              start: UInt64(span["startTimeUnixNano"] as? String ?? "") ?? 0,
              end: UInt64(span["endTimeUnixNano"] as? String ?? "") ?? 0, attributes: attributes,
              errorStatus: (span["status"] as? [String: Any])?["code"] as? Int == 2))
        }
      }
    }
    return spans
  }
}
