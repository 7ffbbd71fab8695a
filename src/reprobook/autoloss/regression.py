"""The d-ary quadratic regression task of AutoLoss (paper §4.1, Table 1) as the official code
runs it (safpla/AutoLossRelease @ c3cdf97: ``models/reg.py``, ``trainer.py``, ``config/reg``),
as a task of the lockstep engine (``engine.LockstepLanes``).

A lane is one quadratic model theta = [w1, vec(w2)]. After each step the lane's training MSE,
L1 loss, gradient magnitudes and validation MSE are measured (``response``, L163-217), giving the
controller's five state features (``get_state``, L288-324); the validation metric is the
validation MSE (lower is better, ``check_terminate`` L219-242). The gradients are written out
(MSE: 2/n Phi^T r; L1: lam sign(theta)) because the model is linear in theta with the features
Phi = [x, vec(x x^T)/10].
"""
from __future__ import annotations

import math

import torch

from .engine import LockstepLanes

N_FEATURES = 5
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


class RegressionLanes(LockstepLanes):
    """M quadratic regression models (official ``config/reg``: Adam 5e-4, full batch, validation
    every 10 steps, endurance 100 checks). ``train``/``valid`` are (Phi, y) pairs."""

    OFFICIAL = OFFICIAL
    n_features = N_FEATURES
    reward_kind = "regression"
    higher_better = False

    def _prepare(self, train, valid):
        (phi, y), (phi_v, y_v) = train, valid
        self.phiT, self.phi2, self.ny = phi.T.contiguous(), phi * (2.0 / len(phi)), -y
        self.phivT, self.nyv = phi_v.T.contiguous(), -y_v
        return phi.dtype

    def _init_theta(self, generator):
        """w1 ~ N(0, 0.1^2), w2 ~ N(0, 0.01^2) (``models/reg.py`` L88-95)."""
        P = self.phiT.shape[0]
        d = int(round((math.sqrt(1 + 4 * P) - 1) / 2))
        scale = torch.cat([torch.full((d,), 0.1), torch.full((P - d,), 0.01)]).double()
        return torch.randn(self.M, P, generator=generator, dtype=torch.float64) * scale

    def initial_state(self):
        return [0.0, 1 + math.log(1 + 1e-5) / 12, -0.5, -1.0, 0.0]  # the official get_state

    def _measure(self):
        """Losses, gradients and validation MSE at the current theta (full batch)."""
        r = torch.addmm(self.ny, self.theta, self.phiT)
        self.train_loss = r.square().mean(1)
        self.g_task = r @ self.phi2
        if self._need_valid():
            self.valid_loss = torch.addmm(self.nyv, self.theta, self.phivT).square().mean(1)
            self.metric = self.valid_loss
        self._l1_terms()

    def _state(self):
        """(v - t)/t, 1 + log(|ib| + 1e-5)/12, min(1, mse/20) - 0.5, l1 - 1, mag_mse - mag_l1."""
        mse = self.train_loss
        rel = torch.where(mse > 1e-6, (self.valid_loss - mse) / mse, torch.zeros_like(mse))
        return torch.stack([rel, 1 + torch.log(self.ib.abs() + 1e-5) / 12,
                            (mse / 20).clamp(max=1) - 0.5, self.l1 - 1,
                            self.mag_task - self.mag_l1], 1)

    def test_scores(self, test) -> torch.Tensor:
        """Per-row squared errors (M, n) of the best-validation parameters on ``test``."""
        phi, y = test
        return (self.best_theta.double() @ phi.T.double() - y.double()) ** 2


Lanes = RegressionLanes  # the name phase 1 used
