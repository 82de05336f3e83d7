#!/usr/bin/python3
"""Does bf16 scoring rank segments and cars as fp32 does?

    /usr/bin/python3 bench/bf16_accuracy.py [--presets fivefold,brand1] [--seeds 3]
        [--fleets 3] [--threads 2] [--json]

For each preset, trains `--seeds` models on one healthy fleet, then scores `--fleets` held-out
fleets (100 cars, 10 faulty, 40 segments each) with `dyad score --precision fp32` and
`--precision bf16`. Reported per preset, over every (model, fleet) pair:
  - the Spearman correlation of the segments' rec_error between the two precisions (the issue's
    target: at least 0.999), its minimum and mean;
  - the car AUROC (robust, h = 100 per mille) of rec_error and combined_score in each precision,
    and the largest absolute difference (target: within 0.005);
  - the scoring throughput of each precision as `dyad score` reports it.
On a CPU without AVX512-BF16, `--precision bf16` runs fp32 and the script says so and stops.
"""

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DYAD = os.path.join(HERE, "..", "build", "examples", "dyad")


def run(cmd):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{r.stderr[-2000:]}")
    return r


def ranks(values):
    """Average ranks (ties share their mean rank)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    r = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2.0
        i = j + 1
    return r


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    n = len(a)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = sum((x - ma) ** 2 for x in ra)
    vb = sum((y - mb) ** 2 for y in rb)
    return cov / (va * vb) ** 0.5


def rec_errors(path):
    with open(path) as f:
        return [float(row["rec_error"]) for row in csv.DictReader(f)]


def aurocs(dyad, scores):
    j = json.loads(run([dyad, "evaluate", "--scores", scores, "--json"]).stdout)
    return {k: j["scores"][k]["auroc_robust"] for k in ("rec_error", "combined_score")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dyad", default=DEFAULT_DYAD)
    ap.add_argument("--presets", default="fivefold,brand1")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--fleets", type=int, default=3)
    ap.add_argument("--train-cars", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        train = os.path.join(tmp, "train.csv")
        run([a.dyad, "simulate", "--cars", a.train_cars, "--faulty", 0, "--segments", 40, "--seed", 1000, "--out", train])
        fleets = []
        for f in range(a.fleets):
            path = os.path.join(tmp, f"fleet{f}.csv")
            run([a.dyad, "simulate", "--cars", 100, "--faulty", 10, "--segments", 40, "--seed", 2000 + f, "--out", path])
            fleets.append(path)
        for preset in a.presets.split(","):
            rows = []
            for seed in range(1, a.seeds + 1):
                model = os.path.join(tmp, f"{preset}-{seed}.safetensors")
                run([a.dyad, "train", "--preset", preset, "--data", train, "--out", model, "--seed", seed,
                     "--threads", a.threads])
                for f, fleet in enumerate(fleets):
                    out, speed = {}, {}
                    for precision in ("fp32", "bf16"):
                        path = os.path.join(tmp, f"s-{precision}.csv")
                        err = run([a.dyad, "score", "--model", model, "--data", fleet, "--out", path, "--threads",
                                   a.threads, "--precision", precision]).stderr
                        m = re.search(r"\((\d+) seg/s, (\w+)\)", err)
                        if m.group(2) != precision:
                            sys.exit(f"--precision {precision} ran {m.group(2)} on this CPU: {err.strip()}")
                        speed[precision] = int(m.group(1))
                        out[precision] = (rec_errors(path), aurocs(a.dyad, path))
                    rows.append({"seed": seed, "fleet": f,
                                 "spearman": spearman(out["fp32"][0], out["bf16"][0]),
                                 "auroc_fp32": out["fp32"][1], "auroc_bf16": out["bf16"][1],
                                 "seg_per_s": speed})
                    r = rows[-1]
                    print(f"{preset} seed {seed} fleet {f}: spearman {r['spearman']:.6f}, rec_error AUROC "
                          f"{r['auroc_fp32']['rec_error']:.4f} / {r['auroc_bf16']['rec_error']:.4f}, combined "
                          f"{r['auroc_fp32']['combined_score']:.4f} / {r['auroc_bf16']['combined_score']:.4f}",
                          file=sys.stderr)
            diffs = [abs(r["auroc_fp32"][k] - r["auroc_bf16"][k]) for r in rows for k in ("rec_error", "combined_score")]
            results[preset] = {
                "pairs": len(rows),
                "spearman_min": min(r["spearman"] for r in rows),
                "spearman_mean": sum(r["spearman"] for r in rows) / len(rows),
                "auroc_rec_error_fp32": sum(r["auroc_fp32"]["rec_error"] for r in rows) / len(rows),
                "auroc_rec_error_bf16": sum(r["auroc_bf16"]["rec_error"] for r in rows) / len(rows),
                "auroc_combined_fp32": sum(r["auroc_fp32"]["combined_score"] for r in rows) / len(rows),
                "auroc_combined_bf16": sum(r["auroc_bf16"]["combined_score"] for r in rows) / len(rows),
                "auroc_max_abs_diff": max(diffs),
                "rows": rows,
            }
    print(f"{'preset':10} {'pairs':>5} {'Spearman min/mean':>20} {'rec AUROC fp32/bf16':>22} "
          f"{'combined fp32/bf16':>20} {'max |dAUROC|':>13}")
    for preset, r in results.items():
        print(f"{preset:10} {r['pairs']:5d} {r['spearman_min']:10.6f}/{r['spearman_mean']:.6f} "
              f"{r['auroc_rec_error_fp32']:13.4f}/{r['auroc_rec_error_bf16']:.4f} "
              f"{r['auroc_combined_fp32']:12.4f}/{r['auroc_combined_bf16']:.4f} {r['auroc_max_abs_diff']:13.4f}")
    if a.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
