"""reprobook.train.fit against a bare PyTorch loop, and its schedules, early stopping and resume."""
import math

import pytest
import torch
import torch.nn.functional as F

from reprobook.train import EarlyStopping, EpochDecay, Plateau, StepDecay, fit


def _problem(n=37, d=5, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = torch.randint(0, k, (n,), generator=g)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(d, 8), torch.nn.Tanh(), torch.nn.Linear(8, k))
    return x, y, model


def _ce(model, xb, yb):
    out = model(xb)
    return F.cross_entropy(out, yb), {"acc": (out.argmax(1) == yb).float().mean()}


def _bare_loop(model, x, y, epochs, batch, seed, lr, gamma=1.0):
    """The loop written out by hand: the reference fit() must match."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses = []
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed * 100003 + epoch))
        tot = 0.0
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item() * len(idx)
        losses.append(tot / len(x))
        for gr in opt.param_groups:
            gr["lr"] *= gamma
    return losses


def test_fit_matches_bare_loop():
    x, y, m1 = _problem()
    _, _, m2 = _problem()
    ref = _bare_loop(m1, x, y, epochs=4, batch=8, seed=3, lr=0.1, gamma=0.9)
    opt = torch.optim.SGD(m2.parameters(), lr=0.1, momentum=0.9)
    hist = fit(m2, (x, y), _ce, opt, epochs=4, batch=8, seed=3, schedule=EpochDecay(0.9))
    assert hist["loss"] == pytest.approx(ref, rel=1e-6)
    for a, b in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(a, b)
    assert hist["lr"] == pytest.approx([0.1 * 0.9 ** e for e in range(4)])
    assert len(hist["acc"]) == 4 and all(0 <= a <= 1 for a in hist["acc"])


def test_resume_equals_uninterrupted(tmp_path):
    x, y, m1 = _problem()
    _, _, m2 = _problem()
    kw = dict(epochs=5, batch=8, seed=1)
    h1 = fit(m1, (x, y), _ce, torch.optim.Adam(m1.parameters(), 1e-2),
             schedule=StepDecay([2], 0.5), **kw)
    ck = tmp_path / "ck.pt"
    opt2 = torch.optim.Adam(m2.parameters(), 1e-2)
    fit(m2, (x, y), _ce, opt2, schedule=StepDecay([2], 0.5), checkpoint=ck, **(kw | {"epochs": 3}))
    _, _, m3 = _problem(seed=99)  # a fresh process would build a differently initialised model
    h3 = fit(m3, (x, y), _ce, torch.optim.Adam(m3.parameters(), 1e-2),
             schedule=StepDecay([2], 0.5), checkpoint=ck, **kw)
    assert h3["loss"] == pytest.approx(h1["loss"], rel=1e-6)
    assert h3["lr"] == pytest.approx(h1["lr"])
    for a, b in zip(m1.parameters(), m3.parameters()):
        torch.testing.assert_close(a, b)


def test_step_decay_by_steps():
    x, y, m = _problem(n=40)
    opt = torch.optim.SGD(m.parameters(), lr=1.0)
    seen = []
    fit(m, (x, y), _ce, opt, epochs=3, batch=10, schedule=StepDecay([4, 8], 0.1, unit="step"),
        on_step=lambda step, loss: seen.append(opt.param_groups[0]["lr"]))
    # 4 steps per epoch; the lr after steps 1..12 (decay applied after the hook sees the step)
    assert seen == pytest.approx([1.0] * 4 + [0.1] * 4 + [0.01] * 4)
    with pytest.raises(ValueError):
        StepDecay([1], unit="batch")


def test_plateau_divides_after_patience():
    x, y, m = _problem()
    opt = torch.optim.SGD(m.parameters(), lr=0.9)
    vals = iter([5.0, 4.0, 4.5, 4.2, 4.1, 3.0])
    hist = fit(m, (x, y), _ce, opt, epochs=6, batch=64, on_epoch=lambda e, mod: {"err": next(vals)},
               schedule=Plateau(metric="err", factor=1 / 3, patience=2))
    # epochs 2 and 3 do not beat 4.0 -> divide after epoch 3; epoch 4 (4.1) no better -> wait 1
    assert hist["lr"] == pytest.approx([0.9, 0.9, 0.9, 0.9, 0.3, 0.3])


def test_early_stopping_restores_best():
    x, y, m = _problem()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    vals = iter([3.0, 1.0, 2.0, 2.5, 2.7, 0.5])
    snapshots = []

    def measure(epoch, model):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"val": next(vals)}

    hist = fit(m, (x, y), _ce, opt, epochs=6, batch=64, on_epoch=measure,
               early_stopping=EarlyStopping("val", mode="min", patience=2))
    assert hist["stopped_early"] and hist["epochs_run"] == 4 and hist["best_epoch"] == 1
    for k, v in m.state_dict().items():
        torch.testing.assert_close(v, snapshots[1][k])


def test_bad_arguments():
    x, y, m = _problem()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="same length"):
        fit(m, (x, y[:-1]), _ce, opt, epochs=1, batch=4)
    with pytest.raises(ValueError, match="batch"):
        fit(m, (x, y), _ce, opt, epochs=1, batch=0)
    assert math.isfinite(fit(m, (x, y), lambda mod, a, b: F.cross_entropy(mod(a), b), opt,
                             epochs=1, batch=4)["loss"][0])
