"""Reference DyAD model (dynamical deep autoencoder, Zhang et al., Nat. Commun. 14, 5940, 2023)
in PyTorch, used to make the C++ test fixtures and as the baseline for accuracy / speed
comparisons.  See /work/shared/docs/dyad-method.md for the semantics (section numbers below).

The module layout and parameter names are those of the upstream ``DynamicVAE`` (so a
``state_dict`` has the same keys, e.g. ``encoder_rnn.weight_ih_l0``,
``encoder_rnn.weight_hh_l0_reverse``, ``mean2latent.0.weight``, ``mean2latent.2.bias``), with
two deliberate fixes (method section 8):

* the final encoder states ``h_n [F, B, H]`` are flattened *per sample*
  (``h_n.permute(1, 0, 2).reshape(B, F*H)``) and the decoder's initial state is split back per
  sample (``latent2hidden(z).view(B, F, H).permute(1, 0, 2)``); upstream uses a raw
  ``view`` that mixes the samples of a batch;
* no ``squeeze()`` of ``h_n``, so batches of one segment work for any layer/direction count.

Everything runs in the dtype of the model's parameters (``model.double()`` for float64);
inputs are cast to it.

Recurrent cell (``rnn_type``, as in upstream's params files; all shipped upstream
configurations use ``"gru"``).  Upstream builds both RNNs with ``nn.<RNN_TYPE>``; everything
else of the model is the same for every cell:

* ``"gru"`` (default): ``nn.GRU``, weights ``weight_ih_l{k}[_reverse] [3H, I_k]``,
  ``weight_hh_l{k}[_reverse] [3H, H]``, biases ``[3H]`` (gate order r, z, n);
* ``"rnn"``: ``nn.RNN(nonlinearity='tanh')``, ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)``;
  weights ``[H, I_k]``, ``[H, H]``, biases ``[H]``;
* ``"lstm"``: ``nn.LSTM``, weights ``[4H, I_k]``, ``[4H, H]``, biases ``[4H]`` (gate order
  i, f, g, o).  The latent reads the encoder's final hidden states ``h_n`` only (not ``c_n``),
  flattened per sample exactly as the GRU's ``h_n``; the decoder starts from
  ``h0 = latent2hidden(z)`` (split per sample as for the GRU) and ``c0 = 0``.

The ``state_dict`` names are PyTorch's for every cell (``encoder_rnn.weight_ih_l0``, ...).

Typical use::

    import torch, dyad_torch as dt
    dt.set_threads(1)
    model = dt.DyAD.from_preset("fivefold").double()
    cfg = dt.TrainConfig.from_preset("fivefold", epochs=2)
    hist = dt.train(model, (x, mileage01), cfg)      # x [N, T, C] normalised, mileage in [0, 1]
    rec_error = dt.score(model, x)                   # [N] segment scores (method section 6)
"""

import csv
import json
import math
import time
from dataclasses import dataclass, fields
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "TASKS", "PRESETS", "DyAD", "TrainConfig", "forward_loss", "kl_weight", "train", "score",
    "set_threads", "fit_normaliser", "apply_normaliser", "normalise_mileage", "car_scores",
    "auroc", "read_long_csv", "forward_flops", "CELLS", "parse_rnn_type",
]

# --------------------------------------------------------------------------------------------
# Tasks (method section 3) and shipped upstream configurations (method section 7)
# --------------------------------------------------------------------------------------------

#: task name -> (encoder columns in order, D = number of conditioning (decoder) columns)
TASKS = {
    "ev": (["soc", "current", "max_temp", "max_single_volt", "min_single_volt", "volt"], 2),
    "brand_a": (["soc", "current", "min_temp", "max_single_volt", "max_temp", "min_single_volt",
                 "volt"], 2),
    "brand_b": (["soc", "current", "min_temp", "max_single_volt", "min_single_volt", "volt",
                 "max_temp"], 4),
}

#: preset name -> model and training hyper-parameters (upstream JSON key names)
PRESETS = {
    "brand1": dict(task="brand_a", hidden_size=128, num_layers=2, latent_size=8,
                   learning_rate=0.005, epochs=3, batch_size=128, cosine_factor=0.1,
                   noise_scale=1.0, anneal0=0.01, nll_weight=10.0, latent_label_weight=0.001),
    "brand2": dict(task="brand_b", hidden_size=1024, num_layers=1, latent_size=24,
                   learning_rate=0.0001, epochs=3, batch_size=128, cosine_factor=0.1,
                   noise_scale=0.01, anneal0=0.1, nll_weight=5.0, latent_label_weight=1.0),
    "brand3": dict(task="brand_a", hidden_size=256, num_layers=1, latent_size=16,
                   learning_rate=0.005, epochs=5, batch_size=128, cosine_factor=0.1,
                   noise_scale=0.01, anneal0=0.1, nll_weight=10.0, latent_label_weight=0.001),
    "fivefold": dict(task="ev", hidden_size=64, num_layers=1, latent_size=32,
                     learning_rate=0.001, epochs=10, batch_size=64, cosine_factor=1.0,
                     noise_scale=0.01, anneal0=0.1, nll_weight=10.0, latent_label_weight=0.01),
}
for _p in PRESETS.values():
    _p.update(bidirectional=True, rnn_type="gru", anneal_function="linear", k=0.0025, x0=500)


def set_threads(n: int) -> None:
    """Set the intra-op thread count of torch (``torch.set_num_threads``).  For a single-threaded
    BLAS as well, set ``OPENBLAS_NUM_THREADS=1`` in the environment *before* importing torch."""
    torch.set_num_threads(int(n))


# --------------------------------------------------------------------------------------------
# Model (method section 4)
# --------------------------------------------------------------------------------------------

#: rnn_type -> (torch module class, gate blocks of H rows in its weights)
CELLS = {"gru": (nn.GRU, 3), "rnn": (nn.RNN, 1), "lstm": (nn.LSTM, 4)}


def parse_rnn_type(name: str) -> str:
    """``"gru"`` / ``"rnn"`` / ``"lstm"`` in lower or upper case (upstream writes both) -> the
    lower-case name; anything else raises ValueError."""
    key = str(name).lower()
    if key not in CELLS:
        raise ValueError(f"unknown rnn_type '{name}' (expected gru, rnn or lstm)")
    return key


class DyAD(nn.Module):
    """Sequence VAE: recurrent encoder over E columns -> (mu, log_var) -> z -> initial state of
    a recurrent decoder driven by the first D encoder columns -> per-step Linear head
    reconstructing the other E - D columns; plus a mileage head on mu.

    Args:
        encoder_size: E, number of encoder columns.
        decoder_size: D, number of conditioning columns (the first D encoder columns).
        hidden_size: H.
        latent_size: Z.
        num_layers, bidirectional: of both RNNs (F = num_layers * directions).
        encoder_columns: indices of the E encoder columns in the input's last axis, in encoder
            order; default ``range(E)`` (the input already holds the encoder columns in order).
        rnn_type: the cell of both RNNs, ``"gru"`` (default, ``nn.GRU``), ``"rnn"``
            (``nn.RNN``, tanh) or ``"lstm"`` (``nn.LSTM``; the latent reads ``h_n`` only, the
            decoder starts from ``c0 = 0``); upper case is accepted too.
    """

    def __init__(self, encoder_size: int, decoder_size: int, hidden_size: int, latent_size: int,
                 num_layers: int = 1, bidirectional: bool = True,
                 encoder_columns: Optional[Sequence[int]] = None, rnn_type: str = "gru"):
        super().__init__()
        self.rnn_type = parse_rnn_type(rnn_type)
        if not 0 < decoder_size < encoder_size:
            raise ValueError(f"need 0 < D < E (got E={encoder_size}, D={decoder_size})")
        self.encoder_size = encoder_size
        self.decoder_size = decoder_size
        self.output_size = encoder_size - decoder_size
        self.hidden_size = hidden_size
        self.latent_size = latent_size
        self.num_layers = num_layers
        self.bidirectional = bool(bidirectional)
        self.directions = 2 if bidirectional else 1
        self.hidden_factor = self.directions * num_layers
        cols = list(range(encoder_size)) if encoder_columns is None else list(encoder_columns)
        if len(cols) != encoder_size:
            raise ValueError(f"encoder_columns has {len(cols)} entries, E = {encoder_size}")
        self.register_buffer("encoder_columns", torch.tensor(cols, dtype=torch.long),
                             persistent=False)
        self._identity_columns = cols == list(range(encoder_size))

        H, Z, FH = hidden_size, latent_size, hidden_size * self.hidden_factor
        # Same construction order and names as upstream DynamicVAE (so the same seed gives the
        # same initial weights): upstream builds both RNNs with nn.<RNN_TYPE>.
        cell = CELLS[self.rnn_type][0]
        extra = dict(nonlinearity="tanh") if self.rnn_type == "rnn" else {}
        self.encoder_rnn = cell(encoder_size, H, num_layers=num_layers,
                                bidirectional=self.bidirectional, batch_first=True, **extra)
        self.decoder_rnn = cell(decoder_size, H, num_layers=num_layers,
                                bidirectional=self.bidirectional, batch_first=True, **extra)
        self.hidden2mean = nn.Linear(FH, Z)
        self.hidden2log_v = nn.Linear(FH, Z)
        self.latent2hidden = nn.Linear(Z, FH)
        self.outputs2embedding = nn.Linear(H * self.directions, self.output_size)
        self.mean2latent = nn.Sequential(nn.Linear(Z, H // 2), nn.ReLU(), nn.Linear(H // 2, 1))

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "DyAD":
        """Model of a shipped configuration (``PRESETS``); keyword overrides use the upstream
        names (hidden_size, num_layers, bidirectional, latent_size, task, rnn_type)."""
        p = dict(PRESETS[name], **overrides)
        return cls.from_params(p)

    @classmethod
    def from_params(cls, p: dict) -> "DyAD":
        """Model of an upstream params dict (keys task, hidden_size, latent_size, num_layers,
        bidirectional, and rnn_type, default ``"gru"``; other keys are ignored)."""
        cols, d = TASKS[p["task"]]
        return cls(len(cols), d, p["hidden_size"], p["latent_size"], p["num_layers"],
                   p["bidirectional"], rnn_type=p.get("rnn_type", "gru"))

    @property
    def dtype(self) -> torch.dtype:
        return self.hidden2mean.weight.dtype

    def config(self) -> dict:
        return dict(E=self.encoder_size, D=self.decoder_size, H=self.hidden_size,
                    Z=self.latent_size, layers=self.num_layers, bidirectional=self.bidirectional,
                    rnn_type=self.rnn_type)

    # -- the recurrent parts, for every cell ---------------------------------------------------
    def encode_states(self, enc: torch.Tensor) -> torch.Tensor:
        """Final encoder hidden states ``h_n [F, B, H]`` of ``enc [B, T, E]`` (an LSTM's
        ``c_n`` is not used)."""
        _, h_n = self.encoder_rnn(enc)
        return h_n[0] if self.rnn_type == "lstm" else h_n

    def decode(self, dec: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        """Decoder outputs ``[B, T, dirs*H]`` of ``dec [B, T, D]`` from ``h0 [F, B, H]`` (an
        LSTM starts from ``c0 = 0``)."""
        if self.rnn_type == "lstm":
            out, _ = self.decoder_rnn(dec, (h0, torch.zeros_like(h0)))
        else:
            out, _ = self.decoder_rnn(dec, h0)
        return out

    # -- column filters (upstream Task.encoder_filter / decoder_filter / target_filter) --------
    def encoder_input(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.dtype)
        if self._identity_columns:
            return x[..., :self.encoder_size]
        return x.index_select(-1, self.encoder_columns)

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstructed columns: encoder columns D .. E-1, ``[B, T, E-D]``."""
        return self.encoder_input(x)[..., self.decoder_size:]

    def forward(self, x: torch.Tensor, noise_scale: float = 1.0, training: Optional[bool] = None,
                generator: Optional[torch.Generator] = None):
        """x ``[B, T, C]`` -> ``(log_p [B, T, E-D], mu [B, Z], log_var [B, Z], z [B, Z],
        mean_pred [B, 1])``.  ``training`` defaults to ``self.training``; in training mode
        ``z = mu + noise_scale * std * eps`` (eps from ``generator``), otherwise ``z = mu``."""
        if training is None:
            training = self.training
        enc = self.encoder_input(x)
        B = enc.shape[0]
        h_n = self.encode_states(enc)                                   # [F, B, H]
        h = h_n.permute(1, 0, 2).reshape(B, self.hidden_factor * self.hidden_size)
        mu = self.hidden2mean(h)
        log_v = self.hidden2log_v(h)
        std = torch.exp(0.5 * log_v)
        mean_pred = self.mean2latent(mu)
        if training:
            eps = torch.randn(B, self.latent_size, generator=generator, dtype=mu.dtype,
                              device=mu.device)
            z = eps * std * noise_scale + mu
        else:
            z = mu
        h0 = self.latent2hidden(z).view(B, self.hidden_factor, self.hidden_size)
        h0 = h0.permute(1, 0, 2).contiguous()                           # [F, B, H]
        out = self.decode(enc[..., :self.decoder_size], h0)             # [B, T, dirs*H]
        log_p = self.outputs2embedding(out)
        return log_p, mu, log_v, z, mean_pred


def forward_flops(model: DyAD, T: int) -> int:
    """Multiply-add FLOPs (2 per MAC) of one segment's forward pass: per time step, direction
    and layer 2*G*H*(I+H) for each RNN, G = gate blocks of the cell (gru 3, rnn 1, lstm 4),
    plus the Linear layers.  Training ~ 3x this."""
    H, L, dirs, Z = model.hidden_size, model.num_layers, model.directions, model.latent_size
    FH = H * model.hidden_factor
    G = CELLS[getattr(model, "rnn_type", "gru")][1]

    def rnn(inp):
        tot = 0
        for layer in range(L):
            i = inp if layer == 0 else H * dirs
            tot += 2 * G * H * (i + H) * dirs * T
        return tot
    linear = (2 * FH * Z * 2 + 2 * Z * FH + 2 * H * dirs * model.output_size * T
              + 2 * (Z * (H // 2) + H // 2))
    return rnn(model.encoder_size) + rnn(model.decoder_size) + linear


# --------------------------------------------------------------------------------------------
# Loss (method section 5)
# --------------------------------------------------------------------------------------------

def kl_weight(step: int, anneal_function: str = "linear", anneal0: float = 0.1,
              k: float = 0.0025, x0: float = 500) -> float:
    """KL annealing weight at mini-batch ``step`` (counted from 1)."""
    if anneal_function == "logistic":
        return anneal0 * float(1.0 / (1.0 + math.exp(-k * (step - x0))))
    if anneal_function == "linear":
        return anneal0 * min(1.0, step / x0)
    if anneal_function == "constant":
        return anneal0
    raise ValueError(f"unknown anneal_function '{anneal_function}'")


def forward_loss(model: DyAD, x: torch.Tensor, mileage: torch.Tensor, kl_w: float,
                 nll_weight: float, label_weight: float, noise_scale: float,
                 generator: Optional[torch.Generator] = None) -> dict:
    """Training-mode forward and loss of one mini-batch.  ``mileage`` is min-max normalised
    ``[B]``.  Returns a dict of 0-d tensors ``loss, nll, kl, label`` (``kl`` is the batch sum,
    the loss uses ``kl / B``)."""
    log_p, mu, log_v, _, mean_pred = model(x, noise_scale=noise_scale, training=True,
                                           generator=generator)
    target = model.target(x)
    B = log_p.shape[0]
    nll = F.smooth_l1_loss(log_p, target, reduction="mean", beta=1.0)
    kl = -0.5 * torch.sum(1 + log_v - mu.pow(2) - log_v.exp())
    label = F.mse_loss(mean_pred.reshape(B), mileage.to(mean_pred.dtype).reshape(B))
    loss = nll_weight * nll + label_weight * label + kl_w * kl / B
    return dict(loss=loss, nll=nll, kl=kl, label=label)


# --------------------------------------------------------------------------------------------
# Training and scoring
# --------------------------------------------------------------------------------------------

@dataclass
class TrainConfig:
    """Training hyper-parameters; field names follow the upstream JSON keys."""
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 0.001
    cosine_factor: float = 1.0
    noise_scale: float = 0.01
    anneal_function: str = "linear"
    k: float = 0.0025
    x0: float = 500
    anneal0: float = 0.1
    nll_weight: float = 10.0
    latent_label_weight: float = 0.01
    weight_decay: float = 1e-6
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    shuffle: bool = True
    seed: int = 0
    verbose: bool = False

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "TrainConfig":
        return cls.from_dict(dict(PRESETS[name], **overrides))

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Accepts an upstream params JSON dict (unknown keys such as task, hidden_size are
        ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_json(cls, path: str, **overrides) -> "TrainConfig":
        with open(path) as f:
            return cls.from_dict(dict(json.load(f), **overrides))


def _unpack(data):
    """data: ``(x, mileage)`` tuple, a dict with keys ``x`` and ``mileage``, or a bare ``x``."""
    if isinstance(data, torch.Tensor):
        return data, None
    if isinstance(data, dict):
        return data["x"], data.get("mileage")
    x, mileage = data
    return x, mileage


def train(model: DyAD, data, cfg: TrainConfig, callback=None) -> List[dict]:
    """Train ``model`` in place, upstream style (method section 5): AdamW, CosineAnnealingLR
    stepped per epoch to ``cosine_factor * lr`` over ``cfg.epochs``, KL annealing with the step
    counted from 1 per mini-batch, reshuffled mini-batches every epoch (last one may be short).

    ``data``: ``(x [N, T, C], mileage [N])``, x normalised (method section 2), mileage min-max
    normalised (``normalise_mileage``).  Shuffling and the reparameterisation noise come from a
    ``torch.Generator`` seeded with ``cfg.seed``.  ``callback(step, epoch, terms)`` is called
    after each mini-batch if given.  Returns one dict of mean loss terms per epoch.
    """
    x, mileage = _unpack(data)
    if mileage is None:
        raise ValueError("train needs mileage (pass (x, mileage))")
    x = torch.as_tensor(x)
    mileage = torch.as_tensor(mileage)
    N = x.shape[0]
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, betas=tuple(cfg.betas),
                            eps=cfg.eps, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=cfg.epochs, eta_min=cfg.cosine_factor * cfg.learning_rate)
    history = []
    step = 1
    model.train()
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        order = torch.randperm(N, generator=gen) if cfg.shuffle else torch.arange(N)
        sums = dict(loss=0.0, nll=0.0, kl=0.0, label=0.0)
        nb = 0
        for start in range(0, N, cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            xb = x.index_select(0, idx)
            terms = forward_loss(model, xb, mileage.index_select(0, idx),
                                 kl_weight(step, cfg.anneal_function, cfg.anneal0, cfg.k, cfg.x0),
                                 cfg.nll_weight, cfg.latent_label_weight, cfg.noise_scale, gen)
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            opt.step()
            sums["loss"] += terms["loss"].item()
            sums["nll"] += terms["nll"].item()
            sums["label"] += terms["label"].item()
            sums["kl"] += terms["kl"].item() / xb.shape[0]   # per segment, as upstream logs it
            if callback is not None:
                callback(step, epoch, terms)
            step += 1
            nb += 1
        lr_used = opt.param_groups[0]["lr"]
        sched.step()
        rec = {k: v / max(nb, 1) for k, v in sums.items()}
        rec.update(epoch=epoch, lr=lr_used, batches=nb, seconds=time.perf_counter() - t0)
        history.append(rec)
        if cfg.verbose:
            print(f"epoch {epoch}/{cfg.epochs}: loss {rec['loss']:.6g} nll {rec['nll']:.6g} "
                  f"kl {rec['kl']:.6g} label {rec['label']:.6g} lr {lr_used:.3g} "
                  f"({rec['seconds']:.1f} s)", flush=True)
    model.eval()
    return history


@torch.no_grad()
def score(model: DyAD, data, batch_size: int = 256, return_mu: bool = False):
    """Segment scores (method section 6): ``rec_error[n]`` = mean over T x (E-D) of the squared
    reconstruction error, evaluation mode (z = mu).  ``data`` is ``x [N, T, C]`` or anything
    ``train`` accepts.  Returns ``rec_error [N]`` (model dtype), and ``mu [N, Z]`` if
    ``return_mu``.  The result does not depend on ``batch_size``."""
    x, _ = _unpack(data)
    x = torch.as_tensor(x)
    was_training = model.training
    model.eval()
    errs, mus = [], []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size]
        log_p, mu, _, _, _ = model(xb, training=False)
        errs.append((log_p - model.target(xb)).pow(2).mean(dim=(1, 2)))
        mus.append(mu)
    model.train(was_training)
    rec = torch.cat(errs) if errs else torch.zeros(0, dtype=model.dtype)
    if return_mu:
        return rec, (torch.cat(mus) if mus else torch.zeros(0, model.latent_size))
    return rec


# --------------------------------------------------------------------------------------------
# Data helpers (method sections 1, 2, 6)
# --------------------------------------------------------------------------------------------

def fit_normaliser(x: torch.Tensor):
    """Per column (last axis) of ``x [N, T, C]``: ``mean = mean_s(mean_t)``,
    ``std = mean_s(std_t)`` (population std), ``range = max - min``;
    returns ``(mean [C], scale [C])`` with ``scale = max(max(1e-4, std), 0.1 * range)``."""
    x = torch.as_tensor(x, dtype=torch.float64)
    mean = x.mean(dim=1).mean(dim=0)
    std = x.std(dim=1, unbiased=False).mean(dim=0)
    rng = x.amax(dim=(0, 1)) - x.amin(dim=(0, 1))
    scale = torch.maximum(torch.clamp(std, min=1e-4), 0.1 * rng)
    return mean, scale


def apply_normaliser(x, mean, scale):
    return (torch.as_tensor(x, dtype=torch.float64) - mean) / scale


def normalise_mileage(mileage, lo: Optional[float] = None, hi: Optional[float] = None):
    """Min-max normalise (lo, hi default to the min / max of ``mileage``); returns
    ``(normalised, lo, hi)``.  A zero range maps everything to 0."""
    m = torch.as_tensor(mileage, dtype=torch.float64)
    lo = float(m.min()) if lo is None else lo
    hi = float(m.max()) if hi is None else hi
    span = hi - lo
    return ((m - lo) / span if span > 0 else torch.zeros_like(m)), lo, hi


def car_scores(rec_error, cars, h_per_mille: Optional[float] = None) -> dict:
    """Car score: mean of the top ``max(round(h/1000 * n), 1)`` segment scores of each car
    ("robust"), or of all of them if ``h_per_mille`` is None ("average").  round() is half
    away from zero (like C++ ``std::round``), not Python's round-half-to-even."""
    by_car = {}
    for s, c in zip(torch.as_tensor(rec_error).tolist(), cars):
        by_car.setdefault(c, []).append(s)
    out = {}
    for c, s in by_car.items():
        s = sorted(s, reverse=True)
        if h_per_mille is None:
            n = len(s)
        else:
            n = max(int(math.floor(h_per_mille / 1000.0 * len(s) + 0.5)), 1)
        out[c] = sum(s[:n]) / n
    return out


def auroc(scores, labels) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties count one half); label 1 = positive."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    npos, nneg = int(y.sum()), int((~y).sum())
    if npos == 0 or nneg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - npos * (npos + 1) / 2.0) / (npos * nneg))


def read_long_csv(path: str, columns: Sequence[str]):
    """Read a long CSV (method section 1) into ``x [N, T, C]`` float64 (columns in the order
    given; every segment must have the same length) and per-segment lists ``cars``,
    ``segments``, ``labels`` (0 if absent), ``mileage`` (nan if absent)."""
    segs, cars, segids, labels, miles = [], [], [], [], []
    cur_key, cur_rows = None, []
    with open(path, newline="") as f:
        rd = csv.reader(f)
        header = next(rd)
        pos = {name: i for i, name in enumerate(header)}
        for need in ["car", "segment", *columns]:
            if need not in pos:
                raise ValueError(f"{path}: no column '{need}' in the header")
        ci = [pos[c] for c in columns]
        for lineno, row in enumerate(rd, start=2):
            key = (row[pos["car"]], row[pos["segment"]])
            if key != cur_key:
                if cur_rows:
                    segs.append(cur_rows)
                cur_key, cur_rows = key, []
                cars.append(key[0])
                segids.append(key[1])
                labels.append(int(float(row[pos["label"]])) if "label" in pos else 0)
                miles.append(float(row[pos["mileage"]]) if "mileage" in pos else float("nan"))
            try:
                cur_rows.append([float(row[i]) for i in ci])
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: {e}") from None
        if cur_rows:
            segs.append(cur_rows)
    lengths = {len(s) for s in segs}
    if len(lengths) > 1:
        raise ValueError(f"{path}: segments have different lengths {sorted(lengths)}")
    x = torch.tensor(segs, dtype=torch.float64)
    return dict(x=x, cars=cars, segments=segids, labels=labels, mileage=torch.tensor(miles))


# --------------------------------------------------------------------------------------------
# Smoke test: python3 dyad_torch.py [--preset fivefold] [--dtype float64] [--threads 1]
#             [--rnn-type gru|rnn|lstm]
# --------------------------------------------------------------------------------------------

def _main():
    import argparse
    ap = argparse.ArgumentParser(description="Train the reference DyAD model on random data "
                                             "(smoke test) and print the loss per epoch.")
    ap.add_argument("--preset", default="fivefold", choices=sorted(PRESETS))
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--segments", type=int, default=256)
    ap.add_argument("--length", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rnn-type", default=None, choices=sorted(CELLS),
                    help="cell of both RNNs (default: the preset's, gru)")
    a = ap.parse_args()
    set_threads(a.threads)
    torch.manual_seed(a.seed)
    over = {} if a.rnn_type is None else dict(rnn_type=a.rnn_type)
    model = DyAD.from_preset(a.preset, **over).to(getattr(torch, a.dtype))
    x = torch.randn(a.segments, a.length, model.encoder_size)
    mileage = torch.rand(a.segments)
    cfg = TrainConfig.from_preset(a.preset, epochs=a.epochs, seed=a.seed, verbose=True)
    train(model, (x, mileage), cfg)
    s = score(model, x)
    print(f"rec_error: mean {s.mean().item():.6g}, min {s.min().item():.6g}, "
          f"max {s.max().item():.6g}")


if __name__ == "__main__":
    _main()
