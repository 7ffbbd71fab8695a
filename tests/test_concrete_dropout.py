"""Concrete Dropout kernels against closed forms, quadrature and scipy (spec §4 oracles)."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from scipy import integrate, optimize, special, stats

from reprobook.concrete_dropout import (ConcreteDropout, bernoulli_entropy, concrete_mask,
                                        concrete_regularization, concrete_regularizer,
                                        gaussian_mc_log_likelihood, predictive_moments)

torch.set_default_dtype(torch.float32)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- regulariser
def test_entropy_matches_scipy():
    for p in (1e-4, 0.1, 0.3, 0.5, 0.9):
        assert float(bernoulli_entropy(torch.tensor(p, dtype=torch.float64))) == pytest.approx(
            stats.entropy([p, 1 - p]), rel=1e-12)
    assert float(bernoulli_entropy(torch.tensor(0.0))) == 0.0
    assert float(bernoulli_entropy(0.5)) == pytest.approx(math.log(2), rel=1e-6)


def test_regularizer_value_by_hand():
    w = torch.arange(12, dtype=torch.float64).reshape(3, 4) / 10
    p, K, wr, dr = 0.3, 4, 1e-2, 0.5
    sq = float((np.arange(12) / 10) ** 2 @ np.ones(12))  # sum of squares
    expected = wr * sq / (1 - p) - dr * K * stats.entropy([p, 1 - p])
    got = concrete_regularizer(w, torch.tensor(p, dtype=torch.float64), K, wr, dr)
    assert float(got) == pytest.approx(expected, rel=1e-12)
    # spec oracle 8: at p = 0.1 the dropout term is dr*K*(0.1 log 0.1 + 0.9 log 0.9)
    got0 = concrete_regularizer(torch.zeros(2, 2), torch.tensor(0.1), 10, 1.0, 1.0)
    assert float(got0) == pytest.approx(10 * -0.325083, rel=1e-5)


def test_module_regularizer_uses_kernel_only():
    torch.manual_seed(0)
    lin = nn.Linear(5, 3)
    cd = ConcreteDropout(lin, weight_regularizer=0.1, dropout_regularizer=0.01, init_p=0.2)
    w = lin.weight.detach().numpy().astype(np.float64)
    expected = 0.1 * (w ** 2).sum() / 0.8 - 0.01 * 5 * stats.entropy([0.2, 0.8])
    assert cd.regularizer().item() == pytest.approx(expected, rel=1e-5)
    with torch.no_grad():
        lin.bias.fill_(100.0)  # the bias never enters the prior term
    assert cd.regularizer().item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("p,wr,dr,sign", [(0.2, 0.0, 1.0, -1), (0.8, 0.0, 1.0, +1),
                                          (0.2, 1.0, 0.0, +1), (0.8, 1.0, 0.0, +1),
                                          (0.45, 1.0, 1.0, +1), (0.3, 0.01, 1.0, -1)])
def test_regularizer_p_gradient_sign_and_value(p, wr, dr, sign):
    """d/dp [wr*a/(1-p) - dr*K*H(p)] = wr*a/(1-p)^2 + dr*K*log(p/(1-p))."""
    K, a = 10, 2.0
    w = torch.full((1, 2), 1.0, dtype=torch.float64)  # ||W||^2 = 2
    pt = torch.tensor(p, dtype=torch.float64, requires_grad=True)
    concrete_regularizer(w, pt, K, wr, dr).backward()
    closed = wr * a / (1 - p) ** 2 + dr * K * math.log(p / (1 - p))
    assert float(pt.grad) == pytest.approx(closed, rel=1e-10)
    assert np.sign(float(pt.grad)) == sign


def test_regularizer_bad_input():
    with pytest.raises(ValueError, match="input_dim"):
        concrete_regularizer(torch.ones(2), 0.1, 0, 1.0, 1.0)
    with pytest.raises(ValueError, match=">= 0"):
        concrete_regularizer(torch.ones(2), 0.1, 3, -1.0, 1.0)


# --------------------------------------------------------------------------- mask
@pytest.mark.parametrize("t", [0.05, 0.1, 2 / 3, 1.0, 3.0])
@pytest.mark.parametrize("p", [0.1, 0.3, 0.7])
def test_drop_probability_exact_at_every_temperature(p, t):
    """P(keep < 1/2) = P(z~ > 1/2) = p for every t (logit(u) is standard logistic)."""
    n = 200_000
    keep = concrete_mask(p, (n,), temperature=t, generator=_gen(1))
    frac = float((keep < 0.5).double().mean())
    se = math.sqrt(p * (1 - p) / n)
    assert abs(frac - p) < 5 * se


def _keep_mean_quadrature(p, t, eps=1e-7):
    lp = math.log(p + eps) - math.log(1 - p + eps)

    def keep(u):
        return 1 - special.expit((lp + math.log(u + eps) - math.log(1 - u + eps)) / t)
    return integrate.quad(keep, 0, 1, points=[p, 1 - p], limit=200)[0]


@pytest.mark.parametrize("p,t", [(0.3, 1.0), (0.3, 0.5), (0.3, 0.1), (0.1, 0.1), (0.5, 2 / 3),
                                 (0.8, 0.1)])
def test_mask_mean_by_quadrature(p, t):
    n = 400_000
    keep = concrete_mask(torch.tensor(p, dtype=torch.float64), (n,), temperature=t,
                         generator=_gen(2))
    mc_mean, mc_sd = float(keep.mean()), float(keep.std())
    quad = _keep_mean_quadrature(p, t)
    assert abs(mc_mean - quad) < 5 * mc_sd / math.sqrt(n)


def test_mask_mean_spec_table_and_limit():
    # spec §4.2 (p = 0.3): E[z~] = 0.3622 at t = 1, 0.3011 at t = 0.1, -> p as t -> 0
    assert 1 - _keep_mean_quadrature(0.3, 1.0) == pytest.approx(0.3622, abs=1e-3)
    assert 1 - _keep_mean_quadrature(0.3, 0.1) == pytest.approx(0.3011, abs=1e-3)
    assert 1 - _keep_mean_quadrature(0.3, 1e-3) == pytest.approx(0.3, abs=1e-3)
    assert 1 - _keep_mean_quadrature(0.5, 0.37) == pytest.approx(0.5, abs=1e-9)


def test_mask_is_differentiable_in_p_and_checks_input():
    p = torch.tensor(0.3, requires_grad=True)
    concrete_mask(p, (1000,), generator=_gen(3)).sum().backward()
    assert p.grad is not None and float(p.grad) < 0  # raising p lowers the keep mask
    with pytest.raises(ValueError, match="temperature"):
        concrete_mask(0.3, (3,), temperature=0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        concrete_mask(1.5, (3,))


# --------------------------------------------------------------------------- toy optimum
def _toy_optimum(a, b):
    """argmin_p a/(1-p) - b H(p): root of a/(1-p)^2 + b log(p/(1-p)) = 0 (spec §4.5)."""
    if a == 0:
        return 0.5
    return optimize.brentq(lambda p: a / (1 - p) ** 2 + b * math.log(p / (1 - p)), 1e-9, 0.5)


@pytest.mark.numerics
@pytest.mark.parametrize("a,b,K", [(1.0, 10.0, 10), (0.0, 5.0, 5), (3.0, 2.0, 2)])
def test_p_converges_to_analytic_optimum(a, b, K):
    """Train p_logit of a wrapper on its regulariser alone: p -> the closed-form minimiser."""
    lin = nn.Linear(K, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    lin.weight.requires_grad_(False)
    # weight term wr * ||W||^2 / (1-p) with ||W||^2 = K: wr = a / K; entropy weight dr * K = b
    cd = ConcreteDropout(lin, weight_regularizer=a / K, dropout_regularizer=b / K, init_p=0.1)
    opt = torch.optim.Adam([cd.p_logit], lr=0.05)
    for _ in range(1500):
        opt.zero_grad()
        cd.regularizer().backward()
        opt.step()
    target = _toy_optimum(a, b)
    assert cd.p.item() == pytest.approx(target, abs=2e-3)
    if (a, b) == (1.0, 10.0):
        assert target == pytest.approx(0.42497, abs=1e-5)  # spec §4.5


# --------------------------------------------------------------------------- inference
def _np_ll(y, mu, s):
    """Per-point MC log-likelihood with scipy: logsumexp_t log N - log T, mean over points."""
    lp = stats.norm.logpdf(y[None], loc=mu, scale=np.exp(0.5 * s))
    if lp.ndim == 3:
        lp = lp.sum(-1)
    return float(np.mean(special.logsumexp(lp, axis=0) - np.log(mu.shape[0])))


def test_log_likelihood_identical_samples_is_single_gaussian():
    y = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    mu = y.expand(7, 3).clone()
    assert float(gaussian_mc_log_likelihood(y, mu, torch.zeros(7, 3, dtype=torch.float64))) == \
        pytest.approx(-0.5 * math.log(2 * math.pi), rel=1e-12)  # spec §4.9: -0.918939
    mu2 = torch.tensor([[0.0, 0.0, 0.0]] * 4, dtype=torch.float64)
    ll = float(gaussian_mc_log_likelihood(y, mu2, math.log(4.0)))  # scalar log-variance
    assert ll == pytest.approx(stats.norm.logpdf(y.numpy(), 0, 2).mean(), rel=1e-12)


def test_log_likelihood_against_scipy():
    rng = np.random.default_rng(0)
    T, N, D = 20, 30, 3
    mu, s = rng.normal(size=(T, N)), rng.normal(size=(T, N))
    y = rng.normal(size=N)
    got = gaussian_mc_log_likelihood(torch.tensor(y), torch.tensor(mu), torch.tensor(s))
    assert float(got) == pytest.approx(_np_ll(y, mu, s), rel=1e-10)
    # two hand-computed samples: log((N(0;0,1) + N(0;1,1)) / 2)
    hand = math.log(0.5 * (math.exp(-0.5) + 1.0) / math.sqrt(2 * math.pi))
    got2 = gaussian_mc_log_likelihood(torch.zeros(1, dtype=torch.float64),
                                      torch.tensor([[0.0], [1.0]], dtype=torch.float64), 0.0)
    assert float(got2) == pytest.approx(hand, rel=1e-12)
    # D > 1: a point's log-likelihood sums over D
    mu3, s3, y3 = rng.normal(size=(T, N, D)), rng.normal(size=(T, N, D)), rng.normal(size=(N, D))
    got3 = gaussian_mc_log_likelihood(torch.tensor(y3), torch.tensor(mu3), torch.tensor(s3))
    assert float(got3) == pytest.approx(_np_ll(y3, mu3, s3), rel=1e-10)
    with pytest.raises(ValueError, match="shape"):
        gaussian_mc_log_likelihood(torch.zeros(5), torch.zeros(4, 6), 0.0)


def test_predictive_moments_against_numpy():
    rng = np.random.default_rng(1)
    mu, s = rng.normal(size=(10, 6, 2)), rng.normal(size=(10, 6, 2))
    m, epi, ale = predictive_moments(torch.tensor(mu), torch.tensor(s))
    np.testing.assert_allclose(m.numpy(), mu.mean(0), rtol=1e-12)
    np.testing.assert_allclose(epi.numpy(), mu.var(0, ddof=0), rtol=1e-12)
    np.testing.assert_allclose(ale.numpy(), np.exp(s).mean(0), rtol=1e-12)
    _, _, ale0 = predictive_moments(torch.tensor(mu[..., 0]), -math.log(4.0))  # scalar -log tau
    np.testing.assert_allclose(ale0.numpy(), np.full(6, 0.25), rtol=1e-12)
    with pytest.raises(ValueError, match="means"):
        predictive_moments(torch.zeros(5), 0.0)


# --------------------------------------------------------------------------- modules
def _seen_input(cd, x):
    """The input the wrapped layer actually receives (x * mask / (1-p))."""
    seen = {}
    h = cd.layer.register_forward_pre_hook(lambda mod, args: seen.setdefault("x", args[0]))
    out = cd(x)
    h.remove()
    return out, seen["x"]


def test_linear_mask_per_element():
    torch.manual_seed(0)
    cd = ConcreteDropout(nn.Linear(6, 4), init_p=0.4)
    assert (cd.input_dim, cd.temperature, cd.mc) == (6, 0.1, True)
    out, seen = _seen_input(cd, torch.ones(50, 6))
    assert out.shape == (50, 4)
    mask = seen * (1 - cd.p.detach())
    assert mask.std(0).min() > 0.1 and mask.std(1).min() > 0  # varies over rows and columns
    assert cd.p.item() == pytest.approx(0.4, rel=1e-6)


def test_conv2d_spatial_mask_constant_over_space():
    torch.manual_seed(0)
    cd = ConcreteDropout(nn.Conv2d(3, 5, 3, padding=1), init_p=0.3)
    assert (cd.input_dim, cd.temperature) == (3, pytest.approx(2 / 3))
    x = torch.randn(8, 3, 7, 9)
    out, seen = _seen_input(cd, x)
    assert out.shape == (8, 5, 7, 9)
    mask = seen / x
    assert torch.allclose(mask, mask[:, :, :1, :1].expand_as(mask), rtol=1e-4, atol=1e-6)
    assert mask[:, :, 0, 0].std() > 0.05  # varies over examples and channels
    with pytest.raises(ValueError, match="Conv2d input"):
        cd(torch.randn(8, 4, 7, 9))


def test_lstm_mask_shared_over_time():
    torch.manual_seed(0)
    lstm = nn.LSTM(4, 6, batch_first=True)
    cd = ConcreteDropout(lstm, init_p=0.3)
    assert cd.input_dim == 4 and cd.kernels()[0] is lstm.weight_ih_l0
    x = torch.randn(5, 11, 4)
    (out, (h, c)), seen = _seen_input(cd, x)
    assert out.shape == (5, 11, 6) and h.shape == (1, 5, 6)
    mask = seen / x
    assert torch.allclose(mask, mask[:, :1].expand_as(mask), rtol=1e-4, atol=1e-6)
    assert mask[:, 0].std() > 0.05
    w = lstm.weight_ih_l0.detach().double()
    expected = 1e-6 * float((w ** 2).sum()) / 0.7 - 1e-5 * 4 * stats.entropy([0.3, 0.7])
    assert cd.regularizer().item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="batch-first"):
        ConcreteDropout(nn.LSTM(4, 6))


def test_mc_flag_and_eval_mode():
    torch.manual_seed(0)
    lin = nn.Linear(6, 3)
    x = torch.randn(10, 6)
    plain = ConcreteDropout(lin, mc=False).eval()
    assert torch.equal(plain(x), lin(x))  # mc=False: the plain layer at eval
    plain.train()
    assert not torch.allclose(plain(x), lin(x))  # still dropped in training
    mc = ConcreteDropout(lin).eval()
    assert not torch.allclose(mc(x), mc(x))  # MC dropout: masks sampled at eval


def test_gradient_reaches_p_logit_and_weights():
    torch.manual_seed(0)
    cd = ConcreteDropout(nn.Linear(6, 3), init_p=0.3)
    (cd(torch.randn(20, 6)) ** 2).sum().backward()
    assert cd.p_logit.grad is not None and float(cd.p_logit.grad.abs()) > 0
    assert cd.layer.weight.grad.abs().sum() > 0


def test_concrete_regularization_sums_layers():
    model = nn.Sequential(ConcreteDropout(nn.Linear(3, 8), init_p=0.2), nn.ReLU(),
                          ConcreteDropout(nn.Linear(8, 1), init_p=0.3))
    total = concrete_regularization(model)
    assert total.item() == pytest.approx((model[0].regularizer() + model[2].regularizer()).item(),
                                         rel=1e-6)
    with pytest.raises(ValueError, match="no ConcreteDropout"):
        concrete_regularization(nn.Linear(2, 2))


def test_bad_layers_and_parameters():
    with pytest.raises(TypeError, match="nn.Linear"):
        ConcreteDropout(nn.ReLU())
    with pytest.raises(ValueError, match="init_p"):
        ConcreteDropout(nn.Linear(2, 2), init_p=1.0)
    with pytest.raises(ValueError, match="temperature"):
        ConcreteDropout(nn.Linear(2, 2), temperature=0.0)
    with pytest.raises(ValueError, match="features"):
        ConcreteDropout(nn.Linear(2, 2))(torch.zeros(3, 5))


# --------------------------------------------------------------------------- batched experiment net
from reprobook.concrete_dropout import experiments as cdx  # noqa: E402


def _module_copy(net, r):
    """Run r of a StackedRegressionNet as ConcreteDropout-wrapped nn.Linear modules."""
    l2 = net.lengthscale ** 2
    mods = []
    for w, b, q in zip(net.weights, net.biases, net.p_logits):
        lin = nn.Linear(w.shape[1], w.shape[2])
        with torch.no_grad():
            lin.weight.copy_(w[r].T)
            lin.bias.copy_(b[r, 0])
        cd = ConcreteDropout(lin, weight_regularizer=l2, dropout_regularizer=2.0)
        with torch.no_grad():
            cd.p_logit.copy_(q[r])
        mods.append(cd)
    return nn.ModuleList(mods)


def test_stacked_net_matches_concrete_dropout_modules():
    net = cdx.StackedRegressionNet(1, 3, 16, 3, lengthscale=0.3, seed=4)
    with torch.no_grad():
        for i, q in enumerate(net.p_logits):
            q.fill_(-2.0 + 0.3 * i)
    mods = _module_copy(net, 0)
    x = torch.randn(1, 9, 3)
    torch.manual_seed(7)
    mu, s, reg = net(x)
    torch.manual_seed(7)  # the same uniforms, drawn layer by layer in the same order
    h = x[0]
    for m in mods[:3]:
        h = torch.relu(m(h))
    mu_ref, s_ref = mods[3](h).squeeze(-1), mods[4](h).squeeze(-1)
    assert torch.allclose(mu[0], mu_ref, atol=1e-5) and torch.allclose(s[0], s_ref, atol=1e-5)
    assert reg[0].item() == pytest.approx(concrete_regularization(mods).item(), rel=1e-5)
    assert net.ps().shape == (1, 5)


def test_stacked_runs_are_independent():
    net = cdx.StackedRegressionNet(3, 2, 8, 2, lengthscale=0.1, heteroscedastic=False, seed=0)
    mu, s, reg = net(torch.randn(3, 5, 2))
    (mu[1].sum() + s[1].sum() + reg[1]).backward()  # only run 1 enters
    for p in net.parameters():
        g = p.grad
        assert g[0].abs().sum() == 0 and g[2].abs().sum() == 0 and g[1].abs().sum() > 0
    mods = _module_copy(net, 2)
    assert reg[2].item() == pytest.approx(concrete_regularization(mods).item(), rel=1e-5)


def test_run_synthetic_smoke():
    out = cdx.run_synthetic([10, 30, 50], [3, 2, 1], reps=1, width=8, val_size=40, samples=4)
    assert set(out["p"]) == set(cdx.LAYERS) and set(out["rmse"]) == {"10", "30", "50"}
    assert all(0 < v < 1 for layer in out["p"].values() for v in layer.values())
    assert all(math.isfinite(v) for v in out["ll"].values())


def test_uci_splits_standardised():
    from reprobook.data import DataError, load_uci
    try:
        d = cdx.uci_splits("boston", splits=3)
        raw = load_uci("bostonHousing", 2)
    except DataError as err:
        pytest.skip(f"UCI data not available: {err}")
    assert d["x_train"].shape == (3, len(raw["y_train"]), raw["x_train"].shape[1])
    assert torch.allclose(d["y_train"].mean(1), torch.zeros(3), atol=1e-4)
    assert torch.allclose(d["y_train"].std(1, unbiased=False), torch.ones(3), atol=1e-4)
    ytr = raw["y_train"].double()
    np.testing.assert_allclose(d["y_train"][2].double().numpy(),
                               ((ytr - ytr.mean()) / ytr.std(unbiased=False)).numpy(), atol=1e-4)
    assert torch.equal(d["y_test"][2], raw["y_test"])
    with pytest.raises(ValueError, match="unknown UCI set"):
        cdx.uci_splits("iris")


@pytest.mark.numerics
def test_map_em_third_pass_moves_p():
    from reprobook.data import DataError
    try:
        two = cdx.run_map_em("boston", epochs=3, batch=200, passes=2, splits=2, width=8)
        three = cdx.run_map_em("boston", epochs=3, batch=200, passes=3, splits=2, width=8)
    except DataError as err:
        pytest.skip(f"UCI data not available: {err}")
    assert two["p_init"] == three["p_init"]  # same seed: same random initial p's
    assert two["dp"] < 0.01 < 0.03 < three["dp"]
    with pytest.raises(ValueError, match="passes"):
        cdx.run_map_em("boston", epochs=1, batch=200, passes=4)


def test_drivers_fill_every_ledger_key(tmp_path):
    """Tiny runs of both experiments through the runner: every cd_synthetic / cd_uci claim
    finds its key, and the summary's keys are declared outputs."""
    from reprobook import claims, registry
    from reprobook.data import DataError
    from reprobook.results import Store
    from reprobook.runner import Runner
    # the ledger gates on the RMSE at N = 1000 and 10000: those sizes must be in the run
    settings = {"cd_synthetic": {"sizes": [10, 1000, 10000], "epochs": [2, 1, 1], "reps": 1, "width": 8,
                              "lengthscale": 1e-4, "batch": 20, "val_size": 30, "samples": 3,
                              "lr": 1e-3},
                "cd_uci": {"sets": ["boston"], "splits": 2, "width": 8, "depth": 2,
                           "epochs": {"boston": 1}, "batch": 128, "lr": 3e-3, "lengthscale": 1e-2,
                           "samples": 3, "map_em_sets": ["boston"], "map_em_epochs": {"boston": 1},
                           "map_em_batch": 200, "control_p": 1e-6}}
    run = Runner("concrete_dropout", "small", settings, store=Store(tmp_path))
    try:
        res = {"cd_synthetic": run.run("cd_synthetic"), "cd_uci": run.run("cd_uci")}
    except DataError as err:
        pytest.skip(f"UCI data not available: {err}")
    for name, rec in res.items():
        assert set(registry.get(name).outputs) <= set(rec["values"]), name
    mine = [c for c in claims.load_ledger("concrete_dropout")
            if (c.ours or {}).get("experiment") in res]
    assert len(mine) >= 10
    table = claims.evaluate(mine, res)
    # one data set only: the per-set keys of kin8nm and wine-red are the only ones absent
    absent = {c.id for c in mine if any(n in c.ours["key"] for n in ("kin8nm", "wine-red"))}
    assert {"uci-rmse-kin8nm", "uci-rmse-wine-red", "uci-ll-kin8nm", "uci-ll-wine-red"} <= absent
    missing = table[table["why"].str.contains("missing") & ~table["id"].isin(absent)]
    assert missing.empty, missing[["id", "why"]].to_string()
    assert set(table.loc[table["verdict"] == "not run", "id"]) == absent


def test_wrapper_runs_under_vmap_with_independent_masks():
    """Batched repeated runs (torch.func.vmap, randomness='different'): each run its own mask."""
    from torch.func import functional_call, stack_module_state, vmap
    torch.manual_seed(0)
    cd = ConcreteDropout(nn.Linear(4, 4), init_p=0.3)
    params, buffers = stack_module_state([cd, cd, cd])  # three identical runs
    out = vmap(lambda p, b, x: functional_call(cd, (p, b), (x,)),
               randomness="different")(params, buffers, torch.ones(3, 6, 4))
    assert out.shape == (3, 6, 4)
    assert not torch.allclose(out[0], out[1]) and not torch.allclose(out[1], out[2])


# --------------------------------------------------------------------------- MNIST: stacked classifier
def _mlp_module_copy(net, r):
    """Run r of a StackedMLPClassifier (all p learned) as ConcreteDropout-wrapped nn.Linear."""
    mods = []
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        lin = nn.Linear(w.shape[1], w.shape[2])
        with torch.no_grad():
            lin.weight.copy_(w[r].T)
            lin.bias.copy_(b[r, 0])
        cd = ConcreteDropout(lin, weight_regularizer=float(net.lengthscale2[r]), dropout_regularizer=2.0)
        with torch.no_grad():
            cd.p_logit.copy_(net.p_logits[r, i])
        mods.append(cd)
    return nn.ModuleList(mods)


def test_stacked_classifier_matches_concrete_dropout_modules():
    net = cdx.StackedMLPClassifier(1, 6, 12, 2, 4, lengthscale2=0.3, seed=1)
    with torch.no_grad():
        net.p_logits.copy_(torch.tensor([[-2.0, -1.0, 0.5]]))
    mods = _mlp_module_copy(net, 0)
    x = torch.randn(1, 7, 6)
    net.train()
    torch.manual_seed(3)
    out = net(x)
    torch.manual_seed(3)  # the same uniforms, layer by layer
    h = x[0]
    for i, m in enumerate(mods):
        h = m(h)
        if i < len(mods) - 1:
            h = torch.relu(h)
    assert torch.allclose(out[0], h, atol=1e-5)
    assert net.regularizer()[0].item() == pytest.approx(concrete_regularization(mods).item(), rel=1e-5)
    net.eval()  # eval: the plain network (inverted dropout: no rescaling)
    h = x[0]
    for i, m in enumerate(mods):
        h = m.layer(h)
        if i < len(mods) - 1:
            h = torch.relu(h)
    assert torch.allclose(net(x)[0], h, atol=1e-5)


def test_stacked_classifier_fixed_runs():
    """Fixed runs: hard Bernoulli(p) drops, no gradient into p, penalty l^2 ||W||^2/(1-p) only."""
    nan = float("nan")
    fixed = torch.tensor([[nan, nan], [0.3, 0.3]])
    net = cdx.StackedMLPClassifier(2, 2000, 3, 1, 2, lengthscale2=[0.1, 0.5], fixed_p=fixed, seed=0)
    assert torch.allclose(net.ps()[1], torch.tensor([0.3, 0.3]))
    x = torch.ones(2, 50, 2000)
    torch.manual_seed(0)
    dropped = net._drop(0, x)[1]
    frac = float((dropped == 0).float().mean())
    assert abs(frac - 0.3) < 5 * math.sqrt(0.21 / dropped.numel())
    vals = torch.unique(dropped)
    assert len(vals) == 2 and vals[0] == 0 and vals[1].item() == pytest.approx(1 / 0.7, rel=1e-6)
    (net(x).sum() + net.regularizer().sum()).backward()
    assert net.p_logits.grad[1].abs().sum() == 0 and net.p_logits.grad[0].abs().sum() > 0
    sq = sum(float(w[1].detach().pow(2).sum()) for w in net.weights)
    assert net.regularizer()[1].item() == pytest.approx(0.5 * sq / 0.7, rel=1e-5)


def test_stacked_classifier_runs_independent_and_bad_input():
    net = cdx.StackedMLPClassifier(3, 4, 5, 2, 3, seed=0)
    out = net(torch.randn(3, 6, 4))
    (out[2].sum() + net.regularizer()[2]).backward()
    for p in net.parameters():
        g = p.grad
        assert g[0].abs().sum() == 0 and g[1].abs().sum() == 0 and g[2].abs().sum() > 0
    with pytest.raises(ValueError, match="shape"):
        cdx.StackedMLPClassifier(2, 4, 5, 2, 3, fixed_p=torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        cdx.StackedMLPClassifier(1, 4, 5, 1, 3, fixed_p=torch.tensor([[1.0, 0.5]]))


def test_convergence_epoch_by_hand():
    # 0.1 -> 0.3: movement 0.2, tolerance 0.02; |p - 0.3| <= 0.02 from epoch 3 on
    assert cdx.convergence_epoch([0.1, 0.2, 0.25, 0.29, 0.3, 0.3]) == 3
    assert cdx.convergence_epoch([0.1, 0.3, 0.3]) == 1
    assert cdx.convergence_epoch([0.2, 0.2]) == 0
    assert cdx.convergence_epoch([0.1, 0.3, 0.1, 0.3]) == 3  # left and came back: the last exit counts
    with pytest.raises(ValueError, match="2 epochs"):
        cdx.convergence_epoch([0.1])


def test_spatial_net_wraps_convs_spatially():
    net = cdx.SpatialConvNet(4, 6, 16, n=1000)
    kinds = [m.kind for m in net.modules() if isinstance(m, ConcreteDropout)]
    assert kinds == ["conv2d", "conv2d", "linear", "linear"]
    assert net.conv2.input_dim == 4 and net.conv2.temperature == pytest.approx(2 / 3)
    assert net.fc1.weight_regularizer == pytest.approx(1e-5) and net.fc1.dropout_regularizer == pytest.approx(2e-3)
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_grid_match_claim_judges_each_pair_by_its_own_bound():
    from reprobook import claims
    c = next(c for c in claims.load_ledger("concrete_dropout") if c.id == "uci-matches-grid-dropout")
    ok = {"boston-rmse": 3.2, "boston-ll": -2.5, "kin8nm-rmse": 0.1, "kin8nm-ll": 0.9,
          "wine-red-rmse": 0.63, "wine-red-ll": -0.95}
    assert claims.judge(c.check, ok, c) == "reproduced"
    # boston's LL 0.1 nats too low fails although every other pair holds
    assert claims.judge(c.check, dict(ok, **{"boston-ll": -2.6}), c) == "not reproduced"


def test_no_dropout_control_keeps_p_fixed():
    from reprobook.data import DataError
    try:
        out, _ = cdx.run_uci("boston", epochs=2, batch=128, splits=2, width=8, samples=2,
                             fixed_p=1e-6)
    except DataError as err:
        pytest.skip(f"UCI data not available: {err}")
    assert max(max(r) for r in out["p_splits"]) == pytest.approx(1e-6, rel=1e-3)


# --------------------------------------------------------------------------- SST LSTM
def test_encode_sst_toy():
    data = {"train": ([["A", "b"], ["b"]], torch.tensor([1, 0])), "dev": ([["c", "a"]], torch.tensor([1])),
            "test": ([["b", "a", "a"]], torch.tensor([0]))}
    enc = cdx.encode_sst(data)
    assert enc["vocab_size"] == 4  # pad, unk, a, b
    ids, lengths, y = enc["train"]
    assert ids.tolist() == [[2, 3], [3, 0]] and lengths.tolist() == [2, 1] and y.tolist() == [1, 0]
    assert enc["dev"][0].tolist() == [[1, 2]] and enc["test"][0].tolist() == [[3, 2, 2]]


def test_sst_classifier_reads_the_last_real_token():
    """Padded batch in eval mode == each sentence alone through the same LSTM."""
    torch.manual_seed(0)
    m = cdx.SSTClassifier(10, emb=4, hidden=5, dropout="fixed", p=0.5).eval()
    ids = torch.tensor([[2, 3, 4, 0, 0], [5, 6, 7, 8, 9]])
    lengths = torch.tensor([3, 5])
    out = m(ids, lengths)
    for i in range(2):
        h, _ = m.rnn(m.embed(ids[i:i + 1, :lengths[i]]))
        assert torch.allclose(out[i], m.out(h[0, -1]), atol=1e-6)
    c = cdx.SSTClassifier(10, emb=4, hidden=5, dropout="concrete").eval()
    assert torch.equal(c(ids, lengths), c(ids, lengths))  # mc=False: deterministic at eval
    assert c.regularizer().item() == pytest.approx(c.rnn.regularizer().item())
    with pytest.raises(ValueError, match="concrete"):
        cdx.SSTClassifier(10, dropout="gaussian")


def test_sst_fixed_mask_shared_over_time():
    torch.manual_seed(1)
    m = cdx.SSTClassifier(10, emb=300, hidden=3, dropout="fixed", p=0.5).train()
    seen = {}
    m.rnn.register_forward_pre_hook(lambda mod, inp: seen.update(x=inp[0].detach()))
    ids = torch.full((40, 6), 2)  # one token repeated: the embedding is the same at every step
    m(ids, torch.full((40,), 6))
    x, e = seen["x"], m.embed.weight[2].detach()
    ratio = x / e  # 0 or 1/(1-p) = 2
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio))  # same mask at every time step
    frac = float((ratio[:, 0] == 0).float().mean())
    assert abs(frac - 0.5) < 5 * math.sqrt(0.25 / ratio[:, 0].numel())


def test_mnist_sst_rl_drivers_fill_every_ledger_key(tmp_path):
    """Tiny runs of the MNIST, SST and RL drivers: every cd_mnist / cd_mnist_spatial / cd_sst /
    cd_rl claim finds its key (the width study is a full-profile record)."""
    from reprobook import claims
    from reprobook.data import DataError
    from reprobook.results import Store
    from reprobook.runner import Runner
    settings = {"cd_mnist": {"sizes": [60, 120, 240], "baselines": [[0, 0], [0.2, 0.5]],
                             "reg_lengthscale2": [1e-4, 1.0], "width": 8, "depth": 3, "epochs": 2,
                             "batch": 64, "lr": 1e-3, "lengthscale2": 1e-2, "val": 100, "test": 100},
                "cd_mnist_spatial": {"train": 64, "test": 100, "epochs": 1, "channels": [2, 2],
                                     "hidden": 8, "batch": 32, "lr": 1e-3},
                "cd_sst": {"emb": 4, "hidden": 4, "epochs": 1, "batch": 128, "lr": 1e-3,
                           "train_rows": 256},
                "cd_rl": {"episodes": 2, "seeds": 1, "max_steps": 20}}
    run = Runner("concrete_dropout", "small", settings, store=Store(tmp_path))
    try:
        res = {name: run.run(name) for name in settings}
    except DataError as err:
        pytest.skip(f"data not available: {err}")
    mine = [c for c in claims.load_ledger("concrete_dropout")
            if (c.ours or {}).get("experiment") in res]
    assert len(mine) >= 10
    table = claims.evaluate(mine, res)
    missing = table[table["why"].str.contains("missing")]
    assert missing.empty, missing[["id", "why"]].to_string()
    v = res["cd_mnist"]["values"]
    assert set(v["p_by_size"]["input"]) == {"60", "120", "240"} and len(v["p_vs_epoch"]["h1"]) == 2
    assert v["tuned_dropout"]["p"] in ([0, 0], [0.2, 0.5])
    assert set(v["regularisers"]) == {"0.0001", "0.01", "1"}
    s = res["cd_sst"]["values"]
    assert s["n_train"] == 256 and 0 < s["concrete_p"] < 1 and 0 <= s["runs"]["fixed"]["dev_acc"] <= 100


# --------------------------------------------------------------------------- CartPole REINFORCE
def test_batched_cartpole_matches_gymnasium_step():
    gym = pytest.importorskip("gymnasium")
    from reprobook.concrete_dropout import rl
    env = gym.make("CartPole-v1").unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    states = rng.uniform([-2.5, -2, -0.25, -2], [2.5, 2, 0.25, 2], size=(64, 4))
    actions = rng.integers(0, 2, 64)
    ours, done = rl.cartpole_step(torch.tensor(states), torch.tensor(actions))
    for i in range(64):
        env.state = states[i].copy()
        env.steps_beyond_terminated = None
        obs, reward, term, trunc, _ = env.step(int(actions[i]))
        np.testing.assert_allclose(ours[i].numpy(), env.state, rtol=1e-12, atol=1e-12)
        assert bool(done[i]) == term
    s0 = rl.cartpole_reset(1000, torch.Generator().manual_seed(0))
    assert s0.abs().max() <= 0.05 and s0.abs().max() > 0.049
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        rl.cartpole_step(torch.zeros(3), torch.zeros(3))


def test_discounted_returns_and_reinforce_loss_by_hand():
    from reprobook.concrete_dropout import rl
    r = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    g = rl.discounted_returns(r, 0.5)
    assert torch.allclose(g, torch.tensor([[1.75, 1.5, 1.0], [1.5, 1.0, 0.0]]))
    valid = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    logp = torch.log(torch.tensor([[0.5, 0.4, 0.3], [0.6, 0.7, 0.9]])).requires_grad_()
    loss = rl.reinforce_loss(logp, r, valid, 0.5, detach=torch.tensor([False, True]))
    # agent 0: G = (1.75, 1.5, 1.0), normalised with the sample std (torch.std)
    G = np.array([1.75, 1.5, 1.0])
    adv = (G - G.mean()) / (G.std(ddof=1) + 1e-9)
    assert loss[0].item() == pytest.approx(-(np.log([0.5, 0.4, 0.3]) * adv).sum(), rel=1e-6)
    # agent 1 (two valid steps): G = (1.5, 1.0), adv = (+1, -1)/sqrt(2) * sqrt(2)... by hand
    G1 = np.array([1.5, 1.0])
    adv1 = (G1 - G1.mean()) / (G1.std(ddof=1) + 1e-9)
    assert loss[1].item() == pytest.approx(-(np.log([0.6, 0.7]) * adv1).sum(), rel=1e-6)
    loss.sum().backward()
    assert torch.allclose(logp.grad[0], -torch.tensor(adv, dtype=torch.float32), atol=1e-6)
    assert logp.grad[1].abs().sum() == 0  # the report's detached log-prob: no gradient at all


def test_run_cartpole_smoke():
    from reprobook.concrete_dropout import rl
    out = rl.run_cartpole(3, 1, max_steps=30, hidden=8)
    assert set(out["variants"]) == set(rl.VARIANTS)
    v = out["variants"]
    assert v["fixed-0.5"]["p_final"] == pytest.approx(0.5) and 0 < v["concrete"]["p_final"] < 1
    assert all(1 <= x <= 30 for r in v.values() for x in r["curve"])
    assert set(out["mean_length"]) == set(rl.VARIANTS)
    assert set(out["detached_improvement"]) == {v for v in rl.VARIANTS if v.endswith("-detached")}
    assert set(out["concrete_p_at"]) == {"tenth", "last"}


def test_stacked_nets_regularizer_is_per_run_eq3():
    """The stacked UCI and model-based nets: run r's regulariser equals the per-layer
    :func:`concrete_regularizer` (l², 2) summed over that run's layers, run by run."""
    from reprobook.concrete_dropout.mbrl import StackedDynamicsNet
    from reprobook.concrete_dropout.models import StackedRegressionNet

    nets = [StackedRegressionNet(3, 4, 6, 2, lengthscale=0.3, heteroscedastic=True, seed=1),
            StackedDynamicsNet(3, 6, 2, lengthscale=0.3, seed=2)]
    for net in nets:
        with torch.no_grad():
            for i, q in enumerate(net.p_logits):
                q.copy_(torch.tensor([-2.0, 0.3, 1.1]) + 0.1 * i)
        got = net.regularizer()
        for r in range(3):
            want = sum(concrete_regularizer(w[r], torch.sigmoid(q[r]), w.shape[1], 0.09, 2.0)
                       for w, q in zip(net.weights, net.p_logits))
            assert got[r].item() == pytest.approx(want.item(), rel=1e-5)
