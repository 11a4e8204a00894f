import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Why a request failed, with errno where the system gave one, and what to do about it.
struct ExportTransportError: Error, CustomStringConvertible, Sendable {
  enum Code: Sendable, Equatable {
    case badURL
    case resolve
    case connect
    case timeout
    /// The server's certificate chain does not lead to a trusted CA.
    case certificateVerify
    /// The certificate is trusted but names another host.
    case certificateHost
    case tls
    case connectionClosed
    case other
  }

  var code: Code
  var errno: Int32 = 0
  var url: String
  var message: String

  var description: String {
    let reason = errno != 0 ? " (\(String(cString: strerror(errno))))" : ""
    return "\(url): \(message)\(reason)"
  }
}

struct HTTPResponse: Sendable {
  var status: Int
  var body: [UInt8]
}

/// PEM files of one destination's TLS settings (OTEL_EXPORTER_OTLP_[SIGNAL_]CERTIFICATE and friends).
struct ExportTLSFiles: Sendable, Equatable {
  /// CA certificates trusted instead of the system's bundle.
  var certificate: String?
  /// A client certificate and its key, for collectors that require mutual TLS.
  var clientCertificate: String?
  var clientKey: String?

  var isEmpty: Bool { certificate == nil && clientCertificate == nil && clientKey == nil }

  /// The TLS settings these files describe; each file is read now, so a missing or malformed one stops
  /// the agent at start rather than failing every export.
  func configuration() throws(ExportTLSFileError) -> TLSConfiguration {
    if let chain = clientCertificate, clientKey == nil {
      throw ExportTLSFileError(
        path: chain, what: "is a client certificate without its key: set the client key too")
    }
    if let key = clientKey, clientCertificate == nil {
      throw ExportTLSFileError(
        path: key, what: "is a client key without its certificate: set the client certificate too")
    }
    for path in [certificate, clientCertificate, clientKey].compactMap({ $0 })
    where access(path, R_OK) != 0 {
      throw ExportTLSFileError(
        path: path, what: "cannot be read: \(String(cString: strerror(errno)))")
    }
    var tls = TLSConfiguration.makeClientConfiguration()
    if let certificate {
      do {
        let roots = try NIOSSLCertificate.fromPEMFile(certificate)
        guard !roots.isEmpty else {
          throw ExportTLSFileError(path: certificate, what: "holds no PEM certificate")
        }
        tls.trustRoots = .certificates(roots)
      } catch let error as ExportTLSFileError {
        throw error
      } catch {
        throw ExportTLSFileError(
          path: certificate, what: "is not a PEM certificate file (\(error))")
      }
    }
    switch (clientCertificate, clientKey) {
    case (nil, nil): break
    case (let chain?, let key?):
      do {
        tls.certificateChain = try NIOSSLCertificate.fromPEMFile(chain).map { .certificate($0) }
      } catch {
        throw ExportTLSFileError(path: chain, what: "is not a PEM certificate file (\(error))")
      }
      do {
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
      } catch {
        throw ExportTLSFileError(path: key, what: "is not a PEM private key file (\(error))")
      }
    default: break  // refused above
    }
    return tls
  }
}

struct ExportTLSFileError: Error, CustomStringConvertible, Sendable {
  var path: String
  var what: String
  var description: String { "\(path) \(what)" }
}

/// The agent's one HTTP client: AsyncHTTPClient (SwiftNIO, TLS through swift-nio-ssl), kept for the
/// agent's life so connections to the collector stay open between windows (keep-alive), and shut down
/// when the export queue has drained. Destinations with TLS files of their own get their TLS settings
/// per request; the rest verify against the system's CA bundle.
final class ExportHTTPClient: @unchecked Sendable {
  static let maximumResponseBytes = 1 << 20

  private let client: HTTPClient
  private let tlsByDestination: [String: TLSConfiguration]
  private let lock = NSLock()
  private var isShutDown = false

  init(tlsByDestination: [String: TLSConfiguration] = [:]) {
    var pool = HTTPClient.Configuration.ConnectionPool()
    // The export queue retries with its own backoff; the pool must report a failed connect at once
    // instead of retrying it until the request's deadline.
    pool.retryConnectionEstablishment = false
    let configuration = HTTPClient.Configuration(
      tlsConfiguration: nil, redirectConfiguration: .disallow, timeout: .init(),
      connectionPool: pool, proxy: nil, decompression: .disabled)
    client = HTTPClient(
      eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    self.tlsByDestination = tlsByDestination
  }

  /// TLS settings read from each destination's files.
  convenience init(tlsFiles: [String: ExportTLSFiles]) throws(ExportTLSFileError) {
    var tls: [String: TLSConfiguration] = [:]
    for (destination, files) in tlsFiles { tls[destination] = try files.configuration() }
    self.init(tlsByDestination: tls)
  }

  /// Closes the pooled connections and waits until they are closed. Posting afterwards fails.
  func shutdown() {
    guard markShutDown() else { return }
    try? client.syncShutdown()
  }

  /// A queue dropped without drain() (tests, a failed start) still releases its connections; without
  /// waiting, since the last reference may go on any thread.
  deinit {
    if markShutDown() { client.shutdown { _ in } }
  }

  /// True for the first caller only.
  private func markShutDown() -> Bool {
    lock.withLock {
      defer { isShutDown = true }
      return !isShutDown
    }
  }

  func post(
    _ endpoint: HTTPEndpoint, destination: String, headers: [(String, String)], body: [UInt8],
    timeoutSeconds: Int = 10
  ) throws(ExportTransportError) -> HTTPResponse {
    let url = endpoint.description
    var fields = HTTPHeaders([("User-Agent", "flamespan-agent")])
    for (name, value) in headers { fields.add(name: name, value: value) }
    let request: HTTPClient.Request
    do {
      request = try HTTPClient.Request(
        url: url, method: .POST, headers: fields, body: .bytes(body),
        tlsConfiguration: endpoint.secure ? tlsByDestination[destination] : nil)
    } catch {
      throw ExportTransportError(code: .badURL, url: url, message: "not a usable URL: \(error)")
    }
    do {
      let response = try client.execute(
        request: request,
        delegate: ResponseAccumulator(request: request, maxBodySize: Self.maximumResponseBytes),
        deadline: .now() + .seconds(Int64(max(timeoutSeconds, 1)))
      ).wait()
      let bytes = response.body.map { Array($0.readableBytesView.prefix(64 << 10)) } ?? []
      return HTTPResponse(status: Int(response.status.code), body: bytes)
    } catch {
      throw Self.explain(error, endpoint: endpoint)
    }
  }

  /// What went wrong, in terms of what the user can change.
  static func explain(_ error: any Error, endpoint: HTTPEndpoint) -> ExportTransportError {
    let url = endpoint.description
    switch error {
    case NIOSSLError.handshakeFailed(let reason):
      let detail = "\(reason)"
      if detail.contains("CERTIFICATE_VERIFY_FAILED") {
        return ExportTransportError(
          code: .certificateVerify, url: url,
          message:
            "certificate verify failed: the collector's certificate is not signed by a trusted CA; set "
            + "OTEL_EXPORTER_OTLP_CERTIFICATE (or --certificate) to a PEM file of the CA that signed it"
        )
      }
      return ExportTransportError(
        code: .tls, url: url,
        message:
          "the TLS handshake failed (\(detail)); check that the collector serves TLS on this port, "
          + "or use http:// if it does not")
    case let error as NIOSSLExtraError where error == .failedToValidateHostname:
      return ExportTransportError(
        code: .certificateHost, url: url,
        message:
          "the collector's certificate does not name \(endpoint.host) (\(error)); use the host name "
          + "the certificate was issued for")
    case let error as NIOSSLError:
      return ExportTransportError(code: .tls, url: url, message: "TLS failed: \(error)")
    case let error as IOError:
      return ExportTransportError(
        code: .connect, errno: error.errnoCode, url: url, message: "cannot connect")
    case let error as NIOConnectionError:
      if let failure = error.connectionErrors.first {
        let errnoCode = (failure.error as? IOError)?.errnoCode ?? 0
        return ExportTransportError(
          code: .connect, errno: errnoCode, url: url,
          message: errnoCode == 0 ? "cannot connect: \(failure.error)" : "cannot connect")
      }
      return ExportTransportError(
        code: .resolve, url: url,
        message:
          "cannot resolve \(endpoint.host): \(error.dnsAError.map { "\($0)" } ?? error.dnsAAAAError.map { "\($0)" } ?? "no address")"
      )
    case let error as HTTPClientError:
      switch error {
      case .connectTimeout, .deadlineExceeded, .readTimeout, .writeTimeout:
        return ExportTransportError(
          code: .timeout, url: url, message: "no answer in time (\(error))")
      case .remoteConnectionClosed:
        return ExportTransportError(
          code: .connectionClosed, url: url,
          message: "the server closed the connection without answering")
      default:
        return ExportTransportError(code: .other, url: url, message: "\(error)")
      }
    default:
      return ExportTransportError(code: .other, url: url, message: "\(error)")
    }
  }
}
