"""Regenerate the PyTorch reference fixtures in tests/fixtures/ (all deterministic).

    /usr/bin/python3 tests/torch_ref/make_fixtures.py [--out DIR]

Writes (.safetensors)
  * one recurrent layer stack each: gru_bi2, gru_uni1 (nn.GRU), rnn_bi2, rnn_uni1
    (nn.RNN, tanh), lstm_bi2, lstm_uni1 (nn.LSTM, c0 = 0, h_n compared);
  * packed sequences (pack_padded_sequence, enforce_sorted=False, lengths 3,6,1):
    gru_packed, rnn_packed, lstm_packed;
  * adamw;
  * the whole model: dyad_model, dyad_model_uni (GRU), dyad_model_rnn, dyad_model_lstm;
  * torch_state_dict_fivefold;
then reloads every file and checks it against the values in memory.  Also checks (assertions)
that
  * a hand-written cell (method section 4 formulas for the GRU; PyTorch's documented ones for
    RNN and LSTM; h0 / h_n index f = layer*dirs + dir; at padded steps the state is carried
    unchanged) reproduces nn.GRU / nn.RNN / nn.LSTM, packed or not, so the fixtures pin down
    the layout the C++ code must use;
  * torch.autograd.gradcheck passes for every layer fixture's module;
  * a segment's score does not depend on the other segments of its batch (per-sample
    latent mapping), whereas upstream's raw view() does mix samples.
See README.md next to this file for the tensor names.

Bit-for-bit reproduction of the committed files needs the same torch build *and* BLAS: they
were made with Debian's python3-torch 1.13 on libopenblas0-pthread 0.3.21 (SkylakeX kernel,
OPENBLAS_NUM_THREADS=1); another BLAS changes the last bits of some values only.
"""

import argparse
import os
import sys

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dyad_torch as dt            # noqa: E402
import safetensors_io as st        # noqa: E402

DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "fixtures"))
F64 = torch.float64


def _meta(**kw):
    m = {k: str(v) for k, v in kw.items()}
    m["generator"] = "tests/torch_ref/make_fixtures.py"
    m["torch_version"] = torch.__version__
    return m


def _write(out, name, tensors, metadata, written):
    path = os.path.join(out, name)
    st.save(path, tensors, metadata)
    written[path] = (tensors, metadata)
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(tensors)} tensors)")


# --------------------------------------------------------------------------------------------
# Hand-written cells, used only to cross-check the layout of nn.GRU / nn.RNN / nn.LSTM
# --------------------------------------------------------------------------------------------

def _gru_step(gi, gh, h, c, H):
    """GRU (method section 4): gate order r, z, n; b_hn inside the reset product."""
    r = torch.sigmoid(gi[:, :H] + gh[:, :H])
    z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    return (1 - z) * n + z * h, c


def _rnn_step(gi, gh, h, c, H):
    """Elman RNN, tanh: h' = tanh(W_ih x + b_ih + W_hh h + b_hh)."""
    return torch.tanh(gi + gh), c


def _lstm_step(gi, gh, h, c, H):
    """LSTM, gate order i, f, g, o: c' = f*c + i*g, h' = o*tanh(c')."""
    a = gi + gh
    i = torch.sigmoid(a[:, :H])
    f = torch.sigmoid(a[:, H:2 * H])
    g = torch.tanh(a[:, 2 * H:3 * H])
    o = torch.sigmoid(a[:, 3 * H:])
    c = f * c + i * g
    return o * torch.tanh(c), c


_STEPS = {"gru": _gru_step, "rnn": _rnn_step, "lstm": _lstm_step}


def manual_recurrent(mod, cell, x, h0, c0=None, lengths=None):
    """x [T, B, I], h0 (and for the LSTM c0) [L*dirs, B, H] -> output [T, B, dirs*H],
    h_n [L*dirs, B, H], c_n (None unless LSTM).  With ``lengths`` [B], steps t >= lengths[b]
    carry sample b's state unchanged (both directions) and its output there is zero, which is
    what pack_padded_sequence + pad_packed_sequence give."""
    L, dirs, H = mod.num_layers, 2 if mod.bidirectional else 1, mod.hidden_size
    step = _STEPS[cell]
    T, B = x.shape[0], x.shape[1]
    if lengths is None:
        active = torch.ones(T, B, 1, dtype=torch.bool)
    else:
        active = (torch.arange(T).unsqueeze(1) < torch.as_tensor(lengths).unsqueeze(0)).unsqueeze(2)
    inp = x
    h_n, c_n = [], []
    for layer in range(L):
        outs = []
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")
            w_ih, w_hh = getattr(mod, "weight_ih" + sfx), getattr(mod, "weight_hh" + sfx)
            b_ih, b_hh = getattr(mod, "bias_ih" + sfx), getattr(mod, "bias_hh" + sfx)
            h = h0[layer * dirs + d]
            c = c0[layer * dirs + d] if c0 is not None else None
            steps = range(T) if d == 0 else reversed(range(T))
            o = [None] * T
            for t in steps:
                gi = inp[t] @ w_ih.T + b_ih
                gh = h @ w_hh.T + b_hh
                h_new, c_new = step(gi, gh, h, c, H)
                h = torch.where(active[t], h_new, h)
                if c is not None:
                    c = torch.where(active[t], c_new, c)
                o[t] = torch.where(active[t], h, torch.zeros_like(h))
            outs.append(torch.stack(o))
            h_n.append(h)
            c_n.append(c)
        inp = torch.cat(outs, dim=-1)
    return inp, torch.stack(h_n), (torch.stack(c_n) if c0 is not None else None)


def manual_gru(gru: nn.GRU, x, h0):
    """x [T, B, I], h0 [L*dirs, B, H] -> output [T, B, dirs*H], h_n [L*dirs, B, H]."""
    out, h_n, _ = manual_recurrent(gru, "gru", x, h0)
    return out, h_n


# --------------------------------------------------------------------------------------------
# a, b: recurrent layers (GRU, RNN, LSTM) forward / backward, optionally packed
# --------------------------------------------------------------------------------------------

def make_cell(cell, I, H, L, bidir):
    if cell == "gru":
        return nn.GRU(input_size=I, hidden_size=H, num_layers=L, bidirectional=bidir,
                      batch_first=False)
    if cell == "rnn":
        return nn.RNN(input_size=I, hidden_size=H, num_layers=L, bidirectional=bidir,
                      nonlinearity="tanh", batch_first=False)
    if cell == "lstm":
        return nn.LSTM(input_size=I, hidden_size=H, num_layers=L, bidirectional=bidir,
                       batch_first=False)
    raise ValueError(cell)


def run_cell(mod, cell, x, h0, lengths=None):
    """(output [T, B, dirs*H], h_n) of ``mod`` from h0 (LSTM: c0 = 0, c_n dropped); with
    ``lengths``, through pack_padded_sequence(enforce_sorted=False) and
    pad_packed_sequence(total_length=T) (output zero at padded steps)."""
    state = (h0, torch.zeros_like(h0)) if cell == "lstm" else h0
    inp = x
    if lengths is not None:
        inp = nn.utils.rnn.pack_padded_sequence(x, torch.as_tensor(lengths), batch_first=False,
                                                enforce_sorted=False)
    out, h_n = mod(inp, state)
    if lengths is not None:
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=False,
                                                  total_length=x.shape[0])
    if cell == "lstm":
        h_n = h_n[0]
    return out, h_n


def recurrent_fixture(cell, seed, I, H, L, bidir, T, B, lengths=None):
    torch.manual_seed(seed)
    mod = make_cell(cell, I, H, L, bidir).to(F64)
    dirs = 2 if bidir else 1
    x = torch.randn(T, B, I, dtype=F64, requires_grad=True)
    h0 = (0.5 * torch.randn(L * dirs, B, H, dtype=F64)).requires_grad_(True)
    out, h_n = run_cell(mod, cell, x, h0, lengths)
    g_out = torch.randn_like(out)
    g_hn = torch.randn_like(h_n)
    if lengths is not None:    # dyad's output at padded steps is not zero: no gradient there
        mask = torch.arange(T).unsqueeze(1) < torch.as_tensor(lengths).unsqueeze(0)
        g_out = g_out * mask.unsqueeze(2).to(F64)
    S = (out * g_out).sum() + (h_n * g_hn).sum()
    names = [n for n, _ in mod.named_parameters()]
    params = [p for _, p in mod.named_parameters()]
    grads = torch.autograd.grad(S, [x, h0] + params)

    # cross-checks
    c0 = torch.zeros_like(h0) if cell == "lstm" else None
    m_out, m_hn, _ = manual_recurrent(mod, cell, x, h0, c0, lengths)
    assert torch.allclose(m_out, out, rtol=0, atol=1e-13), f"manual {cell} output differs"
    assert torch.allclose(m_hn, h_n, rtol=0, atol=1e-13), f"manual {cell} h_n differs"
    if cell == "gru":
        assert torch.autograd.gradcheck(lambda a, b: mod(a, b), (x, h0)), "gradcheck failed"
    else:
        assert torch.autograd.gradcheck(lambda a, b: run_cell(mod, cell, a, b, lengths),
                                        (x, h0)), f"{cell} gradcheck failed"
    if lengths is not None:
        # the manual reference also gives the gradients (carried state at padded steps)
        m_out, m_hn, _ = manual_recurrent(mod, cell, x, h0, c0, lengths)
        m_grads = torch.autograd.grad((m_out * g_out).sum() + (m_hn * g_hn).sum(),
                                      [x, h0] + params)
        for g, mg in zip(grads, m_grads):
            assert torch.allclose(g, mg, rtol=0, atol=1e-12), f"manual packed {cell} gradient"

    # The C++ test compares relative errors (1e-12 for values, 1e-10 for gradients, floor 1e-8):
    # a value near zero through cancellation would fail it on rounding alone (seed 31 gave a
    # GRU state of 2.5e-5, off by 1e-16 = 4.5e-12 relative), so keep the fixtures clear of that.
    active_out = out.detach()[out.detach() != 0]
    assert active_out.abs().min() > 1e-4 and h_n.detach().abs().min() > 1e-4, \
        f"{cell} seed {seed}: a state near zero; pick another seed"
    g_all = torch.cat([g.flatten() for g in grads])
    assert g_all[g_all != 0].abs().min() > 1e-5, f"{cell} seed {seed}: a gradient near zero"

    t = {"input": x.detach(), "h0": h0.detach(), "output": out.detach(), "h_n": h_n.detach(),
         "grad_output": g_out, "grad_h_n": g_hn, "grad.input": grads[0], "grad.h0": grads[1]}
    for n, p, g in zip(names, params, grads[2:]):
        t[n] = p.detach().clone()
        t["grad." + n] = g
    meta = dict(input_size=I, hidden_size=H, num_layers=L, bidirectional=int(bidir), T=T, B=B,
                seed=seed, layout="input [T,B,I] (batch_first=False); h0/h_n [L*dirs,B,H], "
                       "index layer*dirs+dir; output [T,B,dirs*H], forward half first",
                scalar="S = sum(output*grad_output) + sum(h_n*grad_h_n)")
    if cell != "gru" or lengths is not None:   # (gru_bi2 / gru_uni1 predate these keys)
        meta["rnn_type"] = cell
    if cell == "lstm":
        meta["lstm"] = "c0 = 0; h_n is the first element of nn.LSTM's (h_n, c_n); no gradient on c_n"
    if lengths is not None:
        t["lengths"] = torch.tensor(lengths, dtype=torch.int64)
        meta["lengths"] = ",".join(str(int(v)) for v in lengths)
        meta["packed"] = ("pack_padded_sequence(enforce_sorted=False) -> module -> "
                          "pad_packed_sequence(total_length=T); output is zero at steps "
                          "t >= lengths[b], grad_output is zero there too; h_n is the state "
                          "after each sample's last active step (both directions)")
    return t, _meta(**meta)


def gru_fixture(seed, I, H, L, bidir, T, B):
    return recurrent_fixture("gru", seed, I, H, L, bidir, T, B)


# --------------------------------------------------------------------------------------------
# c: AdamW + CosineAnnealingLR
# --------------------------------------------------------------------------------------------

def adamw_fixture(seed=3):
    torch.manual_seed(seed)
    lr, betas, eps, wd, t_max, per_epoch = 0.01, (0.9, 0.999), 1e-8, 0.05, 3, 2
    eta_min = 0.1 * lr
    p = nn.Parameter(torch.randn(10, dtype=F64))
    t = {"param0": p.detach().clone()}
    opt = torch.optim.AdamW([p], lr=lr, betas=betas, eps=eps, weight_decay=wd)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t_max, eta_min=eta_min)
    for k in range(1, 7):
        g = torch.randn(10, dtype=F64)
        t[f"grad.{k}"] = g.clone()
        t[f"lr.{k}"] = torch.tensor([opt.param_groups[0]["lr"]], dtype=F64)
        p.grad = g
        opt.step()
        t[f"param.{k}"] = p.detach().clone()
        if k % per_epoch == 0:
            sched.step()
    meta = _meta(lr=lr, beta1=betas[0], beta2=betas[1], betas=f"{betas[0]},{betas[1]}", eps=eps,
                 weight_decay=wd, T_max=t_max, eta_min=eta_min, steps_per_epoch=per_epoch,
                 steps=6, seed=seed,
                 note="lr.k is the lr used by step k; the scheduler steps after every "
                      "steps_per_epoch optimiser steps")
    return t, meta


# --------------------------------------------------------------------------------------------
# d: the DyAD model
# --------------------------------------------------------------------------------------------

def upstream_latent_view(model, x):
    """Eval-mode rec_error with upstream's raw view()s (batch-mixing bug), for the check."""
    with torch.no_grad():
        enc = model.encoder_input(x)
        B = enc.shape[0]
        h = model.encode_states(enc)
        h = h.view(B, -1)
        mu = model.hidden2mean(h)
        h0 = model.latent2hidden(mu).view(model.hidden_factor, B, model.hidden_size)
        out = model.decode(enc[..., :model.decoder_size], h0)
        return (model.outputs2embedding(out) - model.target(x)).pow(2).mean(dim=(1, 2))


def check_batch_independence(model, x):
    """A segment's score must not depend on its batch; upstream's view() does depend."""
    full = dt.score(model, x)
    alone = torch.cat([dt.score(model, x[i:i + 1]) for i in range(x.shape[0])])
    perm = torch.flip(torch.arange(x.shape[0]), dims=[0])
    permuted = dt.score(model, x[perm])[torch.argsort(perm)]
    split = dt.score(model, x, batch_size=3)
    for name, other in [("alone", alone), ("permuted", permuted), ("batch_size=3", split)]:
        assert torch.allclose(full, other, rtol=1e-12, atol=0), f"score depends on batch ({name})"
    if x.shape[0] > 1 and model.hidden_factor > 1:
        up = upstream_latent_view(model, x)
        up_alone = torch.cat([upstream_latent_view(model, x[i:i + 1]) for i in range(x.shape[0])])
        assert not torch.allclose(up, up_alone), "expected upstream's view() to mix the batch"
        assert torch.allclose(up_alone, alone, rtol=1e-12, atol=0)
        print(f"  batch independence ok; upstream view() would change the scores by up to "
              f"{(up - up_alone).abs().max().item():.3g} (relative "
              f"{((up - up_alone).abs() / up_alone).max().item():.2%})")
    else:
        print("  batch independence ok")


def dyad_eval_tensors(model, x):
    model.eval()
    with torch.no_grad():
        log_p, mu, log_v, z, mean_pred = model(x, training=False)
    rec = dt.score(model, x)
    assert torch.equal(z, mu)
    return {"log_p": log_p, "mu": mu, "log_var": log_v, "mean_pred": mean_pred, "rec_error": rec}


def dyad_fixture(seed, E, D, H, L, bidir, Z, B, T, with_training, rnn_type="gru"):
    torch.manual_seed(seed)
    model = dt.DyAD(E, D, H, Z, num_layers=L, bidirectional=bidir, rnn_type=rnn_type).to(F64)
    # Rounded to float32 values: dyad's Dataset stores telemetry as float, so the C++ side
    # sees exactly these inputs and the comparison stays at float64 precision.
    x = torch.randn(B, T, E, dtype=F64).float().double()
    mileage = torch.rand(B, dtype=F64)
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    t = dict(init)
    t["input"] = x
    t["mileage"] = mileage
    t.update(dyad_eval_tensors(model, x))
    # extra segments from a separate generator, so that B=1 fixtures are checked too
    extra = torch.randn(5, T, E, dtype=F64, generator=torch.Generator().manual_seed(seed + 100))
    check_batch_independence(model, torch.cat([x, extra]))
    meta = dict(E=E, D=D, H=H, layers=L, bidirectional=int(bidir), Z=Z, B=B, T=T, seed=seed,
                encoder_columns="input columns 0..E-1 in encoder order",
                decoder_columns="0..D-1", target_columns="D..E-1",
                init="torch default (U(-1/sqrt(fan), 1/sqrt(fan))) after torch.manual_seed(seed)")
    if rnn_type != "gru":      # (the GRU files predate this key; absent means gru)
        meta["rnn_type"] = rnn_type
        if rnn_type == "lstm":
            meta["lstm"] = ("latent from the encoder's h_n only (not c_n); decoder starts from "
                            "h0 = latent2hidden(z), c0 = 0")
    if with_training:
        nll_w, label_w, kl_w, noise, lr, wd, steps = 10.0, 0.01, 0.1, 0.0, 1e-3, 1e-6, 3
        model.train()
        terms = dt.forward_loss(model, x, mileage, kl_w, nll_w, label_w, noise)
        names = [n for n, _ in model.named_parameters()]
        params = [p for _, p in model.named_parameters()]
        grads = torch.autograd.grad(terms["loss"], params)
        for k in ["loss", "nll", "kl", "label"]:
            t[k] = terms[k].detach().reshape(1)
        for n, g in zip(names, grads):
            t["grad." + n] = g
        # a float32 copy gives the same loss to float32 accuracy (sanity of the dtype handling)
        m32 = dt.DyAD(E, D, H, Z, num_layers=L, bidirectional=bidir, rnn_type=rnn_type)
        m32.load_state_dict({k: v.float() for k, v in init.items()})
        l32 = dt.forward_loss(m32, x.float(), mileage.float(), kl_w, nll_w, label_w, noise)
        assert abs(l32["loss"].item() - terms["loss"].item()) < 1e-5 * abs(terms["loss"].item())

        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
        losses = []
        for _ in range(steps):
            terms = dt.forward_loss(model, x, mileage, kl_w, nll_w, label_w, noise)
            opt.zero_grad()
            terms["loss"].backward()
            opt.step()
            losses.append(terms["loss"].item())
        assert losses[0] == t["loss"].item()
        for n, p in model.state_dict().items():
            t["step3." + n] = p.detach().clone()
        t["step_loss"] = torch.tensor(losses, dtype=F64)
        meta.update(nll_weight=nll_w, label_weight=label_w, kl_weight=kl_w,
                    anneal_function="constant", noise_scale=noise, lr=lr, weight_decay=wd,
                    betas="0.9,0.999", eps=1e-8, adam_steps=steps,
                    loss="nll_weight*nll + label_weight*label + kl_weight*kl/B; "
                         "nll SmoothL1(beta=1, mean); kl summed over B x Z; label MSE(mean)",
                    step_loss="loss before each of the adam_steps AdamW steps (same batch)")
    return t, _meta(**meta)


def fivefold_state_dict(seed=5):
    torch.manual_seed(seed)
    model = dt.DyAD.from_preset("fivefold")       # float32
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------------------------

def verify(written):
    for path, (tensors, meta) in written.items():
        got, got_meta = st.load(path)
        assert set(got) == set(tensors), f"{path}: tensor names differ"
        for k, v in tensors.items():
            assert got[k].dtype == v.dtype and got[k].shape == v.shape, f"{path}:{k} dtype/shape"
            assert torch.equal(got[k], v), f"{path}:{k} values differ"
        assert got_meta == (meta or {}), f"{path}: metadata differs"
        if os.path.basename(path) != "torch_state_dict_fivefold.safetensors":
            assert os.path.getsize(path) < 200_000, f"{path} is larger than 200 KB"
    print(f"reloaded and verified {len(written)} files")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output directory (default: %(default)s)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(1)           # bitwise-reproducible reductions
    written = {}
    _write(a.out, "gru_bi2.safetensors", *gru_fixture(1, I=3, H=4, L=2, bidir=True, T=6, B=3),
           written)
    _write(a.out, "gru_uni1.safetensors", *gru_fixture(2, I=2, H=5, L=1, bidir=False, T=7, B=2),
           written)
    for cell, s in [("rnn", 10), ("lstm", 20)]:
        _write(a.out, f"{cell}_bi2.safetensors",
               *recurrent_fixture(cell, s + 1, I=3, H=4, L=2, bidir=True, T=6, B=3), written)
        _write(a.out, f"{cell}_uni1.safetensors",
               *recurrent_fixture(cell, s + 2, I=2, H=5, L=1, bidir=False, T=7, B=2), written)
    for cell, s in [("gru", 41), ("rnn", 42), ("lstm", 43)]:
        _write(a.out, f"{cell}_packed.safetensors",
               *recurrent_fixture(cell, s, I=3, H=4, L=1, bidir=True, T=6, B=3,
                                  lengths=[3, 6, 1]), written)
    _write(a.out, "adamw.safetensors", *adamw_fixture(3), written)
    _write(a.out, "dyad_model.safetensors",
           *dyad_fixture(4, E=6, D=2, H=8, L=2, bidir=True, Z=3, B=4, T=10, with_training=True),
           written)
    _write(a.out, "dyad_model_uni.safetensors",
           *dyad_fixture(6, E=6, D=2, H=6, L=1, bidir=False, Z=2, B=1, T=10,
                         with_training=False), written)
    for cell, s in [("rnn", 7), ("lstm", 8)]:
        _write(a.out, f"dyad_model_{cell}.safetensors",
               *dyad_fixture(s, E=6, D=2, H=8, L=2, bidir=True, Z=3, B=4, T=10,
                             with_training=True, rnn_type=cell), written)
    _write(a.out, "torch_state_dict_fivefold.safetensors", fivefold_state_dict(5), None, written)
    verify(written)


if __name__ == "__main__":
    main()
