"""The results store: one JSON record per experiment run, written atomically.

A record holds the values an experiment computed together with its config, profile,
seed and provenance (git commit, hardware, package versions, runtime, data source).
A rerun with the same (experiment, config) reuses the record unless ``force=True``;
a grid stores one record per cell, so an interrupted grid resumes where it stopped.

Two roots are searched:
- the *work* root (``$REPRO_RESULTS`` or ``<repo>/_build/results``), written by every run;
- the committed root ``<repo>/results`` holding full-profile records, which the book
  shows (labelled with their provenance) when present.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Callable

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("torch", "torchvision", "numpy", "scipy", "pandas", "matplotlib", "powerlaw",
            "papermill", "jupyter-book")


# Code whose change can move any chapter's numbers; a chapter's own package is added to it.
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


class CorruptRecord(RuntimeError):
    """A results file exists but cannot be read."""


def work_root() -> Path:
    return Path(os.environ.get("REPRO_RESULTS", REPO_ROOT / "_build" / "results"))


def committed_root() -> Path:
    return REPO_ROOT / "results"


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
                "code_hash": code or experiment_code_hash(experiment),
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
            stale = is_stale(rec)
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
        t0, code = time.perf_counter(), experiment_code_hash(experiment)
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


PROFILE_ORDER = ("small", "medium", "full")


def evidence_enabled() -> bool:
    """Committed records are the book's evidence unless ``$REPRO_EVIDENCE`` is ``none``: then
    every chapter computes its own run into the work root (what nbval does in CI)."""
    return os.environ.get("REPRO_EVIDENCE", "committed").lower() != "none"


def evidence_profile(chapter: str, requested: str, seed: int = 0) -> str:
    """The profile whose records a chapter shows: the largest one larger than ``requested``
    with a complete committed run of this chapter (:func:`manifest_path`) at the same
    ``seed``, else ``requested`` itself. ``requested`` must be a known profile (checked by the
    caller). A run asked for at another seed, or with evidence switched off
    (:func:`evidence_enabled`), is this build's own run at ``requested``: a build never
    starts a larger profile than the one asked for."""
    if not evidence_enabled() or requested not in PROFILE_ORDER:
        return requested
    for prof in reversed(PROFILE_ORDER[PROFILE_ORDER.index(requested) + 1:]):
        run = committed_run(chapter, prof)
        if run is not None and run.get("seed", 0) == seed:
            return prof
    return requested


def committed_run(chapter: str, profile: str) -> dict | None:
    """The parameters of the chapter's complete committed run at ``profile`` (its manifest),
    or None when there is none or a record it lists is missing."""
    path = manifest_path(chapter, profile)
    if not path.exists():
        return None
    manifest = json.loads(path.read_text())
    root = path.parent
    if any(not (root / name).exists() for name in manifest.get("records", [])):
        return None
    return (manifest.get("run") or {}).get("parameters") or {}


def manifest_path(chapter: str, profile: str, root: Path | None = None) -> Path:
    """The file that marks a chapter's committed records at ``profile`` as a complete run (the
    chapter's notebook finished at that profile): only then are they the chapter's evidence,
    so a partial run can never make a build recompute the missing part at that profile."""
    return Path(root or committed_root()) / profile / f"{chapter}.complete.json"


def executed_run(chapter: str, profile: str, executed: Path | None = None) -> dict:
    """Check that papermill executed the chapter's notebook at ``profile`` to the end; return
    its parameters and duration. Raises RuntimeError otherwise."""
    import nbformat

    path = Path(executed or REPO_ROOT / "_build" / "executed") / "notebooks" / f"{chapter}.ipynb"
    if not path.exists():
        raise RuntimeError(f"{path} not found: run `make chapter CHAPTER={chapter} "
                           f"PROFILE={profile}` first")
    meta = nbformat.read(str(path), as_version=4).metadata.get("papermill", {})
    got = meta.get("parameters", {}).get("profile")
    if got != profile or meta.get("exception") or not meta.get("end_time"):
        raise RuntimeError(f"{path}: executed at profile {got!r}"
                           f"{', with an error' if meta.get('exception') else ''}"
                           f"{', unfinished' if not meta.get('end_time') else ''}; "
                           f"the records of {profile!r} are not a complete run")
    return {"parameters": meta.get("parameters"), "duration_s": meta.get("duration"),
            "start_time": meta.get("start_time"), "end_time": meta.get("end_time")}


def best_records(experiment: str, profile: str) -> tuple[list[dict], str]:
    """The records of ``experiment`` at ``profile`` the book shows: committed ones
    (``results/``) when present, else this build's. Returns (records, label)."""
    committed = Store(committed_root()).records(experiment, profile) if evidence_enabled() else []
    if committed:
        return committed, f"{profile} (committed results/)"
    return Store().records(experiment, profile), profile


def committed_status() -> list[dict]:
    """Every committed record with its staleness, for ``make check-results``."""
    out = []
    for path in sorted(committed_root().glob("*/*/*.json")):
        rec = read_record(path)
        out.append({"record": str(path.relative_to(committed_root())), "experiment": rec["experiment"],
                    "profile": rec["profile"], "commit": rec["provenance"].get("commit"),
                    "stale": is_stale(rec)})
    return out


def copy_records(chapters: list[str], profile: str, src: Path | None = None,
                 dst: Path | None = None, runs: dict | None = None) -> tuple[list[Path], list[str]]:
    """Copy the work root's ``profile`` records of ``chapters`` into the committed root (the
    book's evidence). Stale records are left out and named; checkpoints are never copied.
    ``runs`` maps a chapter to its :func:`executed_run`: a chapter with one and no stale
    record gets its manifest (:func:`manifest_path`). Returns (copied paths, stale names)."""
    src, dst = Path(src or work_root()), Path(dst or committed_root())
    copied, stale = [], []
    for path in sorted((src / profile).glob("*/*.json")):
        rec = read_record(path)
        if chapter_of(rec["experiment"]) not in chapters:
            continue
        if is_stale(rec):
            stale.append(f"{path.parent.name}/{path.name}")
            continue
        out = dst / profile / path.parent.name / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out, rec)
        copied.append(out)
    for ch, run in (runs or {}).items():
        if any(chapter_of(name.split("/")[0]) == ch for name in stale):
            continue
        # every current record of the chapter at this profile: those copied now and those
        # committed before that this run reused (a run that only added an experiment)
        names = sorted(f"{p.parent.name}/{p.name}" for p in (dst / profile).glob("*/*.json")
                       if chapter_of(p.parent.name) == ch and not is_stale(read_record(p)))
        # the trees the run used: its records' commits (copying them has just dirtied results/)
        recs = [read_record(dst / profile / n) for n in names]
        commits = sorted({r["provenance"].get("commit") for r in recs})
        atomic_write_json(manifest_path(ch, profile, dst), {
            "chapter": ch, "profile": profile, "records": names, "run": run,
            "code_hash": code_hash(ch),  # the chapter package as a whole
            "commits": commits,
            "compute_s": round(sum(r["provenance"].get("runtime_s") or 0 for r in recs), 1),
            "commit": commits[0] if len(commits) == 1 else ", ".join(c[:12] for c in commits),
            "committed": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    return copied, stale
