#!/usr/bin/env bash
# End-to-end checks of the `dyad` command line on a tiny simulated fleet: every subcommand runs
# and writes what it promises; bad input names the file, line and column and leaves no output.
#   check.sh PATH/TO/dyad WORKDIR PATH/TO/quickstart PATH/TO/import_pytorch FIXTURES_DIR
set -euo pipefail
dyad=$1
work=$2
quickstart=$3
import_pytorch=$4
fixtures=$5
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$dyad" --help | grep -q "demo" || fail "top-level --help lists the subcommands"
for cmd in train calibrate score simulate ingest pack monitor status compare evaluate cv report bench demo; do
  "$dyad" "$cmd" --help | grep -q "Usage" || fail "$cmd --help"
done

"$dyad" simulate --cars 12 --faulty 3 --segments 6 --steps 32 --seed 5 --out fleet.csv
[ "$(wc -l < fleet.csv)" -eq $((12 * 6 * 32 + 1)) ] || fail "simulate writes cars x segments x steps rows"
head -1 fleet.csv | grep -q "^car,segment,t,label,mileage,timestamp,volt,current,soc" || fail "simulate header"

"$dyad" train --data fleet.csv --out model.safetensors --epochs 2 --batch-size 16 --seed 3 --log-json log.jsonl -q \
  2> train.err
grep -q "faulty segments left out" train.err || fail "train reports the faulty segments it left out"
[ "$(grep -c '"epoch_end":true' log.jsonl)" -eq 2 ] || fail "--log-json has one line per epoch end"
# 9 normal cars: round(0.2 x 9) = 2 held out to calibrate on, with the 3 faulty ones.
grep -q "calibrated on 2 healthy cars it did not train on (and 3 faulty cars, for --cost-miss).* 1/3 = 0.333" train.err \
  || fail "train calibrates on held-out cars: $(cat train.err)"
python3 - model.safetensors <<'PY' || fail "the checkpoint holds dyad.calibration"
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
cal = json.loads(json.loads(raw[8:8 + n])["__metadata__"]["dyad.calibration"])
assert len(cal["cars"]) == 2 and len(cal["faulty_cars"]) == 3, cal
assert set(cal["scores"]) >= {"rec_error", "combined_score"} and len(cal["scores"]["combined_score"]) == 2, cal
assert cal["signals"] == ["max_temp", "max_single_volt", "min_single_volt", "volt"], cal["signals"]
PY
"$dyad" calibrate --model model.safetensors --data fleet.csv --out recalibrated.safetensors --top 250 2> calibrate.err \
  || fail "calibrate: $(cat calibrate.err)"
grep -q "replacing the calibration on 2 cars" calibrate.err || fail "calibrate says it replaces one: $(cat calibrate.err)"
grep -q "calibrated on 9 healthy cars .*(and 3 faulty cars.*top 250 per mille.* 1/10 = 0.1" calibrate.err \
  || fail "calibrate summary: $(cat calibrate.err)"
"$dyad" train --data fleet.csv --out uncalibrated.safetensors --epochs 1 --batch-size 16 --calibration-fraction 0 -q 2> nocal.err
grep -q "not calibrated" nocal.err || fail "--calibration-fraction 0: $(cat nocal.err)"

"$dyad" score --model model.safetensors --data fleet.csv --out scores.csv
# Data that is clearly not what the model was trained on (the current's sign flipped, cell
# voltages in mV): an error naming the column, what was expected and seen, and the fix; no
# output. --allow-drift scores it with warnings.
python3 - fleet.csv <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for name, change in (("flipped.csv", lambda r: r.update(current=str(-float(r["current"])))),
                     ("millivolts.csv", lambda r: r.update(max_single_volt=str(1000 * float(r["max_single_volt"]))))):
    with open(name, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        for r in rows:
            r = dict(r)
            change(r)
            w.writerow(r)
PY
if "$dyad" score --model model.safetensors --data flipped.csv --out drift_scores.csv 2> drift.err; then fail "score of a flipped current succeeded"; fi
grep -q "column 'current': sign flipped (mean -.*; training mean .*): likely the export's sign of charging current: \"charging_current\" in the ingest spec" drift.err \
  || fail "the flipped current is named: $(cat drift.err)"
grep -q -- "--allow-drift scores it anyway" drift.err || fail "the refusal names --allow-drift: $(cat drift.err)"
[ ! -e drift_scores.csv ] || fail "a refused score left its output"
if "$dyad" score --model model.safetensors --data millivolts.csv --out drift_scores.csv 2> drift.err; then fail "score of mV succeeded"; fi
grep -q "column 'max_single_volt': units x1000 .*\"scale\": {\"max_single_volt\": 0.001}" drift.err || fail "mV is named: $(cat drift.err)"
"$dyad" score --model model.safetensors --data flipped.csv --out drift_scores.csv --allow-drift 2> drift.err || fail "--allow-drift: $(cat drift.err)"
grep -q "warning (--allow-drift): column 'current': sign flipped" drift.err || fail "--allow-drift warns: $(cat drift.err)"
head -1 scores.csv | grep -q "^car,segment,label,rec_error,max_temp_error,max_single_volt_error,min_single_volt_error,volt_error,latent_score,pattern_score,combined_score$" \
  || fail "score columns: $(head -1 scores.csv)"
[ "$(wc -l < scores.csv)" -eq $((12 * 6 + 1)) ] || fail "score writes one row per segment"

"$dyad" evaluate --scores scores.csv --json > eval.json
python3 - eval.json <<'PY' || fail "evaluate --json"
import json, sys
j = json.load(open(sys.argv[1]))
for name in ("rec_error", "latent_score", "pattern_score", "combined_score"):
    s = j["scores"][name]
    assert 0.0 <= s["auroc_robust"] <= 1.0, s
    assert len(s["cars"]) == 12
PY
"$dyad" evaluate --scores scores.csv | grep -q "car-level AUROC" || fail "evaluate table"

"$dyad" report --scores scores.csv --data fleet.csv --model model.safetensors --out report.html --cars 2
grep -q "<svg" report.html || fail "report has charts"

"$dyad" cv --data fleet.csv --folds 3 --epochs 1 -q --json > cv.json
python3 -c "import json,sys; j=json.load(open('cv.json')); assert len(j['folds']) == 3 and 'rec_error' in j['mean']" \
  || fail "cv --json has every fold and the mean"

"$dyad" bench --preset fivefold --steps 16 --seconds 0.05 --json | tail -1 > bench.json
python3 -c "import json; j=json.load(open('bench.json')); assert all(j[k] > 0 for k in ('train_segments_per_s','score_segments_per_s','latency_ms_batch1','train_gflops'))" \
  || fail "bench --json"

"$dyad" demo --out demo --cars 12 --faulty 3 --segments 4 --epochs 1 > demo.out 2> demo.err
for f in fleet.csv model.safetensors scores.csv report.html; do [ -s "demo/$f" ] || fail "demo writes $f"; done
grep -q "car-level AUROC" demo.out || fail "demo prints the AUROCs"

# Upstream's own params file loads unchanged: its task name, its unused keys (named once as
# ignored) and min_length, which leaves out the shorter segments (counted).
cat > params_upstream.json <<'JSON'
{"project": "DyAD", "jobs": 4, "model_type": "rnn", "task": "ev", "epochs": 1, "batch_size": 16,
 "learning_rate": 0.001, "cosine_factor": 1.0, "rnn_type": "gru", "hidden_size": 8, "num_layers": 1,
 "bidirectional": true, "latent_size": 4, "noise_scale": 0.01, "anneal_function": "linear", "k": 0.0025,
 "x0": 500, "anneal0": 0.1, "nll_weight": 10, "latent_label_weight": 0.01, "variable_length": false,
 "min_length": 20, "granularity_all": 1000, "use_flag": "rec_error", "save_model_path": "./dyad_vae_save"}
JSON
awk -F, 'NR == 1 || !($1 == "car0000" && $2 == 0 && $3 >= 16)' fleet.csv > short.csv   # car0000's segment 0: 16 steps
"$dyad" train --data short.csv --config params_upstream.json --out upstream.safetensors -q 2> upstream.err \
  || fail "upstream params file: $(cat upstream.err)"
[ "$(grep -c "ignoring upstream keys" upstream.err)" -eq 1 ] || fail "ignored keys named once: $(cat upstream.err)"
grep -q "ignoring upstream keys dyad does not use: granularity_all jobs model_type project save_model_path use_flag variable_length" upstream.err \
  || fail "the ignored keys: $(cat upstream.err)"
grep -q "left out 1 of 72 segments, shorter than min_length 20 steps" upstream.err || fail "min_length: $(cat upstream.err)"
"$dyad" score --model upstream.safetensors --data short.csv --out upstream_scores.csv 2> upstream_score.err
[ "$(wc -l < upstream_scores.csv)" -eq 72 ] || fail "score leaves out segments below the model's min_length"
sed 's/"epochs": 1/"epoch": 1/' params_upstream.json > typo.json
if "$dyad" train --data fleet.csv --config typo.json --out typo.safetensors 2> typo.err; then fail "a misspelt key accepted"; fi
grep -q "typo.json: key 'epoch': unknown key (did you mean 'epochs'?)" typo.err || fail "typo error: $(cat typo.err)"
[ ! -e typo.safetensors ] || fail "a refused config left a model"
# Each upstream rnn_type trains from its params file, is saved with its cell, and scores.
for cell in rnn lstm; do
  sed "s/\"rnn_type\": \"gru\"/\"rnn_type\": \"$cell\"/" params_upstream.json > "params_$cell.json"
  "$dyad" train --data short.csv --config "params_$cell.json" --out "$cell.safetensors" -q 2> "$cell.err" \
    || fail "rnn_type $cell: $(cat "$cell.err")"
  grep -q "Z 4, $cell cells" "$cell.err" || fail "train names the cell: $(cat "$cell.err")"
  python3 - "$cell.safetensors" "$cell" <<'PY' || fail "rnn_type $cell in the saved model"
import json, struct, sys
b = open(sys.argv[1], "rb").read()
h = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])
gates = {"rnn": 1, "gru": 3, "lstm": 4}[sys.argv[2]]
assert json.loads(h["__metadata__"]["dyad.config"])["rnn_type"] == sys.argv[2]
assert h["encoder_rnn.weight_hh_l0"]["shape"] == [gates * 8, 8], h["encoder_rnn.weight_hh_l0"]
PY
  "$dyad" score --model "$cell.safetensors" --data short.csv --out "${cell}_scores.csv" 2> "${cell}_score.err" \
    || fail "score with $cell cells: $(cat "${cell}_score.err")"
  [ "$(wc -l < "${cell}_scores.csv")" -eq 72 ] || fail "scores of the $cell model"
done
# As a PyTorch state_dict (no dyad metadata) the cell is read off the weights; a --rnn-type that
# contradicts them is refused with the tensor that shows it.
python3 - lstm.safetensors lstm_plain.safetensors <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
del h["__metadata__"]
text = json.dumps(h).encode()
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + b[8 + n:])
PY
"$dyad" train --data fleet.csv --init lstm_plain.safetensors --out plain_tuned.safetensors --epochs 1 -q 2> plain.err \
  || fail "--init of an LSTM state_dict: $(cat plain.err)"
grep -q "lstm cells" plain.err || fail "the state_dict's cell: $(cat plain.err)"
if "$dyad" train --data fleet.csv --init lstm_plain.safetensors --rnn-type gru --out conflict.safetensors 2> conflict.err; then
  fail "--rnn-type gru accepted an LSTM state_dict"
fi
grep -q "tensor 'encoder_rnn.weight_hh_l0': has 32 rows = 4 x hidden size 8, the weights of lstm cells, but the configuration's rnn_type is gru" conflict.err \
  || fail "cell conflict: $(cat conflict.err)"
[ ! -e conflict.safetensors ] || fail "a refused --init left a model"
"$dyad" bench --preset fivefold --rnn-type lstm --steps 16 --seconds 0.05 --json | tail -1 > bench_lstm.json
python3 -c "import json; j=json.load(open('bench_lstm.json')); assert j['rnn_type'] == 'lstm' and j['train_segments_per_s'] > 0" \
  || fail "bench --rnn-type lstm --json"
# --init fine-tunes the loaded model with its own settings; only the flags given change, and it
# says so (a preset's learning rate or batch size is not applied to it).
"$dyad" train --data fleet.csv --init upstream.safetensors --out tuned.safetensors --epochs 2 --lr 0.0005 -q 2> init.err \
  || fail "train --init: $(cat init.err)"
grep -q "architecture, normaliser and training settings from the model; from the command line: epochs 2, learning_rate 0.0005" init.err \
  || fail "--init says what it keeps: $(cat init.err)"
grep -q "H 8, layers 1 x2, Z 4" init.err || fail "--init keeps the loaded architecture: $(cat init.err)"
python3 - tuned.safetensors <<'PY' || fail "--init settings in the saved model"
import json, struct, sys
b = open(sys.argv[1], "rb").read()
c = json.loads(json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])["__metadata__"]["dyad.config"])
assert (c["epochs"], c["learning_rate"], c["batch_size"], c["min_length"]) == (2, 0.0005, 16, 20), c
PY
if "$dyad" train --data fleet.csv --init upstream.safetensors --config params_upstream.json --out t2.safetensors 2> init.err; then
  fail "--init with --config accepted"
fi
grep -q "give training flags" init.err || fail "--init with --config: $(cat init.err)"
# Thread defaults are every hardware thread, and --help says so.
for cmd in train score cv bench demo; do
  "$dyad" "$cmd" --help | grep -q "default: every hardware thread" || fail "$cmd --help states the thread default"
done

# --precision bf16 runs bf16 where the CPU has AVX512-BF16 and says fp32 elsewhere; same rows.
"$dyad" score --model model.safetensors --data fleet.csv --out bf16_scores.csv --precision bf16 2> bf16.err
grep -Eq "seg/s, bf16\)|needs AVX512-BF16, which this CPU lacks .*computing in fp32" bf16.err || fail "score --precision bf16: $(cat bf16.err)"
[ "$(cut -d, -f1,2 bf16_scores.csv | md5sum)" = "$(cut -d, -f1,2 scores.csv | md5sum)" ] || fail "bf16 scores the same segments"
if "$dyad" score --model model.safetensors --data fleet.csv --out x.csv --precision fp16 2> fp16.err; then fail "--precision fp16 accepted"; fi
grep -q -- "--precision" fp16.err || fail "a bad --precision names the flag: $(cat fp16.err)"
"$dyad" bench --preset fivefold --steps 16 --seconds 0.05 --precision bf16 --json | tail -1 > bench_bf16.json
python3 -c "import json; j=json.load(open('bench_bf16.json')); assert j['precision'] in ('bf16','fp32') and j['cpu'] and j['cpu_features']" \
  || fail "bench --json reports precision, cpu and cpu_features"

# A segment store (dyad pack) is read by every --data as the CSV is, with identical results.
"$dyad" pack --data fleet.csv --out fleet.dyadset 2> pack.err || fail "pack: $(cat pack.err)"
grep -q "dyad pack: 72 segments (2304 rows, 12 cars)" pack.err || fail "pack summary: $(cat pack.err)"
"$dyad" score --model model.safetensors --data fleet.dyadset --out store_scores.csv 2> /dev/null
cmp -s scores.csv store_scores.csv || fail "score from the store differs from score from the CSV"
"$dyad" train --data fleet.dyadset --out store_model.safetensors --epochs 2 --batch-size 16 --seed 3 -q 2> /dev/null
"$dyad" train --data fleet.csv --out csv_model.safetensors --epochs 2 --batch-size 16 --seed 3 -q 2> /dev/null
cmp -s store_model.safetensors csv_model.safetensors || fail "training on the store differs from training on the CSV"
"$dyad" cv --data fleet.dyadset --folds 3 --epochs 1 -q --json > store_cv.json
cmp -s cv.json store_cv.json || fail "cv on the store differs from cv on the CSV"
if "$dyad" pack --data fleet.dyadset --out again.dyadset 2> repack.err; then fail "pack of a store accepted"; fi
grep -q "already a segment store" repack.err || fail "pack of a store: $(cat repack.err)"
if "$dyad" score --model model.safetensors --data model.safetensors --out x.csv 2> store.err; then fail "a model accepted as data"; fi
grep -q "model.safetensors: segment store: a safetensors file without 'dyad.segment_store' metadata" store.err \
  || fail "a model as --data: $(cat store.err)"
[ ! -e x.csv ] || fail "a failed score left an output file"

# Bad input: the message names file, line and column; no output file is left behind.
awk -F, -v OFS=, 'NR == 5 { $7 = "abc" } { print }' fleet.csv > bad.csv   # volt, a column the model reads
if "$dyad" score --model model.safetensors --data bad.csv --out bad_scores.csv 2> bad.err; then fail "bad CSV accepted"; fi
grep -q "bad.csv:5:" bad.err || fail "error names file and line: $(cat bad.err)"
grep -q "bad.csv:5:7: column 'volt'" bad.err || fail "error names the column: $(cat bad.err)"
[ ! -e bad_scores.csv ] || fail "a failed score left an output file"
if "$dyad" pack --data bad.csv --out bad.dyadset 2> badpack.err; then fail "pack of a bad CSV accepted"; fi
grep -q "bad.csv:5:7: column 'volt'" badpack.err || fail "pack error names file, line and column: $(cat badpack.err)"
[ ! -e bad.dyadset ] || fail "a failed pack left an output file"
ls -a | grep -q "bad_scores.csv." && fail "a failed score left a temporary file"
if "$dyad" train --data fleet.csv 2> flag.err; then fail "missing --out accepted"; fi
grep -q -- "--out" flag.err || fail "error names the missing flag: $(cat flag.err)"
if "$dyad" score --model fleet.csv --data fleet.csv --out x.csv 2> model.err; then fail "a CSV accepted as a model"; fi
grep -q "fleet.csv" model.err || fail "bad model error names the file: $(cat model.err)"
[ ! -e x.csv ] || fail "a failed score left an output file"
# The examples: quickstart (fit, score, save, load) and importing a PyTorch state_dict.
"$quickstart" > quickstart.out
grep -q "reloaded model scores identically: true" quickstart.out || fail "quickstart: $(tail -3 quickstart.out)"
"$import_pytorch" "$fixtures/torch_state_dict_fivefold.safetensors" fleet.csv fivefold > import.out
grep -q "loaded .*H 64, layers 1, bidirectional, Z 32" import.out || fail "import_pytorch: $(head -2 import.out)"
[ "$(grep -c rec_error import.out)" -eq 10 ] || fail "import_pytorch scores segments"
# Output paths are checked before any work: the message names the flag and the path. The data
# file here is broken, so an error about the data would mean it was read first.
if "$dyad" score --model model.safetensors --data bad.csv --out /missing/dir/x.csv 2> out.err; then fail "score into a missing directory"; fi
grep -q -- "--out '/missing/dir/x.csv': the directory '/missing/dir' does not exist" out.err || fail "missing --out directory: $(cat out.err)"
if "$dyad" simulate --cars 2 --faulty 0 --segments 1 --seed 1 --out /missing/dir/f.csv 2> out.err; then fail "simulate into a missing directory"; fi
grep -q -- "--out '/missing/dir/f.csv'" out.err || fail "simulate names --out: $(cat out.err)"
if "$dyad" report --scores scores.csv --data bad.csv --model model.safetensors --out /missing/r.html 2> out.err; then fail "report into a missing directory"; fi
grep -q -- "--out '/missing/r.html'" out.err || fail "report names --out: $(cat out.err)"
echo x > not_a_dir
if "$dyad" demo --out not_a_dir --cars 4 --faulty 1 --segments 1 --epochs 1 > /dev/null 2> out.err; then fail "demo into a file"; fi
grep -q -- "--out 'not_a_dir': exists and is not a directory" out.err || fail "demo --out a file: $(cat out.err)"
mkdir -p demo_bad/scores.csv   # a directory where demo would write its scores, found before training
if "$dyad" demo --out demo_bad --cars 4 --faulty 1 --segments 1 --epochs 1 > /dev/null 2> out.err; then fail "demo over a directory"; fi
grep -q -- "--out 'demo_bad/scores.csv': it is a directory" out.err || fail "demo checks its files first: $(cat out.err)"
[ ! -e demo_bad/fleet.csv ] || fail "demo wrote before checking all its outputs"

# --out through a symlink writes the link's target and keeps the link.
echo old > real_scores.csv
ln -s real_scores.csv link_scores.csv
"$dyad" score --model model.safetensors --data fleet.csv --out link_scores.csv 2> /dev/null
[ -L link_scores.csv ] || fail "score replaced the --out symlink"
head -1 real_scores.csv | grep -q "^car,segment,label,rec_error" || fail "score did not write the link's target"
# Directories, FIFOs, devices and standard output are refused, and left as they were.
mkdir -p out_dir
if "$dyad" score --model model.safetensors --data fleet.csv --out out_dir 2> out.err; then fail "--out a directory accepted"; fi
grep -q -- "--out 'out_dir': it is a directory" out.err || fail "--out a directory: $(cat out.err)"
mkfifo out_fifo
# timeout only guards against a hang (a FIFO opened for writing blocks until read).
if timeout 120 "$dyad" simulate --cars 2 --faulty 0 --segments 1 --seed 1 --out out_fifo 2> out.err; then fail "--out a FIFO accepted"; fi
grep -q -- "--out 'out_fifo': it is a FIFO" out.err || fail "--out a FIFO: $(cat out.err)"
[ -p out_fifo ] || fail "the FIFO was replaced"
ln -s /dev/stdout to_stdout
if "$dyad" simulate --cars 2 --faulty 0 --segments 1 --seed 1 --out to_stdout > /dev/null 2> out.err; then fail "--out to stdout accepted"; fi
grep -q "standard stream" out.err || fail "--out to stdout: $(cat out.err)"
[ -L to_stdout ] || fail "the link to /dev/stdout was replaced"
if mknod full_dev c 1 7 2> /dev/null; then   # a copy of /dev/full, where root may make device nodes
  if "$dyad" simulate --cars 2 --faulty 0 --segments 1 --seed 1 --out full_dev 2> out.err; then fail "--out a device accepted"; fi
  grep -q -- "--out 'full_dev': it is a character device" out.err || fail "--out a device: $(cat out.err)"
  [ -c full_dev ] || fail "the device node was replaced by a file"
fi
if ls -a | grep -q "\.tmp-"; then fail "a refused output left a temporary: $(ls -a | grep '\.tmp-')"; fi

# A signal while an output is written removes the temporary; the process dies of the signal.
# Job control (set -m) gives the background job the default SIGINT action a terminal would
# (a script's background jobs otherwise ignore SIGINT, and dyad leaves ignored signals alone).
bg_pid=
trap '[ -n "$bg_pid" ] && kill -KILL "$bg_pid" 2> /dev/null; true' EXIT
for sig in INT TERM; do
  set -m
  "$dyad" simulate --cars 100000 --faulty 0 --segments 100 --steps 128 --seed 1 --out big.csv 2> /dev/null &
  bg_pid=$!
  set +m
  # Wait for the temporary to exist (no time limit: the fleet is far too big to finish first).
  until compgen -G ".big.csv.tmp-*" > /dev/null; do
    kill -0 "$bg_pid" 2> /dev/null || fail "simulate ended before its temporary file appeared"
    sleep 0.05
  done
  kill "-$sig" "$bg_pid"
  status=0
  wait "$bg_pid" 2> /dev/null || status=$?
  bg_pid=
  want=$((128 + $(kill -l "$sig")))
  [ "$status" -eq "$want" ] || fail "SIG$sig: exit status $status, want $want"
  if compgen -G ".big.csv.tmp-*" > /dev/null; then fail "SIG$sig left a temporary file: $(ls -a | grep tmp)"; fi
  [ ! -e big.csv ] || fail "SIG$sig left big.csv"
done

# Raw telemetry: simulate --raw -> ingest -> train -> score, end to end.
"$dyad" simulate --raw raw.csv --cars 6 --faulty 1 --days 2 --seed 4 --delimiter ';' --current-sign negative \
  --timestamps epoch_ms --spec-out spec.json --labels-out labels.csv --sessions-out sessions.csv 2> sim_raw.err
head -1 raw.csv | grep -q ";" || fail "simulate --raw --delimiter ';'"
"$dyad" ingest --raw raw.csv --spec spec.json --labels labels.csv --out segments.csv --report-json ingest.json 2> ingest.err \
  || fail "ingest: $(cat ingest.err)"
head -1 segments.csv | grep -q "^car,segment,t,label,mileage,timestamp,volt,current,soc" || fail "ingest header: $(head -1 segments.csv)"
python3 - ingest.json segments.csv <<'PY' || fail "ingest --report-json"
import json, sys, csv
j = json.load(open(sys.argv[1]))
t = j["total"]
rows = list(csv.DictReader(open(sys.argv[2])))
assert t["windows"] > 0 and len(rows) == t["windows"] * 128, (t, len(rows))
for key in ("not_charging", "outside_session", "gap", "unparsable", "out_of_range", "out_of_order"):
    assert key in t["dropped"], key
assert all(float(r["current"]) > 0 for r in rows)
assert j["labelled"] is True
PY
grep -q "charging sessions" ingest.err || fail "ingest prints its account"
"$dyad" train --data segments.csv --out raw_model.safetensors --epochs 1 --batch-size 16 --seed 3 -q 2> /dev/null
"$dyad" score --model raw_model.safetensors --data segments.csv --out raw_scores.csv 2> /dev/null
[ "$(wc -l < raw_scores.csv)" -gt 1 ] || fail "score on ingested segments"
# Cell voltage in mV at scoring time: refused as drift (above); scored with --allow-drift, a
# warning names car, segment and column.
python3 - segments.csv segments_mv.csv <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
with open(sys.argv[2], "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
    w.writeheader()
    for r in rows:
        r["max_single_volt"] = str(float(r["max_single_volt"]) * 1000)
        w.writerow(r)
PY
"$dyad" score --model raw_model.safetensors --data segments_mv.csv --out mv_scores.csv --allow-drift 2> mv_score.err
grep -q "warning: car '.*' segment [0-9]* column 'max_single_volt' step 0: .* scales from the training mean" mv_score.err \
  || fail "score warns about values far outside the training range: $(cat mv_score.err)"
# Without --labels the segments are unlabelled, and every later command says so.
"$dyad" ingest --raw raw.csv --spec spec.json --out unlabelled.csv 2> unlabelled_ingest.err
head -1 unlabelled.csv | grep -q "^car,segment,t,mileage,timestamp," || fail "unlabelled ingest header: $(head -1 unlabelled.csv)"
grep -q "(unlabelled)" unlabelled_ingest.err || fail "ingest says the output is unlabelled"
"$dyad" train --data unlabelled.csv --out unlabelled_model.safetensors --epochs 1 --batch-size 16 -q 2> unlabelled_train.err
grep -q "no label column (unlabelled): every segment is trained on as normal" unlabelled_train.err || fail "train on unlabelled data"
"$dyad" score --model unlabelled_model.safetensors --data unlabelled.csv --out unlabelled_scores.csv 2> /dev/null
head -1 unlabelled_scores.csv | grep -q "^car,segment,rec_error" || fail "unlabelled scores header: $(head -1 unlabelled_scores.csv)"
"$dyad" evaluate --scores unlabelled_scores.csv > unlabelled_eval.txt
grep -q "no AUROC: the cars are unlabelled" unlabelled_eval.txt || fail "evaluate on unlabelled scores: $(tail -3 unlabelled_eval.txt)"
"$dyad" evaluate --scores unlabelled_scores.csv --json | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j["labelled"] is False and all(s["auroc_robust"] is None for s in j["scores"].values())' \
  || fail "evaluate --json on unlabelled scores"
if "$dyad" cv --data unlabelled.csv --epochs 1 2> unlabelled_cv.err; then fail "cv on unlabelled data succeeded"; fi
grep -q "no label column (unlabelled cars)" unlabelled_cv.err || fail "cv error: $(cat unlabelled_cv.err)"
# A mapped column missing from the export: an error naming file, line and spec key; no output.
sed 's/"soc_pct"/"soc_percent"/' spec.json > bad_spec.json
if "$dyad" ingest --raw raw.csv --spec bad_spec.json --out bad_segments.csv 2> bad_ingest.err; then fail "ingest with a bad spec succeeded"; fi
grep -q "raw.csv:1:1: column 'soc_percent' (spec columns.soc) is not in the header" bad_ingest.err || fail "ingest error: $(cat bad_ingest.err)"
[ ! -e bad_segments.csv ] || fail "a failed ingest left its output"
# A spec that forgot the export's negative charging current, and charging values no row holds:
# errors naming the key (and the values seen), no output.
sed 's/"charging_current": *"negative"/"charging_current": "positive"/' spec.json > sign_spec.json
! cmp -s spec.json sign_spec.json || fail "the simulated spec says \"charging_current\": \"negative\": $(cat spec.json)"
if "$dyad" ingest --raw raw.csv --spec sign_spec.json --out sign_segments.csv 2> sign.err; then fail "ingest with the wrong current sign succeeded"; fi
grep -q "sign_spec.json: key 'charging_current': .* charging rows .* come out with a negative charging current .* set \"charging_current\": \"negative\"" sign.err \
  || fail "the wrong current sign is named: $(cat sign.err)"
[ ! -e sign_segments.csv ] || fail "a refused ingest left its output"
python3 -c 'import json,sys; s=json.load(open("spec.json")); s["charging"]["values"]=["Charging"]; json.dump(s, open("values_spec.json","w"))'
if "$dyad" ingest --raw raw.csv --spec values_spec.json --out values_segments.csv 2> values.err; then fail "ingest with charging values no row has succeeded"; fi
grep -q "key 'charging.values': no row's .* is one of 'Charging'; the values seen are '" values.err || fail "charging values nobody has: $(cat values.err)"
# An output that is one of the command's inputs (by any path: the same name, a symbolic link, a
# hard link) is refused before anything is written, naming both; the input is untouched.
ln -sf raw.csv raw_link.csv
ln -f fleet.csv fleet_hard.csv
cp model.safetensors model_copy.safetensors
sums=$(cat raw.csv fleet.csv model_copy.safetensors spec.json | md5sum)
refuse() {  # WHAT EXPECTED-MESSAGE COMMAND...: the command must fail with that message
  local what=$1 expect=$2
  shift 2
  if "$dyad" "$@" 2> refuse.err; then fail "$what: an output that is an input was accepted"; fi
  grep -qF -- "$expect" refuse.err || fail "$what: $(cat refuse.err)"
}
refuse "ingest --out raw" "--out 'raw.csv' is the same file as --raw 'raw.csv': writing it would destroy the input" \
  ingest --raw raw.csv --spec spec.json --out raw.csv
refuse "ingest --out a link to raw" "--out 'raw_link.csv' is the same file as --raw 'raw.csv'" \
  ingest --raw raw.csv --spec spec.json --out raw_link.csv
refuse "ingest --report-json spec" "--report-json 'spec.json' is the same file as --spec 'spec.json'" \
  ingest --raw raw.csv --spec spec.json --out never.csv --report-json spec.json
refuse "score --out model" "--out 'model_copy.safetensors' is the same file as --model" \
  score --model model_copy.safetensors --data fleet.csv --out model_copy.safetensors
refuse "train --out data" "--out 'fleet_hard.csv' is the same file as --data 'fleet.csv'" \
  train --data fleet.csv --out fleet_hard.csv --epochs 1 -q
refuse "pack --out data" "--out 'fleet.csv' is the same file as --data 'fleet.csv'" pack --data fleet.csv --out fleet.csv
refuse "calibrate --out model" "--out 'model_copy.safetensors' is the same file as --model" \
  calibrate --model model_copy.safetensors --data fleet.csv --out model_copy.safetensors
refuse "monitor --db data" "--db 'fleet.csv' is the same file as --data 'fleet.csv'" \
  monitor --model model.safetensors --data fleet.csv --db fleet.csv
[ "$(cat raw.csv fleet.csv model_copy.safetensors spec.json | md5sum)" = "$sums" ] || fail "a refused run changed an input"
[ ! -e never.csv ] || fail "a refused ingest wrote --out"
rm -f raw_link.csv fleet_hard.csv model_copy.safetensors

# A segment store truncated in place while a command reads it (cp over it, rsync --inplace):
# one message naming the file, exit status 1, no "Bus error" and no output left behind.
"$dyad" simulate --cars 40 --faulty 0 --segments 40 --steps 128 --seed 9 --out big.csv 2> /dev/null
"$dyad" pack --data big.csv --out big.dyadset 2> /dev/null
"$dyad" score --model model.safetensors --data big.dyadset --out big_scores.csv --threads 1 --batch-size 8 2> bus.err &
scorer=$!
for _ in $(seq 1 600); do  # until the store is mapped
  grep -q big.dyadset "/proc/$scorer/maps" 2> /dev/null && break
  sleep 0.01
done
: > big.dyadset  # truncate in place, as cp over it does first
status=0
wait "$scorer" || status=$?
[ "$status" -eq 1 ] || fail "a store truncated while read: exit status $status, expected 1: $(cat bus.err)"
grep -q "'big.dyadset' changed while dyad was reading it" bus.err || fail "truncated store: $(cat bus.err)"
[ ! -e big_scores.csv ] || fail "a run that failed left its output"
ls -a | grep -q '\.tmp' && fail "temporary files left after the SIGBUS: $(ls -a)"
rm -f big.csv big.dyadset big_scores.csv

echo "dyad CLI and examples: all checks passed"
