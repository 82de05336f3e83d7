"""Speed of the PyTorch reference DyAD model (tests/torch_ref/dyad_torch.py), float32, CPU.

    /usr/bin/python3 bench/torch_bench.py [--preset fivefold,brand1,brand3,brand2] [--threads 1,2]
                                          [--rnn-type gru,rnn,lstm] [--json]

--rnn-type (default gru) picks the recurrent cell of both RNNs (dyad_torch.DyAD's rnn_type:
nn.GRU, nn.RNN with tanh, or nn.LSTM); a comma list times each cell of each preset in turn.
For every preset, cell and thread count a fresh worker process is started with
OPENBLAS_NUM_THREADS=1 and OMP_WAIT_POLICY=PASSIVE in its environment (set before torch is
imported) and
torch.set_num_threads(n); it measures, on random data with T = 128:

* training: segments/s of a full step (forward, loss, backward, AdamW) at the preset's batch;
* scoring: segments/s in eval mode under torch.no_grad, batches of 256, incl. rec_error;
* latency: median ms to score one segment (batch of 1);
* peak RSS of the worker (MB, ru_maxrss) and its RSS right after importing torch.

Each figure is the median of --repeats timed repeats after --warmup untimed iterations; one
repeat runs as many iterations as fit in about --repeat-seconds.  FLOPs follow the formula
of dyad_torch.forward_flops (per time step, direction and layer 2*G*(I+H) for each RNN, with
G = 3H for the GRU, H for the RNN and 4H for the LSTM, plus the Linear layers); a training step
counts as 3x the forward.  The best over thread counts is reported per figure.  --json prints
one JSON object per preset and cell (one line each, with an "rnn_type" key).

BLAS: torch (Debian's python3-torch) does its matrix products through libblas.so.3, which
on a stock Debian is the netlib reference BLAS (~5 GFLOP/s); the BLAS in use is reported.  To
measure with OpenBLAS without changing the system:
    apt-get download libopenblas0-pthread && dpkg-deb -x libopenblas0-pthread_*.deb /tmp/ob
    bench/torch_bench.py --blas-dir /tmp/ob/usr/lib/x86_64-linux-gnu/openblas-pthread
(or install libopenblas0-pthread, which switches the libblas.so.3 alternative).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REF_DIR = os.path.normpath(os.path.join(HERE, "..", "tests", "torch_ref"))

#: preset -> (batch used for training, T)
BENCH_PRESETS = {"fivefold": 64, "brand1": 128, "brand3": 128, "brand2": 128}
#: the cells dyad_torch.DyAD builds (rnn_type)
RNN_TYPES = ("gru", "rnn", "lstm")
T_LEN = 128
SCORE_BATCH = 256


def _rss_mb(field="VmRSS"):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def _blas_library():
    """Path of the BLAS shared library mapped into this process (torch links libblas.so.3;
    Debian's default alternative is the netlib reference BLAS, much slower than OpenBLAS)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.split()[-1].lower()}
        return sorted(libs)[0] if libs else "unknown"
    except OSError:
        return "unknown"


def _cpu_seconds():
    t = os.times()
    return t.user + t.system


def _loadavg():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError):
        return float("nan")


def _timed(fn, warmup, repeats, repeat_seconds):
    """Median seconds per call of fn() (warm-up calls first; each repeat runs enough calls to
    last about repeat_seconds, estimated from the warm-up).  Also returns the process CPU
    seconds per wall second over the timed repeats (about the thread count on an idle machine;
    much less means other processes competed for the cores)."""
    t0 = time.perf_counter()
    for _ in range(max(warmup, 1)):
        fn()
    per_call = (time.perf_counter() - t0) / max(warmup, 1)
    iters = max(1, int(repeat_seconds / max(per_call, 1e-9)))
    times = []
    c0, w0 = _cpu_seconds(), time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        times.append((time.perf_counter() - t0) / iters)
    cpu_per_wall = (_cpu_seconds() - c0) / max(time.perf_counter() - w0, 1e-9)
    return statistics.median(times), iters, cpu_per_wall


def worker(preset, threads, warmup, repeats, repeat_seconds, latency_calls, rnn_type="gru"):
    os.environ["OPENBLAS_NUM_THREADS"] = "1"   # before torch (and its BLAS) is loaded
    import resource
    import torch
    sys.path.insert(0, REF_DIR)
    import dyad_torch as dt

    rss_import = _rss_mb()
    dt.set_threads(threads)
    torch.manual_seed(0)
    batch = BENCH_PRESETS[preset]
    model = dt.DyAD.from_preset(preset, rnn_type=rnn_type).float()
    cfg = dt.TrainConfig.from_preset(preset)
    E = model.encoder_size
    x_train = torch.randn(batch, T_LEN, E)
    m_train = torch.rand(batch)
    x_score = torch.randn(SCORE_BATCH, T_LEN, E)
    x_one = torch.randn(1, T_LEN, E)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=1e-6)
    gen = torch.Generator().manual_seed(1)
    step = [1]

    def train_step():
        model.train()
        terms = dt.forward_loss(model, x_train, m_train,
                                dt.kl_weight(step[0], cfg.anneal_function, cfg.anneal0, cfg.k,
                                             cfg.x0),
                                cfg.nll_weight, cfg.latent_label_weight, cfg.noise_scale, gen)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        step[0] += 1

    def score_batch():
        dt.score(model, x_score, batch_size=SCORE_BATCH)

    def score_one():
        dt.score(model, x_one, batch_size=1)

    load_start = _loadavg()
    t_train, it_train, cpu_train = _timed(train_step, warmup, repeats, repeat_seconds)
    t_score, it_score, cpu_score = _timed(score_batch, warmup, repeats, repeat_seconds)
    # latency: median over single calls
    for _ in range(max(warmup, 3)):
        score_one()
    lat = []
    for _ in range(latency_calls):
        t0 = time.perf_counter()
        score_one()
        lat.append(time.perf_counter() - t0)

    fwd = dt.forward_flops(model, T_LEN)
    train_sps = batch / t_train
    score_sps = SCORE_BATCH / t_score
    return dict(
        threads=threads,
        rnn_type=model.rnn_type,
        train_seg_per_s=train_sps,
        train_step_ms=1e3 * t_train,
        train_gflops=3 * fwd * train_sps / 1e9,
        score_seg_per_s=score_sps,
        score_gflops=fwd * score_sps / 1e9,
        latency_ms=1e3 * statistics.median(lat),
        latency_min_ms=1e3 * min(lat),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        rss_after_import_mb=rss_import,
        iters_per_repeat=dict(train=it_train, score=it_score),
        cpu_per_wall=dict(train=cpu_train, score=cpu_score),
        loadavg_1min=dict(start=load_start, end=_loadavg()),
        torch_threads=torch.get_num_threads(),
        blas=_blas_library(),
        torch_version=torch.__version__,
    )


def preset_info(preset, rnn_type="gru"):
    sys.path.insert(0, REF_DIR)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import dyad_torch as dt
    p = dt.PRESETS[preset]
    model = dt.DyAD.from_preset(preset, rnn_type=rnn_type)
    fwd = dt.forward_flops(model, T_LEN)
    return dict(preset=preset, rnn_type=model.rnn_type, task=p["task"], E=model.encoder_size,
                D=model.decoder_size, H=p["hidden_size"], layers=p["num_layers"],
                bidirectional=p["bidirectional"], Z=p["latent_size"], batch=BENCH_PRESETS[preset],
                T=T_LEN, score_batch=SCORE_BATCH,
                dtype="float32", parameters=sum(q.numel() for q in model.parameters()),
                forward_mflop_per_segment=fwd / 1e6, train_mflop_per_segment=3 * fwd / 1e6)


def run_worker_process(preset, threads, a, rnn_type="gru"):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    # Debian's torch uses libgomp: with its default active waiting, two threads on two shared
    # cores make every elementwise op ~40x slower (tanh of 384x128: 6 ms instead of 0.1 ms).
    # Passive waiting is torch's best two-thread setting here.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if a.blas_dir:
        env["LD_LIBRARY_PATH"] = a.blas_dir + (
            ":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--preset", preset,
           "--rnn-type", rnn_type,
           "--threads", str(threads), "--warmup", str(a.warmup), "--repeats", str(a.repeats),
           "--repeat-seconds", str(a.repeat_seconds), "--latency-calls", str(a.latency_calls)]
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def best_of(runs):
    best = {}
    for key, better in [("train_seg_per_s", max), ("score_seg_per_s", max),
                        ("latency_ms", min)]:
        r = better(runs, key=lambda r: r[key])
        best[key] = r[key]
        best[key + "_threads"] = r["threads"]
    r = max(runs, key=lambda r: r["train_seg_per_s"])
    best["train_gflops"] = r["train_gflops"]
    r = max(runs, key=lambda r: r["score_seg_per_s"])
    best["score_gflops"] = r["score_gflops"]
    best["peak_rss_mb"] = min(r["peak_rss_mb"] for r in runs)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="fivefold,brand1",
                    help="comma-separated, from: " + ", ".join(BENCH_PRESETS))
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    ap.add_argument("--rnn-type", default="gru",
                    help="comma-separated recurrent cells, from: " + ", ".join(RNN_TYPES)
                         + " (default gru)")
    ap.add_argument("--json", action="store_true", help="one JSON object per preset and cell")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--repeat-seconds", type=float, default=1.0)
    ap.add_argument("--latency-calls", type=int, default=30)
    ap.add_argument("--blas-dir", default="",
                    help="directory prepended to LD_LIBRARY_PATH of the workers, holding another "
                         "libblas.so.3 (e.g. OpenBLAS's)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    presets = [p for p in a.preset.split(",") if p]
    for p in presets:
        if p not in BENCH_PRESETS:
            ap.error(f"unknown preset '{p}' (known: {', '.join(BENCH_PRESETS)})")
    threads = [int(t) for t in a.threads.split(",") if t]
    cells = [c.strip().lower() for c in a.rnn_type.split(",") if c.strip()]
    for c in cells:
        if c not in RNN_TYPES:
            ap.error(f"unknown rnn type '{c}' (known: {', '.join(RNN_TYPES)})")
    if not cells:
        ap.error("--rnn-type names no cell")

    if a.worker:
        print(json.dumps(worker(presets[0], threads[0], a.warmup, a.repeats, a.repeat_seconds,
                                a.latency_calls, cells[0])))
        return

    for p, cell in [(p, c) for p in presets for c in cells]:
        info = preset_info(p, cell)
        runs = [run_worker_process(p, t, a, cell) for t in threads]
        info["runs"] = runs
        info["best"] = best_of(runs)
        if a.json:
            print(json.dumps(info), flush=True)
            continue
        name = p if cell == "gru" else f"{p} ({cell})"  # the GRU's header as it always was
        print(f"== {name}: task {info['task']} E={info['E']} D={info['D']} H={info['H']} "
              f"layers={info['layers']} bidir Z={info['Z']}, batch {info['batch']}, T={T_LEN}, "
              f"float32, torch {runs[0]['torch_version']}; {info['parameters']} parameters, "
              f"forward {info['forward_mflop_per_segment']:.1f} MFLOP/segment\n"
              f"   BLAS: {runs[0]['blas']}")
        print(f"  {'threads':>7} {'train seg/s':>12} {'GFLOP/s':>8} {'score seg/s':>12} "
              f"{'GFLOP/s':>8} {'latency ms':>11} {'peak RSS MB':>12} {'(after import)':>14} "
              f"{'cpu/wall':>9} {'load':>5}")
        for r in runs:
            print(f"  {r['threads']:>7} {r['train_seg_per_s']:>12.1f} {r['train_gflops']:>8.2f} "
                  f"{r['score_seg_per_s']:>12.1f} {r['score_gflops']:>8.2f} "
                  f"{r['latency_ms']:>11.2f} {r['peak_rss_mb']:>12.0f} "
                  f"{r['rss_after_import_mb']:>14.0f} "
                  f"{r['cpu_per_wall']['train']:>9.2f} {r['loadavg_1min']['start']:>5.1f}")
        b = info["best"]
        print(f"  {'best':>7} {b['train_seg_per_s']:>12.1f} {b['train_gflops']:>8.2f} "
              f"{b['score_seg_per_s']:>12.1f} {b['score_gflops']:>8.2f} "
              f"{b['latency_ms']:>11.2f} {b['peak_rss_mb']:>12.0f}"
              f"   (threads: train {b['train_seg_per_s_threads']}, "
              f"score {b['score_seg_per_s_threads']}, latency {b['latency_ms_threads']})",
              flush=True)


if __name__ == "__main__":
    main()
