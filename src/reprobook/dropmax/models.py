"""Networks of the DropMax chapter: the two MNIST trunks (the official code's LeNet and the
TensorFlow-tutorial CNN the paper used, per the official README) and a classifier that puts a
plain linear head or the :class:`~reprobook.dropmax.kernels.DropMax` layer on a trunk.
Initialisation is TF's layer default: Glorot-uniform weights, zero biases.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .kernels import DropMax

TRUNKS = ("lenet", "tf_tutorial")


def glorot_(module: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases for every Conv2d/Linear (``tf.layers`` defaults)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def make_trunk(name: str = "lenet") -> nn.Sequential:
    """(B, 1, 28, 28) -> (B, out_features), ReLU features h of the last hidden layer.

    ``lenet`` (official ``lenet.py``): conv 5x5x20 valid, ReLU, max-pool 2, conv 5x5x50 valid,
    ReLU, max-pool 2, fc 500 ReLU. ``tf_tutorial`` (the paper's base network, TF "Deep MNIST"
    tutorial, without its dropout): conv 5x5x32 same, ReLU, pool, conv 5x5x64 same, ReLU, pool,
    fc 1024 ReLU."""
    if name == "lenet":
        c1, c2, pad, fc, side = 20, 50, 0, 500, 4
    elif name == "tf_tutorial":
        c1, c2, pad, fc, side = 32, 64, 2, 1024, 7
    else:
        raise ValueError(f"unknown trunk {name!r}; valid trunks: {', '.join(TRUNKS)}")
    net = nn.Sequential(
        nn.Conv2d(1, c1, 5, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 5, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * side * side, fc), nn.ReLU())
    net.out_features = fc
    return glorot_(net)


class Classifier(nn.Module):
    """A trunk and an output head: ``head="linear"`` (softmax, sparsemax, sampled softmax,
    random DropMax: one logit layer) or ``head="dropmax"`` (three heads, mode ``class`` or
    ``logit``). ``forward(x)`` returns the head's output: logits, or (o, ph, rh)."""

    def __init__(self, trunk: str = "lenet", num_classes: int = 10, head: str = "linear",
                 mode: str = "class"):
        super().__init__()
        # channels-last convolutions: faster on CPU (oneDNN) and on GPU, same function
        self.trunk = make_trunk(trunk).to(memory_format=torch.channels_last)
        if head == "linear":
            self.head = glorot_(nn.Linear(self.trunk.out_features, num_classes))
        elif head == "dropmax":
            self.head = DropMax(self.trunk.out_features, num_classes, mode)
        else:
            raise ValueError(f"head must be 'linear' or 'dropmax', not {head!r}")
        self.head_kind = head

    def forward(self, x: torch.Tensor):
        return self.head(self.trunk(x))

    def decayed_parameters(self) -> list[nn.Parameter]:
        """Parameters under L2 weight decay: the trunk and the logit layer, biases included
        (official ``weight_decay`` skips only the ``*_branch`` heads ph and rh)."""
        params = list(self.trunk.parameters())
        head = self.head.logits if self.head_kind == "dropmax" else self.head
        return params + list(head.parameters())
