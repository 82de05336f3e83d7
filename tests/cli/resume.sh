#!/usr/bin/env bash
# Crash-safe training, tested by really interrupting `dyad train`: SIGINT and SIGTERM write the
# training state at the next step boundary, leave no temporary file and exit with 130; the
# printed command resumes it to a model byte-identical to an uninterrupted run's; resuming with
# other data or settings is refused; a state written by --checkpoint-every survives SIGKILL.
#   resume.sh PATH/TO/dyad WORKDIR
# DYAD_RESUME_EPOCHS (default 40): the run's epochs. The signal comes after epoch 1, and the
# rest must outlast the script's polling in an optimised build; under a sanitizer an epoch is
# ~80x slower, so `make test-asan` sets 8.
set -euo pipefail
dyad=$1
work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$dyad" simulate --cars 24 --faulty 4 --segments 12 --steps 48 --seed 9 --out fleet.csv
epochs=${DYAD_RESUME_EPOCHS:-40}
train=(--data fleet.csv --epochs "$epochs" --batch-size 16 --seed 4 --threads 1)
"$dyad" train "${train[@]}" --out full.safetensors -q 2> full.err

# Starts a training run in the background and sends `signal` once it has finished an epoch
# (progress lines go to the non-terminal stderr one per epoch).
interrupt() {
  local signal=$1 out=$2
  "$dyad" train "${train[@]}" --out "$out" 2> "$out.err" &
  local pid=$!
  for _ in $(seq 1 600); do
    grep -q "^epoch 1/$epochs" "$out.err" 2>/dev/null && break
    sleep 0.05
  done
  kill "-$signal" "$pid"
  local status=0
  wait "$pid" || status=$?
  [ "$status" -eq 130 ] || fail "SIG$signal: exit status $status, expected 130: $(tail -3 "$out.err")"
  [ -s "$out.state" ] || fail "SIG$signal: no training state $out.state"
  [ ! -e "$out" ] || fail "SIG$signal: an interrupted run wrote the model"
  if ls -a | grep -q "\.tmp-"; then fail "SIG$signal: a temporary file is left: $(ls -a)"; fi
  grep -q "resume with: dyad train --resume $out.state --data fleet.csv --out $out" "$out.err" \
    || fail "SIG$signal: no resume command: $(tail -3 "$out.err")"
}

for signal in INT TERM; do
  out=m_$signal.safetensors
  interrupt "$signal" "$out"
  # The printed command, run as printed (with the test's binary).
  cmd=$(sed -n 's/^resume with: dyad //p' "$out.err")
  # shellcheck disable=SC2086
  "$dyad" $cmd -q 2> "$out.resume.err" || fail "resume after SIG$signal: $(cat "$out.resume.err")"
  grep -q "resumed and trained" "$out.resume.err" || fail "resume says so: $(cat "$out.resume.err")"
  cmp -s "$out" full.safetensors || fail "the model resumed after SIG$signal differs from the uninterrupted run's"
  [ ! -e "$out.state" ] || fail "the state file is removed once the model is written"
done

# Resuming with other data or another setting is an error that says what differs.
interrupt INT other.safetensors
awk -F, -v OFS=, 'NR == 100 { $7 = $7 + 0.5 } { print }' fleet.csv > fleet2.csv
if "$dyad" train --resume other.safetensors.state --data fleet2.csv --out other.safetensors 2> err.txt; then fail "other data accepted"; fi
grep -q "training data differs" err.txt || fail "other data: $(cat err.txt)"
if "$dyad" train --resume other.safetensors.state --data fleet.csv --out other.safetensors --epochs 5 2> err.txt; then
  fail "other epochs accepted"
fi
grep -q -- "--epochs 5 differs from the interrupted run's $epochs" err.txt || fail "other epochs: $(cat err.txt)"
[ -s other.safetensors.state ] || fail "a refused resume keeps the state"

# --checkpoint-every: the state on disk survives a SIGKILL and resumes to the same model.
"$dyad" train "${train[@]}" --out k.safetensors --checkpoint-every 1 2> k.err &
pid=$!
for _ in $(seq 1 600); do
  grep -q "^epoch 2/$epochs" k.err 2>/dev/null && break
  sleep 0.05
done
kill -KILL "$pid"
wait "$pid" || true
[ -s k.safetensors.state ] || fail "--checkpoint-every wrote no state before SIGKILL"
"$dyad" train --resume k.safetensors.state --data fleet.csv --out k.safetensors -q 2> k.resume.err || fail "$(cat k.resume.err)"
cmp -s k.safetensors full.safetensors || fail "the model resumed after SIGKILL differs from the uninterrupted run's"
# A batch size past the cap is refused by the flag, before anything is read.
if "$dyad" train --data fleet.csv --out big.safetensors --batch-size 100000000 2> err.txt; then fail "--batch-size 1e8 accepted"; fi
grep -q -- "--batch-size" err.txt || fail "the error names --batch-size: $(cat err.txt)"
echo "dyad train: interrupt and resume checks passed"
