"""Concrete Dropout experiments: the synthetic heteroscedastic regression (paper §5.1, the
reference notebook ``concrete-dropout-keras.ipynb``) and the UCI regression sets (paper §5.2,
report §3.1, with the report's MAP-EM ablation), each as ONE batched program: the repeated
runs (data sizes x repetitions, or the 20 standard splits) hold stacked weights (R, in, out)
applied with batched matmuls, and every run draws its own masks. (Stacked weights, not
``torch.func.vmap``: on CPU vmap's per-op overhead made a step 2-3x slower.) Drivers store
their records through ``reprobook.results.Store.run``; figures at the end.

Objective (spec §1.2, §1.5; notebook ``fit_model``): per run, with N its training-set size,
    mean_batch[ exp(-s) (y - mu)^2 + s ]  +  (1/N) sum_layers [ l^2 ||W||^2/(1-p) - 2 K H(p) ],
i.e. twice the negative ELBO per point with the noise learned (tau = 1 in the constants:
weight_regularizer = l^2/N, dropout_regularizer = 2/N).
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .kernels import (DENSE_TEMPERATURE, bernoulli_entropy, concrete_mask,
                      gaussian_mc_log_likelihood, predictive_moments)


# --------------------------------------------------------------------------- models
def _uniform(shape, bound, generator):
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound


class StackedRegressionNet(nn.Module):
    """``runs`` independent MLPs with Concrete dropout on the input of every layer (the
    reference notebook's layout), weights stacked on dim 0 and applied with batched matmuls:
    x (R, B, d_in) -> mean (R, B), log-variance (R, B), regulariser (R,).

    ``heteroscedastic=True``: mean and log-variance heads, both wrapped (5 p's for depth 3).
    Otherwise a mean head and one learned log-variance per run (homoscedastic noise, learned
    tau, no dropout on it). Per layer and run the mask is :func:`concrete_mask` (one per
    element, t = 0.1) and the regulariser that of :func:`concrete_regularizer` with
    weight_regularizer = l^2 and dropout_regularizer = 2 (the caller divides by N).
    Weights start as ``nn.Linear``'s (U(-1/sqrt(fan_in), 1/sqrt(fan_in))), p as 0.1."""

    def __init__(self, runs: int, d_in: int, width: int, depth: int, lengthscale: float,
                 heteroscedastic: bool = True, init_p: float = 0.1, seed: int = 0,
                 temperature: float = DENSE_TEMPERATURE):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        dims = [d_in] + [width] * depth
        shapes = list(zip(dims[:-1], dims[1:])) + [(width, 1)] * (2 if heteroscedastic else 1)
        self.weights = nn.ParameterList(nn.Parameter(_uniform((runs, a, b), a ** -0.5, g))
                                        for a, b in shapes)
        self.biases = nn.ParameterList(nn.Parameter(_uniform((runs, 1, b), a ** -0.5, g))
                                       for a, b in shapes)
        logit = math.log(init_p) - math.log1p(-init_p)
        self.p_logits = nn.ParameterList(nn.Parameter(torch.full((runs,), logit))
                                         for _ in shapes)
        self.log_noise = None if heteroscedastic else nn.Parameter(torch.zeros(runs, 1))
        self.depth, self.runs, self.lengthscale = depth, runs, lengthscale
        self.temperature = temperature

    def ps(self) -> torch.Tensor:
        """(R, L) dropout probabilities, layers in order (hidden..., mean[, log-variance])."""
        return torch.stack([torch.sigmoid(q) for q in self.p_logits], 1)

    def _layer(self, i, x):
        p = torch.sigmoid(self.p_logits[i])[:, None, None]
        x = x * concrete_mask(p, x.shape, self.temperature) / (1 - p)
        return torch.baddbmm(self.biases[i], x, self.weights[i])

    def regularizer(self) -> torch.Tensor:
        """(R,): sum over layers of l^2 ||W||^2/(1-p) - 2 K H(p) (paper Eq. 3), kernels only."""
        total = 0
        for w, q in zip(self.weights, self.p_logits):
            p = torch.sigmoid(q)
            total = total + (self.lengthscale ** 2 * w.pow(2).sum((1, 2)) / (1 - p)
                             - 2.0 * w.shape[1] * bernoulli_entropy(p))
        return total

    def forward(self, x):
        for i in range(self.depth):
            x = F.relu(self._layer(i, x))
        mu = self._layer(self.depth, x).squeeze(-1)
        if self.log_noise is None:
            s = self._layer(self.depth + 1, x).squeeze(-1)
        else:
            s = self.log_noise.expand_as(mu)
        return mu, s, self.regularizer()


def heteroscedastic_loss(mu, s, y):
    """Per run: mean over the batch of exp(-s)(y-mu)^2 + s (2 x Gaussian NLL - log 2pi)."""
    return (torch.exp(-s) * (y - mu) ** 2 + s).mean(-1)


def mc_predict(model: StackedRegressionNet, x: torch.Tensor, samples: int, chunk: int = 20):
    """MC dropout: (R, T, n) means and log-variances, T masks per point (rows repeated)."""
    mus, ss = [], []
    with torch.no_grad():
        for start in range(0, samples, chunk):
            t = min(chunk, samples - start)
            mu, s, _ = model(x.repeat(1, t, *([1] * (x.dim() - 2))))
            mus.append(mu.reshape(x.shape[0], t, x.shape[1]))
            ss.append(s.reshape(x.shape[0], t, x.shape[1]))
    return torch.cat(mus, 1).detach(), torch.cat(ss, 1).detach()


# --------------------------------------------------------------------------- synthetic §5.1
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


# --------------------------------------------------------------------------- UCI §5.2
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
            seed: int = 0, device="cpu") -> dict:
    """Concrete dropout on ``depth`` hidden layers of ``width`` ReLU units plus the mean head
    (depth + 1 learned p's), homoscedastic learned noise, all splits trained together
    through :func:`reprobook.train.fit` (rows of every split shuffled by one permutation per
    epoch). Test RMSE (MC mean) and per-point MC log-likelihood in the original units."""
    from ..train import fit
    d = uci_splits(name, splits)
    n, S = d["x_train"].shape[1], splits
    torch.manual_seed(seed)
    model = StackedRegressionNet(S, d["x_train"].shape[2], width, depth, lengthscale,
                                 heteroscedastic=False, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)

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


# --------------------------------------------------------------------------- drivers
def _spearman(x, y) -> float:
    from scipy.stats import spearmanr
    return float(spearmanr(x, y).statistic)


def synthetic_experiment(store, profile: str, seed: int, settings: dict, device="cpu") -> dict:
    """Record ``cd_synthetic``: paper §5.1 / the reference notebook, every (N, repetition)
    in one batched program. Adds the trend summaries the ledger reads."""
    s = settings["synthetic"]
    cfg = dict(s, seed=seed)

    def work():
        out = run_synthetic(s["sizes"], s["epochs"], s["reps"], s["width"], s["lengthscale"],
                            s["batch"], s["val_size"], s["samples"], s["lr"], seed, device)
        ns = [float(n) for n in out["sizes"]]
        epi = [out["epistemic_std"][str(n)] for n in out["sizes"]]
        ale = [out["aleatoric_std"][str(n)] for n in out["sizes"]]
        hid = [out["p_hidden_mean"][str(n)] for n in out["sizes"]]
        out["rho_epistemic_n"] = _spearman(ns, epi)
        out["rho_p_hidden_n"] = _spearman(ns, hid)
        out["aleatoric_std_largest_n"] = ale[-1]
        out["p_first_max"] = max(out["p"]["in-h1"].values())
        return out, "synthetic y = 2x + 8 + N(0, 1), x ~ N(0, 1) (paper §5.1, reference notebook)"
    return store.run("cd_synthetic", cfg, profile, seed, work)


def uci_experiment(store, profile: str, seed: int, settings: dict, device="cpu") -> dict:
    """Records ``cd_uci_set`` (one per data set, all 20 splits batched) and ``cd_uci`` (their
    summary: RMSE, log-likelihood, p per layer and split, pattern consistency)."""
    s = settings["uci"]
    values, sources = {}, []
    for name in s["sets"]:
        cfg = {k: v for k, v in s.items() if k not in ("sets", "epochs")}
        cfg.update(name=name, epochs=s["epochs"][name], seed=seed)
        rec = store.run("cd_uci_set", cfg, profile, seed, lambda: run_uci(
            name, s["epochs"][name], s["batch"], s["splits"], s["width"], s["depth"],
            s["lengthscale"], s["lr"], s["samples"], seed, device))
        values[name] = rec["values"]
        values[name]["runtime_s"] = rec["provenance"]["runtime_s"]
        sources.append(rec["provenance"]["data_source"])
        ps = np.array(rec["values"]["p_splits"])
        order = [tuple(np.argsort(row)) for row in ps]
        modal = max(set(order), key=order.count)
        values[name]["pattern_fraction"] = order.count(modal) / len(order)
        values[name]["p_increases_with_depth"] = float(np.mean(np.all(np.diff(ps, axis=1) > 0, 1)))
    mapem = {}
    for name in s.get("map_em_sets", []):
        for passes in (2, 3):
            cfg = {"name": name, "passes": passes, "epochs": s["map_em_epochs"][name],
                   "batch": s["map_em_batch"], "splits": s["splits"], "width": s["width"],
                   "depth": s["depth"], "lengthscale": s["lengthscale"], "seed": seed}
            rec = store.run("cd_uci_mapem", cfg, profile, seed, lambda: run_map_em(
                name, cfg["epochs"], cfg["batch"], passes, s["splits"], s["width"], s["depth"],
                s["lengthscale"], seed=seed, device=device))
            mapem.setdefault(name, {})[f"{passes}-pass"] = rec["values"]
    summary = {"sets": values, "map_em": mapem,
               "map_em_dp_two_pass_max": max((v["2-pass"]["dp"] for v in mapem.values()),
                                             default=None),
               "map_em_dp_three_pass_min": min((v["3-pass"]["dp"] for v in mapem.values()),
                                               default=None),
               "pattern_fraction_min": min(v["pattern_fraction"] for v in values.values()),
               "p_increases_with_depth_min": min(v["p_increases_with_depth"]
                                                 for v in values.values()),
               "runtime_s": sum(v["runtime_s"] for v in values.values())}
    cfg = dict(s, seed=seed)
    return store.run("cd_uci", cfg, profile, seed, lambda: (summary, "; ".join(sources)),
                     force=True)


# --------------------------------------------------------------------------- figures
# reference notebook concrete-dropout-keras.ipynb, printed output (mean over 3 repetitions)
NOTEBOOK_P = {10: (0.0769, 0.4038, 0.4036, 0.4035, 0.4039), 25: (0.0688, 0.4036, 0.4034, 0.4031, 0.4039),
              50: (0.0713, 0.3256, 0.3255, 0.3253, 0.3259), 100: (0.0787, 0.2360, 0.2359, 0.2358, 0.2363),
              1000: (0.0747, 0.2306, 0.2249, 0.2243, 0.2334),
              10000: (0.0793, 0.1371, 0.1268, 0.1120, 0.1687)}
NOTEBOOK_STD = {10: (1.321, 1.092), 25: (1.357, 0.820), 50: (1.270, 0.745), 100: (1.247, 0.668),
                1000: (1.321, 0.652), 10000: (1.229, 0.542)}  # (aleatoric, epistemic)


def plot_synthetic(v: dict):
    """p per layer vs N, and epistemic / aleatoric std vs N, ours (solid) beside the
    reference notebook's printed values (dashed)."""
    import matplotlib.pyplot as plt
    ns = v["sizes"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4))
    for i, name in enumerate(LAYERS):
        line, = a1.plot(ns, [v["p"][name][str(n)] for n in ns], "o-", label=name)
        a1.plot(list(NOTEBOOK_P), [p[i] for p in NOTEBOOK_P.values()], "--",
                color=line.get_color(), alpha=0.6)
    a1.set(xscale="log", xlabel="N (training points)", ylabel="learned p",
           title="dropout probability per layer (dashed: reference notebook)")
    a1.legend(fontsize=8)
    for key, j in (("aleatoric_std", 0), ("epistemic_std", 1)):
        line, = a2.plot(ns, [v[key][str(n)] for n in ns], "o-", label=key.replace("_", " "))
        a2.plot(list(NOTEBOOK_STD), [s[j] for s in NOTEBOOK_STD.values()], "--",
                color=line.get_color(), alpha=0.6)
    a2.axhline(1.0, color="grey", lw=0.8, ls=":")
    a2.set(xscale="log", xlabel="N (training points)", ylabel="std",
           title="uncertainty on 1000 validation points")
    a2.legend(fontsize=8)
    fig.tight_layout()
    return fig


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
