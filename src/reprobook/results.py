"""The results store: one JSON record per experiment run (or grid cell), written atomically,
and the checkpoints of long runs.

A record holds the values an experiment computed together with its config, profile, seed and
provenance (:mod:`reprobook.provenance`). A rerun with the same (experiment, config) reuses the
record; a grid stores one record per cell, so an interrupted grid resumes where it stopped.
Two roots are searched (:mod:`reprobook.paths`): the work root, written by every run, and the
committed ``results/``, the book's evidence (:mod:`reprobook.evidence`).
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch

from .paths import REPO_ROOT, work_root  # noqa: F401 (data.py and train.py import from here)
from . import provenance  # its code-hash functions are looked up at call time
from .provenance import chapter_of, config_hash, git_commit, hardware, package_versions

class CorruptRecord(RuntimeError):
    """A results file exists but cannot be read."""

def atomic_write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=1, sort_keys=True, default=float)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

def read_record(path: Path) -> dict:
    try:
        with open(path) as fh:
            rec = json.load(fh)
    except (OSError, json.JSONDecodeError) as err:
        raise CorruptRecord(f"results file {path} is unreadable ({err}); delete it and rerun "
                            "the experiment to recompute it") from err
    for key in ("experiment", "values", "config", "provenance"):
        if key not in rec:
            raise CorruptRecord(f"results file {path} lacks {key!r}; delete it and rerun")
    return rec

class Store:
    """Read and write records under a root folder: ``<root>/<profile>/<experiment>/<hash>.json``.

    ``read_roots`` are searched first and never written (the committed ``results/``): a record
    found there is the evidence, reused even when stale (and labelled so by the book) unless
    ``reuse_stale`` is off (default: off when ``$REPRO_RERUN_STALE`` is 1, as ``cli run
    --rerun-stale`` sets it), when it is recomputed into the work root; a stale record of the
    work root is always recomputed, since the code that wrote it has changed. Once this store
    has reused a stale record of a chapter, every record of that chapter it computes after it
    may be built from it (a summary of stale parts), so it is saved with the stale records'
    names under ``provenance.stale_inputs`` and counts as stale itself."""

    def __init__(self, root: Path | str | None = None, read_roots=(),
                 reuse_stale: bool | None = None):
        self.root = Path(root) if root is not None else work_root()
        self.read_roots = [Path(r) for r in read_roots]
        self.reuse_stale = (os.environ.get("REPRO_RERUN_STALE") != "1" if reuse_stale is None
                            else reuse_stale)
        self._stale_seen: dict[str, list[str]] = {}  # chapter -> stale records reused here

    def path(self, experiment: str, config: dict, profile: str) -> Path:
        return self.root / profile / experiment / f"{config_hash(config)}.json"

    def load(self, experiment: str, config: dict, profile: str) -> dict | None:
        p = self.path(experiment, config, profile)
        return read_record(p) if p.exists() else None

    def save(self, experiment: str, config: dict, profile: str, seed: int, values: dict,
             runtime_s: float, data_source: str | None = None,
             code: str | None = None, stale_inputs: list[str] | None = None) -> dict:
        """Write a record; ``code`` is the code hash taken when the computation started
        (default: now), so an edit made while it ran leaves the record stale."""
        rec = {
            "experiment": experiment, "config": config, "config_hash": config_hash(config),
            "profile": profile, "seed": seed, "values": values,
            "provenance": {
                "commit": git_commit(), "hardware": hardware(), "packages": package_versions(),
                "code_hash": code or provenance.experiment_code_hash(experiment),
                "runtime_s": round(runtime_s, 3), "data_source": data_source,
                "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
        }
        if stale_inputs:
            rec["provenance"]["stale_inputs"] = sorted(set(stale_inputs))
        atomic_write_json(self.path(experiment, config, profile), rec)
        return rec

    def find(self, experiment: str, config: dict, profile: str, quiet: bool = False):
        """The record this store would reuse for (experiment, config), or None: a committed
        one first (a stale one only while ``reuse_stale``), else a current one of the work
        root (a stale one there is recomputed, since the code that wrote it has changed)."""
        for root in (*self.read_roots, self.root):
            path = Store(root).path(experiment, config, profile)
            if not path.exists():
                continue
            rec = read_record(path)
            stale = provenance.is_stale(rec)
            if stale and root != self.root and not self.reuse_stale:
                continue  # a stale committed record: look for a current one, else recompute
            if stale and root == self.root:
                if not (quiet or os.environ.get("REPRO_QUIET")):
                    print(f"{path.name}: written by older code, recomputing {experiment}")
                return None
            rec["reused"], rec["stale"] = True, stale
            if stale:
                self._stale_seen.setdefault(chapter_of(experiment), []).append(
                    f"{experiment}/{path.name}")
            return rec
        return None

    def stale_seen(self, chapter: str) -> list[str]:
        """The stale records of ``chapter`` this store has reused so far."""
        return list(self._stale_seen.get(chapter, []))

    def run(self, experiment: str, config: dict, profile: str, seed: int,
            fn: Callable[[], dict], force: bool = False, data_source: str | None = None) -> dict:
        """Return the stored record for this config, or run ``fn()`` and store its values."""
        rec = None if force else self.find(experiment, config, profile)
        if rec is not None:
            return rec
        t0, code = time.perf_counter(), provenance.experiment_code_hash(experiment)
        out = fn()
        stale_inputs = self.stale_seen(chapter_of(experiment))
        if isinstance(out, tuple):  # (values, data_source)
            out, data_source = out
        rec = self.save(experiment, config, profile, seed, out, time.perf_counter() - t0,
                        data_source, code=code, stale_inputs=stale_inputs)
        rec["reused"] = False
        return rec

    def records(self, experiment: str | None = None, profile: str | None = None) -> list[dict]:
        """Every record under the root, optionally filtered; newest first."""
        pattern = f"{profile or '*'}/{experiment or '*'}/*.json"
        recs = [read_record(p) for p in self.root.glob(pattern)]
        return sorted(recs, key=lambda r: r["provenance"].get("finished", ""), reverse=True)

    def checkpoint_path(self, experiment: str, config: dict, profile: str) -> Path:
        """Where a long run keeps its resumable state (removed once the record is saved)."""
        return self.root / profile / experiment / f"{config_hash(config)}.ckpt.pt"

def save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)

def load_checkpoint(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a torn file from a killed run: start over, say so
        print(f"checkpoint {path} unreadable ({err}); starting that run from scratch")
        return None
