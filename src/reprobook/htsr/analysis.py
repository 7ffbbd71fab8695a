"""The analyser: every HT-SR metric of every layer of a model, a state_dict or a matrix.

Martin & Mahoney (ICML 2019, arXiv 1901.08276): one row per layer with the ESD's power-law
alpha, MP fit, spikes and soft rank (authors' RMT_Util.ipynb; WeightWatcher's mp_fit), stable rank,
WeightWatcher's norm columns (weightwatcher.py apply_norm_metrics) and our phase label. Conv layers are cut into
their kernel slices, as WeightWatcher does (weightwatcher.py conv2D_Wmats).
"""
from __future__ import annotations

import math
import re
import time

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from .mp import fit_mp
from .phases import phase
from .powerlaw import fit_powerlaw
from .spectra import Spectrum, esd, rank_loss, rank_tolerance, stable_rank


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



def time_analysis(obj, repeat: int = 1) -> float:
    """Seconds to analyse every layer of ``obj`` (best of ``repeat``)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        analyze(obj)
        best = min(best, time.perf_counter() - t0)
    return best



LAYER_KEYS = ("alpha", "alpha_sigma", "xmin", "D", "sigma_mp", "lambda_plus", "lambda_max",
              "spikes", "soft_rank", "stable_rank", "phase", "mp_ok", "fit_ok", "Q")


def layer_values(spec: Spectrum, xmax=None) -> dict:
    """The metrics of one spectrum that the experiments store in their records."""
    d = describe(spec, xmax)
    return {k: d[k] for k in LAYER_KEYS}


_layer_values = layer_values  # the pre-package name
