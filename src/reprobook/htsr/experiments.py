"""The chapter's runs: LeNet5 on MNIST, the MiniAlexNet batch-size sweep and its fixed-steps control.

Martin & Mahoney (ICML 2019, arXiv 1901.08276): "exhibit all 5+1 phases by varying only the
batch size" (abstract). The protocol is the authors' (spec ``htsr.md`` §2.1, §2.3); the
fixed-number-of-steps control is the spec's recommendation (§3.5 [O]): with a fixed epoch
budget, batch 1000 takes 1/500 of the SGD steps of batch 2, so "smaller batches generalise
better" may be under-training. Every experiment writes one results record; each record
holds what the ledger's claims read (``ours``) and what their ``needs``/``sanity``
conditions test: steps per batch size, accuracies, soft ranks, spikes and the KS distance of
each trained FC1/FC2 ESD to its epoch-0 ESD.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..train import EpochDecay, fit
from .analysis import layer_values
from .models import LeNet5, MiniAlexNet, accuracy, cifar_crops, classification_loss, mse_softmax_loss
from .mp import fit_mp
from .phases import PHASES, normalize_phase
from .spectra import Spectrum, esd, ks_distance

PROFILES = {
    # a smoke run of every experiment in <= 4 min of a 2-core CPU: 5 of the 11 batch sizes
    "small": {"lenet_epochs": 2, "lenet_train": 12000,
              "mini_batches": [2, 8, 32, 100, 500],
              "mini_train": 1000, "mini_test": 1000,
              "mini_epochs": 3, "mini_runs": 1,
              "fixed_batches": [4, 16, 64], "fixed_steps": 60,
              "pretrained": ["mobilenet_v2", "efficientnet_lite0", "minilm", "alexnet"]},
    # <= 90 min of a 2-core CPU (MiniAlexNet trains ~120 images/s per core): LeNet5 on all
    # 60,000 MNIST images for 12 epochs (the LeNet5 claims' length), the MiniAlexNet sweep at
    # all 11 batch sizes for 10 epochs on 1,000 images (the paper's 50,000 x 100 epochs x 10
    # runs is ~5,000x this: those claims stay inconclusive, see the chapter), the fixed-steps
    # control at 3x small's steps.
    "medium": {"lenet_epochs": 12, "lenet_train": 60000,
               "mini_batches": [2, 4, 8, 16, 32, 50, 100, 150, 250, 500, 1000],
               "mini_train": 1000, "mini_test": 1000, "mini_epochs": 10, "mini_runs": 1,
               "fixed_batches": [4, 16, 64], "fixed_steps": 200,
               "pretrained": ["mobilenet_v2", "efficientnet_lite0", "minilm", "alexnet"]},
    "full": {"lenet_epochs": 20, "lenet_train": 60000,
             "mini_batches": [2, 4, 8, 16, 32, 50, 64, 100, 150, 250, 500, 1000],
             "mini_train": 50000, "mini_test": 10000, "mini_epochs": 100, "mini_runs": 10,
             "fixed_batches": [16, 128, 1000], "fixed_steps": 5000,
             "pretrained": ["mobilenet_v2", "efficientnet_lite0", "minilm", "alexnet"]},
}

FC_SHAPES = {"fc1": (4096, 384), "fc2": (384, 192)}  # (N, M) of MiniAlexNet's FC layers


def spikes_pct(spikes: int, n_evals: int) -> float:
    """The authors' "% spikes outside bulk": 100 * spikes / (eigenvalues left in the bulk)
    (spec §1.3a: the denominator is the count after removal)."""
    bulk = n_evals - spikes
    return 100.0 * spikes / bulk if bulk > 0 else float("nan")


def mass_above_edge(v: dict, n_evals: int) -> float:
    """Share of the eigenvalues above the MP bulk's Tracy-Widom edge; 1 when no MP bulk can be
    fitted at all (the whole ESD lies outside any bulk)."""
    return v["spikes"] / n_evals if v["mp_ok"] else 1.0


# ----------------------------------------------------------------------------- LeNet5
def run_lenet5(store, profile: str, seed: int, s: dict, data: dict, device="cpu",
               progress=None) -> dict:
    """Report §3.1 / spec §2.3: LeNet5 on MNIST (Adadelta, cross-entropy, batch 128), then the
    FC1 (2450 x 500) ESD against its epoch-0 ESD (experiment ``htsr_lenet5``)."""
    cfg = {"epochs": s["lenet_epochs"], "n_train": s["lenet_train"], "batch": 128,
           "optimizer": "Adadelta(lr=1, rho=0.95, eps=1e-7)", "seed": seed, "data": data["source"],
           "version": 2}

    def run():
        model = LeNet5(torch.Generator().manual_seed(seed))
        spec0 = esd(model.fc1.weight)
        x, y = data["x_train"][:s["lenet_train"]], data["y_train"][:s["lenet_train"]]
        opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
        ck = store.checkpoint_path("htsr_lenet5", cfg, profile)
        hist = fit(model, (x, y), classification_loss(F.cross_entropy), opt,
                   epochs=s["lenet_epochs"], batch=128, seed=seed, device=device, checkpoint=ck,
                   progress=progress)
        model.cpu()
        spec = esd(model.fc1.weight)
        fc1 = layer_values(spec)
        fc1.update(bulk_spikes=fc1["phase"] == "Bulk+Spikes",
                   spikes_pct=spikes_pct(fc1["spikes"], len(spec.evals)),
                   mass_above_edge=mass_above_edge(fc1, len(spec.evals)),
                   sigma_init=fit_mp(spec0).sigma, ks_init=ks_distance(spec.evals, spec0.evals))
        values = {"fc1": fc1, "evals_fc1": spec.evals.tolist(), "hist": hist,
                  "epochs": s["lenet_epochs"], "n_train": s["lenet_train"],
                  "train_acc": accuracy(model, x, y),
                  "test_acc": accuracy(model, data["x_test"], data["y_test"])}
        if ck.exists():
            ck.unlink()
        return values

    return store.run("htsr_lenet5", cfg, profile, seed, run, data_source=data["source"])


# ----------------------------------------------------------------------------- MiniAlexNet
def minialexnet_data(data: dict, s: dict, seed: int):
    """Class-balanced-by-chance subsets (a seeded permutation) of the cropped, standardised
    CIFAR-10 train and test images; the full sets at profile full."""
    g = torch.Generator().manual_seed(seed)
    tr = torch.randperm(len(data["x_train"]), generator=g)[:s["mini_train"]]
    te = torch.randperm(len(data["x_test"]), generator=g)[:s["mini_test"]]
    return (cifar_crops(data["x_train"][tr]), data["y_train"][tr],
            cifar_crops(data["x_test"][te]), data["y_test"][te])


def train_minialexnet(batch: int, run_id: int, s: dict, x, y, xt, yt, seed: int, device="cpu",
                      checkpoint=None, epochs: int | None = None, lr_decay: float = 0.95,
                      train_eval=None) -> dict:
    """One MiniAlexNet run: SGD(0.01, momentum 0.9), MSE on softmax, lr x0.95 per epoch, no
    regularisation (spec §2.1). Returns accuracies, the number of SGD steps, and the FC1/FC2
    eigenvalues after training and at epoch 0. ``train_eval`` (x, y): the images of the
    training accuracy (default: the training tensors)."""
    gen = torch.Generator().manual_seed(seed * 1000 + run_id)
    model = MiniAlexNet(gen)
    init = {f"evals0_{k}": esd(getattr(model, k).weight).evals.tolist() for k in FC_SHAPES}
    epochs = s["mini_epochs"] if epochs is None else epochs
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    hist = fit(model, (x, y), classification_loss(mse_softmax_loss), opt, epochs=epochs,
               batch=batch, seed=seed * 1000 + run_id, device=device,
               schedule=EpochDecay(lr_decay) if lr_decay != 1.0 else None, checkpoint=checkpoint)
    model.cpu()
    xe, ye = train_eval if train_eval is not None else (x, y)
    return {"batch": batch, "run": run_id, "hist": hist, "steps": epochs * math.ceil(len(x) / batch),
            "train_acc": accuracy(model, xe, ye), "test_acc": accuracy(model, xt, yt),
            "epoch_s": float(np.mean(hist["epoch_s"])) if hist["epoch_s"] else 0.0,
            "evals_fc1": esd(model.fc1.weight).evals.tolist(),
            "evals_fc2": esd(model.fc2.weight).evals.tolist(), **init}


def run_minialexnet(store, profile: str, seed: int, s: dict, data: dict, device="cpu",
                    progress=None) -> dict:
    """Report §3.3-3.4 / spec §2.1: the batch-size sweep at a fixed number of epochs. Each
    (batch size, run) is its own record with per-epoch checkpoints, so the sweep resumes after
    an interruption. FC1 and FC2 eigenvalues are pooled over runs (as the authors did) before
    fitting. Writes the summary record ``htsr_minialexnet`` and returns its values."""
    x, y, xt, yt = minialexnet_data(data, s, seed)
    cells = [(b, r) for b in s["mini_batches"] for r in range(s["mini_runs"])]
    runs, seconds = {}, 0.0
    for b, r in (progress(cells) if progress else cells):
        cfg = {"batch": b, "run": r, "epochs": s["mini_epochs"], "n_train": s["mini_train"],
               "n_test": s["mini_test"], "seed": seed, "data": data["source"], "version": 2}
        ck = store.checkpoint_path("htsr_minialexnet_run", cfg, profile)
        rec = store.run("htsr_minialexnet_run", cfg, profile, seed, lambda: train_minialexnet(
            b, r, s, x, y, xt, yt, seed, device, checkpoint=ck), data_source=data["source"])
        if ck.exists():
            ck.unlink()
        runs.setdefault(b, []).append(rec["values"])
        seconds += rec["provenance"]["runtime_s"]
    # the summary is recomputed from the run records each time (seconds), never reused stale
    values = summarise_minialexnet(runs, s)
    cfg = {k: v for k, v in s.items() if k.startswith("mini")} | {"seed": seed}
    store.save("htsr_minialexnet", cfg, profile, seed, values, seconds, data["source"])
    return values


def fixed_steps_data(x, y, steps: int, batch: int, seed: int):
    """``steps * batch`` rows drawn from (x, y) as successive seeded permutations, so that one
    epoch of :func:`reprobook.train.fit` over them is exactly ``steps`` SGD steps."""
    need = steps * batch
    g = torch.Generator().manual_seed(seed)
    idx = torch.cat([torch.randperm(len(x), generator=g) for _ in range(-(-need // len(x)))])[:need]
    return x[idx], y[idx]


def run_fixed_steps(store, profile: str, seed: int, s: dict, data: dict, device="cpu",
                    progress=None) -> dict:
    """The control of spec §3.5 [O]: each batch size of ``fixed_batches`` trains for the same
    number of SGD steps (``fixed_steps``) at a constant learning rate 0.01 (the per-epoch decay
    would otherwise differ between batch sizes), on the sweep's training images. Experiment
    ``htsr_fixed_steps``; its record holds the steps per batch size and ``steps_equal``."""
    x, y, xt, yt = minialexnet_data(data, s, seed)
    out = {"train_acc": {}, "test_acc": {}, "steps": {}, "fc1": {}, "fc2": {}}
    seconds = 0.0
    for b in (progress(s["fixed_batches"]) if progress else s["fixed_batches"]):
        cfg = {"batch": b, "steps": s["fixed_steps"], "n_train": s["mini_train"],
               "n_test": s["mini_test"], "seed": seed, "data": data["source"], "lr": 0.01}
        xs, ys = fixed_steps_data(x, y, s["fixed_steps"], b, seed * 7919 + b)
        rec = store.run("htsr_fixed_steps_run", cfg, profile, seed, lambda: train_minialexnet(
            b, 0, s, xs, ys, xt, yt, seed, device, epochs=1, lr_decay=1.0, train_eval=(x, y)),
            data_source=data["source"])
        v = rec["values"]
        seconds += rec["provenance"]["runtime_s"]
        k = str(b)
        out["steps"][k] = v["steps"]
        out["test_acc"][k] = v["test_acc"]
        out["train_acc"][k] = v["train_acc"]
        for layer, (n, m) in FC_SHAPES.items():
            lv = _pooled_layer(v[f"evals_{layer}"], v[f"evals0_{layer}"], n, m)
            for key in ("soft_rank", "spikes", "ks_init", "alpha", "stable_rank"):
                out[layer].setdefault(key, {})[k] = lv[key]
    bs = sorted(s["fixed_batches"])
    out["steps_equal"] = len(set(out["steps"].values())) == 1
    out["min_test_acc"] = min(out["test_acc"].values())
    out["batches"] = bs
    out["test_acc_spearman"] = spearman(bs, [out["test_acc"][str(b)] for b in bs])
    cfg = {"fixed_batches": s["fixed_batches"], "fixed_steps": s["fixed_steps"],
           "mini_train": s["mini_train"], "mini_test": s["mini_test"], "seed": seed}
    store.save("htsr_fixed_steps", cfg, profile, seed, out, seconds, data["source"])
    return out


# ----------------------------------------------------------------------------- summaries
def ledger_phases() -> dict:
    """The phase label per (layer, batch size) from the claims ledger: the report's where it
    gives one, else the paper's (they agree where both exist)."""
    from ..claims import load_ledger

    out = {}
    for c in load_ledger("htsr"):
        m = re.fullmatch(r"mini-(fc\d)-bs(\d+)-phase", c.id)
        label = c.report if c.report is not None else c.paper
        if m and label is not None:
            out[(m.group(1), int(m.group(2)))] = normalize_phase(label)
    return out


report_phases = ledger_phases  # the pre-package name


def spearman(a, b) -> float:
    """Spearman rank correlation (Pearson correlation of the ranks, ties averaged)."""
    return float(pd.Series(a).rank().corr(pd.Series(b).rank()))


def _pooled_layer(evals, evals0, n: int, m: int) -> dict:
    """Metrics of a pooled ESD, with the spikes share and the KS distance to epoch 0."""
    spec = Spectrum(np.sort(np.asarray(evals, dtype=np.float64)), N=n, M=m)
    v = layer_values(spec)
    v.update(spikes_pct=spikes_pct(v["spikes"], len(spec.evals)),
             ks_init=ks_distance(spec.evals, evals0))
    return v


LAYER_SUMMARY = ("alpha", "soft_rank", "phase", "spikes", "spikes_pct", "sigma_mp",
                 "stable_rank", "D", "ks_init", "lambda_max")


def summarise_minialexnet(runs: dict, s: dict) -> dict:
    """The ledger's quantities from the runs: per batch size the pooled-ESD alpha, soft rank,
    spikes, sigma, stable rank, phase (and whether it matches the ledger's label), the KS
    distance to the pooled epoch-0 ESD, mean accuracies and SGD steps; the epoch-0 sigma; the
    stable-rank ratio of the largest to the smallest batch; rank correlations for the text."""
    ref = ledger_phases()
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
            if (layer, b) in ref:
                out[layer].setdefault("phase_match", {})[k] = v["phase"] == ref[(layer, b)]
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
    out["steps_equal"] = len(set(out["steps"].values())) == 1
    a1 = [out["fc1"]["alpha"][str(b)] for b in bs]
    acc = [out["test_acc"][str(b)] for b in bs]
    out["alpha_spearman"] = spearman(bs, a1)
    out["test_acc_spearman"] = spearman(bs, acc)
    out["train_acc_spearman"] = spearman(bs, [out["train_acc"][str(b)] for b in bs])
    out["stable_rank_spearman"] = spearman(bs, [out["fc1"]["stable_rank"][str(b)] for b in bs])
    out["alpha_monotone"] = bool(round(out["alpha_spearman"], 9) >= 0.8)
    out["stable_rank_monotone"] = bool(round(out["stable_rank_spearman"], 9) >= 0.8)
    out["test_acc_monotone"] = bool(round(out["test_acc_spearman"], 9) <= -0.8)
    best = bs[int(np.argmax(acc))]
    out["best_batch"] = best
    out["peak_bs8"] = bool(4 <= best <= 16)
    out["phases_seen"] = sorted(set(out["fc1"]["phase"].values()), key=PHASES.index)
    out["n_phases"] = len(out["phases_seen"])
    out["batches"] = bs
    return out
