"""The MNIST GAN of AutoLoss (Xu et al., ICLR 2019, arXiv 1810.02442 v1, §4.2, §4.4, §5.2):
a DCGAN trained with fixed D:G update schedules (1:1, 1:K, K:1) and with an online AutoLoss
controller that picks, step by step, a discriminator or a generator update.

- :func:`make_dcgan`: the official DCGAN (``models/gan.py``: z -> linear 7x7xC -> ReLU ->
  deconv 5x5/2 -> ReLU -> deconv 5x5/2 -> tanh; D: conv 5x5/2 -> leaky ReLU -> conv 5x5/2 ->
  leaky ReLU -> linear 1; no batchnorm; N(0, 0.02^2) init), with the width ``base`` and ``z_dim``
  as settings (the paper's: 64 and 128).
- :func:`schedule_actions`: the D:G ratio schedules (action 1 = D update, 0 = G update, as the
  official ``update_times`` order: action 0 = generator).
- :func:`train_classifier`: our own MNIST classifier, the "inception network" of the MNIST
  inception score (paper §5.1.2 following Deng et al.; the official ``utils/inception_score_mnist.py``
  uses the TF-tutorial CNN); experiment ``autoloss_mnist_classifier`` records its test accuracy
  and the IS of real test images (paper: 9.5).
- :func:`train_gan`: one GAN run under a fixed schedule or an online controller. The online
  controller (paper §4.4) is the linear Bernoulli policy of paper §5.1.2 on the official four GAN
  features (``config/gan``: log gradient-norm ratio, EMA of the G cost - 1, EMA of the D cost,
  IS - 8), trained by REINFORCE (paper Eq. 2) once per segment of T steps with the segment reward
  R = C (IS_(t+T) - IS_t) / ((IS_t - IS_(t-kT)) / k) given to every step of the segment, with the
  EMA baseline (corrected) or without it (the report's GAN controller, which feeds the raw
  reward to the update: timur26/ICLR_Reproducibility_Challenge_Autoloss ``autoLoss.py``).
- :func:`gan_experiment` / :func:`gan` (experiment ``autoloss_gan``): every schedule and the two controllers, through the
  store (experiment ``autoloss_gan``).

Schedules run one after another (a loop, not one batched tensor program): the schedules take
different actions at each step, so batching them would compute both updates for every lane.
``device``: the networks and images live there (CUDA for the paper's DCGAN at ``full``); every
random draw (noise, minibatch indices) comes from CPU generators, so a seed gives the same
draws on any device.
A "step" is one optimizer update of either network; an "epoch" is n_train / batch steps.
Sources: paper §4.2 (GAN features, reward C * IS^2), §4.4 (segment reward), §5.1.2 and the GAN table of §5.2; official config/gan/cfg.py and models/gan.py.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import derive_seed
from ..stats import spearman
from .kernels import Controller, EMABaseline, inception_score, reinforce_step, segment_reward

G_ACTION, D_ACTION = 0, 1  # official GAN trainer: action 0 = generator, 1 = discriminator
# The paper's IS scale, which the protocol rescales to our classifier (config keys): the IS of
# real MNIST on the authors' classifier (paper §5.1.2: 9.5) and the IS the speed claim counts
# steps to (paper §5.2: "reach IS 8.6 almost 3x faster than GAN 1:1").
_SCALE = {"scale_real_is": 9.5, "scale_threshold_is": 8.6}
GAN = {
    "small": {**_SCALE, "n_train": 10000, "clf_width": 0, "clf_steps": 600, "clf_batch": 128,
              "z_dim": 32, "base_filters": 8, "batch": 32, "lr": 2e-3, "steps": 500,
              "eval_every": 50, "eval_samples": 500, "splits": 1,
              "schedules": ["1:1", "1:5", "1:7", "3:1"],
              "controllers": ["autoloss", "autoloss-no-baseline"],
              "ctrl_lr": 0.02, "reward_k": 1, "reward_c": 1.0, "reward_eps": 1e-3,
              "adv_clip": 20.0, "baseline_decay": 0.9},
    # ~15 min of one core (a D or G step of this DCGAN at batch 64 takes ~35 ms here; at
    # base_filters 16 and 2,500 steps the ten runs would take over an hour)
    "medium": {**_SCALE, "n_train": 60000, "clf_width": 8, "clf_steps": 1500, "clf_batch": 128,
               "z_dim": 64, "base_filters": 8, "batch": 64, "lr": 1e-3, "steps": 1500,
               "eval_every": 100, "eval_samples": 1000, "splits": 1,
               "schedules": ["1:1", "1:3", "1:5", "1:7", "1:9", "1:11", "3:1", "5:1"],
               "controllers": ["autoloss", "autoloss-no-baseline"],
               "ctrl_lr": 0.02, "reward_k": 1, "reward_c": 1.0, "reward_eps": 1e-3,
               "adv_clip": 20.0, "baseline_decay": 0.9},
    "full": {**_SCALE, "n_train": 60000, "clf_width": 32, "clf_steps": 20000, "clf_batch": 128,
             "z_dim": 128, "base_filters": 64, "batch": 128, "lr": 2e-4, "steps": 100000,
             "eval_every": 500, "eval_samples": 5000, "splits": 5,
             "schedules": ["1:1", "1:3", "1:5", "1:7", "1:9", "1:11", "3:1", "5:1"],
             "controllers": ["autoloss", "autoloss-no-baseline"],
             "ctrl_lr": 0.02, "reward_k": 1, "reward_c": 1.0, "reward_eps": 1e-3,
             "adv_clip": 20.0, "baseline_decay": 0.9},
}


# --------------------------------------------------------------------------- schedules
def parse_ratio(name: str) -> tuple[int, int]:
    """'1:5' -> (d, g) = (1, 5): D:G update ratio (paper §5.2: GAN 1:K, K:1)."""
    d, g = name.split(":")
    d, g = int(d), int(g)
    if d < 1 or g < 1:
        raise ValueError(f"a D:G ratio needs positive counts, got {name!r}")
    return d, g


def schedule_actions(d: int, g: int, steps: int) -> list[int]:
    """The fixed D:G schedule as ``steps`` actions: d D updates (1), then g G updates (0),
    repeated (the vanilla GAN 1:1 alternates D, G, D, G, ...)."""
    cycle = [D_ACTION] * d + [G_ACTION] * g
    return [cycle[t % len(cycle)] for t in range(steps)]


def key_of(name: str) -> str:
    """Record key of a schedule: '1:5' -> 'gan-1-5' (the ledger's ids); controllers as named."""
    return "gan-" + name.replace(":", "-") if ":" in name else name


# --------------------------------------------------------------------------- models
class Generator(nn.Module):
    """Official DCGAN generator (``models/gan.py``): z -> Linear(7*7*2C) -> ReLU ->
    ConvT 5x5/2 (2C -> C) -> ReLU -> ConvT 5x5/2 (C -> 1) -> tanh; 28x28 output."""

    def __init__(self, z_dim: int = 128, base: int = 64):
        super().__init__()
        self.z_dim, self.base = z_dim, base
        self.fc = nn.Linear(z_dim, 7 * 7 * 2 * base)
        self.up1 = nn.ConvTranspose2d(2 * base, base, 5, 2, padding=2, output_padding=1)
        self.up2 = nn.ConvTranspose2d(base, 1, 5, 2, padding=2, output_padding=1)

    def forward(self, z):
        h = F.relu(self.fc(z)).view(-1, 2 * self.base, 7, 7)
        return torch.tanh(self.up2(F.relu(self.up1(h))))


class Discriminator(nn.Module):
    """Official DCGAN discriminator: conv 5x5/2 (1 -> C) -> leaky ReLU -> conv 5x5/2 (C -> 2C)
    -> leaky ReLU -> Linear(7*7*2C, 1) logit."""

    def __init__(self, base: int = 64):
        super().__init__()
        self.c1 = nn.Conv2d(1, base, 5, 2, padding=2)
        self.c2 = nn.Conv2d(base, 2 * base, 5, 2, padding=2)
        self.fc = nn.Linear(7 * 7 * 2 * base, 1)

    def forward(self, x):
        h = F.leaky_relu(self.c2(F.leaky_relu(self.c1(x), 0.2)), 0.2)
        return self.fc(h.flatten(1)).squeeze(-1)


def make_dcgan(z_dim: int, base: int, seed: int) -> tuple[Generator, Discriminator]:
    """G and D with weights N(0, 0.02^2), zero biases (official default init)."""
    torch.manual_seed(seed)
    g, d = Generator(z_dim, base), Discriminator(base)
    for m in (*g.modules(), *d.modules()):
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
    return g, d


def d_loss(d: Discriminator, real, fake):
    """l_2 of paper §4.2 as the official code: (CE(D(x), 1) + CE(D(G(z)), 0)) / 2."""
    lr, lf = d(real), d(fake)
    return (F.binary_cross_entropy_with_logits(lr, torch.ones_like(lr))
            + F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf))) / 2


def g_loss(d: Discriminator, fake):
    """Non-saturating generator loss -log D(G(z)) (official; paper §4.2 writes log(1 - D))."""
    lf = d(fake)
    return F.binary_cross_entropy_with_logits(lf, torch.ones_like(lf))


# --------------------------------------------------------------------------- classifier
class MnistClassifier(nn.Module):
    """A small CNN (the TF-tutorial CNN of the official IS code, narrower): conv 5x5 (w) ->
    ReLU -> pool -> conv 5x5 (2w) -> ReLU -> pool -> Linear(8w) -> ReLU -> Linear(10).
    ``width = 0``: an MLP 784 -> 256 ReLU -> 10 instead (the small profile: fast on a CPU)."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.width = width
        if width == 0:
            self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(),
                                     nn.Linear(256, 10))
            return
        self.c1 = nn.Conv2d(1, width, 5, padding=2)
        self.c2 = nn.Conv2d(width, 2 * width, 5, padding=2)
        self.fc1 = nn.Linear(2 * width * 49, 8 * width)
        self.fc2 = nn.Linear(8 * width, 10)

    def forward(self, x):
        if self.width == 0:
            return self.mlp(x)
        h = F.max_pool2d(F.relu(self.c1(x)), 2)
        h = F.max_pool2d(F.relu(self.c2(h)), 2)
        return self.fc2(F.relu(self.fc1(h.flatten(1))))


def mnist_data(n_train: int):
    """MNIST from the shared loader (``reprobook.data.load_mnist``), [0, 1] images."""
    from ..data import load_mnist

    d = load_mnist(download=False)
    return d["x_train"][:n_train], d["y_train"][:n_train], d["x_test"], d["y_test"]


@torch.no_grad()
def predict_probs(clf: nn.Module, x, chunk: int = 1000):
    """p(y | x) of the classifier for [0, 1] images (on the classifier's device), in chunks;
    returned on the CPU."""
    clf.eval()
    dev = next(clf.parameters()).device
    return torch.cat([torch.softmax(clf(x[i:i + chunk].to(dev)), -1).cpu()
                      for i in range(0, len(x), chunk)])


def train_classifier(s: dict, seed: int, data=None, device="cpu"):
    """Train the IS classifier on MNIST train (Adam 1e-3, ``clf_steps`` batches of
    ``clf_batch``); returns (model, values) with the test accuracy and the IS of the real test
    images (mean/std over ``splits``; paper: 9.5 on the authors' classifier)."""
    x, y, xt, yt = data if data is not None else mnist_data(s["n_train"])
    x, y = x.to(device), y.to(device)
    torch.manual_seed(seed)
    clf = MnistClassifier(s["clf_width"]).to(device)
    opt = torch.optim.Adam(clf.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(seed)
    clf.train()
    for _ in range(s["clf_steps"]):
        idx = torch.randint(len(x), (s["clf_batch"],), generator=gen)
        loss = F.cross_entropy(clf(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    probs = predict_probs(clf, xt)
    acc = float((probs.argmax(1) == yt).float().mean())
    is_mean, is_std = inception_score(probs, s["splits"])
    return clf, {"test_acc": acc, "is_real": is_mean, "is_real_std": is_std, "n_test": len(yt)}


# --------------------------------------------------------------------------- GAN training
@torch.no_grad()
def gan_is(g: Generator, clf: nn.Module, n: int, splits: int, gen: torch.Generator) -> float:
    """IS of n generator samples on our classifier; tanh outputs rescaled to [0, 1] first (the
    official code scores the [-1, 1] images as they are: models/gan.py's tanh output goes to utils/inception_score_mnist.py unscaled)."""
    g.eval()
    z = torch.randn(n, g.z_dim, generator=gen).to(next(g.parameters()).device)
    x = (g(z) + 1) / 2
    g.train()
    return inception_score(predict_probs(clf, x), splits)[0]


def _grad_norm(module: nn.Module) -> float:
    """||grad||_2 / sqrt(dim theta) (paper §4.2 feature (2))."""
    sq, n = 0.0, 0
    for p in module.parameters():
        if p.grad is not None:
            sq += float(p.grad.pow(2).sum())
            n += p.numel()
    return math.sqrt(sq / max(n, 1))


class OnlineController:
    """The online AutoLoss controller for the GAN (paper §4.4): a linear softmax policy over
    {G update, D update} (paper §5.1.2: "a linear model with Bernoulli outputs") on the four
    official features, updated by REINFORCE after every segment of T = ``eval_every`` steps
    with the segment reward (:func:`segment_reward`) minus an EMA baseline (``use_baseline``)
    or the raw reward (the report's GAN controller); both clipped to +-``adv_clip``."""

    def __init__(self, s: dict, seed: int, use_baseline: bool = True):
        self.policy = Controller(4, 2, hidden=0, temperature=1.0, seed=seed)
        self.opt = torch.optim.Adam(self.policy.parameters(), s["ctrl_lr"])
        self.baseline = EMABaseline(s["baseline_decay"], s["adv_clip"])
        self.s, self.use_baseline = s, use_baseline
        self.gen = torch.Generator().manual_seed(derive_seed(seed, "actions"))
        self.feats, self.acts, self.updates, self.rewards = [], [], 0, []

    def act(self, x: list) -> int:
        f = torch.tensor(x, dtype=torch.float32)
        a, _ = self.policy.sample(f.unsqueeze(0), generator=self.gen)
        self.feats.append(f)
        self.acts.append(int(a))
        return int(a)

    def end_segment(self, is_history: list) -> None:
        """Reward the segment just finished and take one REINFORCE step (paper Eq. 2, S = 1)."""
        s, k = self.s, self.s["reward_k"]
        if len(is_history) >= k + 2 and self.feats:
            try:
                r = segment_reward(is_history, k, s["reward_c"], s["reward_eps"])
            except ValueError:  # the metric did not move over the previous k segments
                r = 0.0
            if self.use_baseline:
                adv = self.baseline(r)
            else:
                adv = max(-s["adv_clip"], min(s["adv_clip"], r))
            self.rewards.append(float(r))
            feats = torch.stack(self.feats)
            acts = torch.tensor(self.acts)
            reinforce_step(self.policy, self.opt, feats, acts, torch.full((len(acts),), adv))
            self.updates += 1
        self.feats, self.acts = [], []


def train_gan(s: dict, clf: nn.Module, x_train, seed: int, ratio: str | None = None,
              controller: OnlineController | None = None, is_offset: float = 8.0,
              device="cpu") -> dict:
    """One GAN run of ``s['steps']`` updates (Adam 2e-4, beta1 0.5, batch ``batch``) under the
    fixed D:G ``ratio`` or the online ``controller``; IS every ``eval_every`` steps. Returns the
    IS curve, the share of D updates and the final losses."""
    g, d = make_dcgan(s["z_dim"], s["base_filters"], seed)
    g, d = g.to(device), d.to(device)
    opt_g = torch.optim.Adam(g.parameters(), s["lr"], betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), s["lr"], betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(derive_seed(seed, "gan-noise"))
    eval_gen = lambda: torch.Generator().manual_seed(derive_seed(seed, "eval-noise"))  # same noise every evaluation
    x_train = x_train.to(device) * 2 - 1  # tanh range
    fixed = schedule_actions(*parse_ratio(ratio), s["steps"]) if ratio else None
    curve = [gan_is(g, clf, s["eval_samples"], s["splits"], eval_gen())]
    ema_g, ema_d, gn = 1.0, 0.7, {G_ACTION: 1.0, D_ACTION: 1.0}
    n_d, bs = 0, s["batch"]
    for t in range(s["steps"]):
        if fixed is not None:
            a = fixed[t]
        else:
            feats = [math.log(gn[D_ACTION] / gn[G_ACTION]), ema_g - 1.0, ema_d,
                     curve[-1] - is_offset]
            a = controller.act(feats)
        z = torch.randn(bs, s["z_dim"], generator=gen).to(device)
        if a == D_ACTION:
            real = x_train[torch.randint(len(x_train), (bs,), generator=gen)]
            with torch.no_grad():
                fake = g(z)
            loss = d_loss(d, real, fake)
            opt_d.zero_grad()
            loss.backward()
            gn[D_ACTION] = _grad_norm(d) + 1e-12
            opt_d.step()
            ema_d = 0.9 * ema_d + 0.1 * loss.item()
            n_d += 1
        else:
            loss = g_loss(d, g(z))
            opt_g.zero_grad()
            loss.backward()
            gn[G_ACTION] = _grad_norm(g) + 1e-12
            opt_g.step()
            ema_g = 0.9 * ema_g + 0.1 * loss.item()
        if (t + 1) % s["eval_every"] == 0:
            curve.append(gan_is(g, clf, s["eval_samples"], s["splits"], eval_gen()))
            if controller is not None:
                controller.end_segment(curve)
    out = {"curve": curve, "d_fraction": n_d / s["steps"], "ema_g_loss": ema_g,
           "ema_d_loss": ema_d}
    if controller is not None:
        out["controller_updates"] = controller.updates
        out["segment_rewards"] = controller.rewards
    return out


# --------------------------------------------------------------------------- summaries
def steps_to(curve: list, threshold: float, every: int) -> int | None:
    """First evaluated step at which the IS curve reaches ``threshold`` (None if never)."""
    for i, v in enumerate(curve):
        if v >= threshold:
            return i * every
    return None


def summarise(runs: dict, s: dict, is_real: float) -> dict:
    """The record's values from the runs: converged IS (mean of the last 3 evaluations),
    best IS, steps/epochs to the paper's 8.6 rescaled to our classifier (8.6 x our real IS / 9.5),
    and the derived claims' numbers."""
    every, epoch = s["eval_every"], s["n_train"] / s["batch"]
    thr = s["scale_threshold_is"] * is_real / s["scale_real_is"]
    final = {k: float(np.mean(r["curve"][-3:])) for k, r in runs.items()}
    to = {k: steps_to(r["curve"], thr, every) for k, r in runs.items()}
    fixed = [k for k in runs if k.startswith("gan-")]
    v = {"is": final, "is_best": {k: float(max(r["curve"])) for k, r in runs.items()},
         "curves": {k: r["curve"] for k, r in runs.items()},
         "curve_steps": [i * every for i in range(len(next(iter(runs.values()))["curve"]))],
         "d_fraction": {k: r["d_fraction"] for k, r in runs.items()},
         "threshold_is": thr, "steps_to_threshold": to,
         "epochs_to_threshold": {k: (None if n is None else n / epoch) for k, n in to.items()},
         "reached": {k: n is not None for k, n in to.items()},
         "best_fixed": max(fixed, key=final.get)}
    v["is_minus_1_1"] = {k: final[k] - final["gan-1-1"] for k in fixed if k != "gan-1-1"}
    v["best_other_minus_1_1"] = max(v["is_minus_1_1"].values(), default=float("nan"))
    ok = to.get("gan-1-1") is not None and to.get("autoloss") not in (None, 0)
    v["speedup_vs_1_1"] = to["gan-1-1"] / to["autoloss"] if ok else -1.0
    ok7 = to.get("gan-1-7") is not None and to.get("autoloss") is not None
    v["epochs_1_7_behind_autoloss"] = (to["gan-1-7"] - to["autoloss"]) / epoch if ok7 else -1e9
    if "autoloss" in runs:
        c = runs["autoloss"]["curve"]
        v["autoloss_rho"] = spearman(range(len(c)), c)
        v["autoloss_is_gain"] = c[-1] - c[0]
    if "autoloss" in final and "autoloss-no-baseline" in final:
        v["autoloss_minus_no_baseline"] = final["autoloss"] - final["autoloss-no-baseline"]
    return v


def gan_experiment(s: dict, seed: int = 0, classifier=None, device="cpu") -> dict:
    """Every schedule of ``s['schedules']`` and the controllers of ``s['controllers']`` on the
    same initial G and D (seed), scored by our classifier, on ``device``."""
    t0, c0 = time.perf_counter(), time.process_time()
    data = mnist_data(s["n_train"])
    clf, cv = classifier if classifier is not None else train_classifier(s, seed, data, device)
    clf = clf.to(device)
    for p in clf.parameters():
        p.requires_grad_(False)
    t_clf = time.perf_counter() - t0
    offset = 8.0 * cv["is_real"] / s["scale_real_is"]  # official feature IS - 8, on our scale
    runs, times = {}, {}
    for name in s["schedules"] + s["controllers"]:
        t1 = time.perf_counter()
        ctrl = None if ":" in name else OnlineController(s, derive_seed(seed, "online-controller"),
                                                          name != "autoloss-no-baseline")
        runs[key_of(name)] = train_gan(s, clf, data[0], seed, name if ":" in name else None,
                                       ctrl, offset, device)
        times[key_of(name)] = time.perf_counter() - t1
    v = summarise(runs, s, cv["is_real"])
    v["classifier"] = cv
    v["controller"] = {k: {"updates": r["controller_updates"], "rewards": r["segment_rewards"]}
                       for k, r in runs.items() if "controller_updates" in r}
    v["runtime_s"] = {"classifier": t_clf, "runs": times, "total": time.perf_counter() - t0,
                      "cpu_total": time.process_time() - c0}
    return v


def gan(cfg: dict, ctx) -> tuple[dict, str]:
    """Experiment ``autoloss_gan`` (:func:`gan_experiment`, one thread, on ``ctx.device``):
    the IS classifier is trained first (its values are in the record), then every schedule."""
    from .experiments import one_thread
    with one_thread():
        return (gan_experiment(cfg, ctx.seed_for("autoloss_gan"), device=ctx.device),
                "MNIST via reprobook.data.load_mnist (REPRO_DATA)")


def gan_slice(cfg: dict) -> list[tuple[dict, float]]:
    """Two short runs of the first fixed schedule, 20 and 40 steps with an evaluation every 20
    (its samples shrunk so that it costs per step what the run's does): their difference is
    20 steps, scaled to every schedule's and controller's run, and what is left of the first
    (data, models, a one-step classifier) counts once. The IS classifier's own training, once
    per experiment, is not projected."""
    runs = len(cfg["schedules"]) + len(cfg["controllers"])
    k = cfg["steps"] / 20 * runs
    samples = max(10 * cfg["splits"], round(20 * cfg["eval_samples"] / cfg["eval_every"]))
    short = {**cfg, "eval_every": 20, "eval_samples": samples, "schedules": cfg["schedules"][:1],
             "controllers": [], "clf_steps": 1}
    return [({**short, "steps": 20}, 2 - k), ({**short, "steps": 40}, k - 1)]
