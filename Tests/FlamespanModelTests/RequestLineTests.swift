import FlamespanModel
import Testing

/// The one request-line parser: what `record`, the agent's sample labels and exported spans all name a
/// request by.
@Suite struct RequestLineTests {
  static func parse(_ line: String) -> RequestLine? { RequestLine.parse(Array(line.utf8)) }

  @Test(
    arguments: [
      ("GET /orders HTTP/1.1", RequestLine(method: "GET", path: "/orders")),
      ("GET /orders", RequestLine(method: "GET", path: "/orders")),
      ("GET /search?q=secret HTTP/1.1", RequestLine(method: "GET", path: "/search")),
      ("GET /page#top HTTP/1.0", RequestLine(method: "GET", path: "/page")),
      ("GET /a HTTP/1.1\r\nHost: x\r\n", RequestLine(method: "GET", path: "/a")),
      // Cut by the kernel's 128-byte bound inside the version.
      ("POST /pay HTT", RequestLine(method: "POST", path: "/pay")),
      ("POST /pay ", RequestLine(method: "POST", path: "/pay")),
      // Any RFC 9110 token is a method; the kernel decides which ones it follows.
      ("PURGE /x HTTP/1.1", RequestLine(method: "PURGE", path: "/x")),
      ("PROPFIND /dav/ HTTP/1.1", RequestLine(method: "PROPFIND", path: "/dav/")),
      ("M-SEARCH * HTTP/1.1", nil),
      // Absolute-form, as sent to proxies: path and host.
      ("GET http://h/a HTTP/1.1", RequestLine(method: "GET", path: "/a", host: "h")),
      ("GET http://h HTTP/1.1", RequestLine(method: "GET", path: "/", host: "h")),
      ("GET http://h:8080/a?b", RequestLine(method: "GET", path: "/a", host: "h", port: 8080)),
      (
        "GET https://user:pw@h.example/a", RequestLine(method: "GET", path: "/a", host: "h.example")
      ),
      ("GET http://[::1]:81/v6", RequestLine(method: "GET", path: "/v6", host: "::1", port: 81)),
      ("GET http:///nohost", nil),
      ("GET http://h:99999/a", nil),
      // Asterisk-form belongs to OPTIONS; authority-form to CONNECT.
      ("OPTIONS * HTTP/1.1", RequestLine(method: "OPTIONS", path: "*")),
      ("GET * HTTP/1.1", nil),
      (
        "CONNECT example.com:443 HTTP/1.1",
        RequestLine(method: "CONNECT", path: "example.com:443", host: "example.com", port: 443)
      ),
      ("CONNECT example.com HTTP/1.1", nil),
    ] as [(String, RequestLine?)])
  func parses(line: String, expected: RequestLine?) {
    #expect(Self.parse(line) == expected, "\(line.debugDescription)")
  }

  @Test(arguments: [
    "", "GET", "GET ", "get/x", "\u{16}\u{03}\u{01}garbage", "GET /a HTTP/2", "GET /a SPDY/3",
    "GE(T /a", "GET a/b", "GET /a\u{7f}b", "GET /tab\tx", "HTTP/1.1 200 OK", "GET  /double-space",
  ])
  func rejects(line: String) {
    #expect(Self.parse(line) == nil, "\(line.debugDescription)")
  }

  @Test func namesTheSpanMethodAndPath() throws {
    let line = try #require(Self.parse("DELETE http://api/items/7?force=1 HTTP/1.1"))
    #expect(line.spanName == "DELETE /items/7")
  }
}
