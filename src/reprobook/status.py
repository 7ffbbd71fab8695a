"""The execution-status page: what ran, at which profile, for how long, on what."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .results import git_commit, hardware, package_versions


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
        rows.append({"chapter": ch, "status": "failed" if failed else "ok",
                     "profile": params.get("profile", "small (default)"),
                     "runtime (s)": round(meta.get("duration") or 0.0, 1),
                     "finished": (meta.get("end_time") or "–")[:19]})
    return pd.DataFrame(rows).set_index("chapter")


def environment_table() -> pd.DataFrame:
    hw = hardware()
    rows = {"commit": git_commit(), **{f"hardware: {k}": v for k, v in hw.items()},
            **{f"package: {k}": v for k, v in package_versions().items()}}
    return pd.DataFrame({"value": {k: str(v) for k, v in rows.items()}})
