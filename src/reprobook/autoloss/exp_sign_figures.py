"""The figure and table of the sign run (:mod:`reprobook.autoloss.exp_sign`), drawn from its
record's values. Not part of any code hash: a change here stales no evidence."""
from __future__ import annotations

SIGNS = (("correct", "correct sign (paper Eq. 2)"), ("report", "report's sign"))


def plot_sign_curves(values: dict, window: int = 20):
    """Best validation MSE per training episode (rolling mean), one line per sign."""
    import matplotlib.pyplot as plt
    import pandas as pd
    fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
    for name, label in SIGNS:
        curve = pd.Series(values[name]["valid_curve"]).rolling(window, min_periods=1).mean()
        ax.plot(range(1, len(curve) + 1), curve, label=label)
    ax.set(xlabel="episode", ylabel=f"best validation MSE (rolling mean of {window})")
    ax.legend(fontsize=8)
    return fig


def sign_table(values: dict):
    """Per sign: best validation MSE and share of L1 steps in the first and last fifth of the
    episodes, and the test MSE of the trained controllers."""
    import pandas as pd
    return pd.DataFrame({name: {
        "best valid MSE, first fifth": f"{values[name]['valid_first_fifth']:.3f}",
        "best valid MSE, last fifth": f"{values[name]['valid_last_fifth']:.3f}",
        "share of L1 steps, first → last fifth":
            f"{values[name]['l1_first_fifth']:.3f} → {values[name]['l1_last_fifth']:.3f}",
        "test MSE (mean over seeds)": f"{values[name]['test_mse_mean']:.3f}"}
        for name, _ in SIGNS}).T
