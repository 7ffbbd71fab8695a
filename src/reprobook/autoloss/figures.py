"""The AutoLoss chapter's figures (Xu et al., ICLR 2019): the lambda sweep of paper Fig. 1,
controller training curves, the sensitivity study (median and IQR of test MSE per controller
setting) and the frozen random controllers of the report (§6.1). Each function takes a record's
``values`` and returns a matplotlib Figure; nothing here computes a result."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..plotting import PALETTE
from .sensitivity import SETTINGS


def lambda_sweep(values: dict, metric: str, title: str, ax=None):
    """DGS test (and validation) score vs lambda, AutoLoss's test score at its lambdas."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 3.6))
    sweep = values["dgs_sweep"]
    keys = sorted(sweep, key=float)  # records store keys as text
    test_key = "test" if "test" in sweep[keys[0]] else "test_error"
    ax.semilogx([float(k) for k in keys], [sweep[k][test_key] for k in keys], "o-",
                label="DGS (test)")
    auto = values["autoloss_sweep"]
    pts = {float(k): float(np.mean(v)) for k, v in auto.items()}
    ax.semilogx(sorted(pts), [pts[k] for k in sorted(pts)], "D", ms=7, label="AutoLoss (test)")
    if "noise_floor_test" in values:
        ax.axhline(values["noise_floor_test"], color="gray", lw=.8, ls=":",
                   label="test noise floor")
    ax.set(xlabel="λ", ylabel=metric, title=title)
    ax.legend(fontsize=8)
    return fig


def controller_curves(values: dict, ylabel: str, ax=None, names=None):
    """Best validation metric per training episode, one line per controller lane."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 3.6))
    curves = np.array(values["controller"]["episode_best_valid"])
    for i, lane in enumerate(values["controller"]["lanes"]):
        if names is not None and lane["name"] not in names:
            continue
        ax.plot(curves[:, i], lw=1, label=f"{lane['name']} λ={lane['lam']:g} s{lane['seed']}")
    ax.set(xlabel="episode", ylabel=ylabel, title="controller training")
    ax.legend(fontsize=6)
    return fig


def sensitivity(values: dict):
    """Median (dot) and IQR (bar) of AutoLoss's test MSE over (controller seed, trial) runs per
    setting; the official setting's IQR shaded; the best baseline as a dashed line."""
    sens = values["sensitivity"]
    per = sens["settings"]
    names = [n for n in SETTINGS if n in per] + [n for n in per if n not in SETTINGS]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(names) + 1.2))
    y = np.arange(len(names))[::-1]
    med = np.array([per[n]["median"] for n in names])
    lo, hi = np.array([per[n]["q25"] for n in names]), np.array([per[n]["q75"] for n in names])
    colors = [PALETTE[1] if n.startswith("drop:") else PALETTE[0] for n in names]
    ax.hlines(y, lo, hi, colors=colors, lw=3, alpha=.6)
    ax.scatter(med, y, color=colors, zorder=3)
    for n, yy in zip(names, y):
        ax.scatter(per[n]["values"], np.full(len(per[n]["values"]), yy), s=6, color="k",
                   alpha=.35, zorder=2)
    ax.axvspan(per["official"]["q25"], per["official"]["q75"], color=PALETTE[0], alpha=.1)
    ax.axvline(sens["best_baseline_mse"], color=PALETTE[3], ls="--", lw=1,
               label=f"best baseline ({sens['best_baseline']})")
    ax.axvline(values["noise_floor_test"], color="gray", ls=":", lw=.8, label="noise floor")
    ax.set_yticks(y, names)
    ax.set(xlabel="test MSE (median and IQR over controller seeds × trials)",
           title=f"sensitivity: spread of medians {sens['spread_of_medians']:.3f}, "
                 f"|AutoLoss − best baseline| {sens['gap_to_best_baseline']:.3f}")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def frozen_controllers(values: dict, ax=None):
    """Test accuracy of frozen (untrained) random controllers, raw vs normalised features."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 3.2))
    for j, name in enumerate(("raw", "normalised")):
        acc = np.array(values["frozen"][name]["acc"])
        jitter = np.linspace(-.15, .15, len(acc))
        ax.scatter(np.full(len(acc), j) + jitter, acc, s=12, color=PALETTE[j], alpha=.7)
        ax.hlines([acc.min(), acc.max()], j - .25, j + .25, color=PALETTE[j], lw=1)
    ax.axhspan(.30, .80, color="gray", alpha=.08, label="report: 30-80% raw")
    ax.axhspan(.72, .78, color=PALETTE[1], alpha=.15, label="report: 72-78% normalised")
    ax.set_xticks([0, 1], ["raw features", "normalised"])
    ax.set(ylabel="test accuracy", title="frozen random controllers (classification)")
    ax.legend(fontsize=7, loc="lower left")
    return fig


def gan_is_curves(values: dict, ax=None):
    """Inception score (our MNIST classifier) vs training step for every D:G schedule and the
    online controllers (paper Fig. 2); the real-data IS and the rescaled 8.6 threshold dashed."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3.8))
    steps = values["curve_steps"]
    for i, (name, curve) in enumerate(values["curves"].items()):
        auto = not name.startswith("gan-")
        label = name if auto else "GAN " + name[4:].replace("-", ":")
        ax.plot(steps, curve, lw=2 if auto else 1, ls="-" if auto else "--",
                color=PALETTE[i % len(PALETTE)], label=label)
    ax.axhline(values["classifier"]["is_real"], color="gray", lw=.8,
               label="real test images")
    ax.axhline(values["threshold_is"], color="gray", lw=.8, ls=":",
               label="8.6 × real/9.5")
    ax.set(xlabel="update step (D or G)", ylabel="inception score (our classifier)",
           title="MNIST DCGAN: IS vs schedule")
    ax.legend(fontsize=7, ncol=2)
    return fig


def gan_table(values: dict, paper_is: dict):
    """One row per GAN schedule or controller: the paper's IS, ours (mean of the last three
    evaluations, and the best), the share of D updates, the steps to the threshold IS."""
    import pandas as pd
    rows = {k: {"paper IS": paper_is.get(k, ""),
                "ours: IS (last 3 evals)": f"{values['is'][k]:.3f}",
                "ours: best IS": f"{values['is_best'][k]:.3f}",
                "D share": f"{values['d_fraction'][k]:.2f}",
                "steps to threshold": values["steps_to_threshold"][k] if values["reached"][k]
                else "not reached"} for k in values["is"]}
    return pd.DataFrame(rows).T


def transfer_table(transfer: dict):
    """Paper Table 2 as we ran it: test error per transfer data set and method."""
    import pandas as pd
    rows = {(f"data set {k} (seed {seed})", m): {"ours: test error": err[m]}
            for (k, err), seed in zip(transfer["error"].items(), transfer["data_seeds"])
            for m in err}
    table = pd.DataFrame(rows).T
    table.index.names = ["data", "method"]
    return table
