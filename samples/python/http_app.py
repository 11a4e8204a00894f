"""An HTTP server built on Python's own http.server (ThreadingHTTPServer, a thread per connection), whose
requests burn CPU in known Python functions and in hashlib, for checking Python frames under spans.

    python3 http_app.py PORT      (PORT 0 picks a free one; prints "listening PORT" once it accepts)

    GET /burn?n=N   N rounds (default 4) of: python_loop (pure Python, ≈ 60 %), then hash_loop
                    (hashlib.sha256 on 256 KiB, ≈ 40 %: OpenSSL runs below it, with the GIL released)

Root first, a request's hot stack reads: … → serve_forever → … → Handler.do_GET → handler → python_loop, or
… → handler → hash_loop → (native) OpenSSL SHA-256. Responses are HTTP/1.1 keep-alive with a length, so wrk
reuses its connections; requests are not logged.
"""
import hashlib
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

BLOCK = bytes(range(256)) * 1024  # 256 KiB


def python_loop(rounds):
    total = 7
    for value in range(rounds * 15_000):
        total = (total * 33 + value) & 0xFFFFFFFF
    return total


def hash_loop(rounds):
    digest = b""
    for _ in range(rounds * 4):
        # Chained through update(), not BLOCK + digest: copying 256 KiB would be the interpreter's work.
        hasher = hashlib.sha256(BLOCK)
        hasher.update(digest)
        digest = hasher.digest()
    return digest


def handler(rounds):
    checksum = python_loop(rounds)
    digest = hash_loop(rounds)
    return f"{checksum:08x} {digest.hex()}\n".encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path != "/burn":
            self.send_error(404)
            return
        rounds = int(parse_qs(url.query).get("n", ["4"])[0])
        body = handler(max(1, min(rounds, 1000)))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
