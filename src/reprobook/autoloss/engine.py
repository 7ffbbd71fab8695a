"""The lockstep engine shared by AutoLoss's regression and classification tasks (Xu et al.,
ICLR 2019, paper §3-§4.1, Algorithm 1) in the official code's protocol (safpla/AutoLossRelease @
c3cdf97: ``trainer.py``, ``models/reg.py``, ``models/cls.py``).

Many independent task models ("lanes") step together as one tensor program. A lane holds its
flat parameter vector theta, its own lambda, its own Adam state and its own schedule; every step
it takes one action (0: task-loss step, 1: L1 step, 2: joint step on task + L1 = the DGS op
``update_total``) through ONE Adam shared by the actions (the official single optimizer), then
measures its losses, gradients and validation metric (``response``), the per-step shaping
reward (``get_step_reward``) and the controller's state (``get_state``). Every ``valid_every``
steps the best validation metric and its theta are kept (``check_terminate``).

A task is a subclass of :class:`LockstepLanes` that says how to initialise theta and measure
it (``_init_theta``, ``_measure``), what its state features are (``_state``) and how a test row
is scored (``test_scores``); ``regression.RegressionLanes`` and
``classification.ClassificationLanes`` are the two. The controller side (:class:`ControllerBank`,
:func:`train_controllers`, :func:`test_controllers`) and the fixed schedules (:func:`run_fixed`)
work for any of them.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..registry import derive_seed
from .kernels import Controller, EMABaseline, final_reward, handcrafted_action, policy_loss, \
    shaping_reward

KINDS = ("task", "joint", "alternate", "S1", "S2", "S3")  # fixed schedules (lane kinds 0-5)


class LockstepLanes:
    """M task models trained in lockstep with TF-1.8 Adam (eps 1e-8 outside the bias
    correction: lr_t = lr sqrt(1-b2^t)/(1-b1^t), theta -= lr_t m / (sqrt(v) + eps)).

    Subclasses set ``OFFICIAL`` (the task's config), ``n_features``, ``reward_kind``,
    ``higher_better`` (the validation metric's direction) and implement ``_init_theta``,
    ``_measure`` (sets train_loss, g_task, valid_loss, metric and the task's extras),
    ``_state`` and ``initial_state``. All lanes start together, so the step counter is one Python
    int; a lane that stopped early (``alive`` False) keeps stepping, but its best checkpoint and
    endurance no longer change and the controller ignores its steps. ``feature_weight`` (F,) or
    (M, F) multiplies the state features (1/scale: feature normalisation; 0: a dropped feature,
    paper Table 3; None = raw, the official)."""

    OFFICIAL: dict = {}
    n_features = 0
    reward_kind = ""
    higher_better = False

    def __init__(self, train, valid, lam, lr=None, valid_every=10, max_endurance=None,
                 early_stop=False, features=True, joint=False, feature_weight=None):
        """``train``/``valid``: (inputs, targets) pairs; lr and max_endurance default to the
        task's official values."""
        cfg = self.OFFICIAL
        dtype = self._prepare(train, valid)
        lr = cfg["lr"] if lr is None else lr
        max_endurance = cfg["max_endurance"] if max_endurance is None else max_endurance
        self.dtype = dtype
        self.lam = torch.as_tensor(lam, dtype=dtype).reshape(-1)
        self.lam_col = self.lam[:, None]
        self.M = len(self.lam)
        self.lr, self.valid_every, self.max_endurance = lr, valid_every, max_endurance
        self.early_stop, self.with_features, self.joint = early_stop, features, joint
        self.valid_each_step = True
        self.weight = None if feature_weight is None else \
            torch.as_tensor(feature_weight, dtype=dtype)
        self.ib_decay, self.step_cap, self.step_scale = (cfg["baseline_decay"], cfg["step_cap"],
                                                         cfg["step_scale"])

    # ---- the task's part
    def _prepare(self, train, valid):
        """Keep what ``_measure`` needs of the data; return the parameter dtype."""
        raise NotImplementedError

    def _init_theta(self, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def _measure(self):
        raise NotImplementedError

    def _state(self) -> torch.Tensor:
        raise NotImplementedError

    def initial_state(self) -> list:
        raise NotImplementedError

    def test_scores(self, test) -> torch.Tensor:
        raise NotImplementedError

    # ---- shared
    def _need_valid(self) -> bool:
        """The validation set is evaluated after every step when the state, the shaping reward
        or a schedule (S1, S2) reads it (as the official ``response`` does), else only at the
        validation checks; the skipped evaluations change no result."""
        return self.with_features or self.valid_each_step or self.step_no % self.valid_every == 0

    def _l1_terms(self):
        """L1 loss lam sum|theta|, its gradient lam sign(theta) (0 at 0, as TF) and its
        normalised magnitude ||g||/sqrt(P) = lam sqrt(nnz/P) (``get_grads_magnitude``)."""
        sign = torch.sign(self.theta)
        self.g_l1 = sign * self.lam_col
        self.l1 = self.theta.abs().sum(1) * self.lam
        self.mag_l1 = self.lam * (torch.count_nonzero(sign, dim=1) / self.P).sqrt()
        self.mag_task = self.g_task.norm(dim=1) / math.sqrt(self.P)

    def reset(self, generator: torch.Generator):
        """Fresh models, fresh Adam state, the official initial state."""
        self.theta = self._init_theta(generator).to(self.dtype)
        self.P = self.theta.shape[1]
        self.m, self.v = torch.zeros_like(self.theta), torch.zeros_like(self.theta)
        self.step_no = 0
        self.alive = torch.ones(self.M, dtype=torch.bool)
        self.best = torch.full((self.M,), -math.inf if self.higher_better else math.inf,
                               dtype=self.dtype)
        self.best_theta = self.theta.clone()
        self.best_step = torch.zeros(self.M, dtype=torch.long)
        self.endurance = torch.zeros(self.M, dtype=torch.long)
        self.features = self._scaled(torch.tensor(self.initial_state(),
                                                  dtype=self.dtype).repeat(self.M, 1))
        self._measure()

    def _scaled(self, f: torch.Tensor) -> torch.Tensor:
        return f if self.weight is None else f * self.weight

    def step(self, actions: torch.Tensor, b1=0.9, b2=0.999, eps=1e-8):
        """One Adam step per lane on the chosen loss; returns the per-step shaping reward
        (``get_step_reward``: improve = drop of the per-step validation loss; the first step of
        an episode has improve = 0.1 and the improvement baseline starts at it)."""
        a = actions[:, None]
        g = torch.where(a == 1, self.g_l1, self.g_task)
        if self.joint:
            g = torch.where(a == 2, self.g_task + self.g_l1, g)
        self.step_no += 1
        t = self.step_no
        self.m.lerp_(g, 1 - b1)
        self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        lr_t = self.lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        self.theta.addcdiv_(self.m, self.v.sqrt().add_(eps), value=-lr_t)
        prev_valid = self.valid_loss
        self._measure()
        if not self.with_features:
            return None
        if t == 1:
            improve = torch.full_like(self.valid_loss, 0.1)
            self.ib = improve
        else:
            improve = prev_valid - self.valid_loss
            self.ib = self.ib_decay * self.ib + (1 - self.ib_decay) * improve
        reward = shaping_reward(improve, self.ib, cap=self.step_cap, scale=self.step_scale)
        self.features = self._scaled(self._state())
        return reward

    def validate(self):
        """Every ``valid_every`` steps (``check_terminate``): keep the best validation metric
        (strictly better) and its theta; with early stopping, end lanes after
        ``max_endurance`` checks without progress."""
        if self.step_no % self.valid_every:
            return
        self.endurance = self.endurance + self.alive.long()
        better = self.metric > self.best if self.higher_better else self.metric < self.best
        better = self.alive & better
        self.best = torch.where(better, self.metric, self.best)
        self.best_theta = torch.where(better[:, None], self.theta, self.best_theta)  # a copy
        self.best_step = torch.where(better, torch.full_like(self.best_step, self.step_no),
                                     self.best_step)
        self.endurance = torch.where(better, torch.zeros_like(self.endurance), self.endurance)
        if self.early_stop:
            self.alive = self.alive & (self.endurance <= self.max_endurance)


# --------------------------------------------------------------------------- fixed schedules
def fixed_actions(lanes: LockstepLanes, kinds: torch.Tensor, thresholds: torch.Tensor):
    """Actions of the fixed schedules: task loss only (W/O L1), joint (DGS), 1:1 alternation
    (official ``controller_designed``: L1 first) and S1-S3 (paper §5.1.1: S1 valid vs train task
    loss, S2 L1 vs valid task loss, S3 L1 vs task gradient magnitude)."""
    alt = torch.full((lanes.M,), (lanes.step_no + 1) % 2, dtype=torch.long)
    s1 = handcrafted_action(lanes.valid_loss, lanes.train_loss, thresholds)
    s2 = handcrafted_action(lanes.l1, lanes.valid_loss, thresholds)
    s3 = handcrafted_action(lanes.mag_l1, lanes.mag_task, thresholds)
    choices = torch.stack([torch.zeros_like(alt), torch.full_like(alt, 2), alt, s1, s2, s3], 1)
    return choices.gather(1, kinds[:, None]).squeeze(1)


def run_fixed(task, parts: dict, lam, kinds, thresholds, seed: int, max_steps: int,
              **kw) -> dict:
    """Baseline mode (``trainer.py`` L414-450): each lane trains on train_task for
    ``max_steps`` steps with its fixed schedule; the best valid_task checkpoint is tested."""
    kinds = torch.as_tensor(kinds, dtype=torch.long)
    lanes = task(parts["train_task"], parts["valid_task"], lam, features=False,
                 joint=bool((kinds == 1).any()), **kw)
    lanes.valid_each_step = bool(((kinds == 3) | (kinds == 4)).any())  # S1, S2 read it
    lanes.reset(torch.Generator().manual_seed(seed))
    thresholds = torch.as_tensor(thresholds, dtype=torch.float32)
    counts = torch.zeros(lanes.M)
    for _ in range(max_steps):
        a = fixed_actions(lanes, kinds, thresholds)
        counts += (a == 1).float()
        lanes.step(a)
        lanes.validate()
    return {"test": lanes.test_scores(parts["test"]), "best_valid": lanes.best,
            "l1_fraction": counts / max_steps, "best_step": lanes.best_step}


def feature_scale(task, parts: dict, steps: int, seed: int = 0) -> torch.Tensor:
    """Per-feature scales for feature normalisation ("keeping them at the same scale in
    magnitude", report §6.1): the root mean square of each state feature along one 1:1
    alternation run on train_ctrl / valid_ctrl (floored at 1e-6)."""
    lanes = task(parts["train_ctrl"], parts["valid_ctrl"], [task.OFFICIAL["lam"]])
    lanes.reset(torch.Generator().manual_seed(seed))
    sq = torch.zeros(task.n_features, dtype=torch.float64)
    for _ in range(steps):
        lanes.step(fixed_actions(lanes, torch.tensor([2]), torch.zeros(1)))
        sq += lanes.features[0].double() ** 2
    return (sq / steps).sqrt().clamp(min=1e-6).float()


# --------------------------------------------------------------------------- controllers
def _per_lane(value, M: int, dtype=torch.float32) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=dtype)
    if t.dim() == 0:
        return t.expand(M).clone()
    if t.shape != (M,):
        raise ValueError(f"a per-lane setting needs {M} values, got shape {tuple(t.shape)}")
    return t


class ControllerBank(nn.Module):
    """One controller per lane, lanes grouped by (hidden, temperature) into batched
    :class:`Controller` s, so lanes with a linear policy, a 2-layer policy or another logit
    temperature train in one program. Lane i's initial weights are those of
    ``Controller(..., seed=seeds[i])``. ``forward`` / ``log_prob`` take (M, ..., F)."""

    def __init__(self, n_features: int, hidden, temperature, seeds):
        super().__init__()
        M = len(seeds)
        hidden = [int(h) for h in _per_lane(hidden, M, torch.long).tolist()]
        temperature = _per_lane(temperature, M, torch.float64).tolist()
        keys = sorted({(h, t) for h, t in zip(hidden, temperature)})
        self.n_features, self.M, self.n_actions = n_features, M, 2
        self.groups, self.index = nn.ModuleList(), []
        for h, t in keys:
            idx = [i for i in range(M) if (hidden[i], temperature[i]) == (h, t)]
            ctrl = Controller(n_features, 2, hidden=h, temperature=t, n_models=len(idx))
            with torch.no_grad():
                for j, i in enumerate(idx):
                    one = Controller(n_features, 2, hidden=h, temperature=t, seed=int(seeds[i]))
                    for p, q in zip(ctrl.parameters(), one.parameters()):
                        p[j] = q
            self.groups.append(ctrl)
            self.index.append(torch.tensor(idx))
        self.hidden, self.temperature, self.seeds = hidden, temperature, list(seeds)

    def _gather(self, fn, x, *rest):
        out = None
        for ctrl, idx in zip(self.groups, self.index):
            part = fn(ctrl, x[idx], *[r[idx] for r in rest])
            if out is None:
                out = part.new_empty((self.M,) + tuple(part.shape[1:]))
            out[idx] = part
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._gather(lambda c, xi: c(xi), x)

    def log_prob(self, x: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self._gather(lambda c, xi, ai: c.log_prob(xi, ai), x, actions)

    def repeat(self, times: int) -> "ControllerBank":
        """A bank with every lane repeated ``times`` times (lane-major), same weights."""
        rep = lambda v: [x for x in v for _ in range(times)]  # noqa: E731
        big = ControllerBank(self.n_features, rep(self.hidden), rep(self.temperature),
                             rep(self.seeds))
        with torch.no_grad():
            for g_big, g in zip(big.groups, self.groups):
                for p, q in zip(g_big.parameters(), g.parameters()):
                    p.copy_(q.repeat_interleave(times, 0))
        return big


def per_lane_adam_step(bank: ControllerBank, opt: torch.optim.Adam, lr: torch.Tensor):
    """Adam with one learning rate per lane: ``opt`` runs at lr 1 and lane i's change is scaled
    by lr[i]. Exact, because Adam's moments (and so its direction m/(sqrt(v)+eps)) do not
    depend on the learning rate; lr 0 leaves a lane unchanged."""
    if any(g["lr"] != 1.0 for g in opt.param_groups):
        raise ValueError("per_lane_adam_step needs an Adam optimizer built with lr=1")
    keep = [p.detach().clone() for p in bank.parameters()]
    opt.step()
    with torch.no_grad():
        k = iter(keep)
        for grp, idx in zip(bank.groups, bank.index):
            step_lr = lr[idx]
            for p in grp.parameters():
                old = next(k)
                p.copy_(old + step_lr.view(-1, *[1] * (p.dim() - 1)) * (p - old))


def _sample(ctrl, features: torch.Tensor, generator) -> torch.Tensor:
    """Two actions, sampled by index through the inverse CDF: a = 1 iff u >= pi(0|x)."""
    with torch.no_grad():
        p0 = ctrl(features.to(torch.float32))[:, 0]
    return (torch.rand(len(p0), generator=generator) >= p0).long()


def run_episode(lanes: LockstepLanes, ctrl, generator, max_steps: int, record: bool):
    """One episode of every lane under its controller (``trainer.py`` L136-165): the official
    loop ends after step ``max_training_step`` + 1 or when every lane has stopped early.
    Returns the recorded (features, actions, step rewards, alive mask) as (T, M, ...)."""
    feats, acts, rews, masks = [], [], [], []
    for _ in range(max_steps + 1):
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


def _where_lanes(mask, a, b):
    return torch.where(mask.view(-1, *[1] * (a.dim() - 1)), a, b)


def train_controllers(task, parts: dict, lam, seeds, *, episodes: int, max_steps: int,
                      hidden=None, temperature=None, lr_ctrl=None, reward_c=None,
                      adv_clip=None, baseline_decay=None, shaping=True, direction=1.0,
                      use_baseline=True, feature_weight=None, max_endurance_ctrl=None,
                      task_seed=0, **lane_kw) -> dict:
    """REINFORCE training of one controller per lane (``trainer.py`` L118-220): per episode a
    fresh task model on train_ctrl with early stopping on valid_ctrl; final reward (regression
    C / best valid MSE, classification -C / max(best valid acc, 0.5)), advantage from the EMA
    baseline (clipped), added to every step's shaping reward (``discount_rewards``), loss
    -mean_t log pi * r_t, one Adam step per episode. The controller kept is the one right after
    the update of the best episode (the official save-on-improvement).

    Every controller setting may be one value or one per lane (None = the task's official):
    ``hidden``, ``temperature`` (grouped by :class:`ControllerBank`), ``lr_ctrl`` (one Adam
    run at lr 1, its step scaled per lane: Adam's moments do not depend on lr), ``reward_c``,
    ``adv_clip``, ``baseline_decay``, ``shaping`` (False: the paper's terminal reward only),
    ``use_baseline`` (False: advantage = clipped raw reward, the report's GAN controller),
    ``feature_weight`` ((M, F) or (F,) multipliers of the state features; None = raw),
    ``direction`` (-1: the report's sign error: its controllers hand C (R - B) grad log pi to
    Adam's ``apply_gradients``, a minimiser, so they descend the expected reward;
    timur26/ICLR_Reproducibility_Challenge_Autoloss @ 3f43b25, ``r_autoLoss.py`` L48-51 and L92,
    ``c_autoLoss.py`` L49-52 and L92)."""
    cfg = task.OFFICIAL
    M = len(lam)
    if len(seeds) != M:
        raise ValueError(f"one controller seed per lane: {len(seeds)} seeds for {M} lanes")
    pick = lambda v, k: cfg[k] if v is None else v  # noqa: E731
    ctrl = ControllerBank(task.n_features, pick(hidden, "hidden"),
                          pick(temperature, "temperature"), seeds)
    lr = _per_lane(pick(lr_ctrl, "lr_ctrl"), M)
    c = _per_lane(pick(reward_c, "reward_c"), M)
    shape_on = _per_lane(shaping, M)
    sign = _per_lane(direction, M)
    with_b = _per_lane(use_baseline, M)
    opt = torch.optim.Adam(ctrl.parameters(), lr=1.0)
    baseline = EMABaseline(_per_lane(pick(baseline_decay, "baseline_decay"), M), clip=None)
    clip = _per_lane(pick(adv_clip, "adv_clip"), M)
    lanes = task(parts["train_ctrl"], parts["valid_ctrl"], lam, early_stop=True,
                 feature_weight=feature_weight, **lane_kw)
    gen_task, gen_ctrl = torch.Generator().manual_seed(task_seed), torch.Generator()
    gen_ctrl.manual_seed(derive_seed(task_seed, "controller"))
    worst = -math.inf if task.higher_better else math.inf
    best = torch.full((M,), worst)
    stopped = torch.zeros(M, dtype=torch.bool)
    endurance = torch.zeros(M, dtype=torch.long)
    snapshot = [p.detach().clone() for p in ctrl.parameters()]
    max_end = pick(max_endurance_ctrl, "max_endurance_ctrl")
    history = {"best_valid": [], "steps": [], "l1_fraction": [], "adv": []}
    for _ in range(episodes):
        lanes.reset(gen_task)
        feats, acts, rews, masks = run_episode(lanes, ctrl, gen_ctrl, max_steps, record=True)
        ep_best = lanes.best.to(torch.float32)
        reward = final_reward(task.reward_kind, ep_best, c)
        adv = reward - with_b * (reward - baseline(reward))  # baseline(R) = R - B
        adv = torch.maximum(torch.minimum(adv, clip), -clip)
        T = len(acts)
        lengths = masks.sum(0).clamp(min=1).to(torch.float32)
        ret = rews.to(torch.float32) * shape_on + adv
        ret = ret * masks * (T / lengths) * sign  # masked mean over each lane's own episode
        update = ~stopped
        opt.zero_grad()
        policy_loss(ctrl, feats.to(torch.float32).transpose(0, 1), acts.T,
                    (ret * update).T.contiguous()).backward()
        per_lane_adam_step(ctrl, opt, lr * update)  # lanes whose training ended stay
        better = ep_best > best if task.higher_better else ep_best < best
        improved = update & better
        best = torch.where(improved, ep_best, best)
        endurance = torch.where(improved, torch.zeros_like(endurance), endurance + update.long())
        snap = iter(snapshot)
        for grp, idx in zip(ctrl.groups, ctrl.index):
            for p in grp.parameters():
                s = next(snap)
                s.copy_(_where_lanes(improved[idx], p.detach(), s))
        stopped = stopped | (endurance > max_end)
        history["best_valid"].append(ep_best.tolist())
        history["steps"].append(masks.sum(0).tolist())
        history["l1_fraction"].append(((acts == 1) & masks).sum(0).div(lengths).tolist())
        history["adv"].append(adv.tolist())
    with torch.no_grad():
        for p, s in zip(ctrl.parameters(), snapshot):
            p.copy_(s)
    return {"controller": ctrl, "best_valid": best, "history": history}


def test_controllers(task, parts: dict, ctrl: ControllerBank, lam, trials: int, seed: int,
                     max_steps: int, feature_weight=None, **lane_kw) -> dict:
    """Test mode (``trainer.py`` L367-392): each controller guides ``trials`` fresh task models
    on train_task for ``max_steps`` steps (no early stopping); the best valid_task checkpoint is
    tested. Lanes are (controller, trial) pairs, controller-major; ``test`` is (M, trials, n)."""
    M = ctrl.M
    big = ctrl.repeat(trials)
    lam = torch.as_tensor(lam, dtype=torch.float32).repeat_interleave(trials)
    if feature_weight is not None:
        fw = torch.as_tensor(feature_weight)
        feature_weight = fw.repeat_interleave(trials, 0) if fw.dim() == 2 else fw
    lanes = task(parts["train_task"], parts["valid_task"], lam, feature_weight=feature_weight,
                 **lane_kw)
    lanes.reset(torch.Generator().manual_seed(seed))
    gen = torch.Generator().manual_seed(derive_seed(seed, "actions"))
    counts = torch.zeros(M * trials)
    for _ in range(max_steps):
        a = _sample(big, lanes.features, gen)
        counts += (a == 1).float()
        lanes.step(a)
        lanes.validate()
    return {"test": lanes.test_scores(parts["test"]).view(M, trials, -1),
            "best_valid": lanes.best.view(M, trials),
            "l1_fraction": (counts / max_steps).view(M, trials)}
