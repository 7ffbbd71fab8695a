"""The execution-status page: what ran, at which profile, for how long, on what."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .evidence import evidence_profile, evidence_summary
from .paths import committed_root
from .provenance import git_commit, hardware, package_versions


def chapter_table(executed_dir: Path, chapters: list[str]) -> pd.DataFrame:
    """One row per chapter from the papermill metadata of its executed notebook."""
    rows = []
    for ch in chapters:
        path = Path(executed_dir) / f"{ch}.ipynb"
        if not path.exists():
            rows.append({"chapter": ch, "status": "not executed", "profile": "–",
                         "runtime (s)": None, "finished": "–"})
            continue
        meta = json.loads(path.read_text())["metadata"].get("papermill", {})
        params = meta.get("parameters", {})
        failed = meta.get("exception")
        requested = params.get("profile", "small")
        rows.append({"chapter": ch, "status": "failed" if failed else "ok",
                     "profile": requested, **evidence_row(ch, requested),
                     "runtime (s)": round(meta.get("duration") or 0.0, 1),
                     "finished": (meta.get("end_time") or "–")[:19]})
    return pd.DataFrame(rows).set_index("chapter")


def evidence_row(chapter: str, requested: str) -> dict:
    """Which records a chapter's verdicts and figures come from, and how many are stale (the
    same summary as the chapter's own evidence header)."""
    prof = evidence_profile(chapter, requested)
    ev = evidence_summary(chapter, prof) if prof != requested else None
    if ev is None:
        return {"evidence": f"this build ({requested})", "committed records": 0, "stale": 0}
    hw = ev["hardware"]
    return {"evidence": f"committed results/ ({prof})", "committed records": ev["records"],
            "stale": ev["stale"],
            "evidence run": f"{ev['run_s'] / 60:.0f} min, finished {ev['run_end'][:16]}, "
                            f"{hw.get('machine')} with {hw.get('cpu_count')} CPUs"
                            f"{', ' + hw['gpu'] if hw.get('gpu') else ''}, "
                            f"code hash {', '.join(ev['code_hashes'])}"}


def bench_table() -> pd.DataFrame | None:
    """The ratios written by ``make bench`` (results/bench.json), if it has been run."""
    path = committed_root() / "bench.json"
    if not path.exists():
        return None
    return pd.DataFrame(json.loads(path.read_text())["rows"])


def plan_table(profile: str = "full") -> tuple[pd.DataFrame, str] | None:
    """The committed plan of ``profile`` (``cli plan all --profile full --out
    results/plan/full.json``): per experiment, its cells, those still to run, the projected
    hours on the machine that planned it and the memory one cell needs."""
    path = committed_root() / "plan" / f"{profile}.json"
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    rows = pd.DataFrame(doc["rows"])
    table = rows.groupby(["chapter", "experiment"]).agg(
        cells=("cell", "size"), to_run=("done", lambda d: int((~d).sum())),
        hours=("seconds", lambda s: s.sum() / 3600 if s.notna().all() else float("nan")),
        memory_gb=("memory_gb", "max")).round({"hours": 2, "memory_gb": 1})
    blocked = sorted(set(rows.loc[rows["cannot_run"].notna(), "experiment"])) \
        if "cannot_run" in rows else []
    cannot = (f"; of these, {', '.join(blocked)} cannot run on that machine (no data or "
              "weights there)" if blocked else "")
    hw = doc.get("hardware", {})
    device = doc.get("device")
    if device in (None, "auto"):  # a plan asked for "auto" ran where auto resolved
        device = "cuda" if hw.get("cuda") else "cpu"
    note = (f"Planned on {hw.get('cpu_count')} CPUs ({hw.get('cpu_model') or hw.get('machine')}), "
            f"device {device}, commit {str(doc.get('commit'))[:8]}: "
            f"{table['hours'].sum():,.1f} hours of that machine for the experiments it could time "
            f"(one worker; a cluster divides it by its workers). Not timed (— in the table): "
            f"{', '.join(table.index[table['hours'].isna()].get_level_values(1)) or 'none'}"
            f"{cannot} (the others declare no short slice to time).")
    return table, note


def environment_table() -> pd.DataFrame:
    hw = hardware()
    rows = {"commit": git_commit(), **{f"hardware: {k}": v for k, v in hw.items()},
            **{f"package: {k}": v for k, v in package_versions().items()}}
    return pd.DataFrame({"value": {k: str(v) for k, v in rows.items()}})
