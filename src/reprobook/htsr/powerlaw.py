"""The power-law fit of an ESD tail, rho(lambda) ~ lambda^-alpha.

Martin & Mahoney (ICML 2019, arXiv 1901.08276): the heavy-tailed phase is read from the
exponent alpha of a power law fitted to the tail of the ESD (report eq. (2), Pratama 2019;
the authors' RMT_Util.fit_powerlaw). The estimator is Clauset-Shalizi-Newman's: the closed-form MLE
alpha = 1 + n / sum ln(lambda_i / x_min) for each candidate x_min, and x_min minimising the
KS distance. alpha above ~8 (WeightWatcher's README) means there is no power-law tail worth
reporting: a random matrix's "alpha" is large and meaningless.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch


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
    empirical CDF and 1 - (x / x_k)^(1 - alpha_k) (Clauset-Shalizi-Newman; WeightWatcher's WW_powerlaw.WWFit).
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
    """Power-law fit rho(lambda) ~ lambda^-alpha of the ESD tail (Clauset-Shalizi-Newman).

    Numerically zero eigenvalues (below ``tol``) are dropped. x_min minimises the KS distance
    over all candidates (:func:`ks_scan`, the criterion of the ``powerlaw`` package, which we
    run ourselves because the package's own xmin search builds one object per candidate and
    is slow on thousands of eigenvalues); then ``powerlaw.Fit`` with that fixed x_min gives
    alpha, its standard error and D, with ``parameter_ranges={'alpha': [1, 1000]}``:
    powerlaw 2.0.0 otherwise silently caps alpha at 3. ``xmax="max"`` truncates at lambda_max
    as the paper's code did; the default (None) is WeightWatcher's current choice.
    A fit that cannot be made (fewer than 3 distinct values) is flagged ``ok=False`` with a
    reason and alpha NaN -- never a sentinel like -1 (WeightWatcher's failed-fit value) that would pollute means.
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



ALTERNATIVES = ("exponential", "stretched_exponential", "lognormal", "truncated_power_law")


def best_distribution(evals: np.ndarray, xmin: float, xmax=None, p_max: float = 0.05) -> str:
    """The distribution that best describes the tail above ``xmin`` (the authors'
    ``best_dist``): the power law unless an alternative beats it in the normalised
    log-likelihood ratio test of Clauset-Shalizi-Newman (Vuong) with p <= ``p_max``; among
    several such alternatives, the one with the most negative ratio. Our reading of the
    authors' rule; uses the ``powerlaw`` package's ``distribution_compare``."""
    import powerlaw

    x = np.asarray(evals, dtype=np.float64)
    x = x[x > 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = powerlaw.Fit(x, xmin=xmin, xmax=xmax, parameter_ranges={"alpha": [1.0, 1000.0]},
                           verbose=0)
        best, best_r = "power_law", 0.0
        for alt in ALTERNATIVES:
            r, p = fit.distribution_compare("power_law", alt, normalized_ratio=True)
            if np.isfinite(r) and r < 0 and p <= p_max and r < best_r:
                best, best_r = alt, float(r)
    return best
