"""MNIST with Concrete dropout (paper §4.3 of the NeurIPS version, report §3.2): the 3 x 512 ReLU MLP with
a learned p on the input of every layer (the input, h1, h2 and the softmax layer's input, as in
Alfo5123/ConcreteDropout), beside our own hand-tuned dropout baseline (a small grid of fixed
(p_input, p_hidden) with hard Bernoulli masks, picked on a validation split) and under several
training-set sizes and weight regularisers -- all runs ONE stacked-weight program trained
through ``reprobook.train.fit``, p recorded after every epoch. Also the spatial Concrete dropout
code path on a small conv net (the reference ``spatial-concrete-dropout-keras.ipynb`` layout:
Conv-Conv-pool-Dense-Dense, every layer's input wrapped; yaringal/ConcreteDropout @ 0cb396d).

Objective per run r with N_r training points (paper Eq. 3 in the reference code's constants; the reference spatial example and both
reproductions use these constants for cross-entropy too, although the reference layer's docstring drops the factor 2 for cross-entropy, cf. GitHub issue yaringal/ConcreteDropout #8):
    CE  +  (1/N_r) sum_layers [ l_r^2 ||W||^2/(1-p) - 2 K H(p) ],
the entropy term only for learned p's (a fixed p makes it a constant); l_r^2 = 1e-2 by default.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .kernels import (DENSE_TEMPERATURE, ConcreteDropout, bernoulli_entropy, concrete_mask,
                      concrete_regularization, dropout_probabilities)
from ..stats import spearman
from .models import _uniform

MNIST_LAYERS = ("input", "h1", "h2", "h3-out")


# --------------------------------------------------------------------------- the model
class StackedMLPClassifier(nn.Module):
    """``runs`` independent MLPs d_in -> width^depth -> classes, weights (R, in, out) applied
    with batched matmuls; every layer's input goes through dropout with one p per run and
    layer. ``fixed_p`` (R, L) holds a fixed rate where it is not NaN (hard Bernoulli mask,
    the p_logit gets no gradient, no entropy term) and NaN where p is learned (the relaxed
    mask of :func:`concrete_mask`, t = 0.1). ``lengthscale2`` is l^2, a float or one per run.
    x (R, B, d_in) -> logits (R, B, classes)."""

    def __init__(self, runs: int, d_in: int, width: int, depth: int, classes: int,
                 lengthscale2=1e-2, fixed_p: torch.Tensor | None = None, init_p: float = 0.1,
                 seed: int = 0, temperature: float = DENSE_TEMPERATURE):
        super().__init__()
        if not 0 < init_p < 1:
            raise ValueError(f"init_p must lie in (0, 1) (got {init_p})")
        g = torch.Generator().manual_seed(seed)
        dims = [d_in] + [width] * depth + [classes]
        shapes = list(zip(dims[:-1], dims[1:]))
        self.weights = nn.ParameterList(nn.Parameter(_uniform((runs, a, b), a ** -0.5, g))
                                        for a, b in shapes)
        self.biases = nn.ParameterList(nn.Parameter(_uniform((runs, 1, b), a ** -0.5, g))
                                       for a, b in shapes)
        L = len(shapes)
        fixed = torch.full((runs, L), float("nan")) if fixed_p is None else \
            torch.as_tensor(fixed_p, dtype=torch.float32).clone()
        if fixed.shape != (runs, L):
            raise ValueError(f"fixed_p must have shape ({runs}, {L}); got {tuple(fixed.shape)}")
        learn = torch.isnan(fixed)
        if ((fixed[~learn] < 0) | (fixed[~learn] >= 1)).any():
            raise ValueError("fixed dropout rates must lie in [0, 1)")
        self.register_buffer("learn", learn)
        self._learned_only, self._fixed_only = bool(learn.all()), bool((~learn).all())
        self.register_buffer("fixed", torch.nan_to_num(fixed, nan=0.0))
        l2 = torch.as_tensor(lengthscale2, dtype=torch.float32).expand(runs).clone()
        self.register_buffer("lengthscale2", l2)
        self.p_logits = nn.Parameter(torch.full((runs, L), math.log(init_p) - math.log1p(-init_p)))
        self.temperature, self.runs, self.mc = temperature, runs, False

    def ps(self) -> torch.Tensor:
        """(R, L): the learned p where learned, the fixed p elsewhere."""
        return torch.where(self.learn, torch.sigmoid(self.p_logits), self.fixed)

    def _drop(self, i: int, x: torch.Tensor) -> torch.Tensor:
        p = self.ps()[:, i, None, None]
        if self._learned_only:
            keep = concrete_mask(p, x.shape, self.temperature)
        elif self._fixed_only:
            keep = (torch.rand_like(x) >= p).to(x.dtype)
        else:
            keep = torch.where(self.learn[:, i, None, None],
                               concrete_mask(p, x.shape, self.temperature),
                               (torch.rand_like(x) >= p).to(x.dtype))
        return x * keep / (1 - p)

    def forward(self, x):
        """Masks in training mode (and in eval mode when ``self.mc``); else the plain net
        (inverted dropout: no rescaling at test)."""
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if self.training or self.mc:
                x = self._drop(i, x)
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = F.relu(x)
        return x

    def regularizer(self) -> torch.Tensor:
        """(R,): sum over layers of l^2 ||W||^2/(1-p) - 2 K H(p) [learned p only] (paper Eq. 3)."""
        p = self.ps()
        total = 0
        for i, w in enumerate(self.weights):
            ent = torch.where(self.learn[:, i], bernoulli_entropy(p[:, i]), torch.zeros_like(p[:, i]))
            total = total + (self.lengthscale2 * w.pow(2).sum((1, 2)) / (1 - p[:, i])
                             - 2.0 * w.shape[1] * ent)
        return total


def predict_logits(model: StackedMLPClassifier, x: torch.Tensor, chunk: int = 2000):
    """(R, n, classes) deterministic logits of every run on the same rows x (n, d)."""
    model.eval()
    with torch.no_grad():
        out = [model(x[i:i + chunk].expand(model.runs, -1, -1))
               for i in range(0, len(x), chunk)]
    return torch.cat(out, 1)


def convergence_epoch(trace, frac: float = 0.1) -> int:
    """First epoch from which p stays within ``frac`` of its total movement |p_T - p_0| of its
    final value p_T (the "epochs to convergence" of a p-vs-epoch curve, report Fig. 2)."""
    t = np.asarray(trace, dtype=float)
    if t.ndim != 1 or len(t) < 2:
        raise ValueError("convergence_epoch needs a 1-D trace of at least 2 epochs")
    tol = frac * abs(t[-1] - t[0]) + 1e-12
    outside = np.nonzero(np.abs(t - t[-1]) > tol)[0]
    return int(outside[-1] + 1) if len(outside) else 0


# --------------------------------------------------------------------------- the study
def mnist_arrays(pool: int, val: int, test: int, seed: int = 0) -> dict:
    """MNIST flattened: a training pool (the first ``pool`` rows of a seeded permutation of the
    60,000 training images; nested subsets take its first N_r rows), a validation split of
    ``val`` further rows of that permutation, and ``test`` rows of the official test set."""
    from ..data import load_mnist
    if pool + val > 60000 or test > 10000 or min(pool, val, test) < 1:
        raise ValueError(f"pool + val must be <= 60000 and test <= 10000 (got {pool}, {val}, {test})")
    d = load_mnist(download=False)
    perm = torch.randperm(60000, generator=torch.Generator().manual_seed(seed))
    x, y = d["x_train"].flatten(1)[perm], d["y_train"][perm]
    return {"x": x[:pool], "y": y[:pool], "x_val": x[pool:pool + val], "y_val": y[pool:pool + val],
            "x_test": d["x_test"].flatten(1)[:test], "y_test": d["y_test"][:test],
            "source": d["source"]}


def run_mnist(sizes, baselines, reg_lengthscale2, width: int = 512, depth: int = 3,
              epochs: int = 20, batch: int = 128, lr: float = 1e-3, lengthscale2: float = 1e-2,
              val: int = 10000, test: int = 10000, seed: int = 0, device="cpu") -> dict:
    """One stacked program holding (i) Concrete dropout at every training-set size of ``sizes``
    (l^2 = ``lengthscale2``), (ii) Concrete dropout at the largest size under each l^2 of
    ``reg_lengthscale2``, (iii) fixed dropout at the largest size for each (p_input, p_hidden)
    of ``baselines``. An epoch is max(sizes) rows: a run with N_r rows reads row (pos mod N_r)
    of its nested subset, so every run takes the same Adam steps. p of every run recorded
    after every epoch; deterministic (weight-scaled) accuracy on validation and test."""
    from ..train import fit
    n_max = max(sizes)
    d = mnist_arrays(n_max, val, test, seed)
    runs = ([("concrete", n, lengthscale2) for n in sizes]
            + [("concrete", n_max, l2) for l2 in reg_lengthscale2]
            + [("fixed", n_max, lengthscale2)] * len(baselines))
    L = depth + 1
    fixed = torch.full((len(runs), L), float("nan"))
    for j, (p_in, p_hid) in enumerate(baselines):
        fixed[len(runs) - len(baselines) + j] = torch.tensor([p_in] + [p_hid] * depth)
    torch.manual_seed(seed)
    model = StackedMLPClassifier(len(runs), 784, width, depth, 10,
                                 [l2 for _, _, l2 in runs], fixed, seed=seed)
    n_r = torch.tensor([n for _, n, _ in runs], device=device)
    X, Y = d["x"].to(device), d["y"].to(device)

    def loss_fn(m, pos):
        rows = pos[None, :] % n_r[:, None]                      # (R, B) rows of each subset
        logits = m(X[rows])
        ce = F.cross_entropy(logits.flatten(0, 1), Y[rows].flatten(), reduction="none")
        per_run = ce.view(len(runs), -1).mean(1) + m.regularizer() / n_r
        return per_run.sum(), {"ce": ce.mean()}

    def on_epoch(epoch, m):
        return {"p": m.ps().detach().cpu().tolist()}

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    t0 = time.perf_counter()
    hist = fit(model, (torch.arange(n_max),), loss_fn, opt, epochs=epochs, batch=batch,
               seed=seed, device=device, on_epoch=on_epoch)
    train_s = time.perf_counter() - t0
    acc = {}
    for split in ("val", "test"):
        logits = predict_logits(model, d[f"x_{split}"].to(device))
        acc[split] = (logits.argmax(-1).cpu() == d[f"y_{split}"]).float().mean(1).tolist()
    return _summarise_mnist(runs, baselines, reg_lengthscale2, np.array(hist["p"]), acc,
                            train_s, hist), d["source"]


def _summarise_mnist(runs, baselines, reg_l2, p_hist, acc, train_s, hist) -> dict:
    """The ledger's keys. p_hist: (epochs, R, L)."""
    n_max = max(n for _, n, _ in runs)
    S = len(runs) - len(reg_l2) - len(baselines)
    main = S - 1                                          # concrete at the largest size
    final = p_hist[-1]
    layers = MNIST_LAYERS[:final.shape[1]] if final.shape[1] == 4 else \
        tuple(f"layer{i}" for i in range(final.shape[1]))
    out = {"train_s": round(train_s, 2), "epochs": len(p_hist), "n_train": n_max,
           "final_ce": hist["ce"][-1]}
    out["p"] = {k: float(v) for k, v in zip(layers, final[main])}
    out["p_vs_epoch"] = {k: p_hist[:, main, j].tolist() for j, k in enumerate(layers)}
    out["p_by_size"] = {k: {str(runs[r][1]): float(final[r, j]) for r in range(S)}
                        for j, k in enumerate(layers)}
    out["p_mean_by_size"] = {str(runs[r][1]): float(final[r].mean()) for r in range(S)}
    out["acc_by_size"] = {str(runs[r][1]): 100 * acc["test"][r] for r in range(S)}
    sizes = [runs[r][1] for r in range(S)]
    rhos = [spearman(sizes, final[:S, j]) for j in range(final.shape[1])] if S >= 3 else []
    out["p_rho_size_per_layer"] = {k: float(r) for k, r in zip(layers, rhos)}
    out["accuracy"] = 100 * acc["test"][main]
    # our hand-tuned dropout: the grid point with the best validation accuracy
    b0 = len(runs) - len(baselines)
    val_b = [acc["val"][b0 + j] for j in range(len(baselines))]
    best = int(np.argmax(val_b))
    out["baselines"] = {f"{pi:g}/{ph:g}": {"val": 100 * acc["val"][b0 + j],
                                            "test": 100 * acc["test"][b0 + j]}
                        for j, (pi, ph) in enumerate(baselines)}
    out["tuned_dropout"] = {"p": list(baselines[best]), "val": 100 * val_b[best],
                            "test": 100 * acc["test"][b0 + best]}
    out["accuracy_gap_vs_tuned"] = out["accuracy"] - out["tuned_dropout"]["test"]
    # which layer converges first (report Fig. 2)
    if len(p_hist) >= 2:
        conv = {k: convergence_epoch(p_hist[:, main, j]) for j, k in enumerate(layers)}
        out["convergence_epoch"] = conv
    # the regulariser's effect: concrete at the largest size under each l^2
    reg = {f"{l2:g}": {"p": final[S + j].tolist(), "p_mean": float(final[S + j].mean()),
                       "acc": 100 * acc["test"][S + j]} for j, l2 in enumerate(reg_l2)}
    reg[f"{runs[main][2]:g}"] = {"p": final[main].tolist(), "p_mean": float(final[main].mean()),
                                 "acc": out["accuracy"]}
    out["regularisers"] = reg
    out["reg_range"] = {"p_mean": float(np.ptp([v["p_mean"] for v in reg.values()])),
                        "acc": float(np.ptp([v["acc"] for v in reg.values()]))}
    # has p stopped moving? the largest change of a regulariser run's mean p over its last
    # fifth of epochs (the main run's index is ``main``, the others follow ``S``)
    k = max(1, len(p_hist) // 5)
    mean_p = p_hist.mean(2)                               # (epochs, R)
    cols = [main, *range(S, S + len(reg_l2))]
    out["reg_p_last_fifth_change"] = float(np.abs(mean_p[-1, cols] - mean_p[-1 - k, cols]).max()) \
        if len(p_hist) > k else float("nan")
    return out


def run_mnist_width(widths, n: int, epochs: int, batch: int = 128, lr: float = 1e-3,
                    lengthscale2: float = 1e-2, depth: int = 3, seed: int = 0,
                    device="cpu") -> dict:
    """The paper's width study (§4.3 of the NeurIPS version; its figure is reproduced in tpl2go/advml-team5@d719b2c:writeup.pdf Fig. 8): Concrete dropout on N = ``n`` rows for each
    hidden width (one stacked model per width: the shapes differ), learned p per layer."""
    from ..train import fit
    d = mnist_arrays(n, 1, 1, seed)
    X, Y = d["x"].to(device), d["y"].to(device)
    out = {}
    for width in widths:
        torch.manual_seed(seed)
        model = StackedMLPClassifier(1, 784, width, depth, 10, lengthscale2, seed=seed)

        def loss_fn(m, xb, yb):
            return F.cross_entropy(m(xb[None])[0], yb) + m.regularizer()[0] / n

        fit(model, (X, Y), loss_fn, torch.optim.Adam(model.parameters(), lr=lr), epochs=epochs,
            batch=batch, seed=seed, device=device)
        out[str(width)] = model.ps()[0].detach().cpu().tolist()
    hidden = {w: float(np.mean(p[1:-1])) for w, p in out.items()}
    return {"p_by_width": out, "p_hidden_by_width": hidden, "epochs": epochs, "n_train": n}, \
        d["source"]


# --------------------------------------------------------------------------- spatial conv net
class SpatialConvNet(nn.Module):
    """The reference spatial example's layout (yaringal/ConcreteDropout @ 0cb396d, spatial-concrete-dropout-keras.ipynb), channels ``c1, c2``: every layer's
    input wrapped in :class:`ConcreteDropout` -- the two Conv2d ones spatial (one mask per
    example and channel, t = 2/3, K = in_channels), the two Linear ones per element (t = 0.1)."""

    def __init__(self, c1: int = 32, c2: int = 64, hidden: int = 128, n: int = 60000,
                 lengthscale2: float = 1e-2):
        super().__init__()
        wr, dr = lengthscale2 / n, 2.0 / n
        self.conv1 = ConcreteDropout(nn.Conv2d(1, c1, 3), wr, dr)
        self.conv2 = ConcreteDropout(nn.Conv2d(c1, c2, 3), wr, dr)
        self.fc1 = ConcreteDropout(nn.Linear(c2 * 12 * 12, hidden), wr, dr)
        self.fc2 = ConcreteDropout(nn.Linear(hidden, 10), wr, dr)
        for m in self.modules():
            if isinstance(m, ConcreteDropout):
                m.mc = False  # weight-scaled prediction at test

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def run_spatial(train: int, test: int, epochs: int, c1: int, c2: int, hidden: int = 128,
                batch: int = 128, lr: float = 1e-3, seed: int = 0, device="cpu") -> dict:
    """Train :class:`SpatialConvNet` with Adam on ``train`` MNIST images (regularisers with
    N = ``train``); learned p per layer after every epoch and test accuracy."""
    from ..data import load_mnist
    from ..train import fit
    d = load_mnist(download=False)
    torch.manual_seed(seed)
    model = SpatialConvNet(c1, c2, hidden, train)

    def loss_fn(m, xb, yb):
        logits = m(xb)
        return F.cross_entropy(logits, yb) + concrete_regularization(m), \
            {"acc": (logits.argmax(1) == yb).float().mean()}

    t0 = time.perf_counter()
    hist = fit(model, (d["x_train"][:train], d["y_train"][:train]), loss_fn,
               torch.optim.Adam(model.parameters(), lr=lr), epochs=epochs, batch=batch,
               seed=seed, device=device,
               on_epoch=lambda e, m: {"p": dropout_probabilities(m)})
    train_s = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(d["x_test"][i:min(i + 1000, test)].to(device)).argmax(1).cpu()
                          for i in range(0, test, 1000)])
    names = ("conv1", "conv2", "fc1", "fc2")
    p = dropout_probabilities(model)
    return {"p": dict(zip(names, p)), "p_vs_epoch": {k: [h[j] for h in hist["p"]]
                                                     for j, k in enumerate(names)},
            "accuracy": 100 * float((pred == d["y_test"][:test]).float().mean()),
            "epochs": epochs, "n_train": train,
            "channels": [c1, c2], "train_s": round(train_s, 2)}, d["source"]


# --------------------------------------------------------------------------- drivers and figures
def plot_mnist(v: dict, spatial: dict | None = None):
    """p per layer vs epoch (largest N), p per layer vs N, and the spatial net's p vs epoch."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3 if spatial else 2, figsize=(13 if spatial else 9, 3.3))
    for k, tr in v["p_vs_epoch"].items():
        axes[0].plot(range(1, len(tr) + 1), tr, "o-", ms=3, label=k)
    axes[0].set(xlabel="epoch", ylabel="learned p", title=f"MLP, N = {v['n_train']}")
    for k, by in v["p_by_size"].items():
        axes[1].plot([int(n) for n in by], list(by.values()), "o-", label=k)
    axes[1].set(xscale="log", xlabel="training-set size N", ylabel="learned p",
                title="p per layer vs N (same steps)")
    if spatial:
        for k, tr in spatial["p_vs_epoch"].items():
            axes[2].plot(range(1, len(tr) + 1), tr, "o-", ms=3, label=k)
        axes[2].set(xlabel="epoch", ylabel="learned p", title="spatial conv net")
        axes[2].legend(fontsize=8)
    for ax in axes[:2]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
