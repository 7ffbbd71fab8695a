"""Benchmark: the HT-SR analyser and MiniAlexNet training speed on this machine.

- seconds to analyse every layer of the pretrained MobileNetV2 (from its PyPI wheel) and a
  4096 x 9216 Gaussian matrix (AlexNet FC1's shape): ESD, MP fit, power-law fit, phase;
- seconds per epoch of MiniAlexNet training (50,000 CIFAR-10 images, the authors' setup) at
  batch sizes 2 and 500: a full epoch by default, or ``--steps`` steps scaled to an epoch.
(The training loop's own overhead against a bare loop: ``bench_train.py``.)

Writes _build/bench/htsr.json. Not a test: nothing here can fail.

    .venv/bin/python benchmarks/bench_htsr.py [--steps 0] [--device auto]
"""
import argparse
import json
import time

import torch

from reprobook import data, htsr
from reprobook.profiles import resolve_device
from reprobook.paths import REPO_ROOT
from reprobook.provenance import hardware


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
