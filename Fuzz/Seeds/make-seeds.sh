#!/usr/bin/env bash
# Rebuilds the binary seeds of Fuzz/Corpus from the sources beside this script (gcc, binutils, go).
# The pprof and OTLP seeds are written by our own exporters instead: FLAMESPAN_WRITE_FUZZ_SEEDS=1 swift
# test --filter FuzzSeedTests (they are checked to decode on every test run).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
corpus="$here/../Corpus"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tiny=(-O1 -fomit-frame-pointer -nostdlib -static -Wl,-N -Wl,--build-id -Wno-all)
# ELF and CFI: a ~1 KB static binary with .eh_frame and .eh_frame_hdr, the same without the header
# (the FDE index path), and one with only .debug_frame; a normal dynamic binary for the ELF reader.
gcc "${tiny[@]}" -fasynchronous-unwind-tables -Wl,--eh-frame-hdr -s -o "$work/tiny" "$here/tiny.c" 2>/dev/null
gcc "${tiny[@]}" -fasynchronous-unwind-tables -Wl,--no-eh-frame-hdr -s -o "$work/tiny-nohdr" "$here/tiny.c" 2>/dev/null
gcc "${tiny[@]}" -g -fno-asynchronous-unwind-tables -fno-unwind-tables -o "$work/tiny-df" "$here/tiny.c" 2>/dev/null
objcopy --strip-all --keep-section=.debug_frame "$work/tiny-df" "$work/tiny-debugframe"
printf '#include <stdio.h>\nint main(void){puts("hi");return 0;}\n' >"$work/hello.c"
gcc -O1 -s -Wl,-z,max-page-size=4096 -o "$work/hello" "$work/hello.c"
cp "$work/tiny" "$corpus/elf/tiny-static"
cp "$work/hello" "$corpus/elf/hello-dynamic"
cp "$work/tiny" "$corpus/cfi/tiny-eh-frame-hdr"
cp "$work/tiny-nohdr" "$corpus/cfi/tiny-eh-frame"
cp "$work/tiny-debugframe" "$corpus/cfi/tiny-debug-frame"
# Go: the .gopclntab of an empty program (the runtime's ~1,600 functions).
(cd "$work" && cp "$here/tiny.go" . && CGO_ENABLED=0 GO111MODULE=off go build -ldflags='-s -w' -o tinygo tiny.go)
objcopy -O binary --only-section=.gopclntab "$work/tinygo" "$corpus/gopclntab/go$(go env GOVERSION | sed 's/^go//')-tiny.gopclntab"
