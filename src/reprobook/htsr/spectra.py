"""Spectra of weight matrices: the empirical spectral density (ESD) and rank metrics.

Martin & Mahoney, "Traditional and Heavy-Tailed Self Regularization in Neural Network Models"
(ICML 2019, arXiv 1901.08276; long version arXiv 1810.01075). The paper body could not be
read here, so the definitions follow the authors' code (CalculatedContent/ImplicitSelfRegularization @ 4268440, RMT_Util.ipynb)
and WeightWatcher (CalculatedContent/WeightWatcher @ d6fd015):

- :func:`esd` -- eigenvalues of ``W^T W`` (RMT_Util.get_eigenvalues; conv layers as weightwatcher.py conv2D_Wmats);
- :func:`stable_rank`, :func:`rank_loss` -- rank metrics (RMT_Util.stable_rank; weightwatcher.py apply_norm_metrics);
- :func:`ks_distance` -- two-sample KS distance between two ESDs (how far training moved a
  layer away from its epoch-0 spectrum; our measure).

Units: eigenvalues are those of the unnormalised ``W^T W`` (the authors' code and
WeightWatcher) unless ``normalize=True`` asks for ``X = W^T W / N``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Spectrum:
    """Eigenvalues (ascending, float64) of one layer, with its shape facts."""

    evals: np.ndarray
    N: int  # long side
    M: int  # short side
    rf: int = 1  # receptive field: number of pooled conv slices
    normalized: bool = False
    eps: float = float(np.finfo(np.float32).eps)  # of the rank rule: see :func:`rank_tolerance`

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
    """Eigenvalues of ``W^T W`` (as the authors' RMT_Util.get_eigenvalues), oriented so that N >= M.

    Dense ``(out, in)``: one matrix. Conv ``(out, in, k...)``: ``conv="pool"`` (WeightWatcher's
    default, weightwatcher.py conv2D_Wmats) cuts the kernel into its ``prod(k)`` slices ``W[:, :, i, j]`` and pools
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
    return Spectrum(np.sort(ev.numpy()), N=n, M=m, rf=rf, normalized=normalize)


def rank_tolerance(spec: Spectrum) -> float:
    """Eigenvalues below this are numerically zero: (sigma_max * N * eps)^2, the matrix-rank
    rule of numpy/LAPACK on squared singular values, with float32's eps whatever dtype the
    weights were stored in.

    The eigenvalues are computed in float64; the rule asks which of them a float32 matrix
    cannot tell from zero. The stored dtype's eps instead (float16 1e-3, bfloat16 8e-3) times
    N exceeds 1 for a 512-wide layer and calls a random matrix rank-deficient, and float64's
    would call a rank-deficient float32 matrix full rank once upcast: so one model saved as
    float32, float16, bfloat16 or float64 (.pt or .safetensors) gets the same phases, moved
    only by what the rounding of its values changes."""
    return float(spec.evals.max()) * (spec.N * spec.eps) ** 2 if len(spec.evals) else 0.0


def rank_loss(spec: Spectrum) -> int:
    """Number of numerically zero eigenvalues (WeightWatcher's ``rank_loss``)."""
    return int((spec.evals <= rank_tolerance(spec)).sum())


def stable_rank(evals: np.ndarray) -> float:
    """R_s = ||W||_F^2 / ||W||_2^2 = sum(lambda) / lambda_max (the authors' RMT_Util.stable_rank)."""
    return float(evals.sum() / evals.max())



def ks_distance(a, b) -> float:
    """Two-sample Kolmogorov-Smirnov distance sup_x |F_a(x) - F_b(x)| between the empirical
    CDFs of two sets of eigenvalues (e.g. a trained layer's ESD and its epoch-0 ESD).
    0 for identical spectra, 1 for spectra with disjoint supports."""
    a = np.sort(np.asarray(a, dtype=np.float64))
    b = np.sort(np.asarray(b, dtype=np.float64))
    if len(a) == 0 or len(b) == 0:
        raise ValueError("ks_distance needs two non-empty sets of eigenvalues")
    x = np.concatenate([a, b])
    fa = np.searchsorted(a, x, side="right") / len(a)
    fb = np.searchsorted(b, x, side="right") / len(b)
    return float(np.abs(fa - fb).max())
