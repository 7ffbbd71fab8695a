"""AutoLoss kernels (Xu et al., "AutoLoss: Learning Discrete Schedules for Alternate
Optimization", ICLR 2019, arXiv 1810.02442 v1) in the official code's semantics.

Official code: safpla/AutoLossRelease @ c3cdf97 (TF 1.8); line numbers below are of that commit.
What is here:
- :func:`make_regression_data`, :func:`make_classification_data`: the synthetic data sets of
  paper App. A.2 as ``dataio/gen_reg_data.py`` and ``dataio/gen_cls_data.py`` generate them.
- :func:`quadratic_predict`, :func:`l1_penalty`: the d-ary quadratic task model and the L1 loss
  of paper §4.1 as ``models/reg.py`` L85-126 builds them (no bias, quadratic part / 10).
- :class:`Controller`: the policy p(y | x; phi) of paper §3 (``models/controller_reinforce.py``:
  ``2layer_logits_clipping`` / ``linear_logits_clipping``), with :func:`policy_loss` and
  :func:`reinforce_step` (paper Eq. 2, REINFORCE) and :class:`EMABaseline` (the moving-average
  baseline B of Eq. 2, in the order of ``models/reg.py`` L274-286).
- Rewards: :func:`final_reward` (paper §4.1-4.2), :func:`shaping_reward` (the official per-step
  reward, ``models/reg.py`` L244-262), :func:`segment_reward` (paper §4.4).
- :func:`handcrafted_action`: the S1-S3 rules of paper §5.1.1.
- :func:`inception_score`: exp(E_x KL(p(y|x) || p(y))) per split (``utils/inception_score_mnist.py``
  L24-44), the GAN metric of paper §4.2.
Every function takes an optional leading batch of independent models where that makes sense, so
a grid of task models or controllers runs as one tensor program.
Sources: paper §3-§4.2 and Eq. 2, official code (files and lines above); tests/test_autoloss.py checks each function against closed forms.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

MSE_ACTION, L1_ACTION = 0, 1  # ``models/reg.py`` L137: self.update = [update_mse, update_l1]
LEAKY_RELU_SLOPE = 0.2  # tf.nn.leaky_relu's default alpha (controller hidden layer)


# --------------------------------------------------------------------------- data
def make_regression_data(n: int = 1000, d: int = 16, noise: float = 2.0, seed: int = 1) -> dict:
    """The regression data of paper App. A.2, bit for bit as ``dataio/gen_reg_data.py``.

    The official file seeds the global RandomState (``np.random.seed(1)``, L69), draws
    w = U[0,1)^d - 0.5 first (L70), then for each row (``gen_data``, L24-31) x = 10 (U[0,1)^d - 0.5)
    and y = x.w + N(0, noise^2) (``scale=var_noise`` = 2 is the std, config/reg L31). The five
    partitions (train_ctrl, valid_ctrl, train_task, valid_task, test; 200 rows each) are five
    consecutive ``gen_data`` calls on the same stream, i.e. rows 0-199, ..., 800-999 here.

    The rows are drawn one at a time on purpose: numpy's legacy ``normal()`` makes two Gaussians
    per polar-method draw and caches the second, so the uniform draws of the next row sit between
    them in the stream; drawing all x first and all noise after gives different numbers.

    Returns ``{"x": (n, d), "y": (n,), "w": (d,)}`` float64 tensors.
    """
    if int(n) != n or n < 1 or int(d) != d or d < 1:
        raise ValueError(f"n and d must be positive integers, got n={n!r}, d={d!r}")
    if not noise >= 0:
        raise ValueError(f"noise is a standard deviation and must be >= 0, got {noise!r}")
    rs = np.random.RandomState(seed)
    w = rs.rand(d) - 0.5
    x = np.empty((n, d))
    y = np.empty(n)
    for i in range(n):  # row by row: the RandomState stream order (see above)
        x[i] = 10 * (rs.rand(d) - 0.5)
        y[i] = np.dot(x[i], w) + rs.normal(loc=0.0, scale=noise)
    return {"x": torch.from_numpy(x), "y": torch.from_numpy(y), "w": torch.from_numpy(w)}


def make_classification_data(n: int = 3400, d: int = 32, seed: int = 1) -> dict:
    """The classification data as ``dataio/gen_cls_data.py`` L46-55: scikit-learn's
    ``make_classification(n_samples=3400, n_features=32, n_informative=2, n_redundant=2,
    n_clusters_per_class=2)`` after ``np.random.seed(config.random_seed = 1)``.

    The official call passes no ``random_state``, so scikit-learn draws from the global
    RandomState that was just seeded; ``RandomState(seed)`` is the same stream. Rows are the
    partitions train_ctrl 200, valid_ctrl 1000, train_task 200, valid_task 1000, test 1000
    (config/cls). Identical to the authors' files only as far as scikit-learn's algorithm is
    unchanged since their (unpinned) version. Returns ``{"x": (n, d) float64, "y": (n,) int64}``.
    """
    from sklearn.datasets import make_classification

    if int(n) != n or n < 4 or int(d) != d or d < 4:
        raise ValueError(f"need n >= 4 rows and d >= 4 features (2 informative + 2 redundant), "
                         f"got n={n!r}, d={d!r}")
    x, y = make_classification(n_samples=n, n_features=d, n_informative=2, n_redundant=2,
                               n_clusters_per_class=2, random_state=np.random.RandomState(seed))
    return {"x": torch.from_numpy(x), "y": torch.from_numpy(y).long()}


# --------------------------------------------------------------------------- task model
def quadratic_predict(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """f(u) = u.w1 + u^T w2 u / 10 (``models/reg.py`` L88-104: paper §4.1's u^T A u + b^T u + c
    without the bias c and with the quadratic part divided by 10).

    x: (n, d); w1: (..., d); w2: (..., d, d) with the same leading batch of models.
    Returns (..., n).
    """
    d = x.shape[-1]
    if w1.shape[-1] != d or w2.shape[-2:] != (d, d) or w1.shape[:-1] != w2.shape[:-2]:
        raise ValueError(f"shapes do not fit: x {tuple(x.shape)}, w1 {tuple(w1.shape)}, "
                         f"w2 {tuple(w2.shape)} (want x (n,d), w1 (...,d), w2 (...,d,d))")
    linear = (x @ w1.unsqueeze(-1)).squeeze(-1)
    quadratic = ((x @ w2) * x).sum(-1)
    return linear + quadratic / 10


def l1_penalty(params, lam, batch_dims: int = 0) -> torch.Tensor:
    """lam * sum_p sum_j |p_j|, TF's ``l1_regularizer(scale=lam)`` summed over all trainable
    variables by ``apply_regularization`` (``models/reg.py`` L122-126). Its gradient is
    lam * sign(p) (0 at 0, as TF's).

    With ``batch_dims=k`` the first k dimensions of every tensor index independent models: the
    result has that shape, and ``lam`` may be a tensor broadcasting against it (a lambda grid).
    """
    params = list(params)
    if not params:
        raise ValueError("l1_penalty needs at least one parameter tensor")
    total = 0
    for p in params:
        if p.dim() < batch_dims:
            raise ValueError(f"a parameter of shape {tuple(p.shape)} has fewer than "
                             f"batch_dims={batch_dims} dimensions")
        total = total + p.abs().flatten(batch_dims).sum(-1) if batch_dims else \
            total + p.abs().sum()
    return lam * total


# --------------------------------------------------------------------------- controller
def _xavier_uniform(shape, fan_in: int, fan_out: int, generator) -> torch.Tensor:
    limit = math.sqrt(6.0 / (fan_in + fan_out))  # tf.contrib.layers.xavier_initializer(uniform=True)
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1).float() * limit


class Controller(nn.Module):
    """The policy p(y | x; phi) = softmax(logits(x) / temperature) of paper §3.

    ``hidden > 0``: the official ``2layer_logits_clipping`` (``models/controller_reinforce.py``
    L52-60): Linear(n_features, hidden), leaky ReLU (slope 0.2, TF's default), Linear(hidden,
    n_actions); Xavier-uniform weights, zero biases. ``hidden = 0``: the linear policy
    ``linear_logits_clipping`` (L66-77), logits = x W + b with ``parameters()`` = [W, b].
    The official configs use temperature (``logit_clipping_c``) 2 for reg and cls.

    ``n_models`` (optional) gives every parameter a leading dimension of independent controllers;
    then inputs are (n_models, ..., n_features).
    """

    def __init__(self, n_features: int, n_actions: int = 2, hidden: int = 16,
                 temperature: float = 1.0, n_models: int | None = None, seed: int | None = None):
        super().__init__()
        if n_features < 1 or n_actions < 2 or hidden < 0:
            raise ValueError(f"need n_features >= 1, n_actions >= 2, hidden >= 0; got "
                             f"{n_features}, {n_actions}, {hidden}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.n_features, self.n_actions, self.hidden = n_features, n_actions, hidden
        self.temperature, self.n_models = float(temperature), n_models
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        lead = () if n_models is None else (n_models,)
        if hidden == 0:
            self.W = nn.Parameter(_xavier_uniform(lead + (n_features, n_actions), n_features,
                                                  n_actions, gen))
            self.b = nn.Parameter(torch.zeros(lead + (n_actions,)))
        else:
            self.W1 = nn.Parameter(_xavier_uniform(lead + (n_features, hidden), n_features,
                                                   hidden, gen))
            self.b1 = nn.Parameter(torch.zeros(lead + (hidden,)))
            self.W2 = nn.Parameter(_xavier_uniform(lead + (hidden, n_actions), hidden,
                                                   n_actions, gen))
            self.b2 = nn.Parameter(torch.zeros(lead + (n_actions,)))

    def _batched(self, x: torch.Tensor):
        """Put x as (n_models, rows, features) when models are batched; remember the shape."""
        if x.shape[-1] != self.n_features:
            raise ValueError(f"features have {x.shape[-1]} columns, the controller expects "
                             f"{self.n_features}")
        if self.n_models is None:
            return x, x.shape[:-1]
        if x.shape[0] != self.n_models:
            raise ValueError(f"batched controller: first dimension of x must be n_models="
                             f"{self.n_models}, got shape {tuple(x.shape)}")
        return x.reshape(self.n_models, -1, self.n_features), x.shape[:-1]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits before the temperature: x W + b, or the 2-layer MLP."""
        x = x.to(self.b.dtype if self.hidden == 0 else self.b1.dtype)
        xb, lead = self._batched(x)
        bias = (lambda b: b) if self.n_models is None else (lambda b: b.unsqueeze(-2))
        if self.hidden == 0:
            out = xb @ self.W + bias(self.b)
        else:
            h = nn.functional.leaky_relu(xb @ self.W1 + bias(self.b1), LEAKY_RELU_SLOPE)
            out = h @ self.W2 + bias(self.b2)
        return out.reshape(*lead, self.n_actions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """pi(.|x) = softmax(logits / temperature) (``controller_reinforce.py`` L59-60)."""
        return torch.softmax(self.logits(x) / self.temperature, dim=-1)

    def log_prob(self, x: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log pi(a | x) for integer actions of shape x.shape[:-1]."""
        logp = torch.log_softmax(self.logits(x) / self.temperature, dim=-1)
        return logp.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    @torch.no_grad()
    def sample(self, x: torch.Tensor, generator: torch.Generator | None = None,
               official_ties: bool = False):
        """Sample a ~ pi(.|x) by index; returns (actions (long), log_probs).

        The official sampler (``controller_reinforce.py`` L127-128) draws a *probability value*
        and takes the first action holding it, so equal probabilities (e.g. 0.5/0.5) always
        give action 0. ``official_ties=True`` reproduces that; the default samples the index.
        """
        probs = self.forward(x)
        flat = probs.reshape(-1, self.n_actions)
        idx = torch.multinomial(flat, 1, generator=generator).squeeze(-1)
        if official_ties:
            value = flat.gather(-1, idx.unsqueeze(-1))
            idx = (flat == value).float().argmax(-1)  # first index holding that value
        actions = idx.reshape(probs.shape[:-1])
        log_probs = torch.log(probs.gather(-1, actions.unsqueeze(-1)).squeeze(-1))
        return actions, log_probs


def policy_loss(controller: Controller, features: torch.Tensor, actions: torch.Tensor,
                returns: torch.Tensor) -> torch.Tensor:
    """-(1/T) sum_t log pi(a_t | x_t) * return_t (``controller_reinforce.py`` L87-88).

    Descending it ascends paper Eq. 2's objective J = E[R]: its gradient is
    -(1/T) sum_t (R_t - B) grad log pi(a_t|x_t), S = 1. With batched controllers
    (``n_models``) the per-model means are summed, so each model gets its own gradient.
    """
    if actions.shape != features.shape[:-1] or returns.shape != actions.shape:
        raise ValueError(f"features {tuple(features.shape)}, actions {tuple(actions.shape)} and "
                         f"returns {tuple(returns.shape)} do not line up (want (...,T,f), (...,T))")
    logp = controller.log_prob(features, actions)
    per_model = -(logp * returns.to(logp.dtype)).mean(-1)
    return per_model.sum()


def reinforce_step(controller: Controller, optimizer: torch.optim.Optimizer,
                   features: torch.Tensor, actions: torch.Tensor,
                   returns: torch.Tensor) -> torch.Tensor:
    """One REINFORCE update (paper Eq. 2, Algorithm 1's "update phi"): descend
    :func:`policy_loss`, so actions with positive return become more likely (the official
    ``train_one_step``, once per episode). Returns the loss before the step (detached)."""
    optimizer.zero_grad()
    loss = policy_loss(controller, features, actions, returns)
    loss.backward()
    optimizer.step()
    return loss.detach()


class EMABaseline:
    """The moving-average baseline B of paper Eq. 2, B <- eta B + (1 - eta) R, in the official
    order (``models/reg.py`` L274-286): the first call sets B = R (advantage 0); later calls
    update B first, then return clip(R - B, -clip, clip). Works on floats and tensors; ``decay``
    and ``clip`` may be tensors (one value per independent controller)."""

    def __init__(self, decay, clip=None):
        d = torch.as_tensor(decay, dtype=torch.float64)
        if d.isnan().any() or (d < 0).any() or (d > 1).any():
            raise ValueError(f"decay must lie in [0, 1], got {decay!r}")
        if clip is not None and not bool((torch.as_tensor(clip) > 0).all()):
            raise ValueError(f"clip must be > 0 or None, got {clip!r}")
        self.decay, self.clip, self.value = decay, clip, None

    def __call__(self, reward):
        if self.value is None:
            self.value = reward
        else:
            self.value = self.decay * self.value + (1 - self.decay) * reward
        adv = reward - self.value
        if self.clip is not None:
            if torch.is_tensor(adv):
                c = torch.as_tensor(self.clip, dtype=adv.dtype)
                adv = torch.maximum(torch.minimum(adv, c), -c)
            else:
                adv = max(-self.clip, min(self.clip, adv))
        return adv


# --------------------------------------------------------------------------- rewards
def final_reward(kind: str, value, c: float):
    """The episode reward R (paper §4.1-4.2; ``models/reg.py`` L271-272, ``models/cls.py``
    L277-278): regression C / mse (the best validation MSE), classification
    -C / max(acc, 0.5) (= C/(err - 1) of the paper, floored at chance for 2 classes),
    gan C * IS^2."""
    if kind == "regression":
        bad = bool((value <= 0).any()) if torch.is_tensor(value) else value <= 0
        if bad:
            raise ValueError(f"regression reward C/mse needs mse > 0, got {value!r}")
        return c / value
    if kind == "classification":
        return -c / (value.clamp(min=0.5) if torch.is_tensor(value) else max(value, 0.5))
    if kind == "gan":
        return c * value ** 2
    raise ValueError(f"unknown reward kind {kind!r}; use regression, classification or gan")


def shaping_reward(improve, improve_ema, cap: float = 20.0, scale: float = 1.0):
    """The official per-step reward (``models/reg.py`` L244-262, not in the paper):
    scale * sign(improve) * min(sqrt(|improve| / (|improve_ema| + 1e-5)), cap), where improve is
    this step's drop in validation loss and improve_ema its moving average *already updated*
    with this step (decay 0.8 for reg; first step: improve = 0.1). ``cap`` = reward_max_value
    (20 reg, 5 cls), ``scale`` = reward_step_ctrl (1 reg, 0.1 cls). Floats or tensors."""
    if torch.is_tensor(improve) or torch.is_tensor(improve_ema):
        improve, improve_ema = torch.as_tensor(improve), torch.as_tensor(improve_ema)
        value = torch.sqrt(improve.abs() / (improve_ema.abs() + 1e-5)).clamp(max=cap)
        return scale * torch.sign(improve) * value
    value = min(math.sqrt(abs(improve) / (abs(improve_ema) + 1e-5)), cap)
    return scale * math.copysign(value, improve) if improve != 0 else 0.0


def segment_reward(history, k: int = 1, c: float = 1.0, eps: float = 0.0) -> float:
    """The online segment reward of paper §4.4,
    R = C (P^(t+T) - P^(t)) / ((P^(t) - P^(t-kT)) / k), over the metric history P sampled every
    T steps: P[-1] = P^(t+T), P[-2] = P^(t), P[-2-k] = P^(t-kT). ``eps`` is added to the
    difference P^(t) - P^(t-kT) (0 in the paper; 1e-3 in the report's code,
    timur26/ICLR_Reproducibility_Challenge_Autoloss @ 3f43b25 ``autoLoss.py`` L133)."""
    p = [float(v) for v in history]
    if k < 1 or len(p) < k + 2:
        raise ValueError(f"segment_reward needs k >= 1 and at least k + 2 = {k + 2} values, "
                         f"got k={k} and {len(p)}")
    denom = (p[-2] - p[-2 - k] + eps) / k
    if denom == 0:
        raise ValueError("the metric did not change over the previous k segments: the segment "
                         "reward is undefined (pass eps > 0)")
    return c * (p[-1] - p[-2]) / denom


def handcrafted_action(a, b, threshold):
    """The hand-designed schedules S1-S3 of paper §5.1.1: take the L1 step (action 1) iff
    (A - B) / B > threshold, else the task-loss step (action 0). S1: A, B = validation and
    training task loss; S2: A = L1 loss, B = validation task loss; S3: A, B = gradient norms of
    the L1 and the task loss. Scalars give an int, tensors a long tensor."""
    if torch.is_tensor(a) or torch.is_tensor(b):
        a, b = torch.as_tensor(a), torch.as_tensor(b)
        return ((a - b) / b > threshold).long()
    if b == 0:
        raise ValueError("handcrafted_action: B = 0 makes (A - B) / B undefined")
    return int((a - b) / b > threshold)


# --------------------------------------------------------------------------- GAN metric
def inception_score(probs, splits: int = 1):
    """IS = exp(E_x KL(p(y|x) || p(y))) on each of ``splits`` consecutive parts (rows
    i N/s .. (i+1) N/s), p(y) the part's mean prediction; returns (mean, std) over parts, std with
    ddof 0 (``utils/inception_score_mnist.py`` L38-44; Salimans et al. 2016). 0 log 0 = 0."""
    p = torch.as_tensor(probs, dtype=torch.float64)
    if p.dim() != 2 or p.shape[0] < 1:
        raise ValueError(f"probs must be (N, K) class probabilities, got shape {tuple(p.shape)}")
    if (p < 0).any() or not torch.allclose(p.sum(1), torch.ones(len(p), dtype=p.dtype),
                                           atol=1e-4):
        raise ValueError("probs rows must be non-negative and sum to 1")
    n = p.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f"splits must be in 1..N={n}, got {splits}")
    scores = []
    for i in range(splits):  # a loop over splits, not over samples
        part = p[i * n // splits:(i + 1) * n // splits]
        marginal = part.mean(0, keepdim=True)
        kl = (torch.xlogy(part, part) - torch.xlogy(part, marginal)).sum(1).mean()
        scores.append(torch.exp(kl))
    s = torch.stack(scores)
    return float(s.mean()), float(s.std(correction=0))
