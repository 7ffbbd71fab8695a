"""The AutoLoss chapter's experiments (Xu et al., ICLR 2019; report of Kothari, Liu & Lavrov).

``autoloss_regression``: paper Table 1's regression row, the lambda sweep of Fig. 1, the feature
ablation of Table 3 and the sensitivity study (controller seeds, reward constant, clip, shaping,
baseline decay, controller learning rate, temperature, hidden 0/16, feature normalisation) on
the official data (``gen_reg_data.py``: 5 partitions of 200 rows) with the official protocol
(``config/reg``, ``trainer.py``). ``autoloss_classification``: Table 1's classification row on the
official ``gen_cls_data.py`` data (``config/cls``), the report's variants (sign error, no
baseline) and frozen random controllers with raw vs normalised features (report §6.1).
Baselines: W/O L1, DGS (lambda grid picked on valid_task; the test-picked lambda is reported and
labelled), S1-S3 (threshold picked on valid_task), the 1:1 alternation. Every method is scored on
the same test rows; differences to AutoLoss come with paired bootstrap intervals over those rows.
Registered with :mod:`reprobook.registry` (with ``autoloss_gan`` of :mod:`.gan`); records hold
raw numbers (means, paired intervals, spreads) and the ledger judges them.
"""
from __future__ import annotations

import contextlib
import time

import numpy as np
import torch

from .classification import OFFICIAL as CLS_OFFICIAL, ClassificationLanes, cls_partitions
from .engine import ControllerBank, feature_scale, run_fixed, test_controllers, \
    train_controllers
from .kernels import make_classification_data, make_regression_data
from .regression import OFFICIAL, RegressionLanes, partitions
from .sensitivity import SETTINGS, summarise, weights_for
from ..registry import derive_seed
from ..stats import paired_bootstrap

RIVALS = ["w-o-l1", "alternate", "dgs", "s1", "s2", "s3"]

REGRESSION = {
    "small": {"steps": 2000, "trials": 3, "dgs_lams": np.logspace(-3, 1, 9).tolist(),
              "thresholds": [-0.5, 0.0, 0.1, 0.5, 2.0], "ctrl_seeds": [0, 1, 2],
              "episodes": 3, "episode_steps": 2000, "sweep_lams": [0.02, 2.0],
              "sensitivity": True, "report_sign": 3, "n_boot": 2000},
    # medium (<= 90 min of a 2-core CPU with the rest of the chapter): the baselines at the
    # official length and 10 trials (Table 1's fixed schedules, Fig. 1's lambda sweep); the
    # controllers train 5 episodes of <= 5,000 steps (the official 400 x 20,000 needs `full`)
    "medium": {"steps": 20000, "trials": 10, "dgs_lams": np.logspace(-3, 1, 13).tolist(),
               "thresholds": [-0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.0],
               "ctrl_seeds": [0, 1, 2], "episodes": 5, "episode_steps": 5000,
               "sweep_lams": [0.02, 2.0], "sensitivity": True, "report_sign": 3,
               "n_boot": 5000},
    "full": {"steps": 20000, "trials": 10, "dgs_lams": np.logspace(-3, 1, 50).tolist(),
             "thresholds": [-0.75, -0.5, -0.25, 0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0],
             "ctrl_seeds": [0, 1, 2, 3, 4], "episodes": 400, "episode_steps": 20000,
             "sweep_lams": [0.001, 0.01, 0.1, 1.0, 10.0], "sensitivity": True, "report_sign": 5,
             "n_boot": 10000},
}
CLASSIFICATION = {
    "small": {"steps": 1000, "trials": 2, "dgs_lams": np.logspace(-5, -1, 5).tolist(),
              "thresholds": [-0.5, 0.0, 0.5, 2.0], "ctrl_seeds": [0, 1, 2],
              "episodes": 4, "episode_steps": 1000, "sweep_lams": [0.2],
              "variants": 2, "frozen": 8, "frozen_trials": 1, "n_boot": 2000,
              "transfer_seeds": [2, 3, 4]},
    "medium": {"steps": 2000, "trials": 10, "dgs_lams": np.logspace(-6, -1, 13).tolist(),
               "thresholds": [-0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.0],
               "ctrl_seeds": [0, 1, 2], "episodes": 20, "episode_steps": 2000,
               "sweep_lams": [0.2], "variants": 3, "frozen": 50, "frozen_trials": 2,
               "n_boot": 5000, "transfer_seeds": [2, 3, 4]},
    "full": {"steps": 2000, "trials": 10, "dgs_lams": np.logspace(-6, -1, 50).tolist(),
             "thresholds": [-0.75, -0.5, -0.25, 0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0],
             "ctrl_seeds": [0, 1, 2, 3, 4], "episodes": 2000, "episode_steps": 2000,
             "sweep_lams": [0.0002, 0.002, 0.2], "variants": 5, "frozen": 100,
             "frozen_trials": 3, "n_boot": 10000, "transfer_seeds": [2, 3, 4]},
}


@contextlib.contextmanager
def one_thread():
    """Run with one intra-op thread: the lockstep programs are many small tensor ops, for which
    a second thread costs more in synchronisation than it gives (on a shared 2-core machine
    the chapter ran about twice as long with two threads); the old count is restored."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _baselines(task, parts, s, seed):
    """All fixed schedules as lanes of one lockstep program: (method, lambda, threshold) x
    trials, plus W/O L1 trained on train_task + valid_task (the paper's wording)."""
    lam0 = task.OFFICIAL["lam"]
    specs = [("w-o-l1", 0, lam0, 0.0), ("alternate", 2, lam0, 0.0)]
    specs += [(f"dgs@{lam:.4g}", 1, lam, 0.0) for lam in s["dgs_lams"]]
    for k, kind in (("s1", 3), ("s2", 4), ("s3", 5)):
        specs += [(f"{k}@{th:g}", kind, lam0, th) for th in s["thresholds"]]
    T, runs = s["trials"], {}
    for group in ([sp for sp in specs if sp[1] not in (3, 4)],  # two programs: S1 and S2 read
                  [sp for sp in specs if sp[1] in (3, 4)]):   # the validation set every step
        out = run_fixed(task, parts, [sp[2] for sp in group for _ in range(T)],
                        [sp[1] for sp in group for _ in range(T)],
                        [sp[3] for sp in group for _ in range(T)], seed=seed,
                        max_steps=s["steps"])
        n = out["test"].shape[-1]
        runs.update({sp[0]: {"test": out["test"].view(len(group), T, n)[i],
                             "best_valid": out["best_valid"].view(len(group), T)[i],
                             "l1_fraction": out["l1_fraction"].view(len(group), T)[i]}
                     for i, sp in enumerate(group)})
    both = {**parts, "train_task": tuple(torch.cat([a, b]) for a, b in
                                         zip(parts["train_task"], parts["valid_task"]))}
    runs["w-o-l1-trainval"] = run_fixed(task, both, [lam0] * T, [0] * T, [0.0] * T, seed=seed,
                                        max_steps=s["steps"])
    return runs


def _pick(runs: dict, prefix: str, by: str, higher_better: bool):
    """The grid point of ``prefix@...`` with the best mean best-valid (by='valid') or the lowest
    mean test score (by='test')."""
    keys = [k for k in runs if k.startswith(prefix + "@")]
    if by == "valid":
        score = {k: float(runs[k]["best_valid"].mean()) * (-1 if higher_better else 1)
                 for k in keys}
    else:
        score = {k: float(runs[k]["test"].mean()) for k in keys}
    return min(score, key=score.get)


def _controllers(task, parts, lanes: list, s: dict, seed: int, weights) -> tuple:
    """Train one controller per lane spec (dicts of per-lane settings) and test each on
    ``trials`` fresh task models. Returns (trained, tested)."""
    keys = ("hidden", "temperature", "lr_ctrl", "reward_c", "adv_clip", "baseline_decay")
    per = {k: [ls.get(k, task.OFFICIAL[k]) for ls in lanes] for k in keys}
    lam = [ls["lam"] for ls in lanes]
    trained = train_controllers(
        task, parts, lam, [ls["seed"] for ls in lanes], episodes=s["episodes"],
        max_steps=s["episode_steps"], shaping=[ls.get("shaping", True) for ls in lanes],
        direction=[ls.get("direction", 1.0) for ls in lanes],
        use_baseline=[ls.get("use_baseline", True) for ls in lanes], feature_weight=weights,
        task_seed=derive_seed(seed, "train-controllers"), **per)
    tested = test_controllers(task, parts, trained["controller"], lam, s["trials"],
                              derive_seed(seed, "test-controllers"),
                              s["steps"], feature_weight=weights)
    return trained, tested


def _table(runs: dict, variants: list, higher_better: bool, n_boot: int, seed: int) -> tuple:
    """Pick DGS and S1-S3 on valid_task; per-row test scores (mean over trials) per method and
    paired intervals of AutoLoss minus each method."""
    picked = {"dgs": _pick(runs, "dgs", "valid", higher_better),
              "dgs-test-picked": _pick(runs, "dgs", "test", higher_better)}
    for k in ("s1", "s2", "s3"):
        picked[k] = _pick(runs, k, "valid", higher_better)
    table = {"w-o-l1": "w-o-l1", "w-o-l1-trainval": "w-o-l1-trainval",
             "alternate": "alternate", **picked, **{v: v for v in variants}}
    per_row = {m: runs[k]["test"].mean(0) for m, k in table.items()}
    vs = {}
    for m in table:
        if m != "autoloss":
            mean, lo, hi = paired_bootstrap(per_row["autoloss"].cpu(), per_row[m].cpu(), n_boot, seed)
            vs[m] = {"diff": mean, "lo": lo, "hi": hi}
    return table, per_row, picked, vs


def _variant_runs(runs, lanes, tested):
    for name in sorted({ls["name"] for ls in lanes if ls["name"] != "sweep"}):
        idx = [i for i, ls in enumerate(lanes) if ls["name"] == name]
        runs[name] = {k: tested[k][idx].flatten(0, 1) for k in ("test", "best_valid",
                                                                 "l1_fraction")}


def _sweep(lanes, tested) -> dict:
    """AutoLoss's mean test score per controller at each lambda (official lanes and sweep)."""
    out = {}
    for i, ls in enumerate(lanes):
        if ls["name"] in ("autoloss", "sweep"):
            out.setdefault(f"{ls['lam']:.4g}", []).append(float(tested["test"][i].mean()))
    return out


def _history(trained, lanes):
    hist = trained["history"]
    return {"lanes": [{k: (v if not isinstance(v, float) or np.isfinite(v) else str(v))
                       for k, v in ls.items()} for ls in lanes],
            "episode_best_valid": hist["best_valid"], "episode_steps": hist["steps"],
            "episode_l1_fraction": hist["l1_fraction"]}


def regression_experiment(s: dict, seed: int = 0) -> dict:
    """Compute every number of the regression row (see the module docstring)."""
    t0 = time.perf_counter()
    data = make_regression_data()
    parts = partitions(data)
    noise2 = ((data["y"] - data["x"] @ data["w"]) ** 2).view(5, -1).mean(1)
    floor = float(noise2[4])  # the test partition's realised noise floor
    runs = _baselines(RegressionLanes, parts, s, seed)
    t_base = time.perf_counter() - t0
    lam0, seeds = OFFICIAL["lam"], s["ctrl_seeds"]
    settings = SETTINGS if s["sensitivity"] else {"official": {}, "no-shaping": {"shaping": False}}
    lanes = [{"name": "setting:" + name, "setting": name, "seed": cs, "lam": lam0, **over}
             for name, over in settings.items() for cs in seeds]
    lanes += [{"name": "sweep", "seed": seeds[0], "lam": lam} for lam in s["sweep_lams"]]
    lanes += [{"name": "autoloss-report-sign", "seed": cs, "lam": lam0, "direction": -1.0}
              for cs in seeds[:s["report_sign"]]]
    scale = feature_scale(RegressionLanes, parts, 500)
    weights = weights_for(lanes, scale, RegressionLanes.n_features)
    trained, tested = _controllers(RegressionLanes, parts, lanes, s, seed, weights)
    t_train = time.perf_counter() - t0 - t_base
    for ls in lanes:  # the official setting is Table 1's AutoLoss, no-shaping its terminal-only
        ls["name"] = {"setting:official": "autoloss",
                      "setting:no-shaping": "autoloss-terminal-only"}.get(ls["name"], ls["name"])
    _variant_runs(runs, lanes, tested)
    variants = sorted({ls["name"] for ls in lanes} - {"sweep"})
    variants = [v for v in variants if not v.startswith("setting:")]
    table, per_row, picked, vs = _table(runs, variants, False, s["n_boot"], seed)
    raw = {m: float(e.mean()) for m, e in per_row.items()}
    values = {
        "noise_floor_test": floor, "noise_floor_partitions": noise2.tolist(),
        "mse_raw": raw, "mse_minus_floor": {m: v - floor for m, v in raw.items()},
        "mse_trials": {m: runs[k]["test"].mean(-1).tolist() for m, k in table.items()},
        "picked": picked, "l1_fraction": {m: float(runs[k]["l1_fraction"].mean())
                                          for m, k in table.items()},
        "vs_autoloss": vs, "dgs_sweep": {}, "thresholds": {}, "autoloss_sweep": {},
    }
    values["vs_hi"] = {m: vs[m]["hi"] for m in RIVALS}  # AutoLoss minus each rival: CI top
    for lam_ in s["dgs_lams"]:
        r = runs[f"dgs@{lam_:.4g}"]
        values["dgs_sweep"][f"{lam_:.4g}"] = {"valid": float(r["best_valid"].mean()),
                                              "test": float(r["test"].mean())}
    for k in ("s1", "s2", "s3"):
        values["thresholds"][k] = {str(th): {"valid": float(runs[f"{k}@{th:g}"]["best_valid"].mean()),
                                             "test": float(runs[f"{k}@{th:g}"]["test"].mean())}
                                   for th in s["thresholds"]}
    values["autoloss_sweep"] = _sweep(lanes, tested)
    sweep = {k: float(np.mean(v)) for k, v in values["autoloss_sweep"].items()}
    values["autoloss_lambda_spread"] = max(sweep.values()) - min(sweep.values())
    _, values["w_o_l1_minus_dgs_lo"], _ = paired_bootstrap(per_row["w-o-l1"].cpu(), per_row["dgs"].cpu(),
                                                           s["n_boot"], seed)
    best_base = min(RIVALS, key=lambda m: raw[m])
    values["sensitivity"] = summarise(lanes, tested["test"].mean(-1), raw[best_base], best_base,
                                      len(seeds))
    values["ablation"] = {"mse_raw": values["sensitivity"].pop("ablation")}
    values["ablation"]["mse_minus_floor"] = {k: v - floor for k, v in
                                             values["ablation"]["mse_raw"].items()}
    values["feature_scale"] = scale.tolist()
    values["controller"] = _history(trained, lanes)
    values["controller"]["per_lane_test"] = tested["test"].mean(-1).mean(-1).tolist()
    values["runtime_s"] = {"baselines": t_base, "controller_training": t_train,
                           "test": time.perf_counter() - t0 - t_base - t_train}
    train_steps = int(sum(max(ep) for ep in trained["history"]["steps"]))
    values["lockstep"] = {"controller_lanes": len(lanes), "training_steps": train_steps,
                          "training_ms_per_step": 1e3 * t_train / max(train_steps, 1),
                          "baseline_ms_per_step": 1e3 * t_base / (2 * s["steps"])}
    values["n_ctrl_seeds"] = len(seeds)
    return values


def _transfer(task, trained, lanes: list, s: dict, seed: int) -> dict:
    """Paper Table 2: the controllers trained on data set 0 (``gen_cls_data.py``, seed 1) guide
    fresh task models on other data sets from the same generator (seeds ``transfer_seeds``;
    the paper does not say how its three were made), beside W/O L1 and DGS (lambda picked on
    each set's valid_task partition) trained there. Errors are means over controllers x trials."""
    lam0, T = CLS_OFFICIAL["lam"], s["trials"]
    idx = [i for i, ls in enumerate(lanes) if ls["name"] == "autoloss"]
    out = {"data_seeds": list(s["transfer_seeds"]), "error": {}, "dgs_picked": {}}
    for k, data_seed in enumerate(s["transfer_seeds"], start=1):
        parts = cls_partitions(make_classification_data(seed=data_seed))
        specs = [("w-o-l1", 0, lam0)] + [(f"dgs@{lam:.4g}", 1, lam) for lam in s["dgs_lams"]]
        fixed = run_fixed(task, parts, [sp[2] for sp in specs for _ in range(T)],
                          [sp[1] for sp in specs for _ in range(T)], [0.0] * (len(specs) * T),
                          seed=derive_seed(seed, "transfer", k), max_steps=s["steps"])
        n = fixed["test"].shape[-1]
        test = fixed["test"].view(len(specs), T, n).mean((1, 2))
        valid = fixed["best_valid"].view(len(specs), T).mean(1)
        best = 1 + int(valid[1:].argmax())  # validation accuracy: higher is better
        auto = test_controllers(task, parts, trained["controller"], [ls["lam"] for ls in lanes],
                                T, derive_seed(seed, "transfer-controllers", k),
                                s["steps"])["test"][idx]
        out["error"][str(k)] = {"w-o-l1": float(test[0]), "dgs": float(test[best]),
                                "autoloss": float(auto.mean())}
        out["dgs_picked"][str(k)] = specs[best][0]
    return out


def classification_experiment(s: dict, seed: int = 0) -> dict:
    """Every number of the classification row, the report's variants and the frozen
    random controllers (raw vs normalised features)."""
    t0 = time.perf_counter()
    parts = cls_partitions(make_classification_data())
    task = ClassificationLanes
    runs = _baselines(task, parts, s, seed)
    t_base = time.perf_counter() - t0
    lam0, seeds, nv = CLS_OFFICIAL["lam"], s["ctrl_seeds"], s["variants"]
    lanes = [{"name": "autoloss", "seed": cs, "lam": lam0} for cs in seeds]
    lanes += [{"name": "sweep", "seed": seeds[0], "lam": lam} for lam in s["sweep_lams"]]
    lanes += [{"name": "autoloss-terminal-only", "seed": cs, "lam": lam0, "shaping": False}
              for cs in seeds[:nv]]
    lanes += [{"name": "autoloss-report-sign", "seed": cs, "lam": lam0, "direction": -1.0}
              for cs in seeds[:nv]]
    lanes += [{"name": "autoloss-no-baseline", "seed": cs, "lam": lam0, "use_baseline": False}
              for cs in seeds[:nv]]
    trained, tested = _controllers(task, parts, lanes, s, seed, None)
    t_train = time.perf_counter() - t0 - t_base
    _variant_runs(runs, lanes, tested)
    variants = sorted({ls["name"] for ls in lanes} - {"sweep"})
    table, per_row, picked, vs = _table(runs, variants, True, s["n_boot"], seed)
    err = {m: float(e.mean()) for m, e in per_row.items()}
    values = {"error": err, "acc": {m: 1 - v for m, v in err.items()},
              "error_trials": {m: runs[k]["test"].mean(-1).tolist() for m, k in table.items()},
              "picked": picked, "vs_autoloss": vs,
              "l1_fraction": {m: float(runs[k]["l1_fraction"].mean()) for m, k in table.items()},
              "dgs_sweep": {f"{lam:.4g}": {"valid_acc": float(runs[f"dgs@{lam:.4g}"]["best_valid"].mean()),
                                           "test_error": float(runs[f"dgs@{lam:.4g}"]["test"].mean())}
                            for lam in s["dgs_lams"]}}
    values["vs_hi"] = {m: vs[m]["hi"] for m in RIVALS}  # AutoLoss minus each rival: CI top
    _, values["w_o_l1_minus_dgs_lo"], _ = paired_bootstrap(per_row["w-o-l1"].cpu(), per_row["dgs"].cpu(),
                                                           s["n_boot"], seed)
    # report §4: the hand-crafted S1 against joint minimisation (DGS), paired on the test rows
    s1 = paired_bootstrap(per_row["s1"].cpu(), per_row["dgs"].cpu(), s["n_boot"], seed)
    values["s1_minus_dgs"] = dict(zip(("mean", "lo", "hi"), s1))
    values["autoloss_sweep"] = _sweep(lanes, tested)
    values["controller"] = _history(trained, lanes)
    t_tr = time.perf_counter()
    values["transfer"] = _transfer(task, trained, lanes, s, seed)
    t_tr = time.perf_counter() - t_tr
    # frozen random controllers (report §6.1): untrained, raw vs normalised features
    t1 = time.perf_counter()
    scale = feature_scale(task, parts, 300)
    K = s["frozen"]
    bank = ControllerBank(task.n_features, CLS_OFFICIAL["hidden"], CLS_OFFICIAL["temperature"],
                          [derive_seed(seed, "frozen", i) for i in range(K)] * 2)
    w = torch.cat([torch.ones(K, task.n_features), (1 / scale).expand(K, -1)])
    frozen = test_controllers(task, parts, bank, [lam0] * (2 * K), s["frozen_trials"],
                              derive_seed(seed, "frozen-test"), s["steps"], feature_weight=w)
    acc = 1 - frozen["test"].mean(-1)  # (2K, trials)
    values["frozen"] = {}
    for j, name in enumerate(("raw", "normalised")):
        a = acc[j * K:(j + 1) * K].flatten()
        values["frozen"][name] = {"acc": a.tolist(), "min": float(a.min()), "max": float(a.max()),
                                  "range": float(a.max() - a.min()),
                                  "q25": float(a.quantile(.25)), "q75": float(a.quantile(.75)),
                                  "l1_fraction": float(frozen["l1_fraction"][j * K:(j + 1) * K].mean())}
    values["frozen_range_raw_minus_normalised"] = (values["frozen"]["raw"]["range"]
                                                   - values["frozen"]["normalised"]["range"])
    values["feature_scale"] = scale.tolist()
    values["runtime_s"] = {"baselines": t_base, "controller_training": t_train,
                           "test": t1 - t0 - t_base - t_train - t_tr, "transfer": t_tr,
                           "frozen": time.perf_counter() - t1}
    values["n_ctrl_seeds"] = len(seeds)
    return values


# ----------------------------------------------------------------------------- the registry
def regression(cfg: dict, ctx) -> tuple[dict, str]:
    """Experiment ``autoloss_regression`` (:func:`regression_experiment`), on one thread."""
    with one_thread():
        return (regression_experiment(cfg, ctx.seed_for("autoloss_regression")),
                "synthetic, dataio/gen_reg_data.py semantics (seed 1)")


def classification(cfg: dict, ctx) -> tuple[dict, str]:
    """Experiment ``autoloss_classification`` (:func:`classification_experiment`)."""
    with one_thread():
        return (classification_experiment(cfg, ctx.seed_for("autoloss_classification")),
                "synthetic, dataio/gen_cls_data.py semantics (sklearn make_classification, seed 1)")


from .. import registry  # noqa: E402
from .gan import gan, gan_slice  # noqa: E402


def _slice(cfg: dict) -> list[tuple[dict, float]]:
    """Two short runs, a tenth of every run's steps with one and with two controller episodes:
    the time is about linear in the steps and in the episodes, so the whole run costs
    10 (t1 + (E - 1)(t2 - t1)) = 10 ((2 - E) t1 + (E - 1) t2)."""
    short = {**cfg, "steps": cfg["steps"] // 10, "episode_steps": cfg["episode_steps"] // 10}
    e = cfg["episodes"]
    return [({**short, "episodes": 1}, 10.0 * (2 - e)), ({**short, "episodes": 2}, 10.0 * (e - 1))]


_CORE = ("autoloss/engine.py", "autoloss/kernels.py", "autoloss/experiments.py",
         "autoloss/sensitivity.py", "autoloss/regression.py", "autoloss/classification.py")
registry.register(registry.Experiment(
    name="autoloss_regression", chapter="autoloss", compute=regression, modules=_CORE, slice=_slice,
    outputs=("noise_floor_test", "noise_floor_partitions", "mse_raw", "mse_minus_floor",
             "mse_trials", "picked", "l1_fraction", "vs_autoloss", "vs_hi", "dgs_sweep",
             "thresholds", "autoloss_sweep", "autoloss_lambda_spread", "w_o_l1_minus_dgs_lo",
             "sensitivity", "ablation", "feature_scale", "controller", "runtime_s", "lockstep",
             "n_ctrl_seeds")))
registry.register(registry.Experiment(
    name="autoloss_classification", chapter="autoloss", compute=classification, modules=_CORE,
    slice=_slice,
    outputs=("error", "acc", "error_trials", "picked", "vs_autoloss", "vs_hi", "l1_fraction",
             "dgs_sweep", "w_o_l1_minus_dgs_lo", "s1_minus_dgs", "autoloss_sweep", "controller",
             "transfer",
             "frozen", "frozen_range_raw_minus_normalised", "feature_scale", "runtime_s",
             "n_ctrl_seeds")))
registry.register(registry.Experiment(
    name="autoloss_gan", chapter="autoloss", compute=gan, slice=gan_slice,
    modules=("autoloss/gan.py", "autoloss/kernels.py", "autoloss/experiments.py"),
    outputs=("is", "is_best", "curves", "curve_steps", "d_fraction", "threshold_is",
             "steps_to_threshold", "epochs_to_threshold", "reached", "best_fixed",
             "is_minus_1_1", "best_other_minus_1_1", "speedup_vs_1_1",
             "epochs_1_7_behind_autoloss", "autoloss_rho", "autoloss_is_gain",
             "autoloss_minus_no_baseline", "classifier", "controller", "runtime_s")))
