#!/usr/bin/env bash
# The whole test suite: unit tests, fixture tests on binaries built from source, and real-BPF tests.
# As root it sets up what is missing first. Under CI=true nothing may skip for lack of privileges or tools.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then
  scripts/setup.sh
elif [ -n "${CI:-}" ]; then
  echo "test.sh: CI must run as root: the real-BPF tests cannot skip there" >&2
  exit 1
else
  echo "test.sh: not root: real-BPF tests will be skipped (each says why); run with sudo for the full suite" >&2
fi

# Progress lines of the build are noise in CI logs; errors and warnings stay.
quiet_build() { grep -Ev '^\[[0-9]+/[0-9]+\] (Compiling|Emitting|Wrapping|Write|Merging|Linking)' || true; }

echo "==> swift build"
set +e
swift build 2>&1 | quiet_build
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "test.sh: build failed" >&2; exit 1; }
export FLAMESPAN_BIN="$PWD/.build/debug/flamespan"
# The drift check regenerates the OTLP code with the protoc-gen-swift of the swift-protobuf we resolved
# (about 20 s to build), so that it runs here and in CI, not only on a developer's machine.
echo "==> protoc-gen-swift, for the generated-code drift check"
swift build --package-path .build/checkouts/swift-protobuf --product protoc-gen-swift \
  --scratch-path .build/protoc-gen-swift 2>&1 | quiet_build
if [ "${PIPESTATUS[0]}" -eq 0 ]; then
  export PROTOC_GEN_SWIFT="$PWD/.build/protoc-gen-swift/debug/protoc-gen-swift"
else
  echo "test.sh: protoc-gen-swift did not build; the regeneration check will skip (or fail under CI)" >&2
fi
echo "==> swift test"
# A hung test must fail the run with a message, not eat CI's whole time budget.
timeout --signal=INT --kill-after=60 "${FLAMESPAN_TEST_TIMEOUT:-3600}" swift test 2>&1 | quiet_build
status=${PIPESTATUS[0]}
[ "$status" -ne 124 ] || echo "test.sh: swift test did not finish within ${FLAMESPAN_TEST_TIMEOUT:-3600} s" >&2

# Fuzzing (issue 25): every libFuzzer target for a short fixed time, two at a time, as root and so in
# CI. About 3 min in all from a clean .build/fuzz: 131 s to build every module again with sanitizers,
# then 3 × 15 s of runs (Fuzz/RESULTS.md). A crash fails the run, and so does a fuzzer that does not
# build under CI.
# FLAMESPAN_FUZZ_SECONDS sets the time per target; 0 skips fuzzing outside CI.
fuzz_seconds=${FLAMESPAN_FUZZ_SECONDS:-15}
if [ "$(id -u)" -eq 0 ] && { [ "$fuzz_seconds" != 0 ] || [ -n "${CI:-}" ]; }; then
  [ "$fuzz_seconds" != 0 ] || fuzz_seconds=15
  echo "==> fuzz: $fuzz_seconds s per target (scripts/fuzz.sh)"
  fuzz_started=$(date +%s)
  FUZZ_JOBS=2 scripts/fuzz.sh "$fuzz_seconds"
  fuzz_status=$?
  echo "==> fuzz: finished in $(($(date +%s) - fuzz_started)) s"
  if [ "$fuzz_status" -eq 1 ]; then
    echo "test.sh: a fuzz target crashed (see its line above and .build/fuzz/runs/)" >&2
    [ "$status" -ne 0 ] || status=1
  elif [ "$fuzz_status" -ne 0 ]; then
    if [ -n "${CI:-}" ]; then
      echo "test.sh: the fuzz targets did not build" >&2
      [ "$status" -ne 0 ] || status=1
    else
      echo "test.sh: the fuzz targets did not build; under CI this fails the run" >&2
    fi
  fi
fi
# The README's first command builds the release binary, and whole-module optimization has broken twice
# where the debug build passed (a C constant that two clang modules share): build it here too, so CI sees
# what the quickstart would.
echo "==> swift build -c release --product flamespan (what the quickstart builds)"
release_started=$(date +%s)
swift build -c release --product flamespan 2>&1 | quiet_build
if [ "${PIPESTATUS[0]}" -ne 0 ]; then
  echo "test.sh: the release build failed (scripts/quickstart.sh would fail the same way)" >&2
  [ "$status" -ne 0 ] || status=1
fi
echo "==> release build: $(($(date +%s) - release_started)) s"
exit "$status"
