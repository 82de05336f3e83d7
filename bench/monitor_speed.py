#!/usr/bin/python3
"""Throughput of `dyad monitor` against `dyad score` on the same segments.

    /usr/bin/python3 bench/monitor_speed.py [--cars 200] [--segments 50] [--steps 128]
        [--runs 5] [--threads 2] [--preset fivefold] [--json]

Question answered: is the fleet database a bottleneck? Both commands read the same long CSV,
load the same calibrated model and score every segment with the same threads; `monitor` also
checks which segments the database holds, stores every segment with its scores and per-signal
errors, recomputes each car's verdict and commits, into a fresh database per run. Runs
alternate (score, monitor, score, ...) and the medians of the wall times are compared; the
issue's target is monitor within 20 % of score.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DYAD = os.path.join(HERE, "..", "build", "examples", "dyad")


def run(cmd):
    t0 = time.perf_counter()
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{r.stderr[-2000:]}")
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dyad", default=DEFAULT_DYAD)
    ap.add_argument("--cars", type=int, default=200)
    ap.add_argument("--segments", type=int, default=50)
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--preset", default="fivefold")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    dyad = os.path.abspath(a.dyad)
    with tempfile.TemporaryDirectory(prefix="dyad_monitor_speed_") as work:
        data, model = os.path.join(work, "fleet.csv"), os.path.join(work, "model.safetensors")
        run([dyad, "simulate", "--cars", a.cars, "--faulty", a.cars // 10, "--segments", a.segments, "--steps", a.steps,
             "--out", data])
        run([dyad, "train", "--data", data, "--out", model, "--preset", a.preset, "--epochs", 1, "--threads", a.threads, "-q"])
        n = a.cars * a.segments
        times = {"score": [], "monitor": []}
        for i in range(a.runs):
            times["score"].append(run([dyad, "score", "--model", model, "--data", data, "--out",
                                       os.path.join(work, f"scores{i}.csv"), "--threads", a.threads]))
            times["monitor"].append(run([dyad, "monitor", "--model", model, "--db", os.path.join(work, f"fleet{i}.db"),
                                         "--data", data, "--threads", a.threads,
                                         "--alarm-rate", "0.5"]))  # any rate the calibration reaches
        med = {k: statistics.median(v) for k, v in times.items()}
        result = {
            "segments": n, "steps": a.steps, "preset": a.preset, "threads": a.threads, "runs": a.runs,
            "seconds": times,
            "score_segments_per_s": n / med["score"],
            "monitor_segments_per_s": n / med["monitor"],
            "monitor_over_score_time": med["monitor"] / med["score"],
            "db_bytes": os.path.getsize(os.path.join(work, "fleet0.db")),
        }
    if a.json:
        print(json.dumps(result))
    else:
        print(f"{n} segments of {a.steps} steps, preset {a.preset}, {a.threads} threads, median of {a.runs} alternating runs:")
        print(f"  dyad score   {result['score_segments_per_s']:8.0f} segments/s ({med['score']:.2f} s)")
        print(f"  dyad monitor {result['monitor_segments_per_s']:8.0f} segments/s ({med['monitor']:.2f} s)")
        print(f"  monitor takes {100 * (result['monitor_over_score_time'] - 1):+.1f} % of score's time; "
              f"database {result['db_bytes'] / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
