#!/usr/bin/env bash
# Regenerates the Swift code for every .proto under proto/: the OTLP profiles and traces layout
# (opentelemetry-proto v1.10.0) and pprof's profile.proto (perftools.profiles), into one directory under
# one manifest.
#
#   scripts/generate-protos.sh [OUTPUT_DIR]     default: Sources/FlamespanOTLP/Generated
#
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-swift 1.39.0, found through $PROTOC_GEN_SWIFT
# or PATH. Build the plugin from the swift-protobuf sources:
#   git clone https://github.com/apple/swift-protobuf && cd swift-protobuf && git checkout 1.39.0
#   swift build -c release --product protoc-gen-swift
#
# Besides the .pb.swift files it writes proto-manifest.sha256: the SHA-256 of every .proto input and of
# every generated file. FlamespanOTLPTests recomputes it, so editing a .proto without regenerating, or
# editing generated code by hand, fails the tests.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
output="${1:-$root/Sources/FlamespanOTLP/Generated}"
expected_plugin_version="protoc-gen-swift 1.39.0"

plugin="${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || true)}"
if [ -z "$plugin" ] || [ ! -x "$plugin" ]; then
  echo "generate-protos.sh: protoc-gen-swift not found (set PROTOC_GEN_SWIFT or put it on PATH)" >&2
  exit 2
fi
if ! command -v protoc >/dev/null 2>&1; then
  echo "generate-protos.sh: protoc not found (apt-get install protobuf-compiler)" >&2
  exit 2
fi
plugin_version="$("$plugin" --version)"
if [ "$plugin_version" != "$expected_plugin_version" ]; then
  # Another plugin version writes different code; the committed files would churn for no reason.
  echo "generate-protos.sh: need $expected_plugin_version, found $plugin_version" >&2
  exit 2
fi

cd "$root/proto"
# Sorted so the manifest and the protoc invocation do not depend on directory order.
mapfile -t protos < <(find . -name '*.proto' | sed 's|^\./||' | LC_ALL=C sort)

mkdir -p "$output"
rm -f "$output"/*.pb.swift "$output/proto-manifest.sha256"
protoc -I . \
  --plugin=protoc-gen-swift="$plugin" \
  --swift_out="$output" \
  --swift_opt=Visibility=Package \
  --swift_opt=FileNaming=PathToUnderscores \
  "${protos[@]}"

{
  echo "# Written by scripts/generate-protos.sh with $plugin_version; checked by FlamespanOTLPTests."
  for proto in "${protos[@]}"; do
    echo "$(sha256sum "$proto" | cut -d' ' -f1)  proto/$proto"
  done
  for generated in $(cd "$output" && ls *.pb.swift | LC_ALL=C sort); do
    echo "$(sha256sum "$output/$generated" | cut -d' ' -f1)  Generated/$generated"
  done
} > "$output/proto-manifest.sha256"

echo "generated ${#protos[@]} files into $output"
