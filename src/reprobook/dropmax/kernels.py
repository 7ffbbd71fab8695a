"""DropMax kernels (Lee, Lee, Kim, Yang & Hwang, "DropMax: Adaptive Variational Softmax",
NeurIPS 2018, arXiv 1712.07834; ICLR 2018 submission "DropMax: Adaptive Stochastic Softmax";
reproducibility report of Liu, Nagata & English) and the output layers it is
compared with: sparsemax (Martins & Astudillo, ICML 2016) and sampled softmax (Jean et al.,
ACL 2015).

Tensors hold the classes on the last dim. Equation numbers "report eq. N" are the report's
(it quotes the ICLR equations); of the NeurIPS paper only eq. 13 (the entropy term, whose
signs the authors corrected in haebeom-lee/dropmax issue #2) is cited by number, the rest by
the official code that implements it, since the paper body was not at hand. The constants and the
objective follow the official code (haebeom-lee/dropmax, HEAD d4b44de: ``layers.py``,
``lenet.py``); everything is computed from logits in log space, where the official code takes
``log(x + 1e-20)`` of probabilities.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 1e-20  # layers.py: eps = 1e-20, added to the mask before it gates exp(o)
TAU = 0.1    # layers.py: tau = 0.1, temperature of the relaxed Bernoulli mask
MODES = ("class", "logit")


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")


def _check_target(logits: torch.Tensor, target: torch.Tensor) -> None:
    if target.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"target must hold class indices (int64), not {target.dtype}")
    if target.shape != logits.shape[:-1]:
        raise ValueError(f"target shape {tuple(target.shape)} does not match logits "
                         f"{tuple(logits.shape)} without their class dim")
    if (target.device.type == "cpu" and target.numel()  # no host sync on accelerators
            and (int(target.min()) < 0 or int(target.max()) >= logits.shape[-1])):
        raise ValueError(f"target outside [0, {logits.shape[-1]})")


# --------------------------------------------------------------------------- sparsemax
def _sparsemax_threshold(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """tau(z) of Martins & Astudillo eq. 3: with z sorted decreasingly, the support size is
    k(z) = max{k : 1 + k z_(k) > sum_{j<=k} z_(j)} and tau = (sum_{j<=k(z)} z_(j) - 1) / k(z)."""
    zs, _ = torch.sort(z, dim=dim, descending=True)
    cs = zs.cumsum(dim)
    shape = [1] * z.dim()
    shape[dim] = z.shape[dim]
    k = torch.arange(1, z.shape[dim] + 1, device=z.device, dtype=z.dtype).view(shape)
    support = (1 + k * zs > cs).sum(dim=dim, keepdim=True)
    return (cs.gather(dim, support - 1) - 1) / support.to(z.dtype)


def sparsemax(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Euclidean projection of z onto the simplex, [z_i - tau(z)]_+ (Martins & Astudillo
    eq. 2-3). Autograd through sort/gather gives their Jacobian Diag(s) - s s^T / |S|."""
    if not torch.is_floating_point(z):
        raise TypeError("sparsemax needs floating-point scores")
    return torch.clamp(z - _sparsemax_threshold(z, dim), min=0)


def sparsemax_loss(z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-example sparsemax loss (Martins & Astudillo eq. 18):
    L(z; k) = -z_k + 1/2 sum_{j in S(z)} (z_j^2 - tau(z)^2) + 1/2, written as
    -z_k + 1/2 sum_j p_j (z_j + tau) + 1/2 with p = sparsemax(z) (z_j^2 - tau^2 = p_j (z_j + tau)
    on the support, p_j = 0 off it). Its gradient is sparsemax(z) - delta_k (their eq. 19)."""
    _check_target(z, target)
    tau = _sparsemax_threshold(z)
    p = torch.clamp(z - tau, min=0)
    zk = z.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return -zk + 0.5 * (p * (z + tau)).sum(-1) + 0.5


# --------------------------------------------------------------------------- masked softmax
def dropmax_log_probs(logits: torch.Tensor, mask: torch.Tensor, mode: str = "class",
                      eps: float = EPS) -> torch.Tensor:
    """log p(y | x, z) for a mask z in [0, 1]^K (broadcast against the logits).

    ``mode="class"`` (NeurIPS masked softmax, official ``(z + eps) * exp(o)``, report eq. 5):
    p_k = (z_k + eps) e^{o_k} / sum_j (z_j + eps) e^{o_j}, as a log-softmax of o + log(z + eps),
    so that logits of +-1000 in float32 stay finite (the official exp(o) overflows).
    ``mode="logit"`` (ICLR eq. 4 as the report quotes it): softmax(z * o)."""
    _check_mode(mode)
    if mode == "class":
        return torch.log_softmax(logits + torch.log(mask + eps), dim=-1)
    return torch.log_softmax(mask * logits, dim=-1)


def dropmax_probs(logits: torch.Tensor, mask: torch.Tensor, mode: str = "class",
                  eps: float = EPS) -> torch.Tensor:
    """p(y | x, z): the exponential of :func:`dropmax_log_probs`."""
    return dropmax_log_probs(logits, mask, mode, eps).exp()


# --------------------------------------------------------------------------- masks
def _uniform(like: torch.Tensor, generator=None) -> torch.Tensor:
    return torch.rand(like.shape, generator=generator, dtype=like.dtype, device=like.device)


def _force_target(z: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    if target is None:
        return z
    _check_target(z, target)
    return z.scatter(-1, target.unsqueeze(-1), 1.0)


def concrete_mask(retain_logits: torch.Tensor, tau: float = TAU, u: torch.Tensor | None = None,
                  target: torch.Tensor | None = None, generator=None) -> torch.Tensor:
    """Relaxed Bernoulli mask (report eq. 1-2, official ``genmask``):
    z = sigmoid((logit(rho) + log u - log(1 - u)) / tau), u ~ U(0, 1), with the retain
    probability given by its logit; P(z > 1/2) = sigmoid(retain_logits) for every tau.
    Entries at ``target`` (class indices) are set to exactly 1 (``tf.where(y == 1, 1, z)``)."""
    if tau <= 0:
        raise ValueError(f"tau must be positive, not {tau}")
    if u is None:
        u = _uniform(retain_logits, generator)
    elif u.shape != retain_logits.shape:
        raise ValueError(f"u shape {tuple(u.shape)} != retain_logits {tuple(retain_logits.shape)}")
    z = torch.sigmoid((retain_logits + torch.log(u) - torch.log1p(-u)) / tau)
    return _force_target(z, target)


def random_mask(target: torch.Tensor, num_classes: int, retain, generator=None) -> torch.Tensor:
    """Hard {0, 1} mask z_k ~ Ber(retain) with z_t = 1 (Random-DropMax / Class Dropout:
    a fixed retain probability, the target always kept)."""
    r = torch.as_tensor(retain, dtype=torch.float32, device=target.device)
    if bool(((r < 0) | (r > 1)).any()):
        raise ValueError("retain probabilities must lie in [0, 1]")
    u = torch.rand(*target.shape, num_classes, generator=generator, device=target.device)
    z = (u < r).float()
    return _force_target(z, target)


# --------------------------------------------------------------------------- objective
def bernoulli_kl(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Elementwise KL(Ber(q) || Ber(p)) = q log(q/p) + (1-q) log((1-q)/(1-p)), 0 log 0 = 0."""
    return (torch.xlogy(q, q) - torch.xlogy(q, p)
            + torch.xlogy(1 - q, 1 - q) - torch.xlogy(1 - q, 1 - p))


def dropmax_terms(logits: torch.Tensor, prior_logits: torch.Tensor,
                  residual_logits: torch.Tensor, target: torch.Tensor, mode: str = "class",
                  tau: float = TAU, u: torch.Tensor | None = None) -> dict:
    """The official training terms (``lenet.py`` ``dropmax``, ``layers.py``), each a batch
    mean of a sum over classes; the loss is their sum plus weight decay (``run.py``).

    rho = sigmoid(ph) (prior p(z|x)), r = sigmoid(rh), q = sigmoid(stopgrad(ph) + rh)
    (approximate posterior q(z|x,y), target retained), z = relaxed mask from q (report eq. 1)
    with z_t = 1, one sample per example.
    - ``ce``: -log p(t | x, z), the reconstruction term of the negative ELBO;
    - ``kl``: -log rho_t at the target, KL(Ber(q_k) || Ber(rho_k)) elsewhere (the ELBO's KL);
    - ``aux``: binary cross-entropy of r against the one-hot label (the poster's "regress r to y");
    - ``neg_ent``: sum_k rho_k log rho_k + (1-rho_k) log(1-rho_k), minimised (NeurIPS eq. 13 with
      the signs the authors corrected in issue #2)."""
    _check_target(logits, target)
    if not (logits.shape == prior_logits.shape == residual_logits.shape):
        raise ValueError("logits, prior_logits and residual_logits must have the same shape")
    onehot = F.one_hot(target, logits.shape[-1]).bool()
    qh = prior_logits.detach() + residual_logits
    z = concrete_mask(qh, tau, u, target)
    ce = -dropmax_log_probs(logits, z, mode).gather(-1, target.unsqueeze(-1)).mean()
    log_rho, log_1m_rho = F.logsigmoid(prior_logits), F.logsigmoid(-prior_logits)
    q, log_q, log_1m_q = torch.sigmoid(qh), F.logsigmoid(qh), F.logsigmoid(-qh)
    kl_nt = q * (log_q - log_rho) + (1 - q) * (log_1m_q - log_1m_rho)
    kl = torch.where(onehot, -log_rho, kl_nt).sum(-1).mean()
    aux = torch.where(onehot, -F.logsigmoid(residual_logits),
                      -F.logsigmoid(-residual_logits)).sum(-1).mean()
    rho = torch.sigmoid(prior_logits)
    neg_ent = (rho * log_rho + (1 - rho) * log_1m_rho).sum(-1).mean()
    return {"ce": ce, "kl": kl, "aux": aux, "neg_ent": neg_ent}


# --------------------------------------------------------------------------- inference
def dropmax_mc_probs(logits: torch.Tensor, retain: torch.Tensor, samples: int = 100,
                     mode: str = "class", generator=None, chunk: int = 25) -> torch.Tensor:
    """Monte-Carlo predictive (1/S) sum_s p(y | x, z_s), z_s ~ prod_k Ber(retain_k), no label
    (the "sampled" test rule of ICLR Table 1, S = 30 or 100). Samples are drawn ``chunk`` at
    a time to bound memory."""
    if samples < 1:
        raise ValueError("samples must be >= 1")
    retain = retain.expand_as(logits)
    total = torch.zeros_like(logits)
    for start in range(0, samples, chunk):
        s = min(chunk, samples - start)
        u = torch.rand((s, *logits.shape), generator=generator, dtype=logits.dtype,
                       device=logits.device)
        total += dropmax_probs(logits.unsqueeze(0), (u < retain).to(logits.dtype), mode).sum(0)
    return total / samples


def sample_negatives(log_q: torch.Tensor, target: torch.Tensor, num_sampled: int,
                     generator=None) -> torch.Tensor:
    """(..., num_sampled) distinct classes != target drawn without replacement from Q
    restricted to the non-target classes: the top-k of log Q + Gumbel noise (Gumbel top-k =
    successive sampling proportional to Q). ``log_q`` has the logits' shape."""
    onehot = F.one_hot(target, log_q.shape[-1]).bool()
    u = torch.rand(log_q.shape, generator=generator, dtype=log_q.dtype, device=log_q.device)
    gumbel = -torch.log(-torch.log(u.clamp_min(1e-30)))
    keys = torch.where(onehot, torch.full_like(u, -float("inf")), log_q.detach() + gumbel)
    return keys.topk(num_sampled, dim=-1).indices


def sampled_softmax_loss(logits: torch.Tensor, target: torch.Tensor, num_sampled: int,
                         log_q: torch.Tensor | None = None, generator=None) -> torch.Tensor:
    """Per-example sampled softmax (Jean et al. 2015, eq. 11-12; TF ``sampled_softmax_loss``
    with ``remove_accidental_hits``): the cross-entropy over the target plus ``num_sampled``
    distinct non-target classes drawn from Q without replacement (Gumbel top-k on log Q),
    every kept logit corrected to o_k - log Q(k). ``log_q`` is (K,) or like ``logits``;
    None is the uniform Q = 1/K. With num_sampled = K - 1 every class is kept and the loss is
    cross_entropy(o - log Q, t) exactly (the uniform shift cancels: plain cross-entropy)."""
    _check_target(logits, target)
    K = logits.shape[-1]
    if not 1 <= num_sampled <= K - 1:
        raise ValueError(f"num_sampled must be in [1, {K - 1}], not {num_sampled}")
    if log_q is None:
        log_q = torch.full((K,), -torch.log(torch.tensor(float(K))).item(),
                           dtype=logits.dtype, device=logits.device)
    log_q = log_q.expand_as(logits)
    sampled = sample_negatives(log_q, target, num_sampled, generator)
    idx = torch.cat([target.unsqueeze(-1), sampled], -1)
    corrected = (logits - log_q).gather(-1, idx)
    return -torch.log_softmax(corrected, -1)[..., 0]


# --------------------------------------------------------------------------- the layer
class DropMax(nn.Module):
    """The DropMax output layer on a trunk feature h: three linear heads o (logits), ph (prior
    retain logits) and rh (residual posterior logits), as in the official ``lenet.py``.
    Weights Glorot-uniform, biases zero (``tf.layers.dense`` defaults)."""

    def __init__(self, in_features: int, num_classes: int, mode: str = "class"):
        super().__init__()
        _check_mode(mode)
        self.mode = mode
        self.logits = nn.Linear(in_features, num_classes)
        self.prior = nn.Linear(in_features, num_classes)
        self.residual = nn.Linear(in_features, num_classes)
        for lin in (self.logits, self.prior, self.residual):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, h: torch.Tensor):
        return self.logits(h), self.prior(h), self.residual(h)

    def predict_proba(self, h: torch.Tensor) -> torch.Tensor:
        """Deterministic test rule: the mask replaced by its prior mean rho(x) = sigmoid(ph)
        (E[p(y|x,z)] ~ p(y|x,E[z]); official ``accuracy((p + eps) * exp(o))``, cf. report
        eq. 6 for the drop-logit form). No label enters: commit
        fe60d5e stopped the test loss from using the label-forced mask."""
        o, ph, _ = self(h)
        return dropmax_probs(o, torch.sigmoid(ph), self.mode)

    def loss_terms(self, h: torch.Tensor, target: torch.Tensor, u=None) -> dict:
        """:func:`dropmax_terms` of this layer's heads."""
        return dropmax_terms(*self(h), target, mode=self.mode, u=u)
