#!/usr/bin/env bash
# The fleet monitor end to end: dyad monitor feeds a simulated fleet day by day into an SQLite
# database, re-running a day adds nothing, a kill -9 in the middle of an ingest loses nothing
# committed and keeps no half batch, the sqlite3 tool reads the database, and dyad status
# prints the JSON contract.
#   monitor.sh PATH/TO/dyad WORKDIR
set -euo pipefail
dyad=$1
work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v sqlite3 > /dev/null || fail "the sqlite3 tool is missing (scripts/install-deps.sh installs it)"

# A healthy training fleet, and a fleet to watch with faults that start at day 10.
"$dyad" simulate --cars 30 --faulty 0 --segments 12 --steps 64 --seed 21 --out train.csv 2> /dev/null
"$dyad" train --data train.csv --out model.safetensors --epochs 2 --batch-size 32 --seed 1 -q 2> train.err
grep -q "calibrated on 6 healthy cars" train.err || fail "train calibrates: $(cat train.err)"
grep -q "default alarm rate, 0.01, needs at least 99 healthy calibration cars; with 6, monitor refuses it: give it --alarm-rate 0.1429" train.err \
  || fail "train says which rates its calibration reaches: $(cat train.err)"
"$dyad" simulate --cars 10 --faulty 3 --segments 12 --steps 64 --seed 22 --fault-onset-day 10 --out fleet.csv 2> /dev/null

# Split the fleet into days by segment timestamp (days since the fleet's first segment).
python3 - fleet.csv <<'PY'
import csv, sys, collections
rows = list(csv.DictReader(open(sys.argv[1])))
first = {}
for r in rows:
    key = (r["car"], r["segment"])
    first.setdefault(key, float(r["timestamp"]))
t0 = min(first.values())
days = collections.defaultdict(list)
for r in rows:
    days[int((first[(r["car"], r["segment"])] - t0) // (7 * 86400))].append(r)   # weeks
for d, rs in sorted(days.items()):
    with open(f"week{d:02d}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rs)

PY
weeks=$(ls week*.csv | wc -l)
[ "$weeks" -ge 2 ] || fail "the fleet spans at least two weeks"

# A rate the calibration cannot reach (the default 1 % with 6 calibration cars) is refused, with
# exit status 2, the reachable rate and the remedies, before the database is created: never a
# silent "all ok".
status=0
"$dyad" monitor --model model.safetensors --db never.db --data week00.csv > /dev/null 2> unreachable.err || status=$?
[ "$status" -eq 2 ] || fail "an unreachable alarm rate exits with status 2, not $status: $(cat unreachable.err)"
grep -q "the default --alarm-rate 0.01 is below the finest rate this model's calibration can state, 1/7 = 0.142857 (6 healthy calibration cars)" \
  unreachable.err || fail "the refusal names the finest rate: $(cat unreachable.err)"
grep -q "needs at least 99 healthy calibration cars.*dyad calibrate.*--calibration-fraction.*--alarm-rate 0.1429 or above" unreachable.err \
  || fail "the refusal says what a 1 % rate needs and the remedies: $(cat unreachable.err)"
[ ! -e never.db ] || fail "a refused monitor created the database"
status=0
"$dyad" monitor --model model.safetensors --db never.db --data week00.csv --alarm-rate 0.1 2> unreachable.err > /dev/null || status=$?
[ "$status" -eq 2 ] && grep -q "^dyad: error: --alarm-rate 0.1 is below" unreachable.err || fail "--alarm-rate 0.1 refused: $(cat unreachable.err)"

for f in week*.csv; do
  "$dyad" monitor --model model.safetensors --db fleet.db --data "$f" --alarm-rate 0.15 >> changes.jsonl 2>> monitor.err \
    || fail "monitor $f: $(tail -3 monitor.err)"
done
total=$(sqlite3 fleet.db "SELECT count(*) FROM segments")
[ "$total" -eq 120 ] || fail "every segment stored once: $total"
[ "$(sqlite3 fleet.db "SELECT count(DISTINCT car) FROM car_status")" -eq 10 ] || fail "every car has a status"
[ "$(sqlite3 fleet.db "PRAGMA journal_mode")" = "wal" ] || fail "WAL mode"
[ "$(sqlite3 fleet.db "PRAGMA user_version")" = "2" ] || fail "schema version 2"
sqlite3 fleet.db "SELECT json_extract(errors, '\$.max_temp') FROM segments LIMIT 1" | grep -Eq '^[0-9.e+-]+$' \
  || fail "sqlite3 reads the per-signal errors with json_extract"

# Re-running the whole fleet adds nothing and changes no status.
"$dyad" monitor --model model.safetensors --db fleet.db --data fleet.csv --alarm-rate 0.15 > again.jsonl 2> again.err
grep -q "0 new of 120 segments" again.err || fail "a re-run scores nothing: $(cat again.err)"
[ ! -s again.jsonl ] || fail "a re-run prints no status change"

# Every status change is one JSON object with the contract's keys.
python3 - changes.jsonl <<'PY' || fail "status change lines"
import json, sys
for line in open(sys.argv[1]):
    c = json.loads(line)
    assert set(c) == {"car", "old_status", "new_status", "p_value", "score", "top_signal", "time"}, c
    assert c["new_status"] in ("ok", "watch", "alarm") and c["old_status"] in (None, "ok", "watch", "alarm"), c
    assert c["new_status"] != c["old_status"] and 0 < c["p_value"] <= 1, c
PY

# --follow: the long CSV on stdin as it arrives. A pause makes a time-based commit of the
# complete segments; the end of input commits the rest.
(head -n $((3 * 64 + 1)) fleet.csv; sleep 1.5; tail -n +$((3 * 64 + 2)) fleet.csv) \
  | "$dyad" monitor --model model.safetensors --db follow.db --follow --commit-seconds 0.5 --commit-every 100000 \
      --alarm-rate 0.15 > follow.jsonl 2> follow.err || fail "monitor --follow: $(cat follow.err)"
grep -q "120 new of 120 segments scored with model [0-9a-f]* in [2-9] committed batches" follow.err \
  || fail "--follow commits on time and at the end: $(cat follow.err)"
[ "$(sqlite3 follow.db "SELECT count(*) FROM segments")" -eq 120 ] || fail "--follow stores every segment"
head -n $((5 * 64 + 1)) fleet.csv | "$dyad" monitor --model model.safetensors --alarm-rate 0.15 --db follow2.db --follow --commit-every 2 \
  > /dev/null 2> follow2.err
grep -q "5 new of 5 segments .* in 3 committed batches" follow2.err || fail "--commit-every 2: $(cat follow2.err)"
# A long-running monitor does not die of bad input: a row it cannot cut (an unterminated quote:
# too few fields), a segment read_csv refuses (too few columns) and a value no model can score
# (soc=1e9, a sensor glitch) are each set aside with their line and reason, kept in
# --reject-file, and every valid segment is committed. Feeding the same stream again is
# harmless: no poison pill.
python3 - fleet.csv > dirty.csv <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
header, rows = lines[0], lines[1:]
soc = header.split(",").index("soc")
out = [header] + rows[:64]                       # segment 1: clean
out.append('"car0001,1,0,0')                     # line 66: an unterminated quote
out += rows[64:128]                              # segment 2: clean
glitch = rows[128:192]                           # segment 3: soc=1e9 in one row
f = glitch[10].split(","); f[soc] = "1e9"; glitch[10] = ",".join(f)
out += glitch
out += rows[192:256]                             # segment 4: clean
out.append("car0009,0,0,0")                      # segment 5: too few columns
out += rows[256:320]                             # segment 6: clean
print("\n".join(out))
PY
for run in 1 2; do
  "$dyad" monitor --model model.safetensors --alarm-rate 0.15 --db dirty.db --follow --commit-every 2 --reject-file rejects.csv \
    < dirty.csv > /dev/null 2> dirty$run.err || fail "--follow stops on bad input (run $run): $(cat dirty$run.err)"
done
grep -q "rejected stdin:66: field 1: a quote that is not closed" dirty1.err || fail "the bad row is named: $(cat dirty1.err)"
grep -q "rejected the segment from stdin:131: .*soc.*1e+09" dirty1.err || fail "the glitch segment is named: $(cat dirty1.err)"
grep -q "rejected the segment from stdin:259: stdin:259:" dirty1.err || fail "the short row is named: $(cat dirty1.err)"
grep -q "set aside 1 row(s) and 2 segment(s) in rejects.csv" dirty1.err || fail "the rejects are counted: $(cat dirty1.err)"
[ "$(sqlite3 dirty.db "SELECT count(*) FROM segments")" -eq 4 ] || fail "every valid segment is committed"
grep -q "0 new of 4 segments" dirty2.err || fail "the second run adds nothing and does not fail: $(cat dirty2.err)"
[ "$(head -1 rejects.csv)" = "$(head -1 fleet.csv)" ] || fail "--reject-file starts with the header"
[ "$(grep -c . rejects.csv)" -eq $((1 + 2 * (1 + 64 + 1))) ] || fail "--reject-file keeps the rejects of both runs: $(wc -l < rejects.csv)"

# SIGTERM (a service stop) commits the complete segments received, then exits 0; the segment
# still arriving is left for the producer to send again.
mkfifo producer.fifo
"$dyad" monitor --model model.safetensors --alarm-rate 0.15 --db term.db --follow --commit-every 1000 --commit-seconds 3600 \
  < producer.fifo > /dev/null 2> term.err &
monitor_pid=$!
exec 7> producer.fifo
head -n $((3 * 64 + 1 + 10)) fleet.csv >&7   # three whole segments and 10 rows of a fourth
for _ in $(seq 1 1000); do [ -e term.db ] && break; sleep 0.02; done
[ -e term.db ] || fail "the monitor did not start: $(cat term.err)"
kill -TERM "$monitor_pid"
status=0
wait "$monitor_pid" || status=$?
exec 7>&-
[ "$status" -eq 0 ] || fail "SIGTERM: exit status $status: $(cat term.err)"
grep -q "stopped by SIGTERM after committing every complete segment received" term.err || fail "SIGTERM: $(cat term.err)"
[ "$(sqlite3 term.db "SELECT count(*) FROM segments")" -eq 3 ] || fail "SIGTERM lost complete segments: $(cat term.err)"
rm -f producer.fifo

# Raw exports, one ingest per export: a window's segment id is its start in epoch ms, so the
# part of a charging session that an earlier, shorter export already held is stored once.
"$dyad" simulate --raw raw.csv --cars 6 --faulty 1 --days 3 --seed 24 --spec-out spec.json 2> /dev/null
python3 - spec.json <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
spec["length"], spec["stride"] = 64, 32   # the model's 64-step segments
json.dump(spec, open(sys.argv[1], "w"))
PY
head -n $(( $(wc -l < raw.csv) / 2 )) raw.csv > raw_first_half.csv
"$dyad" ingest --raw raw_first_half.csv --spec spec.json --out half.csv 2> /dev/null
"$dyad" ingest --raw raw.csv --spec spec.json --out full.csv 2> /dev/null
python3 - half.csv full.csv <<'PY' || fail "ingest segment ids are the window starts in epoch ms, the same in both exports"
import csv, sys
def windows(p):
    return {(r["car"], r["segment"]): r["timestamp"] for r in csv.DictReader(open(p)) if r["t"] == "0"}
half, full = windows(sys.argv[1]), windows(sys.argv[2])
assert all(int(s) == round(float(ts) * 1000) for (_, s), ts in full.items())
common = set(half) & set(full)
assert len(common) >= len(half) - 6, (len(half), len(common))   # at most one cut window per car differs
PY
"$dyad" monitor --model model.safetensors --alarm-rate 0.15 --db raw.db --data half.csv > /dev/null 2>&1
"$dyad" monitor --model model.safetensors --alarm-rate 0.15 --db raw.db --data full.csv > /dev/null 2> raw_full.err
n_full=$(python3 -c "import csv,sys; print(sum(1 for r in csv.DictReader(open('full.csv')) if r['t'] == '0'))")
n_db=$(sqlite3 raw.db "SELECT count(*) FROM segments")
n_extra=$(python3 - half.csv full.csv <<'PY'
import csv, sys
keys = lambda p: {(r["car"], r["segment"]) for r in csv.DictReader(open(p)) if r["t"] == "0"}
print(len(keys(sys.argv[1]) - keys(sys.argv[2])))
PY
)
[ "$n_db" -eq $((n_full + n_extra)) ] || fail "re-ingested windows stored once: $n_db in the database, $n_full + $n_extra expected"

# --spec: the raw export straight into the database, ingested in memory; the same windows as
# dyad ingest wrote, so nothing new.
"$dyad" monitor --model model.safetensors --alarm-rate 0.15 --db raw.db --data raw.csv --spec spec.json > /dev/null 2> raw_spec.err \
  || fail "monitor --spec: $(cat raw_spec.err)"
grep -q "ingested $n_full windows" raw_spec.err || fail "monitor --spec ingests: $(cat raw_spec.err)"
grep -q "0 new of $n_full segments" raw_spec.err || fail "monitor --spec finds the windows already stored: $(cat raw_spec.err)"
# In batches of --commit-every windows as they are cut (memory holds one batch), with the scores
# and car states of dyad ingest + dyad monitor --data.
"$dyad" monitor --model model.safetensors --alarm-rate 0.15 --db raw_spec.db --data raw.csv --spec spec.json --commit-every 7 \
  > /dev/null 2> /dev/null
[ "$(sqlite3 raw_spec.db "SELECT count(*) FROM segments")" -eq "$n_full" ] || fail "monitor --spec stores every window"
"$dyad" monitor --model model.safetensors --alarm-rate 0.15 --db raw_ingested.db --data full.csv > /dev/null 2> /dev/null
for db in raw_spec raw_ingested; do
  sqlite3 $db.db "SELECT car, segment, printf('%.9g', rec_error) FROM segments ORDER BY car, segment" > $db.rows
  sqlite3 $db.db "SELECT car, status, printf('%.9g', p_value) FROM car_status ORDER BY car" >> $db.rows
done
cmp -s raw_spec.rows raw_ingested.rows || fail "monitor --spec in batches differs from ingest + monitor: $(diff raw_spec.rows raw_ingested.rows | head -5)"
# A spec with the export's current sign the wrong way round stops monitor --spec before it
# commits a window, even one window a batch.
python3 -c 'import json; s = json.load(open("spec.json")); s["charging_current"] = "positive" if s.get("charging_current") == "negative" else "negative"; json.dump(s, open("sign_spec.json", "w"))'
if "$dyad" monitor --model model.safetensors --alarm-rate 0.15 --db sign.db --data raw.csv --spec sign_spec.json --commit-every 1 \
  > /dev/null 2> sign.err; then fail "monitor --spec with the wrong current sign succeeded"; fi
grep -q "sign_spec.json: key 'charging_current'" sign.err || fail "the wrong sign is named: $(cat sign.err)"
[ "$(sqlite3 sign.db "SELECT count(*) FROM segments")" -eq 0 ] || fail "monitor --spec committed windows of the wrong sign"

# dyad status --json: the contract.
"$dyad" status --db fleet.db --json > status.json
python3 - status.json <<'PY' || fail "status --json: $(head -c 400 status.json)"
import json, sys
j = json.load(open(sys.argv[1]))
cars = j["cars"]
assert len(cars) == 10
order = {"alarm": 0, "watch": 1, "ok": 2}
keys = [(order[c["status"]], c["p_value"]) for c in cars]
assert keys == sorted(keys), keys
for c in cars:
    for k in ("car", "status", "p_value", "score", "segments", "signals"):
        assert k in c, (k, c)
    assert len(c["signals"]) == 4 and all(set(s) == {"name", "ratio"} for s in c["signals"]), c
    ratios = [s["ratio"] for s in c["signals"]]
    assert ratios == sorted(ratios, reverse=True), ratios
PY
car=$(python3 -c "import json; print(json.load(open('status.json'))['cars'][0]['car'])")
"$dyad" status --db fleet.db --car "$car" --json | python3 -c "import json,sys; j=json.load(sys.stdin); assert len(j['history']) >= 1" \
  || fail "status --car history"
"$dyad" status --db fleet.db | grep -q "most abnormal signal" || fail "status table"
"$dyad" status --db fleet.db --car "$car" | sed -n 2p | grep -Eq "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} UTC +[0-9]{4}-" \
  || fail "status --car shows the data time as a date: $("$dyad" status --db fleet.db --car "$car" | head -2)"
if "$dyad" status --db fleet.db --car nosuchcar 2> nocar.err; then fail "status of an unknown car succeeded"; fi
grep -q "no car 'nosuchcar'" nocar.err || fail "unknown car error: $(cat nocar.err)"

# The policy lives in the database: status shows it with what the calibration can state; a new
# rate is recorded and re-applied to every stored p-value without rescoring; later runs keep it.
python3 - status.json <<'PY' || fail "status --json shows the policy: $(head -c 300 status.json)"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["alarm_rate"] == 0.15 and j["watch_rate"] == 0.75 and j["policy_basis"] == "asked", j
assert j["calibration_cars"] == 6 and abs(j["finest_rate"] - 1 / 7) < 1e-12, j
assert 1e9 < j["data_from"] <= j["data_to"], j
PY
"$dyad" status --db fleet.db | sed -n 2p | grep -Eq "^alarm rate 0.15, watch rate 0.75 \(asked, since .*\); 6 healthy calibration cars, finest rate 1/7 = 0.142857; data from [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{5} UTC to " \
  || fail "status shows the policy in force: $("$dyad" status --db fleet.db | sed -n 2p)"
cp fleet.db policy.db
"$dyad" monitor --model model.safetensors --db policy.db --data week00.csv --alarm-rate 0.5 --watch-rate 0.8 > policy.jsonl 2> policy.err \
  || fail "monitor with a new rate: $(cat policy.err)"
grep -q "0 new of" policy.err || fail "a new policy rescores nothing: $(cat policy.err)"
[ "$(sqlite3 policy.db "SELECT count(*) FROM policies")" -eq 2 ] || fail "the policy change is recorded"
[ "$(sqlite3 policy.db "SELECT count(*) FROM car_status WHERE status != CASE WHEN p_value <= 0.5 THEN 'alarm' WHEN p_value <= 0.8 THEN 'watch' ELSE 'ok' END")" -eq 0 ] \
  || fail "every car's status is the new policy at its stored p-value"
[ "$(wc -l < policy.jsonl)" -eq "$(sqlite3 fleet.db "SELECT count(*) FROM car_status WHERE status != CASE WHEN p_value <= 0.5 THEN 'alarm' WHEN p_value <= 0.8 THEN 'watch' ELSE 'ok' END")" ] \
  || fail "each status the new policy changed is printed: $(cat policy.jsonl)"
"$dyad" monitor --model model.safetensors --db policy.db --data week01.csv > /dev/null 2> policy2.err || fail "monitor keeps the stored policy: $(cat policy2.err)"
grep -q "the alarm policy stored for this model (asked, .*): alarm rate 0.5, watch rate 0.8" policy2.err || fail "the stored policy is used: $(cat policy2.err)"
[ "$(sqlite3 policy.db "SELECT count(*) FROM policies")" -eq 2 ] || fail "keeping the policy records nothing"

# Input drift: a --data file whose current is sign-flipped is refused before the database is
# created; with --allow-drift it is scored and the drift recorded in input_checks.
python3 - fleet.csv <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
with open("flipped.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
    w.writeheader()
    for r in rows:
        r["current"] = str(-float(r["current"]))
        w.writerow(r)
PY
if "$dyad" monitor --model model.safetensors --alarm-rate 0.15 --db drift.db --data flipped.csv > /dev/null 2> drift.err; then
  fail "monitor of a flipped current succeeded"
fi
grep -q "column 'current': sign flipped" drift.err || fail "monitor names the drifted column: $(cat drift.err)"
[ ! -e drift.db ] || fail "a refused monitor created the database"
"$dyad" monitor --model model.safetensors --alarm-rate 0.15 --db drift.db --data flipped.csv --allow-drift > /dev/null 2> drift.err \
  || fail "monitor --allow-drift: $(cat drift.err)"
[ "$(sqlite3 drift.db "SELECT count(*) FROM input_checks WHERE col = 'current' AND problem = 'sign flipped'")" -eq 1 ] \
  || fail "the drift scored anyway is recorded"

# dyad report --db: the verdicts and a trend chart per flagged car.
"$dyad" report --db fleet.db --out verdicts.html 2> report.err || fail "report --db: $(cat report.err)"
grep -q '<section id="verdicts">' verdicts.html || fail "report --db has the verdicts section"
grep -q "alarm at p &lt;= 0.15, watch at p &lt;= 0.75 (asked, since" verdicts.html && grep -q "6 healthy cars; finest rate 1/7 = 0.142857" verdicts.html \
  && grep -q "data period" verdicts.html || fail "the report's header shows the policy, the calibration and the data period"
[ "$(grep -o '<tr class="\(ok\|watch\|alarm\)"' verdicts.html | wc -l)" -eq 10 ] || fail "report --db lists every car"
flagged=$(sqlite3 fleet.db "SELECT count(*) FROM car_status WHERE status != 'ok'")
[ "$(grep -o 'class="chart trend"' verdicts.html | wc -l)" -eq "$flagged" ] || fail "a trend chart per flagged car"
if "$dyad" report --db fleet.db --scores scores.csv --out x.html 2> /dev/null; then fail "report --db with --scores accepted"; fi

# dyad compare: what a retrained model would change, against the database's verdicts.
"$dyad" train --data train.csv --out model2.safetensors --epochs 2 --batch-size 32 --seed 2 -q 2> /dev/null

# One production model per database: another model is refused, naming the production model,
# until --promote switches (recorded); status then shows the new one and says others exist.
cp fleet.db promote.db
before=$(sqlite3 promote.db "SELECT count(*) FROM segments")
if "$dyad" monitor --model model2.safetensors --db promote.db --data week00.csv --alarm-rate 0.15 > /dev/null 2> promote.err; then
  fail "a second model was accepted on a database with a production model"
fi
model1=$(sqlite3 promote.db "SELECT model_id FROM promotions ORDER BY id DESC LIMIT 1")
grep -q "the production model of this database is $model1.*--promote" promote.err || fail "the refusal names the production model: $(cat promote.err)"
[ "$(sqlite3 promote.db "SELECT count(*) FROM segments")" -eq "$before" ] || fail "a refused model stored segments"
"$dyad" monitor --model model2.safetensors --db promote.db --data fleet.csv --alarm-rate 0.15 --promote > /dev/null 2> promote.err \
  || fail "--promote: $(cat promote.err)"
grep -q "the production model is now .*, was $model1" promote.err || fail "--promote says what it switched: $(cat promote.err)"
"$dyad" status --db promote.db --json > promote.json
python3 - promote.json "$model1" <<'PY' || fail "status shows the production model and the others: $(head -c 300 promote.json)"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["model_id"] != sys.argv[2] and j["other_models"] == [sys.argv[2]] and len(j["cars"]) == 10, j
PY
"$dyad" status --db promote.db | grep -q "also holds the verdicts of 1 other model" || fail "status text says others exist"
"$dyad" status --db promote.db | head -1 | grep -q "(production)" || fail "status names the production model"
"$dyad" compare --db fleet.db --model model2.safetensors --data fleet.csv --alarm-rate 0.15 --json > compare.json 2> compare.err \
  || fail "compare: $(cat compare.err)"
python3 - compare.json <<'PY' || fail "compare --json: $(cat compare.json)"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["cars"] == 10 and j["old_model"] != j["new_model"], j
for c in j["changed"]:
    assert set(c) == {"car", "old_status", "new_status", "old_p_value", "new_p_value", "new_score", "top_signal"}, c
    assert c["old_status"] != c["new_status"], c
PY
"$dyad" compare --db fleet.db --model model2.safetensors --data fleet.csv --alarm-rate 0.15 | grep -q "cars would change status" \
  || fail "compare table"
if "$dyad" compare --db fleet.db --model model2.safetensors --data fleet.csv --against 0123456789abcdef 2> against.err; then
  fail "compare against an unknown model succeeded"
fi
grep -q "no car has a verdict under model '0123456789abcdef'" against.err || fail "compare --against error: $(cat against.err)"
[ "$(sqlite3 fleet.db "SELECT count(*) FROM models")" -eq 1 ] || fail "compare writes nothing to the database"

# The commands that only read the database (status, report, compare) open it read-only: a
# write-protected copy reads as the original, and they create and change nothing. (As root,
# whom file modes do not stop, they run as nobody.)
as_reader() {
  if [ "$(id -u)" -eq 0 ]; then (cd "$scratch" && setpriv --reuid=65534 --regid=65534 --clear-groups "$@"); else "$@"; fi
}
# nobody must reach the program and its inputs whatever the checkout's permissions: a copy of
# each in a world-readable scratch directory, the reads done from there.
scratch=$(mktemp -d /tmp/dyad_ro.XXXXXX)
trap 'chmod -R u+w "$scratch" 2> /dev/null; rm -rf "$scratch"' EXIT
chmod 755 "$scratch"
cp "$dyad" "$scratch/dyad" && cp model2.safetensors fleet.csv "$scratch/" && chmod 644 "$scratch"/*.safetensors "$scratch"/fleet.csv
dyad_abs=$scratch/dyad
ln -s "$scratch/ro_file" ro_file
mkdir "$scratch/ro_file" && cp fleet.db ro_file/ && chmod 444 ro_file/fleet.db && chmod 777 ro_file
sum=$(sha256sum < ro_file/fleet.db)
as_reader "$dyad_abs" status --db ro_file/fleet.db --json > ro_status.json 2> ro.err || fail "status of a read-only file: $(cat ro.err)"
cmp -s ro_status.json status.json || fail "status of a read-only copy differs"
as_reader "$dyad_abs" report --db ro_file/fleet.db --out ro_file/verdicts.html 2> ro.err || fail "report of a read-only file: $(cat ro.err)"
as_reader "$dyad_abs" compare --db ro_file/fleet.db --model model2.safetensors --data fleet.csv --alarm-rate 0.15 --json \
  > ro_compare.json 2> ro.err || fail "compare with a read-only file: $(cat ro.err)"
cmp -s ro_compare.json compare.json || fail "compare with a read-only copy differs"
[ "$(sha256sum < ro_file/fleet.db)" = "$sum" ] || fail "a reading command changed the database"
# A write-protected copy in rollback-journal mode (a backup, say) is read as it is, not switched
# to WAL (bytes 18 and 19 of the header: 1 rollback journal, 2 WAL).
cp fleet.db ro_file/journal.db && sqlite3 ro_file/journal.db "PRAGMA journal_mode=DELETE" > /dev/null
chmod 444 ro_file/journal.db
as_reader "$dyad_abs" status --db ro_file/journal.db --json > ro_status.json 2> ro.err \
  || fail "status of a read-only rollback-journal file: $(cat ro.err)"
cmp -s ro_status.json status.json || fail "status of a read-only rollback-journal copy differs"
[ "$(od -An -tu1 -j18 -N2 ro_file/journal.db | tr -s ' ')" = " 1 1" ] || fail "a reading command switched the file to WAL"
# In a directory it cannot write, SQLite cannot make the WAL index a reader needs: a clear error.
if [ "$(id -u)" -ne 0 ] || command -v setpriv > /dev/null; then
  mkdir "$scratch/ro_dir" && ln -s "$scratch/ro_dir" ro_dir && cp fleet.db ro_dir/ && chmod 555 "$scratch/ro_dir"
  if as_reader "$dyad_abs" status --db ro_dir/fleet.db 2> ro_dir.err; then fail "status read a WAL database without its -shm"; fi
  chmod 755 "$scratch/ro_dir"
  grep -q "ro_dir/fleet.db: cannot read the fleet database .* ro_dir/fleet.db-shm" ro_dir.err \
    || fail "read-only directory error: $(cat ro_dir.err)"
fi

# Nor do they create a database or make one of an empty file; a missing file is an error like
# any other (exit status 1).
: > empty.db
for cmd in "status --db empty.db" "report --db empty.db --out empty.html" \
  "compare --db empty.db --model model2.safetensors --data week00.csv"; do
  rc=0
  "$dyad" $cmd > /dev/null 2> empty.err || rc=$?
  [ "$rc" -eq 1 ] || fail "$cmd: exit status $rc: $(cat empty.err)"
  grep -q "empty.db: is empty, not a dyad fleet database" empty.err || fail "$cmd: $(cat empty.err)"
  [ ! -s empty.db ] && [ ! -e empty.db-wal ] || fail "$cmd changed an empty file"
  rc=0
  "$dyad" ${cmd//empty.db/missing.db} > /dev/null 2> missing.err || rc=$?
  [ "$rc" -eq 1 ] || fail "${cmd//empty.db/missing.db}: exit status $rc: $(cat missing.err)"
  grep -q "missing.db: no such database file" missing.err || fail "${cmd//empty.db/missing.db}: $(cat missing.err)"
  [ -z "$(ls missing.db* 2> /dev/null)" ] || fail "${cmd//empty.db/missing.db} created a file"
done

# --db is a file name, never an SQLite URI or ":memory:".
for name in 'file:uri.db?mode=memory' ':memory:'; do
  "$dyad" monitor --model model.safetensors --alarm-rate 0.15 --db "$name" --data week00.csv > /dev/null 2> uri.err || fail "monitor --db $name: $(cat uri.err)"
  [ -s "$name" ] || fail "monitor --db $name wrote no file of that name: $(ls)"
  [ "$(sqlite3 "./$name" "SELECT count(*) FROM segments")" -gt 0 ] || fail "monitor --db $name stored nothing in it"
  "$dyad" status --db "$name" --json > /dev/null 2> uri.err || fail "status --db $name: $(cat uri.err)"
done

# Two monitors creating the same new database at once: the second waits for the first.
for round in 1 2 3; do
  rm -f race.db race.db-wal race.db-shm
  "$dyad" monitor --model model.safetensors --alarm-rate 0.15 --db race.db --data week00.csv > /dev/null 2> race1.err &
  pid1=$!
  "$dyad" monitor --model model.safetensors --alarm-rate 0.15 --db race.db --data week01.csv > /dev/null 2> race2.err &
  pid2=$!
  wait "$pid1" || fail "the first of two concurrent monitors: $(cat race1.err)"
  wait "$pid2" || fail "the second of two concurrent monitors: $(cat race2.err)"
done

# An uncalibrated model is refused with the reason.
"$dyad" train --data train.csv --out plain.safetensors --epochs 1 --calibration-fraction 0 -q 2> /dev/null
if "$dyad" monitor --model plain.safetensors --db fleet.db --data week00.csv 2> plain.err; then fail "uncalibrated model accepted"; fi
grep -q "not calibrated" plain.err || fail "uncalibrated error: $(cat plain.err)"

# --ensemble: three networks in one checkpoint, and every command that takes a model takes it.
"$dyad" train --data train.csv --out ens.safetensors --epochs 2 --batch-size 32 --seed 1 --ensemble 3 --log-json ens.jsonl \
  -q 2> ens.err || fail "train --ensemble: $(cat ens.err)"
grep -q "trained 3 networks" ens.err || fail "train --ensemble reports its networks: $(cat ens.err)"
grep -q '"network":3' ens.jsonl || fail "--log-json names the network"
"$dyad" score --model ens.safetensors --data fleet.csv --out ens_scores.csv 2> ens_score.err || fail "score: $(cat ens_score.err)"
[ "$(tail -n +2 ens_scores.csv | wc -l)" -eq 120 ] || fail "the ensemble scores every segment"
"$dyad" monitor --model ens.safetensors --db ens.db --data fleet.csv --alarm-rate 0.15 > /dev/null 2> ens_monitor.err \
  || fail "monitor with an ensemble: $(cat ens_monitor.err)"
[ "$(sqlite3 ens.db "SELECT json_extract(config, '\$.ensemble') FROM models")" = "3" ] || fail "the models table records 3 networks"
"$dyad" calibrate --model ens.safetensors --data train.csv --out ens_recalibrated.safetensors 2> /dev/null || fail "calibrate an ensemble"
"$dyad" compare --db fleet.db --model ens.safetensors --data fleet.csv --alarm-rate 0.15 > /dev/null 2>&1 || fail "compare with an ensemble"
"$dyad" report --scores ens_scores.csv --data fleet.csv --model ens.safetensors --out ens.html 2> /dev/null || fail "report with an ensemble"
if "$dyad" train --data train.csv --out x.safetensors --ensemble 2 --checkpoint-every 1 2> ens_refused.err; then
  fail "--ensemble with --checkpoint-every accepted"
fi
grep -q "are for single models" ens_refused.err || fail "--ensemble refusal: $(cat ens_refused.err)"
if "$dyad" train --data train.csv --out x.safetensors --init ens.safetensors 2> ens_init.err; then fail "--init with an ensemble accepted"; fi
grep -q "a single model cannot load" ens_init.err || fail "--init ensemble error: $(cat ens_init.err)"
[ ! -e x.safetensors ] || fail "a refused run wrote its output"

# kill -9 during a large ingest, at later and later moments until one run completes: every
# kill leaves either the committed batch alone or the whole new batch (never a part of it),
# and a re-run stores every segment exactly once.
"$dyad" simulate --cars 100 --faulty 5 --segments 40 --steps 32 --seed 23 --out big.csv 2> /dev/null
head -n $((10 * 32 + 1)) big.csv > big_head.csv   # its first 10 segments
"$dyad" monitor --model model.safetensors --alarm-rate 0.15 --db base.db --data big_head.csv > /dev/null 2>&1   # one committed batch
[ "$(sqlite3 base.db "SELECT count(*) FROM segments")" -eq 10 ] || fail "the first batch stores its 10 segments"
kills=0
# Delays grow by a quarter each time (10 ms to 5 s), so a slow build (ASan) takes as few runs.
for delay in $(python3 -c "print(' '.join(f'{0.01 * 1.25 ** k:.3f}' for k in range(29)))"); do
  cp base.db kill.db
  "$dyad" monitor --model model.safetensors --alarm-rate 0.15 --db kill.db --data big.csv --threads 1 > /dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  if ! kill -9 "$pid" 2> /dev/null; then wait "$pid" || fail "monitor failed"; break; fi
  wait "$pid" 2> /dev/null || true
  n=$(sqlite3 kill.db "SELECT count(*) FROM segments")
  [ "$n" -eq 10 ] || [ "$n" -eq 4000 ] || fail "a kill -9 after ${delay}s kept part of a batch: $n segments"
  [ "$(sqlite3 kill.db "PRAGMA integrity_check")" = "ok" ] || fail "integrity after kill -9"
  [ "$n" -eq 10 ] && kills=$((kills + 1))
  "$dyad" monitor --model model.safetensors --alarm-rate 0.15 --db kill.db --data big.csv > /dev/null 2>&1
  [ "$(sqlite3 kill.db "SELECT count(*) FROM segments")" -eq 4000 ] || fail "the re-run after a kill stores every segment once"
done
[ "$kills" -ge 1 ] || fail "no kill landed before the commit"
echo "kill -9 landed before the commit $kills times; every one left the committed batch whole"
echo "dyad monitor: all checks passed"
