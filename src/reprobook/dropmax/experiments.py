"""DropMax chapter experiments on MNIST (paper Table 1 / report Table 2, the report's sparsemax
failure and z -> 1 pathology, overhead, calibration, the learned retain probabilities).

Protocol of the official code (haebeom-lee/dropmax ``run.py``, ``mnist.py``): batch 100, Adam
1e-3 decayed x0.1 at 1/3 and 2/3 of the steps, L2 1e-4 (sum of v^2/2) on the trunk and the
logit layer only, Glorot-uniform weights and zero biases; training set = the first N images
of each class of the 60K MNIST training set, validation = the next N. For 55K (N = 5500) class
5 has only 5,421 images: all of them are trained on (54,921 images) and validation is what is
left (5,079 images, no class 5). Every model is trained once; its test rules (plug-in
"approx", Monte-Carlo "sampled" with S = 30 and 100) share that training run.

Two registered experiments (:mod:`reprobook.registry`), run by :mod:`reprobook.runner`:
``dropmax_mnist`` (one cell record ``dropmax_run`` per (model, size, seed)) and
``dropmax_pathology`` (one ``dropmax_zrun`` per variant and seed). Their summaries (medians over
seeds, paired gains over the test images) are the values the ledger reads. Tables and figures
are in :mod:`reprobook.dropmax.figures`.
"""
from __future__ import annotations

import functools
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from .. import registry
from ..stats import paired_bootstrap
from ..train import StepDecay, fit
from .kernels import (TAU, dropmax_log_probs, dropmax_mc_probs, dropmax_probs, dropmax_terms,
                      concrete_mask, random_mask, sampled_softmax_loss, sparsemax, sparsemax_loss)
from .models import Classifier

SIZES = {"1k": 100, "5k": 500, "55k": 5500}  # images per class
# model -> (head, mode); the mode is the DropMax variant (class: (z+eps)e^o, logit: e^{z o})
MODELS = {
    "softmax": ("linear", None), "sparsemax": ("linear", None), "sparsemax-ce": ("linear", None),
    "sampled-uniform": ("linear", None), "sampled-learned": ("linear", None),
    "random-class": ("linear", "class"), "random-logit": ("linear", "logit"),
    "adaptive-class": ("dropmax", "class"), "adaptive-logit": ("dropmax", "logit"),
    "report-class": ("dropmax", "class"), "report-logit": ("dropmax", "logit"),
    "attention": ("dropmax", "class"), "q-eq-p": ("dropmax", "class"),
}
SAMPLED_RULES = ("random-class", "random-logit", "adaptive-class", "adaptive-logit")


# --------------------------------------------------------------------------- data
def class_split(y: torch.Tensor, n: int, classes: int = 10):
    """Indices of the first ``n`` images of each class (train) and of the next ``n`` (val),
    in dataset order (official ``mnist_input``); a class with fewer images gives what it has."""
    tr, va = [], []
    for k in range(classes):
        idx = torch.nonzero(y == k).squeeze(1)
        tr.append(idx[:n])
        va.append(idx[n:2 * n])
    return torch.cat(tr), torch.cat(va)


@functools.cache
def _mnist() -> dict:
    from ..data import load_mnist
    return load_mnist()


def mnist_split(n: int, data: dict | None = None):
    data = data or _mnist()
    tr, va = class_split(data["y_train"], n)
    return {"x": data["x_train"][tr], "y": data["y_train"][tr], "x_val": data["x_train"][va],
            "y_val": data["y_train"][va], "x_test": data["x_test"], "y_test": data["y_test"],
            "source": data.get("source")}


# --------------------------------------------------------------------------- objectives
def _rho_logs(ph: torch.Tensor, y: torch.Tensor) -> dict:
    """Mean non-target prior retain probability and the share of it above 0.99 (report §4)."""
    rho = torch.sigmoid(ph.detach())
    nt = F.one_hot(y, rho.shape[-1]) == 0
    return {"rho_nt": rho[nt].mean(), "rho_nt_99": (rho[nt] > 0.99).float().mean(),
            "rho_t": rho[~nt].mean()}


def report_code_log_probs(o: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The report code's masked softmax (jamesal1/DropMax @ 5a32716, ``customlayers.py``,
    ``maskSoftMax``): p_k = (z_k e^{o_k - max o} + 1e-4) / sum_j (z_j e^{o_j - max o} + 1e-4).
    Unlike report eq. 5's (z + eps) e^o, the floor 1e-4 is added after the mask and relative
    to the largest class, so a dropped class keeps a share of at least 1e-4 / K."""
    e = torch.exp(o - o.max(1, keepdim=True).values) * z + 1e-4
    return torch.log(e) - torch.log(e.sum(1, keepdim=True))


def report_loss(o, ph, y, mode, alpha=10.0, variational=True, force=False, relu=False,
                kernel="eq5"):
    """The report's objective (jamesal1/DropMax ``getRegLoss``): CE with a relaxed mask drawn
    from rho = sigmoid(ph) (report eq. 2; target NOT forced unless ``force``), plus the
    "variational" term -log(rho_t / sum_k rho_k), minus alpha x the mean Bernoulli entropy of
    rho. ``relu`` applies ReLU to the logits (the report's test of the z -> 1 cause);
    ``kernel="code"`` uses the report code's masked softmax (:func:`report_code_log_probs`)."""
    o = F.relu(o) if relu else o
    z = concrete_mask(ph, TAU, target=y if force else None)
    logp = report_code_log_probs(o, z) if kernel == "code" else dropmax_log_probs(o, z, mode)
    loss = -logp.gather(1, y[:, None]).mean()
    if variational:  # -log(rho_t / sum_k rho_k), from the logits
        log_rho = F.logsigmoid(ph)
        loss = loss - (log_rho.gather(1, y[:, None]).squeeze(1)
                       - torch.logsumexp(log_rho, 1)).mean()
    if alpha:
        ent = -(torch.sigmoid(ph) * F.logsigmoid(ph) + torch.sigmoid(-ph) * F.logsigmoid(-ph))
        loss = loss - alpha * ent.mean(1).mean()
    return loss


def make_loss(name: str, cfg: dict):
    """loss_fn(model, x, y) -> (loss, logs) for model ``name`` (weight decay included)."""
    head, mode = MODELS[name]
    wd, K = cfg["weight_decay"], 10
    seen = {}  # learned Q: counts of the true classes seen so far (add-one smoothed)

    def loss_fn(model, x, y):
        out = model(x)
        logs = {}
        if name == "softmax":
            loss = F.cross_entropy(out, y)
        elif name == "sparsemax":
            loss = sparsemax_loss(out, y).mean()
        elif name == "sparsemax-ce":  # Keras CE on sparsemax probabilities, clipped at 1e-7
            pt = sparsemax(out).gather(1, y[:, None]).squeeze(1)
            loss = -torch.log(pt.clamp(1e-7, 1 - 1e-7)).mean()
            logs["zero_target"] = (pt <= 0).float().mean()
        elif name == "sampled-uniform":
            loss = sampled_softmax_loss(out, y, cfg["num_sampled"]).mean()
        elif name == "sampled-learned":  # TF learned_unigram_candidate_sampler: Q = label
            counts = seen.setdefault("n", torch.ones(K, device=y.device))  # frequencies
            log_q = torch.log(counts / counts.sum())
            loss = sampled_softmax_loss(out, y, cfg["num_sampled"], log_q).mean()
            counts += torch.bincount(y, minlength=K)
        elif name.startswith("random"):
            z = random_mask(y, K, cfg["retain"])
            loss = -dropmax_log_probs(out, z, mode).gather(1, y[:, None]).mean()
        else:
            o, ph, rh = out
            logs = _rho_logs(ph, y)
            if name.startswith("adaptive"):
                loss = sum(dropmax_terms(o, ph, rh, y, mode=mode).values())
            elif name.startswith("report"):
                loss = report_loss(o, ph, y, mode, alpha=cfg["alpha"])
            elif name == "attention":  # deterministic sigmoid attention: no sampling, no KL
                loss = -dropmax_log_probs(o, torch.sigmoid(ph)).gather(1, y[:, None]).mean()
            elif name == "q-eq-p":  # posterior = prior: mask from rho (target kept), entropy
                z = concrete_mask(ph, TAU, target=y)
                rho = torch.sigmoid(ph)
                neg_ent = (rho * F.logsigmoid(ph) + (1 - rho) * F.logsigmoid(-ph)).sum(1).mean()
                loss = -dropmax_log_probs(o, z).gather(1, y[:, None]).mean() + neg_ent
            else:
                raise ValueError(f"unknown model {name!r}")
        l2 = sum(p.pow(2).sum() for p in model.decayed_parameters())
        return loss + wd * 0.5 * l2, logs

    return loss_fn


def pathology_loss(mode: str, force: bool, relu: bool, wd: float, objective: str = "eq5"):
    """The report's z -> 1 experiment: CE through the relaxed prior mask only (alpha = 0),
    with or without z_t = 1 and ReLU on the logits. ``objective="eq5"``: report eq. 5's kernel
    and no variational term; ``"report-code"``: the report code's kernel and its variational
    term (``getRegLoss`` with alpha = 0)."""
    code = objective == "report-code"

    def loss_fn(model, x, y):
        o, ph, _ = model(x)
        loss = report_loss(o, ph, y, mode, alpha=0.0, variational=code, force=force, relu=relu,
                           kernel="code" if code else "eq5")
        l2 = sum(p.pow(2).sum() for p in model.decayed_parameters())
        return loss + wd * 0.5 * l2, _rho_logs(ph, y)
    return loss_fn


# --------------------------------------------------------------------------- evaluation
def expected_calibration_error(probs: torch.Tensor, y: torch.Tensor, bins: int = 15) -> float:
    """ECE (Guo et al. 2017): sum over equal-width confidence bins of |B|/n |acc(B) - conf(B)|."""
    conf, pred = probs.max(1)
    correct = (pred == y).double()
    b = torch.clamp((conf.double() * bins).ceil().long() - 1, 0, bins - 1)
    acc = torch.bincount(b, correct, minlength=bins)
    cf = torch.bincount(b, conf.double(), minlength=bins)
    return float((acc - cf).abs().sum() / len(y))


def pack_bits(mask: torch.Tensor) -> str:
    """A boolean vector as a hex string (one bit per test image), for paired comparisons."""
    return np.packbits(mask.numpy().astype(np.uint8)).tobytes().hex()


def unpack_bits(hexstr: str, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(bytes.fromhex(hexstr), np.uint8))[:n].astype(float)


def _error(probs, y) -> float:
    return float((probs.argmax(1) != y).double().mean() * 100)


@torch.no_grad()
def evaluate(model, name: str, cfg: dict, x, y, batch: int = 1000, relu: bool = False) -> dict:
    """Test error (%) of every test rule of model ``name``, ECE of its main rule, us/image and,
    for learned retain probabilities, the classes with rho > 0.5 (correct vs wrong). The
    network runs on its device; the test rules on the CPU."""
    model.eval()
    head, mode = MODELS[name]
    dev = next(model.parameters()).device
    t0 = time.perf_counter()
    outs = [model(x[i:i + batch].to(dev)) for i in range(0, len(x), batch)]
    if head == "dropmax":
        o, ph = (torch.cat([out[j] for out in outs]).cpu() for j in (0, 1))
    else:
        o = torch.cat(outs).cpu()
    o = F.relu(o) if relu else o
    if name in ("sparsemax", "sparsemax-ce"):
        main = sparsemax(o)
    elif head == "linear" and mode is None:
        main = torch.softmax(o, 1)
    elif name.startswith("random"):
        main = dropmax_probs(o, torch.full_like(o, cfg["retain"]), mode)
    elif name.startswith("report") and cfg.get("objective") == "report-code":
        main = report_code_log_probs(o, torch.sigmoid(ph / TAU)).exp()
    elif name.startswith("report"):  # report eq. 7: rho* = sigmoid(rho^h / tau)
        main = dropmax_probs(o, torch.sigmoid(ph / TAU), mode)
    else:
        main = dropmax_probs(o, torch.sigmoid(ph), mode)
    us = (time.perf_counter() - t0) / len(x) * 1e6
    out = {"error": {"approx": _error(main, y)}, "ece": expected_calibration_error(main, y) * 100,
           "us_per_image": us, "wrong": pack_bits(main.argmax(1) != y)}
    if name in SAMPLED_RULES:
        retain = (torch.full_like(o, cfg["retain"]) if name.startswith("random")
                  else torch.sigmoid(ph))
        g = torch.Generator().manual_seed(cfg["seed"])
        for s in cfg["samples"]:
            out["error"][f"s{s}"] = _error(dropmax_mc_probs(o, retain, s, mode, g), y)
    if head == "dropmax":
        kept = torch.sigmoid(ph) > 0.5
        ok = main.argmax(1) == y
        out["kept_correct"] = float(kept[ok].sum(1).double().mean()) if ok.any() else None
        out["kept_wrong"] = float(kept[~ok].sum(1).double().mean()) if (~ok).any() else None
        out["target_kept"] = float(kept[torch.arange(len(y)), y].double().mean())
    return out


# --------------------------------------------------------------------------- one run
def lr_milestones(steps: int) -> list[int]:
    """Official ``piecewise_constant(global_step, [b, 2b], [1e-3, 1e-4, 1e-5])`` with
    b = steps // 3: the step whose global_step (count before it) is b + 1 is the first at
    1e-4, so StepDecay (which scales after step index m - 1) gets milestones b + 1, 2b + 1."""
    b = steps // 3
    return [b + 1, 2 * b + 1]


def train_one(name: str, split: dict, cfg: dict, loss_fn=None, relu: bool = False,
              device="cpu") -> dict:
    """Train model ``name`` on ``split`` with the official protocol; evaluate it on the test
    set. Returns the run's values (errors, ECE, timings, parameter count, history)."""
    torch.manual_seed(cfg["seed"])
    head, mode = MODELS[name]
    model = Classifier(cfg["trunk"], 10, head, mode or "class")
    n = len(split["y"])
    steps = cfg["epochs"] * math.ceil(n / cfg["batch"])
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    schedule = StepDecay(lr_milestones(steps), 0.1, unit="step")
    t0 = time.perf_counter()
    hist = fit(model, (split["x"], split["y"]), loss_fn or make_loss(name, cfg), opt,
               epochs=cfg["epochs"], batch=cfg["batch"], seed=cfg["seed"], schedule=schedule,
               device=device)
    train_s = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters() if p.grad is not None)
    out = evaluate(model, name, cfg, split["x_test"][:cfg["test_n"]],
                   split["y_test"][:cfg["test_n"]], relu=relu)
    if len(split["y_val"]):
        val = evaluate(model, name, {**cfg, "samples": ()}, split["x_val"], split["y_val"],
                       relu=relu)
        out["val_error"] = val["error"]["approx"]
    out["n_test"] = len(split["y_test"][:cfg["test_n"]])
    out.update(train_s=train_s, ms_per_step=train_s / steps * 1e3, steps=steps, params=params,
               epochs=cfg["epochs"], n_train=n,
               hist={k: v for k, v in hist.items() if isinstance(v, list)})
    return out


# --------------------------------------------------------------------------- the chapter
def _median(xs):
    xs = [x for x in xs if x is not None]
    return float(np.median(xs)) if xs else None


def _base(cfg: dict) -> dict:
    """The settings every cell of an experiment shares (what its record's config holds)."""
    return {k: v for k, v in cfg.items() if k not in ("sizes", "seeds", "code_seeds", "n_boot")}


def mnist_cells(cfg: dict) -> list[dict]:
    """One cell per (size, model, seed) of the profile."""
    return [{**_base(cfg), "model": m, "size": size, "seed": seed, "epochs": spec["epochs"]}
            for size, spec in cfg["sizes"].items() for m in spec["models"]
            for seed in cfg["seeds"]]


def mnist_cell(cfg: dict, ctx) -> tuple[dict, str]:
    """Train one model on one training-set size with one seed; test it."""
    sp = mnist_split(SIZES[cfg["size"]])
    return train_one(cfg["model"], sp, cfg, device=ctx.device), sp["source"]


def _slice(cfg: dict) -> tuple[dict, float]:
    """A one-epoch slice of a cell on 1,000 test images, and how many such epochs the cell has."""
    return {**cfg, "epochs": 1, "test_n": 1000, "samples": []}, cfg["epochs"]


def _memory_gb(cfg: dict) -> float:
    """MNIST in memory (70K float32 images) plus the network, activations and Adam state."""
    return round(70_000 * 784 * 4 / 1e9 + 0.3, 2)


def summarise_mnist(cells: list, cfg: dict) -> dict:
    """Medians over seeds of every run value, the derived comparisons of the ledger, and each
    model's paired gain over softmax with its interval (:func:`paired_gains`)."""
    recs = {(c["size"], c["model"], c["seed"]): {"values": v} for c, v in cells}
    v = {"error": {}, "ece": {}, "ms_per_step": {}, "us_per_image": {}, "params": {},
         "epochs": {}, "runs": len(cfg["seeds"]), "val_error": {}}
    groups: dict = {}
    for (size, m, seed), rec in recs.items():
        groups.setdefault((size, m), []).append(rec["values"])
    for (size, m), runs in groups.items():
        for rule in runs[0]["error"]:
            v["error"].setdefault(m, {}).setdefault(rule, {})[size] = _median(
                [r["error"][rule] for r in runs])
        for key in ("ece", "ms_per_step", "us_per_image", "val_error"):
            v[key].setdefault(m, {})[size] = _median([r.get(key) for r in runs])
        v["params"][m] = runs[0]["params"]
        v["epochs"][size] = runs[0]["epochs"]
        for key in ("kept_correct", "kept_wrong", "target_kept"):
            if key in runs[0]:
                v.setdefault(key, {}).setdefault(m, {})[size] = _median([r[key] for r in runs])
        if m == "sparsemax-ce":
            v.setdefault("zero_target", {})[size] = _median(
                [r["hist"]["zero_target"][-1] for r in runs])
        if "rho_nt" in runs[0]["hist"]:
            v.setdefault("rho_nt", {}).setdefault(m, {})[size] = _median(
                [r["hist"]["rho_nt"][-1] for r in runs])
    err = v["error"]
    soft = err.get("softmax", {}).get("approx", {})
    v["gain"] = {m: {str(SIZES[s] * 10): soft[s] - e for s, e in rules["approx"].items()
                     if s in soft}
                 for m, rules in err.items() if m != "softmax"}
    v["sampled_minus_approx"] = {
        m: {s: min(rules[r][s] for r in rules if r != "approx") - rules["approx"][s]
            for s in rules["approx"]} for m, rules in err.items() if len(rules) > 1}
    v["ece_gain"] = {m: {s: v["ece"]["softmax"][s] - e for s, e in d.items()
                         if s in v["ece"].get("softmax", {})} for m, d in v["ece"].items()}
    v["class_minus_logit"] = {
        kind: {s: err[f"{kind}-class"]["approx"][s] - err[f"{kind}-logit"]["approx"][s]
               for s in err[f"{kind}-class"]["approx"] if s in err[f"{kind}-logit"]["approx"]}
        for kind in ("random", "adaptive", "report")
        if f"{kind}-class" in err and f"{kind}-logit" in err}
    base = v["ms_per_step"].get("softmax", {})
    v["step_ratio"] = {m: {s: t / base[s] for s, t in d.items() if s in base and base[s]}
                       for m, d in v["ms_per_step"].items()}
    ubase = v["us_per_image"].get("softmax", {})
    v["test_ratio"] = {m: {s: t / ubase[s] for s, t in d.items() if s in ubase and ubase[s]}
                       for m, d in v["us_per_image"].items()}
    if "softmax" in v["params"]:
        v["param_ratio"] = {m: p / v["params"]["softmax"] for m, p in v["params"].items()}
    v["paired_gain"] = paired_gains(recs, cfg.get("n_boot", 2000))
    return v


def paired_gains(recs: dict, n_boot: int = 2000) -> dict:
    """Each model's gain over softmax in test-error points, paired over the same seeds and test
    images: mean over seeds of (softmax wrong - model wrong) per image, with a 95 % bootstrap
    interval over the images. {model: {size: {mean, lo, hi, seeds}}}."""
    out: dict = {}
    for size in sorted({s for s, _, _ in recs}):
        seeds = sorted(sd for s, m, sd in recs if s == size and m == "softmax")
        for m in sorted({m for s, m, _ in recs if s == size and m != "softmax"}):
            both = [sd for sd in seeds if (size, m, sd) in recs]
            if not both or "wrong" not in recs[(size, "softmax", both[0])]["values"]:
                continue
            bits = {mm: np.stack([unpack_bits(recs[(size, mm, sd)]["values"]["wrong"],
                                              recs[(size, mm, sd)]["values"]["n_test"])
                                  for sd in both]) for mm in ("softmax", m)}
            mean, lo, hi = paired_bootstrap(bits["softmax"] * 100, bits[m] * 100, n_boot)
            out.setdefault(m, {})[size] = {"mean": mean, "lo": lo, "hi": hi, "seeds": len(both)}
    return out


PATHOLOGY_VARIANTS = [(mode, force, relu) for mode in ("logit", "class")
                      for force in (False, True) for relu in (False, True)]
CODE_VARIANTS = [("class", force, False) for force in (False, True)]


def variant_name(mode: str, force: bool, relu: bool, objective: str = "eq5") -> str:
    name = f"{mode}-{'forced' if force else 'free'}-{'relu' if relu else 'linear'}"
    return f"code-{name}" if objective == "report-code" else name


def pathology_cells(cfg: dict) -> list[dict]:
    """The report's z -> 1 pathology (report §2, §4.2): eight variants of report eq. 5 with the
    first seed, and the report code's own kernel and objective (drop-class, free or forced
    z_t) with every seed of ``code_seeds``."""
    base = {**_base(cfg), "size": "1k", "samples": []}
    cells = [{**base, "model": f"report-{mode}", "force": force, "relu": relu,
              "seed": cfg["seeds"][0]} for mode, force, relu in PATHOLOGY_VARIANTS]
    cells += [{**base, "model": f"report-{mode}", "force": force, "relu": relu, "seed": seed,
               "objective": "report-code"}
              for mode, force, relu in CODE_VARIANTS for seed in cfg.get("code_seeds", [])]
    return cells


def pathology_cell(cfg: dict, ctx) -> tuple[dict, str]:
    """CE through the relaxed prior mask only, 1K training set; per epoch the mean non-target
    retain probability and the share of it above 0.99."""
    mode = cfg["model"].split("-")[1]
    sp = mnist_split(SIZES["1k"])
    loss = pathology_loss(mode, cfg["force"], cfg["relu"], cfg["weight_decay"],
                          cfg.get("objective", "eq5"))
    return train_one(cfg["model"], sp, cfg, loss, relu=cfg["relu"], device=ctx.device), sp["source"]


def summarise_pathology(cells: list, cfg: dict) -> dict:
    """Per variant: the final mean non-target rho, its share above 0.99, the curve and the test
    error (medians over seeds for the report-code variants, each seed under ``*_seeds``)."""
    runs: dict = {}
    for c, v in cells:
        name = variant_name(c["model"].split("-")[1], c["force"], c["relu"],
                            c.get("objective", "eq5"))
        runs.setdefault(name, []).append(v)
    out = {"rho_nt": {}, "rho_nt_99": {}, "rho_nt_curve": {}, "error": {}, "rho_nt_seeds": {},
           "epochs": cfg["epochs"]}
    for name, vs in runs.items():
        out["rho_nt"][name] = _median([v["hist"]["rho_nt"][-1] for v in vs])
        out["rho_nt_99"][name] = _median([v["hist"]["rho_nt_99"][-1] for v in vs])
        out["rho_nt_curve"][name] = vs[0]["hist"]["rho_nt"]
        out["error"][name] = _median([v["error"]["approx"] for v in vs])
        out["rho_nt_seeds"][name] = len(vs)
    return out


MNIST_OUTPUTS = ("error", "ece", "ms_per_step", "us_per_image", "params", "epochs", "runs",
                 "val_error", "kept_correct", "kept_wrong", "target_kept", "zero_target", "rho_nt",
                 "gain", "sampled_minus_approx", "ece_gain", "class_minus_logit", "step_ratio",
                 "test_ratio", "param_ratio", "paired_gain")
_MODULES = ("dropmax/kernels.py", "dropmax/models.py", "dropmax/experiments.py")

registry.register(registry.Experiment(
    name="dropmax_mnist", chapter="dropmax", compute=mnist_cell, cells=mnist_cells,
    cell_name="dropmax_run", summarise=summarise_mnist, modules=_MODULES,
    outputs=MNIST_OUTPUTS, slice=_slice, memory_gb=_memory_gb))
registry.register(registry.Experiment(
    name="dropmax_pathology", chapter="dropmax", compute=pathology_cell, cells=pathology_cells,
    cell_name="dropmax_zrun", summarise=summarise_pathology, modules=_MODULES,
    outputs=("rho_nt", "rho_nt_99", "rho_nt_curve", "error", "rho_nt_seeds", "epochs"),
    slice=_slice, memory_gb=_memory_gb))
