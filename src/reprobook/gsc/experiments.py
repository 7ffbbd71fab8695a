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
from .models import ARCHS, make_mlp

ARCHS_TRAINED = ["batch-relu", "layer-tanh", "batch-tanh", "selu"]  # paper §4 trains these four
_NOISE = {"depth": 50, "width": 100, "bn_batch": 100, "fit_skip": [2, 3], "archs": list(ARCHS)}
_ABLATION = {"depth": 50, "width": 100, "bn_batch": 100, "fit_skip": [2, 3], "arch": "layer-tanh",
             "variants": {"A": {}, "B": {"variant": "B"}, "orthogonal": {"init": "orthogonal"},
                          "post-norm": {"norm_position": "post"}}}
_CIFAR = {"archs": ARCHS_TRAINED, "depth": 51, "batch": 128, "tau": 1e-6, "trained_below": 0.8}
# Nested by experiment name: each section is that experiment's config (reprobook.runner).
PROFILES = {
    "small": {
        "gsc_noise": dict(_NOISE, n_datasets=10, n_points=1000),
        "gsc_ablation": dict(_ABLATION, n_datasets=4, n_points=1000),
        "gsc_cifar": dict(_CIFAR, train=5000, lrs=[1e-3, 1e-2, 1e-1], search_epochs=3, epochs=15,
                          patience=3, gsc_points=500, probe_lrs=[1e5], probe_train=1280,
                          adam_archs=["batch-relu"], adam_lr=1e-3, adam_epochs=3),
    },
    # <= 90 min of a 2-core CPU: Gaussian noise (E1) and its ablations at the paper's scale, and
    # CIFAR-10 on 5,000 images for the report's >= 80 epochs (the length the training-dynamics
    # claims need); the step-size search is shorter and coarser than the paper's.
    "medium": {
        "gsc_noise": dict(_NOISE, n_datasets=100, n_points=10000),
        "gsc_ablation": dict(_ABLATION, n_datasets=20, n_points=10000),
        "gsc_cifar": dict(_CIFAR, train=5000, lrs=[1e-4, 1e-3, 1e-2, 1e-1], search_epochs=5,
                          epochs=80, patience=5, gsc_points=1000, probe_lrs=[1e3, 1e4, 1e5],
                          probe_train=2560, adam_archs=ARCHS_TRAINED, adam_lr=1e-3,
                          adam_epochs=10),
    },
    "full": {
        "gsc_noise": dict(_NOISE, n_datasets=100, n_points=10000),
        "gsc_ablation": dict(_ABLATION, n_datasets=20, n_points=10000),
        "gsc_cifar": dict(_CIFAR, train=50000,
                          lrs=[float(f"{1e-5 * 3 ** i:.0e}") for i in range(11)],
                          search_epochs=70, epochs=500, patience=5, gsc_points=10000,
                          probe_lrs=[1e3, 1e4, 1e5], probe_train=12800, adam_archs=ARCHS_TRAINED,
                          adam_lr=1e-3, adam_epochs=100),
    },
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


# ----------------------------------------------------------------------------- E1 on the registry
_CELL_KEYS = ("depth", "width", "n_points", "bn_batch", "fit_skip", "seed")


def noise_cells(cfg: dict) -> list[dict]:
    """One cell per (architecture, replicate): a fresh network on a fresh data set."""
    base = {k: cfg[k] for k in _CELL_KEYS}
    return [{**base, "arch": a, "replicate": r, "variant": "A", "init": "paper",
             "norm_position": "pre"} for a in cfg["archs"] for r in range(cfg["n_datasets"])]


def ablation_cells(cfg: dict) -> list[dict]:
    """One cell per (setup variant, replicate) of one architecture; replicate r of every
    variant starts from the same seed (the same data and, where the init is shared, weights)."""
    base = {k: cfg[k] for k in _CELL_KEYS}
    return [{**base, "arch": cfg["arch"], "replicate": r, "variant": "A", "init": "paper",
             "norm_position": "pre", **change, "name": name}
            for name, change in cfg["variants"].items() for r in range(cfg["n_datasets"])]


def noise_cell(cfg: dict, ctx) -> tuple[dict, str]:
    """Paper Fig. 1 / report §3.1 for one replicate (:func:`noise_replicate`)."""
    seed = ctx.seed_for("gsc_noise", cfg["arch"], cfg["replicate"])
    t0 = time.perf_counter()
    out = noise_replicate(cfg["arch"], seed, cfg["depth"], cfg["width"], cfg["n_points"],
                          cfg["bn_batch"], cfg["variant"], cfg["init"], cfg["norm_position"],
                          ctx.device, tuple(cfg["fit_skip"]))
    out["seconds"] = time.perf_counter() - t0
    return out, "synthetic Gaussian inputs (report §3.1)"


def _per_arch(reps: list[dict], skip) -> dict:
    g = np.array([r["gsc"] for r in reps])
    median = {k: np.median(np.array([r[k] for r in reps]), 0).tolist()
              for k in ("gsc", "preact_std", "sign_diversity")}
    rates = np.array([r["rate"] for r in reps])
    return {"median": median, "q10": np.quantile(g, 0.1, 0).tolist(),
            "q90": np.quantile(g, 0.9, 0).tolist(), "rates": rates.tolist(),
            "rate": float(rates.mean()),
            "rate_sd": float(rates.std(ddof=1)) if len(rates) > 1 else 0.0,
            "gsc_input": float(np.median(g[:, 0])), "std_last": median["preact_std"][-1],
            "sd_last": median["sign_diversity"][-1],
            "log_r2": log_fit_r2(median["gsc"], skip),
            "sd_ratio": median["sign_diversity"][-1] / median["sign_diversity"][0],
            "std_ratio": median["preact_std"][-1] / median["preact_std"][0]}


def summarise_noise(cells: list, cfg: dict) -> dict:
    """Per architecture (medians over replicates): GSC curve with its 10-90 % band, growth rate
    (mean, sd, all), R^2 of the log-linear fit, pre-activation std and sign diversity (last
    layer and last / first); the smallest R^2 of the four architectures the paper trains; the
    time per replicate and the report's reduced scale timed here."""
    reps: dict = {}
    for c, v in cells:
        reps.setdefault(c["arch"], []).append(v)
    per = {a: _per_arch(r, tuple(cfg["fit_skip"])) for a, r in reps.items()}
    out = {"archs": list(reps)}
    for key in next(iter(per.values())):
        out[key] = {a: p[key] for a, p in per.items()}
    trained = [a for a in ARCHS_TRAINED if a in out["log_r2"]]
    if trained:
        out["min_log_r2_exploding"] = float(min(out["log_r2"][a] for a in trained))
    out["report_scale_s"] = time_report_scale()
    out["report_scale_minutes"] = out["report_scale_s"] / 60
    out["gpu_over_cpu"] = gpu_over_cpu(width=cfg["width"], depth=cfg["depth"])
    out["replicate_s"] = {a: float(np.mean([v["seconds"] for v in r])) for a, r in reps.items()}
    out["projected_full_minutes"] = (sum(out["replicate_s"].values()) * len(ARCHS) / len(reps)
                                     * 100 * (10000 / cfg["n_points"]) / 60)
    return out


def summarise_ablation(cells: list, cfg: dict) -> dict:
    """Per setup variant: the growth rate (mean, sd, all replicates) and median GSC at layer L."""
    reps: dict = {}
    for c, v in cells:
        reps.setdefault(c["name"], []).append(v)
    per = {n: _per_arch(r, tuple(cfg["fit_skip"])) for n, r in reps.items()}
    return {k: {n: p[k] for n, p in per.items()} for k in ("rate", "rate_sd", "rates", "gsc_input")}


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


# ----------------------------------------------------------------------------- the registry
from .. import registry  # noqa: E402
from .cifar import cifar_cell, cifar_cells, cifar_slice, summarise as summarise_cifar_cells  # noqa: E402

_NOISE_MODULES = ("gsc/kernels.py", "gsc/models.py", "gsc/experiments.py")
NOISE_OUTPUTS = ("archs", "median", "q10", "q90", "rates", "rate", "rate_sd", "gsc_input",
                 "std_last", "sd_last", "log_r2", "sd_ratio", "std_ratio",
                 "min_log_r2_exploding", "report_scale_s", "report_scale_minutes",
                 "gpu_over_cpu", "replicate_s", "projected_full_minutes")
CIFAR_OUTPUTS = ("search", "best_lr", "hist", "op_change", "final_error", "max_eff_depth",
                 "frac_gsc_towards_one", "frac_gsc_stable", "frac_later_layers_change_more",
                 "frac_trained", "kl_minus_ce", "trained", "n_trained", "trained_error_below",
                 "eff_depth", "eff_depth_gsc", "eff_depth_taus", "eff_depth_gsc_taus",
                 "max_eff_depth_trained", "max_eff_depth_gsc_trained", "eff_depth_curve",
                 "eff_depth_rho", "gsc_first", "gsc_last", "gsc_rate_end",
                 "gsc_one_vs_error_rho", "later_over_earlier", "op_change_max",
                 "frac_later_layers_change_2x", "batch_tanh_minus_selu_error", "probe_diverged",
                 "frac_diverged_at_max_lr", "adam_rate_end", "adam_final_error", "step_s",
                 "projected_report_cifar_hours", "gsc_50k_projected_s")


def _noise_slice(cfg: dict) -> tuple[dict, float]:
    """A tenth of a replicate's points, times ten."""
    return {**cfg, "n_points": max(cfg["bn_batch"], cfg["n_points"] // 10)}, 10.0


def _cifar_gb(cfg: dict) -> float:
    """CIFAR-10 as uint8 and the standardised float32 subset, plus a 51 x 100 MLP's state."""
    return round(60_000 * 3072 / 1e9 + cfg["train"] * 3072 * 4 / 1e9 + 0.3, 2)


registry.register(registry.Experiment(
    name="gsc_noise", chapter="gsc", compute=noise_cell, cells=noise_cells,
    cell_name="gsc_noise_replicate", summarise=summarise_noise, modules=_NOISE_MODULES,
    outputs=NOISE_OUTPUTS, slice=_noise_slice,
    memory_gb=lambda cfg: round(cfg["n_points"] * cfg["width"] * cfg["depth"] * 4 * 6 / 1e9
                                + 0.2, 2)))
registry.register(registry.Experiment(
    name="gsc_ablation", chapter="gsc", compute=noise_cell, cells=ablation_cells,
    cell_name="gsc_ablation_replicate", summarise=summarise_ablation, modules=_NOISE_MODULES,
    outputs=("rate", "rate_sd", "rates", "gsc_input"), slice=_noise_slice))
registry.register(registry.Experiment(
    name="gsc_cifar", chapter="gsc", compute=cifar_cell, cells=cifar_cells,
    cell_name="gsc_cifar_run", summarise=summarise_cifar_cells, checkpoint=True,
    modules=(*_NOISE_MODULES, "gsc/cifar.py", "gsc/depth.py"), outputs=CIFAR_OUTPUTS,
    slice=cifar_slice, memory_gb=_cifar_gb))
