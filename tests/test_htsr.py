"""HT-SR kernels against the spec's oracles (shared/specs/htsr.md §4), closed forms, the
``powerlaw`` package's own x_min search, SciPy and slow reference implementations; the
training loop against numbers recorded before the package split; the ledger against the
report's tables (seed 004)."""
import io
import json
import math
import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn

from reprobook import claims, htsr


def gaussian(n, m, seed=0, std=1.0):
    return torch.randn(n, m, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * std


# --- Marchenko-Pastur (oracles 1-6) ------------------------------------------------------
def test_mp_edges_closed_form():
    assert htsr.mp_edges(4.0, 1.0) == pytest.approx((0.25, 2.25))
    lo, hi = htsr.mp_edges(4096 / 384, math.sqrt(0.5))
    assert (lo, hi) == pytest.approx((0.2407, 0.8531), abs=1e-4)


@pytest.mark.parametrize("Q,sigma", [(1.0, 1.0), (2.0, 0.7), (4.0, 1.0), (10.67, 1.3)])
def test_mp_density_normalised_with_mean_sigma2(Q, sigma):
    lo, hi = htsr.mp_edges(Q, sigma)
    lam = np.linspace(lo, hi, 400001)[1:-1]
    rho = htsr.mp_density(lam, Q, sigma)
    if Q > 1:  # the Q = 1 density diverges at 0; checked through the singular values below
        assert np.trapezoid(rho, lam) == pytest.approx(1, abs=2e-3)
        assert np.trapezoid(lam * rho, lam) == pytest.approx(sigma**2, rel=2e-3)
    nu = np.linspace(0, math.sqrt(hi), 400001)
    rho_nu = htsr.mp_sv_density(nu, Q, [sigma])[0]
    assert np.trapezoid(rho_nu, nu) == pytest.approx(1, abs=2e-3)
    if Q == 1.0:  # quarter-circle law
        ref = np.sqrt(np.clip(4 * sigma**2 - nu**2, 0, None)) / (np.pi * sigma**2)
        assert np.allclose(rho_nu[1:-1], ref[1:-1], atol=1e-9)


def mp_cdf(x, Q, sigma):
    lo, hi = htsr.mp_edges(Q, sigma)
    grid = np.linspace(lo, hi, 200001)
    cdf = np.concatenate([[0], np.cumsum(np.diff(grid) * 0.5 * (htsr.mp_density(grid[1:], Q, sigma)
                                                                + htsr.mp_density(grid[:-1], Q, sigma)))])
    return np.interp(x, grid, cdf / cdf[-1])


@pytest.mark.numerics
def test_oracle1_gaussian_4000x1000():
    spec = htsr.esd(gaussian(4000, 1000), normalize=True)
    assert (spec.N, spec.M, spec.Q) == (4000, 1000, 4.0)
    assert spec.evals.mean() == pytest.approx(1.0, abs=0.01)
    assert spec.evals.min() == pytest.approx(0.25, abs=0.01)
    assert spec.evals.max() == pytest.approx(2.25, abs=0.05)
    ks = np.abs(mp_cdf(spec.evals, 4.0, 1.0) - (np.arange(1000) + 0.5) / 1000).max()
    assert ks < 0.01
    mp = htsr.fit_mp(spec)
    assert mp.ok and mp.sigma == pytest.approx(1.0, rel=0.02)
    assert mp.lambda_plus == pytest.approx(2.25, rel=0.03)
    assert mp.lambda_minus == pytest.approx(0.25, rel=0.05)
    assert mp.spikes == 0
    assert mp.soft_rank == pytest.approx(1.0, abs=0.05)


@pytest.mark.numerics
def test_oracle2_minialexnet_fc1_shape():
    spec = htsr.esd(gaussian(4096, 384, seed=1, std=math.sqrt(0.5)), normalize=True)
    mp = htsr.fit_mp(spec)
    assert mp.lambda_plus == pytest.approx(0.8531, rel=0.03)
    assert mp.lambda_minus == pytest.approx(0.2407, rel=0.05)
    assert mp.spikes == 0


@pytest.mark.numerics
def test_oracle4_unnormalised_convention():
    w = gaussian(800, 200, seed=2)
    a, b = htsr.esd(w), htsr.esd(w, normalize=True)
    assert np.allclose(a.evals, 800 * b.evals)
    assert a.units == "W^T W" and b.units == "W^T W / N"
    assert htsr.fit_mp(a).sigma**2 == pytest.approx(800 * htsr.fit_mp(b).sigma**2, rel=1e-6)


@pytest.mark.numerics
def test_esd_equals_squared_singular_values_any_orientation():
    w = gaussian(300, 120, seed=3)
    sv = np.linalg.svd(w.numpy(), compute_uv=False)
    assert np.allclose(htsr.esd(w).evals, np.sort(sv**2))
    assert np.allclose(htsr.esd(w.T).evals, htsr.esd(w).evals)
    assert (htsr.esd(w.T).N, htsr.esd(w.T).M) == (300, 120)


@pytest.mark.numerics
def test_oracle5_stable_rank_of_gaussian():
    spec = htsr.esd(gaussian(4000, 1000, seed=4))
    predicted = 1000 / (1 + 4 ** -0.5) ** 2  # 444.4
    assert htsr.stable_rank(spec.evals) == pytest.approx(predicted, rel=0.03)
    assert htsr.stable_rank(spec.evals) == pytest.approx(spec.evals.sum() / spec.evals.max())


@pytest.mark.numerics
@pytest.mark.parametrize("theta,spiked", [(2.0, True), (0.5, False)])
def test_oracle6_rank_one_spike(theta, spiked):
    N, M = 4000, 1000
    g = torch.Generator().manual_seed(5)
    u = torch.randn(N, 1, generator=g, dtype=torch.float64)
    v = torch.randn(M, 1, generator=g, dtype=torch.float64)
    w = gaussian(N, M, seed=6) + theta * math.sqrt(N) * (u / u.norm()) @ (v / v.norm()).T
    spec = htsr.esd(w, normalize=True)
    mp = htsr.fit_mp(spec)
    Q = N / M
    if spiked:  # BBP: spike iff theta^2 > Q^-1/2, at (1 + theta^2)(1 + 1/(Q theta^2))
        assert mp.spikes == 1
        assert spec.evals.max() == pytest.approx((1 + theta**2) * (1 + 1 / (Q * theta**2)), rel=0.01)
        assert htsr.phase(spec, mp, htsr.rank_loss(spec)) == "Bulk+Spikes"
    else:
        assert mp.spikes == 0
        assert spec.evals.max() == pytest.approx(2.25, rel=0.02)
        assert htsr.phase(spec, mp, htsr.rank_loss(spec)) == "Random-like"


# --- power law (oracles 7-9, 13; independent implementations) -------------------------------
def pareto(alpha, n, seed, xmin=1.0):
    """Samples with pdf ~ x^-alpha on [xmin, inf) by inverse CDF."""
    u = np.random.default_rng(seed).random(n)
    return xmin * (1 - u) ** (-1 / (alpha - 1))


@pytest.mark.parametrize("alpha", [1.5, 2.0, 3.0, 4.0, 5.0])
def test_oracle7_pareto_alpha_recovered_and_not_capped_at_3(alpha):
    x = pareto(alpha, 5000, seed=int(alpha * 10))
    fixed = htsr.fit_powerlaw(x, xmin=1.0)
    mle = 1 + len(x) / np.log(x).sum()  # closed form at xmin = 1
    assert fixed.alpha == pytest.approx(mle, abs=1e-3)
    assert abs(fixed.alpha - alpha) < 3 * fixed.sigma
    assert fixed.sigma == pytest.approx((fixed.alpha - 1) / math.sqrt(5000), rel=1e-3)
    scan = htsr.fit_powerlaw(x)
    assert scan.ok and scan.alpha == pytest.approx(alpha, abs=0.12)
    # a pure power law has no true x_min: any start is right; the tail used must be sizeable
    assert scan.xmin >= 1.0 and scan.n_tail >= 500


def test_oracle8_bulk_plus_tail_finds_xmin():
    rng = np.random.default_rng(8)
    x = np.concatenate([rng.uniform(0.1, 5, 4000), pareto(2.5, 1000, seed=9, xmin=5.0)])
    fit = htsr.fit_powerlaw(x)
    assert fit.xmin == pytest.approx(5.0, abs=0.3)
    assert fit.alpha == pytest.approx(2.5, abs=0.12)


@pytest.mark.numerics
@pytest.mark.parametrize("mu,tol", [(0.5, 0.1), (1.0, 0.1), (1.5, 0.2)])
def test_oracle9_pareto_matrix_esd_tail(mu, tol):
    """alpha = 1 + mu/2 as N, M -> infinity. At mu = 1.5 and this size the fitted tail is
    steeper (1.83-1.92 over seeds; powerlaw's own x_min search gives the same values), so the
    spec's +-0.1 is widened there to 0.2."""
    rng = np.random.default_rng(int(mu * 10))
    w = (rng.pareto(mu, (1000, 500)) + 1) * rng.choice([-1, 1], (1000, 500))
    fit = htsr.fit_powerlaw(htsr.esd(w).evals)
    assert fit.alpha == pytest.approx(1 + mu / 2, abs=tol)


def slow_ks_scan(x):
    """Reference: one candidate at a time, plain Python."""
    x = sorted(x)
    n = len(x)
    alphas, ds = [], []
    for k in range(n - 1):
        tail = x[k:]
        a = 1 + len(tail) / sum(math.log(t / x[k]) for t in tail)
        d = 0.0
        for j, t in enumerate(tail):
            cdf = 1 - (t / x[k]) ** (1 - a)
            d = max(d, abs(cdf - j / len(tail)), abs(cdf - (j + 1) / len(tail)))
        alphas.append(a)
        ds.append(d)
    return np.array(alphas), np.array(ds)


def test_ks_scan_matches_slow_reference():
    x = pareto(2.5, 300, seed=11) + np.random.default_rng(1).uniform(0, 0.5, 300)
    a, d = htsr.ks_scan(x, chunk=37)
    ra, rd = slow_ks_scan(x)
    assert np.allclose(a, ra, rtol=1e-9) and np.allclose(d, rd, atol=1e-12)


def test_xmin_agrees_with_powerlaw_package_search():
    import warnings

    import powerlaw
    rng = np.random.default_rng(12)
    x = np.concatenate([rng.uniform(0.2, 2, 300), pareto(3.0, 300, seed=13, xmin=2.0)])
    ours = htsr.fit_powerlaw(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = powerlaw.Fit(x, parameter_ranges={"alpha": [1, 1000]}, verbose=0)
    assert ours.xmin == pytest.approx(ref.xmin, rel=0.1)
    assert ours.alpha == pytest.approx(ref.power_law.alpha, abs=0.1)


@pytest.mark.numerics
def test_oracle13_failed_fit_is_flagged_not_minus_one():
    q, _ = torch.linalg.qr(gaussian(200, 100, seed=14))  # orthonormal columns: all evals 1
    spec = htsr.esd(q)
    assert np.allclose(spec.evals, 1)
    fit = htsr.fit_powerlaw(spec.evals)
    assert not fit.ok and math.isnan(fit.alpha) and "too few" in fit.status
    df = htsr.analyze({"const.weight": q, "gauss.weight": gaussian(200, 100, seed=15)})
    assert list(df["fit_ok"]) == [False, True]
    s = htsr.summary(df)
    assert s["fits_ok"] == 1 and s["alpha_mean"] == pytest.approx(df["alpha"].iloc[1])


# --- invariances, rank, conv (oracles 10-12) ---------------------------------------------------
@pytest.mark.numerics
def test_oracle10_scale_invariance():
    w = torch.from_numpy((np.random.default_rng(16).pareto(2.5, (600, 200)) + 1)
                         * np.random.default_rng(17).choice([-1, 1], (600, 200)))
    a = htsr.analyze(w).iloc[0]
    b = htsr.analyze(3.0 * w).iloc[0]
    for key in ("alpha", "D", "stable_rank", "soft_rank", "spikes"):
        assert b[key] == pytest.approx(a[key], rel=1e-6), key
    assert b["xmin"] / b["lambda_max"] == pytest.approx(a["xmin"] / a["lambda_max"], rel=1e-9)
    assert b["alpha_weighted"] - a["alpha_weighted"] == pytest.approx(2 * a["alpha"] * math.log10(3))


@pytest.mark.numerics
def test_oracle11_rank_collapse():
    g = torch.Generator().manual_seed(18)
    w = torch.randn(500, 50, generator=g) @ torch.randn(50, 200, generator=g)
    row = htsr.analyze(w).iloc[0]
    assert row["rank_loss"] == 200 - 50
    assert row["phase"] == "Rank-collapse"


@pytest.mark.numerics
def test_oracle12_conv_slices_pooled():
    w = torch.randn(64, 32, 3, 3, generator=torch.Generator().manual_seed(19))
    spec = htsr.esd(w)
    assert (len(spec.evals), spec.N, spec.M, spec.rf) == (288, 64, 32, 9)
    ref = np.sort(np.concatenate([np.linalg.svd(w[:, :, i, j].numpy(), compute_uv=False) ** 2
                                  for i in range(3) for j in range(3)]))
    assert np.allclose(spec.evals, ref, rtol=1e-5)
    flat = htsr.esd(w, conv="reshape")
    assert (len(flat.evals), flat.N, flat.M, flat.rf) == (64, 288, 64, 1)
    with pytest.raises(ValueError, match="unknown conv"):
        htsr.esd(w, conv="slices")


@pytest.mark.numerics
def test_heavy_tailed_matrix_phase():
    rng = np.random.default_rng(20)
    w = (rng.pareto(1.0, (1000, 500)) + 1) * rng.choice([-1, 1], (1000, 500))
    assert htsr.analyze(w).iloc[0]["phase"] == "Heavy-Tailed"


def test_phase_labels_normalised():
    assert htsr.normalize_phase("Bulk Decay") == "Bulk-decay"
    assert htsr.normalize_phase("random-like") == "Random-like"
    assert htsr.normalize_phase("Bulk+Spikes") == "Bulk+Spikes"
    with pytest.raises(ValueError, match="unknown phase"):
        htsr.normalize_phase("Chaotic")


# --- analyze and the command line ----------------------------------------------------------
class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3)
        self.bn = nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, groups=16)  # 9 eigenvalues: skipped
        self.fc = nn.Linear(64, 32)
        self.emb = nn.Embedding(100, 16)


def test_analyze_module_and_state_dict_agree():
    torch.manual_seed(0)
    m = Tiny()
    a, b = htsr.analyze(m), htsr.analyze(m.state_dict())
    assert list(a["layer"]) == ["conv", "fc", "emb"] == list(b["layer"])
    assert a.attrs["skipped"] == ["dw"]
    pd.testing.assert_frame_equal(a, b)
    needed = {"layer", "shape", "Q", "alpha", "xmin", "D", "lambda_plus", "sigma_mp", "spikes",
              "soft_rank", "stable_rank", "phase"}
    assert needed <= set(a.columns)
    assert a.loc[a.layer == "conv", "n_evals"].item() == 3 * 9
    with pytest.raises(TypeError, match="cannot analyse"):
        htsr.analyze("model.pt")


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for k, t in tensors.items():
        raw = t.numpy().astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def test_cli_formats_and_errors(tmp_path, capsys):
    torch.manual_seed(1)
    m = Tiny()
    pt = tmp_path / "tiny.pt"
    torch.save({"state_dict": m.state_dict(), "epoch": 3}, pt)
    assert htsr.main([str(pt), "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(df["layer"]) == ["conv", "fc", "emb"]
    assert htsr.main([str(pt), "--format", "json", "--layers", "^fc$"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["layer"] for r in out["layers"]] == ["fc"] and out["units"] == "W^T W"
    assert htsr.main([str(pt)]) == 0
    assert "phase" in capsys.readouterr().out

    st = tmp_path / "tiny.safetensors"
    write_safetensors(st, {k: v for k, v in m.state_dict().items() if v.is_floating_point()})
    loaded = htsr.load_weights_file(str(st))
    assert torch.equal(loaded["fc.weight"], m.fc.weight.detach())

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a model")
    assert htsr.main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not a readable model file" in err and "--trust" not in err
    assert htsr.main([str(tmp_path / "missing.pt")]) == 2
    assert "no such file" in capsys.readouterr().err
    whole = tmp_path / "whole.pt"
    torch.save(m, whole)
    assert htsr.main([str(whole)]) == 2
    assert "--trust" in capsys.readouterr().err
    assert htsr.main([str(whole), "--trust", "--format", "csv"]) == 0
    empty = tmp_path / "empty.pt"
    torch.save({"bias": torch.zeros(3)}, empty)
    assert htsr.main([str(empty)]) == 2
    assert "no layer weights" in capsys.readouterr().err


def test_bf16_safetensors(tmp_path):
    t = torch.randn(4, 3)
    raw = t.to(torch.bfloat16).view(torch.int16).numpy().tobytes()
    h = json.dumps({"w": {"dtype": "BF16", "shape": [4, 3], "data_offsets": [0, len(raw)]}}).encode()
    p = tmp_path / "b.safetensors"
    p.write_bytes(struct.pack("<Q", len(h)) + h + raw)
    assert torch.equal(htsr.load_safetensors(p)["w"], t.to(torch.bfloat16).float())


# --- models, data pipeline, training ---------------------------------------------------------
@pytest.mark.numerics
def test_minialexnet_shapes_and_keras_init():
    m = htsr.MiniAlexNet(torch.Generator().manual_seed(0))
    assert m(torch.zeros(2, 3, 28, 28)).shape == (2, 10)
    assert tuple(m.fc1.weight.shape) == (384, 4096) and tuple(m.fc2.weight.shape) == (192, 384)
    std = math.sqrt(2 / (4096 + 384))
    w = m.fc1.weight.detach()
    assert w.abs().max() <= 2 * std + 1e-7
    assert w.std().item() == pytest.approx(std * 0.8796, rel=0.01)  # truncated at 2 std
    assert torch.all(m.fc1.bias == 0.1)
    spec = htsr.esd(w)  # spec §3.6: epoch-0 FC1 sigma ~ 1.19-1.20 in W^T W units
    assert htsr.fit_mp(spec).sigma == pytest.approx(1.19, abs=0.03)


def test_lenet5_shapes():
    m = htsr.LeNet5()
    assert m(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert tuple(m.fc1.weight.shape) == (500, 2450)


def test_cifar_crops_match_per_image_standardisation():
    x = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    x[0] = 7  # constant image: std floor 1/sqrt(n)
    got = htsr.cifar_crops(x)
    assert got.shape == (5, 3, 28, 28)
    for i in range(5):
        img = x[i, :, 2:-2, 2:-2].double() / 255
        ref = (img - img.mean()) / max(img.std(unbiased=False).item(), 1 / math.sqrt(img.numel()))
        assert torch.allclose(got[i].double(), ref, atol=1e-5)


def test_mse_softmax_loss_is_keras_mse():
    logits = torch.randn(6, 10, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 1, 2, 3, 4, 9])
    p = torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True)
    ref = ((p - torch.eye(10)[y]) ** 2).mean()
    assert htsr.mse_softmax_loss(logits, y).item() == pytest.approx(ref.item(), rel=1e-6)


def test_training_resumes_from_checkpoint(tmp_path):
    x = torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    y = torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(4))

    def fresh():
        m = htsr.LeNet5(torch.Generator().manual_seed(5))
        return m, torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)

    m1, o1 = fresh()
    h1 = htsr.train(m1, x, y, batch=16, epochs=3, opt=o1, loss_fn=nn.functional.cross_entropy,
                    lr_decay=0.95)
    ck = tmp_path / "run.ckpt.pt"
    m2, o2 = fresh()
    htsr.train(m2, x, y, batch=16, epochs=2, opt=o2, loss_fn=nn.functional.cross_entropy,
               lr_decay=0.95, checkpoint=ck)  # "interrupted" after 2 epochs
    m3, o3 = fresh()
    h3 = htsr.train(m3, x, y, batch=16, epochs=3, opt=o3, loss_fn=nn.functional.cross_entropy,
                    lr_decay=0.95, checkpoint=ck)
    assert torch.allclose(m1.fc1.weight, m3.fc1.weight, atol=1e-6)
    assert h3["loss"] == pytest.approx(h1["loss"], rel=1e-5)
    assert o3.param_groups[0]["lr"] == pytest.approx(0.05 * 0.95**3)


def test_summarise_minialexnet_trends_and_report_phases():
    rng = np.random.default_rng(21)

    def fake(batch, tail_mu, acc):
        w1 = (rng.pareto(tail_mu, (4096, 384)) + 1) * rng.choice([-1, 1], (4096, 384)) if tail_mu \
            else rng.standard_normal((4096, 384))
        w2 = rng.standard_normal((384, 192))
        f32 = lambda w: torch.tensor(w, dtype=torch.float32)  # noqa: E731 (weights are float32)
        return {"train_acc": acc + 0.1, "test_acc": acc, "epoch_s": 1.0,
                "evals_fc1": htsr.esd(f32(w1)).evals.tolist(),
                "evals_fc2": htsr.esd(f32(w2)).evals.tolist()}

    runs = {2: [fake(2, 1.5, 0.77)], 16: [fake(16, 2.5, 0.75)], 500: [fake(500, None, 0.70)]}
    out = htsr.summarise_minialexnet(runs)
    assert out["fc1"]["phase"]["2"] == "Heavy-Tailed" and out["fc1"]["phase"]["500"] == "Random-like"
    assert out["alpha_spearman"] == pytest.approx(1.0) and out["test_acc_spearman"] == pytest.approx(-1.0)
    assert out["best_batch"] == 2
    # the ledger judges the labels: the report's Heavy-Tailed at batch 2 and Random-like at 500
    led = {c.id: c for c in claims.load_ledger("htsr")}
    rows = claims.evaluate([led["mini-fc1-bs2-phase"], led["mini-fc1-bs500-phase"]],
                           {"htsr_minialexnet": {"values": out, "config": {"n_train": 50000,
                            "epochs": 100, "runs": 10}, "profile": "full"}})
    assert list(rows["verdict vs report"]) == ["reproduced", "reproduced"], rows["why"].tolist()


def test_pretrained_names_checked():
    with pytest.raises(ValueError, match="unknown pretrained"):
        htsr.pretrained_weights("resnet9000")


# --- the package split: same seeds, same numbers ------------------------------------------------
# Two checks per network. (1) The pre-package training loop (reprobook/htsr.py before c87b97d,
# kept below as a reference copy) and the package's loop on reprobook.train.fit, run side by
# side in this process from the same initial weights: same kernels in the same order, so the
# same weights, accuracies and spectra; only the epoch loss differs in its last bits (summed in
# float32 by the old loop, float64 now). (2) The numbers the pre-package code recorded on the
# machine of the split (probably AVX2 MKL kernels: the MiniAlexNet loss matches them to 5e-9):
# LeNet5, 1 epoch on 512 MNIST images; MiniAlexNet, batch 16, 2 epochs on 256 CIFAR-10 images
# (the sweep's seeded subset). These guard the models, initialisers and data pipeline (shared
# by both loops), so they are compared with tolerances from the spread of the same runs
# measured across CPU kernels: ATEN_CPU_CAPABILITY default / avx2 / avx512,
# MKL_ENABLE_INSTRUCTIONS=AVX2 with ONEDNN_MAX_CPU_ISA=AVX2, at 1 and 2 threads
# (8 configurations, measured 2026-12, torch 2.14.1).
BEFORE = {
    "lenet5": {"loss": [2.2135839462280273], "train_acc_running": [0.16015625],
               "train_acc": 0.302734375, "test_acc": 0.279, "fc1_evals_sum": 831.4233886448073,
               "fc1_evals_max": 3.4904438142063565},
    "minialexnet": {"loss": [0.09107066690921783, 0.07369256764650345],
                    "train_acc_running": [0.1796875, 0.41015625], "train_acc": 0.2265625,
                    "test_acc": 0.12109375, "fc1_evals_sum": 543.587947577894,
                    "fc1_evals_max": 2.395265727311137, "fc2_evals_sum": 197.9344994055069,
                    "fc2_evals_max": 2.988944150960476},
}


def _pre_package_train(model, x, y, *, batch, epochs, opt, loss_fn, lr_decay=1.0, seed=0):
    """Reference copy of the pre-package ``reprobook.htsr.train`` (c87b97d^, src/reprobook/htsr.py
    L709-751) without its checkpoint and progress options: its own loop, float32 loss sum."""
    hist = {"loss": [], "train_acc_running": []}
    model.train()
    for epoch in range(epochs):
        gen = torch.Generator().manual_seed(seed * 100003 + epoch)
        perm = torch.randperm(len(x), generator=gen)
        total = torch.zeros(())
        hits = torch.zeros((), dtype=torch.long)
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            xb, yb = x[idx], y[idx]
            out = model(xb)
            loss = loss_fn(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)
            hits += (out.argmax(1) == yb).sum()
        for group in opt.param_groups:
            group["lr"] *= lr_decay
        hist["loss"].append(total.item() / len(x))
        hist["train_acc_running"].append(hits.item() / len(x))
    return hist


def _assert_same_run(new_hist, old_hist, new_model, old_model):
    """One process, same kernels in the same order: identical weights. The loss sums differ
    only by the old loop's float32 accumulation (<= batches * 2^-24 relative, ~1e-6)."""
    for (name, a), b in zip(new_model.state_dict().items(), old_model.state_dict().values()):
        assert torch.equal(a, b), name
    assert new_hist["loss"] == pytest.approx(old_hist["loss"], rel=1e-5)
    assert new_hist["train_acc_running"] == pytest.approx(old_hist["train_acc_running"], rel=1e-12)


def _data_or_skip(loader):
    from reprobook import data
    try:
        return loader(data)
    except data.DataError as err:
        pytest.skip(f"data not available: {err}")


@pytest.mark.numerics
def test_lenet5_training_reproduces_pre_package_numbers():
    mn = _data_or_skip(lambda d: d.load_mnist(download=False))
    x, y = mn["x_train"][:512], mn["y_train"][:512]
    xt, yt = mn["x_test"][:1000], mn["y_test"][:1000]
    runs = {}
    for which, loop in (("new", htsr.train), ("old", _pre_package_train)):
        model = htsr.LeNet5(torch.Generator().manual_seed(0))
        opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
        hist = loop(model, x, y, batch=128, epochs=1, opt=opt, loss_fn=nn.functional.cross_entropy,
                    seed=0)
        runs[which] = (model, hist)
    (model, hist), (old_model, old_hist) = runs["new"], runs["old"]
    _assert_same_run(hist, old_hist, model, old_model)

    # the recorded numbers; measured spread over the 8 configurations: loss 2.7e-8 relative,
    # accuracies identical, fc1 eigenvalue sum 2.0e-10 and max 8.8e-10 relative. The
    # tolerances are >100x that; one image of slack on the accuracies (an argmax near-tie).
    ref = BEFORE["lenet5"]
    ev = htsr.esd(model.fc1.weight).evals
    assert hist["loss"] == pytest.approx(ref["loss"], rel=1e-5)
    assert hist["train_acc_running"] == pytest.approx(ref["train_acc_running"], abs=1 / 512)
    assert htsr.accuracy(model, x, y) == pytest.approx(ref["train_acc"], abs=1 / 512)
    assert htsr.accuracy(model, xt, yt) == pytest.approx(ref["test_acc"], abs=1 / 1000)
    assert ev.sum() == pytest.approx(ref["fc1_evals_sum"], rel=1e-5)
    assert ev.max() == pytest.approx(ref["fc1_evals_max"], rel=1e-5)


@pytest.mark.numerics
def test_minialexnet_run_reproduces_pre_package_numbers():
    cf = _data_or_skip(lambda d: d.load_cifar10(download=False))
    x, y, xt, yt = htsr.minialexnet_data(cf, 256, 256, 0)
    r = htsr.train_minialexnet(16, 0, 2, x, y, xt, yt, 0)
    assert r["steps"] == 2 * 16

    # (1) the pre-package train_minialexnet (c87b97d^ L791-806) beside it: same seed and data
    old = htsr.MiniAlexNet(torch.Generator().manual_seed(0 * 1000 + 0))
    old_evals0 = htsr.esd(old.fc1.weight).evals
    opt = torch.optim.SGD(old.parameters(), lr=0.01, momentum=0.9)
    old_hist = _pre_package_train(old, x, y, batch=16, epochs=2, opt=opt,
                                  loss_fn=htsr.mse_softmax_loss, lr_decay=0.95, seed=0 * 1000 + 0)
    assert r["hist"]["loss"] == pytest.approx(old_hist["loss"], rel=1e-5)  # float32 vs float64 sum
    assert r["hist"]["train_acc_running"] == pytest.approx(old_hist["train_acc_running"], rel=1e-12)
    assert (r["train_acc"], r["test_acc"]) == (htsr.accuracy(old, x, y), htsr.accuracy(old, xt, yt))
    for layer in ("fc1", "fc2"):  # the same weights: the same eigenvalues, bit for bit
        want = htsr.esd(getattr(old, layer).weight).evals
        np.testing.assert_array_equal(r[f"evals_{layer}"], want)
    np.testing.assert_array_equal(r["evals0_fc1"], old_evals0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 * 0.95 ** 2)

    # (2) the recorded numbers. Measured spread over the 8 configurations: epoch loss 1.2e-3
    # relative (32 SGD steps amplify rounding), accuracies 4 of 256 training and 2 of 256 test
    # images (the network is near chance: argmax near-ties), running accuracy identical, FC
    # eigenvalue sums 7.8e-7 and maxima 1.2e-5 relative. Tolerances: about 8x the spread.
    ref = BEFORE["minialexnet"]
    assert r["hist"]["loss"] == pytest.approx(ref["loss"], rel=1e-2)
    assert r["hist"]["train_acc_running"] == pytest.approx(ref["train_acc_running"], abs=2 / 256)
    assert r["train_acc"] == pytest.approx(ref["train_acc"], abs=8 / 256)
    assert r["test_acc"] == pytest.approx(ref["test_acc"], abs=8 / 256)
    for layer in ("fc1", "fc2"):
        ev = np.asarray(r[f"evals_{layer}"])
        assert ev.sum() == pytest.approx(ref[f"{layer}_evals_sum"], rel=1e-5)
        assert ev.max() == pytest.approx(ref[f"{layer}_evals_max"], rel=1e-4)
    # the epoch-0 spectrum is the initialiser's (spec §3.6: FC1 sigma ~1.19-1.20)
    spec0 = htsr.Spectrum(np.asarray(r["evals0_fc1"]), N=4096, M=384)
    assert htsr.fit_mp(spec0).sigma == pytest.approx(1.19, abs=0.03)


# --- new kernels: KS distance, best-fit distribution, fixed-steps data, null model -------------
def test_ks_distance_matches_scipy():
    from scipy.stats import ks_2samp
    rng = np.random.default_rng(30)
    a, b = rng.normal(0, 1, 400), rng.normal(0.3, 1.2, 250)
    assert htsr.ks_distance(a, b) == pytest.approx(ks_2samp(a, b).statistic, abs=1e-12)
    assert htsr.ks_distance(a, a) == 0
    assert htsr.ks_distance([1, 2], [3, 4]) == 1
    with pytest.raises(ValueError, match="non-empty"):
        htsr.ks_distance([], [1.0])


def test_best_distribution_tells_power_law_from_exponential():
    x = pareto(2.5, 3000, seed=31)
    assert htsr.best_distribution(x, xmin=1.0) == "power_law"
    e = 1 + np.random.default_rng(32).exponential(1.0, 3000)
    assert htsr.best_distribution(e, xmin=1.0) != "power_law"


@pytest.mark.numerics
def test_null_model_alexnet_fc1_aspect_ratio_is_random_like():
    """The chapter's null model at a quarter of AlexNet FC1's size (same Q = 2.25): Random-like,
    no spikes, lambda_+ at the MP edge N (1 + Q^-1/2)^2 (spec oracle 1)."""
    w = torch.randn(1024, 2304, generator=torch.Generator().manual_seed(33))
    row = htsr.analyze(w).iloc[0]
    _, hi = htsr.mp_edges(2304 / 1024, 1.0)
    assert row["phase"] == "Random-like" and row["spikes"] == 0
    assert row["lambda_plus"] / (2304 * hi) == pytest.approx(1, abs=0.03)
    assert row["soft_rank"] == pytest.approx(1, abs=0.05)


def test_fixed_steps_data_gives_exactly_the_steps():
    x = torch.arange(100).float()[:, None]
    y = torch.arange(100)
    for steps, batch in ((7, 32), (3, 4), (10, 100)):
        xs, ys = htsr.fixed_steps_data(x, y, steps, batch, seed=1)
        assert len(xs) == steps * batch and torch.equal(xs[:, 0].long(), ys)
        counts = torch.bincount(ys, minlength=100)
        assert counts.max() - counts.min() <= 1  # successive permutations: every image equally
        m = nn.Linear(1, 1)
        h = htsr.train(m, xs, ys.float()[:, None], batch=batch, epochs=1,
                       opt=torch.optim.SGD(m.parameters(), lr=0.0), loss_fn=nn.functional.mse_loss)
        assert h["epochs_run"] == 1


def test_spikes_pct_is_the_authors_share_of_the_bulk():
    assert htsr.spikes_pct(25, 500) == pytest.approx(100 * 25 / 475)  # 5.26% (LeNet5, spec §2.3)
    assert htsr.spikes_pct(50, 3840) == pytest.approx(1.32, abs=0.005)  # FC1 bs 150 (spec §2.1)
    assert htsr.spikes_pct(0, 10) == 0


# --- the records hold every key the ledger reads --------------------------------------------------
def _fake_runs(batches, rng):
    f32 = lambda w: torch.tensor(w, dtype=torch.float32)  # noqa: E731

    def run(b, mu):
        w1 = (rng.pareto(mu, (4096, 384)) + 1) * rng.choice([-1, 1], (4096, 384))
        return {"train_acc": 0.9, "test_acc": 0.7 - 1e-4 * b, "epoch_s": 1.0, "steps": 1000 // b,
                "evals_fc1": htsr.esd(f32(w1)).evals.tolist(),
                "evals_fc2": htsr.esd(f32(rng.standard_normal((384, 192)))).evals.tolist(),
                "evals0_fc1": htsr.esd(f32(rng.standard_normal((4096, 384)))).evals.tolist(),
                "evals0_fc2": htsr.esd(f32(rng.standard_normal((384, 192)))).evals.tolist()}
    return {b: [run(b, 1.0 + b / 250)] for b in batches}


def test_sweep_record_holds_every_key_the_ledger_reads():
    rng = np.random.default_rng(34)
    batches = [2, 4, 8, 16, 32, 50, 100, 150, 250, 500, 1000]
    values = htsr.summarise_minialexnet(_fake_runs(batches, rng))
    values["min_test_acc"] = 0.5
    fixed = {"test_acc": {"8": 0.5, "32": 0.4}, "distinct_steps": 1, "min_test_acc": 0.4}
    lenet = {"fc1": {k: 1.0 for k in ("Q", "sigma_mp", "lambda_plus", "lambda_max", "spikes",
                                      "spikes_pct", "alpha", "mass_above_edge")},
             "train_acc": 1.0, "test_acc": 0.99, "epochs": 20}
    records = {"htsr_minialexnet": values, "htsr_fixed_steps": fixed, "htsr_lenet5": lenet}
    for c in claims.load_ledger("htsr"):
        exp, key = c.ours["experiment"], c.ours["key"]
        if exp in records:
            assert claims.lookup(records[exp], key) is not None, (c.id, key)
        for cond in [*c.needs, *c.sanity]:
            for part in (cond["any"] if isinstance(cond, dict) else [cond]):
                k = re.split(r"\s*[<>=!]", part)[0]
                if exp == "htsr_minialexnet" and k.startswith("values."):
                    assert claims.lookup(values, k[len("values."):]) is not None, (c.id, k)
    assert values["fc1"]["sigma_init"] == pytest.approx(math.sqrt(4096), rel=0.05)  # N(0,1)
    assert values["steps"] == {str(b): 1000 // b for b in batches} and values["distinct_steps"] == 11
    assert values["fc1"]["ks_init"]["2"] > 0.5  # Pareto vs Gaussian spectra
    assert values["fc1"]["stable_rank_ratio"] == pytest.approx(
        values["fc1"]["stable_rank"]["1000"] / values["fc1"]["stable_rank"]["2"])


def test_alexnet_record_holds_every_key_the_ledger_reads():
    from reprobook.htsr.pretrained import _alexnet_values
    g = torch.Generator().manual_seed(35)
    state = {f"{k}.weight": torch.randn(*shape, generator=g) for k, shape in
             (("classifier.1", (160, 360)), ("classifier.4", (160, 160)), ("classifier.6", (40, 160)))}
    values = _alexnet_values(state)
    for c in claims.load_ledger("htsr"):
        if c.ours["experiment"] == "htsr_alexnet":
            v = claims.lookup(values, c.ours["key"])
            assert v is not None, c.id
    assert values["fc1"]["Q"] == 2.25
    assert set(values["alpha"]) == {"fc1", "fc2", "fc3"} and set(values["mass_above_edge"]) == set(values["alpha"])


# --- the ledger against the report's tables (seed 004) ---------------------------------------------
# The three tables of the report, copied verbatim (report §3.2 and §3.3); checked against the
# seed file itself when it is present.
SEED_TABLES = """\
FC1	Heavy-Tailed	2.288	0.033
FC2	Heavy-Tailed	2.245	0.015
FC3	Heavy-Tailed	3.020	0.050
2	Heavy-Tailed	2.438	0.074
4	Heavy-Tailed	2.803	0.147
8	Bulk Decay	3.565	0.315
16	Bulk Decay	4.944	0.479
32	Bulk+Spikes	6.755	0.642
100	Bleeding-Out	13.92	0.880
250	Random-like	16.628	0.978
500	Random-like	17.317	1.002
2	Heavy-Tailed	2.631	0.204
4	Heavy-Tailed	2.801	0.405
8	Bulk-Decay	3.355	0.540
16	Bulk-Decay	3.807	0.615
32	Bulk Decay	4.689	0.701
100	Bulk+Spikes	4.664	0.942
250	Bleeding-Out	11.951	0.977
500	Bleeding-Out	11.067	1.029
"""
SEED = Path(__file__).resolve().parents[2] / "shared" / "seeds"


def table_numbers_missing(ledger, tables: str = SEED_TABLES) -> list[str]:
    """Numbers of the report's tables that no claim carries as its report value. The first
    column (layer name or batch size) is a row label, not a claim: the allow-list."""
    published = set()
    for c in ledger:
        for v in (c.report, c.paper):
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                published.add(round(float(v), 6))
    missing = []
    for line in tables.splitlines():
        label, phase, *nums = line.split("\t")
        if not any(c.report == phase for c in ledger):
            missing.append(f"{label}: phase {phase}")
        missing += [f"{label}: {n}" for n in nums if round(float(n), 6) not in published]
    return missing


def test_seed_tables_are_copied_verbatim():
    files = sorted(SEED.glob("004_*.txt"))
    if not files:
        pytest.skip("seed 004 not present; the embedded copy of its tables is used")
    rows = [l for l in files[0].read_text().splitlines() if l.count("\t") == 3
            and not l.startswith(("Layer", "Batch"))]
    assert "\n".join(rows) + "\n" == SEED_TABLES


def test_every_number_of_the_report_tables_is_a_claim():
    ledger = claims.load_ledger("htsr")
    assert table_numbers_missing(ledger) == []
    # the test can fail: drop one claim and its number is reported missing
    without = [c for c in ledger if c.id != "mini-fc2-bs250-alpha"]
    assert table_numbers_missing(without) == ["250: 11.951"]


def test_ledger_is_complete_and_sources_exist():
    ledger = claims.load_ledger("htsr")
    assert len(ledger) >= 110
    for c in ledger:
        for src in (c.paper_source, c.report_source):
            # the paper body was not readable: no paper section locators (issue 8)
            assert src is None or not re.search(r"paper §\d", src), (c.id, src)
            assert src is None or not re.search(r"report §(?![1-4])", src), (c.id, src)
        key = c.ours["key"]
        if c.ours["experiment"] == "htsr_minialexnet" and key.startswith("fc") and any(
                key.endswith(f".{b}") for b in (2, 4, 8)) and c.check.get("kind") == "close":
            assert c.sanity, c.id  # spectral comparisons need the network to have trained
    ids = {c.id for c in ledger}
    for needed in ("alexnet-fc1-ks-distance", "alexnet-alpha-order", "alexnet-mp-fails",
                   "lenet5-test-acc", "lenet5-fc1-sigma", "mini-fc1-epoch0-sigma",
                   "smaller-batch-better-train", "fixed-steps-smaller-batch-better-test"):
        assert needed in ids


def _record(values, config):
    return {"experiment": "x", "values": values, "config": config, "profile": "small",
            "provenance": {}}


def test_untrained_sweep_is_inconclusive_not_judged():
    """At small every FC spectrum is still at initialisation: a claim the untrained network
    would 'reproduce' or 'not reproduce' must read inconclusive."""
    ledger = {c.id: c for c in claims.load_ledger("htsr")}
    at_init = {"fc1": {"alpha": {"2": 15.0, "500": 15.2}, "soft_rank": {"2": 1.0, "500": 1.0},
                       "spikes": {"2": 0, "500": 0}, "ks_init": {"2": 0.01, "500": 0.01},
                       "stable_rank": {"2": 220.0, "100": 221, "1000": 227.0}},
               "test_acc": {"2": 0.25, "500": 0.1, "1000": 0.1}}
    rec = _record(at_init, {"n_train": 1000, "epochs": 4, "runs": 1})
    for cid in ("mini-fc1-bs500-alpha", "mini-fc1-bs2-softrank", "smaller-batch-lower-stable-rank",
                "mini-fc1-stable-rank-bs2"):
        row = claims.evaluate_claim(ledger[cid], {"htsr_minialexnet": rec})
        assert row["verdict"] == "inconclusive", (cid, row["why"])
    # at full scale a trained network at batch 500 with alpha 15 reproduces "no power law"
    full = _record(at_init | {"test_acc": {"500": 0.7}},
                   {"n_train": 50000, "epochs": 100, "runs": 10})
    row = claims.evaluate_claim(ledger["mini-fc1-bs500-alpha"], {"htsr_minialexnet": full})
    assert row["verdict"] == "reproduced"
    # a 3% stable-rank change is not the paper's 4.6x, even when trained and monotone
    trained = _record({"fc1": {"stable_rank": {"2": 220.0, "100": 222.0, "1000": 227.0},
                               "soft_rank": {"2": 0.5}, "spikes": {"2": 3}, "ks_init": {"2": 0.3}},
                       "test_acc": {"1000": 0.6}}, {"runs": 10})
    row = claims.evaluate_claim(ledger["smaller-batch-lower-stable-rank"], {"htsr_minialexnet": trained})
    assert row["verdict"] == "not reproduced"
