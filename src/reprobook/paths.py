"""Where records live: the repository, the work root a run writes and the committed root the
book reads."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def work_root() -> Path:
    return Path(os.environ.get("REPRO_RESULTS", REPO_ROOT / "_build" / "results"))

def committed_root() -> Path:
    return REPO_ROOT / "results"
