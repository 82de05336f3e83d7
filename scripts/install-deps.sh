#!/usr/bin/env bash
# Installs the Debian 12 packages dyad needs to build, test, benchmark and run its demo.
# Only what is missing is installed (checked with dpkg first), so a second run takes a moment
# and does not touch the network. Runs apt-get as root, or through sudo when not root.
#
# Usage: scripts/install-deps.sh [--chromium | --no-chromium] [--torch | --no-torch] [--fuzz | --no-fuzz] [--dry-run]
#   --chromium / --no-chromium  headless browser for the report tests (default: on)
#   --torch / --no-torch        PyTorch and oneDNN for the comparison benchmarks (default: off)
#   --fuzz / --no-fuzz          clang and libFuzzer for `make fuzz` (default: off)
#   --dry-run                   print what would be installed, install nothing
# Environment: DYAD_DEPS_CHROMIUM, DYAD_DEPS_TORCH and DYAD_DEPS_FUZZ (0|1) set the defaults.
# GCC's ASan, UBSan and TSan runtimes (make test-asan, test-tsan) come with g++.
set -euo pipefail

with_chromium="${DYAD_DEPS_CHROMIUM:-1}"
with_torch="${DYAD_DEPS_TORCH:-0}"
with_fuzz="${DYAD_DEPS_FUZZ:-0}"
dry_run=0

usage() { sed -n '2,12s/^# \{0,1\}//p' "$0"; }

for arg in "$@"; do
  case "$arg" in
    --chromium) with_chromium=1 ;;
    --no-chromium) with_chromium=0 ;;
    --torch) with_torch=1 ;;
    --no-torch) with_torch=0 ;;
    --fuzz) with_fuzz=1 ;;
    --no-fuzz) with_fuzz=0 ;;
    --dry-run) dry_run=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-deps.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

# Build and test toolchain plus the libraries the headers, tests, benches and CLI use; Open MPI
# for `mpirun -np N dyad train | score`, which the CLI tests run on loopback; GNU time for
# bench/compile_time.sh; clang-format for CI's style check (scripts/check-format.sh).
core=(build-essential cmake g++ libeigen3-dev libxsimd-dev doctest-dev libbenchmark-dev
      nlohmann-json3-dev libcli11-dev libsqlite3-dev sqlite3 python3 python3-numpy
      openmpi-bin libopenmpi-dev time clang-format)
# Headless browser for the report tests; fonts so that rendered text is not blank boxes.
chromium=(chromium fonts-liberation)
# Reference implementations for the comparison benchmarks: PyTorch, and oneDNN's GRU
# (bench/onednn_gru.cpp). OpenBLAS: without it Debian's torch falls back to the reference BLAS
# and runs several times slower.
# Debian's oneDNN is built with the OpenCL GPU runtime: its CMake package requires the OpenCL
# headers and loader, or configuring the benchmarks fails.
torch=(python3-torch libopenblas0-pthread libdnnl-dev ocl-icd-opencl-dev opencl-headers)
# libFuzzer (libclang-rt-14-dev) and the compiler that links it; llvm-14 for llvm-symbolizer,
# which turns sanitizer stack traces into file:line.
fuzz=(clang-14 libclang-rt-14-dev llvm-14)

wanted=("${core[@]}")
[[ "$with_chromium" == 1 ]] && wanted+=("${chromium[@]}")
[[ "$with_torch" == 1 ]] && wanted+=("${torch[@]}")
[[ "$with_fuzz" == 1 ]] && wanted+=("${fuzz[@]}")

missing=()
for pkg in "${wanted[@]}"; do
  # dpkg -s also succeeds for removed-but-configured packages; require "install ok installed".
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps.sh: all ${#wanted[@]} packages present"
  exit 0
fi

echo "install-deps.sh: installing ${missing[*]}"
if [[ "$dry_run" == 1 ]]; then
  exit 0
fi

if [[ "$(id -u)" -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-deps.sh: not root and no sudo; install these packages: ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"
