"""The chapter's experiments: LeNet5 on MNIST, the MiniAlexNet batch-size sweep and its
fixed-steps control, registered with :mod:`reprobook.registry` and run by
:mod:`reprobook.runner`.

Martin & Mahoney (ICML 2019, arXiv 1901.08276): "exhibit all 5+1 phases by varying only the
batch size" (abstract). The protocol is the authors' (CalculatedContent/ImplicitSelfRegularization
@ 4268440, ``AlexNet-Generalization-Gap.ipynb`` and ``LeNet5.ipynb``). The fixed-number-of-steps
control is ours: with a fixed epoch budget, batch 1000 takes 1/500 of the SGD steps of batch 2,
so "smaller batches generalise better" may be under-training. Records hold raw numbers
(accuracies, steps, soft ranks, spikes, phase labels, rank correlations, the KS distance of
each trained FC1/FC2 ESD to its epoch-0 ESD); the ledger judges them.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from .. import registry
from ..stats import spearman
from ..train import EpochDecay, fit
from .analysis import layer_values
from .models import LeNet5, MiniAlexNet, accuracy, cifar_crops, classification_loss, mse_softmax_loss
from .mp import fit_mp
from .phases import PHASES
from .spectra import Spectrum, esd, ks_distance

_PRETRAINED = ["mobilenet_v2", "efficientnet_lite0", "minilm", "alexnet"]
# Nested by experiment name: each section is that experiment's config (reprobook.runner).
PROFILES = {
    # a smoke run of every experiment in <= 4 min of a 2-core CPU: 5 of the 11 batch sizes
    "small": {"htsr_lenet5": {"epochs": 2, "n_train": 12000, "batch": 128},
              "htsr_minialexnet": {"batches": [2, 8, 32, 100, 500], "n_train": 1000,
                                   "n_test": 1000, "epochs": 3, "runs": 1},
              "htsr_fixed_steps": {"batches": [4, 16, 64], "steps": 60, "n_train": 1000,
                                   "n_test": 1000, "lr": 0.01},
              "htsr_pretrained": {"networks": _PRETRAINED, "conv": "pool"},
              "htsr_alexnet": {"network": "alexnet", "conv": "pool"}},
    # <= 90 min of a 2-core CPU (MiniAlexNet trains ~120 images/s per core): LeNet5 on all
    # 60,000 MNIST images for 12 epochs (the LeNet5 claims' length), the MiniAlexNet sweep at
    # all 11 batch sizes for 10 epochs on 1,000 images (the paper's 50,000 x 100 epochs x 10
    # runs is ~5,000x this: those claims stay inconclusive, see the chapter), the fixed-steps
    # control at 3x small's steps.
    "medium": {"htsr_lenet5": {"epochs": 12, "n_train": 60000, "batch": 128},
               "htsr_minialexnet": {"batches": [2, 4, 8, 16, 32, 50, 100, 150, 250, 500, 1000],
                                    "n_train": 1000, "n_test": 1000, "epochs": 10, "runs": 1},
               "htsr_fixed_steps": {"batches": [4, 16, 64], "steps": 200, "n_train": 1000,
                                    "n_test": 1000, "lr": 0.01},
               "htsr_pretrained": {"networks": _PRETRAINED, "conv": "pool"},
               "htsr_alexnet": {"network": "alexnet", "conv": "pool"}},
    "full": {"htsr_lenet5": {"epochs": 20, "n_train": 60000, "batch": 128},
             "htsr_minialexnet": {"batches": [2, 4, 8, 16, 32, 50, 64, 100, 150, 250, 500, 1000],
                                  "n_train": 50000, "n_test": 10000, "epochs": 100, "runs": 10},
             "htsr_fixed_steps": {"batches": [16, 128, 1000], "steps": 5000, "n_train": 50000,
                                  "n_test": 10000, "lr": 0.01},
             "htsr_pretrained": {"networks": _PRETRAINED, "conv": "pool"},
             "htsr_alexnet": {"network": "alexnet", "conv": "pool"}},
}

FC_SHAPES = {"fc1": (4096, 384), "fc2": (384, 192)}  # (N, M) of MiniAlexNet's FC layers


def spikes_pct(spikes: int, n_evals: int) -> float:
    """The authors' "% spikes outside bulk": 100 * spikes / (eigenvalues left in the bulk)
    (the denominator is the count after removal, as in the authors' notebooks)."""
    bulk = n_evals - spikes
    return 100.0 * spikes / bulk if bulk > 0 else float("nan")


def mass_above_edge(v: dict, n_evals: int) -> float:
    """Share of the eigenvalues above the MP bulk's Tracy-Widom edge; 1 when no MP bulk can be
    fitted at all (the whole ESD lies outside any bulk)."""
    return v["spikes"] / n_evals if v["mp_ok"] else 1.0


# ----------------------------------------------------------------------------- data
@functools.cache
def _mnist() -> dict:
    from ..data import load_mnist
    return load_mnist()


@functools.cache
def _cifar() -> dict:
    from ..data import load_cifar10
    return load_cifar10()


# ----------------------------------------------------------------------------- LeNet5
def lenet5(cfg: dict, ctx) -> tuple[dict, str]:
    """Report §3.1: LeNet5 on MNIST (Adadelta(lr=1, rho=0.95, eps=1e-7), cross-entropy, batch
    128), then the FC1 (2450 x 500) ESD against its epoch-0 ESD. Resumes ``ctx.checkpoint``."""
    data = _mnist()
    seed = ctx.seed_for("lenet5")
    model = LeNet5(torch.Generator().manual_seed(seed))
    spec0 = esd(model.fc1.weight)
    x, y = data["x_train"][:cfg["n_train"]], data["y_train"][:cfg["n_train"]]
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
    hist = fit(model, (x, y), classification_loss(F.cross_entropy), opt, epochs=cfg["epochs"],
               batch=cfg["batch"], seed=seed, device=ctx.device, checkpoint=ctx.checkpoint,
               progress=ctx.progress)
    model.cpu()
    spec = esd(model.fc1.weight)
    fc1 = layer_values(spec)
    fc1.update(spikes_pct=spikes_pct(fc1["spikes"], len(spec.evals)),
               mass_above_edge=mass_above_edge(fc1, len(spec.evals)),
               sigma_init=fit_mp(spec0).sigma, ks_init=ks_distance(spec.evals, spec0.evals))
    values = {"fc1": fc1, "evals_fc1": spec.evals.tolist(), "hist": hist, "epochs": cfg["epochs"],
              "n_train": cfg["n_train"], "train_acc": accuracy(model, x, y),
              "test_acc": accuracy(model, data["x_test"], data["y_test"])}
    if ctx.checkpoint is not None and ctx.checkpoint.exists():
        ctx.checkpoint.unlink()
    return values, data["source"]


# ----------------------------------------------------------------------------- MiniAlexNet
def minialexnet_data(data: dict, n_train: int, n_test: int, seed: int):
    """Class-balanced-by-chance subsets (a seeded permutation) of the cropped, standardised
    CIFAR-10 train and test images; the full sets at profile full."""
    g = torch.Generator().manual_seed(seed)
    tr = torch.randperm(len(data["x_train"]), generator=g)[:n_train]
    te = torch.randperm(len(data["x_test"]), generator=g)[:n_test]
    return (cifar_crops(data["x_train"][tr]), data["y_train"][tr],
            cifar_crops(data["x_test"][te]), data["y_test"][te])


@functools.lru_cache(maxsize=2)
def _subsets(n_train: int, n_test: int, seed: int):
    return minialexnet_data(_cifar(), n_train, n_test, registry.Context(seed).seed_for("subsets"))


def train_minialexnet(batch: int, run_id: int, epochs: int, x, y, xt, yt, seed: int,
                      device="cpu", checkpoint=None, lr_decay: float = 0.95,
                      train_eval=None) -> dict:
    """One MiniAlexNet run: SGD(0.01, momentum 0.9), MSE on softmax, lr x0.95 per epoch, no
    regularisation (the authors' AlexNet-Generalization-Gap notebook). ``seed`` seeds the
    initial weights and the shuffles (the same for every batch size of one run). Returns
    accuracies, the number of SGD steps, and the FC1/FC2 eigenvalues after training and at
    epoch 0. ``train_eval`` (x, y): the images of the training accuracy (default: the
    training tensors)."""
    gen = torch.Generator().manual_seed(seed)
    model = MiniAlexNet(gen)
    init = {f"evals0_{k}": esd(getattr(model, k).weight).evals.tolist() for k in FC_SHAPES}
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    hist = fit(model, (x, y), classification_loss(mse_softmax_loss), opt, epochs=epochs,
               batch=batch, seed=seed, device=device,
               schedule=EpochDecay(lr_decay) if lr_decay != 1.0 else None, checkpoint=checkpoint)
    model.cpu()
    xe, ye = train_eval if train_eval is not None else (x, y)
    return {"batch": batch, "run": run_id, "hist": hist, "steps": epochs * math.ceil(len(x) / batch),
            "train_acc": accuracy(model, xe, ye), "test_acc": accuracy(model, xt, yt),
            "epoch_s": float(np.mean(hist["epoch_s"])) if hist["epoch_s"] else 0.0,
            "evals_fc1": esd(model.fc1.weight).evals.tolist(),
            "evals_fc2": esd(model.fc2.weight).evals.tolist(), **init}


def minialexnet_cells(cfg: dict) -> list[dict]:
    """One cell per (batch size, run) of the sweep."""
    return [{"batch": b, "run": r, "epochs": cfg["epochs"], "n_train": cfg["n_train"],
             "n_test": cfg["n_test"], "seed": cfg["seed"]}
            for b in cfg["batches"] for r in range(cfg["runs"])]


def minialexnet_cell(cfg: dict, ctx) -> tuple[dict, str]:
    """Report §3.3-3.4: one (batch size, run) of the sweep at a fixed number of epochs, with
    per-epoch checkpoints (an interrupted sweep resumes)."""
    x, y, xt, yt = _subsets(cfg["n_train"], cfg["n_test"], cfg["seed"])
    out = train_minialexnet(cfg["batch"], cfg["run"], cfg["epochs"], x, y, xt, yt,
                            ctx.seed_for("minialexnet", cfg["run"]), ctx.device,
                            checkpoint=ctx.checkpoint)
    if ctx.checkpoint is not None and ctx.checkpoint.exists():
        ctx.checkpoint.unlink()
    return out, _cifar()["source"]


def summarise_sweep(cells: list, cfg: dict) -> dict:
    """FC1 and FC2 eigenvalues pooled over runs (as the authors did) before fitting."""
    runs: dict = {}
    for c, v in cells:
        runs.setdefault(c["batch"], []).append(v)
    return summarise_minialexnet(runs)


def fixed_steps_data(x, y, steps: int, batch: int, seed: int):
    """``steps * batch`` rows drawn from (x, y) as successive seeded permutations, so that one
    epoch of :func:`reprobook.train.fit` over them is exactly ``steps`` SGD steps."""
    need = steps * batch
    g = torch.Generator().manual_seed(seed)
    idx = torch.cat([torch.randperm(len(x), generator=g) for _ in range(-(-need // len(x)))])[:need]
    return x[idx], y[idx]


def fixed_cells(cfg: dict) -> list[dict]:
    return [{"batch": b, "steps": cfg["steps"], "n_train": cfg["n_train"], "n_test": cfg["n_test"],
             "seed": cfg["seed"], "lr": cfg["lr"]} for b in cfg["batches"]]


def fixed_cell(cfg: dict, ctx) -> tuple[dict, str]:
    """Our control: one batch size trains for ``steps`` SGD steps at a constant learning rate
    (the per-epoch decay would otherwise differ between batch sizes), on the sweep's training
    images, from the sweep's run-0 initial weights."""
    x, y, xt, yt = _subsets(cfg["n_train"], cfg["n_test"], cfg["seed"])
    xs, ys = fixed_steps_data(x, y, cfg["steps"], cfg["batch"],
                              ctx.seed_for("fixed-steps-data", cfg["batch"]))
    out = train_minialexnet(cfg["batch"], 0, 1, xs, ys, xt, yt, ctx.seed_for("minialexnet", 0),
                            ctx.device, lr_decay=1.0, train_eval=(x, y))
    return out, _cifar()["source"]


def summarise_fixed(cells: list, cfg: dict) -> dict:
    """Steps, accuracies and FC1/FC2 metrics per batch size, and the rank correlation of test
    accuracy with the batch size."""
    out = {"train_acc": {}, "test_acc": {}, "steps": {}, "fc1": {}, "fc2": {}}
    for c, v in cells:
        k = str(c["batch"])
        out["steps"][k] = v["steps"]
        out["test_acc"][k] = v["test_acc"]
        out["train_acc"][k] = v["train_acc"]
        for layer, (n, m) in FC_SHAPES.items():
            lv = _pooled_layer(v[f"evals_{layer}"], v[f"evals0_{layer}"], n, m)
            for key in ("soft_rank", "spikes", "ks_init", "alpha", "stable_rank"):
                out[layer].setdefault(key, {})[k] = lv[key]
    bs = sorted(c["batch"] for c, _ in cells)
    out["distinct_steps"] = len(set(out["steps"].values()))
    out["min_test_acc"] = min(out["test_acc"].values())
    out["batches"] = bs
    out["test_acc_spearman"] = spearman(bs, [out["test_acc"][str(b)] for b in bs])
    return out


# ----------------------------------------------------------------------------- summaries
def _pooled_layer(evals, evals0, n: int, m: int) -> dict:
    """Metrics of a pooled ESD, with the spikes share and the KS distance to epoch 0."""
    spec = Spectrum(np.sort(np.asarray(evals, dtype=np.float64)), N=n, M=m)
    v = layer_values(spec)
    v.update(spikes_pct=spikes_pct(v["spikes"], len(spec.evals)),
             ks_init=ks_distance(spec.evals, evals0))
    return v


LAYER_SUMMARY = ("alpha", "soft_rank", "phase", "spikes", "spikes_pct", "sigma_mp",
                 "stable_rank", "D", "ks_init", "lambda_max")


def summarise_minialexnet(runs: dict) -> dict:
    """The ledger's quantities from the runs: per batch size the pooled-ESD alpha, soft rank,
    spikes, sigma, stable rank, phase label, the KS distance to the pooled epoch-0 ESD, mean
    accuracies and SGD steps; the epoch-0 sigma; the stable-rank ratio of the largest to the
    smallest batch; the batch size of the best test accuracy; rank correlations with the
    batch size (NaN where undefined)."""
    out = {"fc1": {}, "fc2": {}, "train_acc": {}, "test_acc": {}, "epoch_s": {},
           "evals": {"fc1": {}, "fc2": {}}, "n_runs": {}, "steps": {}}
    init = {layer: [] for layer in FC_SHAPES}
    for b, recs in sorted(runs.items()):
        k = str(b)
        out["train_acc"][k] = float(np.mean([r["train_acc"] for r in recs]))
        out["test_acc"][k] = float(np.mean([r["test_acc"] for r in recs]))
        out["epoch_s"][k] = float(np.mean([r["epoch_s"] for r in recs]))
        out["n_runs"][k] = len(recs)
        if all("steps" in r for r in recs):
            out["steps"][k] = int(recs[0]["steps"])
        for layer, (n, m) in FC_SHAPES.items():
            ev = np.sort(np.concatenate([r[f"evals_{layer}"] for r in recs]))
            ev0 = np.concatenate([r.get(f"evals0_{layer}", []) for r in recs])
            init[layer].append(ev0)
            if len(ev0):
                v = _pooled_layer(ev, ev0, n, m)
            else:  # run records without epoch-0 spectra: no KS distance
                v = _pooled_layer(ev, ev, n, m) | {"ks_init": None}
            for key in LAYER_SUMMARY:
                if v[key] is not None:
                    out[layer].setdefault(key, {})[k] = v[key]
            out["evals"][layer][k] = ev.tolist()
    bs = sorted(runs)
    for layer, (n, m) in FC_SHAPES.items():
        ev0 = np.sort(np.concatenate(init[layer])) if init[layer] else np.array([])
        if len(ev0):
            mp0 = fit_mp(Spectrum(ev0, N=n, M=m))
            out[layer]["sigma_init"] = mp0.sigma
            out[layer]["spikes_pct_init"] = spikes_pct(mp0.spikes, len(ev0))
        sr = out[layer]["stable_rank"]
        out[layer]["stable_rank_ratio"] = sr[str(bs[-1])] / sr[str(bs[0])]
    out["runs"] = min(out["n_runs"].values())
    out["distinct_steps"] = len(set(out["steps"].values()))
    a1 = [out["fc1"]["alpha"][str(b)] for b in bs]
    acc = [out["test_acc"][str(b)] for b in bs]
    out["alpha_spearman"] = spearman(bs, a1)
    out["test_acc_spearman"] = spearman(bs, acc)
    out["train_acc_spearman"] = spearman(bs, [out["train_acc"][str(b)] for b in bs])
    out["stable_rank_spearman"] = spearman(bs, [out["fc1"]["stable_rank"][str(b)] for b in bs])
    out["best_batch"] = bs[int(np.argmax(acc))]
    out["phases_seen"] = sorted(set(out["fc1"]["phase"].values()), key=PHASES.index)
    out["n_phases"] = len(out["phases_seen"])
    out["batches"] = bs
    return out


def _slice_epochs(cfg: dict) -> tuple[dict, float]:
    """One epoch on at most 1,000 training images, and how many such slices the cell holds
    (the time per SGD step does not depend on the size of the training set)."""
    n = min(cfg["n_train"], 1000)
    return {**cfg, "epochs": 1, "n_train": n}, cfg["epochs"] * cfg["n_train"] / n


def _slice_steps(cfg: dict) -> tuple[dict, float]:
    return {**cfg, "steps": max(1, cfg["steps"] // 50)}, cfg["steps"] / max(1, cfg["steps"] // 50)


def _cifar_gb(cfg: dict) -> float:
    """CIFAR-10 in memory (60K uint8 images and their float crops) plus MiniAlexNet."""
    return round(60_000 * 3 * 32 * 32 * 5 / 1e9 + 0.5, 2)


def _fixed_gb(cfg: dict) -> float:
    """The fixed-steps control materialises steps x batch cropped images (float32)."""
    return round(_cifar_gb(cfg) + cfg["steps"] * cfg["batch"] * 3 * 28 * 28 * 4 / 1e9, 2)


_MODULES = ("htsr/experiments.py", "htsr/analysis.py", "htsr/models.py", "htsr/mp.py",
            "htsr/phases.py", "htsr/powerlaw.py", "htsr/spectra.py", "stats.py")
LAYER_OUTPUTS = ("fc1", "fc2", "train_acc", "test_acc", "epoch_s", "evals", "n_runs", "steps",
                 "runs", "distinct_steps", "alpha_spearman", "test_acc_spearman",
                 "train_acc_spearman", "stable_rank_spearman", "best_batch", "phases_seen",
                 "n_phases", "batches")
from . import pretrained  # noqa: E402,F401  (registers htsr_pretrained and htsr_alexnet)

registry.register(registry.Experiment(
    name="htsr_lenet5", chapter="htsr", compute=lenet5, modules=_MODULES, checkpoint=True,
    outputs=("fc1", "evals_fc1", "hist", "epochs", "n_train", "train_acc", "test_acc"),
    slice=_slice_epochs, memory_gb=lambda cfg: 0.5))
registry.register(registry.Experiment(
    name="htsr_minialexnet", chapter="htsr", compute=minialexnet_cell, cells=minialexnet_cells,
    cell_name="htsr_minialexnet_run", summarise=summarise_sweep, modules=_MODULES,
    checkpoint=True, outputs=LAYER_OUTPUTS, slice=_slice_epochs, memory_gb=_cifar_gb))
registry.register(registry.Experiment(
    name="htsr_fixed_steps", chapter="htsr", compute=fixed_cell, cells=fixed_cells,
    cell_name="htsr_fixed_steps_run", summarise=summarise_fixed, modules=_MODULES,
    outputs=("train_acc", "test_acc", "steps", "fc1", "fc2", "distinct_steps", "min_test_acc",
             "batches", "test_acc_spearman"), slice=_slice_steps, memory_gb=_fixed_gb))
