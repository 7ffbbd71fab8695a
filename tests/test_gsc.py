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


@pytest.mark.numerics
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


# --------------------------------------------------------------------------- the package move
# Values written by the first loop (the single-module reprobook/gsc.py, before the move onto
# reprobook.train.fit), same seeds, same synthetic data: the moved code must reproduce them.
# Only the two runs that converge are compared with recorded numbers, with tolerances from the
# spread of the same runs measured across CPU kernels: ATEN_CPU_CAPABILITY default / avx2 /
# avx512, MKL_ENABLE_INSTRUCTIONS=AVX2 with ONEDNN_MAX_CPU_ISA=AVX2, at 1 and 2 threads
# (8 configurations, measured 2026-12, torch 2.14.1). Training errors, effective depths and
# step sizes were identical in all 8; epoch losses varied by at most 9.3e-8 relative and
# GSC(L, 0) by 7.5e-7 (5.5e-8 and 4.5e-7 from these records): rtol 1e-5 is >10x that.
# The lr = 1e4 batch-relu run is chaotic (its 4th-epoch training error ranged over 0.883-0.898
# across the 8 configurations) and the lr = 1e3 SeLU run diverges in its first epoch: for both,
# only the invariants are tested (test_train_cifar_diverging_runs_keep_their_invariants).
OLD_LOOP = {
    ("batch-tanh", 0.05): {
        "train_error": [0.9140625, 0.875, 0.84765625, 0.875, 0.84375],
        "loss": [2.46391224861145, 2.4050583243370056, 2.3604499101638794, 2.339309811592102,
                 2.3169315457344055],
        "gsc_L0": [0.04525584546896442, 0.04385832322273122, 0.04235103693888516,
                   0.04105446567361118, 0.04066642407050398],
        "eff_depth": [3, 4, 4, 4, 5], "lr": [0.05, 0.05, 0.05, 0.05, 0.016666666666666666]},
    ("selu", 0.5): {
        "train_error": [0.88671875, 0.8203125, 0.8046875, 0.80859375, 0.74609375],
        "loss": [2.5770851373672485, 2.2494696378707886, 2.20489239692688, 2.1722025871276855,
                 2.0961462259292603],
        "gsc_L0": [0.32538795431272066, 0.3170845639585243, 0.332592237039138,
                   0.32392820875935646, 0.32114390847428465],
        "eff_depth": [5, 5, 5, 5, 5], "lr": [0.5, 0.5, 0.5, 0.5, 0.16666666666666666]},
}
# Growth rates of the first module's noise experiment (depth 50, width 100, 200 points).
# Measured spread over the same 8 configurations: batch-relu 7.0e-4 relative (its gradients
# explode: rounding differences grow by ~1.2 per layer, ~1e4 over 50 layers), relu 1.0e-5,
# every other architecture below 1e-6. Tolerances: 1e-2 for batch-relu, 1e-4 for the others.
OLD_RATES = {"relu": 1.0290175576544378, "layer-relu": 1.023716707645543,
             "batch-relu": 1.2154807209239267, "tanh": 0.9962516292258979,
             "layer-tanh": 1.0891592457800428, "batch-tanh": 1.101367055979515,
             "selu": 1.03825213139282}
RATE_RTOL = {"batch-relu": 1e-2}


def _synthetic():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(300, 20, generator=gen), torch.randint(0, 10, (300,), generator=gen)


def _train_synthetic(arch, lr):
    """300 points, batch 64 (a partial last batch), patience 1, 5 epochs (the first loop's test)."""
    x, y = _synthetic()
    return gsc.train_cifar(arch, lr, 5, x, y, depth=5, width=12, batch=64, patience=1,
                           gsc_points=200, seed=0)


def _replay_decay(lr0, errors, patience=1, divisor=3.0):
    """The step sizes the report's rule gives for a history of training errors, written out."""
    lrs, best, wait, lr = [], None, 0, lr0
    for err in errors:
        lrs.append(lr)
        if best is None or err < best:
            best, wait = err, 0
        else:
            wait += 1
            if wait >= patience:
                lr, wait = lr / divisor, 0
    return lrs


@pytest.mark.numerics
@pytest.mark.parametrize("arch,lr", list(OLD_LOOP))
def test_train_cifar_on_the_shared_loop_reproduces_the_first_loop(arch, lr):
    """The converging runs; the decay fires once in each (patience 1)."""
    r = _train_synthetic(arch, lr)
    want = OLD_LOOP[(arch, lr)]
    for key in ("train_error", "eff_depth", "lr"):  # identical on every CPU measured
        assert r["hist"][key] == want[key], key
    for key in ("loss", "gsc_L0"):
        np.testing.assert_allclose(r["hist"][key], want[key], rtol=1e-5, err_msg=key)


@pytest.mark.numerics
def test_train_cifar_diverging_runs_keep_their_invariants():
    """lr = 1e4 with batch norm: a chaotic run whose trajectory differs between CPU kernels.
    What holds on every CPU: all 5 epochs run (batch norm keeps the loss finite), the loss is
    enormous (2,300-8,300 measured; a trained 10-class loss is ~2.3), the training error stays
    near chance (0.9; 0.86-0.94 measured), every layer moves (effective depth = depth), and
    the step size follows the divide-by-3 rule on the errors the run produced; here the decay
    fires (no epoch beats the first). lr = 1e3 SeLU: the loss is not finite in the first
    epoch; the run stops there and reports error 1 and no GSC or depth."""
    r = _train_synthetic("batch-relu", 1e4)
    h = r["hist"]
    assert len(h["train_error"]) == 5 and all(math.isfinite(v) for v in h["loss"])
    assert min(h["loss"]) > 100
    assert all(0.8 <= e <= 1.0 for e in h["train_error"])
    assert h["eff_depth"] == [5] * 5 and h["eff_depth_gsc"] == [5] * 5
    assert all(math.isfinite(g) and g > 0 for g in h["gsc_L0"])
    assert h["lr"] == _replay_decay(1e4, h["train_error"])
    assert h["lr"][-1] < 1e4 and r["final_error"] == h["train_error"][-1]

    r = _train_synthetic("selu", 1e3)
    h = r["hist"]
    assert len(h["loss"]) == 1 and not math.isfinite(h["loss"][0])  # stopped after epoch 1
    assert h["train_error"] == [1.0] and r["final_error"] == 1.0
    assert math.isnan(h["gsc_L0"][0]) and math.isnan(h["gsc_rate"][0])
    assert h["eff_depth"] == [0] and h["eff_depth_gsc"] == [0] and h["lr"] == [1e3]
    assert all(math.isnan(v) for v in r["rho_gsc"])


@pytest.mark.numerics
def test_noise_rates_reproduce_the_first_module():
    for arch, want in OLD_RATES.items():
        got = gsc.noise_replicate(arch, 0, 50, 100, 200)["rate"]
        assert math.isclose(got, want, rel_tol=RATE_RTOL.get(arch, 1e-4)), (arch, got, want)


def test_divide_on_plateau_divides_exactly():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01)
    rule = gsc.DivideOnPlateau(patience=1)
    hist = {"train_error": []}
    for err in (0.5, 0.5, 0.5):
        hist["train_error"].append(err)
        rule.epoch_end(0, opt, hist)
    assert opt.param_groups[0]["lr"] == (0.01 / 3) / 3  # not 0.01 * (1/3) * (1/3), one ulp off


# --------------------------------------------------------------------------- the notebook's former asserts
@pytest.mark.numerics
def test_small_noise_grid_batch_relu_explodes_relu_does_not(tmp_path):
    """Seeded replacements for the scientific asserts the chapter notebook used to make."""
    from reprobook.results import Store
    from reprobook.runner import Runner
    run = Runner("gsc", "small", store=Store(tmp_path))
    out = run.run("gsc_noise", n_datasets=4, archs=["relu", "batch-relu"])["values"]
    assert out["rate"]["batch-relu"] > 1.1
    assert 0.95 < out["rate"]["relu"] < 1.05


# --------------------------------------------------------------------------- effective depth variants
def test_layer_io_norms_against_recorded_forward():
    gen = torch.Generator().manual_seed(4)
    for arch in ("tanh", "batch-relu", "layer-tanh"):
        model = gsc.make_mlp(arch, depth=4, width=6, generator=gen).double()
        x = torch.randn(8, 6, generator=gen, dtype=D)
        ins, outs = gsc.layer_io_norms(model, x, group=4)
        b = 4 if model.batch_norm else 1
        _, lin, pre = model(x.view(8 // b, b, 6), record=True)
        want_out = torch.stack([z.flatten(1).norm(dim=1) for z in lin], 1)
        h = [x.view(8 // b, b, 6)] + [model.act(p) for p in pre]
        want_in = torch.stack([t.flatten(1).norm(dim=1) for t in h], 1)
        torch.testing.assert_close(outs, want_out)
        torch.testing.assert_close(ins, want_in)


def test_gsc_weighted_rho_hand_computed():
    """One scalar layer: W(0) = 2I, W(t) = 3I. ||dW||_op = 1, ||f_in|| / ||f_out|| = 1/3:
    GSC-weighted rho = 1/3, operator-norm rho = 1/2."""
    model = gsc.make_mlp("relu", depth=1, width=4)
    with torch.no_grad():
        model.linears[0].weight.copy_(3 * torch.eye(4))
    w0 = [2 * torch.eye(4)]
    wc = gsc.weight_change(model, w0)
    assert math.isclose(wc["rho"][0], 0.5, rel_tol=1e-6)
    ins, outs = gsc.layer_io_norms(model, torch.randn(5, 4))
    assert math.isclose(gsc.gsc_weighted_rho(wc["op_change"], ins, outs)[0], 1 / 3, rel_tol=1e-5)


def test_effective_depth_tau_is_a_parameter_and_checked():
    rho = [0.1] * 12  # e_lambda = C(12, lambda) 0.1^lambda
    assert gsc.effective_depth(rho, tau=1e-6) == max(l for l in range(13) if math.comb(12, l) * 0.1 ** l >= 1e-6)
    assert gsc.effective_depth(rho, tau=1e-3) < gsc.effective_depth(rho, tau=1e-9)
    assert gsc.effective_depths(rho)["1e-06"] == gsc.effective_depth(rho, 1e-6)
    with pytest.raises(ValueError, match="tau"):
        gsc.effective_depth(rho, tau=0)


def test_log_fit_r2_is_one_for_exact_exponential_and_nan_for_diverged():
    g = 2.0 * 1.05 ** np.arange(30)[::-1]
    assert math.isclose(gsc.log_fit_r2(g), 1.0, rel_tol=1e-12)
    noisy = g * np.exp(np.random.default_rng(0).normal(0, 0.5, 30))
    assert gsc.log_fit_r2(noisy) < 0.99
    assert math.isnan(gsc.growth_rate(np.full(30, np.nan)))


# --------------------------------------------------------------------------- the ledger
# settings a claim needs that the experiments do not have yet (the claim stays inconclusive)
NOT_YET_SETTINGS = {"runs"}


def _tiny_run(tmp_path, monkeypatch):
    """The chapter's experiments end to end through the runner on tiny settings and fake
    CIFAR pixels (seconds)."""
    from reprobook import data
    from reprobook.results import Store
    from reprobook.runner import Runner
    gen = torch.Generator().manual_seed(0)
    fake = {"x_train": torch.randint(0, 256, (700, 3, 8, 8), generator=gen, dtype=torch.uint8),
            "y_train": torch.randint(0, 10, (700,), generator=gen), "source": "fake pixels"}
    monkeypatch.setattr(data, "load_cifar10", lambda *a, **k: fake)
    run = Runner("gsc", "small", store=Store(tmp_path))
    small = dict(depth=12, width=20, n_datasets=2, n_points=200)
    out = {"gsc_noise": run.run("gsc_noise", **small)["values"],
           "gsc_ablation": run.run("gsc_ablation", **small)["values"]}
    rec = run.run("gsc_cifar", depth=6, train=600, lrs=[1e-2, 1e-1], search_epochs=1, epochs=3,
                  patience=1, gsc_points=200, probe_train=256, adam_epochs=2,
                  adam_archs=gsc.ARCHS_TRAINED)
    out["gsc_cifar"] = rec["values"]
    out["_config"] = {"gsc_cifar": rec["config"]}
    return out


def test_every_ledger_key_is_written_by_the_experiments(tmp_path, monkeypatch):
    from reprobook import claims, registry
    values = _tiny_run(tmp_path, monkeypatch)
    for c in claims.load_ledger("gsc"):
        if not c.ours:  # no computation of ours (not_run_reason says why)
            continue
        exp, key = c.ours["experiment"], c.ours["key"]
        if c.not_run_reason and exp not in values:
            continue
        assert exp in values, f"{c.id}: experiment {exp} is not one the chapter runs"
        assert claims.lookup(values[exp], key) is not None, f"{c.id}: key {key} not in the record"
        for cond in [*c.needs, *c.sanity]:
            for k, _, _ in claims._parse_any(cond, c.id):
                place, _, rest = k.partition(".")
                if place == "values":
                    assert claims.lookup(values[exp], rest) is not None, f"{c.id}: {k}"
                else:  # the experiment's config that the ledger's needs read
                    if rest in NOT_YET_SETTINGS:  # gates a claim the experiment cannot test yet
                        continue
                    assert claims.lookup(values["_config"][exp], rest) is not None, f"{c.id}: {k}"
        assert key.split(".")[0] in registry.get(exp).outputs, f"{c.id}: {key} not declared"
    assert isinstance(values["gsc_cifar"]["trained"]["selu"], bool)


def test_ledger_has_30_claims_and_opposite_thresholds_are_disjoint():
    from reprobook import claims
    ledger = claims.load_ledger("gsc")
    assert len(ledger) >= 30
    grid = np.round(np.arange(0.90, 1.30, 0.0005), 4)
    good = ("reproduced", "partly")
    explode, calm = {}, {}
    for c in ledger:
        if not c.ours or not c.ours["key"].startswith("rate."):
            continue
        arch = c.ours["key"].split(".", 1)[1]
        for s in c.sources():
            target = explode if getattr(c, s) == "explodes" else calm if getattr(c, s) == "no explosion" else None
            if target is not None:
                target.setdefault(arch, []).append((c, s))
    assert set(explode) == set(gsc.ARCHS_TRAINED) and set(calm) == {"relu", "layer-relu", "tanh", "layer-tanh"}
    # "explodes" and "no explosion" are statements about the same quantity, the growth rate:
    # one rate may never satisfy both, whichever architectures the two claims are about
    for c1, s1 in [p for v in explode.values() for p in v]:
        for c2, s2 in [p for v in calm.values() for p in v]:
            both = [r for r in grid if claims.judge(c1.check_for(s1), float(r), c1, s1) in good
                    and claims.judge(c2.check_for(s2), float(r), c2, s2) in good]
            assert not both, f"{c1.id}/{s1} and {c2.id}/{s2} overlap at {both[:3]}"
    by_id = {c.id: c for c in ledger}
    for cid in ("e1-layer-tanh-explodes", "e2-gsc-stable-in-training"):  # columns say opposite things
        c = by_id[cid]
        vals = np.round(np.arange(0.0, 1.3, 0.0005), 4)
        both = [v for v in vals if claims.judge(c.check, float(v), c, "paper") in good
                and claims.judge(c.check_report, float(v), c, "report") in good]
        assert not both, f"{c.id}: paper and report checks overlap at {both[:3]}"
    grows, noisy = by_id["e2-effective-depth-grows"].check, by_id["e2-effective-depth-noisy"].check
    assert noisy["kind"] == "less" and noisy["value"] <= grows["min_rho"]  # rho < 0.5 vs rho >= 0.8


def _seed_text():
    import os

    from reprobook.data import MissingData, seed_text
    try:
        return seed_text("003")
    except MissingData:
        if os.environ.get("CI", "").lower() == "true":
            raise  # CI has ../shared beside the clone: the count must run there
        pytest.skip("seed 003 not available on this machine")


NUMBER = r"(?<![\w.])(\d+(?:\.\d+)?(?:e-?\d+)?)(?![\w.]*\w)"
# Numbers of the seed's results sections (§3-§4) that are not claims, each with its reason.
# Setup numbers name the profile key that must hold them at `full` (the paper's scale).
NOT_CLAIMS = {
    "0": "layer index of the error layer (GSC(l, 0)) and the mean of the Gaussian inputs",
    "1": "the variance 1/100 of tanh/SeLU weights, inputs and labels; p < 1 in the derivation",
    "2": "the variance 2/100 of ReLU weights; L/2 in the derivation",
    "6": "a locator: the paper discusses Fig. 1(B, C) '6 pages later'",
    "7": ("setup", "archs"), "50": ("setup", "gsc_noise.depth"), "100": ("setup", "gsc_noise.width"),
    "10000": ("setup", "gsc_noise.n_points"), "51": ("setup", "gsc_cifar.depth"),
    "500": ("setup", "gsc_cifar.epochs"), "5": ("setup", "gsc_cifar.patience"),
    "10": "inputs rescaled to length 10 (gaussian_data: length sqrt(d) = 10)",
    "0.333": "the decay factor (DivideOnPlateau divides by 3)",
    "1e-5": "the paper's step-size grid", "3e-5": "the paper's step-size grid",
    "1e-4": "the paper's step-size grid", "3e3": "the paper's step-size grid",
    "1e4": "the paper's step-size grid", "3e4": "the paper's step-size grid",
    "70": "the report's step-size search budget (epochs)",
}


def _numbers(text):
    import re
    return {float(n) for n in re.findall(NUMBER, str(text))}


def test_ledger_covers_every_number_of_the_seed_results():
    import re
    from reprobook import claims
    text = _seed_text()
    body = text[text.index("## 3 EXPERIMENTS"):text.index("## REFERENCES")]
    body = re.sub(r"(?i)\b(figure|fig\.)\s*\d+(\s*\([A-E]\))?(,?\s*\([A-E]\))*(\s*and\s*\([A-E]\))?", " ", body)
    body = re.sub(r"^#+ .*$", " ", body, flags=re.M)  # section headings
    found = set(re.findall(NUMBER, body))
    assert len(found) > 20, "the seed's text did not parse"
    covered = set()
    for c in claims.load_ledger("gsc"):
        for v in (c.paper, c.report, c.reference):
            covered |= _numbers(v) if not isinstance(v, (int, float)) else {float(v)}
    setup = gsc.PROFILES["full"]
    for n, reason in NOT_CLAIMS.items():
        if isinstance(reason, tuple):
            exp, _, key = reason[1].partition(".")
            want = len(gsc.ARCHS) if reason[1] == "archs" else setup[exp][key]
            assert float(n) == want, f"{n}: full profile {reason[1]} = {want}"
    missing = sorted((n for n in found if float(n) not in covered and n not in NOT_CLAIMS), key=float)
    assert not missing, f"numbers of seed 003 §3-4 in no claim and not allow-listed: {missing}"
    stale = sorted(n for n in NOT_CLAIMS if n not in found)
    assert not stale, f"allow-listed numbers that the seed does not contain: {stale}"
