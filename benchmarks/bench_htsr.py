"""Benchmark: the HT-SR analyser and MiniAlexNet training speed on this machine.

- seconds to analyse every layer of the pretrained MobileNetV2 (from its PyPI wheel) and a
  4096 x 9216 Gaussian matrix (AlexNet FC1's shape): ESD, MP fit, power-law fit, phase;
- seconds per epoch of MiniAlexNet training (50,000 CIFAR-10 images, the authors' setup) at
  batch sizes 2 and 500: a full epoch by default, or ``--steps`` steps scaled to an epoch;
- milliseconds per SGD step of LeNet5 (batch 128, MNIST) through ``reprobook.train.fit`` and
  through a bare PyTorch loop over the same tensors and permutations (the loop's overhead).

Writes _build/bench/htsr.json. Not a test: nothing here can fail.

    .venv/bin/python benchmarks/bench_htsr.py [--steps 0] [--device auto]
"""
import argparse
import json
import time
from pathlib import Path

import torch

import torch.nn.functional as F

from reprobook import data, htsr
from reprobook.train import fit
from reprobook.profiles import resolve_device
from reprobook.results import REPO_ROOT, hardware


def epoch_seconds(batch, x, y, steps, device):
    model = htsr.MiniAlexNet(torch.Generator().manual_seed(0)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    n = len(x) if steps <= 0 else min(len(x), steps * batch)
    t0 = time.perf_counter()
    htsr.train(model, x[:n], y[:n], batch=batch, epochs=1, opt=opt,
               loss_fn=htsr.mse_softmax_loss, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) * len(x) / n, n


def lenet_step_ms(x, y, device, epochs=2, batch=128):
    """ms per step of LeNet5 through fit and through a bare loop (same model, data, shuffles)."""
    out = {}
    for name in ("fit", "bare"):
        model = htsr.LeNet5(torch.Generator().manual_seed(0)).to(device)
        opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
        xd, yd = x.to(device), y.to(device)
        t0 = time.perf_counter()
        if name == "fit":
            fit(model, (xd, yd), htsr.classification_loss(F.cross_entropy), opt, epochs=epochs,
                batch=batch, device=device)
        else:
            for epoch in range(epochs):
                perm = torch.randperm(len(xd), generator=torch.Generator().manual_seed(epoch)).to(device)
                for i in range(0, len(xd), batch):
                    idx = perm[i:i + batch]
                    loss = F.cross_entropy(model(xd[idx]), yd[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        out[name] = (time.perf_counter() - t0) * 1000 / (epochs * -(-len(xd) // batch))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=0, help="0: a full epoch")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    dev = resolve_device(args.device)
    out = {"hardware": hardware(), "device": str(dev)}
    state, source = htsr.pretrained_weights("mobilenet_v2")
    htsr.analyze(torch.randn(64, 32))  # warm-up (imports, first BLAS call)
    out["mobilenet_v2_s"] = htsr.time_analysis(state, repeat=2)
    out["mobilenet_v2_layers"] = len(htsr.analyze(state))
    out["random_4096x9216_s"] = htsr.time_analysis(torch.randn(4096, 9216), repeat=2)
    print(f"analyse MobileNetV2 ({out['mobilenet_v2_layers']} layers): {out['mobilenet_v2_s']:.2f} s; "
          f"4096x9216 Gaussian: {out['random_4096x9216_s']:.2f} s")
    mnist = data.load_mnist()
    ms = lenet_step_ms(mnist["x_train"][:8192], mnist["y_train"][:8192], dev)
    out["lenet5_step_ms_fit"], out["lenet5_step_ms_bare"] = ms["fit"], ms["bare"]
    print(f"LeNet5 step (batch 128): fit {ms['fit']:.1f} ms, bare loop {ms['bare']:.1f} ms")
    cifar = data.load_cifar10()
    x, y = htsr.cifar_crops(cifar["x_train"]), cifar["y_train"]
    for b in (2, 500):
        sec, n = epoch_seconds(b, x, y, args.steps, dev)
        out[f"minialexnet_epoch_bs{b}_s"] = sec
        out[f"minialexnet_epoch_bs{b}_images_timed"] = n
        print(f"MiniAlexNet epoch at batch {b}: {sec:.0f} s (timed on {n} images)")
    path = REPO_ROOT / "_build" / "bench" / "htsr.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
