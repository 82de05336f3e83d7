#!/usr/bin/python3
"""dyad's GRU stacks against oneDNN's fp32 GRU, each side timed in its own process.

    /usr/bin/python3 bench/compare_onednn.py [--threads 1,2] [--preset all] [--reps 7] [--json]

Runs build/bench/onednn_gru (built where oneDNN is installed: scripts/install-deps.sh --torch)
once per side and thread count. Both runs check that the two sides' outputs agree before any
timing; each times one side, so oneDNN's OpenMP workers and dyad's thread pool never share the
two cores. oneDNN runs with its default OpenMP wait policy (its best), dyad's process with
OMP_WAIT_POLICY=PASSIVE (its only OpenMP use is the parity run). Prints, per preset, stack
(encoder, decoder), mode (training: forward + backward at the preset's batch; inference:
forward at batch 256) and thread count, the medians and dyad's speed-up (oneDNN ms / dyad ms).
"""

import argparse
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BIN = os.path.join(HERE, "..", "build", "bench", "onednn_gru")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_side(binary, side, threads, preset, reps):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    if side == "dyad":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    r = subprocess.run([binary, "--side", side, "--threads", str(threads), "--preset", preset, "--reps", str(reps), "--json"],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"onednn_gru --side {side} --threads {threads} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=DEFAULT_BIN)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--preset", default="all")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        sys.exit(f"{a.bin} is missing: install oneDNN (scripts/install-deps.sh --torch) and build the onednn_gru target")
    rows = []
    for threads in [int(t) for t in a.threads.split(",")]:
        ours = run_side(a.bin, "dyad", threads, a.preset, a.reps)
        theirs = run_side(a.bin, "onednn", threads, a.preset, a.reps)
        for d, o in zip(ours["results"], theirs["results"]):
            assert (d["preset"], d["stack"], d["mode"]) == (o["preset"], o["stack"], o["mode"])
            rows.append({**{k: d[k] for k in ("preset", "stack", "mode", "input", "hidden", "layers", "batch", "flops")},
                         "threads": threads, "dyad_ms": d["dyad_ms"], "onednn_ms": o["onednn_ms"],
                         "speedup": o["onednn_ms"] / d["dyad_ms"],
                         "dyad_gflops": d["flops"] / d["dyad_ms"] * 1e-6, "onednn_gflops": o["flops"] / o["onednn_ms"] * 1e-6,
                         "max_rel_diff": max(d["max_rel_diff"], o["max_rel_diff"])})
        onednn = ours["onednn"]
    if a.json:
        print(json.dumps({"cpu": cpu_name(), "onednn": onednn, "results": rows}, indent=1))
        return
    print(f"{cpu_name()}; oneDNN {onednn} lbr_gru fp32; T = 128; median of {a.reps} runs; each side in its own process")
    print(f"{'preset':9} {'stack':8} {'mode':10} {'thr':>3} {'H':>5} {'L':>2} {'B':>4} {'dyad ms':>10} {'oneDNN ms':>10} "
          f"{'dyad x':>7} {'dyad GF/s':>9} {'oDNN GF/s':>9}")
    for r in rows:
        print(f"{r['preset']:9} {r['stack']:8} {r['mode']:10} {r['threads']:>3} {r['hidden']:>5} {r['layers']:>2} {r['batch']:>4} "
              f"{r['dyad_ms']:>10.2f} {r['onednn_ms']:>10.2f} {r['speedup']:>7.2f} {r['dyad_gflops']:>9.1f} {r['onednn_gflops']:>9.1f}")


if __name__ == "__main__":
    main()
