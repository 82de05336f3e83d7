#!/usr/bin/env python3
"""The data-parallel scaling model of docs/scaling.md, from measured numbers: per preset, one
core's training throughput (`dyad bench --preset P --threads 1 --json`, train_segments_per_s)
and the gradient's bytes (`bench_allreduce --json`). A step on N ranks of one core each takes

    T(N) = B / (N r)  +  2 (N-1)/N G / beta  +  2 x 2 (N-1) alpha

(compute on B/N segments; a ring allreduce of the G-byte gradient: reduce-scatter plus
all-gather, each link carrying 2 (N-1)/N G bytes; plus the latency of its 2 (N-1) messages and
of the small loss-value reduction's). Efficiency = B / (N r) / T(N). Prints the efficiency for
8-64 ranks on 10 and 100 Gb/s networks, and the largest N still at 90%.

  /usr/bin/python3 bench/scaling_model.py --bench-dir DIR   (DIR holds bench_<preset>.json and allreduce.json)
"""
import argparse
import json
import os

NETWORKS = {  # line rate in bytes/s, per-message latency in s (TCP over 10 GbE; RDMA at 100 Gb/s)
    "10 Gb/s Ethernet (TCP)": (10e9 / 8, 25e-6),
    "100 Gb/s InfiniBand / RoCE": (100e9 / 8, 3e-6),
}
RANKS = [2, 8, 16, 32, 64]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench-dir", required=True)
    a = ap.parse_args()
    grads = {}
    for line in open(os.path.join(a.bench_dir, "allreduce.json")):
        d = json.loads(line)
        if "bytes" in d:
            grads[d["preset"]] = d
    for net, (beta, alpha) in NETWORKS.items():
        print(f"\n{net}: efficiency on N ranks of one core (compute share of a step)")
        print("| preset | batch | step on 1 core | gradient | " + " | ".join(f"N={n}" for n in RANKS) + " | near-linear (>= 90%) up to |")
        print("|---|---|---|---|" + "---|" * len(RANKS) + "---|")
        for preset in ["fivefold", "brand1", "brand3", "brand2"]:
            bench = json.loads(open(os.path.join(a.bench_dir, f"bench_{preset}.json")).read().strip().splitlines()[-1])
            B, r = bench["batch"], bench["train_segments_per_s"]
            G = grads[preset]["bytes"]
            effs = []
            last90 = 1
            for n in range(2, 1025):
                compute = B / (n * r)
                comm = 2 * (n - 1) / n * G / beta + 4 * (n - 1) * alpha
                e = compute / (compute + comm)
                if n in RANKS:
                    effs.append(e)
                if e >= 0.9 and n <= B:
                    last90 = n
            print(f"| {preset} | {B} | {B / r * 1e3:.0f} ms | {G / 2**20:.2f} MiB | " + " | ".join(f"{e:.0%}" for e in effs) +
                  f" | {last90} |")


if __name__ == "__main__":
    main()
