#!/usr/bin/env bash
# Checks that the C++ sources match .clang-format (written for clang-format 14; other versions
# may format differently). Prints the files that differ and exits 1; fix them with
#   scripts/check-format.sh --fix   (or make format; clang-format -i <file>... for one file)
# CLANG_FORMAT picks the binary (default: clang-format-14, else clang-format).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cf=${CLANG_FORMAT:-$(command -v clang-format-14 || command -v clang-format || true)}
if [[ -z "$cf" ]] || ! command -v "$cf" >/dev/null 2>&1; then
  echo "check-format: clang-format not found; install it (Debian: apt-get install clang-format) or set CLANG_FORMAT" >&2
  exit 2
fi
[[ "$("$cf" --version)" == *" version 14."* ]] || echo "check-format: warning: $("$cf" --version) is not clang-format 14" >&2
mapfile -t files < <(find include tests tools examples bench \
  \( -path tests/fuzz/corpus -o -path tests/fuzz/crashes -o -name fixtures \) -prune -o \
  -type f \( -name '*.hpp' -o -name '*.cpp' -o -name '*.h' -o -name '*.cc' \) -print | sort)
if [[ "${1:-}" == --fix ]]; then
  "$cf" --style=file -i "${files[@]}"
  echo "check-format: formatted ${#files[@]} files"
  exit 0
fi
rc=0
out=$("$cf" --style=file --dry-run --Werror "${files[@]}" 2>&1) || rc=$?
if [[ $rc -ne 0 ]]; then
  bad=$(sed -n 's/^\(.*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' <<<"$out" | sort -u)
  if [[ -n "$bad" ]]; then
    echo "check-format: these files need clang-format (clang-format -i FILE):" >&2
    echo "$bad" >&2
  else
    echo "$out" >&2
  fi
  exit 1
fi
echo "check-format: ${#files[@]} files ok"
