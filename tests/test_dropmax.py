"""Tests of reprobook.dropmax against independent answers: the ``entmax`` package (sparsemax
and its loss), brute-force masked softmax in numpy, the exact 2^K expectation of the MC rule,
a numpy transcription of the official TF loss (haebeom-lee/dropmax d4b44de, layers.py and
lenet.py), closed-form Bernoulli KL, hand-counted parameter numbers."""
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reprobook import dropmax as dm


def _rng(seed=0):
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- sparsemax
def test_sparsemax_matches_entmax():
    from entmax import sparsemax as ent_sparsemax
    z = torch.from_numpy(_rng().normal(size=(64, 7)) * 2)
    np.testing.assert_allclose(dm.sparsemax(z), ent_sparsemax(z, dim=-1), atol=1e-12)
    zt = z.reshape(8, 8, 7).transpose(1, 2)  # classes on dim 1
    np.testing.assert_allclose(dm.sparsemax(zt, dim=1),
                               ent_sparsemax(zt.contiguous(), dim=1), atol=1e-12)


def test_sparsemax_worked_examples():
    np.testing.assert_allclose(dm.sparsemax(torch.tensor([1.0, 0.5, 0.0])), [0.75, 0.25, 0.0])
    t = torch.tensor([-0.2, 0.4, 1.0])  # K = 2: p_1 = clip((t + 1) / 2, 0, 1)
    p = dm.sparsemax(torch.stack([t, torch.zeros(3)], -1))
    np.testing.assert_allclose(p[:, 0], [0.4, 0.7, 1.0], atol=1e-7)


def test_sparsemax_gradient_matches_entmax():
    from entmax import sparsemax as ent_sparsemax
    z = torch.from_numpy(_rng(1).normal(size=(32, 6))).requires_grad_()
    w = torch.from_numpy(_rng(2).normal(size=(32, 6)))
    g1, = torch.autograd.grad((dm.sparsemax(z) * w).sum(), z)
    g2, = torch.autograd.grad((ent_sparsemax(z, dim=-1) * w).sum(), z)
    np.testing.assert_allclose(g1, g2, atol=1e-12)


def test_sparsemax_loss_matches_entmax_and_spec_values():
    from entmax import SparsemaxLoss, sparsemax as ent_sparsemax
    z = torch.from_numpy(_rng(3).normal(size=(50, 5)) * 3).requires_grad_()
    t = torch.from_numpy(_rng(4).integers(0, 5, 50))
    ours = dm.sparsemax_loss(z, t)
    ref = SparsemaxLoss(reduction="none")(z, t)
    np.testing.assert_allclose(ours.detach(), ref.detach(), atol=1e-12)
    g, = torch.autograd.grad(ours.sum(), z)  # gradient = sparsemax(z) - delta_t
    np.testing.assert_allclose(g, ent_sparsemax(z.detach(), dim=-1) - F.one_hot(t, 5), atol=1e-12)
    zz = torch.tensor([[1.0, 0.5, 0.0], [1.0, 0.5, 0.0], [2.0, 0.0, 0.0]])
    np.testing.assert_allclose(dm.sparsemax_loss(zz, torch.tensor([0, 1, 0])),
                               [0.0625, 0.5625, 0.0], atol=1e-7)


def test_sparsemax_bad_input():
    with pytest.raises(TypeError):
        dm.sparsemax(torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError):
        dm.sparsemax_loss(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(TypeError):
        dm.sparsemax_loss(torch.zeros(2, 3), torch.tensor([0.0, 1.0]))


# --------------------------------------------------------------------------- masked softmax
def _np_class_probs(o, z, eps=1e-20):
    e = (z + eps) * np.exp(o - o.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_class_mode_is_brute_force_masked_softmax():
    rng = _rng(5)
    o = rng.normal(size=(200, 6)) * 3
    z = (rng.random((200, 6)) < 0.5).astype(float)
    z[np.arange(200), rng.integers(0, 6, 200)] = 1  # at least one kept class
    p = dm.dropmax_probs(torch.from_numpy(o), torch.from_numpy(z)).numpy()
    kept = np.where(z > 0, np.exp(o), 0.0)  # softmax over the kept classes only
    np.testing.assert_allclose(p, kept / kept.sum(-1, keepdims=True), atol=1e-12)
    zc = rng.random((200, 6))  # relaxed masks: the formula (z + eps) e^o / sum
    np.testing.assert_allclose(dm.dropmax_probs(torch.from_numpy(o), torch.from_numpy(zc)),
                               _np_class_probs(o, zc), rtol=1e-10)


def test_class_mode_spec_oracles():
    o = torch.tensor([2.0, 1.0, 0.5, -1.0], dtype=torch.float64)
    np.testing.assert_allclose(dm.dropmax_probs(o, torch.ones(4, dtype=torch.float64)),
                               [0.60946, 0.22421, 0.13599, 0.03034], atol=1e-5)
    p = dm.dropmax_probs(o, torch.tensor([0.0, 1, 1, 0], dtype=torch.float64))
    assert abs(float(p[1]) - 0.622459) < 1e-6
    assert float(p[0]) < 1e-19 and float(p[3]) < 1e-19
    p = dm.dropmax_probs(o, torch.tensor([0.0, 0, 1, 0], dtype=torch.float64))
    assert abs(float(p[2]) - 1) < 1e-15


def test_logit_mode_is_softmax_of_masked_logits():
    rng = _rng(6)
    o, z = rng.normal(size=(30, 5)) * 2, rng.random((30, 5))
    e = np.exp(z * o)
    np.testing.assert_allclose(dm.dropmax_probs(torch.from_numpy(o), torch.from_numpy(z),
                                                mode="logit"),
                               e / e.sum(-1, keepdims=True), rtol=1e-12)
    # a dropped class keeps logit 0, so it keeps probability (the report's objection)
    p = dm.dropmax_probs(torch.tensor([3.0, -2.0]), torch.tensor([1.0, 0.0]), mode="logit")
    assert abs(float(p[1]) - 1 / (1 + math.e ** 3)) < 1e-6


@pytest.mark.parametrize("mode", dm.MODES)
def test_float32_logits_of_1000_stay_finite(mode):
    o = torch.tensor([[1000.0, -1000.0, 0.0, 999.0], [-1000.0, -1000.0, -999.0, 1000.0]],
                     requires_grad=True)
    z = torch.tensor([[0.0, 1.0, 1.0, 0.3], [1.0, 0.0, 0.0, 1.0]])
    lp = dm.dropmax_log_probs(o, z, mode=mode)
    assert torch.isfinite(lp).all()
    np.testing.assert_allclose(lp.exp().sum(-1).detach(), [1.0, 1.0], atol=1e-6)
    g, = torch.autograd.grad(lp[:, 1].sum(), o)
    assert torch.isfinite(g).all()
    if mode == "class":  # class 0 dropped: its weight is 1e-20, so 999 + log 0.3 wins
        assert float(lp[0, 3].detach().exp()) > 0.999


def test_bad_mode_raises():
    with pytest.raises(ValueError, match="mode"):
        dm.dropmax_probs(torch.zeros(3), torch.ones(3), mode="drop")
    with pytest.raises(ValueError, match="mode"):
        dm.DropMax(4, 3, mode="both")


# --------------------------------------------------------------------------- masks
def test_concrete_mask_formula_and_target():
    rng = _rng(7)
    lg, u = rng.normal(size=(40, 5)) * 2, rng.random((40, 5))
    t = torch.from_numpy(rng.integers(0, 5, 40))
    z = dm.concrete_mask(torch.from_numpy(lg), 0.1, torch.from_numpy(u), target=t)
    ref = 1 / (1 + np.exp(-(lg + np.log(u) - np.log(1 - u)) / 0.1))
    ref[np.arange(40), t.numpy()] = 1.0
    np.testing.assert_allclose(z, ref, rtol=1e-10)
    assert (z[torch.arange(40), t] == 1.0).all()  # exactly 1
    with pytest.raises(ValueError):
        dm.concrete_mask(torch.zeros(3), tau=0.0)


@pytest.mark.parametrize("tau", [0.1, 1.0])
def test_concrete_mask_event_probability_is_sigmoid(tau):
    lg = torch.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    n = 200_000
    g = torch.Generator().manual_seed(0)
    z = dm.concrete_mask(lg.expand(n, 5), tau=tau, generator=g)
    freq = (z > 0.5).double().mean(0).numpy()
    p = torch.sigmoid(lg).double().numpy()
    assert np.all(np.abs(freq - p) < 4.5 * np.sqrt(p * (1 - p) / n))


def test_random_mask_hard_keeps_target_and_rate():
    n, K = 100_000, 4
    t = torch.randint(0, K, (n,), generator=torch.Generator().manual_seed(1))
    z = dm.random_mask(t, K, 0.3, generator=torch.Generator().manual_seed(2))
    assert set(z.unique().tolist()) == {0.0, 1.0}
    assert (z[torch.arange(n), t] == 1).all()
    nontarget = z[F.one_hot(t, K) == 0]
    assert abs(float(nontarget.mean()) - 0.3) < 4.5 * math.sqrt(0.21 / nontarget.numel())
    with pytest.raises(ValueError):
        dm.random_mask(t, K, 1.5)


# --------------------------------------------------------------------------- KL and terms
def test_bernoulli_kl_closed_form():
    q = torch.tensor([0.2, 0.3, 0.0, 1.0, 0.7], dtype=torch.float64)
    p = torch.tensor([0.5, 0.3, 0.4, 0.9, 0.1], dtype=torch.float64)
    ref = [0.2 * math.log(0.4) + 0.8 * math.log(1.6), 0.0, math.log(1 / 0.6), math.log(1 / 0.9),
           0.7 * math.log(7) + 0.3 * math.log(1 / 3)]
    np.testing.assert_allclose(dm.bernoulli_kl(q, p), ref, rtol=1e-12)
    assert abs(float(dm.bernoulli_kl(torch.tensor(0.2), torch.tensor(0.5))) - 0.1927448) < 1e-6


def _official_terms_numpy(o, ph, rh, y, u, tau=0.1, eps=1e-20):
    """Transcription of the official TF graph (layers.py / lenet.py ``dropmax``, training)."""
    log = lambda x: np.log(x + 1e-20)  # noqa: E731
    logit = lambda x: log(x) - log(1 - x)  # noqa: E731
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    p, r, q = sig(ph), sig(rh), sig(ph + rh)
    z = sig(1 / tau * (logit(q) + logit(u)))
    z = np.where(y == 1, 1.0, z)
    expo = (z + eps) * np.exp(o)
    cent = -np.mean(log((expo * y).sum(1)) - log(expo.sum(1)))
    kl = np.where(y == 1, -log(p), q * (log(q) - log(p)) + (1 - q) * (log(1 - q) - log(1 - p)))
    aux = np.where(y == 1, -log(r), -log(1 - r))
    neg_ent = p * log(p) + (1 - p) * log(1 - p)
    return {"ce": cent, "kl": kl.mean(0).sum(), "aux": aux.mean(0).sum(),
            "neg_ent": neg_ent.mean(0).sum()}


def test_dropmax_terms_match_official_transcription():
    rng = _rng(8)
    B, K = 64, 10
    o, ph, rh = (rng.normal(size=(B, K)) * s for s in (3, 2, 2))
    t = rng.integers(0, K, B)
    u = rng.uniform(0.01, 0.99, (B, K))
    ours = dm.dropmax_terms(*(torch.from_numpy(a) for a in (o, ph, rh)), torch.from_numpy(t),
                            u=torch.from_numpy(u))
    ref = _official_terms_numpy(o, ph, rh, np.eye(K)[t], u)
    for k in ("ce", "kl", "aux", "neg_ent"):
        np.testing.assert_allclose(float(ours[k]), ref[k], rtol=1e-9, err_msg=k)


def test_dropmax_terms_spec_values_and_stop_gradient():
    t = torch.tensor([0])
    ph = torch.tensor([[math.log(0.8 / 0.2), 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    rh = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    o = torch.tensor([[1.0, 2.0, -1.0]], dtype=torch.float64, requires_grad=True)
    terms = dm.dropmax_terms(o, ph, rh, t, u=torch.full((1, 3), 0.3, dtype=torch.float64))
    # q = rho when rh = 0: the non-target KL vanishes, the target one is -log 0.8
    assert abs(float(terms["kl"].detach()) - 0.2231436) < 1e-7
    # neg_ent: -log 2 for each class at rho = 1/2, plus the 0.8 class's value
    assert abs(float(terms["neg_ent"].detach()) - (2 * -math.log(2) + 0.8 * math.log(0.8)
                                          + 0.2 * math.log(0.2))) < 1e-12
    g_ph, g_rh = torch.autograd.grad(terms["ce"], (ph, rh), allow_unused=True)
    assert g_ph is None or float(g_ph.abs().max()) == 0.0  # q stop-gradients ph
    g_ph_kl, = torch.autograd.grad(terms["kl"], ph)
    assert float(g_ph_kl.abs().max()) > 0  # ph learns through rho in the KL
    assert float(g_rh[0, 1:].abs().max()) > 0  # the residual head learns from the CE
    assert float(g_rh[0, 0]) == 0.0  # the target entry is forced to 1


# --------------------------------------------------------------------------- inference
@pytest.mark.parametrize("mode", dm.MODES)
def test_mc_probs_match_exact_expectation(mode):
    rng = _rng(9)
    K = 4
    o, rho = rng.normal(size=(3, K)) * 2, rng.uniform(0.1, 0.9, (3, K))
    mean, second = np.zeros((3, K)), np.zeros((3, K))
    for bits in itertools.product([0.0, 1.0], repeat=K):  # all 2^K masks
        z = np.broadcast_to(np.array(bits), (3, K))
        w = np.prod(np.where(z == 1, rho, 1 - rho), -1, keepdims=True)
        if mode == "class":
            p = _np_class_probs(o, z)
        else:
            e = np.exp(z * o)
            p = e / e.sum(-1, keepdims=True)
        mean += w * p
        second += w * p ** 2
    S = 40_000
    mc = dm.dropmax_mc_probs(torch.from_numpy(o), torch.from_numpy(rho), samples=S, mode=mode,
                             generator=torch.Generator().manual_seed(3)).numpy()
    se = np.sqrt((second - mean ** 2) / S)
    assert np.all(np.abs(mc - mean) <= 4.5 * se + 1e-12)
    assert not np.allclose(mean, _np_class_probs(o, rho))  # the plug-in rule differs


def test_predict_proba_is_the_prior_plugin_and_never_sees_the_label():
    torch.manual_seed(0)
    layer = dm.DropMax(8, 5).double()
    h = torch.randn(20, 8, dtype=torch.float64)
    W = {n: p.detach().numpy() for n, p in layer.named_parameters()}
    hn = h.numpy()
    o = hn @ W["logits.weight"].T + W["logits.bias"]
    rho = 1 / (1 + np.exp(-(hn @ W["prior.weight"].T + W["prior.bias"])))
    p = layer.predict_proba(h).detach().numpy()
    np.testing.assert_allclose(p, _np_class_probs(o, rho), rtol=1e-10)
    # the label-forced mask (the leak fixed in fe60d5e) would give another answer
    t = np.argmax(p, -1)
    leaked = rho.copy()
    leaked[np.arange(20), (t + 1) % 5] = 1
    assert not np.allclose(p, _np_class_probs(o, leaked))


def test_dropmax_layer_init_and_loss_terms():
    torch.manual_seed(0)
    layer = dm.DropMax(500, 10)
    for lin in (layer.logits, layer.prior, layer.residual):
        bound = math.sqrt(6 / (500 + 10))  # Glorot uniform
        w = float(lin.weight.detach().abs().max())
        assert 0.9 * bound < w <= bound
        assert float(lin.bias.detach().abs().max()) == 0.0
    h, t = torch.randn(4, 500), torch.tensor([0, 1, 2, 3])
    u = torch.rand(4, 10)
    a = layer.loss_terms(h, t, u=u)
    b = dm.dropmax_terms(*layer(h), t, u=u)
    assert all(torch.equal(a[k], b[k]) for k in ("ce", "kl", "aux", "neg_ent"))


# --------------------------------------------------------------------------- sampled softmax
def test_sampled_softmax_with_all_classes_is_cross_entropy():
    rng = _rng(10)
    K = 7
    o = torch.from_numpy(rng.normal(size=(30, K)) * 2)
    t = torch.from_numpy(rng.integers(0, K, 30))
    # uniform Q: every logit shifted by the same log(1/K), which the softmax ignores
    np.testing.assert_allclose(dm.sampled_softmax_loss(o, t, K - 1),
                               F.cross_entropy(o, t, reduction="none"), rtol=1e-12)
    # non-uniform Q: exactly the cross-entropy of the corrected logits o - log Q
    log_q = torch.log_softmax(torch.from_numpy(rng.normal(size=K)), 0)
    np.testing.assert_allclose(dm.sampled_softmax_loss(o, t, K - 1, log_q=log_q),
                               F.cross_entropy(o - log_q, t, reduction="none"), rtol=1e-12)
    assert not np.allclose(F.cross_entropy(o - log_q, t, reduction="none"),
                           F.cross_entropy(o, t, reduction="none"))


def test_sampled_softmax_subset_and_sampler():
    rng = _rng(11)
    K, B, m = 10, 2000, 3
    o = torch.from_numpy(rng.normal(size=(B, K)))
    t = torch.from_numpy(rng.integers(0, K, B))
    log_q = torch.full((B, K), -math.log(K), dtype=torch.float64)
    s = dm.sample_negatives(log_q, t, m, torch.Generator().manual_seed(5))
    assert s.shape == (B, m)
    assert (s != t[:, None]).all()
    assert all(len(set(row)) == m for row in s.tolist())
    loss = dm.sampled_softmax_loss(o, t, m, generator=torch.Generator().manual_seed(5))
    on = o.numpy()  # brute force over the same kept classes
    kept = np.concatenate([t.numpy()[:, None], s.numpy()], 1)
    ok = np.take_along_axis(on, kept, 1)
    ref = -(ok[:, 0] - np.log(np.exp(ok).sum(1)))
    np.testing.assert_allclose(loss, ref, rtol=1e-12)
    with pytest.raises(ValueError):
        dm.sampled_softmax_loss(o, t, K)


def test_sample_negatives_follows_q():
    K, n = 4, 200_000
    q = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    t = torch.zeros(n, dtype=torch.long)  # class 0 is the target: Q renormalised on 1..3
    s = dm.sample_negatives(q.log().expand(n, K), t, 1, torch.Generator().manual_seed(6))
    freq = torch.bincount(s[:, 0], minlength=K).double().numpy() / n
    ref = np.array([0.0, 0.2, 0.3, 0.4]) / 0.9
    assert freq[0] == 0
    assert np.all(np.abs(freq - ref) < 4.5 * np.sqrt(ref * (1 - ref) / n) + 1e-12)


# --------------------------------------------------------------------------- models
def test_trunks_shapes_and_parameter_counts():
    x = torch.rand(2, 1, 28, 28)
    lenet = dm.make_trunk("lenet")  # 20*25+20, 50*20*25+50, 800*500+500
    assert lenet(x).shape == (2, 500) and lenet.out_features == 500
    assert sum(p.numel() for p in lenet.parameters()) == 520 + 25050 + 400500
    tf = dm.make_trunk("tf_tutorial")  # 32*25+32, 64*32*25+64, 3136*1024+1024
    assert tf(x).shape == (2, 1024)
    assert sum(p.numel() for p in tf.parameters()) == 832 + 51264 + 3212288
    assert float(tf[-2].bias.detach().abs().max()) == 0.0
    with pytest.raises(ValueError, match="lenet"):
        dm.make_trunk("resnet")


def test_classifier_weight_decay_skips_rho_and_r_heads():
    net = dm.Classifier("lenet", head="dropmax")
    decayed = {id(p) for p in net.decayed_parameters()}
    assert all(id(p) not in decayed for p in net.head.prior.parameters())
    assert all(id(p) not in decayed for p in net.head.residual.parameters())
    assert all(id(p) in decayed for p in net.head.logits.parameters())
    assert len(decayed) == len(list(net.parameters())) - 4


# --------------------------------------------------------------------------- experiments
from reprobook.dropmax import experiments as ex  # noqa: E402


def test_class_split_first_and_next_n_per_class():
    y = torch.tensor([0, 1, 0, 2, 1, 0, 0, 1, 2, 0])
    tr, va = ex.class_split(y, 2, classes=3)
    assert tr.tolist() == [0, 2, 1, 4, 3, 8]  # first two of each class, dataset order
    assert va.tolist() == [5, 6, 7]  # the next two: class 2 has none left


def test_ece_matches_a_loop_over_bins():
    rng = _rng(12)
    n, K, bins = 500, 4, 15
    probs = torch.from_numpy(rng.dirichlet(np.ones(K) * 0.5, n))
    y = torch.from_numpy(rng.integers(0, K, n))
    conf, pred = probs.max(1).values.numpy(), probs.argmax(1).numpy()
    total = 0.0
    for b in range(bins):  # bins (b/15, (b+1)/15]
        lo, hi = b / bins, (b + 1) / bins
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            total += sel.sum() / n * abs((pred[sel] == y.numpy()[sel]).mean() - conf[sel].mean())
    assert abs(ex.expected_calibration_error(probs, y, bins) - total) < 1e-12


def test_lr_milestones_follow_tf_piecewise_constant():
    steps = 10
    b = steps // 3
    tf_lr = [1e-3 if g <= b else 1e-4 if g <= 2 * b else 1e-5 for g in range(steps)]
    net = torch.nn.Linear(1, 1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = ex.StepDecay(ex.lr_milestones(steps), 0.1, unit="step")
    used = []
    for step in range(steps):
        used.append(opt.param_groups[0]["lr"])
        sched.step_end(step, opt)
    np.testing.assert_allclose(used, tf_lr)


@pytest.mark.parametrize("name", list(ex.MODELS))
def test_every_model_trains_and_evaluates(name):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 1, 28, 28, generator=g)
    y = torch.arange(40) % 10
    split = {"x": x[:20], "y": y[:20], "x_val": x[20:30], "y_val": y[20:30],
             "x_test": x[30:], "y_test": y[30:]}
    cfg = {"trunk": "lenet", "batch": 10, "lr": 1e-3, "weight_decay": 1e-4, "retain": 0.5,
           "num_sampled": 5, "alpha": 10.0, "samples": [3], "test_n": 10, "seed": 0,
           "epochs": 1}
    out = ex.train_one(name, split, cfg)
    assert out["steps"] == 2 and math.isfinite(out["hist"]["loss"][0])
    assert all(0 <= e <= 100 for e in out["error"].values())
    assert ("s3" in out["error"]) == (name in ex.SAMPLED_RULES)
    assert out["params"] >= 426070 + 5010


def test_report_loss_terms_match_numpy():
    rng = _rng(13)
    o, ph = rng.normal(size=(16, 10)), rng.normal(size=(16, 10)) * 2
    y = rng.integers(0, 10, 16)
    torch.manual_seed(7)
    base = float(ex.report_loss(torch.from_numpy(o), torch.from_numpy(ph), torch.from_numpy(y),
                                "class", alpha=0.0, variational=False))
    rho = 1 / (1 + np.exp(-ph))
    var = -np.mean(np.log(rho[np.arange(16), y] / rho.sum(1)))  # Keras CE renormalising rho
    ent = -(rho * np.log(rho) + (1 - rho) * np.log(1 - rho)).mean(1).mean()
    torch.manual_seed(7)  # the same mask draw
    full = float(ex.report_loss(torch.from_numpy(o), torch.from_numpy(ph), torch.from_numpy(y),
                                "class", alpha=10.0, variational=True))
    assert abs(full - (base + var - 10 * ent)) < 1e-10


def _cell(size, model, seed, err, ece, ms, extra=None):
    return ({"size": size, "model": model, "seed": seed},
            {"error": err, "ece": ece, "ms_per_step": ms, "us_per_image": 1.0, "val_error": 0.0,
             "params": 10, "epochs": 20, "hist": {}, **(extra or {})})


def test_summarise_mnist_medians_and_derived_values():
    cells = [_cell("1k", "softmax", s, {"approx": e}, 2.0 + s, 10.0)
             for s, e in enumerate([7.0, 6.0, 9.0])]
    cells += [_cell("1k", "adaptive-logit", s, {"approx": e, "s30": e + 1, "s100": e - 0.5},
                    1.0, 30.0) for s, e in enumerate([5, 6, 4])]
    v = ex.summarise_mnist(cells, {"seeds": [0, 1, 2]})
    assert v["error"]["softmax"]["approx"]["1k"] == 7.0  # median of 7, 6, 9
    assert v["error"]["adaptive-logit"]["s100"]["1k"] == 4.5
    assert v["gain"]["adaptive-logit"]["1000"] == 2.0  # keys as JSON stores them
    assert v["sampled_minus_approx"]["adaptive-logit"]["1k"] == -0.5
    assert v["step_ratio"]["adaptive-logit"]["1k"] == 3.0
    assert v["ece_gain"]["adaptive-logit"]["1k"] == 2.0  # median ECE 3 - 1
    assert v["runs"] == 3 and v["epochs"]["1k"] == 20
    assert v["paired_gain"] == {}  # no per-image record: no paired gain


def test_paired_gain_is_the_mean_error_difference_over_the_same_images():
    rng = np.random.default_rng(0)
    soft = rng.random((2, 400)) < 0.10
    drop = soft & (rng.random((2, 400)) < 0.5)  # drop fixes about half of softmax's errors
    bits = lambda m: ex.pack_bits(torch.from_numpy(m))
    cells = [_cell("1k", m, s, {"approx": 0.0}, 0.0, 1.0, {"wrong": bits(w[s]), "n_test": 400})
             for m, w in (("softmax", soft), ("adaptive-class", drop)) for s in range(2)]
    g = ex.summarise_mnist(cells, {"seeds": [0, 1], "n_boot": 500})["paired_gain"]
    d = g["adaptive-class"]["1k"]
    assert d["mean"] == pytest.approx((soft.mean() - drop.mean()) * 100)
    assert d["lo"] < d["mean"] < d["hi"] and d["lo"] > 0 and d["seeds"] == 2
    assert np.array_equal(ex.unpack_bits(bits(soft[0]), 400), soft[0])


def test_report_code_kernel_is_the_keras_mask_softmax():
    """customlayers.py maskSoftMax, transcribed in numpy: (z e^(o - max) + 1e-4), normalised."""
    g = torch.Generator().manual_seed(3)
    o, z = torch.randn(5, 10, generator=g, dtype=torch.float64) * 4, \
        (torch.rand(5, 10, generator=g, dtype=torch.float64) > 0.5).double()
    e = np.exp(o.numpy() - o.numpy().max(1, keepdims=True)) * z.numpy() + 1e-4
    ref = e / e.sum(1, keepdims=True)
    assert np.allclose(ex.report_code_log_probs(o, z).exp().numpy(), ref, rtol=1e-12)
    # a dropped class keeps a share of at least 1e-4 / sum: unlike (z + 1e-20) e^o
    assert (ex.report_code_log_probs(o, torch.zeros_like(z)).exp() > 0.09).all()


def test_pathology_cells_and_summary_names():
    cfg = {"seeds": [0], "code_seeds": [0, 1, 2], "epochs": 1, "test_n": 10, "alpha": 10.0}
    cells = ex.pathology_cells(cfg)
    assert len(cells) == 8 + 2 * 3
    assert sum(c.get("objective") == "report-code" for c in cells) == 6
    vals = {"hist": {"rho_nt": [0.5], "rho_nt_99": [0.0]}, "error": {"approx": 10.0}}
    out = ex.summarise_pathology([(c, vals) for c in cells], cfg)
    assert set(out["rho_nt"]) == ({ex.variant_name(*v) for v in ex.PATHOLOGY_VARIANTS}
                                  | {"code-class-free-linear", "code-class-forced-linear"})
    assert out["rho_nt_seeds"]["code-class-free-linear"] == 3


def test_mnist_variants_read_amat_and_train_or_say_what_is_missing(tmp_path, monkeypatch):
    """The poster's MNIST variations: without the files, one line naming the missing file and
    no record; with (tiny, hand-written) .amat files listed in MD5SUMS, the pixels and labels
    read back as written and a cell trains."""
    import hashlib
    from reprobook import runner
    from reprobook.data import MissingData
    from reprobook.dropmax import exp_variants as ev

    monkeypatch.setenv("REPRO_DATA", str(tmp_path))
    monkeypatch.setenv("REPRO_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("REPRO_EVIDENCE", "none")
    ev.load_variant.cache_clear()
    with pytest.raises(MissingData, match="mnist_background_random_train.amat is missing"):
        ev.load_variant("rb")
    rng = np.random.default_rng(0)
    sums = []
    for name, (folder, train, test) in ev.VARIANTS.items():
        (tmp_path / "mnist_variations" / folder).mkdir(parents=True)
        for fname, n in ((train, 40), (test, 20)):
            x = rng.random((n, 784)).round(4)
            y = np.arange(n) % 10
            path = tmp_path / "mnist_variations" / folder / fname
            np.savetxt(path, np.column_stack([x, y]), fmt="%.4f")
            sums.append(f"{hashlib.md5(path.read_bytes()).hexdigest()}  mnist_variations/{folder}/{fname}")
            if name == "rb" and fname == train:
                want_x, want_y = x, y
    (tmp_path / "MD5SUMS").write_text("\n".join(sums) + "\n")
    ev.load_variant.cache_clear()
    d = ev.load_variant("rb")
    assert d["x_train"].shape == (40, 1, 28, 28) and d["y_train"].tolist() == want_y.tolist()
    assert np.allclose(d["x_train"][3, 0].numpy().ravel(), want_x[3], atol=1e-6)
    r = runner.Runner("dropmax", "small")
    rec = r.run("dropmax_mnist_variants", epochs=1, test_n=20, seeds=[0])
    assert rec is not None and not r.missing.get("dropmax_mnist_variants")
    assert 0 <= rec["values"]["rb-softmax-err"] <= 100 and "br-dropmax-ece" in rec["values"]
    ev.load_variant.cache_clear()
