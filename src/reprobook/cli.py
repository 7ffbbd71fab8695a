"""Command line: run chapters with papermill, build the book.

    python -m reprobook.cli run gsc --profile full     # one chapter (or: all)
    python -m reprobook.cli book --profile small       # every chapter, then the HTML book
    python -m reprobook.cli check-results              # committed records: current or stale
    python -m reprobook.cli commit-results gsc --profile medium   # work records -> results/
    python -m reprobook.cli run dropmax --only dropmax_pathology --executor ray --address auto
    python -m reprobook.cli plan all --profile full     # every cell, its projected time here

Executed notebooks go to ``_build/executed/`` (never over ``notebooks/*.ipynb``); the book
is assembled from them in ``_build/site/`` and rendered by Jupyter Book 1.x into
``_build/html/`` with warnings as errors.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .book import CHAPTERS
from .profiles import PROFILE_NAMES
from .paths import REPO_ROOT

BUILD = REPO_ROOT / "_build"
EXECUTED = BUILD / "executed"
PAGES = ("intro", "summary", "status")  # book/ notebooks, executed after the chapters


def sync_notebooks(chapters: list[str] | None = None) -> None:
    """Regenerate the paired .ipynb of ``chapters`` (default: every chapter and book page)
    from its .py (the .py is the source of truth). ``--update`` keeps the cell ids, so an
    .ipynb already in sync is left byte for byte and a run from a committed tree stays clean."""
    if chapters is None:
        sources = sorted((REPO_ROOT / "notebooks").glob("*.py")) + \
            [REPO_ROOT / "book" / f"{p}.py" for p in PAGES]
    else:
        sources = [REPO_ROOT / "notebooks" / f"{ch}.py" for ch in chapters]
    subprocess.run([sys.executable, "-m", "jupytext", "--quiet", "--update", "--to", "ipynb",
                    *map(str, sources)], check=True)


def execute(src: Path, dst: Path, parameters: dict) -> float:
    import papermill as pm

    dst.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pm.execute_notebook(str(src), str(dst), parameters=parameters, kernel_name="python3",
                        cwd=str(src.parent), progress_bar=False, log_output=False)
    hide_parameter_cells(dst)
    return time.perf_counter() - t0


def hide_parameter_cells(path: Path) -> None:
    """The book never shows the parameters cell nor papermill's injected copy of it."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if ("parameters" in tags or "injected-parameters" in tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(nb, str(path))


def run_chapters(chapters: list[str], profile: str, seed: int, device: str,
                 executor: str = "local", address: str | None = None) -> None:
    os.environ.setdefault("REPRO_QUIET", "1")
    for ch in chapters:
        src = REPO_ROOT / "notebooks" / f"{ch}.ipynb"
        params = {"profile": profile, "seed": seed, "device": device}
        if executor != "local":
            params.update(executor=executor, address=address or "")
        secs = execute(src, EXECUTED / "notebooks" / f"{ch}.ipynb", params)
        print(f"{ch}: executed at profile {profile} in {secs:.1f} s")


def run_experiment(chapter: str, name: str, profile: str, seed: int, device: str,
                   executor: str, address: str | None) -> dict:
    """Run one registered experiment without its notebook (records to the work root)."""
    from .book import check_parameters, store
    from .registry import experiments
    from .runner import Runner

    known = experiments(chapter)
    if name not in known:
        raise SystemExit(f"error: {name!r} is not a registered experiment of {chapter}; "
                         f"registered: {', '.join(known) or 'none yet'}")
    _, seed, dev = check_parameters(chapter, profile, seed, device)
    runner = Runner(chapter, profile, seed=seed, device=dev, store=store(),
                    executor_name=executor, address=address)
    rec = runner.run(name)
    cells = rec.get("cells", [rec])
    print(f"{name}: {len(cells)} cell records ({sum(not c.get('reused') for c in cells)} computed "
          f"now), summary {rec['config_hash']}.json at profile {profile}")
    return rec


def plan(chapters: list[str], profile: str, device: str, time_slices: bool = True) -> list[dict]:
    """Print every cell of ``profile`` with its projected time on this machine (a timed
    one-epoch slice, scaled) and memory; return the rows."""
    from .book import store
    from .profiles import resolve_device
    from .registry import experiments
    from .runner import Runner

    rows, device = [], str(resolve_device(device))
    for ch in chapters:
        exps = experiments(ch)
        if not exps:
            print(f"{ch}: not on the experiment registry yet; no per-cell plan")
            continue
        runner = Runner(ch, profile, device=device, store=store())
        for name in exps:
            cells = runner.plan(name, time_slices)
            rows += [dict(c, chapter=ch) for c in cells]
            todo = [c for c in cells if not c["done"]]
            secs = sum(c["seconds"] or 0 for c in todo)
            untimed = sum(c["seconds"] is None for c in todo)
            mem = max((c["memory_gb"] or 0 for c in cells), default=0)
            missing = sorted({c["cannot_run"] for c in todo if c.get("cannot_run")})
            cost = (f"cannot run here ({missing[0]})" if missing else
                    f"projected {secs / 3600:.2f} h on one worker here" if not untimed else
                    f"{untimed} not timed (the experiment declares no short slice)")
            print(f"{ch}/{name}: {len(cells)} cells, {len(todo)} to run, {cost}"
                  + (f", {mem:.1f} GB per cell" if mem else ""))
    total = sum(r["seconds"] or 0 for r in rows if not r["done"])
    print(f"total: {total / 3600:.2f} h of this machine ({os.cpu_count()} CPUs, device {device}) "
          "for the registered experiments")
    return rows


def build_book(profile: str, seed: int, device: str) -> Path:
    sync_notebooks()
    run_chapters(list(CHAPTERS), profile, seed, device)
    os.environ["REPRO_EXECUTED"] = str(EXECUTED)
    for page in PAGES:
        secs = execute(REPO_ROOT / "book" / f"{page}.ipynb", EXECUTED / "book" / f"{page}.ipynb",
                       {"profile": profile})
        print(f"{page}: executed in {secs:.1f} s")
    site = BUILD / "site"
    if site.exists():
        shutil.rmtree(site)
    (site / "book").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO_ROOT / name, site / name)
    for f in (REPO_ROOT / "book").iterdir():
        if f.suffix in (".md", ".bib", ".png", ".svg"):
            shutil.copy(f, site / "book" / f.name)
    shutil.copytree(EXECUTED / "notebooks", site / "notebooks")
    for page in PAGES:
        shutil.copy(EXECUTED / "book" / f"{page}.ipynb", site / "book" / f"{page}.ipynb")
    out = BUILD / "html"
    if out.exists():
        shutil.rmtree(out)
    subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(site), "--path-output",
                    str(BUILD / "jb"), "-W", "--keep-going"], check=True)
    shutil.copytree(BUILD / "jb" / "_build" / "html", out)
    if (BUILD / "downloads").exists():  # written by the summary page (reprobook.pages)
        shutil.copytree(BUILD / "downloads", out / "downloads")
    print(f"book written to {out / 'index.html'}")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="reprobook", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="execute one chapter (or all) with papermill")
    r.add_argument("chapter", choices=[*CHAPTERS, "all"])
    r.add_argument("--rerun-stale", action="store_true",
                   help="recompute committed records whose code has changed (check-results "
                   "lists them) instead of reusing them; current records are still reused")
    b = sub.add_parser("book", help="execute every chapter and build the HTML book")
    r.add_argument("--only", metavar="EXPERIMENT",
                   help="run one registered experiment of the chapter, without its notebook")
    r.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="where the cells run: here, or as tasks on a Ray cluster")
    r.add_argument("--address", default=None,
                   help="the Ray cluster: auto, or HOST:PORT of its head (default: start one)")
    pl = sub.add_parser("plan", help="every cell of a profile with its projected time here")
    pl.add_argument("chapter", choices=[*CHAPTERS, "all"])
    pl.add_argument("--no-time", action="store_true", help="list the cells without timing slices")
    pl.add_argument("--out", help="also write the rows as JSON to this file")
    for p in (r, b, pl):
        p.add_argument("--profile", choices=PROFILE_NAMES, default="small")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--device", default="auto")
    sub.add_parser("check-results", help="list committed results/ records and whether the code "
                   "that wrote them has changed since (stale)")
    c = sub.add_parser("commit-results", help="copy this machine's records of a profile (one "
                       "chapter or all) from the work root into results/<profile>/, the book's "
                       "evidence, once the chapter's notebook ran to its end at that profile; "
                       "refuses stale ones, never copies checkpoints")
    c.add_argument("chapter", choices=[*CHAPTERS, "all"])
    c.add_argument("--profile", choices=PROFILE_NAMES, default="medium")
    args = parser.parse_args(argv)
    if args.cmd == "plan":
        chapters = list(CHAPTERS) if args.chapter == "all" else [args.chapter]
        rows = plan(chapters, args.profile, args.device, not args.no_time)
        if args.out:
            from .registry import experiments
            from .profiles import resolve_device
            from .provenance import git_commit, hardware
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps({
                "profile": args.profile, "device": str(resolve_device(args.device)),
                "commit": git_commit(),
                "hardware": hardware(), "rows": rows,
                "unregistered": [ch for ch in chapters if not experiments(ch)]}, indent=1))
        return 0
    if args.cmd in ("run", "book"):
        from .book import ParameterError, check_parameters

        try:
            check_parameters(next(iter(CHAPTERS)), args.profile, args.seed, args.device)
        except ParameterError as err:
            parser.error(str(err))
    if args.cmd == "check-results":
        from .evidence import committed_status

        rows = committed_status()
        for r in rows:
            print(f"{'STALE  ' if r['stale'] else 'current'}  {r['record']}  (commit {str(r['commit'])[:8]})")
        stale = sum(r["stale"] for r in rows)
        print(f"{len(rows)} committed records, {stale} stale")
        return 0
    if args.cmd == "commit-results":
        from .evidence import copy_records, executed_run

        chapters = list(CHAPTERS) if args.chapter == "all" else [args.chapter]
        try:
            runs = {ch: executed_run(ch, args.profile) for ch in chapters}
        except RuntimeError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        copied, stale = copy_records(chapters, args.profile, runs=runs)
        print(f"{len(copied)} records copied into results/{args.profile}/"
              + (f"; {len(stale)} stale records left out (rerun them, or delete them from the "
                 f"work root): {', '.join(stale)}. No manifest is written for a chapter with a "
                 "stale record: its committed records are not yet a complete run"
                 if stale else ""))
        return 1 if stale else 0
    if args.cmd == "run":
        chapters = list(CHAPTERS) if args.chapter == "all" else [args.chapter]
        if args.rerun_stale:
            os.environ["REPRO_RERUN_STALE"] = "1"  # read by results.Store in the kernels
        if args.only:
            if args.chapter == "all":
                parser.error("--only needs one chapter")
            try:
                run_experiment(args.chapter, args.only, args.profile, args.seed, args.device,
                               args.executor, args.address)
            except ParameterError as err:  # bad override, unreachable cluster: one line
                print(f"error: {err}", file=sys.stderr)
                return 2
            return 0
        sync_notebooks(chapters)
        run_chapters(chapters, args.profile, args.seed, args.device, args.executor, args.address)
    else:
        build_book(args.profile, args.seed, args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
