"""Tests of the AutoLoss kernels against closed forms, hand computations and independent
transcriptions of the official code (safpla/AutoLossRelease @ c3cdf97). Spec: autoloss.md §4."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from reprobook.autoloss import (L1_ACTION, MSE_ACTION, PROFILES, Controller, EMABaseline,
                                final_reward, handcrafted_action, inception_score, l1_penalty,
                                make_classification_data, make_regression_data, policy_loss,
                                quadratic_predict, reinforce_step, segment_reward, shaping_reward)
from reprobook.autoloss.experiments import REGRESSION, regression_experiment
from reprobook.autoloss.engine import fixed_actions
from reprobook.autoloss.regression import Lanes, partitions, quadratic_features


# --------------------------------------------------------------------------- regression data
def _official_regression_transcription(n, d, noise, seed):
    """An independent transcription of dataio/gen_reg_data.py on a different code path:
    CPython's own Mersenne Twister (random.Random, given numpy's MT19937 state) and a pure-Python
    Marsaglia polar method with numpy's legacy one-value cache.

    Why it must agree: RandomState.rand() and random.random() both build a double as
    (a >> 5, b >> 6) of two 32-bit MT outputs (genrand_res53); numpy's legacy normal() is
    loc + scale * gauss, where gauss runs the polar method on pairs of such doubles, returns
    f * x2 and caches f * x1 for the next call. The official file draws w (d doubles), then per
    row x (d doubles) and one normal(), so the cache is spent on every second row."""
    key, pos = np.random.RandomState(seed).get_state()[1:3]
    mt = random.Random()
    mt.setstate((3, tuple(int(k) for k in key) + (int(pos),), None))
    cache = []

    def gauss():
        if cache:
            return cache.pop()
        while True:
            x1, x2 = 2.0 * mt.random() - 1.0, 2.0 * mt.random() - 1.0
            r2 = x1 * x1 + x2 * x2
            if 0.0 < r2 < 1.0:
                break
        f = math.sqrt(-2.0 * math.log(r2) / r2)
        cache.append(f * x1)
        return f * x2

    w = [mt.random() - 0.5 for _ in range(d)]
    xs, ys = [], []
    for _ in range(n):
        x = [10 * (mt.random() - 0.5) for _ in range(d)]
        xs.append(x)
        ys.append(sum(a * b for a, b in zip(x, w)) + 0.0 + noise * gauss())
    return np.array(xs), np.array(ys), np.array(w)


@pytest.mark.parametrize("n,d,noise,seed", [(1000, 16, 2.0, 1), (37, 5, 0.5, 7)])
def test_regression_data_matches_independent_transcription(n, d, noise, seed):
    data = make_regression_data(n, d, noise, seed)
    x, y, w = _official_regression_transcription(n, d, noise, seed)
    assert torch.equal(data["w"], torch.from_numpy(w))       # uniforms: bit for bit
    assert torch.equal(data["x"], torch.from_numpy(x))
    # y: same noise draws; only the order of the 16-term dot product's sum may differ
    np.testing.assert_allclose(data["y"].numpy(), y, rtol=0, atol=1e-12)


def test_regression_data_needs_row_by_row_draws():
    """Drawing all x first and all noise after (a vectorised shortcut) is NOT the official
    stream: the generator must interleave them."""
    data = make_regression_data(200)
    rs = np.random.RandomState(1)
    w = rs.rand(16) - 0.5
    x = 10 * (rs.rand(200, 16) - 0.5)
    assert torch.equal(data["x"][0], torch.from_numpy(x[0]))  # the first row still agrees
    assert not torch.equal(data["x"], torch.from_numpy(x))
    y = x @ w + rs.normal(0, 2.0, size=200)
    assert not np.allclose(data["y"].numpy(), y)


def test_regression_noise_floor():
    """The realised noise xi = y - x.w: each 200-row partition's mean xi^2 is E = noise^2 = 4 within
    sampling error (sd sqrt(2 * 16 / 200) = 0.4), and the true linear model written as the
    quadratic model (w1 = w, w2 = 0) has exactly that MSE (spec §4.1-4.2)."""
    data = make_regression_data()
    x, y, w = data["x"], data["y"], data["w"]
    xi = y - x @ w
    sd_part = math.sqrt(2 * 2.0 ** 4 / 200)
    for part in range(5):
        rows = slice(200 * part, 200 * (part + 1))
        floor = float((xi[rows] ** 2).mean())
        assert abs(floor - 4.0) < 3 * sd_part, (part, floor)
        pred = quadratic_predict(x[rows], w, torch.zeros(16, 16, dtype=x.dtype))
        assert float(((pred - y[rows]) ** 2).mean()) == pytest.approx(floor, rel=1e-12)
    assert abs(float((xi ** 2).mean()) - 4.0) < 3 * math.sqrt(32 / 1000)
    assert abs(float(xi.mean())) < 3 * 2.0 / math.sqrt(1000)
    # u ~ U[-5, 5]: mean 0, variance 100/12
    assert abs(float(x.mean())) < 4 * math.sqrt(100 / 12 / x.numel())
    assert float(x.var()) == pytest.approx(100 / 12, rel=0.03)
    assert float(x.abs().max()) <= 5.0 and float(w.abs().max()) <= 0.5


def test_regression_data_bad_input():
    with pytest.raises(ValueError, match="positive"):
        make_regression_data(0)
    with pytest.raises(ValueError, match="noise"):
        make_regression_data(10, noise=-1.0)


# --------------------------------------------------------------------------- classification data
def test_classification_data_matches_official_global_seed():
    """gen_cls_data.py seeds the *global* RandomState and calls make_classification without
    random_state; the kernel's RandomState(seed) must give the same numbers."""
    from sklearn.datasets import make_classification

    saved = np.random.get_state()
    try:
        np.random.seed(1)
        x, y = make_classification(n_samples=3400, n_features=32, n_informative=2,
                                   n_clusters_per_class=2, n_redundant=2)
    finally:
        np.random.set_state(saved)
    data = make_classification_data()
    assert torch.equal(data["x"], torch.from_numpy(x))
    assert torch.equal(data["y"], torch.from_numpy(y).long())
    assert set(data["y"].tolist()) == {0, 1}
    assert abs(float(data["y"].float().mean()) - 0.5) < 0.02
    other = make_classification_data(seed=2)
    assert not torch.equal(other["x"], data["x"])
    with pytest.raises(ValueError):
        make_classification_data(n=2)


# --------------------------------------------------------------------------- task model
def test_quadratic_predict_against_explicit_sum():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 4, generator=g, dtype=torch.float64)
    w1 = torch.randn(3, 4, generator=g, dtype=torch.float64)
    w2 = torch.randn(3, 4, 4, generator=g, dtype=torch.float64)
    out = quadratic_predict(x, w1, w2)
    assert out.shape == (3, 7)
    X, W1, W2 = x.numpy(), w1.numpy(), w2.numpy()
    for m in range(3):
        for n in range(7):
            want = sum(X[n, i] * W1[m, i] for i in range(4)) + sum(
                X[n, i] * X[n, j] * W2[m, i, j] for i in range(4) for j in range(4)) / 10
            assert float(out[m, n]) == pytest.approx(want, rel=1e-12)
    assert torch.allclose(quadratic_predict(x, w1[1], w2[1]), out[1])
    with pytest.raises(ValueError, match="shapes"):
        quadratic_predict(x, w1, w2[:, :3, :3])


def test_l1_penalty_values_and_gradient():
    a = torch.tensor([1.0, -2.0, 0.0], requires_grad=True)
    b = torch.tensor([[0.5, -0.5]], requires_grad=True)
    pen = l1_penalty([a, b], 0.2)
    assert float(pen.detach()) == pytest.approx(0.2 * 4.0)
    pen.backward()
    assert torch.equal(a.grad, torch.tensor([0.2, -0.2, 0.0]))  # lam * sign, 0 at 0 as TF
    assert torch.equal(b.grad, torch.tensor([[0.2, -0.2]]))
    batched = l1_penalty([torch.tensor([[1.0, -1.0], [3.0, 0.0]]), torch.ones(2, 2, 2)],
                         torch.tensor([1.0, 0.5]), batch_dims=1)
    assert torch.allclose(batched, torch.tensor([2.0 + 4.0, 0.5 * (3.0 + 4.0)]))
    with pytest.raises(ValueError):
        l1_penalty([], 0.1)


# --------------------------------------------------------------------------- controller
def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("n_actions,temperature", [(2, 1.0), (2, 2.0), (3, 0.7)])
def test_reinforce_gradient_linear_softmax_closed_form(n_actions, temperature):
    """For logits x W + b and pi = softmax(logits / c): grad_W log pi(a|x) = x (onehot(a) - pi) / c,
    so grad of -(1/T) sum_t log pi(a_t|x_t) R_t is -(1/T) sum_t x_t (onehot(a_t) - pi_t) R_t / c."""
    torch.manual_seed(0)
    ctrl = Controller(5, n_actions, hidden=0, temperature=temperature, seed=3)
    with torch.no_grad():
        ctrl.b.copy_(torch.randn(n_actions))
    W, b = [p.detach().double().numpy() for p in ctrl.parameters()]
    assert W.shape == (5, n_actions) and b.shape == (n_actions,)
    x = torch.randn(9, 5)
    a = torch.randint(0, n_actions, (9,))
    R = torch.randn(9)
    policy_loss(ctrl, x, a, R).backward()
    X, A, RR = x.double().numpy(), a.numpy(), R.double().numpy()
    pi = _softmax((X @ W + b) / temperature)
    resid = (np.eye(n_actions)[A] - pi) * RR[:, None] / temperature
    np.testing.assert_allclose(ctrl.W.grad.numpy(), -X.T @ resid / 9, atol=1e-6)
    np.testing.assert_allclose(ctrl.b.grad.numpy(), -resid.mean(0), atol=1e-6)
    np.testing.assert_allclose(ctrl(x).detach().numpy(), pi, atol=1e-6)


def test_batched_controllers_are_independent():
    """n_models controllers in one tensor program give each model the gradient it would get alone."""
    batched = Controller(4, 2, hidden=8, temperature=2.0, n_models=3, seed=0)
    x = torch.randn(3, 6, 4)
    a = torch.randint(0, 2, (3, 6))
    R = torch.randn(3, 6)
    policy_loss(batched, x, a, R).backward()
    for m in range(3):
        single = Controller(4, 2, hidden=8, temperature=2.0)
        with torch.no_grad():
            for p, q in zip(single.parameters(), batched.parameters()):
                p.copy_(q[m])
        policy_loss(single, x[m], a[m], R[m]).backward()
        for p, q in zip(single.parameters(), batched.parameters()):
            assert torch.allclose(p.grad, q.grad[m], atol=1e-6)
    # different models got different initial weights
    assert not torch.equal(batched.W1[0], batched.W1[1])


def test_controller_temperature_and_sampling():
    """Spec oracle 8: logits (2, 0) at c = 2 give (sigmoid(1), sigmoid(-1)); samples follow pi."""
    ctrl = Controller(1, 2, hidden=0, temperature=2.0)
    with torch.no_grad():
        ctrl.W.zero_()
        ctrl.b.copy_(torch.tensor([2.0, 0.0]))
    probs = ctrl(torch.ones(1, 1))[0]
    assert torch.allclose(probs, torch.tensor([0.7310586, 0.2689414]), atol=1e-6)
    g = torch.Generator().manual_seed(0)
    actions, logp = ctrl.sample(torch.ones(4000, 1), generator=g)
    assert actions.shape == (4000,) and actions.dtype == torch.long
    frac1 = float(actions.float().mean())
    assert abs(frac1 - 0.2689414) < 4 * math.sqrt(0.27 * 0.73 / 4000)
    assert torch.allclose(logp, torch.log(probs[actions]))


def test_official_tie_rule_always_picks_action_zero():
    """The official sampler picks the first action holding the sampled probability value:
    with pi = (0.5, 0.5) it always returns action 0; index sampling gives both."""
    ctrl = Controller(3, 2, hidden=0)
    with torch.no_grad():
        ctrl.W.zero_()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(500, 3)
    official, _ = ctrl.sample(x, generator=g, official_ties=True)
    assert int(official.sum()) == 0
    fair, _ = ctrl.sample(x, generator=g)
    assert 0.4 < float(fair.float().mean()) < 0.6


@pytest.mark.numerics
def test_two_armed_bandit_ends_on_better_arm():
    """REINFORCE with the EMA baseline on a constant state: the policy must concentrate on the
    arm with the higher mean reward (whichever index it has). A sign error would pick the worse."""
    for better in (0, 1):
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(better)
        ctrl = Controller(1, 2, hidden=0, seed=better)
        opt = torch.optim.Adam(ctrl.parameters(), lr=0.05)
        baseline = EMABaseline(0.8)
        means = torch.tensor([1.0, 0.0]) if better == 0 else torch.tensor([0.0, 1.0])
        x = torch.ones(16, 1)
        for _ in range(150):
            a, _ = ctrl.sample(x, generator=g)
            r = means[a] + 0.5 * torch.randn(16, generator=g)
            adv = r - baseline(float(r.mean()))  # per-step returns minus the running baseline
            reinforce_step(ctrl, opt, x, a, adv)
        assert float(ctrl(torch.ones(1, 1)).detach()[0, better]) > 0.95


def test_controller_bad_input():
    with pytest.raises(ValueError):
        Controller(3, 1)
    with pytest.raises(ValueError, match="temperature"):
        Controller(3, 2, temperature=0.0)
    with pytest.raises(ValueError, match="columns"):
        Controller(3, 2)(torch.ones(2, 4))
    ctrl = Controller(3, 2, hidden=0)
    with pytest.raises(ValueError, match="line up"):
        policy_loss(ctrl, torch.ones(5, 3), torch.zeros(4, dtype=torch.long), torch.ones(5))


# --------------------------------------------------------------------------- baseline, rewards
def test_ema_baseline_by_hand():
    """decay 0.8, clip 20 (config/reg): B1 = R1 = 10 -> adv 0; B2 = 8 + 4 = 12 -> adv 8;
    B3 = 9.6 + 0 -> adv -9.6; B4 = 7.68 + 20 = 27.68 -> adv 72.32 clipped to 20."""
    base = EMABaseline(0.8, clip=20.0)
    advs = [base(r) for r in (10.0, 20.0, 0.0, 100.0)]
    assert advs == pytest.approx([0.0, 8.0, -9.6, 20.0])
    assert base.value == pytest.approx(27.68)
    step = EMABaseline(0.8)  # spec oracle 7: a step 1 -> 2, B = 2 - 0.8^h after h steps
    step(1.0)
    for h in range(1, 6):
        step(2.0)
        assert step.value == pytest.approx(2 - 0.8 ** h)
    tens = EMABaseline(0.5, clip=1.0)
    tens(torch.tensor([0.0, 4.0]))
    assert torch.allclose(tens(torch.tensor([4.0, 0.0])), torch.tensor([1.0, -1.0]))
    assert torch.allclose(tens.value, torch.tensor([2.0, 2.0]))
    with pytest.raises(ValueError):
        EMABaseline(1.5)


def test_final_reward_values_and_monotonicity():
    assert final_reward("regression", 4.0, 20000) == pytest.approx(5000.0)
    assert final_reward("regression", 4.0, 1) > final_reward("regression", 5.0, 1)
    # spec oracle 5: err 0.1 -> -1.111 C, err 0.2 -> -1.25 C; accuracy below chance floored at .5
    assert final_reward("classification", 0.9, 1.0) == pytest.approx(-1 / 0.9)
    assert final_reward("classification", 0.8, 1.0) == pytest.approx(-1.25)
    assert final_reward("classification", 0.3, 1000) == pytest.approx(-2000.0)
    assert final_reward("gan", 9.0, 10) == pytest.approx(810.0)
    t = final_reward("classification", torch.tensor([0.2, 0.9]), 1.0)
    assert torch.allclose(t, torch.tensor([-2.0, -1 / 0.9]))
    with pytest.raises(ValueError, match="kind"):
        final_reward("nmt", 1.0, 1.0)
    with pytest.raises(ValueError):
        final_reward("regression", 0.0, 1.0)


def test_shaping_reward_cap_and_sign():
    assert shaping_reward(1.0, 1e-6) == 20.0                      # sqrt(1/1.1e-5) = 301 -> cap
    assert shaping_reward(-1.0, 1e-6, cap=5.0, scale=0.1) == pytest.approx(-0.5)
    assert shaping_reward(-0.04, 0.01) == pytest.approx(-math.sqrt(0.04 / 0.01001))
    assert shaping_reward(0.01, -0.01) == pytest.approx(math.sqrt(0.01 / 0.01001))
    assert shaping_reward(0.0, 0.3) == 0.0
    imp = torch.tensor([1.0, -0.04, 0.0, 0.01])
    ema = torch.tensor([1e-6, 0.01, 0.3, -0.01])
    want = torch.tensor([shaping_reward(float(i), float(e)) for i, e in zip(imp, ema)])
    assert torch.allclose(shaping_reward(imp, ema), want)


def test_segment_reward_by_hand():
    # spec oracle 10: k = 1, P = 8.0, 8.5, 8.75 -> C * 0.25 / 0.5
    assert segment_reward([8.0, 8.5, 8.75], k=1, c=3.0) == pytest.approx(1.5)
    # k = 2: (8.75 - 8.5) / ((8.5 - 7.0) / 2) = 1/3; only the last k + 2 values matter
    assert segment_reward([1.0, 7.0, 8.0, 8.5, 8.75], k=2) == pytest.approx(1 / 3)
    assert segment_reward(torch.tensor([8.0, 8.5, 8.25]), k=1) == pytest.approx(-0.5)
    assert segment_reward([8.0, 8.0, 8.5], eps=1e-3) == pytest.approx(500.0)
    # the report's form C k (P[-1] - P[-2]) / (P[-2] - P[-2-k] + eps) (autoLoss.py L133)
    assert segment_reward([7.0, 7.5, 8.0, 9.0], k=2, c=2.0, eps=1e-3) == pytest.approx(
        2.0 * 2 * 1.0 / (1.0 + 1e-3))
    with pytest.raises(ValueError, match="at least"):
        segment_reward([8.0, 8.5], k=1)
    with pytest.raises(ValueError, match="undefined"):
        segment_reward([8.0, 8.0, 8.5])


def test_handcrafted_action_scalars_and_tensors():
    assert handcrafted_action(1.2, 1.0, 0.1) == L1_ACTION      # spec oracle 11: 0.2 > 0.1
    assert handcrafted_action(1.05, 1.0, 0.1) == MSE_ACTION
    assert handcrafted_action(1.5, 1.0, 0.5) == MSE_ACTION     # strict inequality (exact binary)
    a = torch.tensor([1.2, 1.05, 3.0])
    b = torch.tensor([1.0, 1.0, 1.0])
    out = handcrafted_action(a, b, torch.tensor([0.1, 0.1, 2.5]))
    assert out.dtype == torch.long and out.tolist() == [1, 0, 0]
    with pytest.raises(ValueError):
        handcrafted_action(1.0, 0.0, 0.1)


# --------------------------------------------------------------------------- inception score
def test_inception_score_closed_forms():
    uniform = torch.full((50, 10), 0.1)
    assert inception_score(uniform) == pytest.approx((1.0, 0.0))
    onehot = torch.eye(10).repeat(7, 1)  # balanced one-hot predictions: IS = K
    assert inception_score(onehot)[0] == pytest.approx(10.0)
    assert inception_score(onehot[torch.randperm(70)])[0] == pytest.approx(10.0)
    # by hand: rows (1, 0) and (.5, .5): p(y) = (.75, .25); KLs log(4/3) and log(4/3)/2
    assert inception_score([[1.0, 0.0], [0.5, 0.5]])[0] == pytest.approx((4 / 3) ** 0.75)
    # splits: first half one-hot balanced (IS 2), second half one class (IS 1); std ddof 0
    parts = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    assert inception_score(parts, splits=2) == pytest.approx((1.5, 0.5))
    # 5 rows in 2 splits: rows 0-1 and 2-4 (i N // s)
    odd = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert inception_score(odd, splits=2)[0] == pytest.approx(1.5)
    assert not math.isnan(inception_score(torch.eye(3))[0])


def test_inception_score_bad_input():
    with pytest.raises(ValueError, match="sum to 1"):
        inception_score(torch.ones(4, 3))
    with pytest.raises(ValueError, match="splits"):
        inception_score(torch.eye(3), splits=4)


def test_profiles_declared():
    assert set(PROFILES) == {"small", "medium", "full"}
    for p in PROFILES.values():
        assert set(p) == {"autoloss_regression", "autoloss_classification", "autoloss_gan"}


# --------------------------------------------------------------------------- regression engine


def test_quadratic_features_match_quadratic_predict():
    x = torch.randn(11, 4, dtype=torch.float64)
    w1, w2 = torch.randn(4, dtype=torch.float64), torch.randn(4, 4, dtype=torch.float64)
    theta = torch.cat([w1, w2.flatten()])
    assert torch.allclose(quadratic_features(x) @ theta, quadratic_predict(x, w1, w2))


def _tiny_parts(n=40, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(5 * n, d, generator=g, dtype=torch.float64) * 10 - 5
    y = x @ torch.rand(d, generator=g, dtype=torch.float64) + torch.randn(5 * n, generator=g,
                                                                         dtype=torch.float64)
    return partitions({"x": x, "y": y}, dtype=torch.float64), x, y


def test_lanes_match_torch_adam_with_shared_state():
    """Lanes' analytic gradients and TF-form Adam (eps = 0, where TF's and PyTorch's Adam agree)
    against autograd on quadratic_predict + l1_penalty and ONE torch.optim.Adam shared by the
    MSE and the L1 steps (the official single optimizer), for an action sequence with all three
    actions (0 MSE, 1 L1, 2 joint)."""
    parts, x, y = _tiny_parts()
    lam = 0.3
    lanes = Lanes(parts["train_ctrl"], parts["valid_ctrl"], [lam], features=False, joint=True)
    lanes.reset(torch.Generator().manual_seed(4))
    d = x.shape[1]
    w1 = lanes.theta[0, :d].clone().requires_grad_()
    w2 = lanes.theta[0, d:].view(d, d).clone().requires_grad_()
    opt = torch.optim.Adam([w1, w2], lr=5e-4, eps=0.0)
    xt, yt = x[:40], y[:40]
    for a in [1, 0, 0, 2, 1, 0, 2, 2, 0, 1]:
        mse = ((quadratic_predict(xt, w1, w2) - yt) ** 2).mean()
        l1 = l1_penalty([w1, w2], lam)
        loss = mse if a == 0 else l1 if a == 1 else mse + l1
        opt.zero_grad()
        loss.backward()
        opt.step()
        lanes.step(torch.tensor([a]), eps=0.0)
        ref = torch.cat([w1.detach(), w2.detach().flatten()])
        assert torch.allclose(lanes.theta[0], ref, rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        def mse(rows):
            return float(((quadratic_predict(x[rows], w1, w2) - y[rows]) ** 2).mean())
        assert float(lanes.train_loss[0]) == pytest.approx(mse(slice(0, 40)))
        assert float(lanes.valid_loss[0]) == pytest.approx(mse(slice(40, 80)))
        assert float(lanes.l1[0]) == pytest.approx(float(l1_penalty([w1, w2], lam)))


def test_lanes_shaping_reward_and_state_by_hand():
    """The official per-step reward and the five state features (models/reg.py L244-324) for the
    first three steps, recomputed by hand from the measured losses."""
    parts, _, _ = _tiny_parts(seed=1)
    lanes = Lanes(parts["train_ctrl"], parts["valid_ctrl"], [0.2])
    lanes.reset(torch.Generator().manual_seed(0))
    assert lanes.features[0].tolist() == pytest.approx([0.0, 1 + math.log(1 + 1e-5) / 12, -0.5,
                                                        -1.0, 0.0])
    valid_prev, ib = None, None
    for a in (0, 1, 0):
        r = float(lanes.step(torch.tensor([a]))[0])
        v, t = float(lanes.valid_loss[0]), float(lanes.train_loss[0])
        improve = 0.1 if valid_prev is None else valid_prev - v
        ib = improve if ib is None else 0.8 * ib + 0.2 * improve
        want = math.copysign(min(math.sqrt(abs(improve) / (abs(ib) + 1e-5)), 20.0), improve)
        assert r == pytest.approx(want, rel=1e-9)
        f = lanes.features[0].tolist()
        g_mse = lanes.g_task[0]
        assert f == pytest.approx([(v - t) / t, 1 + math.log(abs(ib) + 1e-5) / 12,
                                   min(1, t / 20) - 0.5, float(lanes.l1[0]) - 1,
                                   float(g_mse.norm()) / math.sqrt(12) - 0.2], rel=1e-9)
        valid_prev = v


def test_lanes_validation_and_early_stopping():
    """check_terminate: every valid_every steps endurance += 1, reset on a new best; the lane
    ends when endurance > max_endurance; the best theta is the one at the best check."""
    parts, _, _ = _tiny_parts()
    lanes = Lanes(parts["train_ctrl"], parts["valid_ctrl"], [0.2], valid_every=10,
                  max_endurance=2, early_stop=True, features=False)
    lanes.reset(torch.Generator().manual_seed(0))
    alive = []
    for i, v in enumerate([5.0, 4.0, 4.5, 4.6, 4.7]):
        lanes.step_no = 10 * (i + 1)
        lanes.metric = torch.tensor([v], dtype=torch.float64)
        lanes.theta = torch.full_like(lanes.theta, float(i))
        lanes.validate()
        alive.append(bool(lanes.alive[0]))
    assert alive == [True, True, True, True, False]
    assert float(lanes.best[0]) == 4.0 and int(lanes.best_step[0]) == 20
    assert torch.all(lanes.best_theta == 1.0)
    lanes.step_no = 55  # not a validation step: nothing changes
    lanes.metric = torch.tensor([1.0], dtype=torch.float64)
    lanes.validate()
    assert float(lanes.best[0]) == 4.0


def test_fixed_schedules():
    parts, _, _ = _tiny_parts()
    lanes = Lanes(parts["train_task"], parts["valid_task"], [0.2] * 6, features=False, joint=True)
    lanes.reset(torch.Generator().manual_seed(0))
    kinds, th = torch.arange(6), torch.zeros(6, dtype=torch.float64)
    first = fixed_actions(lanes, kinds, th)
    assert first[:3].tolist() == [0, 2, 1]  # mse-only, joint, 1:1 starting with L1 (official)
    want = [handcrafted_action(float(lanes.valid_loss[3]), float(lanes.train_loss[3]), 0.0),
            handcrafted_action(float(lanes.l1[4]), float(lanes.valid_loss[4]), 0.0),
            handcrafted_action(float(lanes.mag_l1[5]), float(lanes.mag_task[5]), 0.0)]
    assert first[3:].tolist() == want
    lanes.step(first)
    assert int(fixed_actions(lanes, kinds, th)[2]) == 0


def test_regression_experiment_runs_tiny():
    """Plumbing: a tiny budget yields every key the ledger reads."""
    s = dict(REGRESSION["small"], steps=30, trials=2, dgs_lams=[0.1, 1.0], thresholds=[0.0],
             ctrl_seeds=[0], episodes=2, episode_steps=30, sweep_lams=[1.0], n_boot=50, report_sign=1,
             sensitivity=False)
    v = regression_experiment(s, seed=0)
    for m in ("w-o-l1", "s1", "s2", "s3", "dgs", "autoloss", "alternate", "dgs-test-picked"):
        assert math.isfinite(v["mse_minus_floor"][m]) and v["mse_raw"][m] > 0
        assert v["mse_minus_floor"][m] == pytest.approx(v["mse_raw"][m] - v["noise_floor_test"])
    assert v["noise_floor_test"] == pytest.approx(3.7704, abs=1e-3)
    assert set(v["vs_hi"]) == {"w-o-l1", "alternate", "dgs", "s1", "s2", "s3"}
    assert set(v["autoloss_sweep"]) == {"0.2", "1"}
    for m in ("w-o-l1-trainval", "autoloss-terminal-only", "autoloss-report-sign"):
        assert m in v["mse_raw"] and m in v["vs_autoloss"]
    for k in ("autoloss_lambda_spread", "w_o_l1_minus_dgs_lo"):
        assert math.isfinite(v[k])


# --------------------------------------------------------------------------- classification engine
from reprobook.autoloss.classification import (ClassificationLanes, cls_partitions,  # noqa: E402
                                               mlp_unflatten, truncated_normal)
from reprobook.autoloss.engine import (ControllerBank, per_lane_adam_step,  # noqa: E402
                                       train_controllers)
from reprobook.autoloss.experiments import CLASSIFICATION, classification_experiment  # noqa: E402
from reprobook.autoloss.sensitivity import SETTINGS, summarise, weights_for  # noqa: E402


def _cls_parts(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3400, 32, generator=g, dtype=torch.float64)
    y = (x[:, 0] + 0.5 * x[:, 1] + 0.3 * torch.randn(3400, generator=g, dtype=torch.float64)
         > 0).long()
    return cls_partitions({"x": x, "y": y}, dtype=torch.float64)


class _TorchMLP(torch.nn.Module):
    """An independent reference: nn.Linear layers, F.cross_entropy, autograd."""

    def __init__(self, theta):
        super().__init__()
        w1, b1, w2, b2 = mlp_unflatten(theta[None])
        self.l1, self.l2 = torch.nn.Linear(32, 32).double(), torch.nn.Linear(32, 2).double()
        with torch.no_grad():
            self.l1.weight.copy_(w1[0].T), self.l1.bias.copy_(b1[0])
            self.l2.weight.copy_(w2[0].T), self.l2.bias.copy_(b2[0])

    def forward(self, x):
        return self.l2(torch.relu(self.l1(x)))

    def flat(self):
        return torch.cat([self.l1.weight.T.flatten(), self.l1.bias, self.l2.weight.T.flatten(),
                          self.l2.bias]).detach()


def test_cls_partitions_sizes_and_order():
    data = {"x": torch.arange(3400.0)[:, None].repeat(1, 32), "y": torch.zeros(3400).long()}
    parts = cls_partitions(data)
    assert [len(parts[k][0]) for k in parts] == [200, 1000, 200, 1000, 1000]
    assert float(parts["train_task"][0][0, 0]) == 1200 and float(parts["test"][0][-1, 0]) == 3399
    with pytest.raises(ValueError, match="3400 rows"):
        cls_partitions({"x": torch.zeros(10, 32), "y": torch.zeros(10).long()})


def test_truncated_normal_within_two_sd_and_its_std():
    z = truncated_normal((200000,), 0.1, torch.Generator().manual_seed(0))
    assert float(z.abs().max()) <= 0.2
    # sd of N(0,1) truncated to [-2, 2]: sqrt(1 - 2*2*phi(2)/(Phi(2)-Phi(-2))) = 0.87962
    phi2 = math.exp(-2) / math.sqrt(2 * math.pi)
    want = math.sqrt(1 - 4 * phi2 / math.erf(2 / math.sqrt(2)))
    assert float(z.std()) == pytest.approx(0.1 * want, rel=0.01)


def test_cls_lanes_match_autograd_mlp_and_one_shared_adam():
    """The written-out backward pass and TF-form Adam (eps 0) against nn.Linear + cross_entropy
    + autograd with ONE torch.optim.Adam shared by the CE, L1 (biases included) and joint steps."""
    parts = _cls_parts()
    lam = 0.02
    lanes = ClassificationLanes(parts["train_ctrl"], parts["valid_ctrl"], [lam], features=False,
                                joint=True)
    lanes.reset(torch.Generator().manual_seed(3))
    ref = _TorchMLP(lanes.theta[0])
    opt = torch.optim.Adam(ref.parameters(), lr=1e-3, eps=0.0)
    (x, y), (xv, yv) = parts["train_ctrl"], parts["valid_ctrl"]
    for a in [1, 0, 0, 2, 1, 0, 2, 0]:
        ce = torch.nn.functional.cross_entropy(ref(x), y)
        l1 = lam * sum(p.abs().sum() for p in ref.parameters())
        loss = ce if a == 0 else l1 if a == 1 else ce + l1
        opt.zero_grad()
        loss.backward()
        opt.step()
        lanes.step(torch.tensor([a]), eps=0.0)
        assert torch.allclose(lanes.theta[0], ref.flat(), rtol=1e-9, atol=1e-12)
    ref.zero_grad()
    ce = torch.nn.functional.cross_entropy(ref(x), y)
    ce.backward()
    g = torch.cat([ref.l1.weight.grad.T.flatten(), ref.l1.bias.grad,
                   ref.l2.weight.grad.T.flatten(), ref.l2.bias.grad])
    assert torch.allclose(lanes.g_task[0], g, rtol=1e-9, atol=1e-14)
    with torch.no_grad():
        assert float(lanes.train_loss[0]) == pytest.approx(float(ce))
        assert float(lanes.valid_loss[0]) == pytest.approx(
            float(torch.nn.functional.cross_entropy(ref(xv), yv)))
        assert float(lanes.valid_acc[0]) == pytest.approx(
            float((ref(xv).argmax(1) == yv).double().mean()))
        assert float(lanes.l1[0]) == pytest.approx(lam * float(ref.flat().abs().sum()))


def test_cls_initial_weights_and_state_by_hand():
    """Biases 0.1, weights truncated N(0, .1^2); the six official features (models/cls.py
    L294-338) and the per-step reward (decay 0.9, cap 5, scale 0.1) recomputed by hand."""
    parts = _cls_parts(1)
    lanes = ClassificationLanes(parts["train_ctrl"], parts["valid_ctrl"], [0.02, 0.02])
    lanes.reset(torch.Generator().manual_seed(0))
    w1, b1, w2, b2 = mlp_unflatten(lanes.theta)
    assert torch.all(b1 == 0.1) and torch.all(b2 == 0.1) and float(w1.abs().max()) <= 0.2
    assert lanes.features[0].tolist() == pytest.approx([0, 1 + math.log(1 + 1e-4) / 10, 0, 0, 0, 0])
    prev, ib = None, None
    for a in (0, 1, 0):
        r = float(lanes.step(torch.tensor([a, a]))[0])
        t, v = float(lanes.train_loss[0]), float(lanes.valid_loss[0])
        ta, va = float(lanes.train_acc[0]), float(lanes.valid_acc[0])
        improve = 0.1 if prev is None else prev - v
        ib = improve if ib is None else 0.9 * ib + 0.1 * improve
        want = 0.1 * math.copysign(min(math.sqrt(abs(improve) / (abs(ib) + 1e-5)), 5.0), improve)
        assert r == pytest.approx(want, rel=1e-6)
        mag_ce = float(lanes.g_task[0].norm()) / math.sqrt(1122)
        mag_l1 = 0.02  # no parameter is exactly 0
        assert lanes.features[0].tolist() == pytest.approx(
            [(v - t) / t, 1 + math.log(abs(ib) + 1e-4) / 10, t, float(lanes.l1[0]),
             (ta - va) / va, (mag_ce - mag_l1) / mag_l1], rel=1e-5)
        prev = v


def test_cls_validation_keeps_highest_accuracy_strictly():
    parts = _cls_parts()
    lanes = ClassificationLanes(parts["train_task"], parts["valid_task"], [0.02],
                                max_endurance=1, early_stop=True, features=False)
    lanes.reset(torch.Generator().manual_seed(0))
    alive = []
    for i, acc in enumerate([0.6, 0.8, 0.8, 0.7]):
        lanes.step_no = 10 * (i + 1)
        lanes.metric = torch.tensor([acc], dtype=torch.float64)
        lanes.theta = torch.full_like(lanes.theta, float(i))
        lanes.validate()
        alive.append(bool(lanes.alive[0]))
    assert float(lanes.best[0]) == 0.8 and int(lanes.best_step[0]) == 20  # a tie is no progress
    assert torch.all(lanes.best_theta == 1.0) and alive == [True, True, True, False]
    errors = lanes.test_scores(parts["test"])
    assert errors.shape == (1, 1000) and set(errors.unique().tolist()) <= {0.0, 1.0}


def test_controller_bank_groups_match_standalone_controllers():
    hidden, temp, seeds = [16, 0, 16, 16], [2.0, 2.0, 1.0, 2.0], [5, 6, 7, 8]
    bank = ControllerBank(3, hidden, temp, seeds)
    assert len(bank.groups) == 3
    x = torch.randn(4, 7, 3, generator=torch.Generator().manual_seed(0))
    a = torch.randint(0, 2, (4, 7), generator=torch.Generator().manual_seed(1))
    probs, logp = bank(x), bank.log_prob(x, a)
    for i in range(4):
        one = Controller(3, 2, hidden=hidden[i], temperature=temp[i], seed=seeds[i])
        assert torch.allclose(probs[i], one(x[i]), atol=1e-6)
        assert torch.allclose(logp[i], one.log_prob(x[i], a[i]), atol=1e-6)
    big = bank.repeat(3)
    assert big.M == 12 and torch.allclose(big(x.repeat_interleave(3, 0))[3:6],
                                          probs[1].expand(3, -1, -1), atol=1e-6)


def test_per_lane_adam_step_equals_adam_at_each_lr():
    """Two lanes at lr 1e-3 and 1e-2 after three steps equal torch.optim.Adam at those rates."""
    bank = ControllerBank(3, 16, 2.0, [0, 1])
    refs = [Controller(3, 2, hidden=16, temperature=2.0, seed=s) for s in (0, 1)]
    opts = [torch.optim.Adam(r.parameters(), lr=lr) for r, lr in zip(refs, (1e-3, 1e-2))]
    opt = torch.optim.Adam(bank.parameters(), lr=1.0)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        x, a = torch.randn(2, 5, 3, generator=g), torch.randint(0, 2, (2, 5), generator=g)
        ret = torch.randn(2, 5, generator=g)
        opt.zero_grad()
        policy_loss(bank, x, a, ret).backward()
        per_lane_adam_step(bank, opt, torch.tensor([1e-3, 1e-2]))
        for i, (r, o) in enumerate(zip(refs, opts)):
            o.zero_grad()
            policy_loss(r, x[i], a[i], ret[i]).backward()
            o.step()
    for i, r in enumerate(refs):
        for p, q in zip(bank.groups[0].parameters(), r.parameters()):
            assert torch.allclose(p[i], q, atol=1e-6)
    with pytest.raises(ValueError, match="lr=1"):
        per_lane_adam_step(bank, torch.optim.Adam(bank.parameters(), lr=0.1), torch.ones(2))


def test_ema_baseline_tensor_decay():
    base = EMABaseline(torch.tensor([0.5, 0.9]), clip=torch.tensor([10.0, 0.5]))
    assert torch.equal(base(torch.tensor([2.0, 2.0])), torch.zeros(2))
    adv = base(torch.tensor([4.0, 4.0]))  # B = (3, 2.2): adv (1, 1.8 -> clipped 0.5)
    assert torch.allclose(adv, torch.tensor([1.0, 0.5])) and torch.allclose(
        base.value, torch.tensor([3.0, 2.2]))
    with pytest.raises(ValueError):
        EMABaseline(torch.tensor([0.5, 1.2]))


def test_report_sign_lane_moves_against_the_corrected_one():
    """Same seed, same episode (one lane each, same generators): the report's update (direction
    -1) moves the controller by the opposite of the corrected one's first Adam step (Adam's
    first step is -lr g/|g|, odd in g)."""
    parts, _, _ = _tiny_parts()
    init = Controller(5, 2, hidden=16, temperature=2.0, seed=3)
    moves = []
    for sign in (1.0, -1.0):
        out = train_controllers(Lanes, parts, [0.2], [3], episodes=1, max_steps=20,
                                direction=sign, task_seed=0, shaping=True)
        # the first episode is the best so far, so the kept controller is the updated one
        moves.append([p[0].detach() - q.detach() for p, q in
                      zip(out["controller"].groups[0].parameters(), init.parameters())])
    for d0, d1 in zip(*moves):
        assert torch.allclose(d0, -d1, atol=1e-7)
    assert max(float(d.abs().max()) for d in moves[0]) > 0


def test_weights_for_normalised_and_dropped_features():
    scale = torch.tensor([2.0, 4.0, 0.5])
    lanes = [{"features": "normalised"}, {}, {"features": "drop:0,2"}]
    w = weights_for(lanes, scale, 3)
    assert w.tolist() == [[0.5, 0.25, 2.0], [1, 1, 1], [0, 1, 0]]
    assert weights_for([{}, {}], scale, 3) is None
    with pytest.raises(ValueError, match="unknown feature setting"):
        weights_for([{"features": "whiten"}], scale, 3)
    assert SETTINGS["official"] == {} and "hidden=0" in SETTINGS


def test_summarise_by_hand():
    """Medians 4.0 (official), 4.6 and 3.9 -> spread 0.7; best baseline 3.8 -> gap 0.2, ratio
    3.5 > 1: not robust. Ablations are left out of the spread."""
    lanes = [{"setting": s} for s in ("official", "official", "C=2e3", "C=2e3", "T=1", "T=1",
                                      "drop:loss-values", "drop:loss-values")]
    test = torch.tensor([[3.9, 4.0, 4.1], [4.0, 4.0, 3.8], [4.6, 4.7, 4.5], [4.6, 4.6, 4.9],
                         [3.9, 3.9, 3.8], [3.9, 4.0, 3.9], [9.0, 9.0, 9.0], [9.0, 9.0, 9.0]])
    out = summarise(lanes, test, 3.8, "dgs", 2)
    assert out["settings"]["official"]["median"] == pytest.approx(4.0)
    assert out["settings"]["C=2e3"]["median"] == pytest.approx(4.6)
    assert out["spread_of_medians"] == pytest.approx(0.7)
    assert out["gap_to_best_baseline"] == pytest.approx(0.2)
    assert out["ratio"] == pytest.approx(3.5) and out["not_robust"] is True
    assert out["worst_setting"] == "C=2e3" and out["best_setting"] == "T=1"
    assert out["ablation"]["loss-values"] == pytest.approx(9.0)
    assert out["ablation"]["none"] == pytest.approx(float(test[:2].mean()))


def test_classification_experiment_runs_tiny():
    """Plumbing: a tiny budget yields every key the ledger reads."""
    s = dict(CLASSIFICATION["small"], steps=20, trials=2, dgs_lams=[0.001], thresholds=[0.0],
             ctrl_seeds=[0], episodes=1, episode_steps=20, sweep_lams=[0.2], n_boot=50,
             variants=1, frozen=2, frozen_trials=2)
    v = classification_experiment(s, seed=0)
    for m in ("w-o-l1", "w-o-l1-trainval", "alternate", "dgs", "s1", "s2", "s3", "autoloss",
              "autoloss-report-sign", "autoloss-no-baseline", "autoloss-terminal-only"):
        assert 0 <= v["error"][m] <= 1 and v["acc"][m] == pytest.approx(1 - v["error"][m])
    for m in ("autoloss-report-sign", "autoloss-no-baseline", "dgs"):
        assert v["vs_autoloss"][m]["lo"] <= v["vs_autoloss"][m]["diff"] <= v["vs_autoloss"][m]["hi"]
    assert set(v["autoloss_sweep"]) == {"0.02", "0.2"}
    assert len(v["frozen"]["raw"]["acc"]) == 4
    assert v["frozen_range_raw_minus_normalised"] == pytest.approx(
        v["frozen"]["raw"]["range"] - v["frozen"]["normalised"]["range"])
    d = v["s1_minus_dgs"]
    assert d["lo"] <= d["mean"] <= d["hi"] and d["mean"] == pytest.approx(v["error"]["s1"] - v["error"]["dgs"])
    assert math.isfinite(v["w_o_l1_minus_dgs_lo"]) and set(v["vs_hi"]) == set(v["vs_autoloss"]) - {
        "w-o-l1-trainval", "dgs-test-picked", "autoloss-report-sign", "autoloss-no-baseline",
        "autoloss-terminal-only"}


def test_transfer_runs_baselines_and_the_trained_controllers_on_the_other_data_sets():
    """Table 2 plumbing: each transfer data set is the official generator at another seed, W/O
    L1 there equals a direct fixed-schedule run on that data, and DGS is picked on its
    validation partition."""
    from reprobook.autoloss.classification import ClassificationLanes, cls_partitions
    from reprobook.autoloss.engine import ControllerBank, run_fixed
    from reprobook.autoloss.experiments import _transfer
    from reprobook.registry import derive_seed

    s = {"trials": 1, "transfer_seeds": [2], "dgs_lams": [1e-4, 1e-1], "steps": 30}
    bank = ControllerBank(ClassificationLanes.n_features, 16, 2.0, [5])
    out = _transfer(ClassificationLanes, {"controller": bank}, [{"name": "autoloss", "lam": 0.02}],
                    s, seed=0)
    parts = cls_partitions(make_classification_data(seed=2))
    direct = run_fixed(ClassificationLanes, parts, [0.02, 1e-4, 1e-1], [0, 1, 1], [0.0] * 3,
                       seed=derive_seed(0, "transfer", 1), max_steps=30)  # the same lanes, run
    # on the seed-2 data directly
    assert out["data_seeds"] == [2] and set(out["error"]["1"]) == {"w-o-l1", "dgs", "autoloss"}
    assert out["error"]["1"]["w-o-l1"] == pytest.approx(float(direct["test"][0].mean()), abs=1e-6)
    best = 1 + int(direct["best_valid"][1:].argmax())
    assert out["dgs_picked"]["1"] == ("dgs@0.0001", "dgs@0.1")[best - 1]
    assert out["error"]["1"]["dgs"] == pytest.approx(float(direct["test"][best].mean()), abs=1e-6)
    assert all(0 <= v <= 1 for v in out["error"]["1"].values())
