#!/usr/bin/env python3
"""Data-parallel training throughput on this machine: `mpirun -np 2 dyad train --threads 1`
against one process with 1 and with 2 threads, on the same simulated fleet and preset, the
runs interleaved and repeated; prints each configuration's median training seg/s (from the
last step of --log-json) and the ratios. docs/scaling.md quotes it.

  /usr/bin/python3 bench/mpi_scaling.py --dyad build/dyad [--preset fivefold]
      [--epochs 4] [--repeats 3] [--cars 60] [--segments 40] [--json]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile


def train_rate(cmd, log):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines = [json.loads(l) for l in open(log)]
    return [l for l in lines if not l["epoch_end"]][-1]["segments_per_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dyad", required=True)
    ap.add_argument("--mpirun", default="mpirun")
    ap.add_argument("--preset", default="fivefold")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cars", type=int, default=60)
    ap.add_argument("--segments", type=int, default=40)
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    dyad = os.path.abspath(a.dyad)
    with tempfile.TemporaryDirectory(prefix="dyad_scaling_") as work:
        fleet = os.path.join(work, "fleet.csv")
        store = os.path.join(work, "fleet.dyadset")
        subprocess.run([dyad, "simulate", "--cars", str(a.cars), "--faulty", str(max(1, a.cars // 10)), "--segments",
                        str(a.segments), "--steps", str(a.steps), "--seed", "11", "--out", fleet], check=True,
                       stderr=subprocess.DEVNULL)
        subprocess.run([dyad, "pack", "--data", fleet, "--out", store], check=True, stderr=subprocess.DEVNULL)
        log = os.path.join(work, "log.jsonl")
        base = [dyad, "train", "--data", store, "--preset", a.preset, "--epochs", str(a.epochs), "--seed", "3",
                "--out", os.path.join(work, "m.safetensors"), "--log-json", log, "-q"]
        mpi = [a.mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "core", "--mca", "btl", "self,vader",
               "-np", "2"]
        configs = {
            "1 rank x 1 thread": base + ["--threads", "1"],
            "1 rank x 2 threads": base + ["--threads", "2"],
            "2 ranks x 1 thread": mpi + base + ["--threads", "1"],
        }
        rates = {k: [] for k in configs}
        for _ in range(a.repeats):
            for name, cmd in configs.items():
                rates[name].append(train_rate(cmd, log))
    med = {k: statistics.median(v) for k, v in rates.items()}
    one = med["1 rank x 1 thread"]
    result = {"preset": a.preset, "epochs": a.epochs, "repeats": a.repeats, "segments": a.cars * a.segments,
              "steps": a.steps, "median_segments_per_s": med, "runs": rates,
              "two_ranks_vs_one_thread": med["2 ranks x 1 thread"] / one,
              "two_threads_vs_one_thread": med["1 rank x 2 threads"] / one,
              "two_ranks_vs_two_threads": med["2 ranks x 1 thread"] / med["1 rank x 2 threads"]}
    print(f"{a.preset}, {a.cars * a.segments} segments x {a.steps} steps, {a.epochs} epochs, median of {a.repeats}:")
    for k, v in med.items():
        print(f"  {k:20s} {v:9.1f} seg/s  ({v / one:.2f}x)   runs: " + ", ".join(f"{r:.0f}" for r in rates[k]))
    print(f"  2 ranks x 1 thread against 1 rank x 2 threads: {result['two_ranks_vs_two_threads']:.2f}x")
    if a.json:
        print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
