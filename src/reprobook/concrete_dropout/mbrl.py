"""Model-based RL with a Concrete-dropout dynamics model (paper §4.5, NeurIPS version: the agent
"correctly reduces its uncertainty dynamically as the amount of data increases"; its exact
setting is unverified; the report's
model-based code, Alfo5123/ConcreteDropout @ de313d5 experiments/rl/model-based, a Deep PILCO dynamics
model with *fixed* dropout).

Our setting (choices, the paper's text being unavailable):
- Environment: CartPole with gymnasium's ``CartPoleEnv`` equations (:func:`.rl.cartpole_step`,
  tested against gymnasium step for step), discrete push left/right, reward 1 per step,
  termination at |x| > 2.4 or |theta| > 12 deg, truncation at ``max_steps``. The paper used
  cart-pole *swing-up* (Deep PILCO); we keep the balancing task of the report's model-free part.
- Deep PILCO-style data collection, every seed in lockstep: ``random_episodes`` episodes of a
  random policy, then after every stage one more episode of a random-shooting MPC agent that
  plans through the current dynamics model (``candidates`` random action sequences of
  ``horizon`` steps, each rolled out with ``particles`` MC-dropout particles; the first action
  of the sequence with the best mean shaped return is taken). The data set grows stage by stage.
- Dynamics model (:class:`StackedDynamicsNet`): MLP (state, action) -> state delta, ``depth``
  hidden ReLU layers of ``width`` units, Concrete dropout on the input of every layer (p per
  layer: in-h1, h1-h2, h2-out; Deep PILCO drops the hidden units, i.e. the last two), one
  learned noise variance per output dimension; inputs and targets standardised per run.
  Objective per run (paper Eq. 3 in the reference code's constants, heteroscedastic loss of concrete-dropout-keras.ipynb; the package's regression convention, tau = 1 in the
  constants): mean_batch sum_d [exp(-s_d)(y_d - mu_d)^2 + s_d] + (1/N) sum_layers
  [l^2 ||W||^2/(1-p) - 2 K H(p)], N the run's number of transitions.
- Two measurements of p vs data: the agent's own model, warm-started and trained
  ``online_steps`` more Adam steps at every stage (seeds batched); and a **refit**: fresh
  models on the data of every (stage, seed) prefix, all trained together as ONE stacked
  program for ``fit_steps`` equal Adam steps (the p-vs-N record the ledger judges).
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .kernels import (DENSE_TEMPERATURE, concrete_mask, gaussian_mc_log_likelihood,
                      stacked_regularizer)
from ..registry import derive_seed
from ..stats import spearman
from .models import _uniform
from .rl import THETA_LIMIT, X_LIMIT, cartpole_reset, cartpole_step

_BASE = {"random_episodes": 2, "depth": 2, "lengthscale": 1e-2, "init_p": 0.1}
MBRL = {
    # <= 30 s on 2 cores: 5 stages, short fits (p is step-limited: the ledger's needs fail)
    "small": dict(_BASE, stages=5, seeds=2, max_steps=80, width=64, batch=64, lr=3e-3,
                  fit_steps=400, online_steps=100, horizon=8, candidates=24, particles=4,
                  samples=20, test=500),
    # ~5 min on one thread: 8 stages (~1,400 transitions), 3,000 equal Adam steps per refit
    "medium": dict(_BASE, stages=8, seeds=3, max_steps=200, width=100, batch=64, lr=1e-3,
                   fit_steps=3000, online_steps=300, horizon=10, candidates=32, particles=5,
                   samples=30, test=1000),
    # Deep PILCO scale (2 x 200 units, as the report's dynamics model), CartPole-v1's 500
    # steps, 25 stages (hours on a CPU; the loop is host-bound, it runs on the CPU)
    "full": dict(_BASE, stages=25, seeds=10, max_steps=500, width=200, batch=128, lr=1e-3,
                 fit_steps=10000, online_steps=1000, horizon=15, candidates=64, particles=8,
                 samples=50, test=2000),
}
MBRL_LAYERS = ("in-h1", "h1-h2", "h2-out")
HIDDEN = MBRL_LAYERS[1:]  # the layers Deep PILCO drops
D_STATE, D_IN = 4, 5


# --------------------------------------------------------------------------- the model
class StackedDynamicsNet(nn.Module):
    """``runs`` independent MLPs (x, x_dot, theta, theta_dot, a in {-1,+1}) -> standardised
    state delta, weights (R, in, out) applied with batched matmuls, Concrete dropout on the
    input of every layer (one p per run and layer; :func:`concrete_mask`, t = 0.1), one
    learned log-variance per run and output dimension. Standardisation statistics are buffers
    set by :meth:`standardise`. x (R, B, 5) -> (mu (R, B, 4), s (R, 1, 4), regulariser (R,))."""

    def __init__(self, runs: int, width: int, depth: int, lengthscale: float,
                 init_p: float = 0.1, seed: int = 0, temperature: float = DENSE_TEMPERATURE):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        dims = [D_IN] + [width] * depth + [D_STATE]
        shapes = list(zip(dims[:-1], dims[1:]))
        self.weights = nn.ParameterList(nn.Parameter(_uniform((runs, a, b), a ** -0.5, g))
                                        for a, b in shapes)
        self.biases = nn.ParameterList(nn.Parameter(_uniform((runs, 1, b), a ** -0.5, g))
                                       for a, b in shapes)
        logit = math.log(init_p) - math.log1p(-init_p)
        self.p_logits = nn.ParameterList(nn.Parameter(torch.full((runs,), logit)) for _ in shapes)
        self.log_noise = nn.Parameter(torch.zeros(runs, 1, D_STATE))
        for name, d, v in (("x_mean", D_IN, 0.0), ("x_std", D_IN, 1.0),
                           ("y_mean", D_STATE, 0.0), ("y_std", D_STATE, 1.0)):
            self.register_buffer(name, torch.full((runs, 1, d), v))
        self.lengthscale, self.temperature = lengthscale, temperature

    def ps(self) -> torch.Tensor:
        """(R, L) dropout probabilities in layer order (in-h1, h1-h2, ..., h-out)."""
        return torch.stack([torch.sigmoid(q) for q in self.p_logits], 1)

    @torch.no_grad()
    def standardise(self, X: torch.Tensor, Y: torch.Tensor, n: torch.Tensor) -> None:
        """Set each run's input/target mean and population std from its first n_r rows of
        X (R, nmax, 5), Y (R, nmax, 4) (zero std -> 1)."""
        m = (torch.arange(X.shape[1], device=X.device)[None, :] < n[:, None]).to(X.dtype)[..., None]
        cnt = m.sum(1, keepdim=True)
        for data, mean, std in ((X, self.x_mean, self.x_std), (Y, self.y_mean, self.y_std)):
            mu = (data * m).sum(1, keepdim=True) / cnt
            sd = (((data - mu) ** 2 * m).sum(1, keepdim=True) / cnt).sqrt()
            mean.copy_(mu)
            std.copy_(torch.where(sd > 1e-8, sd, torch.ones_like(sd)))

    def regularizer(self) -> torch.Tensor:
        """(R,): paper Eq. 3 summed over layers (:func:`stacked_regularizer`; kernels only;
        the caller divides by N)."""
        return stacked_regularizer(self.weights, self.p_logits, self.lengthscale)

    def forward(self, x):
        """x in raw units (R, B, 5) -> standardised delta mean (R, B, 4), log-variance, reg."""
        h = (x - self.x_mean) / self.x_std
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            p = torch.sigmoid(self.p_logits[i])[:, None, None]
            h = h * concrete_mask(p, h.shape, self.temperature) / (1 - p)
            h = torch.baddbmm(b, h, w)
            if i < len(self.weights) - 1:
                h = F.relu(h)
        return h, self.log_noise, self.regularizer()

    def next_state(self, x):
        """One MC-dropout sample of the next state in raw units: s + mu * y_std + y_mean."""
        mu, _, _ = self(x)
        return x[..., :D_STATE] + mu * self.y_std + self.y_mean


def dynamics_loss(mu, s, y):
    """(R,): mean over the batch of sum_d exp(-s_d)(y_d - mu_d)^2 + s_d (2 x Gaussian NLL
    - const, as in concrete-dropout-keras.ipynb), y and mu standardised."""
    return (torch.exp(-s) * (y - mu) ** 2 + s).sum(-1).mean(-1)


def train_steps(model, opt, X, Y, n, steps: int, batch: int, generator=None) -> float:
    """``steps`` Adam steps; run r draws ``batch`` rows uniformly with replacement from its
    first n_r rows of X (R, nmax, 5), Y (R, nmax, 4); loss per run = :func:`dynamics_loss`
    + regulariser / n_r, summed over runs. Returns the last mean loss."""
    R = X.shape[0]
    rows = torch.arange(R)[:, None]
    nf = n.to(X.dtype)
    loss = torch.zeros(())
    for _ in range(steps):
        idx = (torch.rand(R, batch, generator=generator) * nf[:, None]).long()
        mu, s, reg = model(X[rows, idx])
        y = (Y[rows, idx] - model.y_mean) / model.y_std
        loss = (dynamics_loss(mu, s, y) + reg / nf).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return float(loss.detach()) / R


@torch.no_grad()
def evaluate(model, Xt, Yt, samples: int, max_elements: float = 2e7) -> dict:
    """MC dropout on held-out transitions Xt (R, n, 5), Yt (R, n, 4) (raw deltas): per run the
    normalised MSE of the MC mean (mean over dims of MSE / Var(y_d); 1 = predicting the mean)
    and the per-transition MC log-likelihood in raw units (:func:`gaussian_mc_log_likelihood`).
    Samples are drawn in chunks of at most ``max_elements`` hidden activations."""
    R, n = Xt.shape[:2]
    chunk = max(1, int(max_elements // (R * n * model.weights[0].shape[2])))
    mus = []
    for start in range(0, samples, chunk):
        t = min(chunk, samples - start)
        mu, _, _ = model(Xt.repeat(1, t, 1))
        mus.append(mu.reshape(R, t, n, D_STATE))
    mu = torch.cat(mus, 1).double() * model.y_std.double()[:, None] + model.y_mean.double()[:, None]
    s = (model.log_noise.double() + 2 * torch.log(model.y_std.double()))[:, None]  # (R,1,1,4)
    Yt = Yt.double()
    nmse = (((mu.mean(1) - Yt) ** 2).mean(1) / Yt.var(1, unbiased=False)).mean(-1)
    ll = [float(gaussian_mc_log_likelihood(Yt[r], mu[r], s[r])) for r in range(R)]
    return {"nmse": nmse.tolist(), "ll": ll}


# --------------------------------------------------------------------------- control
def shaped_reward(state: torch.Tensor) -> torch.Tensor:
    """Planning reward of a predicted state (ours): 1 - (theta/12 deg)^2 - 0.1 (x/2.4)^2,
    counted only while the predicted trajectory has not left the CartPole bounds."""
    return 1 - (state[..., 2] / THETA_LIMIT) ** 2 - 0.1 * (state[..., 0] / X_LIMIT) ** 2


@torch.no_grad()
def mpc_actions(model, state: torch.Tensor, horizon: int, candidates: int, particles: int,
                generator=None) -> torch.Tensor:
    """Random-shooting MPC through the MC-dropout model, every run at once: state (R, 4) ->
    action (R,) in {0, 1}. Each of ``candidates`` random action sequences is rolled out with
    ``particles`` particles (fresh dropout masks at every step); a sequence's score is the mean
    over particles of the summed :func:`shaped_reward` until the predicted state leaves the
    bounds (|x| > 2.4 or |theta| > 12 deg)."""
    R = state.shape[0]
    A = torch.randint(0, 2, (R, candidates, horizon), generator=generator)
    s = state.float()[:, None, :].expand(R, candidates * particles, D_STATE)
    alive = torch.ones(R, candidates * particles)
    score = torch.zeros(R, candidates * particles)
    acts = A.repeat_interleave(particles, 1).float() * 2 - 1  # (R, C*P, H) in {-1, +1}
    for t in range(horizon):
        s = model.next_state(torch.cat([s, acts[:, :, t:t + 1]], -1))
        alive = alive * ((s[..., 0].abs() <= X_LIMIT) & (s[..., 2].abs() <= THETA_LIMIT)).float()
        score = score + alive * shaped_reward(s)
    best = score.reshape(R, candidates, particles).mean(-1).argmax(1)
    return A[torch.arange(R), best, 0]


def collect_episode(runs: int, max_steps: int, policy, generator=None):
    """One episode per run in lockstep on the batched CartPole (:func:`cartpole_step`, gymnasium
    equations): ``policy(state (R, 4)) -> action (R,)``. Returns the transitions of each run as
    a list of (inputs (n_r, 5): state and action in {-1,+1}, deltas (n_r, 4)) and the returns
    (steps survived, the terminating step included, at most ``max_steps``)."""
    s = cartpole_reset(runs, generator)
    alive = torch.ones(runs, dtype=torch.bool)
    xs, ys, ms = [], [], []
    for _ in range(max_steps):
        a = policy(s).long()
        s2, done = cartpole_step(s, a)
        xs.append(torch.cat([s, (2 * a - 1).double()[:, None]], 1))
        ys.append(s2 - s)
        ms.append(alive.clone())
        alive = alive & ~done
        s = s2
        if not alive.any():
            break
    X, Y, M = torch.stack(xs, 1), torch.stack(ys, 1), torch.stack(ms, 1)
    return [(X[r, M[r]], Y[r, M[r]]) for r in range(runs)], M.sum(1).tolist()


def heldout_transitions(runs: int, n: int, max_steps: int, generator=None):
    """Held-out one-step transitions per run: the first ``n`` transitions of fresh
    random-policy episodes (the distribution of the first stage's data, never trained on).
    (R, n, 5), (R, n, 4) float32."""
    data = [[] for _ in range(runs)]
    while min(sum(len(c[0]) for c in d) for d in data) < n:
        eps, _ = collect_episode(runs, max_steps, lambda s: torch.randint(
            0, 2, (len(s),), generator=generator), generator)
        for r in range(runs):
            data[r].append(eps[r])
    X, Y, _ = _pad(data, max(sum(len(c[0]) for c in d) for d in data))
    return X[:, :n], Y[:, :n]


# --------------------------------------------------------------------------- the experiment
def _pad(data: list, n_max: int):
    """Per-run lists of (X, Y) chunks -> (R, n_max, 5), (R, n_max, 4) float32 and sizes."""
    R = len(data)
    X, Y = torch.zeros(R, n_max, D_IN), torch.zeros(R, n_max, D_STATE)
    n = torch.zeros(R, dtype=torch.long)
    for r, chunks in enumerate(data):
        x, y = torch.cat([c[0] for c in chunks]), torch.cat([c[1] for c in chunks])
        X[r, :len(x)], Y[r, :len(y)], n[r] = x.float(), y.float(), len(x)
    return X, Y, n


def run_mbrl(stages: int, seeds: int, max_steps: int = 200, random_episodes: int = 2,
             width: int = 200, depth: int = 2, lengthscale: float = 1e-2, init_p: float = 0.1,
             batch: int = 128, lr: float = 1e-3, fit_steps: int = 3000, online_steps: int = 500,
             horizon: int = 15, candidates: int = 64, particles: int = 8, samples: int = 30,
             test: int = 1000, seed: int = 0) -> dict:
    """The collection loop (seeds batched: one warm-started model per seed, ``online_steps``
    Adam steps per stage, then one MPC episode) and the refit of fresh models on every
    (stage, seed) data prefix as ONE stacked program. See the module docstring."""
    if stages < 2:
        raise ValueError(f"stages must be >= 2 (got {stages})")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    Xt, Yt = heldout_transitions(seeds, test, max_steps, g)
    data, sizes = [[] for _ in range(seeds)], []
    rand_ret = []
    for _ in range(random_episodes):
        eps, ret = collect_episode(seeds, max_steps, lambda s: torch.randint(0, 2, (len(s),), generator=g), g)
        rand_ret.append(ret)
        for r in range(seeds):
            data[r].append(eps[r])
    model = StackedDynamicsNet(seeds, width, depth, lengthscale, init_p, seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    online_p, online_eval, returns = [], [], []
    t0 = time.perf_counter()
    for k in range(stages):
        X, Y, n = _pad(data, max(sum(len(c[0]) for c in d) for d in data))
        sizes.append(n.tolist())
        model.standardise(X, Y, n)
        model.train()
        train_steps(model, opt, X, Y, n, online_steps, batch, g)
        online_p.append(model.ps().detach().tolist())
        online_eval.append(evaluate(model, Xt, Yt, samples))
        if k < stages - 1:
            eps, ret = collect_episode(seeds, max_steps, lambda s: mpc_actions(
                model, s, horizon, candidates, particles, g), g)
            returns.append(ret)
            for r in range(seeds):
                data[r].append(eps[r])
    collect_s = time.perf_counter() - t0
    # refit: run (k, r) = fresh model on seed r's first sizes[k][r] transitions
    X, Y, _ = _pad(data, max(sizes[-1]))
    runs = [(k, r) for k in range(stages) for r in range(seeds)]
    Xr, Yr = X[[r for _, r in runs]], Y[[r for _, r in runs]]
    nr = torch.tensor([sizes[k][r] for k, r in runs])
    refit = StackedDynamicsNet(len(runs), width, depth, lengthscale, init_p,
                              derive_seed(seed, "refit"))
    refit.standardise(Xr, Yr, nr)
    t1 = time.perf_counter()
    train_steps(refit, torch.optim.Adam(refit.parameters(), lr=lr), Xr, Yr, nr, fit_steps, batch, g)
    fit_s = time.perf_counter() - t1
    ps = refit.ps().detach().reshape(stages, seeds, -1)
    ev = evaluate(refit, Xt[[r for _, r in runs]], Yt[[r for _, r in runs]], samples)
    return _summarise(sizes, ps, ev, online_p, online_eval, returns, rand_ret,
                      dict(collect_s=round(collect_s, 2), fit_s=round(fit_s, 2),
                           fit_steps=fit_steps, online_steps=online_steps, stages=stages,
                           seeds=seeds, max_steps=max_steps))


def _by_n(keys, arr):
    return {k: float(v) for k, v in zip(keys, arr)}


def _summarise(sizes, ps, ev, online_p, online_eval, returns, rand_ret, meta) -> dict:
    """Record values: data sizes per stage and seed, p per layer (refit and online), test
    NMSE / LL, MPC returns; dicts keyed by the mean data size (str) feed the ledger's trends."""
    S, R = len(sizes), len(sizes[0])
    n_mean = np.array(sizes, dtype=float).mean(1)
    keys = [f"{v:.1f}" for v in n_mean]
    ps = ps.numpy()  # (stages, seeds, layers)
    op = np.array(online_p)  # (stages, seeds, layers)
    nmse, ll = np.array(ev["nmse"]).reshape(S, R), np.array(ev["ll"]).reshape(S, R)
    hid = [MBRL_LAYERS.index(h) for h in HIDDEN]
    out = dict(meta)
    out.update({
        "data_sizes": n_mean.tolist(), "data_sizes_per_seed": sizes,
        "data_ratio": float(n_mean[-1] / n_mean[0]),
        "p_runs": ps.tolist(), "p_online_runs": op.tolist(),
        "p": {l: _by_n(keys, ps[:, :, j].mean(1)) for j, l in enumerate(MBRL_LAYERS)},
        "p_online": {l: _by_n(keys, op[:, :, j].mean(1)) for j, l in enumerate(MBRL_LAYERS)},
        "p_hidden": _by_n(keys, ps[:, :, hid].mean((1, 2))),
        "p_hidden_online": _by_n(keys, op[:, :, hid].mean((1, 2))),
        "test_nmse": _by_n(keys, nmse.mean(1)), "test_ll": _by_n(keys, ll.mean(1)),
        "test_nmse_online": _by_n(keys, [np.mean(e["nmse"]) for e in online_eval]),
        "test_ll_online": _by_n(keys, [np.mean(e["ll"]) for e in online_eval]),
        "returns": np.array(returns, dtype=float).mean(1).tolist(),
        "returns_per_seed": returns,
        "random_return": float(np.mean(rand_ret)),
    })
    out["rho_p_hidden"] = spearman(n_mean, ps[:, :, hid].mean((1, 2)))
    out["rho_p_hidden_online"] = spearman(n_mean, op[:, :, hid].mean((1, 2)))
    out["test_nmse_largest"] = float(nmse[-1].mean())
    out["mpc_return_last"] = out["returns"][-1] if returns else float("nan")
    return out


def plot_mbrl(v: dict):
    """Learned p per layer vs transitions collected (refit: solid, the agent's online model:
    dashed), and the MPC episode returns per stage."""
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.3))
    n = v["data_sizes"]
    for layer in MBRL_LAYERS:
        line, = a1.plot(n, list(v["p"][layer].values()), "o-", label=f"{layer} (refit)")
        a1.plot(n, list(v["p_online"][layer].values()), "--", color=line.get_color(),
                alpha=0.7, label=f"{layer} (online)")
    a1.set(xscale="log", xlabel="transitions collected (mean over seeds)", ylabel="learned p",
           title=f"dynamics model p vs data ({v['seeds']} seeds)")
    a1.legend(fontsize=7)
    a2.plot(range(1, len(v["returns"]) + 1), v["returns"], "o-", label="MPC episode")
    a2.axhline(v["random_return"], color="grey", ls=":", label="random policy")
    a2.set(xlabel="stage", ylabel="episode return", title="CartPole return per stage")
    a2.legend(fontsize=7)
    fig.tight_layout()
    return fig
