"""The Marchenko-Pastur (MP) law and its fit to an ESD: bulk edges, spikes, soft rank.

Martin & Mahoney (ICML 2019, arXiv 1901.08276; arXiv 1810.01075). The MP law is the
report's eq. (1) (Pratama 2019) and the authors' RMT_Util.marchenko_pastur_pdf; the fit is WeightWatcher's
(weightwatcher.py mp_fit, CalculatedContent/WeightWatcher @ d6fd015), done on singular values; the Tracy-Widom edge allowance is WeightWatcher's (weightwatcher.py L4720-4726); the MP
soft rank lambda_+ / lambda_max is the authors' (RMT_Util.mp_soft_rank). The paper's own equation numbers could not be
checked (its body was not readable).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .spectra import Spectrum


def mp_edges(Q: float, sigma: float) -> tuple[float, float]:
    """lambda_-, lambda_+ = sigma^2 (1 -/+ 1/sqrt(Q))^2 (report eq. (1); RMT_Util.calc_lambda_plus)."""
    r = 1.0 / math.sqrt(Q)
    return sigma**2 * (1 - r) ** 2, sigma**2 * (1 + r) ** 2


def mp_density(lam, Q: float, sigma: float) -> np.ndarray:
    """rho_MP(lambda) = Q / (2 pi sigma^2) sqrt((l+ - l)(l - l-)) / l on [l-, l+] (RMT_Util.marchenko_pastur_pdf)."""
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
    """Fit sigma of the MP law with Q fixed at N/M (WeightWatcher's method, weightwatcher.py mp_fit, with
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
       Tracy-Widom allowance of weightwatcher.py L4720-4726, in the rescaled units). Soft rank lambda_+/lambda_max.
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

