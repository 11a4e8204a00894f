"""Decodes an OTLP ExportTraceServiceRequest with the reference bindings (PyPI
opentelemetry-proto==1.44.0, layout v1.10.0) and prints what it holds as JSON.

Usage: decode_traces.py protobuf|json FILE

"protobuf" parses the binary message. "json" parses OTLP/JSON with protobuf's own JSON parser, which
rejects unknown fields and wrong types; OTLP/JSON differs from protobuf's JSON mapping only in writing
trace and span ids as hex, so those (and only those) are turned into base64 first, as the OTLP
specification says a receiver must. The output is the same for both, so a caller can compare them.
Ids of the wrong length are listed under "problems" and make the exit status 1.
"""

import base64
import json
import sys

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

problems = []


def hex_ids_to_base64(document):
    for resource in document.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    return document


def value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def attributes(pairs):
    return {pair.key: value(pair.value) for pair in pairs}


def span_json(span):
    for name, raw, length in (("trace_id", span.trace_id, 16), ("span_id", span.span_id, 8)):
        if len(raw) != length:
            problems.append(f"{name} of {span.name!r} has {len(raw)} bytes, not {length}")
    if span.parent_span_id and len(span.parent_span_id) != 8:
        problems.append(f"parent_span_id of {span.name!r} has {len(span.parent_span_id)} bytes")
    return {
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex() or None,
        "name": span.name,
        "kind": span.kind,
        "start_time_unix_nano": span.start_time_unix_nano,
        "end_time_unix_nano": span.end_time_unix_nano,
        "attributes": attributes(span.attributes),
        "status_code": span.status.code,
    }


def main():
    form, path = sys.argv[1], sys.argv[2]
    request = ExportTraceServiceRequest()
    with open(path, "rb") as file:
        data = file.read()
    if form == "protobuf":
        request.ParseFromString(data)
    else:
        json_format.Parse(json.dumps(hex_ids_to_base64(json.loads(data))), request)
    out = {
        "resource_spans": [
            {
                "resource": attributes(resource.resource.attributes),
                "scope_spans": [
                    {
                        "scope": scope.scope.name,
                        "version": scope.scope.version,
                        "spans": [span_json(span) for span in scope.spans],
                    }
                    for scope in resource.scope_spans
                ],
            }
            for resource in request.resource_spans
        ],
        "problems": problems,
    }
    print(json.dumps(out, sort_keys=True))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
