"""Experiment ``cd_grid_search_timing``: is learning p with Concrete dropout faster than
grid-searching it for a comparable result (report §3.3, §4; paper §1)?

Per UCI set, one Concrete run and one run per grid value of a fixed p shared by every layer
(:func:`run_uci`, all splits batched in each run, the same epochs, batches and seed). A grid
search must run every point before it knows the best, so its time is the sum of the grid's
runs. A shared p is the cheapest grid (a grid per layer costs |grid|^layers runs), and the best
point is picked on the test log-likelihood, which favours the grid: both make the measured
speed-up a lower bound."""
from __future__ import annotations

from .. import registry
from . import _UCI
from .uci import run_uci

GRID = [0.01, 0.05, 0.1, 0.2, 0.3, 0.5]
_NET = {k: _UCI[k] for k in ("width", "depth", "batch", "lengthscale")}
PROFILES = {
    "small": {**_NET, "sets": ["boston"], "epochs": {"boston": 20}, "splits": 3,
              "grid": [0.05, 0.2, 0.5], "lr": 3e-3, "samples": 20},
    # the chapter's UCI lengths (cd_uci at medium): a few minutes of one core
    "medium": {**_NET, "sets": ["boston", "wine-red"], "epochs": {"boston": 400, "wine-red": 400},
               "splits": 20, "grid": GRID, "lr": 1e-3, "samples": 100},
    "full": {**_NET, "sets": ["boston", "kin8nm", "wine-red"],
             "epochs": {"boston": 400, "kin8nm": 100, "wine-red": 400}, "splits": 20,
             "grid": GRID, "lr": 1e-3, "samples": 1000},
}


def cells(cfg: dict) -> list[dict]:
    base = {k: v for k, v in cfg.items() if k not in ("sets", "epochs", "grid")}
    return [{**base, "name": name, "epochs": cfg["epochs"][name], "fixed_p": p}
            for name in cfg["sets"] for p in (None, *cfg["grid"])]


def cell(cfg: dict, ctx):
    """One run: Concrete dropout (``fixed_p`` None) or every p fixed at ``fixed_p``."""
    return run_uci(cfg["name"], cfg["epochs"], cfg["batch"], cfg["splits"], cfg["width"],
                   cfg["depth"], cfg["lengthscale"], cfg["lr"], cfg["samples"],
                   ctx.seed_for("cd_grid_search_timing", cfg["name"]), ctx.device,
                   fixed_p=cfg["fixed_p"])


def summarise(cell_values: list, cfg: dict) -> dict:
    """Per set: the Concrete run's and each grid run's test LL, RMSE and training time; the
    grid's best LL minus Concrete's; the speed-up (grid time / Concrete time); and, for the
    ledger, the smallest speed-up and the largest LL advantage of the grid over the sets."""
    sets: dict = {}
    for c, v in cell_values:
        s = sets.setdefault(c["name"], {"grid": {}})
        row = {"ll": v["ll"], "rmse": v["rmse"], "train_s": v["train_s"]}
        if c["fixed_p"] is None:
            s["concrete"] = {**row, "p": v["p"]}
        else:
            s["grid"][f"{c['fixed_p']:g}"] = row
    for s in sets.values():
        best = max(s["grid"], key=lambda p: s["grid"][p]["ll"])
        s["grid_best_p"] = float(best)
        s["grid_best_minus_concrete_ll"] = s["grid"][best]["ll"] - s["concrete"]["ll"]
        s["grid_s"] = sum(g["train_s"] for g in s["grid"].values())
        s["speedup"] = s["grid_s"] / s["concrete"]["train_s"]
    advantage = {n: s["grid_best_minus_concrete_ll"] for n, s in sets.items()}
    speedup = min(s["speedup"] for s in sets.values())
    return {"sets": sets, "grid_points": len(cfg["grid"]), "splits": cfg["splits"],
            "speedup": speedup, "grid_best_minus_concrete_ll": advantage,
            # the claim in two numbers: Concrete's speed-up, and how far the grid's best
            # log-likelihood beats Concrete's (a speed-up for a worse model is no speed-up)
            "grid_vs_concrete": {"speedup_min": speedup,
                                 "ll_advantage_max": max(advantage.values())}}


def _slice(cfg: dict) -> tuple[dict, float]:
    return {**cfg, "epochs": 1}, cfg["epochs"]


registry.register(registry.Experiment(
    name="cd_grid_search_timing", chapter="concrete_dropout", compute=cell, cells=cells,
    cell_name="cd_grid_run", summarise=summarise, profiles=PROFILES, slice=_slice,
    modules=("concrete_dropout/kernels.py", "concrete_dropout/models.py",
             "concrete_dropout/uci.py", "concrete_dropout/exp_grid.py"),
    outputs=("sets", "grid_points", "splits", "speedup", "grid_best_minus_concrete_ll",
             "grid_vs_concrete")))
