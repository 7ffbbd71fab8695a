"""Figures and tables of the GSC chapter: Philipp, Song & Carbonell (2018), "Gradients explode -
Deep networks are shallow" (arXiv 1712.05577), Fig. 1 (Gaussian noise) and Fig. 3 (CIFAR-10),
as reproduced by Flynn, Cann & Tasker (report Fig. 2 and Fig. 4).
"""
from __future__ import annotations

import numpy as np



def plot_noise(summary: dict):
    """Three panels as paper Fig. 1 / report Fig. 2: GSC, pre-activation std, sign diversity."""
    import matplotlib.pyplot as plt
    from reprobook.plotting import arch_color

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for arch in summary["archs"]:
        med = summary["median"][arch]
        k = np.arange(1, len(med["gsc"]) + 1)
        axes[0].plot(k, med["gsc"], color=arch_color(arch), label=arch)
        axes[0].fill_between(k, summary["q10"][arch], summary["q90"][arch],
                             color=arch_color(arch), alpha=0.15, lw=0)
        j = np.arange(1, len(med["preact_std"]) + 1)
        axes[1].plot(j, med["preact_std"], color=arch_color(arch))
        axes[2].plot(j, med["sign_diversity"], color=arch_color(arch))
    axes[0].set(yscale="log", xlabel="linear layer (from input)", ylabel="GSC(k, 0)",
                title="(A) gradient scale coefficient")
    axes[1].set(xlabel="nonlinearity layer (from input)", ylabel="std over data",
                title="(B) pre-activation std")
    axes[2].set(xlabel="nonlinearity layer (from input)", ylabel="min(P,N)/(P+N)",
                title="(C) pre-activation sign diversity", ylim=(0, 0.52))
    axes[0].legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def plot_cifar(summary: dict):
    """Five panels as paper Fig. 3 / report Fig. 4 (B-E), effective depth in both variants
    (operator-norm and GSC-weighted residual sizes, see :mod:`.depth`)."""
    import matplotlib.pyplot as plt
    from ..plotting import arch_color

    fig, axes = plt.subplots(1, 5, figsize=(19, 3.6))
    for arch, h in summary["hist"].items():
        ep = np.arange(1, len(h["train_error"]) + 1)
        c = arch_color(arch)
        axes[0].plot(ep, h["train_error"], color=c, label=arch)
        axes[1].plot(ep, h["gsc_L0"], color=c)
        axes[2].plot(ep, h["eff_depth"], color=c)
        axes[3].plot(ep, h.get("eff_depth_gsc", [np.nan] * len(ep)), color=c)
        op = summary["op_change"][arch]
        axes[4].plot(np.arange(1, len(op) + 1), op, color=c)
    axes[0].axhline(0.9, color="grey", lw=0.8, ls=":")
    axes[0].set(xlabel="epoch", ylabel="training error", title="(B) classification error")
    axes[1].set(xlabel="epoch", yscale="log", title="(C) GSC(L, 0)")
    axes[2].set(xlabel="epoch", title="(D) effective depth, operator norm")
    axes[3].set(xlabel="epoch", title="(D') effective depth, GSC-weighted")
    axes[4].set(xlabel="linear layer (from input)", yscale="log",
                title="(E) ||W(t) - W(0)||_op")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def noise_table(noise: dict, paper: dict, report: dict):
    """Paper / report / ours per architecture for Fig. 1A-C (report §3.1); ``paper`` and
    ``report`` map an architecture to what the ledger says each published."""
    import pandas as pd
    archs = noise["archs"]
    return pd.DataFrame({
        "paper (Fig. 1A)": [paper.get(a, "—") for a in archs],
        "report (Fig. 2)": [report.get(a, "—") for a in archs],
        "ours: rate / layer": [f"{noise['rate'][a]:.3f} ± {noise['rate_sd'][a]:.3f}" for a in archs],
        "ours: R² of log-linear fit": [f"{noise['log_r2'][a]:.3f}" for a in archs],
        "ours: median GSC at layer L": [f"{noise['gsc_input'][a]:.3g}" for a in archs],
        "ours: pre-act std, last": [f"{noise['std_last'][a]:.3f}" for a in archs],
        "ours: sign diversity, last / first": [f"{noise['sd_ratio'][a]:.2f}" for a in archs],
    }, index=archs)


def cifar_table(cres: dict):
    """Per architecture: learning rate, final error, trained or not, GSC(L, 0) first and last
    epoch, GSC growth rate at the end, effective depth in both variants (max over training)."""
    import pandas as pd
    h = cres["hist"]
    return pd.DataFrame({
        "best learning rate": cres["best_lr"],
        "final training error": cres["final_error"],
        f"trained (error < {cres['trained_error_below']})": {a: "yes" if t else "no — excluded"
                                                             for a, t in cres["trained"].items()},
        "GSC(L,0) first epoch": {a: v[0] for a, v in ((a, x["gsc_L0"]) for a, x in h.items())},
        "GSC(L,0) last epoch": cres["gsc_last"],
        "GSC rate / layer, last epoch": cres["gsc_rate_end"],
        "effective depth (operator norm)": cres["eff_depth"],
        "effective depth (GSC-weighted)": cres["eff_depth_gsc"],
        "weight change, output half / input half": cres["later_over_earlier"],
    })


def tau_table(cres: dict):
    """Effective depth of the final networks at three thresholds tau, both variants."""
    import pandas as pd
    rows = {}
    for a in cres["eff_depth_taus"]:
        for tau, v in cres["eff_depth_taus"][a].items():
            rows.setdefault(f"operator norm, τ = {tau}", {})[a] = v
        for tau, v in cres["eff_depth_gsc_taus"][a].items():
            rows.setdefault(f"GSC-weighted, τ = {tau}", {})[a] = v
    return pd.DataFrame(rows).T


VARIANT_NAMES = {"A": "pre-norm, Gaussian, variant A (default)",
                 "B": "pre-norm, Gaussian, variant B", "orthogonal": "pre-norm, orthogonal init",
                 "post-norm": "post-norm (Linear → tanh → LN)"}


def ablation_table(abl: dict):
    """Layer-tanh's growth rate (mean ± sd over replicates) and median GSC at layer L per
    setup variant (experiment ``gsc_ablation``)."""
    import pandas as pd
    return pd.DataFrame({VARIANT_NAMES.get(n, n): {
        "rate / layer": f"{abl['rate'][n]:.3f} ± {abl['rate_sd'][n]:.3f}",
        "GSC at layer L": f"{abl['gsc_input'][n]:.3g}"} for n in abl["rate"]}).T
