"""The MLP binary classification task of AutoLoss (paper §4.1, Table 1's second row) as the
official code runs it (safpla/AutoLossRelease @ c3cdf97: ``models/cls.py``, ``config/cls``,
``dataio/gen_cls_data.py``), as a task of the lockstep engine (``engine.LockstepLanes``).

A lane is one MLP 32 -> 32 (ReLU) -> 2 with softmax cross-entropy (``models/cls.py`` L92-127),
theta = [vec W1, b1, vec W2, b2]; the L1 loss lam sum|theta| runs over all trainable variables,
biases included (``apply_regularization(l1_regularizer(0.02), tvars)``). Training is full batch
(batch 200 = the 200 training rows). After each step the lane measures its training CE and
accuracy, the CE and L1 gradients, and the validation CE and accuracy on all 1000 validation rows
(``response`` L163-223); the six state features are ``get_state`` (L294-338); the checkpoint
metric is the validation accuracy (higher is better, ``check_terminate`` L225-247). The CE
gradient is the closed-form backward pass of the two-layer net (checked against autograd in the
tests).
"""
from __future__ import annotations

import math

import torch

from .engine import LockstepLanes

N_FEATURES = 6
D_IN, D_HIDDEN, D_OUT = 32, 32, 2
OFFICIAL = {"lr": 1e-3, "valid_every": 10, "max_endurance": 20, "max_steps": 2000,
            "lam": 0.02, "reward_c": 1000.0, "adv_clip": 5.0, "baseline_decay": 0.9,
            "step_cap": 5.0, "step_scale": 0.1, "temperature": 2.0, "hidden": 16,
            "lr_ctrl": 1e-3, "episodes": 40000, "max_endurance_ctrl": 1000}  # config/cls/cfg.py
SIZES = {"train_ctrl": 200, "valid_ctrl": 1000, "train_task": 200, "valid_task": 1000,
         "test": 1000}  # config/cls: the partitions of gen_cls_data.py, in this order


def cls_partitions(data: dict, dtype=torch.float32) -> dict:
    """The five partitions of ``gen_cls_data.py`` (200, 1000, 200, 1000, 1000 rows) as (x, y)."""
    out, start = {}, 0
    if len(data["x"]) < sum(SIZES.values()):
        raise ValueError(f"need {sum(SIZES.values())} rows for the five partitions, got "
                         f"{len(data['x'])}")
    for name, n in SIZES.items():
        out[name] = (data["x"][start:start + n].to(dtype), data["y"][start:start + n].long())
        start += n
    return out


def truncated_normal(shape, std: float, generator) -> torch.Tensor:
    """TF's ``truncated_normal``: N(0, std^2) redrawn until within two standard deviations."""
    z = torch.randn(shape, generator=generator, dtype=torch.float64)
    bad = z.abs() > 2
    while bad.any():
        z[bad] = torch.randn(int(bad.sum()), generator=generator, dtype=torch.float64)
        bad = z.abs() > 2
    return z * std


def mlp_unflatten(theta: torch.Tensor, d_in=D_IN, d_hidden=D_HIDDEN, d_out=D_OUT):
    """Views (W1 (M,d,h), b1 (M,h), W2 (M,h,o), b2 (M,o)) of the flat (M, P) parameters."""
    M = theta.shape[0]
    sizes = [d_in * d_hidden, d_hidden, d_hidden * d_out, d_out]
    if theta.shape[1] != sum(sizes):
        raise ValueError(f"theta has {theta.shape[1]} columns, the MLP {d_in}-{d_hidden}-{d_out} "
                         f"needs {sum(sizes)}")
    w1, b1, w2, b2 = theta.split(sizes, 1)
    return (w1.view(M, d_in, d_hidden), b1, w2.view(M, d_hidden, d_out), b2)


def mlp_logits(x: torch.Tensor, theta: torch.Tensor):
    """Logits (M, n, 2) = relu(x W1 + b1) W2 + b2 and the hidden pre-activations."""
    w1, b1, w2, b2 = mlp_unflatten(theta)
    pre = torch.baddbmm(b1[:, None, :], x.expand(len(theta), -1, -1), w1)  # bmm: no copy of x
    return torch.baddbmm(b2[:, None, :], pre.clamp(min=0), w2), pre


def ce_and_accuracy(logits: torch.Tensor, y: torch.Tensor):
    """Mean softmax cross-entropy and accuracy per model (argmax ties -> first class, as
    ``tf.argmax``); logits (M, n, K), y (n,)."""
    logp = torch.log_softmax(logits, -1)
    ce = -logp.gather(-1, y.view(1, -1, 1).expand(len(logits), -1, 1)).squeeze(-1).mean(1)
    acc = (logits.argmax(-1) == y).to(logits.dtype).mean(1)
    return ce, acc


class ClassificationLanes(LockstepLanes):
    """M MLP classifiers (official ``config/cls``: Adam 1e-3, full batch, validation every 10
    steps, endurance 20 checks). ``train``/``valid`` are (x, y) pairs."""

    OFFICIAL = OFFICIAL
    n_features = N_FEATURES
    reward_kind = "classification"
    higher_better = True

    def _prepare(self, train, valid):
        (self.x, self.y), (self.xv, self.yv) = train, valid
        if self.x.shape[1] != D_IN:
            raise ValueError(f"the official MLP takes {D_IN} features, got {self.x.shape[1]}")
        self.onehot = torch.nn.functional.one_hot(self.y, D_OUT).to(self.x.dtype)
        return self.x.dtype

    def _init_theta(self, generator):
        """Weights truncated N(0, 0.1^2), biases 0.1 (``weight_variable``/``bias_variable``)."""
        M = self.M
        return torch.cat([truncated_normal((M, D_IN * D_HIDDEN), 0.1, generator),
                          torch.full((M, D_HIDDEN), 0.1, dtype=torch.float64),
                          truncated_normal((M, D_HIDDEN * D_OUT), 0.1, generator),
                          torch.full((M, D_OUT), 0.1, dtype=torch.float64)], 1)

    def initial_state(self):
        return [0.0, 1 + math.log(1 + 1e-4) / 10, 0.0, 0.0, 0.0, 0.0]  # get_state, ib = 1

    def _measure(self):
        """Training CE/accuracy and the CE gradient (backward pass written out: dlogits =
        (softmax - onehot)/n, dW2 = h^T dlogits, dh = dlogits W2^T 1[pre > 0], dW1 = x^T dh),
        validation CE/accuracy, L1 terms."""
        logits, pre = mlp_logits(self.x, self.theta)
        self.train_loss, self.train_acc = ce_and_accuracy(logits, self.y)
        dlog = (torch.softmax(logits, -1) - self.onehot) / len(self.y)
        h = pre.clamp(min=0)
        _, _, w2, _ = mlp_unflatten(self.theta)
        dh = (dlog @ w2.transpose(1, 2)) * (pre > 0)
        xT = self.x.T.expand(self.M, -1, -1)
        self.g_task = torch.cat([torch.bmm(xT, dh).flatten(1), dh.sum(1),
                                 torch.bmm(h.transpose(1, 2), dlog).flatten(1), dlog.sum(1)], 1)
        if self._need_valid():
            self.valid_loss, self.valid_acc = ce_and_accuracy(
                mlp_logits(self.xv, self.theta)[0], self.yv)
            self.metric = self.valid_acc
        self._l1_terms()

    def _state(self):
        """(v - t)/t, 1 + log(|ib| + 1e-4)/10, CE, L1, (train_acc - valid_acc)/valid_acc,
        (mag_ce - mag_l1)/mag_l1 (0 where a denominator is 0, as the official code)."""
        t, v, zero = self.train_loss, self.valid_loss, torch.zeros_like(self.train_loss)
        rel = torch.where(t > 1e-6, (v - t) / t, zero)
        acc_gap = torch.where(self.valid_acc == 0, zero,
                              (self.train_acc - self.valid_acc) / self.valid_acc)
        grad_gap = torch.where(self.mag_l1 == 0, zero, (self.mag_task - self.mag_l1) / self.mag_l1)
        return torch.stack([rel, 1 + torch.log(self.ib.abs() + 1e-4) / 10, t, self.l1, acc_gap,
                            grad_gap], 1)

    def test_scores(self, test) -> torch.Tensor:
        """Per-row 0/1 errors (M, n) of the best-validation parameters on ``test``."""
        x, y = test
        logits, _ = mlp_logits(x.to(self.dtype), self.best_theta)
        return (logits.argmax(-1) != y).double()
