"""AutoLoss's sensitivity to its controller's hyperparameters and the feature ablation of
paper Table 3, on the quadratic regression task (Xu et al., ICLR 2019; the report's reviewer:
"highly sensitive to hyperparameters").

``SETTINGS`` lists the controller settings trained side by side with the official one
(``config/reg``: C = 20000, clip 20, shaping on, baseline decay 0.8, Adam 1e-3, temperature 2,
hidden 16, raw features): each changes one knob. The ``drop:*`` settings zero one feature group
of the official state (paper Table 3: (2) gradient magnitude = feature 5, (3) loss values =
features 3-4, (4) validation metrics = features 1-2; the official code has no "training
progress" feature). :func:`summarise` turns the per-lane test MSEs into medians and IQRs per
setting and the robustness ratio of the chapter's criterion.
"""
from __future__ import annotations

import math

import torch

SETTINGS = {
    "official": {},
    "C=2e3": {"reward_c": 2e3}, "C=2e5": {"reward_c": 2e5},
    "clip=5": {"adv_clip": 5.0}, "no-clip": {"adv_clip": math.inf},
    "no-shaping": {"shaping": False},
    "decay=0.5": {"baseline_decay": 0.5}, "decay=0.95": {"baseline_decay": 0.95},
    "lr=1e-4": {"lr_ctrl": 1e-4}, "lr=1e-2": {"lr_ctrl": 1e-2},
    "T=1": {"temperature": 1.0}, "T=4": {"temperature": 4.0},
    "hidden=0": {"hidden": 0},
    "normalised": {"features": "normalised"},
    "drop:gradient-magnitude": {"features": "drop:4"},
    "drop:loss-values": {"features": "drop:2,3"},
    "drop:validation-metrics": {"features": "drop:0,1"},
}
ROBUST_RATIO = 1.0  # not robust: medians over settings spread more than AutoLoss-to-best-baseline


def weights_for(lanes: list, scale: torch.Tensor, n_features: int):
    """Per-lane feature multipliers (M, F): 1 (raw), 1/scale ("normalised") or 0 for the
    dropped columns ("drop:i,j"); None when every lane uses raw features."""
    if not any("features" in ls for ls in lanes):
        return None
    w = torch.ones(len(lanes), n_features)
    for i, ls in enumerate(lanes):
        f = ls.get("features")
        if f == "normalised":
            w[i] = 1 / scale
        elif f is not None and f.startswith("drop:"):
            w[i, [int(c) for c in f[5:].split(",")]] = 0.0
        elif f is not None:
            raise ValueError(f"unknown feature setting {f!r}: use 'normalised' or 'drop:i,j'")
    return w


def _stats(v: torch.Tensor) -> dict:
    q = torch.quantile(v.double(), torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    return {"median": float(q[1]), "q25": float(q[0]), "q75": float(q[2]),
            "iqr": float(q[2] - q[0]), "values": v.tolist()}


def summarise(lanes: list, test: torch.Tensor, best_baseline: float, best_name: str,
              n_seeds: int) -> dict:
    """Median and IQR of test MSE per setting over its (controller seed, trial) runs;
    ``test`` is (lanes, trials). The criterion: ratio = (max - min of the medians over the
    hyperparameter settings, ablations excluded) / |median of the official setting - test MSE of
    the best baseline|; ``not_robust`` = ratio > ROBUST_RATIO."""
    per = {}
    for name in dict.fromkeys(ls["setting"] for ls in lanes if "setting" in ls):
        idx = [i for i, ls in enumerate(lanes) if ls.get("setting") == name]
        per[name] = _stats(test[idx].flatten())
        per[name]["seed_means"] = test[idx].mean(1).tolist()
    hyper = {k: v for k, v in per.items() if not k.startswith("drop:")}
    medians = {k: v["median"] for k, v in hyper.items()}
    spread = max(medians.values()) - min(medians.values())
    gap = abs(per["official"]["median"] - best_baseline)
    ratio = spread / gap if gap > 0 else math.inf
    ablation = {k[5:]: float(torch.tensor(v["values"]).mean()) for k, v in per.items()
                if k.startswith("drop:")}
    ablation["none"] = float(torch.tensor(per["official"]["values"]).mean())
    return {"settings": per, "spread_of_medians": spread, "gap_to_best_baseline": gap,
            "best_baseline": best_name, "best_baseline_mse": best_baseline, "ratio": ratio,
            "not_robust": bool(ratio > ROBUST_RATIO),
            "worst_setting": max(medians, key=medians.get),
            "best_setting": min(medians, key=medians.get), "n_seeds": n_seeds,
            "ablation": ablation}
