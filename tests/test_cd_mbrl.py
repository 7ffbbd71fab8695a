"""Model-based RL of the Concrete Dropout chapter (reprobook.concrete_dropout.mbrl): the data
collection against gymnasium's CartPole, the stacked dynamics model against the kernel's
regulariser and a Gaussian NLL, p falling with data on a noiseless toy problem, MPC with the
true dynamics, and the record's shapes. Each test < 10 s on one thread."""
import json
import math

import numpy as np
import pytest
import torch

from reprobook.concrete_dropout import mbrl, rl
from reprobook.concrete_dropout.kernels import concrete_regularizer

torch.set_num_threads(1)


def _balancer(s):
    """A decent linear controller (keeps episodes long enough to test truncation)."""
    return (s[:, 2] + 0.5 * s[:, 3] + 0.05 * s[:, 1] > 0).long()


@pytest.mark.parametrize("policy", ["balancer", "alternate"])
def test_collect_episode_matches_gymnasium_step_for_step(policy):
    gym = pytest.importorskip("gymnasium")
    g = torch.Generator().manual_seed(1)
    if policy == "balancer":
        pol = _balancer
    else:
        pol = lambda s: torch.zeros(len(s), dtype=torch.long) + (s[:, 0] > 0).long()  # noqa: E731
    eps, rets = mbrl.collect_episode(3, 60, pol, g)
    env = gym.make("CartPole-v1").unwrapped
    env.reset(seed=0)
    for (X, Y), ret in zip(eps, rets):
        env.state = X[0, :4].numpy().copy()
        env.steps_beyond_terminated = None
        steps = 0
        for i in range(len(X)):
            a = int(X[i, 4] > 0)
            assert a == int(pol(torch.as_tensor(env.state)[None])[0])  # same policy input
            prev = np.array(env.state, dtype=float)
            _, _, term, _, _ = env.step(a)
            steps += 1
            np.testing.assert_allclose(Y[i].numpy(), np.array(env.state) - prev, rtol=0, atol=1e-12)
            if i + 1 < len(X):
                np.testing.assert_allclose(X[i + 1, :4].numpy(), env.state, rtol=0, atol=1e-12)
                assert not term
            else:  # the episode ends when gymnasium terminates or at the step limit
                assert term or steps == 60
        assert ret == steps == len(X)
    assert len({len(e[0]) for e in eps}) >= 1 and all(r <= 60 for r in rets)


def test_heldout_transitions_are_true_one_step_deltas():
    X, Y = mbrl.heldout_transitions(2, 50, 40, torch.Generator().manual_seed(0))
    assert X.shape == (2, 50, 5) and Y.shape == (2, 50, 4)
    s2, _ = rl.cartpole_step(X[..., :4].reshape(-1, 4).double(), (X[..., 4] > 0).reshape(-1).long())
    np.testing.assert_allclose((s2 - X[..., :4].reshape(-1, 4).double()).float().numpy(),
                               Y.reshape(-1, 4).numpy(), atol=1e-6)
    assert set(X[..., 4].unique().tolist()) == {-1.0, 1.0}


def test_dynamics_net_shapes_regulariser_and_standardisation():
    net = mbrl.StackedDynamicsNet(3, 16, 2, lengthscale=0.3, seed=0)
    with torch.no_grad():
        net.p_logits[1].copy_(torch.tensor([-1.0, 0.0, 0.5]))
    mu, s, reg = net(torch.randn(3, 7, 5))
    assert mu.shape == (3, 7, 4) and s.shape == (3, 1, 4) and reg.shape == (3,)
    assert net.ps().shape == (3, len(mbrl.MBRL_LAYERS))
    for r in range(3):  # the kernel's per-layer regulariser with wr = l^2, dr = 2
        want = sum(concrete_regularizer(w[r], torch.sigmoid(q[r]), w.shape[1], 0.09, 2.0)
                   for w, q in zip(net.weights, net.p_logits))
        assert reg[r].item() == pytest.approx(want.item(), rel=1e-5)
    X, Y = torch.randn(3, 10, 5) * 3 + 1, torch.randn(3, 10, 4) * 0.1
    n = torch.tensor([4, 10, 7])
    net.standardise(X, Y, n)
    for r in range(3):
        k = int(n[r])
        np.testing.assert_allclose(net.x_mean[r, 0].numpy(), X[r, :k].mean(0).numpy(), atol=1e-5)
        np.testing.assert_allclose(net.y_std[r, 0].numpy(), Y[r, :k].std(0, unbiased=False).numpy(),
                                   rtol=1e-4)


def test_dynamics_loss_is_twice_gaussian_nll_minus_constant():
    mu, y = torch.randn(2, 6, 4), torch.randn(2, 6, 4)
    s = torch.randn(2, 1, 4)
    nll = -torch.distributions.Normal(mu, (0.5 * s).exp()).log_prob(y).sum(-1).mean(-1)
    got = mbrl.dynamics_loss(mu, s, y)
    np.testing.assert_allclose(got.numpy(), (2 * nll - 4 * math.log(2 * math.pi)).numpy(), rtol=1e-5)


@pytest.mark.numerics
def test_p_falls_with_more_data_on_a_noiseless_toy_problem():
    """Two runs on the same noiseless linear map, N = 16 and N = 4096, equal steps: the
    regulariser weighs 1/N, so the small-N run's hidden p rises toward the entropy optimum
    (0.5) and the large-N run's falls below its start of 0.1."""
    g = torch.Generator().manual_seed(0)
    A = torch.randn(5, 4, generator=g)
    X = torch.randn(2, 4096, 5, generator=g)
    Y = X @ A  # no noise
    n = torch.tensor([16, 4096])
    torch.manual_seed(0)
    net = mbrl.StackedDynamicsNet(2, 32, 2, lengthscale=1e-2, seed=0)
    net.standardise(X, Y, n)
    mbrl.train_steps(net, torch.optim.Adam(net.parameters(), lr=2e-2), X, Y, n, 150, 32, g)
    p = net.ps().detach()[:, 1:].mean(1)  # hidden layers
    assert p[1] < 0.1 < p[0], p
    assert p[0] - p[1] > 0.1


class _TrueModel:
    """The exact CartPole step in the model's interface (x: state and action in {-1,+1})."""

    def next_state(self, x):
        shape = x.shape[:-1]
        s2, _ = rl.cartpole_step(x[..., :4].reshape(-1, 4).double(),
                                 (x[..., 4] > 0).reshape(-1).long())
        return s2.float().reshape(*shape, 4)


def test_mpc_with_the_true_dynamics_balances_the_pole():
    g = torch.Generator().manual_seed(0)
    s = torch.tensor([[0.0, 0.0, 0.1, 0.5], [0.0, 0.0, -0.1, -0.5]], dtype=torch.float64)
    a = mbrl.mpc_actions(_TrueModel(), s, 8, 24, 1, g)
    assert a.tolist() == [1, 0]  # push toward the side the pole falls to
    _, rets = mbrl.collect_episode(2, 100, lambda st: mbrl.mpc_actions(_TrueModel(), st, 8, 24, 1, g), g)
    assert rets == [100, 100]
    _, rand = mbrl.collect_episode(8, 100, lambda st: torch.randint(0, 2, (len(st),), generator=g), g)
    assert np.mean(rand) < 50


def test_run_mbrl_record_shapes():
    out = mbrl.run_mbrl(stages=3, seeds=2, max_steps=15, random_episodes=1, width=8, batch=8,
                        fit_steps=5, online_steps=3, horizon=3, candidates=4, particles=2,
                        samples=3, test=20, seed=0)
    json.dumps(out)
    assert len(out["data_sizes"]) == 3 and np.all(np.diff(out["data_sizes"]) > 0)
    assert np.array(out["p_runs"]).shape == (3, 2, 3) == np.array(out["p_online_runs"]).shape
    assert set(out["p"]) == set(mbrl.MBRL_LAYERS) and len(out["p_hidden"]) == 3
    assert len(out["returns"]) == 2 and all(1 <= r <= 15 for r in out["returns"])
    assert all(0 < p < 1 for p in out["p_hidden"].values())
    assert out["stages"] == 3 and out["fit_steps"] == 5 and out["data_ratio"] > 1
    for k in ("test_nmse", "test_ll", "test_nmse_online", "test_ll_online"):
        assert len(out[k]) == 3 and all(np.isfinite(list(out[k].values())))
    with pytest.raises(ValueError, match="stages"):
        mbrl.run_mbrl(stages=1, seeds=1)


def test_mbrl_claims_read_our_record_and_short_runs_are_inconclusive():
    from reprobook import claims
    out = mbrl.run_mbrl(stages=3, seeds=1, max_steps=10, random_episodes=1, width=8, batch=8,
                        fit_steps=3, online_steps=2, horizon=2, candidates=3, particles=1,
                        samples=2, test=10, seed=1)
    mine = [c for c in claims.load_ledger("concrete_dropout") if c.id.startswith("mbrl-")]
    assert {c.id for c in mine} >= {"mbrl-p-decreases", "mbrl-p-decreases-online"}
    rec = {"values": out, "config": {"stages": 3}, "profile": "small"}
    t = claims.evaluate(mine, {"cd_mbrl": rec}).set_index("id")
    assert not t["why"].str.contains("missing").any()
    assert t.loc["mbrl-p-decreases", "verdict"] == "inconclusive"  # 3 stages, 3 steps
    # a long enough record with falling p is judged by the trend
    good = dict(out, stages=6, data_ratio=20.0, fit_steps=3000, online_steps=500, test_nmse_largest=0.1,
                p_hidden={"40": 0.3, "100": 0.2, "200": 0.15, "400": 0.1, "800": 0.08})
    t = claims.evaluate(mine, {"cd_mbrl": {"values": good, "profile": "medium"}}).set_index("id")
    assert t.loc["mbrl-p-decreases", "verdict"] == "reproduced"
