"""The chapter's figures and tables: ESD + MP fit, log-log tails, the batch-size sweep, the
fixed-steps control, LeNet5 against the paper and report, pretrained alpha histograms, speed.

Martin & Mahoney (ICML 2019, arXiv 1901.08276); report Pratama 2019 §3. Published numbers shown
beside ours are claim rows of the ledger (``reprobook.book.published_table``), never typed here.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .experiments import FC_SHAPES, PROFILES
from .mp import MPFit, fit_mp, mp_density
from .powerlaw import PowerLawFit, fit_powerlaw
from .spectra import Spectrum, rank_tolerance


def _finish(ax, spec: Spectrum, title):
    ax.set_xlabel(f"eigenvalue of {spec.units}")
    ax.set_ylabel("density")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_esd(spec: Spectrum, mp: MPFit | None = None, ax=None, bins: int = 100, title=None,
             xlim=None):
    """Density histogram of the ESD with the fitted MP density (as the authors' RMT_Util.plot_ESD_and_fit)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    mp = mp or fit_mp(spec)
    ev = spec.evals if xlim is None else spec.evals[spec.evals <= xlim]
    ax.hist(ev, bins=bins, density=True, alpha=0.6, label="ESD")
    if mp.ok:
        lam = np.linspace(max(mp.lambda_minus, 1e-12), mp.lambda_plus, 400)
        # the histogram is normalised over the shown eigenvalues; scale MP to match
        share = len(spec.evals) / max(len(ev), 1)
        ax.plot(lam, mp_density(lam, spec.Q, mp.sigma) * share, color="C3",
                label=f"MP fit, $\\sigma$={mp.sigma:.3g}")
        ax.axvline(mp.edge_tw, color="C3", ls=":", lw=1, label="TW edge")
    return _finish(ax, spec, title)


def plot_tail(spec: Spectrum, pl: PowerLawFit | None = None, ax=None, bins: int = 100, title=None):
    """Log-log density of the ESD (100 log-spaced bins) with the power-law fit over its tail."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    pl = pl or fit_powerlaw(spec.evals, tol=rank_tolerance(spec))
    ev = spec.evals[spec.evals > rank_tolerance(spec)]
    edges = np.logspace(np.log10(ev.min()), np.log10(ev.max()), bins + 1)
    dens, _ = np.histogram(ev, bins=edges, density=True)
    mid = np.sqrt(edges[1:] * edges[:-1])
    ax.loglog(mid[dens > 0], dens[dens > 0], ".", label="ESD")
    if pl.ok:
        lam = np.logspace(np.log10(pl.xmin), np.log10(ev.max()), 50)
        share = pl.n_tail / len(ev)
        ax.loglog(lam, share * (pl.alpha - 1) / pl.xmin * (lam / pl.xmin) ** (-pl.alpha),
                  color="C3", label=f"PL fit, $\\alpha$={pl.alpha:.2f}")
        ax.axvline(pl.xmin, color="C3", ls=":", lw=1, label="$x_{min}$")
    return _finish(ax, spec, title)


def sweep_table(out: dict, layer: str) -> pd.DataFrame:
    """Our sweep per batch size: phase, alpha, soft rank, spikes, stable rank, sigma and the KS
    distance of the ESD to its epoch-0 ESD (did the layer move at all?). The published values
    are in the chapter's claim rows (``reprobook.book.published_table``)."""
    ours, rows = out[layer], {}
    for b in out["batches"]:
        k = str(b)
        rows[b] = {"phase": ours["phase"].get(k), "alpha": ours["alpha"].get(k),
                   "soft rank": ours["soft_rank"].get(k), "spikes": ours["spikes"].get(k),
                   "stable rank": ours["stable_rank"].get(k), "sigma": ours["sigma_mp"].get(k),
                   "KS to epoch 0": ours.get("ks_init", {}).get(k)}
    df = pd.DataFrame(rows).T
    df.index.name = "batch"
    return df


def plot_alpha_histograms(tables: dict):
    """Histogram of the layers' PL alpha for each analysed network (clipped at 12)."""
    import matplotlib.pyplot as plt

    n = max(len(tables), 1)
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3), squeeze=False)
    for ax, (name, df) in zip(axes[0], tables.items()):
        ok = df[df["fit_ok"]]
        ax.hist(ok["alpha"].clip(upper=12), bins=np.arange(1, 12.5, 0.5))
        ax.axvspan(2, 4, color="C2", alpha=0.15, label="2 ≤ α ≤ 4")
        ax.set(title=f"{name}: {len(ok)} layers", xlabel="PL α (clipped at 12)", ylabel="layers")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def speed_table(null_seconds: float, pre: dict, mini: dict, n_train: int) -> pd.DataFrame:
    """Speed figures from this run: analysis times, MiniAlexNet epoch times
    scaled from ``n_train`` images to 50,000, and the projected full sweep on this machine."""
    speed = {"analyse a 4096×9216 Gaussian matrix": f"{null_seconds:.1f} s"}
    for name, sec in pre["seconds"].items():
        speed[f"analyse every layer of {name} ({len(pre['tables'][name])} layers)"] = f"{sec:.1f} s"
    per_epoch = {b: sec * 50000 / n_train for b, sec in mini["epoch_s"].items()}
    for b, sec in per_epoch.items():
        speed[f"MiniAlexNet epoch at batch {b}, scaled to 50,000 images"] = f"{sec:.0f} s"
    full = PROFILES["full"]["htsr_minialexnet"]
    days = sum(per_epoch[str(b)] * full["epochs"] * full["runs"]
               for b in full["batches"] if str(b) in per_epoch) / 86400
    speed["projected full sweep on this machine (batch sizes timed here)"] = f"{days:.0f} days"
    return pd.DataFrame({"time": speed})


def plot_sweep_esds(out: dict, layer: str, xlim=None):
    """One ESD + MP panel per batch size (report §3.3 figures)."""
    import matplotlib.pyplot as plt

    bs = out["batches"]
    n, m = {"fc1": (4096, 384), "fc2": (384, 192)}[layer]
    cols = min(4, len(bs))
    rows = -(-len(bs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    for ax in axes.flat[len(bs):]:
        ax.set_visible(False)
    for ax, b in zip(axes.flat, bs):
        spec = Spectrum(np.asarray(out["evals"][layer][str(b)]), N=n, M=m)
        plot_esd(spec, ax=ax, bins=60, title=f"{layer.upper()}, batch {b}: {out[layer]['phase'][str(b)]}",
                 xlim=xlim)
    fig.tight_layout()
    return fig


def plot_sweep_metrics(out: dict):
    """Accuracy (report §3.4) and the FC1/FC2 spectral metrics against batch size: PL alpha,
    MP soft rank and the stable rank relative to the largest batch (the authors' figure)."""
    import matplotlib.pyplot as plt

    bs = out["batches"]
    k = [str(b) for b in bs]
    fig, ax = plt.subplots(1, 4, figsize=(16, 3.2))
    ax[0].plot(bs, [out["train_acc"][i] for i in k], "o-", label="train")
    ax[0].plot(bs, [out["test_acc"][i] for i in k], "s-", label="test")
    ax[0].set(xscale="log", xlabel="batch size", ylabel="accuracy", title="Generalisation gap")
    ax[0].legend()
    for layer in ("fc1", "fc2"):
        ax[1].plot(bs, [out[layer]["alpha"][i] for i in k], "o-", label=layer.upper())
        ax[2].plot(bs, [out[layer]["soft_rank"][i] for i in k], "o-", label=layer.upper())
        sr = [out[layer]["stable_rank"][i] for i in k]
        ax[3].plot(bs, np.asarray(sr) / sr[-1], "o-", label=layer.upper())
    ax[1].set(xscale="log", xlabel="batch size", ylabel=r"power-law $\alpha$", title="PL exponent")
    ax[2].set(xscale="log", xlabel="batch size", ylabel=r"$\lambda^+/\lambda_{max}$", title="MP soft rank")
    ax[3].set(xscale="log", xlabel="batch size", ylabel="stable rank / at largest batch",
              title="Stable rank (relative)")
    for a in ax[1:]:
        a.legend()
    fig.tight_layout()
    return fig



def plot_fixed_steps(fixed: dict, mini: dict):
    """Test accuracy against batch size at a fixed number of epochs (the sweep) and at a fixed
    number of SGD steps (the control), with the steps each point took."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.2))
    bs = mini["batches"]
    ax[0].plot(bs, [mini["test_acc"][str(b)] for b in bs], "o-", label="same epochs (sweep)")
    fb = fixed["batches"]
    ax[0].plot(fb, [fixed["test_acc"][str(b)] for b in fb], "s-",
               label=f"same steps ({fixed['steps'][str(fb[0])]})")
    ax[0].axhline(0.1, color="gray", ls=":", lw=1, label="chance")
    ax[0].set(xscale="log", xlabel="batch size", ylabel="test accuracy", title="Generalisation")
    ax[0].legend(fontsize=8)
    ax[1].plot(bs, [mini["steps"][str(b)] for b in bs], "o-", label="same epochs (sweep)")
    ax[1].plot(fb, [fixed["steps"][str(b)] for b in fb], "s-", label="same steps (control)")
    ax[1].set(xscale="log", yscale="log", xlabel="batch size", ylabel="SGD steps",
              title="Steps taken")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def fixed_steps_table(fixed: dict) -> pd.DataFrame:
    """Per batch size of the control: steps, accuracies, FC1/FC2 soft rank, spikes and the KS
    distance to the epoch-0 ESD."""
    rows = {}
    for b in fixed["batches"]:
        k = str(b)
        rows[b] = {"steps": fixed["steps"][k], "train acc": fixed["train_acc"][k],
                   "test acc": fixed["test_acc"][k]}
        for layer in FC_SHAPES:
            for key in ("soft_rank", "spikes", "ks_init"):
                rows[b][f"{layer} {key}"] = fixed[layer][key][k]
    return pd.DataFrame(rows).T.rename_axis("batch")
