"""Run cells of the HT-SR chapter's `full` profile within a time budget (a lent GPU).

    python tools/full_cells.py --budget 420 --device cuda --out DIR

A whole `full` chapter does not fit a short GPU lease, but its cells are independent: each one
written here is the record a complete `full` run writes (same config, same hash), so that run
reuses it. The order is cheapest first: LeNet5 (20 epochs on 60,000 MNIST images), the
fixed-steps control, then MiniAlexNet run 0 of each batch size from the largest down (then run
1, ...), each started only when the seconds per step measured so far say that it ends inside
the budget. The summary
records of a partial sweep are not kept. ``DIR/plan.json`` gets every cell's measured time
and the projected time of the rest of the profile at those rates; ``DIR/records.tar`` the
records.
"""
from __future__ import annotations

import argparse
import json
import math
import tarfile
import time
from pathlib import Path

import torch

from reprobook import data, htsr
from reprobook.results import Store, hardware, work_root



def sweep_steps(s: dict, batch: int) -> int:
    return s["mini_epochs"] * math.ceil(s["mini_train"] / batch)


def save(out: Path, store, profile, dev, budget, t_start, cells, skipped) -> dict:
    """Write the plan and every cell record so far (the run may be cut off at any cell)."""
    out.mkdir(parents=True, exist_ok=True)
    plan = {"profile": profile, "chapter": "htsr", "device": str(dev), "hardware": hardware(),
            "budget_s": budget, "elapsed_s": round(time.time() - t_start, 1),
            "done": cells, "not_run": skipped,
            "projected_rest_s": sum(c.get("projected_s", 0) for c in skipped)}
    (out / "plan.json").write_text(json.dumps(plan, indent=1))
    root = store.root / profile
    with tarfile.open(out / "records.tar", "w") as tar:
        for path in sorted(root.glob("*_run/*.json")) + sorted(root.glob("htsr_lenet5/*.json")):
            tar.add(path, arcname=str(path.relative_to(store.root)))
    return plan


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, required=True, help="seconds for all cells")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--profile", default="full", help="another profile only to try the script")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    deadline, t_start = time.time() + args.budget, time.time()
    profile = args.profile
    dev, s, seed = torch.device(args.device), dict(htsr.PROFILES[profile]), 0
    store, cells = Store(work_root()), []

    def timed(name, steps, fn):
        t0 = time.time()
        fn()
        cells.append({"cell": name, "steps": steps, "seconds": round(time.time() - t0, 1),
                      "s_per_step": (time.time() - t0) / steps})
        print(json.dumps(cells[-1]), flush=True)
        save(args.out, store, profile, dev, args.budget, t_start, cells, [])  # if cut short

    mnist = data.load_mnist()
    timed("htsr_lenet5", s["lenet_epochs"] * math.ceil(s["lenet_train"] / 128),
          lambda: htsr.run_lenet5(store, profile, seed, s, mnist, device=dev))
    cifar = data.load_cifar10()
    # fixed_steps_data materialises steps x batch images (9.4 kB each): 47 GB at batch 1000
    fits = [b for b in s["fixed_batches"] if s["fixed_steps"] * b * 3 * 28 * 28 * 4 < 8e9]
    skipped = [{"cell": f"htsr_fixed_steps_run batch {b}", "steps": s["fixed_steps"],
                "why": "its training rows do not fit in memory (steps x batch images)"}
               for b in s["fixed_batches"] if b not in fits]
    timed("htsr_fixed_steps_run batches " + ",".join(map(str, fits)), s["fixed_steps"] * len(fits),
          lambda: htsr.run_fixed_steps(store, profile, seed, dict(s, fixed_batches=fits), cifar,
                                       device=dev))
    rate = cells[-1]["s_per_step"]
    for r in range(s["mini_runs"]):  # run 0 of every batch size first, largest batch first
        for b in sorted(s["mini_batches"], reverse=True):
            need = sweep_steps(s, b) * rate * (1.1 if b >= 128 else 1.3)
            if any(c.get("batch") == b for c in skipped) or time.time() + need > deadline:
                skipped.append({"cell": f"htsr_minialexnet_run batch {b} run {r}", "batch": b,
                                "steps": sweep_steps(s, b), "projected_s": round(need)})
                continue
            one = dict(s, mini_batches=[b], mini_runs=r + 1)
            timed(f"htsr_minialexnet_run batch {b} run {r}", sweep_steps(s, b),
                  lambda: htsr.run_minialexnet(store, profile, seed, one, cifar, device=dev))
            rate = max(rate, cells[-1]["s_per_step"])
    plan = save(args.out, store, profile, dev, args.budget, t_start, cells, skipped)
    print(json.dumps({k: plan[k] for k in ("elapsed_s", "projected_rest_s")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
