"""The statistics verdicts rely on, defined once: rank correlation, paired intervals."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats as _st


def spearman(x, y) -> float:
    """Spearman's rank correlation (ties get average ranks). Degenerate input (fewer than 3
    pairs, or a constant side) has no correlation: NaN, which a verdict reads as
    *inconclusive*, never as 0."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(_st.spearmanr(x, y).statistic)


def paired_bootstrap(a, b, n_boot: int = 2000, seed: int = 0, level: float = 0.95):
    """Mean of ``a - b`` over paired units (rows: test images, splits) and its percentile
    bootstrap interval, resampling units. ``a``, ``b``: arrays of shape (units,) or
    (runs, units), in which case each resample keeps the units paired across runs and
    averages over runs. Returns (mean, low, high)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    d = d.reshape(-1, d.shape[-1])
    per_unit = d.mean(0)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, per_unit.size, size=(n_boot, per_unit.size))
    boots = per_unit[idx].mean(1)
    q = (1 - level) / 2
    return float(per_unit.mean()), float(np.quantile(boots, q)), float(np.quantile(boots, 1 - q))


def paired_t(a, b, level: float = 0.95):
    """Mean of ``a - b`` over paired runs (seeds, splits) and its Student-t interval.
    One pair has no interval: (mean, NaN, NaN)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    if d.size < 2:
        return float(d.mean()) if d.size else math.nan, math.nan, math.nan
    half = _st.t.ppf(0.5 + level / 2, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half)
