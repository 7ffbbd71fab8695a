"""CartPole policy gradient with Concrete dropout (report §3.4, model-free):
REINFORCE agents with the report's policy (Alfo5123/ConcreteDropout
experiments/rl/model-free/baseline.py: Linear(4, 128) -> dropout -> ReLU -> Linear(128, 2) ->
softmax; Adam lr 0.01, gamma 0.99, returns normalised per episode), the hidden dropout being
Concrete (learned p) or a fixed Bernoulli p = 0.5 or 0.1. All agents -- variants x seeds -- run
in lockstep as ONE stacked program (:class:`~.mnist.StackedMLPClassifier`) on our batched
CartPole dynamics (:func:`cartpole_step`, the equations of gymnasium's ``CartPoleEnv``, tested
against its ``step``), one episode per agent per update. The report's bug is reproduced side by
side: its ``select_action`` stores ``torch.Tensor([c.log_prob(a)])``, a copy cut from the graph,
so its policy-gradient loss sends no gradient into the policy (``detach=True`` variants).
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from .mnist import StackedMLPClassifier

# gymnasium CartPoleEnv constants (CartPole-v0/v1)
GRAVITY, MASSCART, MASSPOLE, LENGTH, FORCE, TAU = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
TOTAL_MASS, POLEMASS_LENGTH = MASSCART + MASSPOLE, MASSPOLE * LENGTH
THETA_LIMIT, X_LIMIT = 12 * 2 * math.pi / 360, 2.4


def cartpole_reset(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, 4) float64 states (x, x_dot, theta, theta_dot), each uniform on [-0.05, 0.05]."""
    return (torch.rand(n, 4, generator=generator, dtype=torch.float64) - 0.5) * 0.1


def cartpole_step(state: torch.Tensor, action: torch.Tensor):
    """One Euler step of the cart-pole (Florian 2007, as gymnasium): state (n, 4), action (n,)
    in {0, 1} (push left / right) -> (next state, terminated: |x| > 2.4 or |theta| > 12 deg)."""
    if state.dim() != 2 or state.shape[1] != 4 or action.shape != state.shape[:1]:
        raise ValueError(f"state must be (n, 4) and action (n,); got {tuple(state.shape)}, "
                         f"{tuple(action.shape)}")
    x, x_dot, th, th_dot = state.unbind(1)
    force = torch.where(action.bool(), FORCE, -FORCE).to(state.dtype)
    cos, sin = torch.cos(th), torch.sin(th)
    temp = (force + POLEMASS_LENGTH * th_dot ** 2 * sin) / TOTAL_MASS
    th_acc = (GRAVITY * sin - cos * temp) / (LENGTH * (4.0 / 3.0 - MASSPOLE * cos ** 2 / TOTAL_MASS))
    x_acc = temp - POLEMASS_LENGTH * th_acc * cos / TOTAL_MASS
    new = torch.stack([x + TAU * x_dot, x_dot + TAU * x_acc, th + TAU * th_dot,
                       th_dot + TAU * th_acc], 1)
    done = (new[:, 0].abs() > X_LIMIT) | (new[:, 2].abs() > THETA_LIMIT)
    return new, done


def discounted_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """G_t = sum_{k >= t} gamma^(k-t) r_k along dim 1 of (A, T) rewards."""
    out = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0], dtype=rewards.dtype)
    for t in range(rewards.shape[1] - 1, -1, -1):
        running = rewards[:, t] + gamma * running
        out[:, t] = running
    return out


def reinforce_loss(logp, rewards, valid, gamma: float = 0.99, detach: torch.Tensor | None = None):
    """Per agent: -sum_t log pi(a_t|s_t) * (G_t - mean G) / (std G + 1e-9) over its valid steps
    (the report's ``update_policy``); ``detach`` (A,) bool cuts log pi from the graph for those
    agents, as the report's ``torch.Tensor([c.log_prob(a)])`` does."""
    g = discounted_returns(rewards * valid, gamma)
    n = valid.sum(1, keepdim=True)
    mean = (g * valid).sum(1, keepdim=True) / n
    std = (((g - mean) ** 2 * valid).sum(1, keepdim=True) / (n - 1).clamp(min=1)).sqrt()
    adv = ((g - mean) / (std + 1e-9) * valid).detach()
    if detach is not None:
        logp = torch.where(detach[:, None], logp.detach(), logp)
    return -(logp * adv).sum(1)


VARIANTS = {"concrete": (None, False), "fixed-0.5": (0.5, False), "fixed-0.1": (0.1, False),
            "concrete-detached": (None, True), "fixed-0.5-detached": (0.5, True)}


def run_cartpole(episodes: int, seeds: int, max_steps: int = 200, hidden: int = 128,
                 lr: float = 1e-2, gamma: float = 0.99, n_prior: float = 2e5,
                 lengthscale2: float = 0.2, variants=tuple(VARIANTS), seed: int = 0) -> dict:
    """All (variant, seed) agents in lockstep: each plays one episode (<= ``max_steps``, the
    CartPole-v0 limit 200), then every agent takes one Adam step on its REINFORCE loss plus
    its regulariser / ``n_prior`` (l^2/N = 1e-6, 2/N = 1e-5: the kernel's default constants).
    Records every agent's episode lengths and learned p."""
    names = [(v, s) for v in variants for s in range(seeds)]
    A = len(names)
    fixed = torch.tensor([[0.0, float("nan") if VARIANTS[v][0] is None else VARIANTS[v][0]]
                          for v, _ in names])
    detach = torch.tensor([VARIANTS[v][1] for v, _ in names])
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    policy = StackedMLPClassifier(A, 4, hidden, 1, 2, lengthscale2, fixed, seed=seed)
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    lengths, ps = np.zeros((episodes, A)), np.zeros((episodes, A))
    t0 = time.perf_counter()
    for ep in range(episodes):
        s, alive = cartpole_reset(A, g), torch.ones(A, dtype=torch.bool)
        logps, rewards, valid = [], [], []
        for _ in range(max_steps):
            logits = policy(s.float()[:, None, :])[:, 0]
            logp_all = torch.log_softmax(logits, -1)
            a = torch.multinomial(logp_all.exp().detach(), 1, generator=g)[:, 0]
            logps.append(logp_all.gather(1, a[:, None])[:, 0])
            valid.append(alive.clone())
            s, done = cartpole_step(s, a)
            rewards.append(alive.double())
            alive = alive & ~done
            if not alive.any():
                break
        v = torch.stack(valid, 1).float()
        loss = reinforce_loss(torch.stack(logps, 1), torch.stack(rewards, 1).float(), v, gamma,
                              detach) + policy.regularizer() / n_prior
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        lengths[ep] = v.sum(1).numpy()
        ps[ep] = policy.ps()[:, 1].detach().numpy()
    return _summarise_rl(names, lengths, ps, time.perf_counter() - t0, max_steps)


def _summarise_rl(names, lengths, ps, train_s, max_steps) -> dict:
    E = len(lengths)
    k = max(1, E // 5)
    out = {"episodes": E, "max_steps": max_steps, "train_s": round(train_s, 2),
           "seeds": 1 + max(s for _, s in names)}
    by = {}
    for v in dict.fromkeys(v for v, _ in names):
        cols = [i for i, (vv, _) in enumerate(names) if vv == v]
        L = lengths[:, cols]
        by[v] = {"mean_length": float(L.mean()), "first_fifth": float(L[:k].mean()),
                 "last_fifth": float(L[-k:].mean()),
                 "curve": L.mean(1).tolist(), "p_curve": ps[:, cols].mean(1).tolist(),
                 "p_final": float(ps[-1, cols].mean())}
        by[v]["improvement"] = by[v]["last_fifth"] - by[v]["first_fifth"]
    out["variants"] = by
    out["mean_length"] = {v: by[v]["mean_length"] for v in by}
    if "concrete" in by:
        c = by["concrete"]["p_curve"]
        out["concrete_p_at"] = {"tenth": c[max(0, E // 10 - 1)], "last": c[-1]}
    out["detached_improvement"] = {v: by[v]["improvement"] for v in by if v.endswith("-detached")}
    return out


def plot_rl(v: dict):
    """Episode length (mean over seeds, 10-episode moving average) and the learned p."""
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.3))
    w = max(1, v["episodes"] // 20)
    for name, r in v["variants"].items():
        c = np.convolve(r["curve"], np.ones(w) / w, mode="valid")
        a1.plot(np.arange(len(c)) + w, c, ls="--" if name.endswith("detached") else "-", label=name)
        if not name.startswith("fixed"):
            a2.plot(range(1, v["episodes"] + 1), r["p_curve"],
                    ls="--" if name.endswith("detached") else "-", label=name)
    a1.set(xlabel="episode", ylabel="episode length", title=f"CartPole REINFORCE ({v['seeds']} seeds)")
    a2.set(xlabel="episode", ylabel="learned p (hidden layer)", title="Concrete p")
    a1.legend(fontsize=7)
    a2.legend(fontsize=7)
    fig.tight_layout()
    return fig
