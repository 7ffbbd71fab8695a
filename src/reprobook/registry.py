"""The experiment registry: what an experiment is, once for every chapter.

An :class:`Experiment` is named as the ledger names it (``ours.experiment``). Its ``compute``
takes a config and a :class:`Context` and returns values (never sees the store). A grid
experiment also declares ``cells(cfg)`` (one sub-config, and one record named ``cell_name``,
per cell) and ``summarise(cell_values, cfg)``, which builds the values the ledger reads.
``outputs`` are the top-level value keys the ledger may read (checked when a ledger loads);
``modules`` are the files whose code computes it (its code hash: a plotting change never
stales evidence). :mod:`reprobook.runner` runs them.

The chapters are registered by importing ``reprobook.<chapter>.experiments`` and any
``reprobook.<chapter>.exp_*`` module; a chapter not yet moved onto the registry keeps its own
drivers and its package (less its ``exp_*`` modules, hashed per experiment) as its code hash.
"""
from __future__ import annotations

import ast
import hashlib
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

# The chapters of the book, in reading order: the one list every other module uses.
CHAPTERS = ("dropmax", "autoloss", "concrete_dropout", "gsc", "htsr")
# Shared code whose change can move any experiment's numbers.
SHARED_COMPUTE = ("train.py", "data.py")
SRC = Path(__file__).resolve().parent


def code_text(path: Path) -> bytes:
    """What a code hash reads of a source file: its syntax tree without docstrings (comments
    are not in it), so that editing a docstring or a comment never stales evidence while any
    change to the code does."""
    if not path.exists():
        return b""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)  # parse each version of a file once
    if key not in _CODE_TEXT:
        _CODE_TEXT[key] = _tree_text(path)
    return _CODE_TEXT[key]


_CODE_TEXT: dict[tuple, bytes] = {}


def _tree_text(path: Path) -> bytes:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False).encode()


@dataclass(frozen=True)
class Experiment:
    name: str
    chapter: str
    compute: Callable  # (cfg, ctx) -> values, or (values, data_source)
    modules: tuple[str, ...]  # files under src/reprobook whose code computes it
    outputs: tuple[str, ...] = ()
    cells: Callable | None = None  # cfg -> [cell cfg]
    cell_name: str | None = None  # the experiment name of the cell records
    summarise: Callable | None = None  # ([cell values], cfg) -> values
    checkpoint: bool = False  # compute resumes from ctx.checkpoint
    cpus: int = 1  # what one cell needs (Ray resources); one GPU per cell on CUDA
    slice: Callable | None = None  # cfg -> (short cfg, scale), or a list of such pairs whose
    # times x scales add up (a linear fit in two knobs): `plan` times them
    memory_gb: Callable | None = None  # cfg -> GB one cell needs (for `plan`)
    missing: tuple = ()  # exceptions that mean "cannot run here" (no data or weights offline)
    profiles: dict | None = None  # its own profile sections, for a chapter whose PROFILES lack it

    def code_hash(self) -> str:
        """Hash of the files that compute this experiment and the shared training code."""
        h = hashlib.sha256()
        for rel in (*sorted(self.modules), *SHARED_COMPUTE):
            h.update(rel.encode() + b"\0" + code_text(SRC / rel))
        return h.hexdigest()[:16]


def derive_seed(seed: int, *keys) -> int:
    """A seed for one part of a run (a cell, a split, a model, a noise stream), derived from
    the run's seed and the part's names by hashing: the one derivation every experiment uses
    (:meth:`Context.seed_for`), in place of literal offsets."""
    blob = repr((seed, *keys)).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "little") & 0x7FFFFFFF


@dataclass
class Context:
    """What a computation may know about its run besides its config."""

    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    checkpoint: Path | None = None
    progress: Callable = lambda it, **kw: it

    def seed_for(self, *keys) -> int:
        """A seed for one part of a run (a cell, a split, a model), derived from the run's seed
        and the part's names by hashing: the one derivation every experiment uses."""
        return derive_seed(self.seed, *keys)


_REGISTRY: dict[str, Experiment] = {}
_CELLS: dict[str, str] = {}  # cell record name -> its experiment


def register(exp: Experiment) -> Experiment:
    if exp.chapter not in CHAPTERS:
        raise ValueError(f"experiment {exp.name}: unknown chapter {exp.chapter!r}")
    _REGISTRY[exp.name] = exp
    if exp.cell_name:
        _CELLS[exp.cell_name] = exp.name
    return exp


def load(chapter: str) -> None:
    """Import a chapter's experiments (registering them); a name that is no chapter of the
    book, or a chapter without an experiments module, registers nothing."""
    if chapter not in CHAPTERS:
        return
    try:
        importlib.import_module(f"reprobook.{chapter}.experiments")
    except ModuleNotFoundError as err:
        if err.name != f"reprobook.{chapter}.experiments":
            raise
    for path in sorted((SRC / chapter).glob("exp_*.py")):  # experiments added to a chapter
        importlib.import_module(f"reprobook.{chapter}.{path.stem}")  # not yet on the registry


def chapter_of(name: str) -> str:
    """The chapter of an experiment or cell record name, from its prefix (``gsc_noise`` -> gsc)."""
    prefix = name.split("_")[0]
    return {"cd": "concrete_dropout", "concrete": "concrete_dropout"}.get(prefix, prefix)


def find(name: str) -> Experiment | None:
    """The registered experiment called ``name``, or whose cells are called ``name``."""
    if name not in _REGISTRY and name not in _CELLS:
        load(chapter_of(name))
    return _REGISTRY.get(name) or _REGISTRY.get(_CELLS.get(name, ""))


def get(name: str) -> Experiment:
    exp = find(name)
    if exp is None:
        known = ", ".join(sorted(experiments(chapter_of(name)))) or "none registered"
        raise KeyError(f"unknown experiment {name!r}; registered in {chapter_of(name)}: {known}")
    return exp


def experiments(chapter: str) -> dict[str, Experiment]:
    load(chapter)
    return {n: e for n, e in _REGISTRY.items() if e.chapter == chapter}
