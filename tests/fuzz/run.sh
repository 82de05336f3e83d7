#!/usr/bin/env bash
# Runs each libFuzzer target for SECONDS on a scratch copy of its seed corpus (the checked-in
# corpus never grows), then prints per target the executions per second and in total, parsed
# from libFuzzer's -print_final_stats=1. Fails when any target crashes, leaks, times out or
# runs out of memory; the reproducer is kept under BUILD_DIR/fuzz-work/NAME/artifacts/.
#
# Usage: run.sh BUILD_DIR SECONDS [NAME...]   (default: every target; `make fuzz` calls this)
# FUZZ_JOBS=N fuzzes N targets at once (default 1). FUZZ_TIMEOUT=S: a unit slower than S seconds
# of wall time is a failure (default 10; raise it on a loaded machine, where a starved process
# can stall for seconds). FUZZ_RESUME=1 keeps BUILD_DIR/fuzz-work
# from earlier runs: each target goes on from the corpus it grew, and campaign.tsv there adds
# up the executions of every run (a campaign spread over several sessions).
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: run.sh BUILD_DIR SECONDS [NAME...]" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
seconds=$2
shift 2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(csv scores_csv safetensors checkpoint params_json training_state ingest segment_store segment_stream spec fleet_db)
# Longest input per target: a few times its largest seed.
declare -A max_len=([csv]=8192 [scores_csv]=4096 [safetensors]=16384 [checkpoint]=32768 [params_json]=4096 [training_state]=32768 [ingest]=8192 [segment_store]=16384 [segment_stream]=8192 [spec]=4096 [fleet_db]=4096)

symbolizer=/usr/lib/llvm-14/bin/llvm-symbolizer
[[ -x $symbolizer ]] && export ASAN_SYMBOLIZER_PATH=$symbolizer
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

work=$build/fuzz-work
[[ ${FUZZ_RESUME:-0} == 1 ]] || rm -rf "$work"
jobs=${FUZZ_JOBS:-1}  # targets fuzzed at once (one core each)

# The reproducers a run left in DIR/artifacts: crashes, leaks, time-outs, out-of-memory. A
# slow-unit-* file (a unit over 10 s, which on a loaded machine is starvation; libFuzzer goes on
# and exits 0) is kept but is no finding: replay it to see.
findings() { find "$1/artifacts" -type f ! -name 'slow-unit-*' | sort; }

fuzz_one() {  # NAME: runs one target; its exit status goes to DIR/rc
  local name=$1 dir=$work/$1 rc=0
  local dict=()
  [[ -f $here/dict/$name.dict ]] && dict=(-dict="$here/dict/$name.dict")
  "$build/tests/fuzz/fuzz_$name" -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 \
    -max_len="${max_len[$name]}" -print_final_stats=1 -artifact_prefix="$dir/artifacts/" "${dict[@]}" \
    "$dir/corpus" > "$dir/fuzz.log" 2>&1 || rc=$?
  echo "$rc" > "$dir/rc"
  local execs per_s status=ok
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/fuzz.log" | tail -1)
  per_s=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/fuzz.log" | tail -1)
  [[ $rc -eq 0 && -z $(findings "$dir") ]] || status="FAILED (exit $rc)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$name" "$seconds" "${execs:-0}" "${per_s:-0}" "$status" \
    >> "$work/campaign.tsv"
}

for name in "${targets[@]}"; do
  [[ -x $build/tests/fuzz/fuzz_$name ]] || { echo "run.sh: no fuzz target $build/tests/fuzz/fuzz_$name (make fuzz builds them)" >&2; exit 2; }
  [[ -n ${max_len[$name]:-} ]] || { echo "run.sh: no max_len for '$name'" >&2; exit 2; }
done
for name in "${targets[@]}"; do
  dir=$work/$name
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp -R "$here/corpus/$name/." "$dir/corpus/"
  rm -f "$dir/rc"
  # A resumed campaign keeps the corpus; reproducers of earlier runs move aside.
  if [[ -n $(ls -A "$dir/artifacts") ]]; then mv "$dir/artifacts" "$dir/artifacts.$(date +%s)" && mkdir "$dir/artifacts"; fi
  while [[ $(jobs -rp | wc -l) -ge $jobs ]]; do wait -n || true; done
  echo "== fuzz_$name: ${seconds}s on $(ls "$dir/corpus" | wc -l) seed files (log: $dir/fuzz.log)"
  fuzz_one "$name" &
done
wait

results=()
failed=()
for name in "${targets[@]}"; do
  dir=$work/$name
  rc=$(cat "$dir/rc")
  stat() { sed -n "s/^stat::$1: *//p" "$dir/fuzz.log" | tail -1; }
  execs=$(stat number_of_executed_units)
  per_s=$(stat average_exec_per_sec)
  rss=$(stat peak_rss_mb)
  artifacts=$(findings "$dir")
  if [[ $rc -ne 0 || -n $artifacts ]]; then
    failed+=("$name")
    status="FAILED (exit $rc)"
    echo "-- fuzz_$name failed; the end of its log:"
    tail -n 60 "$dir/fuzz.log"
    [[ -z $artifacts ]] || printf 'reproducer: %s\n' $artifacts
  else
    status=ok
  fi
  results+=("$(printf '%-15s %12s %14s %9s  %s' "$name" "${per_s:--}" "${execs:--}" "${rss:--}" "$status")")
done

echo
printf '%-15s %12s %14s %9s  %s\n' target exec/s executions "rss MB" result
printf '%s\n' "${results[@]}"
if [[ ${FUZZ_RESUME:-0} == 1 ]]; then
  echo
  echo "campaign so far ($work/campaign.tsv): runs, seconds and executions per target"
  awk -F'\t' '{ runs[$2]++; secs[$2] += $3; execs[$2] += $4; if ($6 !~ /^ok/) bad[$2]++ }
    END { for (t in runs) printf "%-15s %4d runs %8d s %12d executions %s\n", t, runs[t], secs[t], execs[t], (bad[t] ? bad[t] " FAILED" : "ok") }' \
    "$work/campaign.tsv" | sort
fi
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "make fuzz: ${failed[*]} failed; reproducers under $work/*/artifacts (copy them to tests/fuzz/crashes/NAME/)" >&2
  exit 1
fi
