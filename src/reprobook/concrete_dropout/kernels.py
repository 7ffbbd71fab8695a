"""Concrete Dropout kernels (Gal, Hron & Kendall, NeurIPS 2017, arXiv 1705.07832).

What is here:
- :func:`concrete_mask`: the relaxed Bernoulli KEEP mask of the paper's Concrete relaxation
  (paper §3; code: the ``concrete_dropout`` method of the reference wrappers,
  yaringal/ConcreteDropout @ 0cb396d).
- :func:`bernoulli_entropy` and :func:`concrete_regularizer`: the per-layer KL of paper Eq. 3,
  KL ∝ l²(1-p)/2 ||M||² - K H(p), in the code's constants (``weight_regularizer`` = l²/(τN),
  ``dropout_regularizer`` = 2/(τN)) and with inverted dropout's kernel W = (1-p) M, so the
  weight term reads ||W||²/(1-p) (maintainer replies in GitHub issues yaringal/ConcreteDropout #1 and #3).
- :class:`ConcreteDropout`: a wrapper learning one p per layer for ``nn.Linear`` (a mask per
  element), ``nn.Conv2d`` (spatial: per example and channel, temperature 2/3, as the
  reference's ``SpatialConcreteDropout``) and a batch-first ``nn.LSTM`` (inputs only, one mask
  per example and feature shared over time; an extension from the reproductions, not the paper).
- :func:`concrete_regularization`: the sum of every wrapper's regulariser in a model.
- :func:`predictive_moments` and :func:`gaussian_mc_log_likelihood`: MC dropout inference
  (paper §5.1; the reference notebook's ``test``; Gal & Ghahramani 2016): predictive mean,
  epistemic and aleatoric variances, and the per-point MC estimate of the test log-likelihood.
Sources: paper Eq. 3 and the reference code (above); tests/test_concrete_dropout.py checks each function against closed forms.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

EPS = 1e-7  # K.epsilon() in the Keras reference; literal 1e-7 in its TF and PyTorch ports
DENSE_TEMPERATURE = 0.1  # reference ConcreteDropout
SPATIAL_TEMPERATURE = 2.0 / 3.0  # reference SpatialConcreteDropout


# --------------------------------------------------------------------------- the mask
def concrete_mask(p, shape, temperature: float = DENSE_TEMPERATURE, eps: float = EPS,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """The relaxed KEEP mask 1 - z~ (paper §3, the Concrete relaxation of Bernoulli(p) drops):

        z~ = sigmoid((log(p+eps) - log(1-p+eps) + log(u+eps) - log(1-u+eps)) / t),  u ~ U(0,1),

    one independent u per element of ``shape``; z~ ≈ 1 means *dropped*. Differentiable in
    ``p`` (a float or a tensor broadcasting against ``shape``). P(z~ > 1/2) = p exactly at
    every temperature, since logit(u) is standard logistic. A float p outside [0, 1] is an
    error; a tensor p is not checked (no host sync on the hot path: wrappers pass sigmoid(.)).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (got {temperature})")
    if not torch.is_tensor(p):
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p must lie in [0, 1] (got {p})")
        p = torch.tensor(float(p), dtype=torch.get_default_dtype())
    u = torch.rand(shape, generator=generator, dtype=p.dtype, device=p.device)
    # log(u+eps) - log(1-u+eps) taken as one log of the ratio: the same number, half the logs
    logit = torch.log(p + eps) - torch.log(1 - p + eps) + torch.log((u + eps) / (1 - u + eps))
    return 1 - torch.sigmoid(logit / temperature)


# --------------------------------------------------------------------------- the KL
def bernoulli_entropy(p) -> torch.Tensor:
    """H(p) = -p log p - (1-p) log(1-p) in nats (paper Eq. 3); 0 at p in {0, 1}."""
    p = torch.as_tensor(p, dtype=torch.get_default_dtype()) if not torch.is_tensor(p) else p
    return torch.special.entr(p) + torch.special.entr(1 - p)


def concrete_regularizer(weight, p, input_dim: int, weight_reg: float,
                         dropout_reg: float) -> torch.Tensor:
    """Per-layer regulariser of paper Eq. 3 in the reference code's constants:

        weight_reg * ||W||² / (1-p)  -  dropout_reg * K * H(p).

    Inverted dropout stores W = (1-p) M, so the paper's l²(1-p)||M||²/2 reads ||W||²/(1-p)
    (GitHub issues yaringal/ConcreteDropout #1, #3); K = ``input_dim`` is the number of independent
    Bernoulli variables per example (yaringal/ConcreteDropout issue #7: the layer's input dimensionality; channels for
    the spatial variant). ``weight`` is the kernel only (a tensor or a list of tensors), never
    the bias. The reference code adds dropout_reg * K * (p log p + (1-p) log(1-p)), the same.
    """
    if int(input_dim) != input_dim or input_dim < 1:
        raise ValueError(f"input_dim must be a positive integer (got {input_dim})")
    if weight_reg < 0 or dropout_reg < 0:
        raise ValueError(f"regularisers must be >= 0 (got {weight_reg}, {dropout_reg})")
    weights = weight if isinstance(weight, (list, tuple)) else [weight]
    sq = sum(w.pow(2).sum() for w in weights)
    return weight_reg * sq / (1 - p) - dropout_reg * input_dim * bernoulli_entropy(p)


def stacked_regularizer(weights, p_logits, lengthscale: float) -> torch.Tensor:
    """(R,): paper Eq. 3 for R independent networks stored stacked (the UCI and model-based
    nets): per run, the sum over layers of :func:`concrete_regularizer` with weight_reg = l²
    and dropout_reg = 2, i.e. l² ||W_r||² / (1-p_r) - 2 K H(p_r), where each kernel in
    ``weights`` is (R, K, out) and each logit in ``p_logits`` is (R,) with p = sigmoid(logit).
    Kernels only (no biases); the caller divides by N."""
    total = 0
    for w, q in zip(weights, p_logits):
        p = torch.sigmoid(q)
        total = total + (lengthscale ** 2 * w.pow(2).sum((1, 2)) / (1 - p)
                         - 2.0 * w.shape[1] * bernoulli_entropy(p))
    return total


# --------------------------------------------------------------------------- the wrapper
class ConcreteDropout(nn.Module):
    """Learned dropout on the input of ``layer``: forward(x) = layer(x * mask / (1-p)).

    - ``nn.Linear``: one mask value per element of x; K = in_features; t = 0.1.
    - ``nn.Conv2d`` (NCHW): spatial, one mask per (example, channel) constant over H, W;
      K = in_channels; t = 2/3 (reference ``SpatialConcreteDropout``).
    - batch-first ``nn.LSTM``: inputs (B, T, F) dropped with one mask per (example, feature)
      shared over time; K = input_size; the kernel is ``weight_ih_l0`` (and its reverse twin
      when bidirectional): dropping an input zeroes a column of W_ii, W_if, W_ig, W_io.

    p = sigmoid(p_logit), initialised to ``init_p`` (reference init_min = init_max = 0.1).
    ``mc=True`` keeps sampling masks in eval mode (MC dropout, the reference's
    ``is_mc_dropout=True``); ``mc=False`` makes eval mode the plain layer. Linear and Conv2d
    wrappers run under ``torch.func.vmap(randomness="different")``; LSTMs cannot (PyTorch has
    no batching rule for ``aten::lstm``).
    """

    def __init__(self, layer: nn.Module, weight_regularizer: float = 1e-6,
                 dropout_regularizer: float = 1e-5, init_p: float = 0.1,
                 temperature: float | None = None, input_dim: int | None = None,
                 mc: bool = True):
        super().__init__()
        if isinstance(layer, nn.Linear):
            self.kind, default_dim, default_t = "linear", layer.in_features, DENSE_TEMPERATURE
        elif isinstance(layer, nn.Conv2d):
            self.kind, default_dim, default_t = "conv2d", layer.in_channels, SPATIAL_TEMPERATURE
        elif isinstance(layer, nn.LSTM):
            if not layer.batch_first:
                raise ValueError("ConcreteDropout wraps batch-first LSTMs only "
                                 "(nn.LSTM(..., batch_first=True))")
            self.kind, default_dim, default_t = "lstm", layer.input_size, DENSE_TEMPERATURE
        else:
            raise TypeError(f"ConcreteDropout wraps nn.Linear, nn.Conv2d or a batch-first "
                            f"nn.LSTM, not {type(layer).__name__}")
        if not 0.0 < init_p < 1.0:
            raise ValueError(f"init_p must lie in (0, 1) (got {init_p})")
        if weight_regularizer < 0 or dropout_regularizer < 0:
            raise ValueError("weight_regularizer and dropout_regularizer must be >= 0")
        self.layer = layer
        self.weight_regularizer = float(weight_regularizer)
        self.dropout_regularizer = float(dropout_regularizer)
        self.input_dim = int(default_dim if input_dim is None else input_dim)
        if self.input_dim < 1:
            raise ValueError(f"input_dim must be >= 1 (got {input_dim})")
        self.temperature = float(default_t if temperature is None else temperature)
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0 (got {temperature})")
        self.mc = bool(mc)
        self.p_logit = nn.Parameter(torch.tensor(math.log(init_p) - math.log1p(-init_p)))

    @property
    def p(self) -> torch.Tensor:
        return torch.sigmoid(self.p_logit)

    def kernels(self) -> list[torch.Tensor]:
        """The weights whose input units are dropped (biases excluded, as in the reference)."""
        if self.kind == "lstm":
            ks = [self.layer.weight_ih_l0]
            if self.layer.bidirectional:
                ks.append(self.layer.weight_ih_l0_reverse)
            return ks
        return [self.layer.weight]

    def noise_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        """One uniform per element (linear), per (example, channel) (conv2d) or per
        (example, feature) shared over time (lstm)."""
        if self.kind == "linear":
            if x.shape[-1] != self.layer.in_features:
                raise ValueError(f"input has {x.shape[-1]} features, the Linear layer expects "
                                 f"{self.layer.in_features}")
            return tuple(x.shape)
        if self.kind == "conv2d":
            if x.dim() != 4 or x.shape[1] != self.layer.in_channels:
                raise ValueError(f"Conv2d input must be (B, {self.layer.in_channels}, H, W); "
                                 f"got {tuple(x.shape)}")
            return (x.shape[0], x.shape[1], 1, 1)
        if x.dim() != 3 or x.shape[2] != self.layer.input_size:
            raise ValueError(f"LSTM input must be batch-first (B, T, {self.layer.input_size}); "
                             f"got {tuple(x.shape)}")
        return (x.shape[0], 1, x.shape[2])

    def forward(self, x, *args, **kwargs):
        shape = self.noise_shape(x)
        if self.training or self.mc:
            p = self.p
            x = x * concrete_mask(p, shape, self.temperature) / (1 - p)
        return self.layer(x, *args, **kwargs)

    def regularizer(self) -> torch.Tensor:
        """This layer's term of the objective (paper Eq. 3; see :func:`concrete_regularizer`)."""
        return concrete_regularizer(self.kernels(), self.p, self.input_dim,
                                    self.weight_regularizer, self.dropout_regularizer)

    def extra_repr(self) -> str:
        return (f"kind={self.kind}, input_dim={self.input_dim}, temperature={self.temperature:.4g}, "
                f"weight_regularizer={self.weight_regularizer:.3g}, "
                f"dropout_regularizer={self.dropout_regularizer:.3g}, mc={self.mc}")


def concrete_regularization(model: nn.Module) -> torch.Tensor:
    """Sum of :meth:`ConcreteDropout.regularizer` over every wrapper in ``model`` (the KL/N of
    the objective, report §2.1 Eq. (1), with paper Eq. 3 per layer)."""
    terms = [m.regularizer() for m in model.modules() if isinstance(m, ConcreteDropout)]
    if not terms:
        raise ValueError(f"{type(model).__name__} holds no ConcreteDropout layer")
    return torch.stack(terms).sum()


def dropout_probabilities(model: nn.Module) -> list[float]:
    """The learned p of every ConcreteDropout in ``model``, in module order."""
    return [m.p.item() for m in model.modules() if isinstance(m, ConcreteDropout)]


# --------------------------------------------------------------------------- inference
def _check_samples(means: torch.Tensor) -> None:
    if means.dim() not in (2, 3):
        raise ValueError(f"means must be (T, N) or (T, N, D); got shape {tuple(means.shape)}")


def predictive_moments(means: torch.Tensor, log_vars) -> tuple[torch.Tensor, torch.Tensor,
                                                                 torch.Tensor]:
    """MC moments over T samples on dim 0 (reference synthetic notebook; paper §5.1):
    (mean_t mu_t, Var_t mu_t [population variance, divide by T: epistemic],
    mean_t exp(s_t) [aleatoric]). ``log_vars`` broadcasts against ``means`` (a scalar
    -log tau for homoscedastic noise). Predictive variance = epistemic + aleatoric."""
    _check_samples(means)
    s = torch.as_tensor(log_vars, dtype=means.dtype, device=means.device)
    s = torch.broadcast_to(s, means.shape)
    return means.mean(0), means.var(0, unbiased=False), s.exp().mean(0)


def gaussian_mc_log_likelihood(y: torch.Tensor, means: torch.Tensor, log_vars) -> torch.Tensor:
    """Mean over points of log (1/T) sum_t N(y; mu_t, exp(s_t))
    = logsumexp_t log N(y; mu_t, exp(s_t)) - log T   (MC dropout test log-likelihood).

    Per point, unlike the reference notebooks, which take the logsumexp of the *joint*
    log-likelihood of all points and divide by N. ``means`` is (T, N) or (T, N, D), ``y``
    is (N,) or (N, D); a point's log-likelihood sums over D. Pass quantities in the
    original units when the targets were standardised (mu*std + mean, s + 2 log std)."""
    _check_samples(means)
    if tuple(y.shape) != tuple(means.shape[1:]):
        raise ValueError(f"y has shape {tuple(y.shape)}, expected {tuple(means.shape[1:])}")
    s = torch.broadcast_to(torch.as_tensor(log_vars, dtype=means.dtype, device=means.device),
                           means.shape)
    ll = -0.5 * torch.exp(-s) * (y - means) ** 2 - 0.5 * s - 0.5 * math.log(2 * math.pi)
    if ll.dim() == 3:
        ll = ll.sum(-1)
    return (torch.logsumexp(ll, 0) - math.log(means.shape[0])).mean()
