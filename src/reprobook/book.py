"""What every chapter notebook composes: start-up, progress bars, tables, provenance.

Chapters call :func:`start` right after their parameters cell, then run experiments
through the results store and finish with :func:`verdicts`.
"""
from __future__ import annotations

import html
import importlib
import json
import os
import time

import pandas as pd
from IPython.display import HTML, Markdown, display, update_display
from tqdm import tqdm

from . import claims as _claims
from . import pages as _pages
from . import profiles as _profiles
from . import registry as _registry
from .profiles import Run, setup
from .runner import Runner, env_executor
from .evidence import (PROFILE_ORDER, best_records, committed_run, evidence_enabled,
                       evidence_profile, evidence_summary)
from .paths import committed_root
from .provenance import chapter_of, is_stale
from .results import Store

_STARTED: dict[str, float] = {}
_RUNS: dict[str, "BookRun"] = {}  # chapter -> this kernel's run (the records it produced)

# The chapters of the book, in order (reprobook.registry.CHAPTERS); each declares PROFILES.
CHAPTERS = {ch: f"reprobook.{ch}" for ch in _registry.CHAPTERS}


class BookRun(Run):
    """A chapter's run: its settings, and a :class:`reprobook.runner.Runner` for its registered
    experiments (``run.run("dropmax_mnist")``)."""

    runner: Runner | None = None

    def run(self, name: str, **overrides) -> dict:
        return self.runner.run(name, **overrides)


def profiles_of(chapter: str) -> dict:
    if chapter not in CHAPTERS:
        raise ValueError(f"unknown chapter {chapter!r}; chapters: {', '.join(CHAPTERS)}")
    return importlib.import_module(CHAPTERS[chapter]).PROFILES


class ParameterError(_profiles.ParameterError):
    """A bad notebook parameter: shown in the notebook as this one line, not a traceback."""

    def _render_traceback_(self):  # IPython's hook for an exception's display
        return [f"ParameterError: {self}"]


# Parameters of chapters on the experiment registry: where their cells run (reprobook.runner).
RUNNER_PARAMETERS = ("executor", "address")


def check_parameters(chapter: str, profile, seed, device, new_names: set | None = None):
    """Validate a chapter's notebook parameters; return (profile, seed as int, torch device).
    Each bad value raises :class:`ParameterError` naming what was given and what is accepted."""
    try:
        if new_names is not None:
            extra = RUNNER_PARAMETERS if _registry.experiments(chapter) else ()
            _profiles.check_parameters(new_names, (*_profiles.NOTEBOOK_PARAMETERS, *extra))
        _profiles.resolve_profile(profiles_of(chapter), profile)
        if isinstance(seed, bool) or not str(seed).strip().isdigit():
            raise ParameterError(f"seed {seed!r} is not a whole number >= 0 (e.g. 1)")
        if device not in ("auto", "cpu") and not _profiles.torch.cuda.is_available():
            raise ParameterError(f"device {device!r}: CUDA is not available on this machine; "
                                 "valid here: auto, cpu")
        dev = _profiles.resolve_device(device)
    except _profiles.ParameterError as err:
        raise (err if isinstance(err, ParameterError) else ParameterError(str(err))) from None
    return profile, int(str(seed).strip()), dev


# Profile keys that list seeds: the notebook's ``seed`` shifts each such list, at the top of a
# chapter's settings or in an experiment's section (seed 0 keeps them, so the committed
# evidence's configs are unchanged).
SEED_KEYS = ("seeds", "code_seeds")
SEED_LIST_CHAPTERS = ("dropmax",)


def _shift_seeds(settings: dict, seed: int) -> None:
    for section in (settings, *(v for v in settings.values() if isinstance(v, dict))):
        for key in SEED_KEYS:
            if isinstance(section.get(key), list):
                section[key] = [seed + s for s in section[key]]


def start(chapter: str, profile: str = "small", seed: int = 0, device: str = "auto",
          new_names: set | None = None, executor: str | None = None,
          address: str | None = None) -> Run:
    """Check the notebook's parameters, seed the RNGs and apply the book's plot style.

    The chapter shows committed evidence of a larger profile only when it was computed with
    the same seed (:func:`reprobook.results.evidence_profile`); otherwise this build runs the
    profile asked for, with the seed asked for, and its header says so."""
    from .plotting import use_style

    profile, seed, _ = check_parameters(chapter, profile, seed, device, new_names)
    evidence = evidence_profile(chapter, profile, seed)
    import copy
    run = BookRun(**vars(setup(chapter, profiles_of(chapter), evidence, seed, device, None)))
    run.settings = copy.deepcopy(run.settings)
    run.requested = profile
    if seed and chapter in SEED_LIST_CHAPTERS:
        _shift_seeds(run.settings, seed)
    env_name, env_address = env_executor()
    name, address = executor or env_name, address or env_address
    if name not in ("local", "ray"):
        raise ParameterError(f"unknown executor {name!r}; valid executors: local, ray")
    run.runner = Runner(chapter, run.profile, run.settings, seed, run.device, store(), name,
                        address or None, progress)
    _RUNS[chapter] = run
    use_style()
    show_whole_tables()
    _STARTED[chapter] = time.perf_counter()
    display(HTML(evidence_header(chapter, run)))
    display(HTML(_box("The verdicts of this chapter (and its \"Does it reproduce?\" card) "
                      "appear here once its experiments have run.")),
            display_id=f"headline-{chapter}")
    return run


def show_whole_tables() -> None:
    """Tables (verdicts above all) are shown whole in the book, never elided with '...'."""
    pd.set_option("display.max_rows", 1000)
    pd.set_option("display.max_colwidth", None)


def quiet() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("REPRO_QUIET") == "1"


def progress(iterable, **kw):
    """A tqdm bar, silent in CI logs and in book builds (REPRO_QUIET=1)."""
    return tqdm(iterable, disable=quiet(), mininterval=5, **kw)


def store() -> Store:
    """The results store: committed ``results/`` records are read first (the evidence), this
    build's records are written to the work root."""
    return Store(read_roots=[committed_root()] if evidence_enabled() else [])


def evidence_header(chapter: str, run: Run) -> str:
    """Which profile this chapter's verdicts, figures and tables come from, and where it ran."""
    ev = evidence_summary(chapter, run.profile)
    if run.profile == run.requested or ev is None:
        return (f"<p><b>Evidence</b>: this build's own run at profile <code>{run.profile}</code>, "
                f"seed {run.seed}, device <code>{run.device}</code> (runtime and machine: "
                f"the execution-status page).{_why_own_run(chapter, run)}</p>")
    hw, hashes, stale = ev["hardware"], ev["code_hashes"], ev["stale"]
    warn = (f' <b style="color:#c62828">{stale} of {ev["records"]} records are stale</b> (the '
            "code changed since they ran; their verdicts are marked)." if stale else " None is stale.")
    return (f"<p><b>Evidence</b>: committed records at profile <code>{run.profile}</code> "
            f"(this build asked for <code>{run.requested}</code>): {ev['records']} records, "
            f"{_commits(ev['commits'])}, code hash{'es' if len(hashes) > 1 else ''} "
            f"<code>{', '.join(hashes)}</code>, {hw.get('machine')} with {hw.get('cpu_count')} CPUs"
            f"{' and ' + hw['gpu'] if hw.get('gpu') else ''}, its records took "
            f"{ev['compute_s'] / 60:.1f} min of computing (the last notebook run "
            f"{ev['run_s'] / 60:.1f} min), finished {ev['finished']}.{warn}</p>")


def _why_own_run(chapter: str, run: Run) -> str:
    """Why committed evidence of a larger profile is not shown, when there is some."""
    if not evidence_enabled():
        return " Committed evidence is switched off (<code>REPRO_EVIDENCE=none</code>)."
    for prof in reversed(PROFILE_ORDER[PROFILE_ORDER.index(run.profile) + 1:]):
        params = committed_run(chapter, prof)
        if params is not None and params.get("seed", 0) != run.seed:
            return (f" The committed <code>{prof}</code> evidence was computed with seed "
                    f"{params.get('seed', 0)}; this build runs <code>{run.profile}</code> with "
                    f"seed {run.seed} instead.")
    return ""


def _commits(commits: list[str]) -> str:
    """The commits a run's records name (the tree at save time; the code hash is what ties a
    record to the code that computed it)."""
    if len(commits) <= 3:
        return "commit " + ", ".join(commits)
    return f"saved across {len(commits)} commits ({', '.join(commits[:2])}, ...)"


def results_for(chapter: str, profile: str) -> dict[str, dict]:
    """The record of every experiment the chapter's ledger refers to. A registered experiment
    gives the record this kernel's run produced, else the stored record of the same config
    (:meth:`reprobook.runner.Runner.lookup`), never merely the newest one; an experiment not yet
    registered gives its newest record (committed first, :func:`best_records`)."""
    out = {}
    run = _RUNS.get(chapter)
    runner = run.runner if run is not None and run.profile == profile else Runner(
        chapter, profile, store=store())
    for c in _claims.load_ledger(chapter):
        exp = (c.ours or {}).get("experiment")
        if not exp or exp in out:
            continue
        if _registry.find(exp) is not None:
            rec = runner.produced.get(exp) or runner.lookup(exp)
        else:
            recs, _ = best_records(exp, profile)
            rec = recs[0] if recs else None
        if rec is not None:
            out[exp] = dict(rec, stale=is_stale(rec))
    return out


def evaluate(chapter: str, profile: str) -> pd.DataFrame:
    """Every claim of the chapter's ledger judged on the best records at ``profile`` (plain
    verdict strings, for counting; :func:`with_profiles` spells them out for display)."""
    return _claims.evaluate(_claims.load_ledger(chapter), results_for(chapter, profile))


def verdicts(chapter: str, profile: str):
    """The chapter's paper | report | ours | verdicts table and its verdict counts (primary
    verdict: vs the paper where it states the claim, else vs the report). Also fills the
    chapter's headline box, shown at its top by :func:`start`. The tally counts the published
    claims; ``tally.attrs["own"]`` counts our own checks (:func:`tally_markdown`)."""
    table = evaluate(chapter, profile)
    tally = _claims.counts(table)
    tally.attrs["own"] = _claims.counts(table, published=False).to_dict()
    update_display(HTML(_pages.card_html(chapter, TITLES[chapter], with_profiles(table))
                        + headline(table, profile)), display_id=f"headline-{chapter}")
    return VerdictTable(with_profiles(table)), tally


TITLES = {"dropmax": "DropMax", "autoloss": "AutoLoss", "concrete_dropout": "Concrete Dropout",
          "gsc": "Gradients explode (GSC)", "htsr": "Heavy-tailed self-regularisation"}


VERDICT_COLUMNS = ("verdict", "verdict vs paper", "verdict vs report",
                   "verdict, no published value")
COLOURS = _pages.COLOURS  # one palette for every verdict label
MEANING = {"reproduced": "our value satisfies the claim's check",
           "partly": "within the looser tolerance the ledger states",
           "not reproduced": "the run could test the claim, and our value fails the check",
           "inconclusive": "the run could not test it (too short, or the network did not train): "
                           "shown with the profile, e.g. \"inconclusive at small\"",
           "not run": "no result exists (no data or weights offline, or not computed)",
           "info": "shown for information, never judged"}


def published_table(chapter: str, profile: str, key: str, experiment: str | None = None):
    """The paper | report | ours rows of the claims whose key matches the regular expression
    ``key`` (and that read ``experiment``): published numbers come from the ledger only, ours
    from the record the claim reads. Shown with the verdict table's layout."""
    table = evaluate(chapter, profile)
    rows = table[table["key"].str.contains(key, regex=True)]
    if experiment:
        rows = rows[rows["experiment"] == experiment]
    return VerdictTable(with_profiles(rows))


def chapter_tables(profile: str) -> dict[str, pd.DataFrame]:
    """Every chapter's evaluated claims at its strongest evidence for a build at ``profile``."""
    return {ch: evaluate(ch, evidence_profile(ch, profile)) for ch in CHAPTERS}


def cards_html(profile: str, tables: dict | None = None) -> str:
    """The five "Does it reproduce?" cards, each linking to its chapter's rows."""
    tables = tables or chapter_tables(profile)
    return "".join(_pages.card_html(ch, TITLES[ch], with_profiles(t), f"../notebooks/{ch}.html")
                   for ch, t in tables.items())


def published(chapter: str, key: str, source: str = "paper") -> dict:
    """{last part of the claim's key: the value ``source`` published} for the ledger claims
    whose key matches the regular expression ``key``: a notebook's "paper" column read from
    the ledger, never typed in the notebook."""
    import re
    out = {}
    for c in _claims.load_ledger(chapter):
        k = (c.ours or {}).get("key", "")
        if re.search(key, k) and getattr(c, source) is not None:
            out[k.rsplit(".", 1)[-1]] = getattr(c, source)
    return out


def with_profiles(table: pd.DataFrame) -> pd.DataFrame:
    """Spell out "inconclusive at <profile>" in the verdict columns."""
    out = table.copy()
    for col in VERDICT_COLUMNS:
        if col in out:
            out[col] = [(f"{v} at {p}" if v == "inconclusive" and p else v)
                        + (" (stale record)" if v and stale else "")
                        for v, p, stale in zip(out[col], out["profile"], out["stale"])]
    return out


def label(verdict: str, profile: str = "") -> str:
    """A coloured verdict label (HTML, :func:`reprobook.pages.badge`); ``inconclusive`` with a
    profile reads "inconclusive at <profile>" and takes the inconclusive colour."""
    return _pages.badge(f"{verdict} at {profile}" if verdict == "inconclusive" and profile
                        else verdict)


def legend() -> HTML:
    items = "".join(f"<li>{label(v)} {html.escape(m)}</li>" for v, m in MEANING.items())
    return HTML(f'<ul style="list-style:none;padding-left:0">{items}</ul>')


def tally_markdown(tally: pd.Series) -> Markdown:
    """The chapter's verdict counts: the claims the paper or the report published (the headline
    tally), and our own checks (hypotheses, controls, reference-only rows) apart."""
    pub = " · ".join(f"**{k}**: {v}" for k, v in tally.items())
    own = ", ".join(f"{k} {v}" for k, v in tally.attrs.get("own", {}).items() if v)
    return Markdown(f"Claims the paper or the report published: {pub}. Our own checks, not "
                    f"counted above: {own or 'none'}.")


class VerdictTable(pd.DataFrame):
    """A DataFrame shown in the book with coloured verdict labels and whole cells."""

    @property
    def _constructor(self):
        return VerdictTable

    def _repr_html_(self):
        return _pages.verdict_table_html(self)


def _box(body: str) -> str:
    return (f'<div class="admonition note" style="padding:0.6em 1em">'
            f'<p class="admonition-title">Verdicts at a glance</p>{body}</div>')


def headline(table: pd.DataFrame, profile: str) -> str:
    """Three lines computed from the ledger: what reproduces, what does not, what could not
    be tested (inconclusive at this profile, or not run)."""
    def ids(mask, n=4):
        sel = list(table.loc[mask, "id"])
        more = f" and {len(sel) - n} more" if len(sel) > n else ""
        return ", ".join(_pages.id_link(i) for i in sel[:n]) + more

    pub = table["published"] if "published" in table else pd.Series(True, index=table.index)
    v = table["verdict"].where(pub, "")
    ok, part, bad = v == "reproduced", v == "partly", v == "not reproduced"
    inc, nr = v == "inconclusive", v == "not run"
    lines = [f"<b>Reproduces</b>: {ok.sum()} published claims, {part.sum()} partly "
             f"({ids(ok | part)}).",
             f"<b>Does not reproduce</b>: {bad.sum()} claims ({ids(bad) or 'none'}).",
             f"<b>Could not test</b>: {inc.sum()} {label('inconclusive', profile)}, "
             f"{nr.sum()} {label('not run')} (the verdict table says why for each).",
             f"<b>Our own checks</b> (no published value; not counted above): {(~pub).sum()}."]
    return _box("<br>".join(lines))


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _short(v) -> str:
    if isinstance(v, (list, tuple)) and len(v) > 6:
        return f"{len(v)} values, {_short(v[0])} ... {_short(v[-1])}"
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_short(x) for x in v) + "]"
    return str(v)


def profiles_table(chapter: str) -> pd.DataFrame:
    """The chapter's settings side by side for every profile (small, medium, full): what each
    profile runs, so a reader sees which claims a profile's length can test."""
    profs = profiles_of(chapter)
    flat = {name: _flat(profs[name]) for name in profs}
    keys = list(dict.fromkeys(k for f in flat.values() for k in f))
    rows = {k: {name: _short(flat[name][k]) if k in flat[name] else "–" for name in profs}
            for k in keys}
    table = pd.DataFrame(rows).T.rename_axis("setting")
    return table[[c for c in ("small", "medium", "full") if c in table]]


def not_run_table(chapter: str, profile: str) -> pd.DataFrame:
    table = _claims.evaluate(_claims.load_ledger(chapter), results_for(chapter, profile))
    nr = table[table["verdict"] == "not run"]
    return nr.groupby("why").size().rename("claims").reset_index()


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


def bench_table(group: str):
    """The rows of ``make bench`` (``results/bench.json``, measured on a quiet machine) of one
    group: the single place a speed ratio is measured, shown by the chapters and the status
    page alike."""
    from .status import bench_table as all_rows

    rows = all_rows()
    if rows is None or not (rows["group"] == group).any():
        return Markdown(f"No `make bench` measurement of `{group}` is committed.")
    rows = rows[rows["group"] == group]
    return rows[["what", "ours_s", "reference_s", "ratio", "target", "machine", "date"]].rename(
        columns={"ours_s": "ours (s)", "reference_s": "reference (s)"}).style.hide(
        axis="index").format({"ours (s)": "{:.3f}", "reference (s)": "{:.3f}", "ratio": "{:.2f}",
         "date": lambda d: str(d)[:10]})


def partial_run(chapter: str, profile: str = "full"):
    """The cells of ``profile`` that a partial run computed (``tools/full_cells.py`` on a lent
    GPU; ``results/<profile>/<chapter>.cells.json``, else the newest archived one,
    ``results/archive/<commit>/<profile>/``): a sentence with the projected time of the rest,
    the measured time of each cell and the accuracies its records hold (a sentence alone when
    there is no such run). These records are not the chapter's evidence (no complete run); a
    later complete run of ``profile`` reuses current ones and recomputes archived ones."""
    root = committed_root()
    path = root / profile / f"{chapter}.cells.json"
    archived = not path.exists()
    if archived:
        found = sorted((root / "archive").glob(f"*/{profile}/{chapter}.cells.json"),
                       key=lambda p: p.stat().st_mtime)
        path = found[-1] if found else path
        root = path.parent.parent
    if not evidence_enabled() or not path.exists():
        return [Markdown(f"No partial `{profile}` run of this chapter is committed"
                         f"{'' if evidence_enabled() else ' (committed evidence is off)'}.")]
    plan = json.loads(path.read_text())
    timing = pd.DataFrame([{"cell": c["cell"], "SGD steps": c["steps"], "seconds": c["seconds"],
                            "ms per step": 1000 * c["s_per_step"]} for c in plan["computed"]])
    recs = [r for r in Store(root).records(profile=profile)
            if chapter_of(r["experiment"]) == chapter]
    stale = sum(is_stale(r) for r in recs)
    accs = pd.DataFrame([{"experiment": r["experiment"], "batch": r["config"].get("batch"),
                          "run": r["config"].get("run", 0),
                          "train accuracy": r["values"].get("train_acc"),
                          "test accuracy": r["values"].get("test_acc")} for r in recs])
    accs = accs.sort_values(["experiment", "batch", "run"])
    left = sum(c["steps"] for c in plan["not_run"] if "projected_s" in c)
    rates = sorted(c["s_per_step"] for c in plan["computed"])
    hw = plan["hardware"]
    text = (f"A partial `{profile}` run on {hw.get('gpu') or hw.get('processor')} (commit "
            f"{plan['commit'][:8]}, {timing['seconds'].sum() / 60:.0f} min of computing) wrote "
            f"{len(accs)} records. The cells it did not reach hold {left:,} SGD steps: "
            f"{left * rates[0] / 3600:,.0f} to {left * rates[-1] / 3600:,.0f} hours of that GPU "
            f"at the fastest and slowest rates measured ({1000 * rates[0]:.1f} and "
            f"{1000 * rates[-1]:.1f} ms per step). Left out because its training rows do not fit "
            f"in memory: {', '.join(c['cell'] for c in plan['not_run'] if 'why' in c) or 'none'}."
            + (f" These records are archived (`{path.parent.relative_to(committed_root())}`): "
               f"{stale} of {len(recs)} were written by code that has changed since, so they "
               "show what that GPU run measured, judge nothing, and a complete run recomputes "
               "them." if archived else
               f" {stale} of these records were written by code that has changed since (stale): "
               "they show what that GPU run measured, and a complete run recomputes them."
               if stale else ""))
    return [Markdown(text),
            timing.style.hide(axis="index").format({"SGD steps": "{:,}", "seconds": "{:.0f}",
                                                    "ms per step": "{:.1f}"}),
            accs.style.hide(axis="index").format({"train accuracy": "{:.3f}",
                                                  "test accuracy": "{:.3f}"})]


def elapsed(chapter: str) -> float:
    return time.perf_counter() - _STARTED.get(chapter, time.perf_counter())


def reference(chapter: str, claim_id: str, source: str = "reference"):
    """The value ``source`` (paper, report or reference) published for claim ``claim_id`` of
    the chapter's ledger: a notebook's published column or curve read from the ledger."""
    for c in _claims.load_ledger(chapter):
        if c.id == claim_id:
            return getattr(c, source)
    raise KeyError(f"no claim {claim_id!r} in the {chapter} ledger")
