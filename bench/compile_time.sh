#!/usr/bin/env bash
# Compile time and peak memory: of each translation unit of dyad's own build, and of a downstream
# file that includes <dyad/dyad.hpp> and fits, scores, saves and loads a Model<float>
# (examples/quickstart.cpp), header-only and with the compiled-once instances
# (dyad/instantiate.hpp). Times are wall seconds of one compiler process; run it on an idle
# machine, since a busy one stretches every figure.
#
# Usage: bench/compile_time.sh [--build DIR] [--jobs N] [--target T]... [--downstream-only] [--no-downstream]
#   --build DIR        build directory, configured afresh with the timing launcher (default build-ctime)
#   --jobs N           parallel compiles (default 1: each unit timed alone)
#   --target T         build these targets (default: all)
#   --downstream-only  only the downstream file
#   --no-downstream    only dyad's own build
# Environment: CXX (default g++), CXXFLAGS for the downstream file (default -O2 -march=native).
set -euo pipefail

# Launcher mode: CMake runs "compile_time.sh --launch <compiler command>" for every object.
if [[ "${1:-}" == --launch ]]; then
  shift
  out=""; prev=""
  for a in "$@"; do [[ "$prev" == -o ]] && out="$a"; prev="$a"; done
  stats=$(mktemp)
  rc=0
  /usr/bin/time -f "%e %M" -o "$stats" "$@" || rc=$?
  [[ $rc -eq 0 ]] && printf '%s %s\n' "$(tail -n 1 "$stats")" "$out" >> "${DYAD_COMPILE_TIME_LOG:?}"
  rm -f "$stats"
  exit $rc
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=build-ctime jobs=1 targets=() own=1 downstream=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --target) targets+=(--target "$2"); shift 2 ;;
    --downstream-only) own=0; shift ;;
    --no-downstream) downstream=0; shift ;;
    -h|--help) sed -n '2,16s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "compile_time.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -x /usr/bin/time ]] || { echo "compile_time.sh: needs /usr/bin/time (Debian package 'time')" >&2; exit 2; }
export CCACHE_DISABLE=1  # a cache hit is not a compile

# Prints "seconds  peak MiB  name" for a log of "seconds peak-KiB object" lines, longest first.
table() {
  sort -rn "$1" | awk -v root="$2" '{ sub(root, "", $3); sub(/CMakeFiles\/[^\/]*\.dir\//, "", $3);
    printf "%8.1f s %7.0f MiB  %s\n", $1, $2 / 1024, $3; t += $1; if ($2 > m) m = $2 }
    END { printf "%8.1f s %7.0f MiB  total compile time (%d units), largest peak\n", t, m / 1024, NR }'
}

if [[ $own == 1 ]]; then
  log=$(mktemp)
  export DYAD_COMPILE_TIME_LOG=$log
  rm -rf "$build"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER_LAUNCHER="$PWD/bench/compile_time.sh;--launch" >/dev/null
  start=$SECONDS
  cmake --build "$build" -j"$jobs" "${targets[@]}" >/dev/null
  echo "== dyad's own build: ${targets[*]:-all targets}, -j$jobs, $((SECONDS - start)) s wall"
  table "$log" "$PWD/$build/"
  rm -f "$log"
fi

if [[ $downstream == 1 ]]; then
  cxx=${CXX:-g++}
  flags=(-std=c++20 ${CXXFLAGS:--O2 -march=native} -Iinclude -I/usr/include/eigen3 -DEIGEN_STACK_ALLOCATION_LIMIT=2097152)
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  printf '#include <dyad/instantiate.hpp>\nDYAD_INSTANTIATE(float)\n' > "$work/instances.cpp"
  timed() {  # label, then the compiler's arguments
    local label=$1; shift
    /usr/bin/time -f "%e %M" -o "$work/stats" "$cxx" "${flags[@]}" "$@"
    read -r s kib < "$work/stats"
    printf '%8.1f s %7.0f MiB  %s\n' "$s" "$((kib / 1024))" "$label"
  }
  echo "== downstream: examples/quickstart.cpp (fit, score, save, load a Model<float>), $cxx ${CXXFLAGS:--O2 -march=native}"
  timed "header-only" -c examples/quickstart.cpp -o "$work/a.o"
  timed "with -DDYAD_EXTERN_TEMPLATES" -DDYAD_EXTERN_TEMPLATES -c examples/quickstart.cpp -o "$work/b.o"
  timed "its instances, once per program (DYAD_INSTANTIATE(float))" -DDYAD_EXTERN_TEMPLATES -c "$work/instances.cpp" -o "$work/i.o"
  "$cxx" "$work/b.o" "$work/i.o" -o "$work/quickstart" -pthread  # the two halves link
fi
