import FlamespanBPF
import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

/// TLS plaintext through the SSL_read/SSL_write uprobes, against Python's http.server over OpenSSL and curl.
@Suite(.serialized) struct L7TLSTests {
  @Test(.requires(.bpf, .tool("openssl"), .tool("python3"), .tool("curl")))
  func httpsRequestsBecomeSpansWithTheCallersContext() throws {
    let directory = try TestEnvironment.temporaryDirectory("l7tls")
    try Data("hello over tls\n".utf8).write(to: directory.appendingPathComponent("index.html"))
    let key = directory.appendingPathComponent("key.pem").path
    let certificate = directory.appendingPathComponent("cert.pem").path
    let made = try Run.command([
      "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
      certificate,
      "-subj", "/CN=localhost", "-days", "1",
    ])
    #expect(made.status == 0, "\(made.stderr)")

    // Python's ssl module calls SSL_read_ex/SSL_write_ex (openssl s_server -WWW would not: its BIO
    // calls libssl's internal functions).
    let port = Loopback.freePort()
    let server = try BackgroundProcess(
      [
        "python3", "-c",
        """
        import http.server, ssl, sys
        server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.serve_forever()
        """,
        String(port), certificate, key,
      ], directory: directory)
    defer { server.stop() }
    // Ready (libssl mapped, socket listening) once a TLS handshake works.
    let ready = try waitUntil(seconds: 10) {
      try Run.command([
        "curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}",
        "https://127.0.0.1:\(port)/index.html",
      ]).stdout == "200"
    }
    #expect(ready, "the TLS server did not answer on port \(port)")

    let tracer = try L7Tracer(
      configuration: L7TracerConfiguration(pids: [server.pid]))
    defer { tracer.close() }
    #expect(tracer.tlsLibraries.contains { $0.contains("libssl.so") }, "\(tracer.tlsLibraries)")
    let trace = "0af7651916cd43dd8448eb211c80319c"
    let parent = "b7ad6b7169203331"
    let request = try Run.command([
      "curl", "-sk", "-o", "/dev/null", "-H", "traceparent: 00-\(trace)-\(parent)-01",
      "https://127.0.0.1:\(port)/index.html?token=secret",
    ])
    #expect(request.status == 0)
    var exchanges: [HTTPExchange] = []
    let until = Date().addingTimeInterval(1)
    while Date() < until {
      try tracer.poll(timeoutMilliseconds: 50) { event in
        if case .exchange(let exchange) = event { exchanges.append(exchange) }
      }
    }
    let span = exchanges.first { $0.kind == .server }
    #expect(span != nil, "no TLS exchange; counters \(tracer.counters())")
    #expect(span.map { String(decoding: $0.requestLine, as: UTF8.self) } == "GET /index.html")
    #expect(span.map { HexCoding.encode($0.traceID) } == trace)
    #expect(span?.parentSpanID.map(HexCoding.encode) == parent)
    #expect(span?.status == 200)
    #expect(span?.localPort == port)
  }
}
