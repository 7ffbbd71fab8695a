"""Experiment 1 of Philipp, Song & Carbonell (2018), "Gradients explode - Deep networks are
shallow" (arXiv 1712.05577): the seven MLPs at initialisation on Gaussian noise (paper Fig. 1;
report of Flynn, Cann & Tasker, §3.1 and its Fig. 2), and the chapter's profiles.

- :func:`noise_replicate` -- one fresh network on one fresh data set: GSC(k, 0), pre-activation
  std and sign diversity per layer, the growth rate (paper Fig. 1, report §3.1);
- :func:`run_noise` -- every architecture x ``n_datasets`` replicates, one results record each,
  and the summary the ledger's ``gsc_noise`` claims read;
- :func:`time_matmul`, :func:`matmul_flops` -- the matrix-product floor of the experiment;
  :func:`time_report_scale` -- the report's reduced scale (10 data sets of 100 points) timed here.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from .kernels import growth_rate, gsc_curve, log_fit_r2
from .models import ARCHS, EXPLODING, make_mlp

EXPLODE_RATE = 1.02  # a rate above this is "exploding" in our verdicts; "no explosion" is [0.97, 1.02]
TRAINED_ERROR = 0.8  # a CIFAR run "trained" when its final training error is below this (chance: 0.9)

PROFILES = {
    "small": {"depth": 50, "width": 100, "n_datasets": 10, "n_points": 1000, "bn_batch": 100,
              "fit_skip": (2, 3),
              "cifar_archs": EXPLODING, "cifar_depth": 51, "cifar_train": 5000,
              "cifar_lrs": (1e-3, 1e-2, 1e-1), "cifar_search_epochs": 3, "cifar_epochs": 15,
              "cifar_patience": 3, "cifar_gsc_points": 500, "cifar_batch": 128,
              "cifar_tau": 1e-6, "cifar_probe_lrs": (1e5,), "cifar_probe_train": 1280,
              "cifar_adam_archs": ("batch-relu",), "cifar_adam_lr": 1e-3, "cifar_adam_epochs": 3,
              "ablation_datasets": 4},
    # <= 90 min of a 2-core CPU: Gaussian noise (E1) and its ablations at the paper's scale, and
    # CIFAR-10 on 5,000 images for the report's >= 80 epochs (the length the training-dynamics
    # claims need); the step-size search is shorter and coarser than the paper's.
    "medium": {"depth": 50, "width": 100, "n_datasets": 100, "n_points": 10000, "bn_batch": 100,
               "fit_skip": (2, 3),
               "cifar_archs": EXPLODING, "cifar_depth": 51, "cifar_train": 5000,
               "cifar_lrs": (1e-4, 1e-3, 1e-2, 1e-1), "cifar_search_epochs": 5,
               "cifar_epochs": 80, "cifar_patience": 5, "cifar_gsc_points": 1000,
               "cifar_batch": 128, "cifar_tau": 1e-6, "cifar_probe_lrs": (1e3, 1e4, 1e5),
               "cifar_probe_train": 2560, "cifar_adam_archs": EXPLODING, "cifar_adam_lr": 1e-3,
               "cifar_adam_epochs": 10, "ablation_datasets": 20},
    "full": {"depth": 50, "width": 100, "n_datasets": 100, "n_points": 10000, "bn_batch": 100,
             "fit_skip": (2, 3),
             "cifar_archs": EXPLODING, "cifar_depth": 51, "cifar_train": 50000,
             "cifar_lrs": tuple(float(f"{1e-5 * 3 ** i:.0e}") for i in range(11)),
             "cifar_search_epochs": 70, "cifar_epochs": 500, "cifar_patience": 5,
             "cifar_gsc_points": 10000, "cifar_batch": 128,
             "cifar_tau": 1e-6, "cifar_probe_lrs": (1e3, 1e4, 1e5), "cifar_probe_train": 12800,
             "cifar_adam_archs": EXPLODING, "cifar_adam_lr": 1e-3, "cifar_adam_epochs": 100,
             "ablation_datasets": 20},
}


def gaussian_data(n: int, d: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs with iid N(0, 1/d) entries rescaled to length sqrt(d); labels N(0, 1/d) (report §3.1)."""
    x = torch.randn(n, d, generator=generator) / math.sqrt(d)
    x = x * (math.sqrt(d) / x.norm(dim=1, keepdim=True))
    y = torch.randn(n, d, generator=generator) / math.sqrt(d)
    return x, y


def noise_replicate(arch: str, seed: int, depth: int, width: int, n_points: int,
                    bn_batch: int = 100, variant: str = "A", init: str = "paper",
                    norm_position: str = "pre", device="cpu", skip=(2, 3)) -> dict:
    """One independent replicate of paper Fig. 1: a fresh network and a fresh data set."""
    gen = torch.Generator().manual_seed(seed)
    model = make_mlp(arch, depth, width, init=init, norm_position=norm_position,
                     generator=gen).to(device)
    x, y = gaussian_data(n_points, width, gen)
    curves = gsc_curve(model, x.to(device), y.to(device), group=bn_batch, variant=variant)
    curves["rate"] = growth_rate(curves["gsc"], skip)
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in curves.items()}


def matmul_flops(n_points: int, depth: int, width: int) -> float:
    """Unavoidable products of one replicate: forward plus input-gradient backward."""
    return 2 * 2.0 * n_points * depth * width * width


def time_matmul(n: int = 10000, d: int = 100, repeat: int = 50, device="cpu") -> float:
    """Measured FLOP/s of the plain (n x d) @ (d x d) product that the experiment is made of."""
    a, w = torch.randn(n, d, device=device), torch.randn(d, d, device=device)
    for _ in range(5):
        a @ w
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeat):
        a @ w
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    return 2.0 * n * d * d * repeat / (time.perf_counter() - t0)


def run_noise(store, profile: str, seed: int, settings: dict, archs=ARCHS, variant: str = "A",
              init: str = "paper", norm_position: str = "pre", n_datasets: int | None = None,
              device="cpu", progress=None, timing: bool | None = None) -> dict:
    """Paper Fig. 1 / report Fig. 2: every architecture, ``n_datasets`` independent replicates.

    Each (architecture, replicate) is its own results record, so an interrupted grid
    resumes. Returns per-architecture median curves, growth rates (mean, sd, all), the R^2 of
    the log-linear fit, the sign-diversity ratio last/first layer, and timing (with
    ``timing``, default: when all seven architectures run, also the report's reduced scale
    and GPU/CPU), ready for the ledger (experiment ``gsc_noise``).
    """
    s = settings
    n_rep = n_datasets or s["n_datasets"]
    out = {"archs": list(archs), "median": {}, "q10": {}, "q90": {}, "rate": {}, "rate_sd": {},
           "rates": {}, "gsc_input": {}, "std_last": {}, "sd_last": {}, "runtime_s": 0.0,
           "computed_s": 0.0, "reused": 0}
    cells = [(a, r) for a in archs for r in range(n_rep)]
    for arch, rep in (progress(cells) if progress else cells):
        cfg = {"arch": arch, "replicate": rep, "seed": seed, "depth": s["depth"],
               "width": s["width"], "n_points": s["n_points"], "bn_batch": s["bn_batch"],
               "variant": variant, "init": init, "norm_position": norm_position,
               "skip": list(s["fit_skip"])}
        rec = store.run("gsc_noise_replicate", cfg, profile, seed, lambda: noise_replicate(
            arch, seed * 100003 + rep * 7919 + ARCHS.index(arch), s["depth"], s["width"],
            s["n_points"], s["bn_batch"], variant, init, norm_position, device, tuple(s["fit_skip"])),
            data_source="synthetic Gaussian inputs (report §3.1)")
        out["runtime_s"] += rec["provenance"]["runtime_s"]
        out["reused"] += rec["reused"]
        out["computed_s"] += 0 if rec["reused"] else rec["provenance"]["runtime_s"]
        out.setdefault("_reps", {}).setdefault(arch, []).append(rec["values"])
        out.setdefault("_time", {}).setdefault(arch, 0.0)
        out["_time"][arch] += rec["provenance"]["runtime_s"]
    for arch, reps in out.pop("_reps").items():
        g = np.array([r["gsc"] for r in reps])
        out["median"][arch] = {k: np.median(np.array([r[k] for r in reps]), 0).tolist()
                               for k in ("gsc", "preact_std", "sign_diversity")}
        out["q10"][arch] = np.quantile(g, 0.1, 0).tolist()
        out["q90"][arch] = np.quantile(g, 0.9, 0).tolist()
        rates = np.array([r["rate"] for r in reps])
        out["rates"][arch] = rates.tolist()
        out["rate"][arch] = float(rates.mean())
        out["rate_sd"][arch] = float(rates.std(ddof=1)) if len(rates) > 1 else 0.0
        out["gsc_input"][arch] = float(np.median(g[:, 0]))
        out["std_last"][arch] = out["median"][arch]["preact_std"][-1]
        out["sd_last"][arch] = out["median"][arch]["sign_diversity"][-1]
    out["explodes"] = {a: bool(out["rate"][a] > EXPLODE_RATE) for a in out["rate"]}
    rep_s = {a: t / n_rep for a, t in out.pop("_time").items()}
    out["replicate_s"] = rep_s
    out["projected_full_minutes"] = sum(rep_s.values()) * 100 * (10000 / s["n_points"]) / 60 \
        * len(ARCHS) / len(rep_s)
    calm = [a for a in ("relu", "layer-relu", "tanh") if a in out["median"]]
    if calm:
        out["nonexploding_std_collapsed"] = float(np.mean(
            [out["median"][a]["preact_std"][-1] < 0.5 * out["median"][a]["preact_std"][0]
             for a in calm]))
    skip = tuple(s["fit_skip"])
    out["log_r2"] = {a: log_fit_r2(out["median"][a]["gsc"], skip) for a in out["median"]}
    out["sd_ratio"] = {a: out["median"][a]["sign_diversity"][-1] / out["median"][a]["sign_diversity"][0]
                       for a in out["median"]}
    out["std_ratio"] = {a: out["median"][a]["preact_std"][-1] / out["median"][a]["preact_std"][0]
                        for a in out["median"]}
    boom = [a for a in EXPLODING if a in out["rate"]]
    if boom:
        out["min_log_r2_exploding"] = float(min(out["log_r2"][a] for a in boom))
    norm_selu = ("batch-relu", "batch-tanh", "selu")
    if all(a in out["rate"] for a in norm_selu):
        out["norm_selu_explode"] = all(out["explodes"][a] for a in norm_selu)
    if timing if timing is not None else tuple(archs) == ARCHS:
        out["report_scale_s"] = time_report_scale(device=device)
        out["report_scale_minutes"] = out["report_scale_s"] / 60
        out["gpu_over_cpu"] = gpu_over_cpu(width=s["width"], depth=s["depth"])
    return out


def time_report_scale(n_datasets: int = 10, n_points: int = 100, depth: int = 50, width: int = 100,
                      measured: int = 2, device="cpu") -> float:
    """Seconds for the report's reduced scale of Fig. 1 (§3.1: 10 data sets of 100 points, all
    7 architectures), which took the report ~30 minutes: ``measured`` data sets per
    architecture are timed here with our kernels and scaled to ``n_datasets``."""
    measured = min(measured, n_datasets)
    t0 = time.perf_counter()
    for arch in ARCHS:
        for rep in range(measured):
            noise_replicate(arch, rep, depth, width, n_points, min(100, n_points), device=device)
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) * n_datasets / measured


def gpu_over_cpu(n_points: int = 1000, depth: int = 50, width: int = 100):
    """GPU time / CPU time of one batch-ReLU replicate (the report found the CPU faster), or a
    sentence saying why it could not be measured."""
    if not torch.cuda.is_available():
        return "no GPU on this machine"
    times = {}
    for dev in ("cpu", "cuda"):
        noise_replicate("batch-relu", 0, depth, width, n_points, device=dev)  # warm-up
        t0 = time.perf_counter()
        noise_replicate("batch-relu", 1, depth, width, n_points, device=dev)
        if dev == "cuda":
            torch.cuda.synchronize()
        times[dev] = time.perf_counter() - t0
    return times["cuda"] / times["cpu"]
