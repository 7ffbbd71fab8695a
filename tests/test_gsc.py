"""GSC kernels against the spec's oracles (shared/specs/gsc.md §4) and brute-force Jacobians."""
import math

import numpy as np
import pytest
import torch

from reprobook import gsc

D = torch.float64


def brute_gsc_curve(model, x, y, group):
    """Slow reference: full per-input Jacobians by autograd.functional, no shared code path."""
    n = x.shape[0]
    b = group if model.batch_norm else 1
    qm_all, fk_all, f0_all = [], [], []
    for g in range(n // b):
        xs, ys = x[g * b:(g + 1) * b], y[g * b:(g + 1) * b]
        _, lin, _ = model(xs, record=True)
        qms = []
        for k in range(len(model.linears)):
            def tail(fk, k=k):
                h = fk
                for i in range(k, len(model.linears)):
                    if i > k:
                        h = model.linears[i](h)
                    if i == len(model.linears) - 1:
                        break
                    h = model.act(model.norm(h))
                return (h * ys).sum()
            jac = torch.autograd.functional.jacobian(tail, lin[k].detach())
            qms.append(jac.norm() / math.sqrt(jac.numel()))
        out = model(xs)
        qm_all.append(torch.stack(qms))
        fk_all.append(torch.stack([f.norm() for f in lin]).detach())
        f0_all.append((out * ys).sum().abs().detach())
    qm, fk, f0 = torch.stack(qm_all), torch.stack(fk_all), torch.stack(f0_all)
    q = lambda t: t.pow(2).mean(0).sqrt()
    return (q(qm) * q(fk) / q(f0)).numpy()


@pytest.mark.parametrize("arch", gsc.ARCHS)
def test_gsc_curve_matches_brute_force_jacobians(arch):
    gen = torch.Generator().manual_seed(1)
    model = gsc.make_mlp(arch, depth=5, width=6, generator=gen).double()
    x, y = (t.double() for t in gsc.gaussian_data(8, 6, gen))
    fast = gsc.gsc_curve(model, x, y, group=4)["gsc"]
    auto = gsc.aggregate(gsc.layer_stats(model, x, y, group=4))["gsc"]
    ref = brute_gsc_curve(model, x, y, group=4)
    np.testing.assert_allclose(fast, ref, rtol=1e-5)
    np.testing.assert_allclose(auto, ref, rtol=1e-5)


@pytest.mark.parametrize("arch", gsc.ARCHS)
def test_fast_path_agrees_with_autograd_moments(arch):
    gen = torch.Generator().manual_seed(2)
    model = gsc.make_mlp(arch, depth=6, width=10, generator=gen).double()
    x, y = (t.double() for t in gsc.gaussian_data(40, 10, gen))
    a = gsc.fast_layer_stats(model, x, y, group=20)
    b = gsc.layer_stats(model, x, y, group=20)
    for key in ("qm", "fk", "f0", "z_sum", "z_sq", "pos", "neg"):
        torch.testing.assert_close(a[key], b[key], rtol=1e-7, atol=1e-9)


def test_qm_norm_oracle_1():
    a = torch.randn(7, 5, dtype=D)
    assert math.isclose(float(gsc.qm_norm(a)), float(torch.linalg.svdvals(a).pow(2).sum().div(5).sqrt()),
                        rel_tol=1e-10)


def test_orthogonal_layer_oracle_2():
    q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=D))
    x = torch.randn(6, dtype=D)
    assert math.isclose(float(gsc.gsc_pointwise(q, x, q @ x)), 1.0, rel_tol=1e-12)


def test_diag_oracle_5_and_scale_oracle_6():
    a = torch.diag(torch.tensor([3.0, 1.0], dtype=D))
    x = torch.tensor([1.0, 0.0], dtype=D)
    assert math.isclose(float(gsc.gsc_pointwise(a, x, a @ x)), math.sqrt(5) / 3, rel_tol=1e-12)
    c = 7.5 * torch.eye(4, dtype=D)
    x = torch.randn(4, dtype=D)
    assert math.isclose(float(gsc.gsc_pointwise(c, x, c @ x)), 1.0, rel_tol=1e-12)


def test_deep_orthogonal_linear_net_oracle_4():
    """Orthogonal linear layers, dot-product error, fixed-length inputs: dataset GSC(k,0) = 1."""
    d, depth, n = 8, 4, 4000
    gen = torch.Generator().manual_seed(3)
    model = gsc.make_mlp("relu", depth=depth, width=d, init="orthogonal", generator=gen)
    model.act = torch.nn.Identity()
    with torch.no_grad():
        for lin in model.linears:
            lin.weight /= math.sqrt(2)  # remove the ReLU gain: exactly orthogonal
    x, _ = gsc.gaussian_data(n, d, gen)
    y = torch.randn(n, d, generator=gen)  # isotropic labels
    curve = gsc.gsc_curve(model, x, y)["gsc"]
    np.testing.assert_allclose(curve, 1.0, rtol=0.05)


def _norm_gsc(kind, z):
    norm = gsc.Norm(kind, eps=0.0)
    jac = torch.autograd.functional.jacobian(lambda t: norm(t).flatten(), z).reshape(z.numel(), z.numel())
    return float(gsc.gsc_pointwise(jac, z, norm(z)))


def test_layer_norm_oracle_8():
    z = torch.randn(20, dtype=D)
    z = z - z.mean()
    assert math.isclose(_norm_gsc("layer", z), math.sqrt(18 / 20), rel_tol=1e-9)


def test_batch_norm_oracles_9_and_10():
    b = 8
    z = torch.randn(b, 3, dtype=D)
    z = (z - z.mean(0)) / z.std(0, unbiased=False)
    assert math.isclose(_norm_gsc("batch", z), math.sqrt((b - 2) / b), rel_tol=1e-9)
    s = torch.tensor([0.5, 1.0, 3.0], dtype=D)
    zs = z * s
    expected = math.sqrt((b - 2) / b * float(s.pow(-2).mean() * s.pow(2).mean()))
    assert math.isclose(_norm_gsc("batch", zs), expected, rel_tol=1e-9)


def test_relu_symmetric_input_oracle_7():
    z = torch.randn(2000, generator=torch.Generator().manual_seed(0), dtype=D)
    jac = torch.diag((z > 0).double())
    assert abs(float(gsc.gsc_pointwise(jac, z, torch.relu(z))) - 1.0) < 0.05


def test_sign_diversity_oracle_12():
    z = torch.cat([torch.ones(30), -torch.ones(70)]).view(100, 1)
    stats = {"qm": torch.ones(100, 1), "fk": torch.ones(100, 1), "f0": torch.ones(100),
             "z_sum": z.sum(0, keepdim=True).T, "z_sq": z.pow(2).sum(0, keepdim=True).T,
             "pos": (z > 0).sum(0, keepdim=True).T.double(), "neg": (z < 0).sum(0, keepdim=True).T.double(),
             "n": 100}
    assert math.isclose(float(gsc.aggregate(stats)["sign_diversity"][0]), 0.3)


def test_batch_relu_mean_field_rate_oracle_13():
    rates = [gsc.noise_replicate("batch-relu", s, 50, 100, 1000)["rate"] for s in range(2)]
    assert abs(np.mean(rates) - math.sqrt(math.pi / (math.pi - 1))) < 0.03


@pytest.mark.parametrize("arch,lo,hi", [("relu", 0.97, 1.03), ("tanh", 0.97, 1.03)])
def test_no_explosion_oracle_14(arch, lo, hi):
    reps = [gsc.noise_replicate(arch, s, 50, 100, 1000) for s in range(4)]
    assert lo <= np.mean([r["rate"] for r in reps]) <= hi
    last = np.median([r["sign_diversity" if arch == "relu" else "preact_std"][-1] for r in reps])
    assert last < (0.1 if arch == "relu" else 0.15)


def test_effective_depth_oracle_15():
    assert gsc.effective_depth([0.0] * 10) == 0
    assert gsc.effective_depth([1.0, 1.0, 1.0], tau=1.0) == 3
    e = gsc.elementary_symmetric([0.1] * 12)
    for lam in range(13):
        assert math.isclose(e[lam], math.comb(12, lam) * 0.1 ** lam, rel_tol=1e-12)


def test_growth_rate_recovers_exponential():
    g = 3.0 * 1.1 ** np.arange(50)[::-1]  # index 0 = input side, largest
    assert math.isclose(gsc.growth_rate(g), 1.1, rel_tol=1e-9)


def test_kl_error_equals_cross_entropy():
    logits = torch.randn(64, 10)
    labels = torch.randint(0, 10, (64,))
    torch.testing.assert_close(gsc.kl_error(logits, labels), gsc.cross_entropy_error(logits, labels))
    ref = torch.nn.functional.cross_entropy(logits, labels, reduction="sum")
    torch.testing.assert_close(gsc.kl_error(logits, labels), ref)


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(ValueError, match="choose one of"):
        gsc.make_mlp("gelu")


def test_train_cifar_resumes_from_checkpoint(tmp_path):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(256, 20, generator=gen), torch.randint(0, 10, (256,), generator=gen)
    kw = dict(depth=4, width=8, batch=64, gsc_points=100, seed=0)
    full = gsc.train_cifar("selu", 0.01, 3, x.float(), y, **kw)
    ck = tmp_path / "run.ckpt.pt"
    gsc.train_cifar("selu", 0.01, 2, x.float(), y, checkpoint=ck, **kw)
    resumed = gsc.train_cifar("selu", 0.01, 3, x.float(), y, checkpoint=ck, **kw)
    assert resumed["hist"]["train_error"] == full["hist"]["train_error"]
