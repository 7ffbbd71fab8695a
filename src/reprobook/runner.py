"""One runner for every registered experiment (:mod:`reprobook.registry`).

``Runner.run(name, **overrides)`` takes the profile's section for that experiment as the
config (overrides must name keys of it), runs each cell not already in the store (reusing
finished ones; a cell with a checkpoint resumes it), writes each cell's record as it comes
back, then the summary record the ledger reads, and remembers it: verdicts read the records
this run produced (:attr:`Runner.produced`), or the committed record of the same config.

Executors: ``local`` computes the cells here, one after another; ``ray`` sends each missing
cell to a Ray cluster as a task with the resources its experiment declares. Values come back
to the driver, which alone writes records (no shared filesystem needed); a task whose worker
dies is retried; a restarted driver resubmits only the cells still missing.
"""
from __future__ import annotations

import importlib
import os
import time
from pathlib import Path

import torch

from . import registry
from .profiles import ParameterError
from .results import Store
from .provenance import config_hash

EXECUTORS = ("local", "ray")
MISSING = "__missing__"  # a cell that cannot run here (its reason), never stored
SAME_COST = ("seed", "run")  # cells that differ only in these cost the same (plan times one)


def _compute_cell(name: str, cfg: dict, seed: int, device: str, checkpoint=None):
    """Compute one cell (or a whole experiment without cells): (values, data_source, secs)."""
    exp = registry.get(name)
    ctx = registry.Context(seed=seed, device=torch.device(device), checkpoint=checkpoint)
    t0 = time.perf_counter()
    try:
        out = exp.compute(cfg, ctx)
    except exp.missing as err:  # no data or weights here: reported, never stored
        return {MISSING: str(err)}, None, time.perf_counter() - t0
    values, source = out if isinstance(out, tuple) else (out, None)
    return values, source, time.perf_counter() - t0


class LocalExecutor:
    def map(self, exp, jobs, progress=lambda it, **kw: it):
        """Yield (job index, (values, data_source, seconds)) as each job finishes."""
        for i, (cfg, seed, device, ckpt) in progress(list(enumerate(jobs)), desc=exp.name):
            yield i, _compute_cell(exp.name, cfg, seed, device, ckpt)


class RayExecutor:
    """Cells as Ray tasks on the cluster at ``address`` (``auto``, ``HOST:PORT``; None starts a
    local one). A task whose worker process dies is retried up to ``retries`` times."""

    def __init__(self, address: str | None = None, retries: int = 3, **init):
        token = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
        if address and "RAY_AUTH_MODE" not in os.environ and token.exists():
            os.environ["RAY_AUTH_MODE"] = "token"  # `ray start` heads require their token
        try:  # (Ray reads RAY_AUTH_MODE when it is imported)
            import ray
        except ImportError as err:
            raise ParameterError("executor 'ray' needs Ray: pip install '.[ray]'") from err
        self.ray, self.retries = ray, retries
        if ray.is_initialized():
            return
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     logging_level="ERROR", **init)
        except ConnectionError as err:
            raise ParameterError(
                f"cannot reach the Ray cluster at {address!r} ({str(err).splitlines()[-1]}); "
                "is its head running, and does this machine have the head's auth token "
                "(~/.ray/auth_token, or RAY_AUTH_TOKEN)? See the README, 'Running on a "
                "cluster'") from err

    def map(self, exp, jobs, progress=lambda it, **kw: it):
        ray = self.ray
        task = ray.remote(_ray_cell).options(
            num_cpus=exp.cpus, num_gpus=1 if jobs and jobs[0][2].startswith("cuda") else 0,
            max_retries=self.retries, retry_exceptions=False)
        pending = {task.remote(exp.name, cfg, seed, dev, exp.cpus): i
                   for i, (cfg, seed, dev, _) in enumerate(jobs)}
        bar = progress(range(len(pending)), desc=f"{exp.name} (ray)")
        ticks = iter(bar)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(done[0])
            next(ticks, None)
            yield i, ray.get(done[0])


def _ray_cell(name, cfg, seed, device, cpus):
    torch.set_num_threads(max(1, cpus))
    return _compute_cell(name, cfg, seed, device)


def executor(name: str = "local", address: str | None = None):
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address=address)
    raise ParameterError(f"unknown executor {name!r}; valid executors: {', '.join(EXECUTORS)}")


class Runner:
    """Runs a chapter's registered experiments at one profile and remembers their records."""

    def __init__(self, chapter: str, profile: str, settings: dict | None = None, seed: int = 0,
                 device="cpu", store: Store | None = None, executor_name: str = "local",
                 address: str | None = None, progress=lambda it, **kw: it):
        self.chapter, self.profile, self.seed = chapter, profile, seed
        self.device = str(device)
        self.settings = settings if settings is not None else importlib.import_module(
            f"reprobook.{chapter}").PROFILES[profile]
        self.store = store or Store()
        self.executor_name, self.address = executor_name, address
        self._executor = None
        self.progress = progress
        self.produced: dict[str, dict] = {}  # experiment -> the summary record of this run
        self.missing: dict[str, dict] = {}  # experiment -> {cell config hash: why it cannot run}

    @property
    def executor(self):
        if self._executor is None:
            self._executor = executor(self.executor_name, self.address)
        return self._executor

    def config(self, name: str, **overrides) -> dict:
        """The profile's section for experiment ``name`` with ``overrides`` applied."""
        exp = registry.get(name)
        if exp.chapter != self.chapter:
            raise ParameterError(f"experiment {name!r} belongs to chapter {exp.chapter}")
        own = (exp.profiles or {}).get(self.profile)
        if name not in self.settings and own is None:
            raise ParameterError(f"profile {self.profile!r} has no section for {name!r}")
        cfg = dict(self.settings[name] if name in self.settings else own)
        if "seed" not in cfg and "seeds" not in cfg:
            cfg["seed"] = self.seed  # the run's seed is part of the config that is hashed
        unknown = sorted(set(overrides) - set(cfg))
        if unknown:
            raise ParameterError(f"unknown parameter(s) {', '.join(unknown)} for {name}; "
                                 f"valid: {', '.join(sorted(cfg))}")
        return {**cfg, **overrides}

    def jobs(self, name: str, **overrides) -> tuple[registry.Experiment, dict, list[dict]]:
        """(experiment, config, cell configs); an experiment without cells is one cell."""
        exp = registry.get(name)
        cfg = self.config(name, **overrides)
        return exp, cfg, (exp.cells(cfg) if exp.cells else [cfg])

    def run(self, name: str, **overrides) -> dict | None:
        """Run experiment ``name`` (its missing cells, then its summary); return the record
        the ledger reads. Cells that cannot run here (the experiment's ``missing`` errors: no
        data or weights) are left out and listed in :attr:`missing`; None if none could run."""
        exp, cfg, cells = self.jobs(name, **overrides)
        recs = self.run_cells(name, range(len(cells)), **overrides)
        if exp.missing:  # optional cells: what could run here
            cells, recs = [c for c, r in zip(cells, recs) if r], [r for r in recs if r]
        if not recs:
            return None  # nothing could run here: self.missing says why
        if not exp.cells:
            rec = recs[0]
        else:
            rec = self.store.run(exp.name, self._summary_config(recs, cfg), self.profile, self.seed,
                                 lambda: exp.summarise(
                                     [(c, r["values"]) for c, r in zip(cells, recs)], cfg))
            rec["cells"] = recs
        self.produced[exp.name] = rec
        return rec

    def run_cells(self, name: str, indices, **overrides) -> list[dict | None]:
        """Compute the cells ``indices`` of ``name`` that have no record yet (no summary);
        return the record of every cell (None where it is neither stored nor computed)."""
        exp, cfg, cells = self.jobs(name, **overrides)
        rec_name = exp.cell_name or exp.name
        recs: list[dict | None] = [self.store.find(rec_name, c, self.profile) for c in cells]
        missing = [i for i in indices if recs[i] is None]
        jobs = [(cells[i], int(cells[i].get("seed", self.seed)), self.device,
                 self.store.checkpoint_path(rec_name, cells[i], self.profile)
                 if exp.checkpoint else None) for i in missing]
        code = exp.code_hash()
        stale = self.store.stale_seen(self.chapter)
        for j, (values, source, secs) in self.executor.map(exp, jobs, self.progress):
            i = missing[j]
            if MISSING in values:
                self.missing.setdefault(name, {})[config_hash(cells[i])] = values[MISSING]
                continue
            if self.store.find(rec_name, cells[i], self.profile, quiet=True) is None:
                recs[i] = self.store.save(rec_name, cells[i], self.profile, jobs[j][1], values,
                                          secs, source, code=code, stale_inputs=stale)
            else:  # another driver wrote it meanwhile: keep the first, never write twice
                recs[i] = self.store.find(rec_name, cells[i], self.profile, quiet=True)
            recs[i]["reused"] = False
        return recs

    def lookup(self, name: str, **overrides) -> dict | None:
        """The stored record of ``name`` at this profile and config (committed first), without
        computing anything: None unless every cell and the summary exist (or when this profile
        does not run ``name``)."""
        exp = registry.get(name)
        if not overrides and name not in self.settings and (exp.profiles or {}).get(self.profile) is None:
            return None  # not part of this profile (e.g. a paper-scale-only study)
        exp, cfg, cells = self.jobs(name, **overrides)
        recs = [self.store.find(exp.cell_name or exp.name, c, self.profile, quiet=True)
                for c in cells]
        if exp.missing:
            cells, recs = [c for c, r in zip(cells, recs) if r], [r for r in recs if r]
            if not recs:
                return None
        if any(r is None for r in recs) or not exp.cells:
            return recs[0] if recs and not exp.cells else None
        return self.store.find(exp.name, self._summary_config(recs, cfg), self.profile, quiet=True)

    @staticmethod
    def _summary_config(recs: list[dict], cfg: dict) -> dict:
        """A summary's config: the experiment's config, and each cell record's config hash and
        finish time, so that a recomputed cell makes a new summary."""
        return {**cfg, "cells": sorted(f"{r['config_hash']}@{r['provenance'].get('finished')}"
                                       for r in recs)}

    def plan(self, name: str, time_slices: bool = True) -> list[dict]:
        """Every cell of ``name`` with its projected time (a timed short slice of the cell
        times the slice's scale), memory, and whether a record already exists."""
        exp, cfg, cells = self.jobs(name)
        rec_name = exp.cell_name or exp.name
        rows, timed = [], {}  # cells that differ only in their seed cost the same
        for c in cells:
            row = {"experiment": name, "cell": config_hash(c), "seed": c.get("seed", self.seed),
                   "done": self.store.find(rec_name, c, self.profile, quiet=True) is not None,
                   "memory_gb": exp.memory_gb(c) if exp.memory_gb else None, "seconds": None}
            if time_slices and exp.slice and not row["done"]:
                parts = exp.slice(c)  # (short cfg, scale), or several whose times add up
                if isinstance(parts, list) and not timed:  # a difference of two timings:
                    _compute_cell(name, parts[0][0], int(c.get("seed", 0)), self.device)  # warm
                seconds = 0.0
                for short, scale in ([parts] if isinstance(parts, tuple) else parts):
                    key = config_hash({k: v for k, v in short.items() if k not in SAME_COST})
                    if key not in timed:
                        values, _, secs = _compute_cell(name, short, int(c.get("seed", 0)),
                                                        self.device)
                        timed[key] = (values[MISSING], None) if MISSING in values else (None, secs)
                    why, secs = timed[key]
                    if why is not None:  # no data or weights here: no time to project
                        row["cannot_run"], seconds = why, None
                        break
                    seconds += secs * scale
                row["seconds"] = None if seconds is None else max(seconds, 0.0)
            rows.append(row)
        return rows


def env_executor() -> tuple[str, str | None]:
    """The executor a notebook asked for through ``$REPRO_EXECUTOR`` / ``$REPRO_RAY_ADDRESS``."""
    return os.environ.get("REPRO_EXECUTOR", "local"), os.environ.get("REPRO_RAY_ADDRESS")
