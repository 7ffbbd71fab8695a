"""DropMax chapter experiments on MNIST (paper Table 1 / report Table 2, the report's sparsemax
failure and z -> 1 pathology, overhead, calibration, the learned retain probabilities).

Protocol of the official code (haebeom-lee/dropmax ``run.py``, ``mnist.py``): batch 100, Adam
1e-3 decayed x0.1 at 1/3 and 2/3 of the steps, L2 1e-4 (sum of v^2/2) on the trunk and the
logit layer only, Glorot-uniform weights and zero biases; training set = the first N images
of each class of the 60K MNIST training set, validation = the next N. For 55K (N = 5500) class
5 has only 5,421 images: all of them are trained on (54,921 images) and validation is what is
left (5,079 images, no class 5). Every model is trained once; its test rules (plug-in
"approx", Monte-Carlo "sampled" with S = 30 and 100) share that training run.

One results record per (model, size, seed) (``dropmax_run``; ``dropmax_zrun`` for the
pathology runs); ``dropmax_mnist`` and ``dropmax_pathology`` aggregate them (median over seeds)
into the values the ledger reads.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

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


def mnist_split(n: int, data: dict | None = None):
    from ..data import load_mnist
    data = data or load_mnist()
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


def report_loss(o, ph, y, mode, alpha=10.0, variational=True, force=False, relu=False):
    """The report's objective (jamesal1/DropMax ``getRegLoss``): CE with a relaxed mask drawn
    from rho = sigmoid(ph) (report eq. 2; target NOT forced unless ``force``), plus the
    "variational" term -log(rho_t / sum_k rho_k), minus alpha x the mean Bernoulli entropy of
    rho. ``relu`` applies ReLU to the logits (the report's test of the z -> 1 cause)."""
    o = F.relu(o) if relu else o
    z = concrete_mask(ph, TAU, target=y if force else None)
    loss = -dropmax_log_probs(o, z, mode).gather(1, y[:, None]).mean()
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


def pathology_loss(mode: str, force: bool, relu: bool, wd: float):
    """The report's z -> 1 experiment: CE through the relaxed prior mask only (alpha = 0, no
    variational term), with or without z_t = 1 and ReLU on the logits."""
    def loss_fn(model, x, y):
        o, ph, _ = model(x)
        loss = report_loss(o, ph, y, mode, alpha=0.0, variational=False, force=force, relu=relu)
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
    elif name.startswith("report"):  # report eq. 7: rho* = sigmoid(rho^h / tau)
        main = dropmax_probs(o, torch.sigmoid(ph / TAU), mode)
    else:
        main = dropmax_probs(o, torch.sigmoid(ph), mode)
    us = (time.perf_counter() - t0) / len(x) * 1e6
    out = {"error": {"approx": _error(main, y)}, "ece": expected_calibration_error(main, y) * 100,
           "us_per_image": us}
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
    out.update(train_s=train_s, ms_per_step=train_s / steps * 1e3, steps=steps, params=params,
               epochs=cfg["epochs"], n_train=n,
               hist={k: v for k, v in hist.items() if isinstance(v, list)})
    return out


# --------------------------------------------------------------------------- the chapter
def _median(xs):
    xs = [x for x in xs if x is not None]
    return float(np.median(xs)) if xs else None


def _run_config(settings: dict, **kw) -> dict:
    base = {k: v for k, v in settings.items() if k not in ("sizes", "seeds", "pathology")}
    return {**base, **kw}


def _run_ids(recs: dict) -> list[str]:
    """The aggregate's config: each run's config hash and finish time, so that a rerun of any
    run (new code) makes a new aggregate."""
    return sorted(f"{r['config_hash']}@{r['provenance'].get('finished')}" for r in recs.values())


def run_table(settings: dict, profile: str, store, data: dict | None = None,
              progress=None, device="cpu") -> dict:
    """Every (size, model, seed) run of the profile (one record each), then the aggregate
    record ``dropmax_mnist`` the ledger reads. Returns the aggregate record."""
    from ..data import load_mnist
    data = data or load_mnist()
    cells = [(size, m, seed) for size, spec in settings["sizes"].items()
             for m in spec["models"] for seed in settings["seeds"]]
    recs = {}
    for size, m, seed in (progress(cells) if progress else cells):
        spec = settings["sizes"][size]
        cfg = _run_config(settings, model=m, size=size, seed=seed, epochs=spec["epochs"])

        def fn(cfg=cfg, size=size, m=m):
            sp = mnist_split(SIZES[size], data)
            return train_one(m, sp, cfg, device=device), sp["source"]
        recs[(size, m, seed)] = store.run("dropmax_run", cfg, profile, seed, fn)
    return store.run("dropmax_mnist", {"runs": _run_ids(recs)}, profile, settings["seeds"][0],
                     lambda: aggregate_table(recs, settings))


def aggregate_table(recs: dict, settings: dict) -> dict:
    """Medians over seeds of every run value, and the derived comparisons of the ledger."""
    v = {"error": {}, "ece": {}, "ms_per_step": {}, "us_per_image": {}, "params": {},
         "epochs": {}, "runs": len(settings["seeds"]), "val_error": {}}
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
    return v


PATHOLOGY_VARIANTS = [(mode, force, relu) for mode in ("logit", "class")
                      for force in (False, True) for relu in (False, True)]


def variant_name(mode: str, force: bool, relu: bool) -> str:
    return f"{mode}-{'forced' if force else 'free'}-{'relu' if relu else 'linear'}"


def run_pathology(settings: dict, profile: str, store, data: dict | None = None,
                  progress=None, device="cpu") -> dict:
    """The report's z -> 1 pathology (report §2, §4.2): CE through the relaxed prior mask
    only, 1K training set; per epoch the mean non-target retain probability and the share of
    it above 0.99, for each (mode, forced z_t = 1, ReLU on the logits) variant."""
    from ..data import load_mnist
    data = data or load_mnist()
    ps = settings["pathology"]
    recs = {}
    for mode, force, relu in (progress(PATHOLOGY_VARIANTS) if progress else PATHOLOGY_VARIANTS):
        cfg = _run_config(settings, model=f"report-{mode}", size="1k", force=force, relu=relu,
                          seed=settings["seeds"][0], epochs=ps["epochs"], samples=[],
                          test_n=ps.get("test_n", settings["test_n"]))

        def fn(cfg=cfg, mode=mode, force=force, relu=relu):
            sp = mnist_split(SIZES["1k"], data)
            loss = pathology_loss(mode, force, relu, cfg["weight_decay"])
            return (train_one(f"report-{mode}", sp, cfg, loss, relu=relu, device=device),
                    sp["source"])
        recs[variant_name(mode, force, relu)] = store.run("dropmax_zrun", cfg, profile,
                                                         cfg["seed"], fn)
    hashes = _run_ids(recs)

    def agg():
        out = {"rho_nt": {}, "rho_nt_99": {}, "rho_nt_curve": {}, "error": {},
               "epochs": ps["epochs"]}
        for name, rec in recs.items():
            h = rec["values"]["hist"]
            out["rho_nt"][name], out["rho_nt_99"][name] = h["rho_nt"][-1], h["rho_nt_99"][-1]
            out["rho_nt_curve"][name] = h["rho_nt"]
            out["error"][name] = rec["values"]["error"]["approx"]
        return out
    return store.run("dropmax_pathology", {"runs": hashes}, profile, settings["seeds"][0], agg)


# --------------------------------------------------------------------------- figures and tables
def plot_pathology(values: dict):
    """Mean non-target retain probability per epoch, one line per pathology variant."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    colours = {"free-linear": "C0", "free-relu": "C1", "forced-linear": "C2", "forced-relu": "C3"}
    for ax, mode in zip(axes, ("logit", "class")):
        for name, curve in values["rho_nt_curve"].items():
            if name.startswith(mode):
                tag = name[len(mode) + 1:]
                ax.plot(range(1, len(curve) + 1), curve, label=tag, color=colours[tag],
                        ls="-" if "free" in name else "--", lw=1.5 if "relu" in name else 2.5)
        ax.set(title=f"drop-{mode}", xlabel="epoch", ylim=(0, 1))
        ax.axhline(0.99, color="grey", lw=0.5)
    axes[0].set_ylabel("mean non-target rho")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


ICLR_1K = {"softmax": 7.17, "sampled-uniform": 7.48, "sampled-learned": 7.62,
           "sparsemax": 6.84, "random-logit:s100": 7.25, "random-logit:approx": 7.26,
           "adaptive-logit:s100": 6.70, "adaptive-logit:approx": 6.66}
NEURIPS_1K = {"softmax": 7.09, "sparsemax": 6.57, "sampled-uniform": 7.36,
              "random-class": 7.19, "attention": 6.91, "q-eq-p": 7.52, "adaptive-class": 5.32}
REPORT_1K = {"softmax": 4.00, "sparsemax-ce": 23.02, "random-class": 3.57,
             "random-logit": 3.54, "report-class": 3.04, "report-logit": 2.97}


def error_table(values: dict, size: str = "1k"):
    """One row per (model, test rule): ICLR Table 1, the NeurIPS poster, the report's Table 2
    and ours at ``size`` (test error %), with our ECE and the validation error."""
    import pandas as pd
    rows = []
    for m, rules in values["error"].items():
        for rule, by_size in rules.items():
            if size not in by_size:
                continue
            key = f"{m}:{rule}"
            first = rule == "approx"
            rows.append({"model": m, "test rule": rule,
                         "ICLR": ICLR_1K.get(key, ICLR_1K.get(m) if first else None)
                         if size == "1k" else None,
                         "NeurIPS": NEURIPS_1K.get(m) if first and size == "1k" else None,
                         "report": REPORT_1K.get(m) if first and size == "1k" else None,
                         "ours": round(by_size[size], 2),
                         "ours ECE": round(values["ece"][m][size], 2) if first else None,
                         "ours val": values["val_error"][m].get(size) if first else None})
    return pd.DataFrame(rows).set_index(["model", "test rule"])


def overhead_table(values: dict, size: str = "1k"):
    """Parameters, ms per training step and us per test image, and their ratio to softmax."""
    import pandas as pd
    rows = {m: {"parameters": values["params"][m],
                "ms / step": round(values["ms_per_step"][m][size], 1),
                "us / test image": round(values["us_per_image"][m][size], 1),
                "step / softmax": round(values["step_ratio"].get(m, {}).get(size, float("nan")), 2),
                "test / softmax": round(values["test_ratio"].get(m, {}).get(size, float("nan")), 2)}
            for m in values["params"] if size in values["ms_per_step"].get(m, {})}
    return pd.DataFrame(rows).T
