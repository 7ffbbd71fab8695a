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


def published_vs_ours(rows, title: str = "", xlabel: str = "value", labels=None):
    """Ours beside the published numbers on one axis: one line per claim row (the rows of
    :func:`reprobook.book.published_table`), ours as a dot, the paper's as a square, the
    report's as a triangle. Rows without a numeric value of ours are left out."""
    import math

    def num(v):
        try:
            x = float(v)
        except (TypeError, ValueError):
            return None
        return None if math.isnan(x) else x

    rows = [r for _, r in rows.iterrows() if num(r["ours"]) is not None]
    fig, ax = plt.subplots(figsize=(7.2, 0.32 * len(rows) + 1.1), layout="constrained")
    for y, r in enumerate(rows):
        for col, marker, colour, name in (("paper", "s", PALETTE[1], "paper"),
                                          ("report", "^", PALETTE[2], "report"),
                                          ("ours", "o", PALETTE[0], "ours")):
            x = num(r[col])
            if x is not None:
                ax.scatter(x, y, marker=marker, s=42, color=colour,
                           facecolors="none" if col != "ours" else colour,
                           label=name if y == 0 or name not in ax.get_legend_handles_labels()[1]
                           else None, zorder=3)
    ax.set_yticks(range(len(rows)), [(labels or {}).get(r["id"], r["id"]) for r in rows],
                  fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="best")
    return fig
