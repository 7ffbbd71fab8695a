"""Experiment ``dropmax_alpha_sweep``: the report's drop-class objective (report §2 eq. 7,
jamesal1/DropMax ``getRegLoss``) on MNIST-1K with and without its "variational" term
-log(rho_t / sum_k rho_k), and with alpha, the weight of the Bernoulli entropy of rho, swept.

Report §4.1 says the variational term "makes no significant difference"; report §2 and §4.2
that regularising rho "can be beneficial" when dropping classes. Each cell is one
(variational, alpha, seed) run of :func:`train_one` (the official protocol); the summary pairs
runs over the same seeds and test images (:func:`stats.paired_bootstrap`)."""
from __future__ import annotations

import numpy as np

from .. import registry
from ..stats import paired_bootstrap
from . import PROFILES as _CHAPTER
from .experiments import SIZES, _rho_logs, mnist_split, report_loss, train_one, unpack_bits

MODEL = "report-class"  # drop-class: the case the report's claim is about


def _profile(name: str, seeds: list, epochs: int, alphas: list, **kw) -> dict:
    base = {k: v for k, v in _CHAPTER[name]["dropmax_mnist"].items() if k not in ("sizes", "seeds")}
    return {**base, "seeds": seeds, "epochs": epochs, "alphas": alphas, "samples": [], **kw}


# alpha = 10 is the report's choice (and the chapter's); 0 switches the regulariser off.
PROFILES = {
    "small": _profile("small", [0], 5, [0.0, 10.0], test_n=2000),
    # 12 official-length runs (~2.5 min each on one core): alpha in {0, 10, 100} and the
    # term switched off at alpha = 10, three seeds
    "medium": _profile("medium", [0, 1, 2], 200, [0.0, 10.0, 100.0]),
    "full": _profile("full", [0, 1, 2, 3, 4], 200, [0.0, 1.0, 10.0, 100.0]),
}


def cells(cfg: dict) -> list[dict]:
    """Every alpha with the term, and the term off at the chapter's alpha, for every seed."""
    base = {k: v for k, v in cfg.items() if k not in ("seeds", "alphas")}
    variants = [(True, a) for a in cfg["alphas"]] + [(False, cfg["alpha"])]
    return [{**base, "model": MODEL, "variational": var, "alpha": a, "seed": seed}
            for var, a in variants for seed in cfg["seeds"]]


def loss(cfg: dict):
    """report §2 eq. 7 as the report's code computes it (:func:`report_loss`, drop-class, target
    not forced), with or without the variational term, plus L2 weight decay."""
    wd = cfg["weight_decay"]

    def loss_fn(model, x, y):
        o, ph, _ = model(x)
        value = report_loss(o, ph, y, "class", alpha=cfg["alpha"], variational=cfg["variational"])
        l2 = sum(p.pow(2).sum() for p in model.decayed_parameters())
        return value + wd * 0.5 * l2, _rho_logs(ph, y)
    return loss_fn


def cell(cfg: dict, ctx) -> tuple[dict, str]:
    sp = mnist_split(SIZES["1k"])
    return train_one(MODEL, sp, cfg, loss(cfg), device=ctx.device), sp["source"]


def _gain(runs: dict, base, other, n_boot: int) -> dict:
    """Test-error points of ``base`` minus ``other`` (positive: ``other`` is better), paired
    over the seeds both have and the same test images, with its 95 % bootstrap interval."""
    seeds = sorted(set(runs[base]) & set(runs[other]))
    bits = [np.stack([unpack_bits(runs[k][s]["wrong"], runs[k][s]["n_test"]) for s in seeds])
            for k in (base, other)]
    mean, lo, hi = paired_bootstrap(bits[0] * 100, bits[1] * 100, n_boot)
    return {"mean": mean, "lo": lo, "hi": hi, "seeds": len(seeds)}


def summarise(cell_values: list, cfg: dict) -> dict:
    """Per variant the median test and validation error; ``variational_gain`` (term off minus
    term on, at the chapter's alpha) and ``alpha_gain`` (alpha = 0 minus the alpha > 0 with
    the lowest mean validation error), each paired with its interval."""
    runs: dict = {}
    for c, v in cell_values:
        runs.setdefault((c["variational"], c["alpha"]), {})[c["seed"]] = v
    name = lambda key: f"{'term' if key[0] else 'no-term'}-a{key[1]:g}"  # noqa: E731
    out = {"error": {name(k): float(np.median([v["error"]["approx"] for v in r.values()]))
                     for k, r in runs.items()},
           "val_error": {name(k): float(np.mean([v["val_error"] for v in r.values()]))
                         for k, r in runs.items()},
           "epochs": cfg["epochs"], "seeds": len(cfg["seeds"]), "n_test": cfg["test_n"]}
    out["variational_gain"] = _gain(runs, (False, cfg["alpha"]), (True, cfg["alpha"]), 2000)
    positive = [a for a in cfg["alphas"] if a > 0]
    if 0.0 in cfg["alphas"] and positive:
        best = min(positive, key=lambda a: out["val_error"][name((True, a))])
        out["alpha_gain"] = {**_gain(runs, (True, 0.0), (True, best), 2000), "alpha": best}
    return out


def _slice(cfg: dict) -> tuple[dict, float]:
    return {**cfg, "epochs": 1, "test_n": 1000}, cfg["epochs"]


registry.register(registry.Experiment(
    name="dropmax_alpha_sweep", chapter="dropmax", compute=cell, cells=cells,
    cell_name="dropmax_alpha_run", summarise=summarise, profiles=PROFILES,
    modules=("dropmax/kernels.py", "dropmax/models.py", "dropmax/experiments.py",
             "dropmax/exp_alpha.py"),
    outputs=("error", "val_error", "epochs", "seeds", "n_test", "variational_gain", "alpha_gain"),
    slice=_slice))
