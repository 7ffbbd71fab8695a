"""The gradient scale coefficient (GSC) of Philipp, Song & Carbonell (2018), "Gradients explode -
Deep networks are shallow" (arXiv 1712.05577), and the collapsing-domain metrics of its Fig. 1B/1C.

Layers are numbered in reverse (layer 1 feeds the error layer f_0, layer L reads the input),
as in the paper; arrays returned here are indexed by the linear layer counted from the input
(index 0 = layer L). Equations: report §2 (qm norm; GSC(k, l) at a point; exploding gradients)
and §3.1 (quadratic expectation over data); batch as one input is our recalled reading of the paper, unverified;
pre-activation std and sign diversity as in paper Fig. 1B/1C (sign diversity min(P, N)/(P + N), vitalab review).

- :func:`gsc_curve` -- GSC(k, 0) at every linear layer of a model over a data set;
- :func:`layer_stats` (autograd) and :func:`fast_layer_stats` (hand-written backward for the
  dot-product error) -- the per-point raw quantities; :func:`aggregate` -- the dataset curves;
- :func:`growth_rate` -- the per-layer rate r of "exploding gradients" (GSC >= c r^(k-l)).
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from .models import ACTS, MLP

def qm_norm(a: torch.Tensor) -> torch.Tensor:
    """Quadratic-mean norm (named in report §2; the formula is our recalled reading of the paper, unverified): ||A||_F / sqrt(n), n = number of columns (inputs)."""
    return torch.linalg.matrix_norm(a) / math.sqrt(a.shape[-1])


def gsc_pointwise(jac: torch.Tensor, f_k: torch.Tensor, f_l: torch.Tensor) -> torch.Tensor:
    """GSC(k, l) = ||J_l^k||_qm ||f_k||_2 / ||f_l||_2 at one point (report §2, square root of its formula)."""
    return qm_norm(jac) * f_k.norm() / f_l.norm()


def quadratic_mean(x: torch.Tensor, dim=0) -> torch.Tensor:
    """The quadratic expectation Q[X] = (E X^2)^(1/2) (named in report §3.1)."""
    return x.pow(2).mean(dim).sqrt()


@contextmanager
def _frozen(model: torch.nn.Module):
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)


def dot_error(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The dot-product error layer f_0 = y^T f_1, summed over the points of each group."""
    return (out * y).sum(dim=(-2, -1))


def kl_error(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """KL(one-hot || softmax) = -log p_y, summed over the points of each group."""
    logp = F.log_softmax(out, dim=-1)
    return -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1).sum(-1)


def _cross_entropy_sum(out, y):
    """Categorical cross-entropy sum_b [logsumexp(o_b) - o_b[y_b]] (the report's proposal)."""
    picked = out.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    return (torch.logsumexp(out, -1) - picked).sum(-1)


cross_entropy_error = _cross_entropy_sum


def layer_stats(model: MLP, x: torch.Tensor, y: torch.Tensor, error=dot_error,
                group: int | None = None) -> dict:
    """One forward and one backward pass over a batch of points; per-group raw quantities.

    Points are split into groups: a batch-norm model sees groups of ``group`` points
    (default 100), each group being *one* input to the network (our recalled reading of the paper, unverified); any other model
    sees every point as its own group. For each group g and linear layer k (from the input)
    returns ``qm[g, k] = ||d f_0 / d f_k||_qm``, ``fk[g, k] = ||f_k||``, ``f0[g] = |f_0|``,
    plus per-neuron pre-activation moments and sign counts over all points.
    """
    n, d_in = x.shape
    b = (group or 100) if model.batch_norm else 1
    if n % b:
        raise ValueError(f"{n} points do not split into groups of {b}")
    xg, yg = x.reshape(n // b, b, d_in), y.reshape(n // b, b, *y.shape[1:])
    with _frozen(model), torch.enable_grad():
        xg = xg.detach().requires_grad_(True)
        out, lin, pre = model(xg, record=True)
        f0 = error(out, yg)
        grads = torch.autograd.grad(f0.sum(), lin)
    with torch.no_grad():
        qm = torch.stack([g.flatten(1).norm(dim=1) / math.sqrt(g[0].numel()) for g in grads], 1)
        fk = torch.stack([f.flatten(1).norm(dim=1) for f in lin], 1)
        z = torch.stack(pre).flatten(1, 2)  # (layers, n, width)
        moments = (z.sum(1), z.pow(2).sum(1), (z > 0).sum(1), (z < 0).sum(1))
    return {"qm": qm.double(), "fk": fk.double(), "f0": f0.detach().abs().double(),
            "z_sum": moments[0].double(), "z_sq": moments[1].double(),
            "pos": moments[2].double(), "neg": moments[3].double(), "n": n}


def aggregate(stats: dict, variant: str = "A", std_agg: str = "mean") -> dict:
    """Dataset-level curves from :func:`layer_stats` (report §3.1; paper Fig. 1A-C).

    ``variant='A'``: Q[||J||_qm] Q[||f_k||] / Q[|f_0|]; ``'B'``: Q[||J||_qm ||f_k||] / Q[|f_0|].
    Pre-activation std is the std over points of each neuron, averaged over neurons
    (``std_agg='mean'``) or their quadratic mean (``'qm'``); sign diversity is
    min(P, N) / (P + N) per neuron over points, averaged over neurons.
    """
    qm, fk, f0 = stats["qm"], stats["fk"], stats["f0"]
    if variant == "A":
        gsc = quadratic_mean(qm) * quadratic_mean(fk) / quadratic_mean(f0)
    elif variant == "B":
        gsc = quadratic_mean(qm * fk) / quadratic_mean(f0)
    else:
        raise ValueError("variant must be 'A' or 'B'")
    n = stats["n"]
    mean = stats["z_sum"] / n
    var = (stats["z_sq"] / n - mean.pow(2)).clamp_min(0)
    std = var.sqrt().mean(1) if std_agg == "mean" else var.mean(1).sqrt()
    pos, neg = stats["pos"], stats["neg"]
    sd = (torch.minimum(pos, neg) / (pos + neg).clamp_min(1)).mean(1)
    return {"gsc": gsc.numpy(), "preact_std": std.numpy(), "sign_diversity": sd.numpy()}


def _act_forward(name: str, p: torch.Tensor) -> torch.Tensor:
    return torch.relu(p) if name == "relu" else torch.tanh(p) if name == "tanh" else F.selu(p)


def _act_backward(name: str, g: torch.Tensor, p: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """d act / d p applied to g, from the saved input p and output h."""
    if name == "relu":
        return g.mul_(p > 0)
    if name == "tanh":
        return g.mul_(1 - h * h)
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    return g.mul_(torch.where(p > 0, scale, h + scale * alpha))


def _norm_backward(g: torch.Tensor, p: torch.Tensor, rstd: torch.Tensor, dim: int) -> torch.Tensor:
    """Backward of (x - mean) * rstd without affine parameters: rstd (g - E g - p E[g p])."""
    return (g - g.mean(dim, keepdim=True) - p * (g * p).mean(dim, keepdim=True)).mul_(rstd)


def fast_layer_stats(model: MLP, x: torch.Tensor, y: torch.Tensor, group: int | None = None) -> dict:
    """:func:`layer_stats` for the dot-product error, with a hand-written backward pass.

    Same quantities, no autograd graph: one forward and one backward matrix product per
    layer plus a few fused elementwise passes, on a chunk small enough to stay in cache.
    Tested against the autograd version (tests/test_gsc.py).
    """
    act = model.arch.rpartition("-")[2]
    if model.norm_position != "pre" or type(model.act) is not ACTS[act]:
        return layer_stats(model, x, y, dot_error, group)  # a modified model: use autograd
    n, d_in = x.shape
    b = (group or 100) if model.batch_norm else 1
    if n % b:
        raise ValueError(f"{n} points do not split into groups of {b}")
    dim = -1 if model.norm_kind == "layer" else -2
    eps = model.norm.eps if model.norm_kind else 0.0
    weights = [lin.weight.detach() for lin in model.linears]
    biases = [lin.bias.detach() for lin in model.linears]
    g_count = n // b
    with torch.no_grad():
        h = x.reshape(g_count, b, d_in)
        saved, fk, mom = [], [], []
        last = len(weights) - 1
        for i, (w, bias) in enumerate(zip(weights, biases)):
            z = torch.addmm(bias, h.reshape(n, -1), w.t()).view(g_count, b, -1)
            fk.append(torch.linalg.vector_norm(z, dim=(1, 2)))
            if i == last:
                break
            if model.norm_kind:
                var, mu = torch.var_mean(z, dim, correction=0, keepdim=True)
                rstd = (var + eps).rsqrt_()
                p = (z - mu).mul_(rstd)
            else:
                p, rstd = z, None
            pos = (p > 0).sum((0, 1))
            neg = (p < 0).sum((0, 1))
            mom.append((p.sum((0, 1)), (p * p).sum((0, 1)), pos, neg))
            h = _act_forward(act, p)
            saved.append((p, h, rstd))
        f0 = (z * y.reshape(g_count, b, -1)).sum((1, 2))
        g = y.reshape(g_count, b, -1)
        qm = [torch.linalg.vector_norm(g, dim=(1, 2)) / math.sqrt(g[0].numel())]
        for i in range(last - 1, -1, -1):
            p, h, rstd = saved[i]
            g = _act_backward(act, g.reshape(n, -1).mm(weights[i + 1]).view_as(p), p, h)
            if rstd is not None:
                g = _norm_backward(g, p, rstd, dim)
            qm.append(torch.linalg.vector_norm(g, dim=(1, 2)) / math.sqrt(g[0].numel()))
    sums = [torch.stack(t) for t in zip(*mom)]
    return {"qm": torch.stack(qm[::-1], 1).double(), "fk": torch.stack(fk, 1).double(),
            "f0": f0.abs().double(), "z_sum": sums[0].double(), "z_sq": sums[1].double(),
            "pos": sums[2].double(), "neg": sums[3].double(), "n": n}


def gsc_curve(model: MLP, x: torch.Tensor, y: torch.Tensor, error=dot_error,
              group: int | None = None, variant: str = "A", chunk: int = 1000) -> dict:
    """GSC(k, 0) at every linear layer, pre-activation std and sign diversity per layer.

    Processes ``x`` in chunks (multiples of the BN group) and aggregates exactly:
    quadratic means and moments are sums over points. The dot-product error takes the
    hand-written backward (:func:`fast_layer_stats`); any other error layer uses autograd.
    """
    b = (group or 100) if model.batch_norm else 1
    chunk = max(b, chunk - chunk % b)
    if error is dot_error:
        parts = [fast_layer_stats(model, xs, ys, group)
                 for xs, ys in zip(x.split(chunk), y.split(chunk))]
    else:
        parts = [layer_stats(model, xs, ys, error, group)
                 for xs, ys in zip(x.split(chunk), y.split(chunk))]
    stats = {k: torch.cat([p[k] for p in parts]) for k in ("qm", "fk", "f0")}
    for k in ("z_sum", "z_sq", "pos", "neg"):
        stats[k] = sum(p[k] for p in parts)
    stats["n"] = sum(p["n"] for p in parts)
    return aggregate(stats, variant)


def _fit_range(gsc_from_input, skip):
    g = np.asarray(gsc_from_input, dtype=float)[::-1]  # g[0] = layer 1
    k = np.arange(1, len(g) + 1)
    lo, hi = skip[0] - 1, len(g) - skip[1]
    if hi - lo < 2:
        raise ValueError(f"{len(g)} layers leave fewer than 2 to fit after skipping {skip}")
    return k[lo:hi], g[lo:hi]


def growth_rate(gsc_from_input: np.ndarray, skip: tuple[int, int] = (2, 3)) -> float:
    """Per-layer growth rate r: exp of the slope of log GSC against distance from the error
    (exploding gradients: GSC(k, l) grows exponentially in k - l, report §2).

    ``gsc_from_input[0]`` is layer L. The fit drops ``skip[0]`` layers at the output end and
    ``skip[1]`` at the input end (the default fits layers 2..47 of 50). NaN when a
    fitted value is not a positive finite number (a diverged network).
    """
    k, g = _fit_range(gsc_from_input, skip)
    if not (np.isfinite(g).all() and (g > 0).all()):
        return float("nan")
    slope = np.polyfit(k, np.log(g), 1)[0]
    return float(np.exp(slope))


def log_fit_r2(gsc_from_input: np.ndarray, skip: tuple[int, int] = (2, 3)) -> float:
    """R^2 of the straight line fitted by :func:`growth_rate` to log GSC: 1 when the GSC grows
    exactly exponentially with depth (a straight line on the paper's log-scale Fig. 1A)."""
    k, g = _fit_range(gsc_from_input, skip)
    if not (np.isfinite(g).all() and (g > 0).all()):
        return float("nan")
    y = np.log(g)
    resid = y - np.polyval(np.polyfit(k, y, 1), k)
    tot = ((y - y.mean()) ** 2).sum()
    return float(1 - (resid ** 2).sum() / tot) if tot > 0 else 1.0
