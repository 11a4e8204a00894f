import FlamespanModel
import Foundation
import Glibc

struct HTTPRequest: Sendable {
  var method: String
  var path: String
  var query: [String: String]
  /// Header values by lowercased name (the last one wins).
  var headers: [String: String] = [:]
}

struct HTTPServerResponse: Sendable {
  var status: Int
  var contentType: String
  var body: [UInt8]
  var headers: [(String, String)] = []

  static func text(_ status: Int, _ text: String) -> HTTPServerResponse {
    HTTPServerResponse(
      status: status, contentType: "text/plain; charset=utf-8", body: Array(text.utf8))
  }

  static func json(_ text: String) -> HTTPServerResponse {
    HTTPServerResponse(status: 200, contentType: "application/json", body: Array(text.utf8))
  }

  /// `{"error": status text, "message": what to do}`: what the API answers when it refuses a request.
  static func jsonError(_ status: Int, _ message: String) -> HTTPServerResponse {
    HTTPServerResponse(
      status: status, contentType: "application/json",
      body: Array(
        "{\"error\":\(JSONText.quote(HTTPServer.reason(status))),\"message\":\(JSONText.quote(message))}\n"
          .utf8))
  }
}

struct HTTPServerError: Error, CustomStringConvertible {
  var address: String
  var errno: Int32
  var message: String
  var description: String { "\(message) \(address): \(String(cString: strerror(errno)))" }
}

/// Who may use the server: the `Host` names it answers to (against DNS rebinding) and an optional bearer
/// token. `/healthz` is open to all; the page itself (`/`) needs no token, since it holds no data and asks
/// for the token the API needs.
struct HTTPAccessPolicy: Sendable {
  /// Lowercased `host` or `host:port` entries; a bare host matches any port. nil: any Host.
  var allowedHosts: Set<String>?
  var token: [UInt8]?

  static let openPaths: Set<String> = ["/healthz"]
  static let tokenFreePaths: Set<String> = ["/healthz", "/", "/index.html"]

  /// The listen address, localhost, 127.0.0.1 and [::1], each at `port`, plus `extra` ("*": any Host).
  static func defaultHosts(listenHost: String, port: UInt16, extra: [String]) -> Set<String>? {
    if extra.contains("*") { return nil }
    var hosts: Set<String> = Set(extra.map { $0.lowercased() })
    let listen =
      listenHost.contains(":") && !listenHost.hasPrefix("[") ? "[\(listenHost)]" : listenHost
    for host in [listen, "localhost", "127.0.0.1", "[::1]"] {
      hosts.insert("\(host.lowercased()):\(port)")
    }
    return hosts
  }

  func check(_ request: HTTPRequest) -> HTTPServerResponse? {
    if Self.openPaths.contains(request.path) { return nil }
    if let allowedHosts {
      guard let host = request.headers["host"]?.lowercased(), !host.isEmpty else {
        return .jsonError(400, "a Host header is required")
      }
      // A Host without a port means port 80, as a browser sends it.
      let bare: Substring
      if host.hasPrefix("[") {
        bare = host.prefix { $0 != "]" } + "]"
      } else {
        bare = host.prefix { $0 != ":" }
      }
      let withPort = bare.count == host.count ? "\(host):80" : host
      guard allowedHosts.contains(withPort) || allowedHosts.contains(String(bare)) else {
        return .jsonError(
          403,
          "Host \(host) is not an address of this agent; add it with --allowed-hosts if it is one")
      }
    }
    if let token, !Self.tokenFreePaths.contains(request.path) {
      let given = request.headers["authorization"].flatMap { value -> [UInt8]? in
        guard value.count > 7, value.prefix(7).lowercased() == "bearer " else { return nil }
        return Array(value.dropFirst(7).trimmingCharacters(in: .whitespaces).utf8)
      }
      guard let given, Self.constantTimeEqual(given, token) else {
        var response = HTTPServerResponse.jsonError(
          401, "this agent requires an API token: send Authorization: Bearer <token>")
        response.headers.append(("WWW-Authenticate", "Bearer"))
        return response
      }
    }
    return nil
  }

  /// Time independent of where the first difference is; only the length can be told apart.
  static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = UInt8(a.count == b.count ? 0 : 1)
    for index in 0..<max(a.count, b.count) {
      difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0xFF)
    }
    return difference == 0
  }
}

/// Bounds that keep one client, slow or heavy, from taking the server from the others.
struct HTTPServerLimits: Sendable {
  /// The whole request head must arrive within this, however it trickles in.
  var headDeadlineNanos: UInt64 = 10_000_000_000
  /// The whole response must be taken within this.
  var writeDeadlineNanos: UInt64 = 10_000_000_000
  var maximumHeadBytes = 16384
  /// Open connections, all clients together and from one address; past either cap the oldest connection
  /// still sending its head (else the oldest still taking its answer) is closed to make room, so a slow
  /// client cannot crowd out a quick one.
  var maximumConnections = 256
  var maximumConnectionsPerClient = 64
  /// Threads for /api/ (heavy) requests, and how many more may wait for one; past that, 503 at once.
  var apiWorkers = 2
  var apiQueue = 8
  /// Threads for everything else (/metrics, the page, 404s), so the API never holds them.
  var controlWorkers = 2
}

/// What the server refused or cut short, for /metrics.
final class HTTPServerCounters: @unchecked Sendable {
  private let lock = NSLock()
  private var values: [String: Int] = [:]
  func add(_ reason: String) { lock.withLock { values[reason, default: 0] += 1 } }
  var snapshot: [String: Int] { lock.withLock { values } }
  static let reasons = [
    "head_timeout", "write_timeout", "evicted", "api_busy", "bad_request", "forbidden_host",
    "unauthorized", "over_budget", "range_too_wide",
  ]
}

/// A small HTTP/1.1 server for the UI and API: GET and HEAD, one request per connection.
///
/// One thread polls every connection: it accepts, reads request heads and writes responses without
/// blocking, so a client that trickles its head or reads its answer slowly holds a file descriptor and a
/// buffer, never a thread. Complete requests go to one of two small pools: /api/ requests to the API pool
/// (bounded queue, 503 past it, low CPU priority), everything else to the control pool, which the API can
/// never fill, so /metrics and /healthz answer while the API is saturated.
final class HTTPServer: @unchecked Sendable {
  private enum State {
    case readingHead
    case working
    case writing(bytes: [UInt8], offset: Int)
  }

  private final class Connection {
    let fd: Int32
    let client: String
    let acceptedAt: UInt64
    var deadline: UInt64
    var buffer: [UInt8] = []
    var state = State.readingHead
    init(fd: Int32, client: String, now: UInt64, deadline: UInt64) {
      self.fd = fd
      self.client = client
      acceptedAt = now
      self.deadline = deadline
    }
  }

  private let listenFD: Int32
  /// A pipe whose write end wakes the loop when a worker has finished a response.
  private let wakeFD: Int32
  private let wakeReadFD: Int32
  private let handler: @Sendable (HTTPRequest) -> HTTPServerResponse
  private let limits: HTTPServerLimits
  private var policy: HTTPAccessPolicy
  let counters: HTTPServerCounters
  private let lock = NSLock()
  private var stopped = false
  private var finished: [(fd: Int32, response: HTTPServerResponse, head: Bool)] = []
  private var apiPending = 0
  // Touched by the loop thread only.
  private var connections: [Int32: Connection] = [:]
  private var perClient: [String: Int] = [:]
  private var apiPool: WorkerPool!
  private var controlPool: WorkerPool!
  let boundPort: UInt16
  let host: String

  /// `address` is "host:port"; the host must be an IPv4 or IPv6 literal ("127.0.0.1", "[::1]").
  /// `allowedHosts` are extra Host header values to accept ("*": any); `token` enables bearer auth.
  init(
    address: String, limits: HTTPServerLimits = HTTPServerLimits(), allowedHosts: [String] = [],
    token: [UInt8]? = nil, counters: HTTPServerCounters = HTTPServerCounters(),
    handler: @escaping @Sendable (HTTPRequest) -> HTTPServerResponse
  ) throws(HTTPServerError) {
    self.handler = handler
    self.limits = limits
    self.counters = counters
    guard let colon = address.lastIndex(of: ":"),
      let port = UInt16(address[address.index(after: colon)...])
    else {
      throw HTTPServerError(address: address, errno: EINVAL, message: "expected host:port in")
    }
    var host = String(address[..<colon])
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    self.host = host
    let isIPv6 = host.contains(":")
    let fd = socket(
      isIPv6 ? AF_INET6 : AF_INET,
      Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
    guard fd >= 0 else {
      throw HTTPServerError(address: address, errno: errno, message: "cannot open a socket for")
    }
    var yes: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
    var bound: Int32
    if isIPv6 {
      var socketAddress = sockaddr_in6()
      socketAddress.sin6_family = sa_family_t(AF_INET6)
      socketAddress.sin6_port = port.bigEndian
      guard inet_pton(AF_INET6, host, &socketAddress.sin6_addr) == 1 else {
        close(fd)
        throw HTTPServerError(address: address, errno: EINVAL, message: "not an IPv6 address:")
      }
      bound = withUnsafePointer(to: &socketAddress) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
        }
      }
    } else {
      var socketAddress = sockaddr_in()
      socketAddress.sin_family = sa_family_t(AF_INET)
      socketAddress.sin_port = port.bigEndian
      guard inet_pton(AF_INET, host, &socketAddress.sin_addr) == 1 else {
        close(fd)
        throw HTTPServerError(address: address, errno: EINVAL, message: "not an IPv4 address:")
      }
      bound = withUnsafePointer(to: &socketAddress) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
      }
    }
    guard bound == 0, listen(fd, 128) == 0 else {
      let code = errno
      close(fd)
      throw HTTPServerError(address: address, errno: code, message: "cannot listen on")
    }
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    _ = withUnsafeMutablePointer(to: &storage) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    // sin_port and sin6_port sit at the same offset.
    boundPort = withUnsafePointer(to: &storage) {
      $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
        UInt16(bigEndian: $0.pointee.sin_port)
      }
    }
    listenFD = fd
    var pipeEnds: [Int32] = [-1, -1]
    _ = pipe(&pipeEnds)
    for end in pipeEnds {
      _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
      _ = fcntl(end, F_SETFD, FD_CLOEXEC)
    }
    wakeReadFD = pipeEnds[0]
    wakeFD = pipeEnds[1]
    policy = HTTPAccessPolicy(
      allowedHosts: HTTPAccessPolicy.defaultHosts(
        listenHost: host, port: boundPort, extra: allowedHosts),
      token: token)
  }

  func start() {
    apiPool = WorkerPool(name: "flamespan-api", threads: limits.apiWorkers, nice: 10)
    controlPool = WorkerPool(
      name: "flamespan-http-control", threads: limits.controlWorkers, nice: 0)
    let thread = Thread { [self] in loop() }
    thread.name = "flamespan-http"
    thread.start()
  }

  func stop() {
    lock.withLock { stopped = true }
    wake()
  }

  private func wake() {
    var one: UInt8 = 1
    _ = write(wakeFD, &one, 1)
  }

  // MARK: The loop

  private func loop() {
    var pollSet: [pollfd] = []
    while !lock.withLock({ stopped }) {
      pollSet.removeAll(keepingCapacity: true)
      pollSet.append(pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0))
      pollSet.append(pollfd(fd: wakeReadFD, events: Int16(POLLIN), revents: 0))
      var nearest = UInt64.max
      for connection in connections.values {
        switch connection.state {
        case .readingHead:
          pollSet.append(pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0))
        case .writing:
          pollSet.append(pollfd(fd: connection.fd, events: Int16(POLLOUT), revents: 0))
        case .working: continue
        }
        nearest = min(nearest, connection.deadline)
      }
      let now = KernelClock.monotonicNanos()
      let timeout =
        nearest == .max ? 1000 : Int32(min(1000, (nearest &- min(nearest, now)) / 1_000_000 + 1))
      let ready = poll(&pollSet, nfds_t(pollSet.count), timeout)
      if ready < 0 && errno != EINTR { usleep(10_000) }
      if pollSet[1].revents != 0 {
        var drain = [UInt8](repeating: 0, count: 256)
        while read(wakeReadFD, &drain, drain.count) > 0 {}
      }
      for (fd, response, head) in lock.withLock({ () -> [(Int32, HTTPServerResponse, Bool)] in
        defer { finished.removeAll() }
        return finished
      }) {
        guard let connection = connections[fd] else { continue }
        respond(connection, response, head: head)
      }
      if pollSet[0].revents != 0 { acceptAll() }
      for entry in pollSet.dropFirst(2) where entry.revents != 0 {
        guard let connection = connections[entry.fd] else { continue }
        switch connection.state {
        case .readingHead: readHead(connection)
        case .writing: writeSome(connection)
        case .working: break
        }
      }
      expire(now: KernelClock.monotonicNanos())
    }
    for connection in connections.values { close(connection.fd) }
    connections.removeAll()
    close(listenFD)
  }

  private func acceptAll() {
    while true {
      var storage = sockaddr_storage()
      var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
      let fd = withUnsafeMutablePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          accept(listenFD, $0, &length)
        }
      }
      if fd < 0 {
        if errno == EINTR || errno == ECONNABORTED { continue }
        return
      }
      _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
      _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
      let client = Self.clientAddress(storage)
      if perClient[client, default: 0] >= limits.maximumConnectionsPerClient {
        evictOldest { $0.client == client }
      }
      if connections.count >= limits.maximumConnections { evictOldest { _ in true } }
      if perClient[client, default: 0] >= limits.maximumConnectionsPerClient
        || connections.count >= limits.maximumConnections
      {
        // Every connection is already past its head: there is nothing slow to give way.
        counters.add("evicted")
        close(fd)
        continue
      }
      let now = KernelClock.monotonicNanos()
      let connection = Connection(
        fd: fd, client: client, now: now, deadline: now + limits.headDeadlineNanos)
      connections[fd] = connection
      perClient[client, default: 0] += 1
      // On loopback the head is usually there already.
      readHead(connection)
    }
  }

  /// Closes the oldest matching connection still sending its head, else the oldest still being sent its
  /// answer (a slow reader): never one whose request is being worked on.
  private func evictOldest(where matches: (Connection) -> Bool) {
    var oldestReading: Connection?
    var oldestWriting: Connection?
    for connection in connections.values where matches(connection) {
      switch connection.state {
      case .readingHead:
        if oldestReading.map({ connection.acceptedAt < $0.acceptedAt }) ?? true {
          oldestReading = connection
        }
      case .writing:
        if oldestWriting.map({ connection.acceptedAt < $0.acceptedAt }) ?? true {
          oldestWriting = connection
        }
      case .working: continue
      }
    }
    if let oldest = oldestReading ?? oldestWriting {
      counters.add("evicted")
      finish(oldest)
    }
  }

  private func finish(_ connection: Connection) {
    close(connection.fd)
    connections[connection.fd] = nil
    let remaining = perClient[connection.client, default: 1] - 1
    perClient[connection.client] = remaining > 0 ? remaining : nil
  }

  private func expire(now: UInt64) {
    for connection in connections.values where connection.deadline <= now {
      switch connection.state {
      case .readingHead:
        counters.add("head_timeout")
        // Best effort: the socket buffer takes this much without blocking.
        let bytes = Self.serialize(.text(408, "request head not received within the deadline\n"))
        _ = bytes.withUnsafeBytes {
          send(connection.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
        }
        finish(connection)
      case .writing:
        counters.add("write_timeout")
        finish(connection)
      case .working: break
      }
    }
  }

  private func readHead(_ connection: Connection) {
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
      let count = chunk.withUnsafeMutableBytes { recv(connection.fd, $0.baseAddress, $0.count, 0) }
      if count < 0 {
        if errno == EINTR { continue }
        if errno == EAGAIN || errno == EWOULDBLOCK { return }
        return finish(connection)
      }
      if count == 0 { return finish(connection) }
      connection.buffer.append(contentsOf: chunk[0..<count])
      if let end = HTTPHead.endOfHead(connection.buffer) {
        let head = Array(connection.buffer[0..<end])
        connection.buffer = []
        return dispatch(connection, head: head)
      }
      if connection.buffer.count >= limits.maximumHeadBytes {
        counters.add("bad_request")
        return respond(connection, .text(431, "request head too large\n"), head: false)
      }
    }
  }

  private func dispatch(_ connection: Connection, head: [UInt8]) {
    let request: HTTPRequest
    switch Self.parse(head) {
    case .failure(let refusal):
      counters.add("bad_request")
      return respond(connection, refusal.response, head: false)
    case .success(let parsed): request = parsed
    }
    let isHead = request.method == "HEAD"
    if let refusal = policy.check(request) {
      counters.add(
        refusal.status == 403
          ? "forbidden_host" : refusal.status == 401 ? "unauthorized" : "bad_request")
      return respond(connection, refusal, head: isHead)
    }
    if request.path == "/healthz" {
      return respond(connection, .text(200, "ok\n"), head: isHead)
    }
    connection.state = .working
    let fd = connection.fd
    let job: @Sendable () -> Void = { [self, handler] in
      let response = handler(request)
      lock.withLock { finished.append((fd, response, isHead)) }
      wake()
    }
    if request.path.hasPrefix("/api/") {
      let admitted = lock.withLock {
        guard apiPending < limits.apiWorkers + limits.apiQueue else { return false }
        apiPending += 1
        return true
      }
      guard admitted else {
        counters.add("api_busy")
        var busy = HTTPServerResponse.jsonError(
          503,
          "the API is busy with \(limits.apiWorkers + limits.apiQueue) queries running or waiting; retry in a moment"
        )
        busy.headers.append(("Retry-After", "1"))
        return respond(connection, busy, head: isHead)
      }
      apiPool.submit { [self] in
        job()
        lock.withLock { apiPending -= 1 }
      }
    } else {
      controlPool.submit(job)
    }
  }

  private func respond(_ connection: Connection, _ response: HTTPServerResponse, head: Bool) {
    var bytes = Self.serialize(response)
    if head { bytes.removeLast(response.body.count) }
    connection.state = .writing(bytes: bytes, offset: 0)
    connection.deadline = KernelClock.monotonicNanos() + limits.writeDeadlineNanos
    writeSome(connection)
  }

  private func writeSome(_ connection: Connection) {
    guard case .writing(let bytes, var offset) = connection.state else { return }
    while offset < bytes.count {
      let sent = bytes.withUnsafeBytes {
        send(connection.fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
      }
      if sent < 0 {
        if errno == EINTR { continue }
        if errno == EAGAIN || errno == EWOULDBLOCK {
          connection.state = .writing(bytes: bytes, offset: offset)
          return
        }
        return finish(connection)
      }
      offset += sent
    }
    finish(connection)
  }

  // MARK: Parsing and serializing

  static func parse(_ head: [UInt8]) -> Result<HTTPRequest, HTTPServerResponseRefusal> {
    let lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n")
    let parts = (lines.first ?? "").split(separator: " ")
    guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
      return .failure(.init(.text(400, "bad request line\n")))
    }
    guard parts[0] == "GET" || parts[0] == "HEAD" else {
      return .failure(.init(.text(405, "only GET\n")))
    }
    var headers: [String: String] = [:]
    for line in lines.dropFirst() where !line.isEmpty {
      guard let colon = line.firstIndex(of: ":") else {
        return .failure(.init(.text(400, "bad header line\n")))
      }
      headers[line[..<colon].lowercased()] = line[line.index(after: colon)...]
        .trimmingCharacters(in: .whitespaces)
    }
    // GET and HEAD carry no body; one announced would be left unread, so it is refused.
    if headers["transfer-encoding"] != nil || (headers["content-length"].map { $0 != "0" } ?? false)
    {
      return .failure(.init(.text(413, "request bodies are not accepted\n")))
    }
    let target = String(parts[1])
    let pathPart = target.prefix { $0 != "?" }
    var query: [String: String] = [:]
    if let mark = target.firstIndex(of: "?") {
      for pair in target[target.index(after: mark)...].split(separator: "&") {
        let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        let key = String(kv[0]).removingPercentEncoding ?? String(kv[0])
        let value =
          kv.count > 1
          ? (String(kv[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "")
          : ""
        query[key] = value
      }
    }
    return .success(
      HTTPRequest(
        method: String(parts[0]),
        path: String(pathPart).removingPercentEncoding ?? String(pathPart), query: query,
        headers: headers))
  }

  static func reason(_ status: Int) -> String {
    switch status {
    case 200: return "OK"
    case 400: return "Bad Request"
    case 401: return "Unauthorized"
    case 403: return "Forbidden"
    case 404: return "Not Found"
    case 405: return "Method Not Allowed"
    case 408: return "Request Timeout"
    case 413: return "Content Too Large"
    case 431: return "Request Header Fields Too Large"
    case 500: return "Internal Server Error"
    case 503: return "Service Unavailable"
    default: return "Status"
    }
  }

  static func serialize(_ response: HTTPServerResponse) -> [UInt8] {
    var head =
      "HTTP/1.1 \(response.status) \(reason(response.status))\r\nContent-Type: \(response.contentType)\r\n"
      + "Content-Length: \(response.body.count)\r\nCache-Control: no-store\r\n"
      + "X-Content-Type-Options: nosniff\r\nConnection: close\r\n"
    for (name, value) in response.headers { head += "\(name): \(value)\r\n" }
    return Array((head + "\r\n").utf8) + response.body
  }

  private static func string(_ text: [CChar]) -> String {
    String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  private static func clientAddress(_ storage: sockaddr_storage) -> String {
    var storage = storage
    let family = Int32(storage.ss_family)
    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
    return withUnsafePointer(to: &storage) { pointer -> String in
      if family == AF_INET6 {
        return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
          var address = $0.pointee.sin6_addr
          inet_ntop(AF_INET6, &address, &text, socklen_t(text.count))
          return Self.string(text)
        }
      }
      return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
        var address = $0.pointee.sin_addr
        inet_ntop(AF_INET, &address, &text, socklen_t(text.count))
        return Self.string(text)
      }
    }
  }
}

/// A response sent instead of handling a request that could not be parsed.
struct HTTPServerResponseRefusal: Error {
  var response: HTTPServerResponse
  init(_ response: HTTPServerResponse) { self.response = response }
}

/// A fixed number of threads taking jobs in order; `nice` lowers their CPU priority (Linux threads have
/// their own), so heavy queries yield to sampling and symbolization.
final class WorkerPool: @unchecked Sendable {
  private let condition = NSCondition()
  private var jobs: [@Sendable () -> Void] = []

  init(name: String, threads: Int, nice: Int32) {
    for index in 0..<max(threads, 1) {
      let thread = Thread { [self] in
        if nice != 0, let tid = Self.threadID() {
          setpriority(__priority_which_t(PRIO_PROCESS.rawValue), tid, nice)
        }
        while true {
          condition.lock()
          while jobs.isEmpty { condition.wait() }
          let job = jobs.removeFirst()
          condition.unlock()
          job()
        }
      }
      thread.name = "\(name)-\(index)"
      thread.start()
    }
  }

  /// This thread's kernel id, from /proc/thread-self ("PID/task/TID").
  private static func threadID() -> id_t? {
    var link = [CChar](repeating: 0, count: 64)
    let count = readlink("/proc/thread-self", &link, link.count - 1)
    guard count > 0 else { return nil }
    let text = String(decoding: link[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return text.split(separator: "/").last.flatMap { id_t($0) }
  }

  func submit(_ job: @escaping @Sendable () -> Void) {
    condition.lock()
    jobs.append(job)
    condition.signal()
    condition.unlock()
  }
}
