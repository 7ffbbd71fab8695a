"""The command line: ``python -m reprobook.htsr FILE`` prints the HT-SR metrics of every layer.

Martin & Mahoney (ICML 2019, arXiv 1901.08276); the report (Pratama 2019, §4) proposes
extending the analysis to other networks. One row per layer: alpha, MP fit, spikes, soft rank,
stable rank and phase (see :mod:`reprobook.htsr.analysis`).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from .analysis import analyze
from .pretrained import load_safetensors


def load_weights_file(path: str, trust: bool = False):
    """A model or state_dict from a file: PyTorch (.pt/.pth/.bin), .safetensors, .npy/.npz.

    PyTorch files are opened with ``weights_only=True``; a file holding a pickled module
    needs ``trust=True`` (only for files you trust: unpickling runs code)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if p.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a model file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".safetensors":
            return load_safetensors(p)
        if suffix == ".npy":
            return np.load(p, allow_pickle=False)
        if suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        with open(p, "rb") as fh:
            head = fh.read(4)
        if not (head.startswith(b"PK") or head[:1] == b"\x80"):  # torch zip or legacy pickle
            raise ValueError("not a PyTorch (.pt/.pth/.bin), .safetensors, .npy or .npz file")
        obj = torch.load(p, map_location="cpu", weights_only=not trust)
    except Exception as err:
        pickled = "weights only load failed" in str(err).lower()
        hint = " If it is a whole pickled model you trust, pass --trust." if pickled and not trust else ""
        first = re.sub(r"\x1b\[[0-9;]*m", "", str(err).splitlines()[0])[:200]  # no ANSI codes
        raise ValueError(f"{path} is not a readable model file ({type(err).__name__}: "
                         f"{first}).{hint}") from err
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), (dict, nn.Module)):
            obj = obj[key]
    return obj


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m reprobook.htsr",
        description="Heavy-tailed self-regularization metrics of every layer of a saved model "
                    "(one row per layer: alpha, MP fit, spikes, soft rank, stable rank, phase).")
    ap.add_argument("file", help="PyTorch model/state_dict (.pt/.pth/.bin), .safetensors, .npy or .npz")
    ap.add_argument("--format", choices=("table", "csv", "json"), default="table")
    ap.add_argument("--conv", choices=("pool", "reshape"), default="pool",
                    help="conv layers: pool the kernel slices' ESDs (default) or reshape to 2-D")
    ap.add_argument("--normalize", action="store_true", help="eigenvalues of W^T W / N")
    ap.add_argument("--layers", help="regular expression selecting layer names")
    ap.add_argument("--min-evals", type=int, default=10)
    ap.add_argument("--trust", action="store_true",
                    help="allow unpickling a whole model object (runs code from the file)")
    args = ap.parse_args(argv)
    try:
        obj = load_weights_file(args.file, trust=args.trust)
        df = analyze(obj, conv=args.conv, normalize=args.normalize, min_evals=args.min_evals,
                     layers=args.layers)
    except (OSError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if df.empty:
        print(f"error: {args.file} holds no layer weights with >= {args.min_evals} eigenvalues"
              f"{' matching ' + repr(args.layers) if args.layers else ''}", file=sys.stderr)
        return 2
    if args.format == "csv":
        df.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        print(json.dumps({"units": df.attrs["units"], "skipped": df.attrs["skipped"],
                          "layers": json.loads(df.to_json(orient="records"))}, indent=1))
    else:
        cols = ["layer", "shape", "Q", "alpha", "xmin", "D", "lambda_plus", "sigma_mp", "spikes",
                "soft_rank", "stable_rank", "phase"]
        with pd.option_context("display.width", 200, "display.max_rows", None):
            print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print(f"\neigenvalues of {df.attrs['units']}; skipped (too few eigenvalues): "
              f"{len(df.attrs['skipped'])}")
    return 0
