"""One plotting style for the whole book."""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt

PALETTE = ("#1b6ca8", "#e07a1f", "#3a923a", "#c0392b", "#8e5ea2", "#8c6d31", "#d1499b",
           "#555555", "#17becf", "#bcbd22")
_ARCH_ORDER = ("relu", "layer-relu", "batch-relu", "tanh", "layer-tanh", "batch-tanh", "selu")


def use_style() -> None:
    plt.rcParams.update({
        "figure.dpi": 100, "savefig.dpi": 100, "axes.grid": True, "grid.alpha": 0.3,
        "axes.spines.top": False, "axes.spines.right": False, "font.size": 10,
        "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    })


def arch_color(name: str) -> str:
    idx = _ARCH_ORDER.index(name) if name in _ARCH_ORDER else sum(map(ord, name))
    return PALETTE[idx % len(PALETTE)]
