"""The Concrete Dropout chapter's experiments, registered with :mod:`reprobook.registry` and run
by :mod:`reprobook.runner` (``cdx`` in the notebook and tests). The code lives by concern:
``models`` (stacked-weight regression nets), ``synthetic`` (paper §5.1), ``uci`` (paper §5.2,
report §3.1), ``mnist`` (paper §5.3, report §3.2: the 3 x 512 MLP, its tuned-dropout baseline,
data sizes, regularisers, the spatial conv net), ``sst`` (report §3.5.2: LSTM inputs on SST-2),
``rl`` (report §3.4: CartPole REINFORCE) and ``mbrl`` (paper §5.5: model-based CartPole).

Each experiment's seed comes from the run's seed through ``ctx.seed_for(name)``; the records
hold raw numbers (p's, errors, rank correlations, paired gains with their intervals) and the
ledger judges them.
"""
from __future__ import annotations

import numpy as np

from .. import registry
from ..stats import paired_bootstrap, spearman
from .mbrl import MBRL_LAYERS, StackedDynamicsNet, plot_mbrl, run_mbrl
from .mnist import (MNIST_LAYERS, SpatialConvNet, StackedMLPClassifier, convergence_epoch,
                    mnist_arrays, plot_mnist, run_mnist, run_mnist_width, run_spatial)
from .models import StackedRegressionNet, heteroscedastic_loss, mc_predict
from .rl import (VARIANTS, cartpole_reset, cartpole_step, discounted_returns, plot_rl,
                 reinforce_loss, run_cartpole)
from .sst import SSTClassifier, encode_sst, plot_sst, run_sst, train_sst
from .synthetic import LAYERS, plot_synthetic, run_synthetic, synthetic_data
from .uci import UCI_LAYERS, UCI_SETS, plot_uci, run_map_em, run_uci, uci_splits

SYNTHETIC_SOURCE = "synthetic y = 2x + 8 + N(0, 1), x ~ N(0, 1) (paper §5.1, reference notebook)"
CARTPOLE_SOURCE = "batched CartPole dynamics (gymnasium CartPoleEnv equations)"


# ----------------------------------------------------------------------------- synthetic
def synthetic(cfg: dict, ctx) -> tuple[dict, str]:
    """Paper §5.1 / the reference notebook: every (N, repetition) in one batched program, and
    the rank correlations of epistemic std and hidden-layer p with N."""
    out = run_synthetic(cfg["sizes"], cfg["epochs"], cfg["reps"], cfg["width"], cfg["lengthscale"],
                        cfg["batch"], cfg["val_size"], cfg["samples"], cfg["lr"],
                        ctx.seed_for("cd_synthetic"), ctx.device)
    ns = [float(n) for n in out["sizes"]]
    out["rho_epistemic_n"] = spearman(ns, [out["epistemic_std"][str(n)] for n in out["sizes"]])
    out["rho_p_hidden_n"] = spearman(ns, [out["p_hidden_mean"][str(n)] for n in out["sizes"]])
    out["aleatoric_std_largest_n"] = out["aleatoric_std"][str(out["sizes"][-1])]
    out["p_first_max"] = max(out["p"]["in-h1"].values())
    return out, SYNTHETIC_SOURCE


# ----------------------------------------------------------------------------- UCI
def uci_cells(cfg: dict) -> list[dict]:
    """Per data set: Concrete dropout and the no-dropout control (all splits batched in each),
    and the report's MAP-EM alternation with 2 and 3 passes where the profile runs it."""
    net = {k: cfg[k] for k in ("splits", "width", "depth", "lengthscale", "seed")}
    cells = [{**net, "stage": stage, "name": name, "epochs": cfg["epochs"][name],
              "batch": cfg["batch"], "lr": cfg["lr"], "samples": cfg["samples"],
              **({"fixed_p": cfg["control_p"]} if stage == "no-dropout" else {})}
             for name in cfg["sets"] for stage in ("concrete", "no-dropout")]
    cells += [{**net, "stage": "map-em", "name": name, "passes": passes,
               "epochs": cfg["map_em_epochs"][name], "batch": cfg["map_em_batch"]}
              for name in cfg.get("map_em_sets", []) for passes in (2, 3)]
    return cells


def uci_cell(cfg: dict, ctx):
    """One cell of :func:`uci_cells`. Concrete dropout and its control start from the same
    weights and see the same minibatches (one seed per data set)."""
    seed = ctx.seed_for("cd_uci", cfg["name"])
    if cfg["stage"] == "map-em":
        return run_map_em(cfg["name"], cfg["epochs"], cfg["batch"], cfg["passes"], cfg["splits"],
                          cfg["width"], cfg["depth"], cfg["lengthscale"], seed=seed,
                          device=ctx.device)
    return run_uci(cfg["name"], cfg["epochs"], cfg["batch"], cfg["splits"], cfg["width"],
                   cfg["depth"], cfg["lengthscale"], cfg["lr"], cfg["samples"], seed, ctx.device,
                   fixed_p=cfg.get("fixed_p"))


def _uci_set(v: dict, control: dict | None) -> dict:
    """A set's values with its p pattern statistics and, beside the control, the paired gains
    over the splits (Concrete minus no-dropout for LL, no-dropout minus Concrete for RMSE)."""
    ps = np.array(v["p_splits"])
    order = [tuple(np.argsort(row)) for row in ps]
    modal = max(set(order), key=order.count)
    out = dict(v, pattern_fraction=order.count(modal) / len(order),
               p_increases_with_depth=float(np.mean(np.all(np.diff(ps, axis=1) > 0, 1))),
               p_max=float(ps.mean(0).max()))
    if control is not None:
        ll = paired_bootstrap(v["ll_splits"], control["ll_splits"])
        rmse = paired_bootstrap(control["rmse_splits"], v["rmse_splits"])
        out["control"] = {"rmse": control["rmse"], "ll": control["ll"],
                          "rmse_splits": control["rmse_splits"], "ll_splits": control["ll_splits"]}
        out["ll_gain"], out["ll_gain_lo"], out["ll_gain_hi"] = ll
        out["rmse_gain"], out["rmse_gain_lo"], out["rmse_gain_hi"] = rmse
    return out


def summarise_uci(cells: list, cfg: dict) -> dict:
    """Per set (:func:`_uci_set`), the MAP-EM p movements, the pattern statistics' minima, and
    every (set, metric) number in one flat mapping for the ledger's comparison with grid-searched
    MC dropout (``metrics``: ``boston-rmse``, ``boston-ll``, ...)."""
    runs = {(c["stage"], c["name"], c.get("passes")): v for c, v in cells}
    sets = {name: _uci_set(v, runs.get(("no-dropout", name, None)))
            for (stage, name, _), v in runs.items() if stage == "concrete"}
    mapem: dict = {}
    for (stage, name, passes), v in runs.items():
        if stage == "map-em":
            mapem.setdefault(name, {})[f"{passes}-pass"] = v
    return {
        "sets": sets, "map_em": mapem,
        "map_em_dp_two_pass_max": max((v["2-pass"]["dp"] for v in mapem.values()), default=None),
        "map_em_dp_three_pass_min": min((v["3-pass"]["dp"] for v in mapem.values()), default=None),
        "pattern_fraction_min": min(v["pattern_fraction"] for v in sets.values()),
        "p_increases_with_depth_min": min(v["p_increases_with_depth"] for v in sets.values()),
        "metrics": {f"{n}-{m}": v[m] for n, v in sets.items() for m in ("rmse", "ll")},
        "ll_gain": {n: v["ll_gain"] for n, v in sets.items() if "ll_gain" in v},
        "ll_gain_lo": {n: v["ll_gain_lo"] for n, v in sets.items() if "ll_gain_lo" in v},
        "runtime_s": sum(v["train_s"] for v in sets.values()),
    }


# ----------------------------------------------------------------------------- MNIST
def mnist(cfg: dict, ctx) -> tuple[dict, str]:
    """Paper §5.3 / report §3.2: the stacked 3 x 512 MLP study (:func:`run_mnist`)."""
    return run_mnist(cfg["sizes"], [tuple(b) for b in cfg["baselines"]], cfg["reg_lengthscale2"],
                     cfg["width"], cfg["depth"], cfg["epochs"], cfg["batch"], cfg["lr"],
                     cfg["lengthscale2"], cfg["val"], cfg["test"], ctx.seed_for("cd_mnist"),
                     ctx.device)


def mnist_spatial(cfg: dict, ctx):
    """The spatial Concrete dropout conv net of the reference notebook (:func:`run_spatial`)."""
    return run_spatial(cfg["train"], cfg["test"], cfg["epochs"], cfg["channels"][0],
                       cfg["channels"][1], cfg["hidden"], cfg["batch"], cfg["lr"],
                       ctx.seed_for("cd_mnist_spatial"), ctx.device)


def mnist_width(cfg: dict, ctx):
    """p per layer against the hidden width (:func:`run_mnist_width`)."""
    return run_mnist_width(cfg["widths"], cfg["n"], cfg["epochs"],
                           seed=ctx.seed_for("cd_mnist_width"), device=ctx.device)


# ----------------------------------------------------------------------------- SST, RL, MBRL
def sst(cfg: dict, ctx):
    """Report §3.5.2: Concrete vs fixed dropout on the LSTM inputs (:func:`run_sst`)."""
    return run_sst(cfg["emb"], cfg["hidden"], cfg["epochs"], cfg["batch"], cfg["lr"],
                   cfg.get("train_rows"), ctx.seed_for("cd_sst"), ctx.device)


def rl(cfg: dict, ctx) -> tuple[dict, str]:
    """Report §3.4: REINFORCE on CartPole, every variant and seed batched (CPU: host-bound)."""
    return run_cartpole(cfg["episodes"], cfg["seeds"], cfg["max_steps"],
                        seed=ctx.seed_for("cd_rl")), f"{CARTPOLE_SOURCE}, v0 limit"


def mbrl(cfg: dict, ctx) -> tuple[dict, str]:
    """Paper §5.5: p of a Concrete-dropout dynamics model against the data collected."""
    return run_mbrl(**{k: v for k, v in cfg.items() if k != "seed"},
                    seed=ctx.seed_for("cd_mbrl")), f"{CARTPOLE_SOURCE}; random + MPC episodes"


# ----------------------------------------------------------------------------- plan slices
def _shorter(key: str, to: int = 1):
    """A slice that runs ``to`` of the config's ``key`` (epochs, episodes, stages) and scales
    the time by how many the cell has (per data set where ``key`` is a mapping). Episodes
    lengthen as an agent learns, so the RL projections are lower bounds."""
    def slice_(cfg: dict) -> tuple[dict, float]:
        n = cfg[key]
        if isinstance(n, dict):
            return {**cfg, key: dict.fromkeys(n, to)}, max(n.values()) / to
        return {**cfg, key: min(n, to)}, n / min(n, to)
    return slice_


def _synthetic_slice(cfg: dict) -> tuple[dict, float]:
    """A twentieth of every size's epochs; the scale counts Adam steps (size / batch each)."""
    short = [max(1, e // 20) for e in cfg["epochs"]]
    steps = lambda es: sum(e * -(-n // cfg["batch"]) for n, e in zip(cfg["sizes"], es))  # noqa: E731
    return {**cfg, "epochs": short}, steps(cfg["epochs"]) / steps(short)


# ----------------------------------------------------------------------------- the registry
_BASE = ("concrete_dropout/kernels.py", "concrete_dropout/models.py",
         "concrete_dropout/experiments.py")


def _register(name, compute, module, **kw):
    registry.register(registry.Experiment(
        name=name, chapter="concrete_dropout", compute=compute,
        modules=(*_BASE, f"concrete_dropout/{module}"), **kw))


_register("cd_synthetic", synthetic, "synthetic.py", slice=_synthetic_slice,
          outputs=("sizes", "p", "rmse", "epistemic_std", "aleatoric_std", "p_hidden_mean",
                   "rho_epistemic_n", "rho_p_hidden_n", "aleatoric_std_largest_n", "p_first_max"))
_register("cd_uci", uci_cell, "uci.py", cells=uci_cells, cell_name="cd_uci_set",
          summarise=summarise_uci, slice=_shorter("epochs"),
          outputs=("sets", "map_em", "map_em_dp_two_pass_max", "map_em_dp_three_pass_min",
                   "pattern_fraction_min", "p_increases_with_depth_min", "metrics", "ll_gain",
                   "ll_gain_lo", "runtime_s"))
_register("cd_mnist", mnist, "mnist.py", slice=_shorter("epochs"))
_register("cd_mnist_spatial", mnist_spatial, "mnist.py", slice=_shorter("epochs"))
_register("cd_mnist_width", mnist_width, "mnist.py", slice=_shorter("epochs"))
_register("cd_sst", sst, "sst.py", slice=_shorter("epochs"))
_register("cd_rl", rl, "rl.py", slice=_shorter("episodes", 10))
_register("cd_mbrl", mbrl, "mbrl.py", slice=_shorter("stages", 2))

__all__ = ["MBRL_LAYERS", "StackedDynamicsNet", "plot_mbrl", "run_mbrl", "VARIANTS",
           "cartpole_reset", "cartpole_step", "discounted_returns", "plot_rl", "reinforce_loss",
           "run_cartpole", "MNIST_LAYERS", "SSTClassifier", "SpatialConvNet",
           "StackedMLPClassifier", "convergence_epoch", "encode_sst", "mnist_arrays", "plot_mnist",
           "plot_sst", "run_mnist", "run_mnist_width", "run_spatial", "run_sst", "train_sst",
           "LAYERS", "StackedRegressionNet", "UCI_LAYERS", "UCI_SETS", "heteroscedastic_loss",
           "mc_predict", "plot_synthetic", "plot_uci", "run_map_em", "run_synthetic", "run_uci",
           "synthetic_data", "uci_splits", "spearman"]
