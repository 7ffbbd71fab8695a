"""What a record says about how it was made: its config hash, the code hash of the code that
computed it (and so whether it is stale), the commit, the hardware and the package versions."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

from .paths import REPO_ROOT

PACKAGES = ("torch", "torchvision", "numpy", "scipy", "pandas", "matplotlib", "powerlaw",
            "papermill", "jupyter-book")

# Code whose change can move a chapter-hashed experiment's numbers (experiments not on the
# registry); a registered experiment hashes its own modules (reprobook.registry).
SHARED_CODE = ("train.py", "data.py", "profiles.py")

def chapter_of(experiment: str) -> str:
    """The chapter an experiment belongs to, from its name's prefix (``gsc_noise`` -> gsc)."""
    from .registry import chapter_of as _of
    return _of(experiment)

def code_hash(chapter: str) -> str:
    """A hash of the code that produces a chapter's numbers: its package (or module) and the
    shared machinery (:data:`SHARED_CODE`), read as syntax trees without docstrings
    (:func:`reprobook.registry.code_text`). A record whose hash differs is *stale*."""
    src = Path(__file__).resolve().parent
    files = sorted(f for f in (src / chapter).rglob("*.py") if not f.name.startswith("exp_")) \
        if (src / chapter).is_dir() else [src / f"{chapter}.py"]  # exp_*: hashed per experiment
    from .registry import code_text
    h = hashlib.sha256()
    for f in [*files, *(src / name for name in SHARED_CODE)]:
        if f.exists():
            h.update(str(f.relative_to(src)).encode() + b"\0" + code_text(f))
    return h.hexdigest()[:16]

def experiment_code_hash(experiment: str) -> str:
    """The code hash of a record's experiment: the files a registered experiment declares
    (:meth:`reprobook.registry.Experiment.code_hash`), else its chapter's whole package."""
    from .registry import find
    exp = find(experiment)
    return exp.code_hash() if exp is not None else code_hash(chapter_of(experiment))

def is_stale(record: dict) -> bool:
    """True when the code that wrote ``record`` has changed since (or the record predates
    code hashes), or when it was computed from a stale record (``stale_inputs``)."""
    prov = record.get("provenance", {})
    return bool(prov.get("stale_inputs")) or \
        prov.get("code_hash") != experiment_code_hash(record["experiment"])

def config_hash(config: dict) -> str:
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]

def git_commit() -> str:
    """HEAD of the checkout, ``+dirty`` with uncommitted changes to tracked files. A copied
    tree (a lent GPU machine, a cluster worker) names the commit it was copied from in
    ``$REPRO_COMMIT``, which wins: such a copy's own ``.git`` can be older than its files (seen
    on a lent GPU machine). The code hash still ties each record to the code that ran."""
    if os.environ.get("REPRO_COMMIT"):
        return os.environ["REPRO_COMMIT"]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha or "unknown") + ("+dirty" if dirty else "")

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"

def hardware() -> dict:
    info = {"machine": platform.machine(), "processor": platform.processor() or "unknown",
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_model": _cpu_model()}
    if info["cuda"]:
        info["gpu"] = torch.cuda.get_device_name(0)
    return info

def package_versions(names=PACKAGES) -> dict:
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
