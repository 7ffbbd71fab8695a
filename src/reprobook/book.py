"""What every chapter notebook composes: start-up, progress bars, tables, provenance.

Chapters call :func:`start` right after their parameters cell, then run experiments
through the results store and finish with :func:`verdicts`.
"""
from __future__ import annotations

import importlib
import os
import time

import pandas as pd
from tqdm import tqdm

from . import claims as _claims
from .profiles import Run, setup
from .results import Store, best_records

_STARTED: dict[str, float] = {}

# The chapters of the book, in order; each kernel module declares PROFILES.
CHAPTERS = {
    "dropmax": "reprobook.dropmax",
    "autoloss": "reprobook.autoloss",
    "concrete_dropout": "reprobook.concrete_dropout",
    "gsc": "reprobook.gsc",
    "htsr": "reprobook.htsr",
}


def profiles_of(chapter: str) -> dict:
    if chapter not in CHAPTERS:
        raise ValueError(f"unknown chapter {chapter!r}; chapters: {', '.join(CHAPTERS)}")
    return importlib.import_module(CHAPTERS[chapter]).PROFILES


def start(chapter: str, profile: str = "small", seed: int = 0, device: str = "auto",
          new_names: set | None = None) -> Run:
    """Check the notebook's parameters, seed the RNGs and apply the book's plot style."""
    from .plotting import use_style

    run = setup(chapter, profiles_of(chapter), profile, seed, device, new_names)
    use_style()
    show_whole_tables()
    _STARTED[chapter] = time.perf_counter()
    return run


def show_whole_tables() -> None:
    """Tables (verdicts above all) are shown whole in the book, never elided with '...'."""
    pd.set_option("display.max_rows", 1000)


def quiet() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("REPRO_QUIET") == "1"


def progress(iterable, **kw):
    """A tqdm bar, silent in CI logs and in book builds (REPRO_QUIET=1)."""
    return tqdm(iterable, disable=quiet(), mininterval=5, **kw)


def store() -> Store:
    return Store()


def results_for(chapter: str, profile: str) -> dict[str, dict]:
    """Newest record of every experiment the chapter's ledger refers to (committed
    full-profile records first, see :func:`reprobook.results.best_records`)."""
    out = {}
    for c in _claims.load_ledger(chapter):
        exp = (c.ours or {}).get("experiment")
        if exp and exp not in out:
            recs, _ = best_records(exp, profile)
            if recs:
                out[exp] = recs[0]
    return out


def verdicts(chapter: str, profile: str, columns=("claim", "paper", "paper source", "report",
                                                 "report source", "ours", "verdict", "run")):
    """The chapter's paper | report | ours | verdict table and its verdict counts."""
    table = _claims.evaluate(_claims.load_ledger(chapter), results_for(chapter, profile))
    shown = table[list(columns)] if columns else table
    return shown, _claims.counts(table)


def not_run_table(chapter: str, profile: str) -> pd.DataFrame:
    table = _claims.evaluate(_claims.load_ledger(chapter), results_for(chapter, profile))
    nr = table[table["verdict"] == "not run"]
    return nr.groupby("why not run").size().rename("claims").reset_index()


def provenance(record: dict) -> pd.DataFrame:
    """A short provenance table for one results record."""
    p = record["provenance"]
    hw = p.get("hardware", {})
    rows = {"experiment": record["experiment"], "profile": record["profile"],
            "seed": record["seed"], "commit": p.get("commit"),
            "hardware": f"{hw.get('machine')} / {hw.get('cpu_count')} CPUs / "
                        f"{hw.get('gpu', 'no GPU')}",
            "torch": p.get("packages", {}).get("torch"),
            "runtime (s)": p.get("runtime_s"), "finished": p.get("finished"),
            "data": p.get("data_source"), "reused from store": record.get("reused", False)}
    return pd.DataFrame({"value": rows}).rename_axis("provenance")


def elapsed(chapter: str) -> float:
    return time.perf_counter() - _STARTED.get(chapter, time.perf_counter())
