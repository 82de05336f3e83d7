#!/usr/bin/python3
"""Car-level AUROC of dyad versus the PyTorch reference model on simulated fleets.

    /usr/bin/python3 bench/compare_auroc.py [--seeds 1,2,3] [--cars 100] [--faulty 10]
        [--segments 40] [--epochs 10] [--threads 1] [--top 100] [--train-seeds 1]
        [--json] [--keep DIR] [--from-json FILE]

Question answered: on fleets from `dyad simulate` (several seeds, a car-level train/test
split, the `fivefold` preset), is dyad's car-level AUROC with the reconstruction score at least
that of the PyTorch reference (tests/torch_ref/dyad_torch.py: same architecture, data, split,
epochs), and is dyad's combined score higher than its reconstruction score alone?

Per seed X:
 1. `dyad simulate --cars N --faulty M --segments S --seed X` into a temporary directory.
 2. Car-level split, a pure function of X: the normal cars (sorted by id) are shuffled with
    numpy's default_rng(X) and the first round(0.7 * n_normal) of them train; test = the other
    normal cars + every faulty car.  train.csv / test.csv hold those cars' rows.
 3. dyad: `train --preset fivefold --epochs E --seed X --threads T`, `score`, and
    `evaluate --top H --json` -> robust car-level AUROC of rec_error, latent_score and
    combined_score.  (The AUROC of rec_error is also recomputed here from scores.csv with the
    reference helpers as a cross-check.)
 4. PyTorch: DyAD.from_preset("fivefold") in float32 after torch.manual_seed(X),
    TrainConfig.from_preset("fivefold", epochs=E, seed=X); normaliser fitted on all training
    segments (dyad-method section 2), mileage min-max over the training segments; the test
    segments are scored (rec_error), car score = mean of the top H per mille segment scores,
    AUROC.  For information the same latent / combined scores as dyad's
    (Mahalanobis distance of mu to the training mu's, covariance ridge 1e-3 * trace / Z; mean
    of the two z-scores fitted on the training segments) are computed for the torch model too.
 5. A markdown table (seed | dyad rec_error | dyad latent | dyad combined | torch rec_error)
    with a mean row; --json prints one JSON object instead (with per-epoch losses and times);
    --from-json FILE prints the tables of a saved JSON result.

One training run per side and fleet is a noisy estimate: the two sides draw their initial
weights, mini-batch order and latent noise from different generators, and on these small
fleets the AUROC of one model moves by about +-0.03 with the training seed alone.
--train-seeds K trains K models per fleet and side (training seeds X, X+1000, ...) and reports
the mean and standard deviation of their AUROCs.

Threads: both sides use --threads (default 1): dyad through --threads, torch through
torch.set_num_threads and OPENBLAS_NUM_THREADS / OMP_NUM_THREADS set before torch is imported.
Wall times are informational (the machine may be shared).
"""

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
REF_DIR = os.path.join(ROOT, "tests", "torch_ref")
DEFAULT_DYAD = os.path.join(ROOT, "build", "examples", "dyad")
PRESET = "fivefold"
TRAIN_FRACTION = 0.7


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="1,2,3",
                    help="comma-separated seeds (fleet, split and training), default 1,2,3")
    ap.add_argument("--cars", type=int, default=100)
    ap.add_argument("--faulty", type=int, default=10)
    ap.add_argument("--segments", type=int, default=40, help="segments per car")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="threads of each side (default 1)")
    ap.add_argument("--top", type=int, default=100, help="h, per mille, of the robust car score")
    ap.add_argument("--train-seeds", type=int, default=1, metavar="K",
                    help="models trained per fleet and side, with training seeds X, X+1000, ..., "
                         "X+1000*(K-1); the table shows their mean AUROC (default 1)")
    ap.add_argument("--dyad", default=DEFAULT_DYAD, help="path of the dyad CLI")
    ap.add_argument("--keep", metavar="DIR", help="keep the fleets, models and scores in DIR")
    ap.add_argument("--skip-torch", action="store_true", help="run dyad only")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--from-json", metavar="FILE",
                    help="print the tables of a saved --json result instead of running")
    ap.add_argument("-v", "--verbose", action="store_true", help="per-epoch losses of both sides")
    a = ap.parse_args(argv)
    a.seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    if not a.seeds:
        ap.error("--seeds is empty")
    return a


ARGS = parse_args()
# Must happen before torch is imported (BLAS / OpenMP read them at load time).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, REF_DIR)
import dyad_torch as dt  # noqa: E402


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout


# --------------------------------------------------------------------------------------------
# Fleet and split
# --------------------------------------------------------------------------------------------

def read_car_labels(path):
    """car -> label of a long CSV (first row of each car)."""
    labels = {}
    with open(path) as f:
        header = f.readline().rstrip("\n").split(",")
        ci, li = header.index("car"), header.index("label")
        for line in f:
            parts = line.split(",", max(ci, li) + 1)
            car = parts[ci]
            if car not in labels:
                labels[car] = int(float(parts[li]))
    return labels


def split_cars(labels, seed):
    """(train cars, test cars): 70% of the normal cars (seeded shuffle) train; the rest of the
    normal cars and every faulty car test."""
    normal = sorted(c for c, y in labels.items() if y == 0)
    faulty = sorted(c for c, y in labels.items() if y != 0)
    rng = np.random.default_rng(seed)
    perm = [normal[i] for i in rng.permutation(len(normal))]
    n_train = int(math.floor(TRAIN_FRACTION * len(normal) + 0.5))
    train = sorted(perm[:n_train])
    test = sorted(perm[n_train:] + faulty)
    return train, test


def count_segments(path):
    """Number of (car, segment) runs in a long CSV."""
    n, last = 0, None
    with open(path) as f:
        header = f.readline().rstrip("\n").split(",")
        ci, si = header.index("car"), header.index("segment")
        for line in f:
            p = line.split(",", max(ci, si) + 1)
            key = (p[ci], p[si])
            if key != last:
                n, last = n + 1, key
    return n


def write_subsets(fleet, train_cars, test_cars, train_path, test_path):
    train_set, test_set = set(train_cars), set(test_cars)
    with open(fleet) as f, open(train_path, "w") as ftr, open(test_path, "w") as fte:
        header = f.readline()
        ci = header.rstrip("\n").split(",").index("car")
        ftr.write(header)
        fte.write(header)
        for line in f:
            car = line.split(",", ci + 1)[ci]
            if car in train_set:
                ftr.write(line)
            elif car in test_set:
                fte.write(line)


# --------------------------------------------------------------------------------------------
# Latent / combined score (same definition as dyad::detect::LatentScorer / ScoreCombiner)
# --------------------------------------------------------------------------------------------

def latent_fit(mu, ridge=1e-3):
    mu = np.asarray(mu, dtype=np.float64)
    mean = mu.mean(axis=0)
    c = mu - mean
    s = c.T @ c / (mu.shape[0] - 1)
    s = 0.5 * (s + s.T)
    s[np.diag_indices_from(s)] += ridge * np.trace(s) / s.shape[0]
    return mean, np.linalg.cholesky(s)


def latent_score(fit, mu):
    mean, L = fit
    d = np.linalg.solve(L, (np.asarray(mu, dtype=np.float64) - mean).T)
    return np.linalg.norm(d, axis=0)


def zfit(v):
    v = np.asarray(v, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1))


def car_auroc(seg_scores, cars, car_label, top):
    cs = dt.car_scores(seg_scores, cars, top)
    keys = sorted(cs)
    return dt.auroc([cs[k] for k in keys], [car_label[k] for k in keys])


# --------------------------------------------------------------------------------------------
# The two sides
# --------------------------------------------------------------------------------------------

def run_dyad(a, seed, d, car_label):
    model = os.path.join(d, f"dyad_model_s{seed}.safetensors")
    scores = os.path.join(d, f"dyad_scores_s{seed}.csv")
    loss_log = os.path.join(d, f"dyad_train_log_s{seed}.jsonl")
    t0 = time.perf_counter()
    run([a.dyad, "train", "--data", os.path.join(d, "train.csv"), "--preset", PRESET,
         "--epochs", str(a.epochs), "--seed", str(seed), "--threads", str(a.threads),
         "--out", model, "--log-json", loss_log, "-q"])
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    run([a.dyad, "score", "--model", model, "--data", os.path.join(d, "test.csv"),
         "--out", scores, "--threads", str(a.threads)])
    t_score = time.perf_counter() - t0
    ev = json.loads(run([a.dyad, "evaluate", "--scores", scores, "--top", str(a.top), "--json"]))
    res = {k: ev["scores"][k]["auroc_robust"] for k in ("rec_error", "latent_score", "pattern_score", "combined_score")
           if k in ev["scores"]}
    # Cross-check the rec_error AUROC with the reference helpers.
    cars, rec = [], []
    with open(scores) as f:
        header = f.readline().rstrip("\n").split(",")
        ci, ri = header.index("car"), header.index("rec_error")
        for line in f:
            p = line.rstrip("\n").split(",")
            cars.append(p[ci])
            rec.append(float(p[ri]))
    res["rec_error_check"] = car_auroc(rec, cars, car_label, a.top)
    res["segment_rec_error_mean"] = float(np.mean(rec))
    # Per-epoch means of the batch losses; dyad logs kl as the batch sum, divide by the batch
    # size (as the torch history does) so that the two are comparable.
    n_train = count_segments(os.path.join(d, "train.csv"))
    B = dt.PRESETS[PRESET]["batch_size"]
    epochs, acc = [], {}
    with open(loss_log) as f:
        for line in f:
            r = json.loads(line)
            if r.get("epoch_end"):
                nb = acc.pop("n")
                e = {k: acc[k] / nb for k in ("loss", "nll", "kl", "label")}
                e.update(epoch=r["epoch"], lr=r["lr"])
                epochs.append(e)
                acc = {}
                continue
            bsize = min(B, n_train - (r["batch"] - 1) * B)
            for k in ("loss", "nll", "label"):
                acc[k] = acc.get(k, 0.0) + r[k]
            acc["kl"] = acc.get("kl", 0.0) + r["kl"] / bsize
            acc["n"] = acc.get("n", 0) + 1
    res.update(train_seed=seed, train_seconds=t_train, score_seconds=t_score, epochs=epochs)
    return res


def run_torch(a, seed, d, car_label):
    cols, _ = dt.TASKS[dt.PRESETS[PRESET]["task"]]
    tr = dt.read_long_csv(os.path.join(d, "train.csv"), cols)
    te = dt.read_long_csv(os.path.join(d, "test.csv"), cols)
    t0 = time.perf_counter()
    mean, scale = dt.fit_normaliser(tr["x"])
    xtr = dt.apply_normaliser(tr["x"], mean, scale).float()
    xte = dt.apply_normaliser(te["x"], mean, scale).float()
    mil, _, _ = dt.normalise_mileage(tr["mileage"])
    torch.manual_seed(seed)
    model = dt.DyAD.from_preset(PRESET).float()
    cfg = dt.TrainConfig.from_preset(PRESET, epochs=a.epochs, seed=seed)
    hist = dt.train(model, (xtr, mil.float()), cfg)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    rec, mu = dt.score(model, xte, return_mu=True)
    t_score = time.perf_counter() - t0
    rec_tr, mu_tr = dt.score(model, xtr, return_mu=True)
    lfit = latent_fit(mu_tr.double().numpy())
    lat_tr, lat_te = latent_score(lfit, mu_tr.double().numpy()), latent_score(lfit, mu.double().numpy())
    (m1, s1), (m2, s2) = zfit(rec_tr.double().numpy()), zfit(lat_tr)
    comb = 0.5 * ((rec.double().numpy() - m1) / s1 + (lat_te - m2) / s2)
    rec_l = rec.double().tolist()
    res = dict(train_seed=seed, rec_error=car_auroc(rec_l, te["cars"], car_label, a.top),
               latent_score=car_auroc(lat_te.tolist(), te["cars"], car_label, a.top),
               combined_score=car_auroc(comb.tolist(), te["cars"], car_label, a.top),
               segment_rec_error_mean=float(np.mean(rec_l)),
               train_seconds=t_train, score_seconds=t_score,
               epochs=[{k: h[k] for k in ("epoch", "loss", "nll", "kl", "label", "lr")} for h in hist])
    return res


def one_seed(a, seed, d):
    fleet = os.path.join(d, "fleet.csv")
    run([a.dyad, "simulate", "--cars", str(a.cars), "--faulty", str(a.faulty),
         "--segments", str(a.segments), "--seed", str(seed), "--out", fleet])
    car_label = read_car_labels(fleet)
    train_cars, test_cars = split_cars(car_label, seed)
    write_subsets(fleet, train_cars, test_cars, os.path.join(d, "train.csv"),
                  os.path.join(d, "test.csv"))
    n_test_faulty = sum(car_label[c] != 0 for c in test_cars)
    out = dict(seed=seed, train_cars=len(train_cars), test_cars=len(test_cars),
               test_faulty=n_test_faulty)
    log(f"seed {seed}: {len(train_cars)} train cars, {len(test_cars)} test cars "
        f"({n_test_faulty} faulty); dyad ...")
    sides = [("dyad", run_dyad)] + ([] if a.skip_torch else [("torch", run_torch)])
    for side, fn in sides:
        runs = []
        for k in range(a.train_seeds):
            ts = seed + 1000 * k
            r = fn(a, ts, d, car_label)
            log(f"seed {seed}: {side} (training seed {ts}) rec_error AUROC {r['rec_error']:.4f} "
                f"({r['train_seconds']:.1f} s train)")
            runs.append(r)
        out[side] = merge_runs(runs)
    return out


AUROC_KEYS = ("rec_error", "latent_score", "combined_score")


def merge_runs(runs):
    """One side's result on one fleet: mean AUROC over the training seeds (and their spread),
    summed times, every run kept under "runs"."""
    if len(runs) == 1:
        return runs[0]
    out = {k: statistics.fmean(r[k] for r in runs) for k in AUROC_KEYS}
    out.update({f"{k}_sd": statistics.stdev(r[k] for r in runs) for k in AUROC_KEYS})
    out["segment_rec_error_mean"] = statistics.fmean(r["segment_rec_error_mean"] for r in runs)
    out["train_seconds"] = sum(r["train_seconds"] for r in runs)
    out["score_seconds"] = sum(r["score_seconds"] for r in runs)
    out["epochs"] = runs[0]["epochs"]
    out["runs"] = runs
    return out


def fmt(v):
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def cell(side_result, key):
    """AUROC of one side on one fleet, with the spread over training seeds if there are several."""
    v = fmt(side_result[key])
    sd = side_result.get(f"{key}_sd")
    return v if sd is None else f"{v} ± {sd:.3f}"


def mean_of(rows, side, key):
    vals = [r[side][key] for r in rows if side in r and not math.isnan(r[side][key])]
    return statistics.fmean(vals) if vals else float("nan")


def print_markdown(a, rows, summary):
    print(f"Car-level AUROC (robust, top {a.top} per mille), preset {PRESET}, {a.cars} cars "
          f"({a.faulty} faulty) x {a.segments} segments, {a.epochs} epochs, "
          f"{a.threads} thread(s) per side"
          + (f", mean of {a.train_seeds} training seeds per fleet" if a.train_seeds > 1 else "")
          + "\n")
    print("| seed | dyad rec_error | dyad latent | dyad combined | torch rec_error |")
    print("|---|---|---|---|---|")
    for r in rows:
        t = cell(r["torch"], "rec_error") if "torch" in r else "n/a"
        print(f"| {r['seed']} | {cell(r['dyad'], 'rec_error')} | {cell(r['dyad'], 'latent_score')} "
              f"| {cell(r['dyad'], 'combined_score')} | {t} |")
    m = summary["mean"]
    print(f"| **mean** | **{fmt(m['dyad_rec_error'])}** | **{fmt(m['dyad_latent_score'])}** "
          f"| **{fmt(m['dyad_combined_score'])}** | **{fmt(m.get('torch_rec_error'))}** |")
    if rows and "torch" in rows[0]:
        print("\nFor information, the torch model's latent / combined scores (same definitions):\n")
        print("| seed | torch latent | torch combined |")
        print("|---|---|---|")
        for r in rows:
            print(f"| {r['seed']} | {cell(r['torch'], 'latent_score')} "
                  f"| {cell(r['torch'], 'combined_score')} |")
        print(f"| **mean** | **{fmt(m['torch_latent_score'])}** "
              f"| **{fmt(m['torch_combined_score'])}** |")
    print("\nWall time (s, train + score, all seeds): "
          + ", ".join(f"{k} {v:.1f}" for k, v in summary["seconds"].items()))
    if a.verbose:
        for r in rows:
            for side in ("dyad", "torch"):
                if side not in r:
                    continue
                print(f"\nseed {r['seed']} {side} (training seed {r['seed']}) "
                      "per epoch (loss / nll / kl per segment / label):")
                for e in r[side]["epochs"]:
                    print(f"  {e['epoch']:3d}  {e['loss']:.5f}  {e['nll']:.5f}  {e['kl']:.4f}  "
                          f"{e['label']:.5f}")
    print("\nAnswers: dyad rec_error >= torch rec_error (mean): "
          f"{summary['dyad_rec_ge_torch']}; dyad combined > dyad rec_error (mean): "
          f"{summary['combined_gt_rec']}")


def main(a):
    if a.from_json:
        with open(a.from_json) as f:
            saved = json.load(f)
        c = saved["config"]
        for k in ("cars", "faulty", "segments", "epochs", "threads"):
            setattr(a, k, c[k])
        a.top, a.train_seeds = c["top_per_mille"], c.get("train_seeds", 1)
        print_markdown(a, saved["seeds"], saved["summary"])
        return
    if not os.path.exists(a.dyad):
        sys.exit(f"{a.dyad} not found; build it: cmake --build build -j2 --target dyad_cli")
    torch.set_num_threads(a.threads)
    base = a.keep or tempfile.mkdtemp(prefix="dyad_compare_")
    rows = []
    t_all = time.perf_counter()
    try:
        for seed in a.seeds:
            d = os.path.join(base, f"seed{seed}")
            os.makedirs(d, exist_ok=True)
            rows.append(one_seed(a, seed, d))
    finally:
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    mean = {f"dyad_{k}": mean_of(rows, "dyad", k) for k in ("rec_error", "latent_score", "combined_score")}
    seconds = {"dyad": sum(r["dyad"]["train_seconds"] + r["dyad"]["score_seconds"] for r in rows)}
    if not a.skip_torch:
        mean.update({f"torch_{k}": mean_of(rows, "torch", k)
                     for k in ("rec_error", "latent_score", "combined_score")})
        seconds["torch"] = sum(r["torch"]["train_seconds"] + r["torch"]["score_seconds"] for r in rows)
    seconds["total"] = time.perf_counter() - t_all
    summary = dict(mean=mean, seconds=seconds,
                   dyad_rec_ge_torch=(None if a.skip_torch
                                      else bool(mean["dyad_rec_error"] >= mean["torch_rec_error"])),
                   combined_gt_rec=bool(mean["dyad_combined_score"] > mean["dyad_rec_error"]))
    config = dict(preset=PRESET, seeds=a.seeds, train_seeds=a.train_seeds, cars=a.cars, faulty=a.faulty, segments=a.segments,
                  epochs=a.epochs, threads=a.threads, top_per_mille=a.top,
                  train_fraction=TRAIN_FRACTION, torch=torch.__version__, dtype="float32")
    if a.json:
        print(json.dumps(dict(config=config, seeds=rows, summary=summary)))
    else:
        print_markdown(a, rows, summary)


if __name__ == "__main__":
    main(ARGS)
