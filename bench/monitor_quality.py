#!/usr/bin/python3
"""How well `dyad monitor`'s calibrated verdicts work on held-out simulated fleets.

    /usr/bin/python3 bench/monitor_quality.py [--seeds 1,2,3,4,5] [--fleets 301,302,303]
        [--train-cars 200] [--calibration-cars 200] [--cars 100] [--faulty 10]
        [--segments 40] [--epochs 10] [--onset-day 15] [--alarm-rate 0.01] [--threads 2]
        [--ensemble K] [--json] [--keep DIR]

Questions answered:
 - false alarms: of the healthy cars of a fleet the models never saw, what fraction is in
   `alarm` at the end, and what fraction was ever in alarm while the fleet was fed week by
   week (the daily operator's view; repeated looks raise it above the per-look rate)?
 - detection: what fraction of the faulty cars ends in alarm (and in watch or alarm), and how
   many days after the fault's onset the first alarm came;
 - explanation: how often the most abnormal signal of an alarmed or watched faulty car is the
   one its fault kind should move (cooling: max_temp; internal_short: min_single_volt;
   high_resistance and weak_cell: max_single_volt; sensor: the glitching channel);
 - stability: across training seeds, the spread of the car AUROC of the final scores (pooled
   over the fleets, and per fleet), and how much the sets of alarmed cars agree (mean pairwise
   Jaccard index). With --ensemble K every model is an ensemble of K networks (`dyad train
   --ensemble K`; ensembles of different seeds share no network), to see how much that narrows
   the spread and what it costs in time.

Protocol (every fleet from `dyad simulate`, fleets and seeds disjoint):
 1. A healthy training fleet (seed 100, --train-cars cars, no fault) and a healthy calibration
    fleet (seed 200, --calibration-cars cars).
 2. Per training seed s: `dyad train --seed s` on the training fleet (it holds 20 % of the cars
    out and calibrates on them), then `dyad calibrate` on the calibration fleet, so the
    p-values rest on --calibration-cars healthy cars (finest rate 1/(n+1)).
 3. Per test fleet f: --cars cars, --faulty of them faulty, every fault starting on day
    --onset-day of its car's history; fed to `dyad monitor --alarm-rate A` one calendar week at
    a time (by segment timestamp) into a fresh database per (s, f).
The statistics are pooled over the fleets per seed, then averaged over seeds (mean and
standard deviation across seeds).
"""

import argparse
import collections
import csv
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DYAD = os.path.join(HERE, "..", "build", "examples", "dyad")
EXPECTED = {"cooling": "max_temp", "internal_short": "min_single_volt", "high_resistance": "max_single_volt",
            "weak_cell": "max_single_volt"}
WEEK = 7 * 86400.0


def run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(map(str, cmd))}\n{r.stderr[-2000:]}")
    return r


def auroc(scores, labels):
    pos = [s for s, l in zip(scores, labels) if l]
    neg = [s for s, l in zip(scores, labels) if not l]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def split_weeks(fleet_csv, out_dir):
    """Writes the fleet's segments into one long CSV per calendar week; returns the paths."""
    with open(fleet_csv, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        ci, si, ti = header.index("car"), header.index("segment"), header.index("timestamp")
        first, rows = {}, collections.defaultdict(list)
        for r in reader:
            key = (r[ci], r[si])
            t = first.setdefault(key, float(r[ti]))
            rows[int(t // WEEK)].append(r)
    paths = []
    for week in sorted(rows):
        p = os.path.join(out_dir, f"week{week}.csv")
        with open(p, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows[week])
        paths.append(p)
    return paths


def read_faults(path):
    with open(path, newline="") as f:
        return {r["car"]: r for r in csv.DictReader(f)}


def expected_signal(fault):
    return fault["channel"] if fault["fault"] == "sensor" else EXPECTED.get(fault["fault"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dyad", default=DEFAULT_DYAD)
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--fleets", default="301,302,303")
    ap.add_argument("--train-cars", type=int, default=200)
    ap.add_argument("--calibration-cars", type=int, default=200)
    ap.add_argument("--cars", type=int, default=100)
    ap.add_argument("--faulty", type=int, default=10)
    ap.add_argument("--segments", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--onset-day", type=float, default=15)
    ap.add_argument("--alarm-rate", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ensemble", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", help="work in this directory and keep it")
    a = ap.parse_args()
    dyad = os.path.abspath(a.dyad)
    seeds = [int(s) for s in a.seeds.split(",")]
    fleets = [int(s) for s in a.fleets.split(",")]
    work = a.keep or tempfile.mkdtemp(prefix="dyad_monitor_quality_")
    os.makedirs(work, exist_ok=True)
    log = lambda *m: print(*m, file=sys.stderr, flush=True)
    started = time.time()

    train_csv, calib_csv = os.path.join(work, "train.csv"), os.path.join(work, "calibration.csv")
    run([dyad, "simulate", "--cars", a.train_cars, "--faulty", 0, "--segments", a.segments, "--seed", 100, "--out", train_csv])
    run([dyad, "simulate", "--cars", a.calibration_cars, "--faulty", 0, "--segments", a.segments, "--seed", 200, "--out", calib_csv])
    fleet_weeks, fleet_faults = {}, {}
    for f in fleets:
        d = os.path.join(work, f"fleet{f}")
        os.makedirs(d, exist_ok=True)
        fleet_csv, faults = os.path.join(d, "fleet.csv"), os.path.join(d, "faults.csv")
        run([dyad, "simulate", "--cars", a.cars, "--faulty", a.faulty, "--segments", a.segments, "--seed", f,
             "--fault-onset-day", a.onset_day, "--out", fleet_csv, "--faults-out", faults])
        fleet_weeks[f] = split_weeks(fleet_csv, d)
        fleet_faults[f] = read_faults(faults)

    per_seed = []
    alarmed_sets = collections.defaultdict(dict)  # fleet -> seed -> set of cars in alarm at the end
    fleet_aurocs = collections.defaultdict(list)  # fleet -> car AUROC of each seed
    seconds = {"train": [], "monitor": []}
    for s in seeds:
        model, calibrated = os.path.join(work, f"model{s}.safetensors"), os.path.join(work, f"calibrated{s}.safetensors")
        t0 = time.time()
        run([dyad, "train", "--data", train_csv, "--out", model, "--epochs", a.epochs, "--seed", s, "--threads", a.threads,
             "--ensemble", a.ensemble, "-q"])
        seconds["train"].append(time.time() - t0)
        run([dyad, "calibrate", "--model", model, "--data", calib_csv, "--out", calibrated, "--threads", a.threads])
        healthy_end = healthy_ever = healthy_n = 0
        faulty_alarm = faulty_flagged = faulty_n = 0
        delays, explained, explained_n = [], 0, 0
        aurocs = []
        for f in fleets:
            db = os.path.join(work, f"fleet{f}", f"seed{s}.db")
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(db + suffix):
                    os.remove(db + suffix)
            t0 = time.time()
            for week in fleet_weeks[f]:
                run([dyad, "monitor", "--model", calibrated, "--db", db, "--data", week, "--alarm-rate", a.alarm_rate,
                     "--threads", a.threads])
            seconds["monitor"].append(time.time() - t0)
            con = sqlite3.connect(db)
            final = {car: (status, score, json.loads(signals)) for car, status, score, signals in
                     con.execute("SELECT car, status, score, signals FROM car_status")}
            ever = {car for (car,) in con.execute("SELECT DISTINCT car FROM status_history WHERE status = 'alarm'")}
            first_alarm = dict(con.execute("SELECT car, min(time) FROM status_history WHERE status = 'alarm' GROUP BY car"))
            first_time = dict(con.execute("SELECT car, min(time) FROM segments GROUP BY car"))
            con.close()
            faults = fleet_faults[f]
            cars = sorted(final)
            aurocs.append(auroc([final[c][1] for c in cars], [faults[c]["label"] == "1" for c in cars]))
            fleet_aurocs[f].append(aurocs[-1])
            alarmed_sets[f][s] = {c for c in cars if final[c][0] == "alarm"}
            for c in cars:
                status, _, signals = final[c]
                if faults[c]["label"] == "0":
                    healthy_n += 1
                    healthy_end += status == "alarm"
                    healthy_ever += c in ever
                    continue
                faulty_n += 1
                faulty_alarm += status == "alarm"
                faulty_flagged += status in ("alarm", "watch")
                if c in first_alarm:
                    delays.append((first_alarm[c] - first_time[c]) / 86400.0 - float(faults[c]["onset_days"]))
                if status in ("alarm", "watch") and expected_signal(faults[c]):
                    explained_n += 1
                    explained += signals[0]["name"] == expected_signal(faults[c])
        per_seed.append({
            "seed": s,
            "healthy_cars": healthy_n,
            "false_alarm_end": healthy_end / healthy_n,
            "false_alarm_ever": healthy_ever / healthy_n,
            "faulty_cars": faulty_n,
            "detected_alarm": faulty_alarm / faulty_n,
            "detected_watch_or_alarm": faulty_flagged / faulty_n,
            "median_days_onset_to_alarm": statistics.median(delays) if delays else None,
            "explained": explained / explained_n if explained_n else None,
            "explained_cars": explained_n,
            "car_auroc_mean_over_fleets": statistics.mean(aurocs),
        })
        log(json.dumps(per_seed[-1]))

    def spread(key):
        v = [r[key] for r in per_seed if r[key] is not None]
        return {"mean": statistics.mean(v), "sd": statistics.stdev(v) if len(v) > 1 else 0.0, "min": min(v), "max": max(v)}

    jaccards = []
    for f, by_seed in alarmed_sets.items():
        ss = sorted(by_seed)
        for i in range(len(ss)):
            for j in range(i + 1, len(ss)):
                A, B = by_seed[ss[i]], by_seed[ss[j]]
                if A or B:
                    jaccards.append(len(A & B) / len(A | B))
    result = {
        "settings": {k: getattr(a, k) for k in ("seeds", "fleets", "train_cars", "calibration_cars", "cars", "faulty",
                                                   "segments", "epochs", "onset_day", "alarm_rate", "threads",
                                                   "ensemble")},
        "per_seed": per_seed,
        "summary": {k: spread(k) for k in ("false_alarm_end", "false_alarm_ever", "detected_alarm", "detected_watch_or_alarm",
                                           "median_days_onset_to_alarm", "explained", "car_auroc_mean_over_fleets")},
        "alarmed_set_jaccard_between_seeds": statistics.mean(jaccards) if jaccards else None,
        "car_auroc_per_fleet": {
            "sd_between_seeds_mean_over_fleets": statistics.mean(statistics.stdev(v) if len(v) > 1 else 0.0
                                                                 for v in fleet_aurocs.values()),
            "range_between_seeds_mean_over_fleets": statistics.mean(max(v) - min(v) for v in fleet_aurocs.values()),
            "by_fleet": {str(f): v for f, v in fleet_aurocs.items()},
        },
        "seconds": {"train_median": statistics.median(seconds["train"]),
                    "monitor_per_fleet_median": statistics.median(seconds["monitor"]),
                    "total": time.time() - started},
    }
    if a.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"| statistic (alarm rate {a.alarm_rate}, {len(seeds)} seeds x {len(fleets)} fleets) | mean | sd | min | max |")
        print("|---|---|---|---|---|")
        for k, v in result["summary"].items():
            print(f"| {k} | {v['mean']:.3f} | {v['sd']:.3f} | {v['min']:.3f} | {v['max']:.3f} |")
        print(f"\nalarmed cars, mean Jaccard index between seeds: {result['alarmed_set_jaccard_between_seeds']}")
        per_fleet = result["car_auroc_per_fleet"]
        print(f"car AUROC per fleet, between seeds: sd {per_fleet['sd_between_seeds_mean_over_fleets']:.3f}, "
              f"range {per_fleet['range_between_seeds_mean_over_fleets']:.3f} (means over the fleets)")
        print(f"times: {json.dumps(result['seconds'])}")
    if not a.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
