"""DropMax chapter figures and tables, drawn from the records' values (never computed here,
never hashed: a change here stales no evidence)."""
from __future__ import annotations


def plot_pathology(values: dict):
    """Mean non-target retain probability per epoch, one line per pathology variant."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    colours = {"free-linear": "C0", "free-relu": "C1", "forced-linear": "C2", "forced-relu": "C3"}
    for ax, mode in zip(axes, ("logit", "class")):
        for name, curve in values["rho_nt_curve"].items():
            code = name.startswith("code-")
            if name.removeprefix("code-").startswith(mode):
                tag = name.removeprefix("code-")[len(mode) + 1:]
                ax.plot(range(1, len(curve) + 1), curve, color="C4" if code else colours[tag],
                        label=("report code, " if code else "") + tag,
                        ls=":" if code else "-" if "free" in name else "--",
                        lw=1.5 if "relu" in name else 2.5)
        ax.set(title=f"drop-{mode}", xlabel="epoch", ylim=(0, 1))
        ax.axhline(0.99, color="grey", lw=0.5)
    axes[0].set_ylabel("mean non-target rho")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def overhead_table(values: dict, size: str = "1k"):
    """Parameters, ms per training step and us per test image, and their ratio to softmax."""
    import pandas as pd
    rows = {m: {"parameters": f"{int(values['params'][m]):,}",
                "ms / step": round(values["ms_per_step"][m][size], 1),
                "us / test image": round(values["us_per_image"][m][size], 1),
                "step / softmax": round(values["step_ratio"].get(m, {}).get(size, float("nan")), 2),
                "test / softmax": round(values["test_ratio"].get(m, {}).get(size, float("nan")), 2)}
            for m in values["params"] if size in values["ms_per_step"].get(m, {})}
    return pd.DataFrame(rows).T


def dead_class_table(cells: list):
    """Per seed of the sparsemax-CE model: test error, the share of training images whose
    target probability is exactly 0 (whole dead classes on the class-balanced set) at the last
    epoch and after epoch 10, and the final training loss."""
    import pandas as pd
    rows = {}
    for c in cells:
        if c["config"]["model"] != "sparsemax-ce":
            continue
        h = c["values"]["hist"]
        rows[f"seed {c['config']['seed']}"] = {
            "test error (%)": round(c["values"]["error"]["approx"], 2),
            "training images with zero target probability, last epoch":
                round(h["zero_target"][-1], 3),
            "the same, after epoch 10": round(h["zero_target"][min(9, len(h["zero_target"]) - 1)], 3),
            "final training loss": round(h["loss"][-1], 3)}
    return pd.DataFrame(rows).T


def alpha_table(v: dict):
    """``dropmax_alpha_sweep``: median test and mean validation error per variant, then the two
    paired gains (points, 95 % interval) the ledger judges."""
    import pandas as pd
    rows = pd.DataFrame({"test error (%)": v["error"], "validation error (%)": v["val_error"]})
    gains = {"term off minus on (alpha 10)": v["variational_gain"]}
    if "alpha_gain" in v:
        gains[f"alpha 0 minus alpha {v['alpha_gain']['alpha']:g}"] = v["alpha_gain"]
    gain_rows = pd.DataFrame({k: {"paired gain (points)": round(g["mean"], 2),
                                  "95 % interval": f"[{g['lo']:.2f}, {g['hi']:.2f}]",
                                  "seeds": g["seeds"]} for k, g in gains.items()}).T
    return rows.round(2), gain_rows


def variants_table(v: dict):
    """``dropmax_mnist_variants``: test error and ECE (%) per variant and model."""
    import pandas as pd
    rows = {(var, model): {"test error (%)": v.get(f"{var}-{model}-err"),
                           "ECE (%)": v.get(f"{var}-{model}-ece")}
            for var in ("rb", "br") for model in ("softmax", "dropmax")
            if f"{var}-{model}-err" in v}
    return pd.DataFrame(rows).T.round(2)
