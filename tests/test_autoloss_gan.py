"""Tests of the AutoLoss MNIST GAN (reprobook.autoloss.gan) against independent computations:
shapes of the official DCGAN, the D:G schedule patterns written out by hand, the MNIST inception
score's closed forms (one-hot balanced -> K, constant -> 1), the GAN losses against their
formulas, and the online controller's REINFORCE step on a toy case."""
import math

import pytest
import torch

from reprobook.autoloss import gan
from reprobook.autoloss.kernels import inception_score

torch.set_num_threads(1)


def test_dcgan_shapes_and_init():
    g, d = gan.make_dcgan(z_dim=16, base=4, seed=0)
    x = g(torch.randn(5, 16))
    assert x.shape == (5, 1, 28, 28)
    assert x.abs().max() <= 1  # tanh output
    assert d(x).shape == (5,)
    w = g.fc.weight.detach()
    assert abs(float(w.std()) - 0.02) < 0.004 and float(g.fc.bias.detach().abs().max()) == 0.0


def test_schedule_patterns():
    assert gan.schedule_actions(1, 1, 6) == [1, 0, 1, 0, 1, 0]
    assert gan.schedule_actions(1, 3, 9) == [1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert gan.schedule_actions(3, 1, 8) == [1, 1, 1, 0, 1, 1, 1, 0]
    acts = gan.schedule_actions(*gan.parse_ratio("1:7"), 800)
    assert sum(acts) == 100  # one D update in every 8
    assert gan.key_of("1:5") == "gan-1-5" and gan.key_of("autoloss") == "autoloss"
    with pytest.raises(ValueError):
        gan.parse_ratio("0:1")


def test_inception_score_closed_forms():
    K = 10
    onehot = torch.eye(K).repeat(30, 1)  # balanced one-hot predictions: IS = K
    assert inception_score(onehot)[0] == pytest.approx(K, rel=1e-9)
    const = torch.full((50, K), 1.0 / K)  # p(y|x) = p(y): IS = 1
    assert inception_score(const)[0] == pytest.approx(1.0, rel=1e-9)
    # two classes, predictions (0.9, 0.1) and (0.1, 0.9) in equal numbers: exp(log 2 - H(0.9))
    p = torch.tensor([[0.9, 0.1], [0.1, 0.9]], dtype=torch.float64).repeat(5, 1)
    h = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert inception_score(p)[0] == pytest.approx(math.exp(math.log(2) - h), rel=1e-9)


def test_gan_losses_match_formulas():
    _, d = gan.make_dcgan(8, 2, 1)
    real, fake = torch.rand(4, 1, 28, 28) * 2 - 1, torch.rand(4, 1, 28, 28) * 2 - 1
    sr, sf = torch.sigmoid(d(real)), torch.sigmoid(d(fake))
    expect_d = (-torch.log(sr).mean() - torch.log(1 - sf).mean()) / 2
    assert gan.d_loss(d, real, fake).item() == pytest.approx(expect_d.item(), rel=1e-5)
    assert gan.g_loss(d, fake).item() == pytest.approx(-torch.log(sf).mean().item(), rel=1e-5)


def test_steps_to_threshold_and_rho():
    assert gan.steps_to([1.0, 2.0, 5.0, 4.0], 3.0, 50) == 100
    assert gan.steps_to([1.0, 2.0], 3.0, 50) is None
    runs = {k: {"curve": c, "d_fraction": 0.5} for k, c in (
        ("gan-1-1", [1.0, 2.0, 3.0]), ("gan-1-5", [1.0, 3.0, 4.0]), ("gan-3-1", [1.0, 1.5, 2.0]),
        ("autoloss", [1.0, 2.0, 5.0]))}
    s = {"eval_every": 50, "n_train": 100, "batch": 10, "scale_threshold_is": 8.6,
         "scale_real_is": 9.5}
    v = gan.summarise(runs, s, is_real=9.5)
    assert v["threshold_is"] == pytest.approx(8.6) and v["autoloss_rho"] == pytest.approx(1.0)
    # converged IS = mean of the last 3 evaluations: 1:1 2.0, 1:5 8/3, 3:1 1.5
    assert v["is_minus_1_1"] == pytest.approx({"gan-1-5": 2 / 3, "gan-3-1": -0.5})
    assert v["best_other_minus_1_1"] == pytest.approx(2 / 3) and v["autoloss_is_gain"] == 4.0


def _toy_settings():
    return {"ctrl_lr": 0.05, "baseline_decay": 0.9, "adv_clip": 20.0, "reward_k": 1,
            "reward_c": 1.0, "reward_eps": 0.0}


@pytest.mark.parametrize("use_baseline", [True, False])
def test_online_controller_moves_toward_rewarded_action(use_baseline):
    """Reward +1 whenever the segment took mostly D steps: p(D) must rise."""
    ctrl = gan.OnlineController(_toy_settings(), seed=3, use_baseline=use_baseline)
    x = [0.5, -0.2, 0.3, 0.1]
    f = torch.tensor([x])
    p0 = float(ctrl.policy(f)[0, gan.D_ACTION])
    hist = [1.0, 2.0]
    for _ in range(40):
        acts = [ctrl.act(x) for _ in range(10)]
        frac_d = sum(a == gan.D_ACTION for a in acts) / len(acts)
        # segment reward (P[-1]-P[-2]) / (P[-2]-P[-3]): +1 or -1 by the segment's D share
        hist.append(hist[-1] + (1.0 if frac_d >= 0.5 else -1.0) * (hist[-1] - hist[-2]))
        if use_baseline:  # give the baseline something to subtract: reward depends on share
            hist[-1] = hist[-2] + (frac_d - 0.5) * 2 * (hist[-2] - hist[-3])
        ctrl.end_segment(hist)
    p1 = float(ctrl.policy(f)[0, gan.D_ACTION])
    assert ctrl.updates == 40
    assert p1 > p0 + 0.1, (p0, p1)


def _tiny_gan_settings():
    return {"z_dim": 8, "base_filters": 2, "batch": 4, "lr": 1e-3, "steps": 12, "eval_every": 6,
            "eval_samples": 20, "splits": 1, **_toy_settings()}


def test_train_gan_follows_schedule_and_device_argument():
    """A 1:5 schedule takes 2 D updates in 12 steps (hand count of D G G G G G | D G G G G G);
    an explicit CPU device gives the very same run as the default (draws come from CPU
    generators), and an unavailable device is refused with a clear error."""
    s = _tiny_gan_settings()
    x = torch.rand(50, 1, 28, 28)
    clf = gan.MnistClassifier(0)
    a = gan.train_gan(s, clf, x, seed=0, ratio="1:5")
    b = gan.train_gan(s, clf, x, seed=0, ratio="1:5", device=torch.device("cpu"))
    assert a["d_fraction"] == pytest.approx(2 / 12)
    assert len(a["curve"]) == 3 and a["curve"] == b["curve"]
    if not torch.cuda.is_available():
        from reprobook.profiles import ParameterError, resolve_device

        with pytest.raises(ParameterError, match="CUDA is not available"):
            resolve_device("cuda")
