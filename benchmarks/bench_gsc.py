"""Benchmark: the full-scale Gaussian-noise experiment (paper Fig. 1), a measured slice of it.

Times one replicate of 10,000 points for each of the 7 architectures (1/100 of the paper's
100 data sets) and, in the same run, the plain (10,000 x 100) @ (100 x 100) product the
experiment is made of, at each thread count of ``--threads`` (default 1 and 2). Prints the
ratio to the matrix-multiply bound (target <= 3) and the projected full-scale time; writes
_build/bench/gsc.json and one row per thread count (group "gsc") of results/bench.json.
Not a test: nothing here can fail.

    .venv/bin/python benchmarks/bench_gsc.py [--points 10000] [--device auto] [--threads 1,2]
"""
import argparse
import json
import time
from pathlib import Path

import torch

from common import write_rows
from reprobook import gsc
from reprobook.profiles import resolve_device
from reprobook.paths import REPO_ROOT
from reprobook.provenance import hardware


def measure(points: int, repeats: int, dev) -> dict:
    """Time one replicate per architecture (best of ``repeats``) beside the matrix-product
    bound measured in the same process with the same thread count."""
    flops = max(gsc.time_matmul(points, 100, device=dev) for _ in range(3))
    rows = {}
    for arch in gsc.ARCHS:
        times = []
        for r in range(repeats):
            t0 = time.perf_counter()
            gsc.noise_replicate(arch, r, 50, 100, points, device=dev)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        bound = gsc.matmul_flops(points, 50, 100) / flops
        rows[arch] = {"seconds": min(times), "bound_s": bound, "ratio": min(times) / bound}
        print(f"{arch:11s} {min(times):7.3f} s   bound {bound:6.3f} s   ratio {min(times) / bound:5.2f}")
    total = sum(r["seconds"] for r in rows.values())
    bound = sum(r["bound_s"] for r in rows.values())
    full_min = total * 100 * (10000 / points) / 60
    print(f"plain mm: {flops / 1e9:.1f} GFLOP/s; all 7: {total:.2f} s vs bound {bound:.2f} s, "
          f"ratio {total / bound:.2f}; projected full scale (7 x 100 x 10,000): {full_min:.1f} min")
    return {"archs": rows, "gflops": flops / 1e9, "total_s": total, "bound_s": bound,
            "ratio": total / bound, "projected_full_minutes": full_min}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=10000)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    args = ap.parse_args()
    dev = resolve_device(args.device)
    runs, rows = {}, []
    for t in [int(v) for v in args.threads.split(",")]:
        torch.set_num_threads(t)
        print(f"-- {t} thread(s)")
        r = runs[t] = measure(args.points, args.repeats, dev)
        rows.append({"what": f"GSC noise replicate, 7 archs x {args.points:,} points, 50 x 100, "
                     f"{t} thread(s): time vs the bare matrix products", "ours_s": r["total_s"],
                     "reference_s": r["bound_s"], "ratio": r["ratio"], "target": "<= 3"})
    write_rows("gsc", rows)
    out = REPO_ROOT / "_build" / "bench" / "gsc.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"threads": runs, "hardware": hardware()}, indent=1))


if __name__ == "__main__":
    main()
