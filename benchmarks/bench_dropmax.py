"""Benchmark: the training-step and test-time overhead of DropMax over softmax (report §4.1 asks
for it), measured on a quiet machine.

The chapter's training runs time their own steps while other runs share the CPU, so their
step ratios mix overhead with load (at `medium` adaptive DropMax once came out 0.59x softmax
per step). Here every model trains the same MNIST batches with the chapter's protocol
(``dropmax.experiments.make_loss``: the LeNet trunk, batch 100, Adam 1e-3, weight decay), the
models interleaved round by round and each timed as the best of ``--rounds`` rounds of
``--steps`` steps, one thread. Writes one row per model (group "dropmax") of
results/bench.json: its step time beside softmax's. Not a test: nothing here can fail.

    .venv/bin/python benchmarks/bench_dropmax.py [--steps 20] [--rounds 7]
"""
import argparse
import time

import torch

from common import write_rows
from reprobook.dropmax import PROFILES, Classifier
from reprobook.dropmax.experiments import MODELS, make_loss

MODELS_TIMED = ("softmax", "sparsemax", "random-class", "adaptive-class", "adaptive-logit")


def _step_fn(name: str, cfg: dict, x: torch.Tensor, y: torch.Tensor):
    torch.manual_seed(0)
    head, mode = MODELS[name]
    model = Classifier(cfg["trunk"], 10, head, mode or "class")
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    loss_fn = make_loss(name, cfg)

    def step(i: int) -> None:
        b = slice((i % 10) * cfg["batch"], (i % 10 + 1) * cfg["batch"])
        out = loss_fn(model, x[b], y[b])
        loss = out[0] if isinstance(out, tuple) else out
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = {k: v for k, v in PROFILES["medium"]["dropmax_mnist"].items()
           if k not in ("sizes", "seeds")} | {"seed": 0}
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(10 * cfg["batch"], 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (10 * cfg["batch"],), generator=gen)
    steps = {m: _step_fn(m, cfg, x, y) for m in MODELS_TIMED}
    for fn in steps.values():  # warm-up
        fn(0), fn(1)
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(args.rounds):
        for m, fn in steps.items():
            t0 = time.perf_counter()
            for i in range(args.steps):
                fn(i)
            best[m] = min(best[m], (time.perf_counter() - t0) / args.steps)
    base = best["softmax"]
    write_rows("dropmax", [{"what": f"DropMax: {m} training step (LeNet, batch 100) / softmax's",
                            "ours_s": best[m], "reference_s": base, "ratio": best[m] / base,
                            "target": "measured (no target)"}
                           for m in MODELS_TIMED if m != "softmax"])


if __name__ == "__main__":
    main()
