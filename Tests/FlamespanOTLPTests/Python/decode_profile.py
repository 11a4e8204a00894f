"""Decodes a binary OTLP ExportProfilesServiceRequest with the reference bindings
(PyPI opentelemetry-proto==1.44.0, layout v1.10.0) and prints what it holds as JSON.

Usage: decode_profile.py FILE

Also checks the dictionary rules the format sets: entry 0 of every table is the zero value, every
index is in range, links carry 16- and 8-byte ids. Each broken rule is listed under "problems" and
makes the exit status 1, so the caller sees both the data and what is wrong with it.
"""

import json
import sys

from opentelemetry.proto.collector.profiles.v1development.profiles_service_pb2 import (
    ExportProfilesServiceRequest,
)
from opentelemetry.proto.profiles.v1development import profiles_pb2

problems = []


def check_index(table, index, what):
    if not 0 <= index < len(table):
        problems.append(f"{what}: index {index} outside a table of {len(table)}")
        return None
    return table[index]


def any_value(value, strings):
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "string_value_strindex":
        return check_index(strings, value.string_value_strindex, "string_value_strindex")
    if kind == "array_value":
        return [any_value(item, strings) for item in value.array_value.values]
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def attributes(indices, dictionary, what):
    result = {}
    for index in indices:
        attribute = check_index(dictionary.attribute_table, index, f"{what} attribute")
        if attribute is None:
            continue
        key = check_index(dictionary.string_table, attribute.key_strindex, f"{what} attribute key")
        result[key] = any_value(attribute.value, dictionary.string_table)
    return result


def main():
    request = ExportProfilesServiceRequest()
    with open(sys.argv[1], "rb") as handle:
        request.ParseFromString(handle.read())
    d = request.dictionary
    strings = list(d.string_table)

    if not strings or strings[0] != "":
        problems.append("string_table[0] is not the empty string")
    zero_messages = {
        "mapping_table": profiles_pb2.Mapping(),
        "location_table": profiles_pb2.Location(),
        "function_table": profiles_pb2.Function(),
        "link_table": profiles_pb2.Link(),
        "attribute_table": profiles_pb2.KeyValueAndUnit(),
        "stack_table": profiles_pb2.Stack(),
    }
    for name, zero in zero_messages.items():
        table = getattr(d, name)
        if len(table) == 0 or table[0] != zero:
            problems.append(f"{name}[0] is not the zero value")

    def text(index, what):
        return check_index(strings, index, what)

    def location_json(index):
        location = check_index(d.location_table, index, "stack location")
        if location is None:
            return None
        mapping = check_index(d.mapping_table, location.mapping_index, "location mapping")
        lines = []
        for line in location.lines:
            function = check_index(d.function_table, line.function_index, "line function")
            if function is None:
                continue
            lines.append(
                {
                    "function": text(function.name_strindex, "function name"),
                    "system_name": text(function.system_name_strindex, "system name"),
                    "file": text(function.filename_strindex, "function file"),
                    "line": line.line,
                    "column": line.column,
                }
            )
        return {
            "address": location.address,
            "lines": lines,
            "attributes": attributes(location.attribute_indices, d, "location"),
            "mapping": None
            if location.mapping_index == 0 or mapping is None
            else {
                "filename": text(mapping.filename_strindex, "mapping filename"),
                "memory_start": mapping.memory_start,
                "memory_limit": mapping.memory_limit,
                "file_offset": mapping.file_offset,
                "attributes": attributes(mapping.attribute_indices, d, "mapping"),
            },
        }

    output = {"resource_profiles": []}
    for resource_profiles in request.resource_profiles:
        resource = {
            kv.key: any_value(kv.value, strings) for kv in resource_profiles.resource.attributes
        }
        scopes = []
        for scope_profiles in resource_profiles.scope_profiles:
            profiles = []
            for profile in scope_profiles.profiles:
                samples = []
                for sample in profile.samples:
                    stack = check_index(d.stack_table, sample.stack_index, "sample stack")
                    link = None
                    if sample.link_index != 0:
                        found = check_index(d.link_table, sample.link_index, "sample link")
                        if found is not None:
                            if len(found.trace_id) != 16 or len(found.span_id) != 8:
                                problems.append("link ids are not 16 and 8 bytes")
                            link = {"trace_id": found.trace_id.hex(), "span_id": found.span_id.hex()}
                    samples.append(
                        {
                            "values": list(sample.values),
                            "timestamps": len(sample.timestamps_unix_nano),
                            "link": link,
                            "attributes": attributes(sample.attribute_indices, d, "sample"),
                            "stack": [] if stack is None else [location_json(i) for i in stack.location_indices],
                        }
                    )
                profiles.append(
                    {
                        "sample_type": [
                            text(profile.sample_type.type_strindex, "sample type"),
                            text(profile.sample_type.unit_strindex, "sample unit"),
                        ],
                        "period_type": [
                            text(profile.period_type.type_strindex, "period type"),
                            text(profile.period_type.unit_strindex, "period unit"),
                        ],
                        "period": profile.period,
                        "time_unix_nano": profile.time_unix_nano,
                        "duration_nano": profile.duration_nano,
                        "profile_id": profile.profile_id.hex(),
                        "attributes": attributes(profile.attribute_indices, d, "profile"),
                        "samples": samples,
                    }
                )
            scopes.append({"scope": scope_profiles.scope.name, "profiles": profiles})
        output["resource_profiles"].append({"resource": resource, "scope_profiles": scopes})
    output["problems"] = problems
    print(json.dumps(output))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
