#!/usr/bin/env bash
# The request-head cases of issue 25 (item 1) against one flamespan build, through `flamespan record`:
# Python's ThreadingHTTPServer (HTTP/1.1, keep-alive) and raw-socket clients that send 100 pipelined
# requests in one write, requests one byte per write and a request line split across two writes, and a
# traceparent 1.5, 6 and 9 KB into the head. Prints, per case, the spans the recording has and how many
# carry the caller's trace, then the summary's HTTP line (what was counted).
#   FLAMESPAN=/path/to/flamespan bench/l7/head-cases.sh
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"
# shellcheck source=bench/l7/common.sh
source bench/l7/common.sh
FLAMESPAN=${FLAMESPAN:-.build/release/flamespan}
OUT=$(bench_directory head-cases)
TRACE=4bf92f3577b34da6a3ce929d0e0e4736

python3 -u -c '
import http.server
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *arguments):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
' >"$OUT/port" &
SERVER=$!
trap 'kill -9 $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [[ -s $OUT/port ]] && break; sleep 0.05; done
PORT=$(cat "$OUT/port")

"$FLAMESPAN" record -F 99 --pid "$SERVER" --spans-output "$OUT/spans.json" -o "$OUT/profile.folded" 2>"$OUT/record.log" &
RECORDER=$!
recorder_started "$RECORDER" "$OUT/record.log"

python3 - "$PORT" "$TRACE" <<'PYTHON'
import socket, sys, time
port, trace = int(sys.argv[1]), sys.argv[2]
def traceparent(i):
    return "00-%s-%016x-01" % (trace, i + 1)
def connect():
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s
def read_to_end(s):
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
def read_response(s):
    data = b""
    while not data.endswith(b"ok\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data
# 100 pipelined requests in one write.
s = connect()
s.sendall(b"".join(("GET /pipelined%d HTTP/1.1\r\nHost: x\r\ntraceparent: %s\r\n%s\r\n" % (i, traceparent(i),
    "Connection: close\r\n" if i == 99 else "")).encode() for i in range(100)))
print("pipelined: %d responses" % read_to_end(s).count(b"HTTP/1.1 200 "))
# Three requests one byte per write, then a request line split across two writes.
s = connect()
for i in range(3):
    for b in ("GET /bytes%d HTTP/1.1\r\nHost: x\r\ntraceparent: %s\r\n\r\n" % (i, traceparent(i))).encode():
        s.send(bytes([b]))
        time.sleep(0.001)
    read_response(s)
s.send(b"GET /spl")
time.sleep(0.05)
s.send(("it12 HTTP/1.1\r\nHost: x\r\ntraceparent: %s\r\nConnection: close\r\n\r\n" % traceparent(3)).encode())
read_to_end(s)
# A traceparent 1.5, 6 and 9 KB into the head.
for i, offset in enumerate([1500, 6000, 9000]):
    s = connect()
    head = "GET /deep%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" % offset
    head += "Cookie: " + "c" * (offset - len(head) - 10) + "\r\n" + "traceparent: %s\r\n\r\n" % traceparent(i)
    s.sendall(head.encode())
    read_to_end(s)
PYTHON

kill -INT "$RECORDER"
wait "$RECORDER" || true
python3 - "$OUT/spans.json" "$TRACE" <<'PYTHON'
import json, sys
trace = sys.argv[2]
spans = [span for resource in json.load(open(sys.argv[1]))["resourceSpans"]
         for scope in resource["scopeSpans"] for span in scope["spans"]]
def path(span):
    for attribute in span.get("attributes", []):
        if attribute["key"] == "url.path":
            return attribute["value"]["stringValue"]
    return ""
cases = [("100 pipelined requests", lambda p: p.startswith("/pipelined"), 100),
         ("1-byte writes (3 requests)", lambda p: p.startswith("/bytes"), 3),
         ("request line split across 2 writes", lambda p: p == "/split12", 1),
         ("traceparent 1.5 KB into the head", lambda p: p == "/deep1500", 1),
         ("traceparent 6 KB into the head", lambda p: p == "/deep6000", 1),
         ("traceparent 9 KB into the head", lambda p: p == "/deep9000", 1)]
for name, match, sent in cases:
    matching = [s for s in spans if match(path(s))]
    linked = [s for s in matching if s["traceId"] == trace and s.get("parentSpanId")]
    print("%-38s sent %3d  spans %3d  with the caller's trace %3d" % (name, sent, len(matching), len(linked)))
print("other spans: %s" % sorted({path(s) for s in spans if not any(m(path(s)) for _, m, _ in cases)}))
PYTHON
grep -E "HTTP spans" "$OUT/record.log" || echo "(no HTTP line in the summary)"
