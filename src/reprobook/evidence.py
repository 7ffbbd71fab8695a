"""Which records are the book's evidence: committed complete runs (their manifests), the
profile a chapter shows, the records a verdict reads when no run produced them, and the copy
of a run's records into ``results/`` (``cli commit-results``)."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from .paths import REPO_ROOT, committed_root, work_root
from . import provenance  # its code-hash functions are looked up at call time
from .provenance import chapter_of, code_hash
from .results import Store, atomic_write_json, read_record

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
                    "stale": provenance.is_stale(rec)})
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
        if provenance.is_stale(rec):
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
                       if chapter_of(p.parent.name) == ch and not provenance.is_stale(read_record(p)))
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


def evidence_summary(chapter: str, profile: str) -> dict | None:
    """What the chapter's committed records at ``profile`` are, for every page that states its
    evidence (the chapter's header, the status page): the number of records and of stale ones,
    the commits and code hashes they name, the machine, the compute they took, the last
    notebook run (its manifest) and when the last record finished. None without records."""
    recs = [r for r in Store(committed_root()).records(profile=profile)
            if chapter_of(r["experiment"]) == chapter]
    if not recs:
        return None
    path = manifest_path(chapter, profile)
    manifest = json.loads(path.read_text()) if path.exists() else {}
    run = manifest.get("run") or {}
    return {
        "records": len(recs), "stale": sum(provenance.is_stale(r) for r in recs),
        "commits": sorted({str(r["provenance"].get("commit"))[:8] for r in recs}),
        "code_hashes": sorted({str(r["provenance"].get("code_hash")) for r in recs}),
        "hardware": recs[0]["provenance"].get("hardware", {}),
        "compute_s": manifest.get("compute_s") or sum(r["provenance"].get("runtime_s") or 0
                                                      for r in recs),
        "run_s": run.get("duration_s") or 0, "run_end": str(run.get("end_time", "?")),
        "finished": max(r["provenance"].get("finished", "") for r in recs)}
