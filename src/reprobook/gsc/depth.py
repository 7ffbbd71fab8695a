"""Effective depth of Philipp, Song & Carbonell (2018), "Gradients explode - Deep networks are
shallow" (arXiv 1712.05577): the residual trick applied to a trained MLP, W_l(t) = W_l(0) +
Delta W_l, and the largest lambda whose lambda-residual paths still carry a non-negligible
part of the gradient (paper Fig. 3D; report §3.2).

The paper's exact estimator could not be retrieved; we implement two
variants, both here, with the threshold ``tau`` always a parameter (never hard-coded):

- operator-norm residual size (ours, from the weight-change operator norm of paper Fig. 3E, report §3.2): rho_l = ||Delta W_l||_op / ||W_l(0)||_op;
- GSC-weighted residual size (our variant): rho_l = ||Delta W_l||_op ||f_(l+1)|| / ||f_l||,
  averaged quadratically over data (f_(l+1) is the input of linear layer l, f_l its output),
  i.e. the relative change of f_l that Delta W_l can cause, in the sense of GSC(l+1, l).

Then c_lambda = e_lambda(rho_1..rho_L), the elementary symmetric polynomial (our estimator of the λ-residual paths of report §3.2), and
the effective depth is max{lambda : c_lambda >= tau} (tau ours).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .kernels import quadratic_mean
from .models import MLP

TAU = 1e-6  # our default threshold (the paper's could not be retrieved); every function takes ``tau``


def elementary_symmetric(rho, max_order: int | None = None) -> np.ndarray:
    """e_0..e_L of rho_1..rho_L by the DP E_j <- E_j + rho E_{j-1}."""
    rho = np.asarray(rho, dtype=float)
    m = len(rho) if max_order is None else max_order
    e = np.zeros(m + 1)
    e[0] = 1.0
    with np.errstate(over="ignore"):  # a diverged run's huge rho: e_lambda = inf >= tau
        for r in rho:
            e[1:] = e[1:] + r * e[:-1]
    return e


def effective_depth(rho, tau: float = TAU) -> int:
    """Largest lambda whose lambda-residual paths contribute e_lambda(rho) >= tau (report §3.2's definition, our estimator).

    A non-finite rho (a diverged run) gives 0, as the first loop did."""
    if not tau > 0:
        raise ValueError(f"tau must be a positive threshold, not {tau!r}")
    e = elementary_symmetric(rho)
    ok = np.nonzero(e[1:] >= tau)[0]
    return int(ok[-1] + 1) if len(ok) else 0


def operator_norm(w: torch.Tensor) -> float:
    """Largest singular value; NaN for a diverged (non-finite) matrix."""
    if not torch.isfinite(w).all():
        return float("nan")
    return float(torch.linalg.matrix_norm(w.double(), ord=2))


def weight_change(model: MLP, initial: list[torch.Tensor]) -> dict:
    """Per linear layer (from the input): ||W(t) - W(0)||_op and rho = that / ||W(0)||_op."""
    delta = [operator_norm(lin.weight.detach().cpu() - w0) for lin, w0 in zip(model.linears, initial)]
    base = [operator_norm(w0) for w0 in initial]
    return {"op_change": delta, "rho": [d / b for d, b in zip(delta, base)]}


def layer_io_norms(model: MLP, x: torch.Tensor, group: int | None = None):
    """||f_(l+1)|| (input) and ||f_l|| (output) of every linear layer, per point (per batch of
    ``group`` points for a batch-norm model, the batch being one input, our recalled reading of the paper, unverified): two
    (groups, layers) tensors, from one forward pass without gradients."""
    n, d_in = x.shape
    b = (group or 100) if model.batch_norm else 1
    if n % b:
        raise ValueError(f"{n} points do not split into groups of {b}")
    h = x.reshape(n // b, b, d_in)
    ins, outs = [], []
    last = len(model.linears) - 1
    with torch.no_grad():
        for i, lin in enumerate(model.linears):
            z = lin(h)
            ins.append(torch.linalg.vector_norm(h, dim=(1, 2)))
            outs.append(torch.linalg.vector_norm(z, dim=(1, 2)))
            if i == last:
                break
            h = model.act(model.norm(z)) if model.norm_position == "pre" else model.norm(model.act(z))
    return torch.stack(ins, 1).double(), torch.stack(outs, 1).double()


def gsc_weighted_rho(op_change, ins: torch.Tensor, outs: torch.Tensor) -> list[float]:
    """rho_l = ||Delta W_l||_op * Q[||f_(l+1)|| / ||f_l||] (our GSC-weighted variant), from the
    weight-change norms and the :func:`layer_io_norms` of the current network."""
    ratio = quadratic_mean(ins / outs).tolist()
    return [float(c) * r if math.isfinite(c) else float("nan") for c, r in zip(op_change, ratio)]


def effective_depths(rho, taus=(1e-3, 1e-6, 1e-9)) -> dict:
    """Effective depth at several thresholds: how much the answer depends on tau."""
    return {f"{t:g}": effective_depth(rho, t) for t in taus}
