"""Experiment ``dropmax_mnist_variants``: softmax and DropMax on two of the MNIST variations
(Larochelle et al. 2007) with 1K training images, test error and ECE (the DropMax NeurIPS
poster's reliability table, haebeom-lee/dropmax ``dropmax_poster.pdf``).

The variations are not in this machine's offline data: the experiment reads them from
``$REPRO_DATA/mnist_variations/`` when they are there (the ``.amat`` files of the original
archives, listed in the data root's ``MD5SUMS``) and otherwise reports in one line which file
is missing; its claims then read *not run*. Each cell is one (variant, model, seed) run of
:func:`train_one` under the official protocol, on the first 100 images of each class."""
from __future__ import annotations

import functools

import numpy as np
import torch

from .. import registry
from ..data import MissingData, require
from . import PROFILES as _CHAPTER
from .experiments import SIZES, _slice, mnist_split, train_one

# variant -> (archive folder, train file, test file) of the MNIST variations
VARIANTS = {
    "rb": ("mnist_background_random", "mnist_background_random_train.amat",
           "mnist_background_random_test.amat"),
    "br": ("mnist_rotation_back_image_new",
           "mnist_all_background_images_rotation_normalized_train_valid.amat",
           "mnist_all_background_images_rotation_normalized_test.amat"),
}
MODELS = {"softmax": "softmax", "dropmax": "adaptive-class"}  # ledger name -> our model


def read_amat(path) -> tuple[torch.Tensor, torch.Tensor]:
    """An ``.amat`` file: one image per line, 784 pixel values in [0, 1] then the label.
    Returns images (N, 1, 28, 28) float32 and labels (N,) int64, as stored."""
    arr = np.loadtxt(path, dtype=np.float32, ndmin=2)
    if arr.shape[1] != 785:
        raise ValueError(f"{path}: {arr.shape[1]} columns, expected 784 pixels and a label")
    return torch.from_numpy(arr[:, :784]).reshape(-1, 1, 28, 28), torch.from_numpy(arr[:, 784]).long()


@functools.cache
def load_variant(name: str) -> dict:
    """Train and test arrays of variant ``name`` (``rb`` or ``br``), verified by ``require``."""
    folder, train, test = VARIANTS[name]
    try:
        paths = [require(f"mnist_variations/{folder}/{f}") for f in (train, test)]
    except MissingData as err:
        raise MissingData(f"MNIST variation {name!r} is not in the data root: {err.args[0].split('.amat')[0]}"
                          f".amat is missing (unzip {folder}.zip of the MNIST variations there and "
                          "list its files' md5 in MD5SUMS)") from None
    (x, y), (xt, yt) = (read_amat(p) for p in paths)
    return {"x_train": x, "y_train": y, "x_test": xt, "y_test": yt,
            "source": f"MNIST variations, {folder} (.amat)"}


def _profile(name: str, seeds: list, epochs: int, **kw) -> dict:
    base = {k: v for k, v in _CHAPTER[name]["dropmax_mnist"].items() if k not in ("sizes", "seeds")}
    return {**base, "variants": list(VARIANTS), "seeds": seeds, "epochs": epochs, **kw}


PROFILES = {"small": _profile("small", [0], 5, test_n=2000),
            "medium": _profile("medium", [0, 1, 2], 200),
            "full": _profile("full", [0, 1, 2], 200)}


def cells(cfg: dict) -> list[dict]:
    base = {k: v for k, v in cfg.items() if k not in ("variants", "seeds")}
    return [{**base, "variant": v, "model": m, "seed": s}
            for v in cfg["variants"] for m in MODELS for s in cfg["seeds"]]


def cell(cfg: dict, ctx) -> tuple[dict, str]:
    sp = mnist_split(SIZES["1k"], load_variant(cfg["variant"]))  # 100 images per class
    return train_one(MODELS[cfg["model"]], sp, cfg, device=ctx.device), sp["source"]


def summarise(cell_values: list, cfg: dict) -> dict:
    """``<variant>-<model>-err`` and ``-ece``: medians over seeds (the poster's keys)."""
    runs: dict = {}
    for c, v in cell_values:
        runs.setdefault((c["variant"], c["model"]), []).append(v)
    out = {"seeds": len(cfg["seeds"]), "epochs": cfg["epochs"]}
    for (variant, model), vs in runs.items():
        out[f"{variant}-{model}-err"] = float(np.median([v["error"]["approx"] for v in vs]))
        out[f"{variant}-{model}-ece"] = float(np.median([v["ece"] for v in vs]))
    return out


registry.register(registry.Experiment(
    name="dropmax_mnist_variants", chapter="dropmax", compute=cell, cells=cells,
    cell_name="dropmax_variant_run", summarise=summarise, profiles=PROFILES,
    modules=("dropmax/kernels.py", "dropmax/models.py", "dropmax/experiments.py",
             "dropmax/exp_variants.py"),
    outputs=("seeds", "epochs", *(f"{v}-{m}-{k}" for v in VARIANTS for m in MODELS
                                  for k in ("err", "ece"))),
    missing=(MissingData,), slice=_slice))
