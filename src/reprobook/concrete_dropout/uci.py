"""UCI regression (paper §4.2 of the NeurIPS version, report §3.1): Boston, kin8nm and wine-red with the
20 standard splits of Gal & Ghahramani (2016) trained together (stacked weights through
``reprobook.train.fit``), the no-dropout control, the report's MAP-EM alternation as an
ablation, and the p figure (registered as ``cd_uci`` in :mod:`.experiments`).
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from .kernels import gaussian_mc_log_likelihood
from .models import StackedRegressionNet, heteroscedastic_loss, mc_predict

UCI_SETS = {"boston": "bostonHousing", "kin8nm": "kin8nm", "wine-red": "wine-quality-red"}
UCI_LAYERS = ("in-h1", "h1-h2", "h2-mean")


def uci_splits(name: str, splits: int = 20) -> dict:
    """The ``splits`` standard splits of a UCI set stacked on dim 0, standardised by each
    split's training statistics (population std, zero std -> 1; Gal & Ghahramani 2016):
    x_train (S, n, d), y_train (S, n), x_test, y_test (standardised x, raw y), y_mean, y_std (S,)."""
    from ..data import load_uci
    if name not in UCI_SETS:
        raise ValueError(f"unknown UCI set {name!r}; choose one of {', '.join(UCI_SETS)}")
    parts = [load_uci(UCI_SETS[name], s) for s in range(splits)]
    sizes = {(len(d["y_train"]), len(d["y_test"])) for d in parts}
    if len(sizes) != 1:
        raise ValueError(f"{name}: splits differ in size {sorted(sizes)}; cannot stack them")
    xtr = torch.stack([d["x_train"] for d in parts])
    ytr = torch.stack([d["y_train"] for d in parts])
    xm, xs = xtr.mean(1, keepdim=True), xtr.std(1, unbiased=False, keepdim=True)
    xs = torch.where(xs > 0, xs, torch.ones_like(xs))
    ym, ys = ytr.mean(1), ytr.std(1, unbiased=False)
    return {"x_train": (xtr - xm) / xs, "y_train": (ytr - ym[:, None]) / ys[:, None],
            "x_test": (torch.stack([d["x_test"] for d in parts]) - xm) / xs,
            "y_test": torch.stack([d["y_test"] for d in parts]), "y_mean": ym, "y_std": ys,
            "source": parts[0]["source"].replace(" split 0", f" splits 0-{splits - 1}")}


def run_uci(name: str, epochs: int, batch: int, splits: int = 20, width: int = 50,
            depth: int = 2, lengthscale: float = 1e-2, lr: float = 1e-3, samples: int = 100,
            seed: int = 0, device="cpu", fixed_p: float | None = None) -> dict:
    """Concrete dropout on ``depth`` hidden layers of ``width`` ReLU units plus the mean head
    (depth + 1 learned p's), homoscedastic learned noise, all splits trained together
    through :func:`reprobook.train.fit` (rows of every split shuffled by one permutation per
    epoch). Test RMSE (MC mean) and per-point MC log-likelihood in the original units.
    ``fixed_p`` (the no-dropout control): every p starts at and stays at that value (1e-6:
    dropout effectively off), with the same prior on the weights."""
    from ..train import fit
    d = uci_splits(name, splits)
    n, S = d["x_train"].shape[1], splits
    torch.manual_seed(seed)
    model = StackedRegressionNet(S, d["x_train"].shape[2], width, depth, lengthscale,
                                 heteroscedastic=False, seed=seed,
                                 **({"init_p": fixed_p} if fixed_p is not None else {}))
    if fixed_p is not None:
        model.p_logits.requires_grad_(False)
    opt = torch.optim.Adam([q for q in model.parameters() if q.requires_grad], lr=lr)

    def loss_fn(m, xb, yb):  # xb (B, S, d): the split axis goes first for the stacked net
        mu, s, reg = m(xb.transpose(0, 1))
        return (heteroscedastic_loss(mu, s, yb.T) + reg / n).sum() / S

    t0 = time.perf_counter()
    hist = fit(model, (d["x_train"].transpose(0, 1), d["y_train"].T), loss_fn, opt,
               epochs=epochs, batch=batch, seed=seed, device=device)
    train_s = time.perf_counter() - t0
    mu, s = mc_predict(model, d["x_test"].to(device), samples)
    ym, ys = d["y_mean"].double()[:, None, None], d["y_std"].double()[:, None, None]
    mu, s = mu.cpu().double() * ys + ym, s.cpu().double() + 2 * torch.log(ys)
    yt = d["y_test"].double()
    rmse = [float(((mu[r].mean(0) - yt[r]) ** 2).mean().sqrt()) for r in range(S)]
    ll = [float(gaussian_mc_log_likelihood(yt[r], mu[r], s[r])) for r in range(S)]
    ps = model.ps().detach().cpu()
    out = {"rmse": float(np.mean(rmse)), "rmse_se": float(np.std(rmse) / math.sqrt(S)),
           "ll": float(np.mean(ll)), "ll_se": float(np.std(ll) / math.sqrt(S)),
           "rmse_splits": rmse, "ll_splits": ll, "p_splits": ps.tolist(),
           "p": {k: float(v) for k, v in zip(UCI_LAYERS, ps.mean(0))},
           "p_sd": {k: float(v) for k, v in zip(UCI_LAYERS, ps.std(0))},
           "noise_std": float(((0.5 * model.log_noise.detach()[:, 0]).exp() * d["y_std"]).mean()),
           "final_loss": hist["loss"][-1], "train_s": round(train_s, 2), "n_train": n}
    return out, d["source"]


def run_map_em(name: str, epochs: int, batch: int, passes: int, splits: int = 20,
               width: int = 50, depth: int = 2, lengthscale: float = 1e-2, lr: float = 1e-3,
               lr_p: float = 0.1, init_range=(0.05, 0.5), seed: int = 0, device="cpu") -> dict:
    """The report's UCI "variational (MAP)-EM" alternation (report §3.1; Alfo5123/ConcreteDropout
    experiments/uci/uci.ipynb), on our objective and the standard splits: each epoch makes one
    pass of Adam(lr) over weights and p, then one over the log-noise (tau) alone, and with
    ``passes=3`` a third pass over the p's alone at ``lr_p``. Minibatches of ``batch`` rows drawn
    with replacement, p initialised uniformly on the logit scale in ``init_range``, as there.
    Returns the mean |p_final - p_init| over layers and splits and the final p's."""
    if passes not in (2, 3):
        raise ValueError(f"passes must be 2 or 3 (got {passes})")
    d = uci_splits(name, splits)
    x, y = d["x_train"].to(device), d["y_train"].to(device)
    n = x.shape[1]
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = StackedRegressionNet(splits, x.shape[2], width, depth, lengthscale,
                                 heteroscedastic=False, seed=seed).to(device)
    lo, hi = (math.log(v) - math.log1p(-v) for v in init_range)
    with torch.no_grad():
        for q in model.p_logits:
            q.copy_(lo + (hi - lo) * torch.rand(q.shape, generator=g))
    p0 = model.ps().detach().clone()
    ps_ = list(model.p_logits)
    weights = list(model.weights) + list(model.biases)
    opts = [torch.optim.Adam(weights + ps_, lr=lr), torch.optim.Adam([model.log_noise], lr=lr),
            torch.optim.Adam(ps_, lr=lr_p)][:passes]
    rows = torch.arange(splits, device=device)[:, None]
    for _ in range(epochs):
        for opt in opts:
            for _ in range(math.ceil(n / batch)):
                idx = torch.randint(n, (splits, batch), generator=g).to(device)
                mu, s, reg = model(x[rows, idx])
                loss = (heteroscedastic_loss(mu, s, y[rows, idx]) + reg / n).sum()
                model.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    p1 = model.ps().detach()
    return {"dp": float((p1 - p0).abs().mean()), "p_init": p0.tolist(), "p_final": p1.tolist(),
            "p": {k: float(v) for k, v in zip(UCI_LAYERS, p1.mean(0))}}


def plot_uci(summary: dict):
    """Learned p per layer and split for each UCI set (the paper's and report's p figure)."""
    import matplotlib.pyplot as plt
    sets = list(summary["sets"])
    fig, axes = plt.subplots(1, len(sets), figsize=(3.6 * len(sets), 3.2), squeeze=False)
    for ax, name in zip(axes[0], sets):
        ps = np.array(summary["sets"][name]["p_splits"])
        for j, layer in enumerate(UCI_LAYERS):
            ax.plot(np.arange(len(ps)), ps[:, j], "o-", ms=3, label=layer)
        ax.set(title=name, xlabel="split", ylabel="learned p")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
