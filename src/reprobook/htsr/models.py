"""The networks of the paper's experiments, their input pipeline and loss.

Martin & Mahoney (ICML 2019, arXiv 1901.08276): MiniAlexNet on CIFAR-10 for the batch-size
sweep (the authors' Keras script, CalculatedContent/DLGeneralization `Mini Alexnet/cifar10_alexnet.py`) and LeNet5 on MNIST (LeNet5.ipynb),
with Keras' initialisers (the truncated Glorot normal explains the authors' epoch-0 sigma 1.2036, AlexNet-Baseline.ipynb; our inference).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def glorot_normal_keras_(w: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Keras 2 ``glorot_normal``: a normal truncated at +-2 std with std sqrt(2/(fan_in+fan_out))
    and no variance correction (our inference: it matches the authors' epoch-0 sigma 1.2036, AlexNet-Baseline.ipynb)."""
    fan_in = w.shape[1] * int(np.prod(w.shape[2:]))
    fan_out = w.shape[0] * int(np.prod(w.shape[2:]))
    std = math.sqrt(2.0 / (fan_in + fan_out))
    with torch.no_grad():
        z = torch.randn(w.shape, generator=gen)
        bad = z.abs() > 2
        while bad.any():
            z[bad] = torch.randn(int(bad.sum()), generator=gen)
            bad = z.abs() > 2
        w.copy_(z * std)
    return w


class MiniAlexNet(nn.Module):
    """The authors' MiniAlexNet (CalculatedContent/DLGeneralization ``Mini Alexnet/cifar10_alexnet.py``; RMT_Util.Alexnet_Model): two 5x5 conv blocks
    (96, 256) with 3x3/3 'same' max-pooling and BatchNorm, then FC1 4096->384, FC2 384->192,
    output 192->10 with softmax. Glorot-normal weights, biases 0.1, as in Keras."""

    def __init__(self, generator: torch.Generator | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 96, 5, padding=2)
        self.bn1 = nn.BatchNorm2d(96, eps=1e-3, momentum=0.01)  # Keras BN defaults
        self.conv2 = nn.Conv2d(96, 256, 5, padding=2)
        self.bn2 = nn.BatchNorm2d(256, eps=1e-3, momentum=0.01)
        self.fc1 = nn.Linear(4096, 384)
        self.fc2 = nn.Linear(384, 192)
        self.fc3 = nn.Linear(192, 10)
        gen = generator or torch.Generator().manual_seed(0)
        for m in (self.conv1, self.conv2, self.fc1, self.fc2, self.fc3):
            glorot_normal_keras_(m.weight, gen)
            nn.init.constant_(m.bias, 0.1)

    def forward(self, x):  # returns logits; the loss applies the softmax
        # 'same' pooling of Keras/TF on 28 and 10 pixels pads one pixel each side
        x = self.bn1(F.max_pool2d(F.relu(self.conv1(x)), 3, 3, padding=1))
        x = self.bn2(F.max_pool2d(F.relu(self.conv2(x)), 3, 3, padding=1))
        x = x.permute(0, 2, 3, 1).flatten(1)  # Keras flattens channels-last
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class LeNet5(nn.Module):
    """The authors' LeNet5 (ImplicitSelfRegularization LeNet5.ipynb): conv 20 5x5 'same' -> pool 2 -> conv 50 5x5 'same' ->
    pool 2 -> FC1 2450->500 -> 10. Keras defaults: Glorot-uniform weights, zero biases."""

    def __init__(self, generator: torch.Generator | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5, padding=2)
        self.conv2 = nn.Conv2d(20, 50, 5, padding=2)
        self.fc1 = nn.Linear(2450, 500)
        self.fc2 = nn.Linear(500, 10)
        gen = generator or torch.Generator().manual_seed(0)
        for m in (self.conv1, self.conv2, self.fc1, self.fc2):
            nn.init.xavier_uniform_(m.weight, generator=gen)
            nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.permute(0, 2, 3, 1).flatten(1))))


def cifar_crops(x_uint8: torch.Tensor) -> torch.Tensor:
    """The authors' input: centre 28x28 crop (rows/cols 2:-2), /255, then per-image
    standardisation (TF ``per_image_standardization``: (x - mean) / max(std, 1/sqrt(n)))."""
    x = x_uint8[:, :, 2:-2, 2:-2].float().div_(255)
    flat = x.flatten(1)
    mean = flat.mean(1, keepdim=True)
    std = flat.std(1, unbiased=False, keepdim=True).clamp_min(1 / math.sqrt(flat.shape[1]))
    return ((flat - mean) / std).view_as(x)


def mse_softmax_loss(logits, y):
    """Keras ``'mse'`` on softmax outputs against one-hot labels (the authors' loss)."""
    return F.mse_loss(logits.softmax(1), F.one_hot(y, logits.shape[1]).to(logits.dtype))


@torch.no_grad()
def accuracy(model, x, y, device="cpu", batch: int = 1000) -> float:
    model.eval()
    hits = sum(int((model(x[i:i + batch].to(device)).argmax(1).cpu() == y[i:i + batch]).sum())
               for i in range(0, len(x), batch))
    model.train()
    return hits / len(x)


def classification_loss(loss_fn):
    """Adapt ``loss_fn(logits, y)`` to :func:`reprobook.train.fit`'s ``loss_fn(model, x, y)``,
    logging the running training accuracy of each minibatch (no host sync)."""
    def step_loss(model, xb, yb):
        out = model(xb)
        return loss_fn(out, yb), {"train_acc_running": (out.argmax(1) == yb).float().mean()}
    return step_loss


def train(model, x, y, *, batch: int, epochs: int, opt, loss_fn, lr_decay: float = 1.0,
          seed: int = 0, device="cpu", checkpoint=None, progress=None) -> dict:
    """The pre-package training call, now :func:`reprobook.train.fit` with the authors'
    per-epoch decay ``lr *= lr_decay`` (same seeds, same shuffles, same numbers)."""
    from ..train import EpochDecay, fit

    return fit(model, (x, y), classification_loss(loss_fn), opt, epochs=epochs, batch=batch,
               seed=seed, device=device, schedule=EpochDecay(lr_decay) if lr_decay != 1.0 else None,
               checkpoint=checkpoint, progress=progress)
