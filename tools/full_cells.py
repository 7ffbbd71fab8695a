"""Run cells of a chapter's `full` profile within a time budget (a lent GPU, a spare machine).

    python tools/full_cells.py htsr --budget 420 --device cuda --out DIR

A whole `full` chapter does not fit a short lease, but its cells are independent: each cell
written here is the record a complete `full` run writes (same config, same hash), so that run
reuses it. Every registered experiment of the chapter is planned (:meth:`Runner.plan`: a timed
one-epoch slice of each cell, scaled), then its cells run cheapest first, each only when its
projected time ends inside the budget and its memory fits. Summaries of a partial grid are not
written. ``DIR/plan.json`` gets every cell's projected and measured time and what was left;
``DIR/records.tar`` the cell records.
"""
from __future__ import annotations

import argparse
import json
import os
import tarfile
import time
from pathlib import Path

from reprobook import registry
from reprobook.results import Store
from reprobook.provenance import config_hash, hardware
from reprobook.runner import Runner


def memory_gb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("chapter", choices=registry.CHAPTERS)
    ap.add_argument("--budget", type=float, required=True, help="seconds for all cells")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--profile", default="full", help="another profile only to try the script")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    t_start = time.time()
    deadline = t_start + args.budget
    store = Store(args.out / "results")
    runner = Runner(args.chapter, args.profile, device=args.device, store=store)
    done, left = [], []
    for name, exp in registry.experiments(args.chapter).items():
        rows = runner.plan(name)
        _, _, cells = runner.jobs(name)
        order = sorted(range(len(cells)), key=lambda i: rows[i]["seconds"] or 0)
        for i in order:
            row = dict(rows[i])
            need = (row["seconds"] or 0) * 1.2
            if row["done"]:
                continue
            if (row["memory_gb"] or 0) > 0.8 * memory_gb() or time.time() + need > deadline:
                row["why"] = "memory" if (row["memory_gb"] or 0) > 0.8 * memory_gb() else "budget"
                left.append(row)
                continue
            t0 = time.time()
            runner.run_cells(name, [i])
            row["measured_s"] = round(time.time() - t0, 1)
            done.append(row)
            print(json.dumps(row), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    plan = {"chapter": args.chapter, "profile": args.profile, "device": args.device,
            "hardware": hardware(), "budget_s": args.budget,
            "elapsed_s": round(time.time() - t_start, 1), "done": done, "not_run": left,
            "projected_rest_s": round(sum(r["seconds"] or 0 for r in left))}
    (args.out / "plan.json").write_text(json.dumps(plan, indent=1, default=str))
    with tarfile.open(args.out / "records.tar", "w") as tar:
        for path in sorted((store.root / args.profile).glob("*/*.json")):
            tar.add(path, arcname=str(path.relative_to(store.root)))
    print(json.dumps({k: plan[k] for k in ("elapsed_s", "projected_rest_s")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
