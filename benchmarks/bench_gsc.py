"""Benchmark: the full-scale Gaussian-noise experiment (paper Fig. 1), a measured slice of it.

Times one replicate of 10,000 points for each of the 7 architectures (1/100 of the paper's
100 data sets) and, in the same run, the plain (10,000 x 100) @ (100 x 100) product the
experiment is made of. Prints the ratio to the matrix-multiply bound (target <= 3) and the
projected full-scale time; writes _build/bench/gsc.json and the ratio's row (group "gsc") of
results/bench.json. Not a test: nothing here can fail.

    .venv/bin/python benchmarks/bench_gsc.py [--points 10000] [--device auto]
"""
import argparse
import json
import time
from pathlib import Path

import torch

from common import write_rows
from reprobook import gsc
from reprobook.profiles import resolve_device
from reprobook.results import REPO_ROOT, hardware


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=10000)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    dev = resolve_device(args.device)
    flops = max(gsc.time_matmul(args.points, 100, device=dev) for _ in range(3))
    rows = {}
    for arch in gsc.ARCHS:
        times = []
        for r in range(args.repeats):
            t0 = time.perf_counter()
            gsc.noise_replicate(arch, r, 50, 100, args.points, device=dev)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        bound = gsc.matmul_flops(args.points, 50, 100) / flops
        rows[arch] = {"seconds": min(times), "bound_s": bound, "ratio": min(times) / bound}
        print(f"{arch:11s} {min(times):7.3f} s   bound {bound:6.3f} s   ratio {min(times) / bound:5.2f}")
    total = sum(r["seconds"] for r in rows.values())
    bound = sum(r["bound_s"] for r in rows.values())
    full_min = total * 100 * (10000 / args.points) / 60
    print(f"plain mm: {flops / 1e9:.1f} GFLOP/s; all 7: {total:.2f} s vs bound {bound:.2f} s, "
          f"ratio {total / bound:.2f}; projected full scale (7 x 100 x 10,000): {full_min:.1f} min")
    write_rows("gsc", [{"what": f"GSC noise replicate, 7 archs x {args.points:,} points, 50 x 100: "
                        "time vs the bare matrix products", "ours_s": total, "reference_s": bound,
                        "ratio": total / bound, "target": "<= 3"}])
    out = REPO_ROOT / "_build" / "bench" / "gsc.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"archs": rows, "gflops": flops / 1e9, "ratio": total / bound,
                               "projected_full_minutes": full_min, "hardware": hardware()}, indent=1))


if __name__ == "__main__":
    main()
