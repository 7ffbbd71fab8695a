"""The seven MLPs of Philipp, Song & Carbonell (2018), "Gradients explode - Deep networks are
shallow" (arXiv 1712.05577), Fig. 1 and Fig. 3; as built by the report of Flynn, Cann & Tasker
(report §3.1): ReLU, layer-ReLU, batch-ReLU, tanh, layer-tanh, batch-tanh and SeLU, 50 (or
51) linear layers of width 100, normalisation without learnable parameters.

Architectures and initialisation: report §3.1; the normalisation placement (Linear -> Norm -> Act)
is our choice (the paper's could not be read).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

ARCHS = ("relu", "layer-relu", "batch-relu", "tanh", "layer-tanh", "batch-tanh", "selu")


class Norm(nn.Module):
    """Layer or batch normalisation without learnable parameters (paper: none are used).

    ``layer``: over the features of each point. ``batch``: over dim -2, the points of one
    batch; an input shaped (G, B, d) holds G independent batches, each normalised on its own.
    """

    def __init__(self, kind: str, eps: float = 1e-5):
        super().__init__()
        self.kind, self.eps = kind, eps

    def forward(self, x):
        dim = -1 if self.kind == "layer" else -2
        mu = x.mean(dim, keepdim=True)
        var = x.var(dim, unbiased=False, keepdim=True)
        return (x - mu) * torch.rsqrt(var + self.eps)

    def extra_repr(self):
        return f"{self.kind}, eps={self.eps}"


ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh, "selu": nn.SELU}


class MLP(nn.Module):
    """``depth`` linear layers; every one but the last is followed by [norm ->] nonlinearity.

    ``norm_position='pre'`` is Linear -> Norm -> Act (default, our choice); ``'post'`` is
    Linear -> Act -> Norm.
    """

    def __init__(self, arch: str, depth: int, width: int, d_in: int, d_out: int,
                 norm_position: str = "pre", eps: float = 1e-5):
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
        if norm_position not in ("pre", "post"):
            raise ValueError(f"norm_position must be 'pre' or 'post', not {norm_position!r}")
        if depth < 1 or width < 1:
            raise ValueError(f"depth and width must be >= 1 (got {depth}, {width})")
        self.arch = arch
        kind, _, act = arch.rpartition("-")
        self.norm_kind = kind or None
        self.norm_position = norm_position
        dims = [d_in] + [width] * (depth - 1) + [d_out]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.norm = Norm(kind, eps) if kind else nn.Identity()
        self.act = ACTS[act]()

    @property
    def batch_norm(self) -> bool:
        return self.norm_kind == "batch"

    def forward(self, x, record: bool = False):
        """Return the output; with ``record`` also (linear outputs, nonlinearity inputs)."""
        lin_out, pre = [], []
        last = len(self.linears) - 1
        for i, lin in enumerate(self.linears):
            x = lin(x)
            lin_out.append(x)
            if i == last:
                break
            if self.norm_position == "pre":
                x = self.norm(x)
                pre.append(x)
                x = self.act(x)
            else:
                pre.append(x)
                x = self.norm(self.act(x))
        return (x, lin_out, pre) if record else x


def make_mlp(arch: str, depth: int = 50, width: int = 100, d_in: int | None = None,
             d_out: int | None = None, init: str = "paper", norm_position: str = "pre",
             eps: float = 1e-5, generator: torch.Generator | None = None) -> MLP:
    """One of the seven MLPs of paper Fig. 1 (report §3.1), biases zero.

    ``init='paper'``: W ~ N(0, 2/d_in) for the ReLU family, N(0, 1/d_in) for tanh and SeLU
    (report §3.1). ``init='orthogonal'``: orthogonal rows scaled by the same gain (App. H).
    """
    model = MLP(arch, depth, width, d_in or width, d_out or width, norm_position, eps)
    gain2 = 2.0 if arch.endswith("relu") else 1.0
    with torch.no_grad():
        for lin in model.linears:
            fan_in = lin.weight.shape[1]
            if init == "paper":
                lin.weight.normal_(0.0, math.sqrt(gain2 / fan_in), generator=generator)
            elif init == "orthogonal":
                w = torch.empty_like(lin.weight).normal_(generator=generator)
                q, r = torch.linalg.qr(w if w.shape[0] >= w.shape[1] else w.T)
                q = q * torch.sign(torch.diagonal(r))
                q = q if w.shape[0] >= w.shape[1] else q.T
                lin.weight.copy_(q * math.sqrt(gain2 * max(1.0, w.shape[0] / w.shape[1])))
            else:
                raise ValueError(f"unknown init {init!r}; use 'paper' or 'orthogonal'")
            lin.bias.zero_()
    return model
