"""Checks that proto/*.proto declare exactly the v1.10.0 layout shipped in opentelemetry-proto==1.44.0.

Usage: compare_descriptors.py DESCRIPTOR_SET   (from `protoc --include_imports --descriptor_set_out`)
Every message of our files must exist upstream with the same fields: name, number, type, label,
message type and oneof membership. Prints one line per difference and exits 1 if there is any.
"""

import sys

from google.protobuf import descriptor_pb2
from opentelemetry.proto.collector.profiles.v1development import profiles_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.profiles.v1development import profiles_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2


def messages(file_proto):
    found = {}

    def visit(prefix, message):
        name = f"{prefix}.{message.name}"
        found[name] = message
        for nested in message.nested_type:
            visit(name, nested)

    for message in file_proto.message_type:
        visit(file_proto.package, message)
    return found


def field_shape(message, field):
    oneof = message.oneof_decl[field.oneof_index].name if field.HasField("oneof_index") else None
    return (field.number, field.type, field.label, field.type_name, oneof)


def main():
    ours = descriptor_pb2.FileDescriptorSet()
    with open(sys.argv[1], "rb") as handle:
        ours.ParseFromString(handle.read())

    upstream = {}
    for module in (
        common_pb2,
        resource_pb2,
        profiles_pb2,
        profiles_service_pb2,
        trace_pb2,
        trace_service_pb2,
    ):
        file_proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(file_proto)
        upstream.update(messages(file_proto))

    problems = []
    checked = 0
    for file_proto in ours.file:
        for name, message in messages(file_proto).items():
            reference = upstream.get(name)
            if reference is None:
                problems.append(f"{name}: not in opentelemetry-proto 1.44.0")
                continue
            expected = {f.name: field_shape(reference, f) for f in reference.field}
            actual = {f.name: field_shape(message, f) for f in message.field}
            for field_name in sorted(set(expected) | set(actual)):
                if expected.get(field_name) != actual.get(field_name):
                    problems.append(
                        f"{name}.{field_name}: ours {actual.get(field_name)} upstream {expected.get(field_name)}"
                    )
                checked += 1
    for problem in problems:
        print(problem)
    print(f"checked {checked} fields, {len(problems)} differences")
    sys.exit(1 if problems or checked == 0 else 0)


if __name__ == "__main__":
    main()
