"""Stacked-weight regression networks for the Concrete Dropout chapter (Gal, Hron & Kendall,
NeurIPS 2017, arXiv 1705.07832): ``runs`` independent MLPs with Concrete dropout on the input of
every layer, weights stacked on dim 0 and applied with batched matmuls, so that repeated runs
(data sizes x repetitions, the 20 UCI splits) train as ONE program and every run draws its own
masks. (Stacked weights, not ``torch.func.vmap``: on CPU vmap's per-op overhead made a step
2-3x slower.) Also the heteroscedastic loss and MC prediction of the reference notebook (concrete-dropout-keras.ipynb, yaringal/ConcreteDropout @ 0cb396d) and the
Spearman helper the drivers share.

Objective (paper Eq. 3 in the reference code's constants; notebook ``fit_model``): per run, with N its training-set size,
    mean_batch[ exp(-s) (y - mu)^2 + s ]  +  (1/N) sum_layers [ l^2 ||W||^2/(1-p) - 2 K H(p) ],
i.e. twice the negative ELBO per point with the noise learned (tau = 1 in the constants:
weight_regularizer = l^2/N, dropout_regularizer = 2/N).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .kernels import DENSE_TEMPERATURE, concrete_mask, stacked_regularizer

def _uniform(shape, bound, generator):
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound


class StackedRegressionNet(nn.Module):
    """``runs`` independent MLPs with Concrete dropout on the input of every layer (the
    reference notebook's layout), weights stacked on dim 0 and applied with batched matmuls:
    x (R, B, d_in) -> mean (R, B), log-variance (R, B), regulariser (R,).

    ``heteroscedastic=True``: mean and log-variance heads, both wrapped (5 p's for depth 3).
    Otherwise a mean head and one learned log-variance per run (homoscedastic noise, learned
    tau, no dropout on it). Per layer and run the mask is :func:`concrete_mask` (one per
    element, t = 0.1) and the regulariser that of :func:`concrete_regularizer` with
    weight_regularizer = l^2 and dropout_regularizer = 2 (the caller divides by N).
    Weights start as ``nn.Linear``'s (U(-1/sqrt(fan_in), 1/sqrt(fan_in))), p as 0.1."""

    def __init__(self, runs: int, d_in: int, width: int, depth: int, lengthscale: float,
                 heteroscedastic: bool = True, init_p: float = 0.1, seed: int = 0,
                 temperature: float = DENSE_TEMPERATURE):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        dims = [d_in] + [width] * depth
        shapes = list(zip(dims[:-1], dims[1:])) + [(width, 1)] * (2 if heteroscedastic else 1)
        self.weights = nn.ParameterList(nn.Parameter(_uniform((runs, a, b), a ** -0.5, g))
                                        for a, b in shapes)
        self.biases = nn.ParameterList(nn.Parameter(_uniform((runs, 1, b), a ** -0.5, g))
                                       for a, b in shapes)
        logit = math.log(init_p) - math.log1p(-init_p)
        self.p_logits = nn.ParameterList(nn.Parameter(torch.full((runs,), logit))
                                         for _ in shapes)
        self.log_noise = None if heteroscedastic else nn.Parameter(torch.zeros(runs, 1))
        self.depth, self.runs, self.lengthscale = depth, runs, lengthscale
        self.temperature = temperature

    def ps(self) -> torch.Tensor:
        """(R, L) dropout probabilities, layers in order (hidden..., mean[, log-variance])."""
        return torch.stack([torch.sigmoid(q) for q in self.p_logits], 1)

    def _layer(self, i, x):
        p = torch.sigmoid(self.p_logits[i])[:, None, None]
        x = x * concrete_mask(p, x.shape, self.temperature) / (1 - p)
        return torch.baddbmm(self.biases[i], x, self.weights[i])

    def regularizer(self) -> torch.Tensor:
        """(R,): paper Eq. 3 summed over layers (:func:`stacked_regularizer`), kernels only."""
        return stacked_regularizer(self.weights, self.p_logits, self.lengthscale)

    def forward(self, x):
        for i in range(self.depth):
            x = F.relu(self._layer(i, x))
        mu = self._layer(self.depth, x).squeeze(-1)
        if self.log_noise is None:
            s = self._layer(self.depth + 1, x).squeeze(-1)
        else:
            s = self.log_noise.expand_as(mu)
        return mu, s, self.regularizer()


def heteroscedastic_loss(mu, s, y):
    """Per run: mean over the batch of exp(-s)(y-mu)^2 + s (2 x Gaussian NLL - log 2pi)."""
    return (torch.exp(-s) * (y - mu) ** 2 + s).mean(-1)


def mc_predict(model: StackedRegressionNet, x: torch.Tensor, samples: int, chunk: int = 20):
    """MC dropout: (R, T, n) means and log-variances, T masks per point (rows repeated)."""
    mus, ss = [], []
    with torch.no_grad():
        for start in range(0, samples, chunk):
            t = min(chunk, samples - start)
            mu, s, _ = model(x.repeat(1, t, *([1] * (x.dim() - 2))))
            mus.append(mu.reshape(x.shape[0], t, x.shape[1]))
            ss.append(s.reshape(x.shape[0], t, x.shape[1]))
    return torch.cat(mus, 1).detach(), torch.cat(ss, 1).detach()
