#!/usr/bin/env bash
# `mpirun -np N dyad train | score` on loopback: two ranks train the model one process trains
# (loss trajectory and scores to about 1e-5), sharded scoring writes the byte-identical file
# on 2 and 3 ranks from a CSV and from a segment store, only rank 0 writes, a bad input stops
# every rank with the reader's message and no output, SIGINT to one rank saves the state for
# --resume, and the other commands refuse mpirun.
#   mpi.sh PATH/TO/dyad WORKDIR PATH/TO/mpirun
set -euo pipefail
dyad=$1
work=$2
mpirun=${3:-mpirun}
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
# Loopback only, as root in CI containers, more ranks than cores allowed; a hung rank ends the test.
ranks() { local n=$1; shift; timeout 300 "$mpirun" --allow-run-as-root --oversubscribe --mca btl self,vader -np "$n" "$@"; }

"$dyad" --version | grep -q "^MPI: Open MPI" || fail "dyad --version does not report MPI: $("$dyad" --version)"

"$dyad" simulate --cars 16 --faulty 4 --segments 8 --steps 40 --seed 6 --out fleet.csv
"$dyad" pack --data fleet.csv --out fleet.dyadset
train=(--epochs 3 --batch-size 13 --seed 3 --threads 1 -q)

# Data-parallel training: the same global batches, so the same model up to float sums.
"$dyad" train --data fleet.csv --out one.safetensors --log-json one.jsonl "${train[@]}" 2> one.err
ranks 2 "$dyad" train --data fleet.dyadset --out two.safetensors --log-json two.jsonl "${train[@]}" 2> two.err ||
  fail "2-rank training failed: $(tail -5 two.err)"
grep -q "data-parallel over 2 MPI ranks" two.err || fail "2-rank training does not say so: $(cat two.err)"
[ "$(grep -c '^wrote two.safetensors' two.err)" -eq 1 ] || fail "rank 0 alone should report the model: $(cat two.err)"
ls -a | grep -q '\.tmp' && fail "temporary files left: $(ls -a)"
python3 - one.jsonl two.jsonl <<'PY' || fail "1 and 2 ranks disagree on the loss trajectory"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) and len(a) > 10, (len(a), len(b))
worst = 0.0
for x, y in zip(a, b):
    assert (x["epoch"], x["batch"]) == (y["epoch"], y["batch"])
    for k in ("loss", "nll", "kl", "label"):
        worst = max(worst, abs(x[k] - y[k]) / max(abs(x[k]), 1e-30))
print(f"mpi.sh: {len(a)} log lines, largest relative loss difference 1 vs 2 ranks {worst:.2e}")
assert worst < 2e-5, worst
PY
"$dyad" score --model one.safetensors --data fleet.csv --out one.csv 2> /dev/null
"$dyad" score --model two.safetensors --data fleet.csv --out two.csv 2> /dev/null
python3 - one.csv two.csv <<'PY' || fail "the 1- and 2-rank models score differently"
import csv, sys
a = list(csv.DictReader(open(sys.argv[1])))
b = list(csv.DictReader(open(sys.argv[2])))
assert len(a) == len(b) == 128
worst = max(abs(float(x["rec_error"]) - float(y["rec_error"])) / float(x["rec_error"]) for x, y in zip(a, b))
print(f"mpi.sh: largest relative rec_error difference 1 vs 2 ranks {worst:.2e}")
assert worst < 1e-4, worst
PY

# Sharded scoring: byte-identical to one process, from a CSV and from a store.
"$dyad" score --model one.safetensors --data fleet.csv --out single.csv --batch-size 10 2> /dev/null
for n in 2 3; do
  for data in fleet.csv fleet.dyadset; do
    ranks "$n" "$dyad" score --model one.safetensors --data "$data" --out "sharded$n.csv" --batch-size 10 2> score.err ||
      fail "score on $n ranks failed: $(cat score.err)"
    cmp -s single.csv "sharded$n.csv" || fail "score on $n ranks ($data) differs from one process"
    grep -q "$n MPI ranks" score.err || fail "score does not report its ranks: $(cat score.err)"
  done
done

# A bad input stops every rank with the reader's message, and nothing is written.
head -3 fleet.csv > bad.csv && echo "car_x,1,0,oops" >> bad.csv
status=0
ranks 2 "$dyad" train --data bad.csv --out bad.safetensors "${train[@]}" > bad.err 2>&1 || status=$?
[ "$status" -ne 0 ] || fail "training on a bad CSV across ranks succeeded"
grep -q "bad.csv:4:" bad.err || fail "no file:line message: $(cat bad.err)"
ls bad.safetensors* 2> /dev/null && fail "a bad run left an output"

# SIGINT to one rank stops every rank after the same step; rank 0 saves the state, and
# `mpirun ... --resume` finishes the run.
ranks 2 "$dyad" train --data fleet.dyadset --out stop.safetensors --epochs 400 --batch-size 13 --seed 3 --threads 1 2> stop.err &
launcher=$!
for _ in $(seq 1 600); do
  grep -q "^epoch 1/400" stop.err 2> /dev/null && break
  sleep 0.05
done
rank_pid=$(pgrep -f -- "^$dyad train --data fleet.dyadset --out stop.safetensors" | tail -1)  # a rank, not mpirun
[ -n "$rank_pid" ] || fail "no rank process found to interrupt"
kill -INT "$rank_pid"
status=0
wait "$launcher" || status=$?
[ "$status" -eq 130 ] || fail "SIGINT to a rank: exit status $status, expected 130: $(tail -5 stop.err)"
[ -f stop.safetensors.state ] || fail "no training state after SIGINT: $(tail -5 stop.err)"
[ -f stop.safetensors ] && fail "an interrupted run wrote a model"
ranks 2 "$dyad" train --resume stop.safetensors.state --data fleet.dyadset --out stop.safetensors --threads 1 -q 2> resume.err ||
  fail "resume across ranks failed: $(tail -5 resume.err)"
grep -q "resumed and trained" resume.err || fail "resume did not say so: $(cat resume.err)"
[ -f stop.safetensors ] && [ ! -f stop.safetensors.state ] || fail "resume should write the model and remove the state"

# Ranks that hold different inputs under the same path (each node its own copy): a stale copy
# with the same segment count, or another model, is one error from rank 0 before any work, and
# nothing is written. Each rank runs in its own directory (mpirun's -wdir, MPMD ':' syntax).
mkdir -p node0 node1
cp fleet.csv node0/fleet.csv
python3 - fleet.csv node1/fleet.csv <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
f = lines[5].split(",")
f[6] = str(float(f[6]) + 0.5)  # one volt value of one row: same cars, segments and rows
lines[5] = ",".join(f)
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
PY
cp one.safetensors node0/model.safetensors
cp one.safetensors node1/model.safetensors
two_nodes() {  # the same command line on two ranks, each in its node's directory
  timeout 300 "$mpirun" --allow-run-as-root --oversubscribe --mca btl self,vader -np 1 -wdir "$work/node0" "$@" \
    : -np 1 -wdir "$work/node1" "$@"
}
for cmd in score train; do
  status=0
  if [ $cmd = score ]; then
    two_nodes "$dyad" score --model model.safetensors --data fleet.csv --out mixed.csv > mixed.err 2>&1 || status=$?
  else
    two_nodes "$dyad" train --data fleet.csv --out mixed.safetensors "${train[@]}" > mixed.err 2>&1 || status=$?
  fi
  [ "$status" -ne 0 ] || fail "$cmd on ranks with different --data succeeded"
  grep -q "the MPI ranks do not hold the same inputs: --data 'fleet.csv' on rank(s) 1 differs from rank 0's" mixed.err \
    || fail "$cmd: no agreement message: $(cat mixed.err)"
  ls node0/mixed* node1/mixed* 2> /dev/null && fail "$cmd on disagreeing ranks left an output"
done
cp fleet.csv node1/fleet.csv
"$dyad" train --data fleet.csv --out node1/model.safetensors --epochs 1 --batch-size 13 --seed 4 --threads 1 -q 2> /dev/null
status=0
two_nodes "$dyad" score --model model.safetensors --data fleet.csv --out mixed.csv > mixed.err 2>&1 || status=$?
[ "$status" -ne 0 ] || fail "score with a different --model on each rank succeeded"
grep -q "\-\-model 'model.safetensors' on rank(s) 1 differs from rank 0's" mixed.err || fail "no model message: $(cat mixed.err)"
# Different segment counts: dyad's message, not an MPI truncation error.
head -n 200 fleet.csv > node1/fleet.csv
cp node0/model.safetensors node1/model.safetensors
status=0
two_nodes "$dyad" score --model model.safetensors --data fleet.csv --out mixed.csv > mixed.err 2>&1 || status=$?
[ "$status" -ne 0 ] || fail "score with different segment counts succeeded"
grep -q "\-\-data 'fleet.csv' on rank(s) 1 differs" mixed.err || fail "segment counts: $(cat mixed.err)"

# The other commands run in one process and say so.
status=0
ranks 2 "$dyad" evaluate --scores single.csv > refuse.err 2>&1 || status=$?
[ "$status" -ne 0 ] || fail "evaluate ran across ranks"
grep -q "only train and score run across" refuse.err || fail "no refusal message: $(cat refuse.err)"
echo "mpi.sh: passed"
