"""The report's REINFORCE sign, shown by a run (experiment ``autoloss_sign``).

The report's controllers hand C (R - B) grad log pi to Adam's ``apply_gradients``, a
minimiser, so they descend the expected reward that paper Eq. 2 ascends
(timur26/ICLR_Reproducibility_Challenge_Autoloss @ 3f43b25, ``r_autoLoss.py`` L48-51 and L92).
In the chapter's main regression run the controllers barely train (a few episodes at the
official controller learning rate 1e-3), so both signs end alike. Here the controllers get many
short episodes on the regression task (paper §4.1, official reward and shaping, state features
normalised by :func:`reprobook.autoloss.engine.feature_scale`) and a controller learning rate
high enough for the policy to move within them; one controller per (seed, sign) in one lockstep
program. Recorded: how each sign's share of L1 steps and best validation MSE move from the first
to the last fifth of the episodes, and the test MSE of the trained controllers on fresh task
models at the training horizon, paired by seed. Raw numbers only; the ledger judges them.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import registry
from ..stats import paired_t
from .engine import feature_scale, test_controllers, train_controllers
from .kernels import make_regression_data
from .regression import OFFICIAL, RegressionLanes, partitions


def sign_run(cfg: dict, ctx) -> dict:
    """Train 2 x len(seeds) controllers (correct sign, report sign) for ``episodes`` episodes
    of ``episode_steps`` steps, then test each on ``trials`` fresh task models."""
    torch.set_num_threads(1)  # lanes are small: one thread is fastest (see experiments.one_thread)
    parts = partitions(make_regression_data())
    seeds = [ctx.seed_for("controller", s) for s in cfg["seeds"]]
    n = len(seeds)
    lam = [OFFICIAL["lam"]] * (2 * n)
    direction = torch.tensor([1.0] * n + [-1.0] * n)
    weight = 1 / feature_scale(RegressionLanes, parts, 500)
    trained = train_controllers(RegressionLanes, parts, lam, seeds + seeds,
                                episodes=cfg["episodes"], max_steps=cfg["episode_steps"],
                                direction=direction, feature_weight=weight, lr_ctrl=cfg["lr_ctrl"],
                                max_endurance_ctrl=cfg["episodes"], task_seed=ctx.seed_for("task"))
    tested = test_controllers(RegressionLanes, parts, trained["controller"], lam, cfg["trials"],
                              ctx.seed_for("test"), cfg["test_steps"], feature_weight=weight)
    valid = np.array(trained["history"]["best_valid"])  # (episodes, 2n)
    k = max(1, cfg["episodes"] // 5)
    test = tested["test"].mean(-1).mean(-1).numpy()  # (2n,) test MSE per controller
    l1 = np.array(trained["history"]["l1_fraction"])
    out = {"episodes": cfg["episodes"], "seeds": n}
    for name, sl in (("correct", slice(0, n)), ("report", slice(n, 2 * n))):
        out[name] = {"valid_first_fifth": float(valid[:k, sl].mean()),
                     "valid_last_fifth": float(valid[-k:, sl].mean()),
                     "valid_drop": float(valid[:k, sl].mean() - valid[-k:, sl].mean()),
                     "test_mse": test[sl].tolist(), "test_mse_mean": float(test[sl].mean()),
                     "l1_first_fifth": float(l1[:k, sl].mean()),
                     "l1_last_fifth": float(l1[-k:, sl].mean()),
                     "l1_change": float(l1[-k:, sl].mean() - l1[:k, sl].mean()),
                     "l1_shift": float(abs(l1[-k:, sl].mean(0) - l1[:k, sl].mean(0)).mean()),
                     "valid_curve": valid[:, sl].mean(1).tolist()}
    mean, lo, hi = paired_t(test[n:], test[:n])
    out["report_minus_correct"] = {"mean": mean, "lo": lo, "hi": hi}
    out["correct_wins"] = int((test[:n] < test[n:]).sum())
    out["l1_change_product"] = out["correct"]["l1_change"] * out["report"]["l1_change"]
    last = valid[-k:].mean(0)  # each controller's best validation MSE over its last episodes
    mean, lo, hi = paired_t(last[n:], last[:n])
    out["valid_report_minus_correct"] = {"mean": mean, "lo": lo, "hi": hi}
    return out


def _slice(cfg: dict) -> tuple[dict, float]:
    return {**cfg, "episodes": 2, "trials": 1, "test_steps": 50}, cfg["episodes"] / 2


PROFILES = {
    # small: CI's smoke run; medium: long enough for the correct-sign controllers to learn
    # (their best validation MSE falls over the episodes) in a few minutes of one core
    "small": {"seeds": [0, 1, 2], "episodes": 10, "episode_steps": 200, "lr_ctrl": 0.01,
              "trials": 1, "test_steps": 200},
    "medium": {"seeds": list(range(8)), "episodes": 300, "episode_steps": 300, "lr_ctrl": 0.01,
               "trials": 3, "test_steps": 300},
    "full": {"seeds": list(range(10)), "episodes": 400, "episode_steps": 20000, "lr_ctrl": 0.001,
             "trials": 10, "test_steps": 20000},
}

registry.register(registry.Experiment(
    name="autoloss_sign", chapter="autoloss", compute=sign_run,
    modules=("autoloss/exp_sign.py", "autoloss/engine.py", "autoloss/kernels.py",
             "autoloss/regression.py", "stats.py"),
    outputs=("episodes", "seeds", "correct", "report", "report_minus_correct", "correct_wins",
             "l1_change_product", "valid_report_minus_correct"),
    slice=_slice, memory_gb=lambda cfg: 0.3, profiles=PROFILES))
