"""Writes a gzipped pprof profile of N distinct samples, shaped like a busy server's CPU profile.

Usage: make_profile.py DESCRIPTOR_SET OUTPUT.pb.gz [SAMPLES]
DESCRIPTOR_SET is `protoc --descriptor_set_out` of proto/pprof/profile.proto; the message classes are built
from it at run time, so no generated Python is needed. The shape follows
Tests/FlamespanExportTests/LargeProfile.swift: a pool of 2,000 symbolized functions in one executable
mapping, stacks 8 to 31 deep drawn from it, a unique unsymbolized leaf per sample (so every sample is
distinct), pid/tid/thread_name labels, and a trace/span/span_name on every third sample. The profile is
written by Python's protobuf, a writer other than ours, and is the same for the same arguments.
"""

import gzip
import random
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

FUNCTION_POOL = 2_000
START = 0x40_0000


def message_classes(descriptor_path):
    descriptors = descriptor_pb2.FileDescriptorSet()
    with open(descriptor_path, "rb") as handle:
        descriptors.ParseFromString(handle.read())
    pool = descriptor_pool.DescriptorPool()
    for file_proto in descriptors.file:
        pool.Add(file_proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("perftools.profiles.Profile"))


def main():
    descriptor_path, output = sys.argv[1], sys.argv[2]
    sample_count = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    profile = message_classes(descriptor_path)()
    strings = {}

    def index(text):
        if text not in strings:
            strings[text] = len(strings)
            profile.string_table.append(text)
        return strings[text]

    index("")
    for kind, unit in (("samples", "count"), ("cpu", "nanoseconds")):
        value_type = profile.sample_type.add()
        value_type.type, value_type.unit = index(kind), index(unit)
    profile.period_type.type, profile.period_type.unit = index("cpu"), index("nanoseconds")
    profile.period = 10_000_000
    profile.time_nanos = 1
    profile.duration_nanos = 60_000_000_000

    mapping = profile.mapping.add()
    mapping.id, mapping.memory_start, mapping.memory_limit = 1, START, 0x80_0000
    mapping.filename = index("/usr/bin/server")
    mapping.has_functions = mapping.has_filenames = mapping.has_line_numbers = True
    for number in range(FUNCTION_POOL):
        function = profile.function.add()
        function.id = number + 1
        function.name = function.system_name = index(f"function_{number}")
        function.filename = index(f"/src/file{number % 50}.c")
        location = profile.location.add()
        location.id, location.mapping_id, location.address = number + 1, 1, START + number * 16
        line = location.line.add()
        line.function_id, line.line = number + 1, number

    keys = {name: index(name) for name in ("pid", "tid", "thread_name", "trace_id", "span_id", "span_name")}
    generator = random.Random(42)
    for number in range(sample_count):
        leaf = profile.location.add()
        leaf.id, leaf.mapping_id = FUNCTION_POOL + number + 1, 1
        leaf.address = START + FUNCTION_POOL * 16 + number
        sample = profile.sample.add()
        sample.location_id.append(leaf.id)
        sample.location_id.extend(generator.randrange(FUNCTION_POOL) + 1 for _ in range(8 + generator.randrange(24)))
        count = 1 + generator.randrange(5)
        sample.value.extend((count, count * profile.period))
        labels = [("pid", None, 1000 + number % 7), ("tid", None, 2000 + number % 31),
                  ("thread_name", f"worker-{number % 31}", None)]
        if number % 3 == 0:
            labels += [("trace_id", generator.randbytes(16).hex(), None),
                       ("span_id", generator.randbytes(8).hex(), None),
                       ("span_name", f"GET /item/{number % 13}", None)]
        for key, text, value in labels:
            label = sample.label.add()
            label.key = keys[key]
            if text is not None:
                label.str = index(text)
            else:
                label.num = value

    with gzip.open(output, "wb", compresslevel=6) as handle:
        handle.write(profile.SerializeToString())


main()
