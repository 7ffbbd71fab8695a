"""Experiment 2 of Philipp, Song & Carbonell (2018), "Gradients explode - Deep networks are
shallow" (arXiv 1712.05577): the four exploding MLPs trained on CIFAR-10 (paper Fig. 3;
report of Flynn, Cann & Tasker, §3.2 and its Fig. 4), on the book's one training
loop :func:`reprobook.train.fit`.

- :func:`train_cifar` -- plain SGD (or Adam) with the report's decay rule; per epoch the
  training error, GSC(L, 0) with the training error layer, its growth rate over layers, and
  the effective depth of both residual-size variants (see :mod:`.depth`);
- :func:`run_cifar` -- the learning-rate search, the final runs, a divergence probe at the
  report's largest step sizes, an Adam run, and :func:`summarise_cifar`: what the ledger's
  ``gsc_cifar`` claims read, including whether each network trained at all.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..stats import spearman
from ..train import EarlyStopping, Plateau, fit
from .depth import (TAU, effective_depth, effective_depths, gsc_weighted_rho, layer_io_norms,
                    weight_change)
from .kernels import cross_entropy_error, growth_rate, gsc_curve, kl_error
from .models import make_mlp


def cifar_tensors(data: dict, n_train: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattened, per-channel standardised training images (first ``n_train`` of a seeded permutation)."""
    x = data["x_train"].float().div_(255)
    mean, std = x.mean((0, 2, 3), keepdim=True), x.std((0, 2, 3), keepdim=True)
    x = ((x - mean) / std).flatten(1)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n_train]
    return x[perm].contiguous(), data["y_train"][perm].contiguous()


def _rate(curve) -> float:
    """The growth rate of a GSC curve; NaN for a network too shallow to fit one."""
    try:
        return growth_rate(curve)
    except ValueError:
        return float("nan")


@dataclass
class DivideOnPlateau(Plateau):
    """The report's rule (§3.2): ``lr /= 3`` after ``patience`` epochs without a lower training
    error. Divides (as the first GSC loop did) rather than multiplying by 1/3, one ulp apart."""

    metric: str = "train_error"
    divisor: float = 3.0

    def epoch_end(self, epoch, opt, hist):
        value = float(hist[self.metric][-1])
        if self.best is None or value < self.best:
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            for group in opt.param_groups:
                group["lr"] = group["lr"] / self.divisor
            self.wait = 0


@dataclass
class StopWhenDiverged(EarlyStopping):
    """Stop after the first epoch whose summed training loss is not finite (NaN or inf)."""

    metric: str = "loss_finite"
    restore_best: bool = False

    def update(self, epoch, model, hist):
        return not hist[self.metric][-1]


def train_cifar(arch: str, lr: float, epochs: int, x: torch.Tensor, y: torch.Tensor, *,
                depth: int = 51, width: int = 100, batch: int = 128, patience: int = 5,
                gsc_points: int = 1000, loss: str = "kl", seed: int = 0, device="cpu",
                checkpoint=None, measure: bool = True, tau: float = TAU,
                optimizer: str = "sgd", progress=None) -> dict:
    """Train the MLP with the report's decay rule (lr /= 3 after ``patience`` epochs without a
    lower training error), each epoch's last partial batch left out as in the first loop.

    Per epoch (with ``measure``): training error, GSC(L, 0) on ``gsc_points`` fixed training
    images with the training error layer, the growth rate of the whole GSC curve, and the
    effective depth at threshold ``tau`` of both residual-size variants (operator-norm and
    GSC-weighted, see :mod:`.depth`). ``checkpoint`` (a path) makes the run resumable.
    """
    if loss not in ("kl", "ce"):
        raise ValueError(f"loss must be 'kl' or 'ce', not {loss!r}")
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', not {optimizer!r}")
    gen = torch.Generator().manual_seed(seed)
    model = make_mlp(arch, depth, width, d_in=x.shape[1], d_out=10, generator=gen).to(device)
    w0 = [lin.weight.detach().cpu().clone() for lin in model.linears]
    opt = (torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam)(model.parameters(), lr=lr)
    criterion = kl_error if loss == "kl" else cross_entropy_error
    xg, yg = x[:gsc_points].to(device), y[:gsc_points].to(device)
    n_used = len(x) - len(x) % batch
    if n_used == 0:
        raise ValueError(f"{len(x)} training images make no full batch of {batch}")
    acc = {"wrong": torch.zeros((), dtype=torch.long, device=device),
           "loss": torch.zeros((), dtype=torch.float64, device=device)}

    def loss_fn(model, xb, yb):
        if len(yb) < batch:  # the epoch's last partial batch: no update, as in the first loop
            return torch.zeros((), requires_grad=True)
        out = model(xb)
        l = criterion(out, yb) / len(yb)
        acc["wrong"] += (out.argmax(1) != yb).sum()
        acc["loss"] += l.detach().double() * len(yb)
        return l

    def on_epoch(epoch, model):
        total, wrong = float(acc["loss"]), int(acc["wrong"])
        acc["wrong"].zero_(), acc["loss"].zero_()
        finite = math.isfinite(total)
        rec = {"train_error": wrong / n_used if finite else 1.0, "train_loss": total / n_used,
               "loss_finite": finite, "gsc_L0": float("nan"), "gsc_rate": float("nan"),
               "eff_depth": 0, "eff_depth_gsc": 0, "measure_s": 0.0}
        if measure and finite:
            t0 = time.perf_counter()
            c = gsc_curve(model, xg, yg, error=criterion, group=100)
            wc = weight_change(model, w0)
            ins, outs = layer_io_norms(model, xg, group=100)
            rec.update(gsc_L0=float(c["gsc"][0]), gsc_rate=_rate(c["gsc"]),
                       eff_depth=effective_depth(wc["rho"], tau),
                       eff_depth_gsc=effective_depth(gsc_weighted_rho(wc["op_change"], ins, outs), tau),
                       measure_s=time.perf_counter() - t0)
        return rec

    h = fit(model, (x, y), loss_fn, opt, epochs=epochs, batch=batch, seed=seed, device=device,
            schedule=DivideOnPlateau(patience=patience), on_epoch=on_epoch,
            early_stopping=StopWhenDiverged(), checkpoint=checkpoint, progress=progress,
            shuffle_seed=lambda s, e: s * 1000 + e)
    hist = {"train_error": h["train_error"], "gsc_L0": h["gsc_L0"], "eff_depth": h["eff_depth"],
            "lr": h["lr"], "loss": h["train_loss"], "eff_depth_gsc": h["eff_depth_gsc"],
            "gsc_rate": h["gsc_rate"], "measure_s": h["measure_s"], "epoch_s": h["epoch_s"]}
    wc = weight_change(model, w0)
    finite = h["loss_finite"][-1] if h["loss_finite"] else True
    ins, outs = layer_io_norms(model, xg, group=100)
    rho_gsc = gsc_weighted_rho(wc["op_change"], ins, outs) if finite else [float("nan")] * len(w0)
    return {"arch": arch, "lr": lr, "optimizer": optimizer, "tau": tau, "hist": hist,
            "final_error": hist["train_error"][-1], "op_change": wc["op_change"], "rho": wc["rho"],
            "rho_gsc": rho_gsc, "eff_depth_taus": effective_depths(wc["rho"]),
            "eff_depth_gsc_taus": effective_depths(rho_gsc), "steps_per_epoch": n_used // batch}


def cifar_cells(cfg: dict) -> list[dict]:
    """The cells of paper Fig. 3 / report Fig. 4: per architecture one ``train`` cell (the
    step-size search, then the final run), one ``probe`` cell per large step size, and one
    ``adam`` cell per architecture the profile trains with Adam."""
    base = {k: cfg[k] for k in ("depth", "batch", "patience", "gsc_points", "train", "seed")}
    cells = [{**base, "stage": "train", "arch": a, "lrs": cfg["lrs"], "tau": cfg["tau"],
              "search_epochs": cfg["search_epochs"], "epochs": cfg["epochs"]}
             for a in cfg["archs"]]
    cells += [{**base, "stage": "probe", "arch": a, "lr": lr, "epochs": 1,
               "probe_train": cfg["probe_train"]} for a in cfg["archs"] for lr in cfg["probe_lrs"]]
    cells += [{**base, "stage": "adam", "arch": a, "lr": cfg["adam_lr"], "tau": cfg["tau"],
               "epochs": cfg["adam_epochs"]} for a in cfg["adam_archs"]]
    return cells


def cifar_cell(cfg: dict, ctx) -> tuple[dict, str]:
    """One cell of :func:`cifar_cells`. The training subset is the same for every cell; each
    architecture starts from its own seeded weights. A ``train`` cell picks the step size with
    the lowest training error after ``search_epochs`` (ties: the smaller), then trains
    ``epochs`` with per-epoch checkpoints (``ctx.checkpoint``)."""
    from ..data import load_cifar10
    data = load_cifar10()
    x, y = cifar_tensors(data, cfg["train"], ctx.seed_for("gsc_cifar", "subset"))
    kw = dict(depth=cfg["depth"], batch=cfg["batch"], patience=cfg["patience"],
              gsc_points=cfg["gsc_points"], seed=ctx.seed_for("gsc_cifar", cfg["arch"]),
              device=ctx.device)
    arch = cfg["arch"]
    if cfg["stage"] == "probe":
        n = cfg["probe_train"]
        v = train_cifar(arch, cfg["lr"], 1, x[:n], y[:n], measure=False, **kw)
        return {"diverged": not math.isfinite(v["hist"]["loss"][-1])}, data["source"]
    if cfg["stage"] == "adam":
        return train_cifar(arch, cfg["lr"], cfg["epochs"], x, y, optimizer="adam",
                           tau=cfg["tau"], **kw), data["source"]
    search = {str(lr): train_cifar(arch, lr, cfg["search_epochs"], x, y, measure=False,
                                   **kw)["final_error"] for lr in cfg["lrs"]}
    best = min(cfg["lrs"], key=lambda lr: (search[str(lr)], lr))
    out = train_cifar(arch, best, cfg["epochs"], x, y, checkpoint=ctx.checkpoint, tau=cfg["tau"],
                      **kw)
    if ctx.checkpoint is not None and ctx.checkpoint.exists():
        ctx.checkpoint.unlink()
    return {**out, "search": search}, data["source"]


def cifar_slice(cfg: dict) -> tuple[dict, float]:
    """A short run of a cell and how many such runs the cell costs: a probe as it is (one
    epoch on its subset); an Adam run's first epoch; a train cell's first search epoch and
    first final epoch (the cell: every search epoch of every step size, then the final ones)."""
    if cfg["stage"] == "probe":
        return cfg, 1.0
    if cfg["stage"] == "adam":
        return {**cfg, "epochs": 1}, float(cfg["epochs"])
    return {**cfg, "lrs": cfg["lrs"][:1], "search_epochs": 1, "epochs": 1}, \
        (cfg["epochs"] + len(cfg["lrs"]) * cfg["search_epochs"]) / 2


def summarise(cells: list, cfg: dict) -> dict:
    """What the ledger's ``gsc_cifar`` claims read (:func:`summarise_cifar` and
    :func:`summarise_extras`), and the check that the KL error layer equals cross-entropy."""
    final = {c["arch"]: v for c, v in cells if c["stage"] == "train"}
    search = {a: v["search"] for a, v in final.items()}
    probe: dict = {}
    for c, v in cells:
        if c["stage"] == "probe":
            probe.setdefault(c["arch"], {})[str(c["lr"])] = v["diverged"]
    adam = {c["arch"]: v for c, v in cells if c["stage"] == "adam"}
    gen = torch.Generator().manual_seed(cfg["seed"])
    logits = torch.randn(1000, 10, generator=gen) * 3
    labels = torch.randint(0, 10, (1000,), generator=gen)
    kl_ce = float((kl_error(logits, labels) - cross_entropy_error(logits, labels)).abs())
    out = summarise_cifar(search, final, kl_ce, cfg["trained_below"])
    out.update(summarise_extras(final, probe, adam, cfg))
    return out


def summarise_cifar(search: dict, final: dict, kl_minus_ce: float, trained_below: float) -> dict:
    """The ledger's quantities from the final training runs."""
    def finite(v):
        return [g for g in v if g == g and g > 0]
    towards, stable, later = [], [], []
    for run in final.values():
        g = finite(run["hist"]["gsc_L0"])
        if len(g) >= 2:
            towards.append(abs(math.log(g[-1])) < abs(math.log(g[0])))
            stable.append(0.5 <= g[-1] / g[0] <= 2)
        op = run["op_change"]
        half = len(op) // 2
        later.append(float(np.mean(op[half:])) > float(np.mean(op[:half])))
    return {
        "search": search,
        "best_lr": {a: r["lr"] for a, r in final.items()},
        "hist": {a: r["hist"] for a, r in final.items()},
        "op_change": {a: r["op_change"] for a, r in final.items()},
        "final_error": {a: r["final_error"] for a, r in final.items()},
        "max_eff_depth": max(max(r["hist"]["eff_depth"]) for r in final.values()),
        "frac_gsc_towards_one": float(np.mean(towards)) if towards else float("nan"),
        "frac_gsc_stable": float(np.mean(stable)) if stable else float("nan"),
        "frac_later_layers_change_more": float(np.mean(later)),
        "frac_trained": float(np.mean([r["final_error"] < trained_below for r in final.values()])),
        "kl_minus_ce": kl_minus_ce,
    }


def summarise_extras(final: dict, probe: dict, adam: dict, settings: dict) -> dict:
    """What the second ledger pass reads: which networks trained (final training error below
    ``trained_below`` of the config, 0.8 with chance at 0.9), effective depth per architecture in both
    variants and over training, GSC at the start and end, the report's "GSC near 1 trains
    faster" correlation, the weight-change ratio output half / input half, the divergence probe
    and the Adam runs, and timings projected to the report's setup."""
    s = settings
    trained = {a: bool(r["final_error"] < s["trained_below"]) for a, r in final.items()}
    ok = [a for a in final if trained[a]]
    hist = {a: r["hist"] for a, r in final.items()}
    eff = {a: int(max(h["eff_depth"])) for a, h in hist.items()}
    eff_g = {a: int(max(h["eff_depth_gsc"])) for a, h in hist.items()}
    n_ep = min((len(hist[a]["eff_depth"]) for a in ok), default=0)
    curve = {str(e + 1): float(np.mean([hist[a]["eff_depth"][e] for a in ok])) for e in range(n_ep)}
    rho_ep = [spearman(np.arange(len(hist[a]["eff_depth"])), np.array(hist[a]["eff_depth"])) for a in ok]
    first = {a: h["gsc_L0"][0] for a, h in hist.items()}
    last = {a: h["gsc_L0"][-1] for a, h in hist.items()}
    fin = [a for a in final if math.isfinite(last[a]) and last[a] > 0]
    gsc_speed = (spearman(np.abs(np.log([last[a] for a in fin])),
                           np.array([np.mean(hist[a]["train_error"]) for a in fin]))
                 if len(fin) >= 3 else float("nan"))
    ratio = {}
    for a, r in final.items():
        op = np.asarray(r["op_change"], dtype=float)
        half = len(op) // 2
        ratio[a] = float(np.mean(op[half:]) / np.mean(op[:half]))
    top = str(max(float(lr) for lr in next(iter(probe.values())))) if probe else None
    steps = {a: r["steps_per_epoch"] for a, r in final.items()}
    step_s = {a: float(np.mean([e - m for e, m in zip(h["epoch_s"], h["measure_s"])]) / steps[a])
              for a, h in hist.items()}
    measure_s = [m for h in hist.values() for m in h["measure_s"] if m > 0]
    out = {
        "trained": trained, "n_trained": len(ok), "trained_error_below": s["trained_below"],
        "eff_depth": eff, "eff_depth_gsc": eff_g,
        "eff_depth_taus": {a: r["eff_depth_taus"] for a, r in final.items()},
        "eff_depth_gsc_taus": {a: r["eff_depth_gsc_taus"] for a, r in final.items()},
        "max_eff_depth_trained": max((eff[a] for a in ok), default=float("nan")),
        "max_eff_depth_gsc_trained": max((eff_g[a] for a in ok), default=float("nan")),
        "eff_depth_curve": curve,
        "eff_depth_rho": float(np.nanmean(rho_ep)) if np.isfinite(rho_ep).any() else float("nan"),
        "gsc_first": first, "gsc_last": last,
        "gsc_rate_end": {a: h["gsc_rate"][-1] for a, h in hist.items()},
        "gsc_one_vs_error_rho": gsc_speed,
        "later_over_earlier": ratio,
        "op_change_max": {a: float(np.max(r["op_change"])) for a, r in final.items()},
        "frac_later_layers_change_2x": float(np.mean([ratio[a] > 2 for a in ratio])),
        "batch_tanh_minus_selu_error": (final["batch-tanh"]["final_error"] - final["selu"]["final_error"]
                                        if {"batch-tanh", "selu"} <= set(final) else float("nan")),
        "probe_diverged": probe,
        "frac_diverged_at_max_lr": (float(np.mean([p[top] for p in probe.values()]))
                                    if probe else float("nan")),
        "adam_rate_end": {a: r["hist"]["gsc_rate"][-1] for a, r in adam.items()},
        "adam_final_error": {a: r["final_error"] for a, r in adam.items()},
        "step_s": step_s,
        "projected_report_cifar_hours": float(np.mean(list(step_s.values()))) * (50000 // 128)
        * 100 * 4 / 3600,
        "gsc_50k_projected_s": (float(np.mean(measure_s)) * 50000 / s["gsc_points"]
                                if measure_s else float("nan")),
    }
    return out
