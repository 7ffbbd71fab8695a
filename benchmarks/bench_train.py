"""Benchmark: reprobook.train.fit against a bare PyTorch loop on the same model and tensors.

Both loops draw the same permutations and run the same forward/backward/step; the ratio is the
loop's own overhead (target <= 1.1). Models: the HT-SR LeNet5 (batch 128, Adadelta), the HT-SR
MiniAlexNet (batch 32, SGD with momentum), the DropMax LeNet trunk with a softmax head (batch 100,
Adam) and the GSC ReLU MLP (50 x 100, batch 128, SGD). Not a test: nothing here can fail.

    .venv/bin/python benchmarks/bench_train.py [--steps 60]
"""
import argparse
import time

import torch
import torch.nn.functional as F

from common import write_rows
import torch.nn as nn

from reprobook import dropmax, gsc, htsr
from reprobook.train import fit


def bare(model, x, y, opt, epochs, batch, seed=0):
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed * 100003 + epoch))
        total = torch.zeros((), dtype=torch.float64)
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach().double() * len(idx)
        total.item()


def timed_pair(fa, fb, repeats=5):
    """Best-of-``repeats`` times of two functions, interleaved so that a noisy machine
    disturbs both alike."""
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for i, fn in enumerate((fa, fb)):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def case(name, make_model, make_opt, x, y, batch, epochs):
    steps = epochs * -(-len(x) // batch)
    m1, m2 = make_model(), make_model()
    o1, o2 = make_opt(m1), make_opt(m2)
    ce = lambda model, xb, yb: F.cross_entropy(model(xb), yb)  # noqa: E731
    bare(m1, x, y, o1, 1, batch)  # warm-up
    t_ref, t_fit = (t / steps for t in timed_pair(
        lambda: bare(m1, x, y, o1, epochs, batch),
        lambda: fit(m2, (x, y), ce, o2, epochs=epochs, batch=batch)))
    return {"what": f"{name}: time per training step", "ours_s": t_fit, "reference_s": t_ref,
            "ratio": t_fit / t_ref, "target": "<= 1.1"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    args = ap.parse_args()
    batch = 128
    n = batch * args.steps // 2
    g = torch.Generator().manual_seed(0)
    x_img, y = torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)
    x_vec = torch.randn(n, 100, generator=g)
    rows = [
        case("LeNet5 (HT-SR), batch 128, Adadelta", lambda: htsr.LeNet5(torch.Generator().manual_seed(0)),
             lambda m: torch.optim.Adadelta(m.parameters(), lr=1.0), x_img, y, batch, 2),
        case("MiniAlexNet (HT-SR), batch 32, SGD momentum",
             lambda: htsr.MiniAlexNet(torch.Generator().manual_seed(0)),
             lambda m: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9),
             torch.randn(32 * 12, 3, 28, 28, generator=g), y[:32 * 12], 32, 1),
        case("DropMax LeNet trunk + softmax, batch 100, Adam",
             lambda: nn.Sequential(dropmax.make_trunk("lenet"), nn.LazyLinear(10)),
             lambda m: torch.optim.Adam(m.parameters(), lr=1e-3), x_img, y, 100, 2),
        case("GSC ReLU MLP 50x100, batch 128, SGD",
             lambda: gsc.make_mlp("relu", d_out=10, generator=torch.Generator().manual_seed(0)),
             lambda m: torch.optim.SGD(m.parameters(), lr=1e-3), x_vec, y, batch, 2),
    ]
    write_rows("train", rows)


if __name__ == "__main__":
    main()
