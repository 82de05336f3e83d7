#!/usr/bin/env python3
"""dyad against the PyTorch reference on the same machine, in one run.

    /usr/bin/python3 bench/compare_speed.py [--dyad build/dyad] [--preset fivefold,brand1]
                                            [--rnn-type gru,rnn,lstm] [--threads 1,2] [--seconds 3]
                                            [--no-bf16] [--json]

For each preset and recurrent cell (--rnn-type, a comma list, default gru) it runs
`dyad bench --preset P --rnn-type C --threads N --json` and bench/torch_bench.py --rnn-type C
(same model, cell, batch, T = 128, float32; torch with OPENBLAS_NUM_THREADS=1 and passive OpenMP
waiting, its best setting here) at every thread count, takes each side's best, and prints
segments/s, latency and the ratios, one block of rows per preset and cell (labelled
"preset cell" unless only the GRU is timed; --json rows carry an "rnn_type" key). On a CPU with AVX512-BF16 it also times dyad's scoring and
latency with `--precision bf16` (rows marked bf16; PyTorch stays fp32). Needs python3-torch and libopenblas0-pthread
(`make deps TORCH=1`).
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


RNN_TYPES = ("gru", "rnn", "lstm")


def dyad_bench(exe, preset, threads, seconds, precision="fp32", rnn_type="gru"):
    out = subprocess.run([exe, "bench", "--preset", preset, "--rnn-type", rnn_type, "--threads", str(threads),
                          "--seconds", str(seconds), "--precision", precision, "--json"],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    if r.get("rnn_type", "gru") != rnn_type:
        sys.exit(f"compare_speed: {exe} bench timed the {r.get('rnn_type')} cell, not the {rnn_type}")
    return r


def torch_bench(preset, threads, rnn_type="gru"):
    out = subprocess.run([sys.executable, os.path.join(HERE, "torch_bench.py"), "--preset", preset, "--rnn-type",
                          rnn_type, "--threads", ",".join(map(str, threads)), "--json"],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dyad", default=os.path.join(HERE, "..", "build", "examples", "dyad"))
    p.add_argument("--preset", default="fivefold,brand1")
    p.add_argument("--rnn-type", default="gru", help="comma-separated cells, from: gru, rnn, lstm (default gru)")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--seconds", type=float, default=3)
    p.add_argument("--no-bf16", action="store_true", help="skip dyad's bf16 scoring runs")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    cells = [c.strip().lower() for c in a.rnn_type.split(",") if c.strip()]
    if not cells or any(c not in RNN_TYPES for c in cells):
        p.error(f"--rnn-type: expected a comma list of {', '.join(RNN_TYPES)} (got '{a.rnn_type}')")
    rows = []
    for preset, cell in [(preset, cell) for preset in a.preset.split(",") for cell in cells]:
        runs = [dyad_bench(a.dyad, preset, t, a.seconds, rnn_type=cell) for t in threads]
        best = lambda key, f=max: f(r[key] for r in runs)
        bf16 = []
        if not a.no_bf16 and "avx512_bf16" in runs[0].get("cpu_features", ""):
            bf16 = [dyad_bench(a.dyad, preset, t, a.seconds, "bf16", rnn_type=cell) for t in threads]
        t = torch_bench(preset, threads, cell)
        tb = t["best"]
        row = {
            "preset": preset,
            "rnn_type": cell,
            "dyad": {"train_segments_per_s": best("train_segments_per_s"),
                     "score_segments_per_s": best("score_segments_per_s"),
                     "latency_ms_batch1": best("latency_ms_batch1", min),
                     "train_gflops": best("train_gflops"), "gemm_peak_gflops": best("gemm_peak_gflops"),
                     "peak_rss_mib": best("peak_rss_mib", min), "runs": runs},
            "torch": {"train_segments_per_s": tb["train_seg_per_s"],
                      "score_segments_per_s": tb["score_seg_per_s"],
                      "latency_ms_batch1": tb["latency_ms"], "peak_rss_mib": tb["peak_rss_mb"],
                      "blas": t["runs"][0].get("blas"), "raw": t},
            "cpu": runs[0].get("cpu"),
        }
        if bf16:
            row["dyad_bf16"] = {"score_segments_per_s": max(r["score_segments_per_s"] for r in bf16),
                                "latency_ms_batch1": min(r["latency_ms_batch1"] for r in bf16), "runs": bf16}
        row["ratio"] = {
            "train": row["dyad"]["train_segments_per_s"] / row["torch"]["train_segments_per_s"],
            "score": row["dyad"]["score_segments_per_s"] / row["torch"]["score_segments_per_s"],
            "latency": row["torch"]["latency_ms_batch1"] / row["dyad"]["latency_ms_batch1"],
        }
        if bf16:
            row["ratio"]["score_bf16"] = row["dyad_bf16"]["score_segments_per_s"] / row["torch"]["score_segments_per_s"]
            row["ratio"]["latency_bf16"] = row["torch"]["latency_ms_batch1"] / row["dyad_bf16"]["latency_ms_batch1"]
        rows.append(row)
    if a.json:
        print(json.dumps(rows))
        return
    print(f"CPU: {rows[0]['cpu'] if rows else '?'}")
    print("| preset | | dyad | PyTorch | ratio |")
    print("|---|---|---|---|---|")
    for r in rows:
        d, t, q = r["dyad"], r["torch"], r["ratio"]
        label = r["preset"] if cells == ["gru"] else f"{r['preset']} {r['rnn_type']}"  # default: as it always was
        print(f"| {label} | training segments/s | {d['train_segments_per_s']:.0f} | {t['train_segments_per_s']:.0f} | {q['train']:.1f}x |")
        print(f"| | scoring segments/s (batch 256) | {d['score_segments_per_s']:.0f} | {t['score_segments_per_s']:.0f} | {q['score']:.1f}x |")
        print(f"| | latency, batch 1 (ms) | {d['latency_ms_batch1']:.3f} | {t['latency_ms_batch1']:.2f} | {q['latency']:.1f}x lower |")
        if "dyad_bf16" in r:
            b = r["dyad_bf16"]
            print(f"| | scoring segments/s, dyad bf16 | {b['score_segments_per_s']:.0f} | {t['score_segments_per_s']:.0f} | {q['score_bf16']:.1f}x |")
            print(f"| | latency, batch 1, dyad bf16 (ms) | {b['latency_ms_batch1']:.3f} | {t['latency_ms_batch1']:.2f} | {q['latency_bf16']:.1f}x lower |")
        print(f"| | training GFLOP/s (GEMM peak) | {d['train_gflops']:.0f} ({d['gemm_peak_gflops']:.0f}) | | |")
        print(f"| | peak RSS (MiB) | {d['peak_rss_mib']:.0f} | {t['peak_rss_mib']:.0f} | |")


if __name__ == "__main__":
    main()
