#!/usr/bin/env python3
"""A loopback OTLP/HTTP receiver for tests: decodes every profiles and traces export with the real
opentelemetry-proto bindings (1.44.0, profiles layout v1.10.0) and appends one JSON line per request to a
log, so a test can check what arrived. Pyroscope /ingest pushes are recorded by size and query.

usage: receiver.py PORT LOGFILE [--tls CERT KEY]
  PORT 0 picks one; the chosen port is printed on stdout. With --tls it serves HTTPS with that PEM
  certificate chain and key. Each log line names the client's port, so keep-alive shows as one port.
"""
import gzip
import json
import socketserver
import ssl
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

from opentelemetry.proto.collector.profiles.v1development import profiles_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2


def attributes(key_values):
    out = {}
    for kv in key_values:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which) if which else None
    return out


def summarize_profiles(body):
    request = profiles_service_pb2.ExportProfilesServiceRequest()
    request.ParseFromString(body)
    d = request.dictionary
    strings = list(d.string_table)
    resources = []
    samples = total = linked = 0
    links = set()
    span_names = set()
    functions = set()
    starts = []
    durations = []
    for rp in request.resource_profiles:
        resources.append(attributes(rp.resource.attributes))
        for sp in rp.scope_profiles:
            for profile in sp.profiles:
                starts.append(profile.time_unix_nano)
                durations.append(profile.duration_nano)
                assert strings[profile.sample_type.type_strindex] == "samples"
                for sample in profile.samples:
                    samples += 1
                    total += sum(sample.values)
                    stack = d.stack_table[sample.stack_index]
                    for li in stack.location_indices:
                        for line in d.location_table[li].lines:
                            functions.add(strings[d.function_table[line.function_index].name_strindex])
                    if sample.link_index:
                        link = d.link_table[sample.link_index]
                        assert len(link.trace_id) == 16 and len(link.span_id) == 8
                        linked += sum(sample.values)
                        links.add((link.trace_id.hex(), link.span_id.hex()))
                        for ai in sample.attribute_indices:
                            a = d.attribute_table[ai]
                            if strings[a.key_strindex] == "flamespan.span.name":
                                span_names.add(a.value.string_value)
    return {
        "resources": resources, "samples": samples, "total": total, "linked": linked,
        "links": sorted(links), "spanNames": sorted(span_names),
        "functions": len(functions), "hasMain": "main" in functions,
        "startUnixNanos": min(starts) if starts else None,
        "durationNanos": max(durations) if durations else None,
    }


def summarize_traces(body):
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    resources = []
    for rs in request.resource_spans:
        resources.append(attributes(rs.resource.attributes))
        for ss in rs.scope_spans:
            for span in ss.spans:
                spans.append({
                    "traceId": span.trace_id.hex(), "spanId": span.span_id.hex(), "name": span.name,
                    "kind": span.kind, "durationNanos": span.end_time_unix_nano - span.start_time_unix_nano,
                    "attributes": attributes(span.attributes),
                })
    return {"resources": resources, "spans": spans}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        entry = {"path": self.path, "time": time.time(), "bytes": len(body),
                 "clientPort": self.client_address[1],
                 "encoding": self.headers.get("Content-Encoding", ""),
                 "contentType": self.headers.get("Content-Type", "")}
        status = 200
        try:
            if entry["encoding"] == "gzip":
                body = gzip.decompress(body)
            parsed = urllib.parse.urlparse(self.path)
            if parsed.path == "/v1development/profiles":
                entry.update(summarize_profiles(body))
            elif parsed.path == "/v1/traces":
                entry.update(summarize_traces(body))
            elif parsed.path == "/ingest":
                entry["query"] = urllib.parse.parse_qs(parsed.query)
            else:
                status = 404
        except Exception as error:  # a body the real decoder rejects is the test's failure, reported
            status = 400
            entry["error"] = repr(error)
        entry["status"] = status
        with open(self.server.log_path, "a") as log:
            log.write(json.dumps(entry) + "\n")
        reply = b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


class Server(socketserver.ThreadingMixIn, HTTPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    port, log_path = int(sys.argv[1]), sys.argv[2]
    server = Server(("127.0.0.1", port), Handler)
    server.log_path = log_path
    if sys.argv[3:4] == ["--tls"]:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[4], sys.argv[5])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
