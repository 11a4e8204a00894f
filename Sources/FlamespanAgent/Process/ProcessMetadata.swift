import Foundation
import Glibc

/// What the agent says about the process that produced samples or spans: the OTLP resource attributes.
/// Command-line arguments are never read: they often carry secrets (tokens, passwords, DSNs).
struct ProcessResource: Sendable, Equatable {
  var pid: Int32
  var executableName: String
  var executablePath: String?
  var containerID: String?
  var serviceName: String
}

/// Reads /proc for pids once a minute at most, and forgets pids not asked about for five minutes.
final class ProcessMetadataCache: @unchecked Sendable {
  private struct Entry {
    var resource: ProcessResource
    var readAt: UInt64
    var usedAt: UInt64
  }

  private let procRoot: String
  /// service.name for processes without their own OTEL_SERVICE_NAME; nil means the executable name.
  private let fallbackServiceName: String?
  private var entries: [Int32: Entry] = [:]
  private let lock = NSLock()
  private static let refreshNanos: UInt64 = 60_000_000_000
  private static let forgetNanos: UInt64 = 300_000_000_000

  init(procRoot: String = "/proc", fallbackServiceName: String? = nil) {
    self.procRoot = procRoot
    self.fallbackServiceName = fallbackServiceName
  }

  /// `threadName` names a process that has already exited (its /proc entry is gone).
  func resource(pid: Int32, threadName: String, now: UInt64) -> ProcessResource {
    lock.withLock {
      if var entry = entries[pid], now &- entry.readAt < Self.refreshNanos {
        entry.usedAt = now
        entries[pid] = entry
        return entry.resource
      }
      let resource =
        read(pid: pid) ?? entries[pid]?.resource
        ?? ProcessResource(
          pid: pid, executableName: threadName, executablePath: nil, containerID: nil,
          serviceName: fallbackServiceName ?? threadName)
      entries[pid] = Entry(resource: resource, readAt: now, usedAt: now)
      if entries.count > 4096 || now % 64 == 0 {
        entries = entries.filter { now &- $0.value.usedAt < Self.forgetNanos }
      }
      return resource
    }
  }

  private func read(pid: Int32) -> ProcessResource? {
    let directory = "\(procRoot)/\(pid)"
    let path = Self.readLink("\(directory)/exe")
    let comm = Self.readSmallFile("\(directory)/comm").map {
      String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .newlines)
    }
    guard path != nil || comm != nil else { return nil }
    let cleanPath = path.map { $0.hasSuffix(" (deleted)") ? String($0.dropLast(10)) : $0 }
    let name = cleanPath.map { ($0 as NSString).lastPathComponent } ?? comm ?? "pid \(pid)"
    let container = Self.readSmallFile("\(directory)/cgroup").flatMap {
      Self.containerID(cgroup: String(decoding: $0, as: UTF8.self))
    }
    let ownService = Self.readSmallFile("\(directory)/environ", limit: 256 << 10).flatMap {
      Self.environmentValue("OTEL_SERVICE_NAME", in: $0)
    }
    return ProcessResource(
      pid: pid, executableName: name, executablePath: cleanPath, containerID: container,
      serviceName: ownService ?? fallbackServiceName ?? name)
  }

  /// The container id in a /proc/PID/cgroup file: the last 64-hex-digit run in a path, which is how
  /// Docker (`docker-<id>.scope`, `/docker/<id>`), containerd (`cri-containerd-<id>.scope`), CRI-O
  /// (`crio-<id>.scope`) and Podman (`libpod-<id>.scope`) name their cgroups.
  static func containerID(cgroup: String) -> String? {
    var found: String?
    for line in cgroup.split(separator: "\n") {
      // hierarchy-id:controllers:path; the path may itself contain ':'.
      let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
      guard fields.count == 3 else { continue }
      var run: [Character] = []
      for character in fields[2] + "/" {
        if character.isHexDigit && !character.isUppercase {
          run.append(character)
          continue
        }
        if run.count == 64 { found = String(run) }
        run.removeAll(keepingCapacity: true)
      }
    }
    return found
  }

  static func environmentValue(_ name: String, in environ: [UInt8]) -> String? {
    let prefix = Array((name + "=").utf8)
    for entry in environ.split(separator: 0) where entry.starts(with: prefix) {
      let value = String(decoding: entry.dropFirst(prefix.count), as: UTF8.self)
      return value.isEmpty ? nil : value
    }
    return nil
  }

  static func readLink(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let count = readlink(path, &buffer, buffer.count - 1)
    guard count > 0 else { return nil }
    return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// Up to `limit` bytes of a /proc file, which reports size 0, so it is read until EOF.
  static func readSmallFile(_ path: String, limit: Int = 64 << 10) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 8192)
    while data.count < limit {
      let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
      if count < 0 && errno == EINTR { continue }
      guard count > 0 else { break }
      data.append(contentsOf: buffer[0..<count])
    }
    return data
  }
}
