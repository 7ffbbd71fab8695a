"""Synthetic heteroscedastic regression (paper §4.1 of the NeurIPS version; the reference notebook
``concrete-dropout-keras.ipynb``, yaringal/ConcreteDropout @ 0cb396d): every
(data size, repetition) run trained together with stacked weights, the driver that stores
record ``cd_synthetic``, and its figure beside the notebook's printed values.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from .kernels import gaussian_mc_log_likelihood, predictive_moments
from .models import StackedRegressionNet, heteroscedastic_loss, mc_predict

def synthetic_data(n: int, generator: torch.Generator):
    """y = 2x + 8 + eps, x ~ N(0,1), eps ~ N(0,1) (reference notebook ``gen_data``)."""
    x = torch.randn(n, 1, generator=generator)
    return x, 2 * x[:, 0] + 8 + torch.randn(n, generator=generator)


def run_synthetic(sizes, epochs, reps: int, width: int, lengthscale: float = 1e-4,
                  batch: int = 20, val_size: int = 1000, samples: int = 20, lr: float = 1e-3,
                  seed: int = 0, device="cpu") -> dict:
    """All (size, repetition) runs trained together. Run r takes epochs_r * ceil(N_r/batch)
    Adam steps (the notebook's count), each on ``batch`` indices drawn uniformly with
    replacement from its own N_r points; its parameters are frozen into the result at its
    last step while the longer runs go on."""
    if len(sizes) != len(epochs):
        raise ValueError("sizes and epochs must have the same length")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    cells = [(n, e) for n, e in zip(sizes, epochs) for _ in range(reps)]
    R, nmax = len(cells), max(sizes)
    X, Y = torch.zeros(R, nmax, 1), torch.zeros(R, nmax)
    Xv, Yv = torch.zeros(R, val_size, 1), torch.zeros(R, val_size)
    for r, (n, _) in enumerate(cells):
        x, y = synthetic_data(n + val_size, g)
        X[r, :n], Y[r, :n], Xv[r], Yv[r] = x[:n], y[:n], x[n:], y[n:]
    n_r = torch.tensor([n for n, _ in cells], dtype=torch.float32)
    steps_r = torch.tensor([e * math.ceil(n / batch) for n, e in cells])
    model = StackedRegressionNet(R, 1, width, 3, lengthscale, seed=seed).to(device)
    X, Y, n_r, steps_r = X.to(device), Y.to(device), n_r.to(device), steps_r.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    final = [v.detach().clone() for v in model.parameters()]
    rows = torch.arange(R, device=device)[:, None]
    t0 = time.perf_counter()
    for step in range(1, int(steps_r.max()) + 1):
        idx = (torch.rand(R, batch, device=device) * n_r[:, None]).long()
        mu, s, reg = model(X[rows, idx])
        loss = (heteroscedastic_loss(mu, s, Y[rows, idx]) + reg / n_r).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done = steps_r == step
        if bool(done.any()):
            with torch.no_grad():
                for f, v in zip(final, model.parameters()):
                    f[done] = v[done]
    train_s = time.perf_counter() - t0
    with torch.no_grad():
        for f, v in zip(final, model.parameters()):
            v.copy_(f)
        ps = model.ps().cpu()
    mu, s = mc_predict(model, Xv.to(device), samples)
    mu, s, Yv = mu.cpu().double(), s.cpu().double(), Yv.double()
    per_run = []
    for r in range(R):
        m, epi, ale = predictive_moments(mu[r], s[r])
        per_run.append({"rmse": float(((m - Yv[r]) ** 2).mean().sqrt()),
                        "ll": float(gaussian_mc_log_likelihood(Yv[r], mu[r], s[r])),
                        "epistemic_var": float(epi.mean()), "aleatoric_var": float(ale.mean()),
                        "p": ps[r].tolist()})
    return _summarise_synthetic(cells, per_run, train_s)


LAYERS = ("in-h1", "h1-h2", "h2-h3", "h3-mean", "h3-logvar")


def _summarise_synthetic(cells, per_run, train_s) -> dict:
    out = {"train_s": round(train_s, 2), "runs": per_run, "sizes": sorted({n for n, _ in cells})}
    for key in ("rmse", "ll"):
        out[key] = {}
    out["epistemic_std"], out["aleatoric_std"] = {}, {}
    out["p"] = {name: {} for name in LAYERS}
    for n in out["sizes"]:
        rs = [r for (m, _), r in zip(cells, per_run) if m == n]
        out["rmse"][str(n)] = float(np.mean([r["rmse"] for r in rs]))
        out["ll"][str(n)] = float(np.mean([r["ll"] for r in rs]))
        # the notebook's convention: sqrt of the mean variance over repetitions
        out["epistemic_std"][str(n)] = float(np.mean([r["epistemic_var"] for r in rs]) ** 0.5)
        out["aleatoric_std"][str(n)] = float(np.mean([r["aleatoric_var"] for r in rs]) ** 0.5)
        pm = np.mean([r["p"] for r in rs], 0)
        for name, v in zip(LAYERS, pm):
            out["p"][name][str(n)] = float(v)
    out["p_hidden_mean"] = {n: float(np.mean([out["p"][k][n] for k in LAYERS[1:3]]))
                            for n in out["rmse"]}
    return out


def plot_synthetic(v: dict, notebook_p: dict | None = None, notebook_std: dict | None = None):
    """p per layer vs N, and epistemic / aleatoric std vs N, ours (solid) beside the
    reference notebook's printed values (dashed): ``notebook_p`` {layer: {N: p}} and
    ``notebook_std`` {"aleatoric_std"|"epistemic_std": {N: std}}, read from the ledger."""
    import matplotlib.pyplot as plt
    ns = v["sizes"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4))
    for name in LAYERS:
        line, = a1.plot(ns, [v["p"][name][str(n)] for n in ns], "o-", label=name)
        ref = (notebook_p or {}).get(name, {})
        a1.plot([float(n) for n in ref], list(ref.values()), "--", color=line.get_color(),
                alpha=0.6)
    a1.set(xscale="log", xlabel="N (training points)", ylabel="learned p",
           title="dropout probability per layer (dashed: reference notebook)")
    a1.legend(fontsize=8)
    for key in ("aleatoric_std", "epistemic_std"):
        line, = a2.plot(ns, [v[key][str(n)] for n in ns], "o-", label=key.replace("_", " "))
        ref = (notebook_std or {}).get(key, {})
        a2.plot([float(n) for n in ref], list(ref.values()), "--", color=line.get_color(),
                alpha=0.6)
    a2.axhline(1.0, color="grey", lw=0.8, ls=":")
    a2.set(xscale="log", xlabel="N (training points)", ylabel="std",
           title="uncertainty on 1000 validation points")
    a2.legend(fontsize=8)
    fig.tight_layout()
    return fig
