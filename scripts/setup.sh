#!/usr/bin/env bash
# Installs what Flamespan needs on Debian 12 and makes the kernel interfaces it uses available.
# Idempotent: each step is skipped when already done. Needs root.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (sudo $0): it installs Debian packages and mounts tracefs" >&2
  exit 1
fi

# Build: libbpf/libdw/libelf/zlib headers, libsqlite3-dev (the agent's store, through GRDB), bpftool
# (vmlinux.h), make for samples.
# Tests and benchmarks: golang-go (go tool pprof reads our pprof), linux-perf (the reference profiler),
# curl, wrk, nginx and python3 (real HTTP peers), libpython3.11-dev (a C program embedding CPython, for the
# CPython plug-in's shared-library test), binutils (readelf), util-linux (setpriv), python3-venv
# (bench/python/ installs py-spy from PyPI into a venv).
# Language runtimes of the samples (bench/runtimes, RuntimeStacksTests): golang-go, nodejs,
# openjdk-17-jdk-headless (javac, jcmd) and rustc. The agent's https export: ca-certificates (the system CA
# bundle), and openssl, with which the TLS tests make their certificates.
packages=(
  libbpf-dev libdw-dev libelf-dev libunwind-dev zlib1g-dev libsqlite3-dev sqlite3 pkg-config bpftool make clang
  golang-go linux-perf curl wrk nginx-light python3 python3-pip python3-venv libpython3.11-dev binutils
  util-linux time
  protobuf-compiler chromium bc nodejs openjdk-17-jdk-headless rustc openssl ca-certificates
)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# Debian's clang is only a fallback: the Swift toolchain ships one, which the BPF build prefers. The same
# for a Node.js, a JDK 17 or a Rust already on PATH (NodeSource's nodejs, rustup's rustc): keep them.
drop_missing() {
  local name kept=() package
  for package in "${missing[@]}"; do
    for name in "$@"; do [[ $package == "$name" ]] && continue 2; done
    kept+=("$package")
  done
  missing=("${kept[@]}")
}
if command -v clang >/dev/null 2>&1; then
  drop_missing clang
fi
command -v node >/dev/null 2>&1 && drop_missing nodejs
command -v javac >/dev/null 2>&1 && command -v jcmd >/dev/null 2>&1 && drop_missing openjdk-17-jdk-headless
command -v rustc >/dev/null 2>&1 && drop_missing rustc
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> Installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The reference OTLP decoder the tests read our output with (a pinned version: the layouts move).
if ! python3 -c 'import opentelemetry.proto.profiles.v1development.profiles_pb2' 2>/dev/null; then
  echo "==> Installing opentelemetry-proto==1.44.0 (PyPI)"
  python3 -m pip install -q opentelemetry-proto==1.44.0 2>/dev/null ||
    python3 -m pip install -q --break-system-packages opentelemetry-proto==1.44.0
fi

if ! command -v swift >/dev/null 2>&1; then
  echo "setup.sh: the Swift toolchain (6.x) is not on PATH; install it from swift.org and retry" >&2
  exit 1
fi
if [ ! -r /sys/kernel/btf/vmlinux ]; then
  echo "setup.sh: /sys/kernel/btf/vmlinux is missing: Flamespan needs a kernel built with CONFIG_DEBUG_INFO_BTF=y" >&2
  exit 1
fi
# libbpf resolves tracepoint ids through tracefs.
if [ -z "$(ls -A /sys/kernel/tracing 2>/dev/null)" ]; then
  echo "==> Mounting tracefs at /sys/kernel/tracing"
  mount -t tracefs tracefs /sys/kernel/tracing
fi
if ! mountpoint -q /sys/fs/bpf; then
  mount -t bpf bpf /sys/fs/bpf || echo "note: could not mount bpffs at /sys/fs/bpf (only needed for pinning)" >&2
fi
