"""The d-ary quadratic regression task of AutoLoss (paper §4.1, Table 1) as the official code
runs it (safpla/AutoLossRelease @ c3cdf97: ``models/reg.py``, ``trainer.py``, ``config/reg``),
with many independent task models ("lanes") stepped in lockstep as one tensor program.

A lane is one quadratic model theta = [w1, vec(w2)] with its own lambda, its own Adam state and
its own schedule. Every step each lane takes one action: 0 = MSE step, 1 = L1 step (the two
``apply_gradients`` ops of one shared TF Adam, ``models/reg.py`` L130-137), 2 = joint step on
MSE + L1 (the DGS op ``update_total``). After the step the lane's training MSE, L1 loss, gradient
magnitudes and validation MSE are measured (``response``, L163-217), giving the controller's five
state features (``get_state``, L288-324) and the per-step shaping reward (L244-262); every
``valid_every`` steps the best validation MSE and its parameters are kept (``check_terminate``,
L219-242). The gradients are written out (MSE: 2/n Phi^T r; L1: lam sign(theta)) because the
model is linear in theta with the features Phi = [x, vec(x x^T)/10].
"""
from __future__ import annotations

import math

import torch

from .kernels import Controller, EMABaseline, final_reward, handcrafted_action, policy_loss, \
    shaping_reward

N_FEATURES = 5
KINDS = ("mse", "joint", "alternate", "S1", "S2", "S3")  # fixed schedules (lane kinds 0-5)
OFFICIAL = {"lr": 5e-4, "valid_every": 10, "max_endurance": 100, "max_steps": 20000,
            "lam": 0.2, "reward_c": 2e4, "adv_clip": 20.0, "baseline_decay": 0.8,
            "step_cap": 20.0, "step_scale": 1.0, "temperature": 2.0, "hidden": 16,
            "lr_ctrl": 1e-3, "episodes": 400, "max_endurance_ctrl": 50}  # config/reg/cfg.py


def quadratic_features(x: torch.Tensor) -> torch.Tensor:
    """Phi(x) = [x, vec(x x^T) / 10], so Phi theta = quadratic_predict(x, w1, w2)."""
    return torch.cat([x, (x[:, :, None] * x[:, None, :]).flatten(1) / 10], 1)


def partitions(data: dict, dtype=torch.float32) -> dict:
    """The five 200-row partitions of ``gen_reg_data.py`` as (Phi, y) pairs."""
    x, y = data["x"], data["y"]
    n = len(x) // 5
    names = ("train_ctrl", "valid_ctrl", "train_task", "valid_task", "test")
    return {k: (quadratic_features(x[i * n:(i + 1) * n]).to(dtype), y[i * n:(i + 1) * n].to(dtype))
            for i, k in enumerate(names)}


class Lanes:
    """M quadratic regression models trained in lockstep with TF-1.8 Adam (eps 1e-8 outside the
    bias correction: lr_t = lr sqrt(1-b2^t)/(1-b1^t), theta -= lr_t m / (sqrt(v) + eps)).

    All lanes start together, so the step counter is one Python int. A lane that stopped early
    (``alive`` False) keeps stepping, but its best checkpoint and endurance no longer change
    and the controller ignores its steps."""

    def __init__(self, train, valid, lam, lr=5e-4, valid_every=10, max_endurance=100,
                 early_stop=False, features=True, joint=False):
        (phi, y), (phi_v, y_v) = train, valid
        self.phiT, self.phi2, self.ny = phi.T.contiguous(), phi * (2.0 / len(phi)), -y
        self.phivT, self.nyv = phi_v.T.contiguous(), -y_v
        self.dtype = phi.dtype
        self.lam = torch.as_tensor(lam, dtype=phi.dtype)
        self.lam_col = self.lam[:, None]
        self.M, self.P = len(self.lam), phi.shape[1]
        self.lr, self.valid_every, self.max_endurance = lr, valid_every, max_endurance
        self.early_stop, self.with_features, self.joint = early_stop, features, joint

    def reset(self, generator: torch.Generator):
        """Fresh models: w1 ~ N(0, 0.1^2), w2 ~ N(0, 0.01^2) (``models/reg.py`` L88-95)."""
        M, P, dt = self.M, self.P, self.dtype
        d = int(round((math.sqrt(1 + 4 * P) - 1) / 2))
        scale = torch.cat([torch.full((d,), 0.1), torch.full((P - d,), 0.01)]).double()
        self.theta = (torch.randn(M, P, generator=generator, dtype=torch.float64) * scale).to(dt)
        self.m, self.v = torch.zeros_like(self.theta), torch.zeros_like(self.theta)
        self.step_no = 0
        self.alive = torch.ones(M, dtype=torch.bool)
        self.best = torch.full((M,), math.inf, dtype=dt)
        self.best_theta = self.theta.clone()
        self.best_step = torch.zeros(M, dtype=torch.long)
        self.endurance = torch.zeros(M, dtype=torch.long)
        self.features = torch.tensor([0.0, 1 + math.log(1 + 1e-5) / 12, -0.5, -1.0, 0.0],
                                     dtype=dt).repeat(M, 1)  # official initial state
        self._measure()

    def _measure(self):
        """Losses, gradients and validation MSE at the current theta (full batch)."""
        r = torch.addmm(self.ny, self.theta, self.phiT)
        self.mse = r.square().mean(1)
        self.g_mse = r @ self.phi2
        sign = torch.sign(self.theta)
        self.g_l1 = sign * self.lam_col
        self.l1 = self.theta.abs().sum(1) * self.lam
        self.valid = torch.addmm(self.nyv, self.theta, self.phivT).square().mean(1)
        self.mag_mse = self.g_mse.norm(dim=1) / math.sqrt(self.P)
        self.mag_l1 = self.lam * (torch.count_nonzero(sign, dim=1) / self.P).sqrt()

    def step(self, actions: torch.Tensor, b1=0.9, b2=0.999, eps=1e-8):
        """One Adam step per lane on the chosen loss; returns the per-step shaping reward."""
        a = actions[:, None]
        g = torch.where(a == 1, self.g_l1, self.g_mse)  # 0: MSE, 1: L1, 2: both (DGS)
        if self.joint:
            g = torch.where(a == 2, self.g_mse + self.g_l1, g)
        self.step_no += 1
        t = self.step_no
        self.m.lerp_(g, 1 - b1)
        self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        lr_t = self.lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        self.theta.addcdiv_(self.m, self.v.sqrt().add_(eps), value=-lr_t)
        prev_valid = self.valid
        self._measure()
        if not self.with_features:
            return None
        # per-step reward (models/reg.py L244-262): improve = drop of the per-step valid loss;
        # the first step of an episode has improve = 0.1 and the baseline starts at it
        if t == 1:
            improve = torch.full_like(self.valid, 0.1)
            self.ib = improve
        else:
            improve = prev_valid - self.valid
            self.ib = 0.8 * self.ib + 0.2 * improve
        reward = shaping_reward(improve, self.ib, cap=OFFICIAL["step_cap"],
                                scale=OFFICIAL["step_scale"])
        rel = torch.where(self.mse > 1e-6, (self.valid - self.mse) / self.mse,
                          torch.zeros_like(self.mse))
        self.features = torch.stack([rel, 1 + torch.log(self.ib.abs() + 1e-5) / 12,
                                     (self.mse / 20).clamp(max=1) - 0.5, self.l1 - 1,
                                     self.mag_mse - self.mag_l1], 1)
        return reward

    def validate(self):
        """Every ``valid_every`` steps (``check_terminate``): keep the best valid MSE and its
        theta; with early stopping, end lanes after ``max_endurance`` checks without progress."""
        if self.step_no % self.valid_every:
            return
        self.endurance = self.endurance + self.alive.long()
        better = self.alive & (self.valid < self.best)
        self.best = torch.where(better, self.valid, self.best)
        self.best_theta = torch.where(better[:, None], self.theta, self.best_theta)  # a copy
        self.best_step = torch.where(better, torch.full_like(self.best_step, self.step_no),
                                     self.best_step)
        self.endurance = torch.where(better, torch.zeros_like(self.endurance), self.endurance)
        if self.early_stop:
            self.alive = self.alive & (self.endurance <= self.max_endurance)

    def test_errors(self, test) -> torch.Tensor:
        """Per-row squared errors (M, n) of the best-validation parameters on ``test``."""
        phi, y = test
        return (self.best_theta.double() @ phi.T.double() - y.double()) ** 2


def fixed_actions(lanes: Lanes, kinds: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Actions of the fixed schedules: mse-only, joint (DGS), 1:1 alternation (official
    ``controller_designed``: L1 first, ``models/reg.py`` L326-335) and S1-S3 (paper §5.1.1)."""
    alt = torch.full((lanes.M,), (lanes.step_no + 1) % 2, dtype=torch.long)
    s1 = handcrafted_action(lanes.valid, lanes.mse, thresholds)
    s2 = handcrafted_action(lanes.l1, lanes.valid, thresholds)
    s3 = handcrafted_action(lanes.mag_l1, lanes.mag_mse, thresholds)
    choices = torch.stack([torch.zeros_like(alt), torch.full_like(alt, 2), alt, s1, s2, s3], 1)
    return choices.gather(1, kinds[:, None]).squeeze(1)


def run_fixed(parts: dict, lam, kinds, thresholds, seed: int, max_steps: int, **kw) -> dict:
    """Baseline mode (``trainer.py`` L414-450): each lane trains on train_task for ``max_steps``
    steps with its fixed schedule, the best valid_task checkpoint is tested."""
    kinds = torch.as_tensor(kinds, dtype=torch.long)
    lanes = Lanes(parts["train_task"], parts["valid_task"], lam, features=False,
                  joint=bool((kinds == 1).any()), **kw)
    lanes.reset(torch.Generator().manual_seed(seed))
    thresholds = torch.as_tensor(thresholds, dtype=torch.float32)
    counts = torch.zeros(lanes.M)
    for _ in range(max_steps):
        a = fixed_actions(lanes, kinds, thresholds)
        counts += (a == 1).float()
        lanes.step(a)
        lanes.validate()
    return {"sq_err": lanes.test_errors(parts["test"]), "best_valid": lanes.best,
            "l1_fraction": counts / max_steps, "best_step": lanes.best_step}


def _sample(ctrl: Controller, features: torch.Tensor, generator) -> torch.Tensor:
    """Two actions, sampled by index through the inverse CDF: a = 1 iff u >= pi(0|x)."""
    with torch.no_grad():
        p0 = ctrl(features.to(torch.float32))[:, 0]
    return (torch.rand(len(p0), generator=generator) >= p0).long()


def run_episode(lanes: Lanes, ctrl: Controller, generator, max_steps: int, record: bool):
    """One episode of every lane under its controller (``trainer.py`` L136-165). Returns the
    recorded (features, actions, step rewards, alive mask) as (T, M, ...) tensors."""
    feats, acts, rews, masks = [], [], [], []
    for step in range(max_steps + 1):
        alive = lanes.alive
        a = _sample(ctrl, lanes.features, generator)
        if record:
            feats.append(lanes.features)
            acts.append(a)
            masks.append(alive)
        r = lanes.step(a)
        if record:
            rews.append(r)
        lanes.validate()
        if lanes.step_no % lanes.valid_every == 0 and not bool(lanes.alive.any()):
            break
    if not record:
        return None
    return torch.stack(feats), torch.stack(acts), torch.stack(rews), torch.stack(masks)


def train_controllers(parts: dict, lam, seeds, *, episodes: int, max_steps: int,
                      hidden=16, temperature=2.0, lr_ctrl=1e-3, reward_c=2e4, adv_clip=20.0,
                      baseline_decay=0.8, shaping=True, direction=1.0, max_endurance_ctrl=50,
                      task_seed=0, **lane_kw) -> dict:
    """REINFORCE training of one controller per lane (``trainer.py`` L118-220): per episode a
    fresh task model on train_ctrl with early stopping on valid_ctrl; final reward C / best
    valid MSE, advantage from the EMA baseline (clipped), added to every step's shaping reward
    (``discount_rewards``), loss -mean_t log pi * r_t, one Adam step. The controller kept is
    the one right after the update of the best episode (the official save-on-improvement).
    ``shaping`` (per lane) switches the per-step reward off (the paper's terminal reward only);
    ``direction`` -1 (per lane) gives the report's sign error: its controllers hand
    C (R - B) grad log pi to Adam's ``apply_gradients``, a minimiser, so they descend the expected
    reward (timur26/ICLR_Reproducibility_Challenge_Autoloss @ 3f43b25, ``r_autoLoss.py`` L48-51
    and L92, ``c_autoLoss.py`` L49-52 and L92)."""
    M = len(lam)
    ctrl = Controller(N_FEATURES, 2, hidden=hidden, temperature=temperature, n_models=M,
                      seed=int(seeds[0]) * 7919 + M)
    if len(seeds) != M:
        raise ValueError(f"one controller seed per lane: {len(seeds)} seeds for {M} lanes")
    with torch.no_grad():  # each lane's own seed decides its initial weights
        for i, s in enumerate(seeds):
            one = Controller(N_FEATURES, 2, hidden=hidden, temperature=temperature, seed=int(s))
            for p, q in zip(ctrl.parameters(), one.parameters()):
                p[i] = q
    shape_on = torch.as_tensor(shaping, dtype=torch.float32).expand(M)
    sign = torch.as_tensor(direction, dtype=torch.float32).expand(M)
    opt = torch.optim.Adam(ctrl.parameters(), lr=lr_ctrl)
    baseline = EMABaseline(baseline_decay, clip=adv_clip)
    lanes = Lanes(parts["train_ctrl"], parts["valid_ctrl"], lam, early_stop=True, **lane_kw)
    gen_task, gen_ctrl = torch.Generator().manual_seed(task_seed), torch.Generator()
    gen_ctrl.manual_seed(task_seed + 1)
    best = torch.full((M,), math.inf)
    stopped = torch.zeros(M, dtype=torch.bool)
    endurance = torch.zeros(M, dtype=torch.long)
    snapshot = [p.detach().clone() for p in ctrl.parameters()]
    history = {"best_valid": [], "steps": [], "l1_fraction": [], "adv": []}
    for _ in range(episodes):
        lanes.reset(gen_task)
        feats, acts, rews, masks = run_episode(lanes, ctrl, gen_ctrl, max_steps, record=True)
        ep_best = lanes.best.to(torch.float32)
        adv = baseline(final_reward("regression", ep_best, reward_c))
        T = len(acts)
        lengths = masks.sum(0).clamp(min=1).to(torch.float32)
        ret = rews.to(torch.float32) * shape_on + adv
        ret = ret * masks * (T / lengths) * sign  # masked mean over each lane's own episode
        update = ~stopped
        loss_ret = (ret * update).T.contiguous()
        opt.zero_grad()
        policy_loss(ctrl, feats.to(torch.float32).transpose(0, 1), acts.T, loss_ret).backward()
        keep = [p.detach().clone() for p in ctrl.parameters()]
        opt.step()
        with torch.no_grad():  # lanes whose training ended stay as they were
            for p, k in zip(ctrl.parameters(), keep):
                p.copy_(torch.where(update.view(-1, *[1] * (p.dim() - 1)), p, k))
        improved = update & (ep_best < best)
        best = torch.where(improved, ep_best, best)
        endurance = torch.where(improved, torch.zeros_like(endurance), endurance + update.long())
        for s, p in zip(snapshot, ctrl.parameters()):
            s.copy_(torch.where(improved.view(-1, *[1] * (p.dim() - 1)), p.detach(), s))
        stopped = stopped | (endurance > max_endurance_ctrl)
        history["best_valid"].append(ep_best.tolist())
        history["steps"].append(masks.sum(0).tolist())
        history["l1_fraction"].append(((acts == 1) & masks).sum(0).div(lengths).tolist())
        history["adv"].append(adv.tolist())
    with torch.no_grad():
        for p, s in zip(ctrl.parameters(), snapshot):
            p.copy_(s)
    return {"controller": ctrl, "best_valid": best, "history": history}


def test_controllers(parts: dict, ctrl: Controller, lam, trials: int, seed: int,
                     max_steps: int, **lane_kw) -> dict:
    """Test mode (``trainer.py`` L367-392): each trained controller guides ``trials`` fresh task
    models on train_task for ``max_steps`` steps (no early stopping); the best valid_task
    checkpoint is tested. Lanes are (controller, trial) pairs, controller-major."""
    M = ctrl.n_models
    big = Controller(N_FEATURES, 2, hidden=ctrl.hidden, temperature=ctrl.temperature,
                     n_models=M * trials)
    with torch.no_grad():
        for p, q in zip(big.parameters(), ctrl.parameters()):
            p.copy_(q.repeat_interleave(trials, 0))
    lam = torch.as_tensor(lam, dtype=torch.float32).repeat_interleave(trials)
    lanes = Lanes(parts["train_task"], parts["valid_task"], lam, **lane_kw)
    lanes.reset(torch.Generator().manual_seed(seed))
    gen = torch.Generator().manual_seed(seed + 1)
    counts = torch.zeros(M * trials)
    for _ in range(max_steps):
        a = _sample(big, lanes.features, gen)
        counts += (a == 1).float()
        lanes.step(a)
        lanes.validate()
    return {"sq_err": lanes.test_errors(parts["test"]).view(M, trials, -1),
            "best_valid": lanes.best.view(M, trials),
            "l1_fraction": (counts / max_steps).view(M, trials)}
