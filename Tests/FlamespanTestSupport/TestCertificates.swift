import Foundation

/// A throwaway certificate authority and a server certificate it signed for 127.0.0.1 and localhost,
/// made with the `openssl` CLI, for tests of TLS export. Also a second, unrelated authority, whose
/// trust must not be enough.
public struct TestCertificates: Sendable {
  public var directory: URL
  /// PEM files.
  public var caCertificate: String
  public var serverCertificate: String
  public var serverKey: String
  public var otherCACertificate: String

  /// Fails with openssl's own message when a step fails.
  public static func make(label: String) throws -> TestCertificates {
    let directory = try TestEnvironment.temporaryDirectory(label)
    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
    func openssl(_ arguments: [String]) throws {
      let result = try Run.command(["openssl"] + arguments)
      guard result.status == 0 else {
        throw TestFailure("openssl \(arguments.joined(separator: " ")): \(result.stderr)")
      }
    }
    for authority in ["ca", "other-ca"] {
      try openssl([
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=Flamespan test \(authority)", "-keyout", path("\(authority).key"), "-out",
        path("\(authority).pem"),
      ])
    }
    try openssl([
      "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout",
      path("server.key"), "-out", path("server.csr"),
    ])
    try "subjectAltName=IP:127.0.0.1,DNS:localhost\n".write(
      toFile: path("server.ext"), atomically: true, encoding: .utf8)
    try openssl([
      "x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
      "-CAcreateserial", "-days", "2", "-extfile", path("server.ext"), "-out", path("server.pem"),
    ])
    return TestCertificates(
      directory: directory, caCertificate: path("ca.pem"), serverCertificate: path("server.pem"),
      serverKey: path("server.key"), otherCACertificate: path("other-ca.pem"))
  }
}
