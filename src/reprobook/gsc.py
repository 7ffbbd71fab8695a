"""Philipp, Song & Carbonell (2018), "Gradients explode - Deep networks are shallow".

Kernels for the gradient scale coefficient (GSC), the collapsing-domain metrics and
effective depth. Layers are numbered in reverse (layer 1 feeds the error layer f_0,
layer L reads the input), as in the paper; arrays returned here are indexed by the
linear layer counted from the input (index 0 = layer L) unless named ``*_rev``.
Spec: shared/specs/gsc.md (section numbers below refer to it).
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ARCHS = ("relu", "layer-relu", "batch-relu", "tanh", "layer-tanh", "batch-tanh", "selu")
EXPLODING = ("batch-relu", "layer-tanh", "batch-tanh", "selu")  # paper Fig. 1A

PROFILES = {
    "small": {"depth": 50, "width": 100, "n_datasets": 10, "n_points": 1000, "bn_batch": 100,
              "fit_skip": (2, 3),
              "cifar_archs": EXPLODING, "cifar_depth": 51, "cifar_train": 5000,
              "cifar_lrs": (1e-3, 1e-2, 1e-1), "cifar_search_epochs": 3, "cifar_epochs": 15,
              "cifar_patience": 3, "cifar_gsc_points": 500, "cifar_batch": 128,
              "ablation_datasets": 4},
    "full": {"depth": 50, "width": 100, "n_datasets": 100, "n_points": 10000, "bn_batch": 100,
             "fit_skip": (2, 3),
             "cifar_archs": EXPLODING, "cifar_depth": 51, "cifar_train": 50000,
             "cifar_lrs": tuple(float(f"{1e-5 * 3 ** i:.0e}") for i in range(11)),
             "cifar_search_epochs": 70, "cifar_epochs": 500, "cifar_patience": 5,
             "cifar_gsc_points": 10000, "cifar_batch": 128, "ablation_datasets": 20},
}


# --------------------------------------------------------------------------- layers
class Norm(nn.Module):
    """Layer or batch normalisation without learnable parameters (paper: none are used).

    ``layer``: over the features of each point. ``batch``: over dim -2, the points of one
    batch; an input shaped (G, B, d) holds G independent batches, each normalised on its own.
    """

    def __init__(self, kind: str, eps: float = 1e-5):
        super().__init__()
        self.kind, self.eps = kind, eps

    def forward(self, x):
        dim = -1 if self.kind == "layer" else -2
        mu = x.mean(dim, keepdim=True)
        var = x.var(dim, unbiased=False, keepdim=True)
        return (x - mu) * torch.rsqrt(var + self.eps)

    def extra_repr(self):
        return f"{self.kind}, eps={self.eps}"


ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh, "selu": nn.SELU}


class MLP(nn.Module):
    """``depth`` linear layers; every one but the last is followed by [norm ->] nonlinearity.

    ``norm_position='pre'`` is Linear -> Norm -> Act (default, spec §3.4); ``'post'`` is
    Linear -> Act -> Norm.
    """

    def __init__(self, arch: str, depth: int, width: int, d_in: int, d_out: int,
                 norm_position: str = "pre", eps: float = 1e-5):
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
        self.arch = arch
        kind, _, act = arch.rpartition("-")
        self.norm_kind = kind or None
        self.norm_position = norm_position
        dims = [d_in] + [width] * (depth - 1) + [d_out]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.norm = Norm(kind, eps) if kind else nn.Identity()
        self.act = ACTS[act]()

    @property
    def batch_norm(self) -> bool:
        return self.norm_kind == "batch"

    def forward(self, x, record: bool = False):
        """Return the output; with ``record`` also (linear outputs, nonlinearity inputs)."""
        lin_out, pre = [], []
        last = len(self.linears) - 1
        for i, lin in enumerate(self.linears):
            x = lin(x)
            lin_out.append(x)
            if i == last:
                break
            if self.norm_position == "pre":
                x = self.norm(x)
                pre.append(x)
                x = self.act(x)
            else:
                pre.append(x)
                x = self.norm(self.act(x))
        return (x, lin_out, pre) if record else x


def make_mlp(arch: str, depth: int = 50, width: int = 100, d_in: int | None = None,
             d_out: int | None = None, init: str = "paper", norm_position: str = "pre",
             eps: float = 1e-5, generator: torch.Generator | None = None) -> MLP:
    """One of the seven MLPs of paper Fig. 1 (report §3.1), biases zero.

    ``init='paper'``: W ~ N(0, 2/d_in) for the ReLU family, N(0, 1/d_in) for tanh and SeLU
    (report §3.1). ``init='orthogonal'``: orthogonal rows scaled by the same gain (App. H).
    """
    model = MLP(arch, depth, width, d_in or width, d_out or width, norm_position, eps)
    gain2 = 2.0 if arch.endswith("relu") else 1.0
    with torch.no_grad():
        for lin in model.linears:
            fan_in = lin.weight.shape[1]
            if init == "paper":
                lin.weight.normal_(0.0, math.sqrt(gain2 / fan_in), generator=generator)
            elif init == "orthogonal":
                w = torch.empty_like(lin.weight).normal_(generator=generator)
                q, r = torch.linalg.qr(w if w.shape[0] >= w.shape[1] else w.T)
                q = q * torch.sign(torch.diagonal(r))
                q = q if w.shape[0] >= w.shape[1] else q.T
                lin.weight.copy_(q * math.sqrt(gain2 * max(1.0, w.shape[0] / w.shape[1])))
            else:
                raise ValueError(f"unknown init {init!r}; use 'paper' or 'orthogonal'")
            lin.bias.zero_()
    return model


# --------------------------------------------------------------------------- pointwise GSC
def qm_norm(a: torch.Tensor) -> torch.Tensor:
    """Quadratic-mean norm (spec §1.2): ||A||_F / sqrt(n), n = number of columns (inputs)."""
    return torch.linalg.matrix_norm(a) / math.sqrt(a.shape[-1])


def gsc_pointwise(jac: torch.Tensor, f_k: torch.Tensor, f_l: torch.Tensor) -> torch.Tensor:
    """GSC(k, l) = ||J_l^k||_qm ||f_k||_2 / ||f_l||_2 at one point (spec §1.3)."""
    return qm_norm(jac) * f_k.norm() / f_l.norm()


def quadratic_mean(x: torch.Tensor, dim=0) -> torch.Tensor:
    """The quadratic expectation Q[X] = (E X^2)^(1/2) (spec §1.4)."""
    return x.pow(2).mean(dim).sqrt()


# --------------------------------------------------------------------------- GSC of a model
@contextmanager
def _frozen(model: nn.Module):
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)


def dot_error(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The dot-product error layer f_0 = y^T f_1, summed over the points of each group."""
    return (out * y).sum(dim=(-2, -1))


def kl_error(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """KL(one-hot || softmax) = -log p_y, summed over the points of each group."""
    logp = F.log_softmax(out, dim=-1)
    return -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1).sum(-1)


def layer_stats(model: MLP, x: torch.Tensor, y: torch.Tensor, error=dot_error,
                group: int | None = None) -> dict:
    """One forward and one backward pass over a batch of points; per-group raw quantities.

    Points are split into groups: a batch-norm model sees groups of ``group`` points
    (default 100), each group being *one* input to the network (spec §1.4); any other model
    sees every point as its own group. For each group g and linear layer k (from the input)
    returns ``qm[g, k] = ||d f_0 / d f_k||_qm``, ``fk[g, k] = ||f_k||``, ``f0[g] = |f_0|``,
    plus per-neuron pre-activation moments and sign counts over all points.
    """
    n, d_in = x.shape
    b = (group or 100) if model.batch_norm else 1
    if n % b:
        raise ValueError(f"{n} points do not split into groups of {b}")
    xg, yg = x.reshape(n // b, b, d_in), y.reshape(n // b, b, *y.shape[1:])
    with _frozen(model), torch.enable_grad():
        xg = xg.detach().requires_grad_(True)
        out, lin, pre = model(xg, record=True)
        f0 = error(out, yg)
        grads = torch.autograd.grad(f0.sum(), lin)
    with torch.no_grad():
        qm = torch.stack([g.flatten(1).norm(dim=1) / math.sqrt(g[0].numel()) for g in grads], 1)
        fk = torch.stack([f.flatten(1).norm(dim=1) for f in lin], 1)
        z = torch.stack(pre).flatten(1, 2)  # (layers, n, width)
        moments = (z.sum(1), z.pow(2).sum(1), (z > 0).sum(1), (z < 0).sum(1))
    return {"qm": qm.double(), "fk": fk.double(), "f0": f0.detach().abs().double(),
            "z_sum": moments[0].double(), "z_sq": moments[1].double(),
            "pos": moments[2].double(), "neg": moments[3].double(), "n": n}


def aggregate(stats: dict, variant: str = "A", std_agg: str = "mean") -> dict:
    """Dataset-level curves from :func:`layer_stats` (spec §1.4-1.5).

    ``variant='A'``: Q[||J||_qm] Q[||f_k||] / Q[|f_0|]; ``'B'``: Q[||J||_qm ||f_k||] / Q[|f_0|].
    Pre-activation std is the std over points of each neuron, averaged over neurons
    (``std_agg='mean'``) or their quadratic mean (``'qm'``); sign diversity is
    min(P, N) / (P + N) per neuron over points, averaged over neurons.
    """
    qm, fk, f0 = stats["qm"], stats["fk"], stats["f0"]
    if variant == "A":
        gsc = quadratic_mean(qm) * quadratic_mean(fk) / quadratic_mean(f0)
    elif variant == "B":
        gsc = quadratic_mean(qm * fk) / quadratic_mean(f0)
    else:
        raise ValueError("variant must be 'A' or 'B'")
    n = stats["n"]
    mean = stats["z_sum"] / n
    var = (stats["z_sq"] / n - mean.pow(2)).clamp_min(0)
    std = var.sqrt().mean(1) if std_agg == "mean" else var.mean(1).sqrt()
    pos, neg = stats["pos"], stats["neg"]
    sd = (torch.minimum(pos, neg) / (pos + neg).clamp_min(1)).mean(1)
    return {"gsc": gsc.numpy(), "preact_std": std.numpy(), "sign_diversity": sd.numpy()}


def _act_forward(name: str, p: torch.Tensor) -> torch.Tensor:
    return torch.relu(p) if name == "relu" else torch.tanh(p) if name == "tanh" else F.selu(p)


def _act_backward(name: str, g: torch.Tensor, p: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """d act / d p applied to g, from the saved input p and output h."""
    if name == "relu":
        return g.mul_(p > 0)
    if name == "tanh":
        return g.mul_(1 - h * h)
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    return g.mul_(torch.where(p > 0, scale, h + scale * alpha))


def _norm_backward(g: torch.Tensor, p: torch.Tensor, rstd: torch.Tensor, dim: int) -> torch.Tensor:
    """Backward of (x - mean) * rstd without affine parameters: rstd (g - E g - p E[g p])."""
    return (g - g.mean(dim, keepdim=True) - p * (g * p).mean(dim, keepdim=True)).mul_(rstd)


def fast_layer_stats(model: MLP, x: torch.Tensor, y: torch.Tensor, group: int | None = None) -> dict:
    """:func:`layer_stats` for the dot-product error, with a hand-written backward pass.

    Same quantities, no autograd graph: one forward and one backward matrix product per
    layer plus a few fused elementwise passes, on a chunk small enough to stay in cache.
    Tested against the autograd version (tests/test_gsc.py).
    """
    act = model.arch.rpartition("-")[2]
    if model.norm_position != "pre" or type(model.act) is not ACTS[act]:
        return layer_stats(model, x, y, dot_error, group)  # a modified model: use autograd
    n, d_in = x.shape
    b = (group or 100) if model.batch_norm else 1
    if n % b:
        raise ValueError(f"{n} points do not split into groups of {b}")
    dim = -1 if model.norm_kind == "layer" else -2
    eps = model.norm.eps if model.norm_kind else 0.0
    weights = [lin.weight.detach() for lin in model.linears]
    biases = [lin.bias.detach() for lin in model.linears]
    g_count = n // b
    with torch.no_grad():
        h = x.reshape(g_count, b, d_in)
        saved, fk, mom = [], [], []
        last = len(weights) - 1
        for i, (w, bias) in enumerate(zip(weights, biases)):
            z = torch.addmm(bias, h.reshape(n, -1), w.t()).view(g_count, b, -1)
            fk.append(torch.linalg.vector_norm(z, dim=(1, 2)))
            if i == last:
                break
            if model.norm_kind:
                var, mu = torch.var_mean(z, dim, correction=0, keepdim=True)
                rstd = (var + eps).rsqrt_()
                p = (z - mu).mul_(rstd)
            else:
                p, rstd = z, None
            pos = (p > 0).sum((0, 1))
            neg = (p < 0).sum((0, 1))
            mom.append((p.sum((0, 1)), (p * p).sum((0, 1)), pos, neg))
            h = _act_forward(act, p)
            saved.append((p, h, rstd))
        f0 = (z * y.reshape(g_count, b, -1)).sum((1, 2))
        g = y.reshape(g_count, b, -1)
        qm = [torch.linalg.vector_norm(g, dim=(1, 2)) / math.sqrt(g[0].numel())]
        for i in range(last - 1, -1, -1):
            p, h, rstd = saved[i]
            g = _act_backward(act, g.reshape(n, -1).mm(weights[i + 1]).view_as(p), p, h)
            if rstd is not None:
                g = _norm_backward(g, p, rstd, dim)
            qm.append(torch.linalg.vector_norm(g, dim=(1, 2)) / math.sqrt(g[0].numel()))
    sums = [torch.stack(t) for t in zip(*mom)]
    return {"qm": torch.stack(qm[::-1], 1).double(), "fk": torch.stack(fk, 1).double(),
            "f0": f0.abs().double(), "z_sum": sums[0].double(), "z_sq": sums[1].double(),
            "pos": sums[2].double(), "neg": sums[3].double(), "n": n}


def gsc_curve(model: MLP, x: torch.Tensor, y: torch.Tensor, error=dot_error,
              group: int | None = None, variant: str = "A", chunk: int = 1000) -> dict:
    """GSC(k, 0) at every linear layer, pre-activation std and sign diversity per layer.

    Processes ``x`` in chunks (multiples of the BN group) and aggregates exactly:
    quadratic means and moments are sums over points. The dot-product error takes the
    hand-written backward (:func:`fast_layer_stats`); any other error layer uses autograd.
    """
    b = (group or 100) if model.batch_norm else 1
    chunk = max(b, chunk - chunk % b)
    if error is dot_error:
        parts = [fast_layer_stats(model, xs, ys, group)
                 for xs, ys in zip(x.split(chunk), y.split(chunk))]
    else:
        parts = [layer_stats(model, xs, ys, error, group)
                 for xs, ys in zip(x.split(chunk), y.split(chunk))]
    stats = {k: torch.cat([p[k] for p in parts]) for k in ("qm", "fk", "f0")}
    for k in ("z_sum", "z_sq", "pos", "neg"):
        stats[k] = sum(p[k] for p in parts)
    stats["n"] = sum(p["n"] for p in parts)
    return aggregate(stats, variant)


def growth_rate(gsc_from_input: np.ndarray, skip: tuple[int, int] = (2, 3)) -> float:
    """Per-layer growth rate r: exp of the slope of log GSC against distance from the error.

    ``gsc_from_input[0]`` is layer L. The fit drops ``skip[0]`` layers at the output end and
    ``skip[1]`` at the input end (spec's simulation fits layers 2..47 of 50).
    """
    g = np.asarray(gsc_from_input, dtype=float)[::-1]  # g[0] = layer 1
    k = np.arange(1, len(g) + 1)
    lo, hi = skip[0] - 1, len(g) - skip[1]
    slope = np.polyfit(k[lo:hi], np.log(g[lo:hi]), 1)[0]
    return float(np.exp(slope))


# --------------------------------------------------------------------------- E1 experiment
def gaussian_data(n: int, d: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs with iid N(0, 1/d) entries rescaled to length sqrt(d); labels N(0, 1/d) (report §3.1)."""
    x = torch.randn(n, d, generator=generator) / math.sqrt(d)
    x = x * (math.sqrt(d) / x.norm(dim=1, keepdim=True))
    y = torch.randn(n, d, generator=generator) / math.sqrt(d)
    return x, y


def noise_replicate(arch: str, seed: int, depth: int, width: int, n_points: int,
                    bn_batch: int = 100, variant: str = "A", init: str = "paper",
                    norm_position: str = "pre", device="cpu", skip=(2, 3)) -> dict:
    """One independent replicate of paper Fig. 1: a fresh network and a fresh data set."""
    gen = torch.Generator().manual_seed(seed)
    model = make_mlp(arch, depth, width, init=init, norm_position=norm_position,
                     generator=gen).to(device)
    x, y = gaussian_data(n_points, width, gen)
    curves = gsc_curve(model, x.to(device), y.to(device), group=bn_batch, variant=variant)
    curves["rate"] = growth_rate(curves["gsc"], skip)
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in curves.items()}


def matmul_flops(n_points: int, depth: int, width: int) -> float:
    """Unavoidable products of one replicate: forward plus input-gradient backward."""
    return 2 * 2.0 * n_points * depth * width * width


def time_matmul(n: int = 10000, d: int = 100, repeat: int = 50, device="cpu") -> float:
    """Measured FLOP/s of the plain (n x d) @ (d x d) product that the experiment is made of."""
    a, w = torch.randn(n, d, device=device), torch.randn(d, d, device=device)
    for _ in range(5):
        a @ w
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeat):
        a @ w
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    return 2.0 * n * d * d * repeat / (time.perf_counter() - t0)


# --------------------------------------------------------------------------- effective depth
def elementary_symmetric(rho, max_order: int | None = None) -> np.ndarray:
    """e_0..e_L of rho_1..rho_L by the DP E_j <- E_j + rho E_{j-1} (spec §1.6 step 2)."""
    rho = np.asarray(rho, dtype=float)
    m = len(rho) if max_order is None else max_order
    e = np.zeros(m + 1)
    e[0] = 1.0
    for r in rho:
        e[1:] = e[1:] + r * e[:-1]
    return e


def effective_depth(rho, tau: float = 1e-6) -> int:
    """Largest lambda whose lambda-residual paths contribute e_lambda(rho) >= tau (spec §1.6)."""
    e = elementary_symmetric(rho)
    ok = np.nonzero(e[1:] >= tau)[0]
    return int(ok[-1] + 1) if len(ok) else 0


def operator_norm(w: torch.Tensor) -> float:
    """Largest singular value; NaN for a diverged (non-finite) matrix."""
    if not torch.isfinite(w).all():
        return float("nan")
    return float(torch.linalg.matrix_norm(w.double(), ord=2))


def weight_change(model: MLP, initial: list[torch.Tensor]) -> dict:
    """Per linear layer (from the input): ||W(t) - W(0)||_op and rho = that / ||W(0)||_op."""
    delta = [operator_norm(lin.weight.detach().cpu() - w0) for lin, w0 in zip(model.linears, initial)]
    base = [operator_norm(w0) for w0 in initial]
    return {"op_change": delta, "rho": [d / b for d, b in zip(delta, base)]}


# --------------------------------------------------------------------------- E1 driver
def run_noise(store, profile: str, seed: int, settings: dict, archs=ARCHS, variant: str = "A",
              init: str = "paper", norm_position: str = "pre", n_datasets: int | None = None,
              device="cpu", progress=None) -> dict:
    """Paper Fig. 1 / report Fig. 2: every architecture, ``n_datasets`` independent replicates.

    Each (architecture, replicate) is its own results record, so an interrupted grid
    resumes. Returns per-architecture median curves, growth rates (mean, sd, all) and
    timing, ready for the ledger (experiment ``gsc_noise``).
    """
    s = settings
    n_rep = n_datasets or s["n_datasets"]
    out = {"archs": list(archs), "median": {}, "q10": {}, "q90": {}, "rate": {}, "rate_sd": {},
           "rates": {}, "gsc_input": {}, "std_last": {}, "sd_last": {}, "runtime_s": 0.0,
           "computed_s": 0.0, "reused": 0}
    cells = [(a, r) for a in archs for r in range(n_rep)]
    for arch, rep in (progress(cells) if progress else cells):
        cfg = {"arch": arch, "replicate": rep, "seed": seed, "depth": s["depth"],
               "width": s["width"], "n_points": s["n_points"], "bn_batch": s["bn_batch"],
               "variant": variant, "init": init, "norm_position": norm_position,
               "skip": list(s["fit_skip"])}
        rec = store.run("gsc_noise_replicate", cfg, profile, seed, lambda: noise_replicate(
            arch, seed * 100003 + rep * 7919 + ARCHS.index(arch), s["depth"], s["width"],
            s["n_points"], s["bn_batch"], variant, init, norm_position, device, tuple(s["fit_skip"])),
            data_source="synthetic Gaussian inputs (report §3.1)")
        out["runtime_s"] += rec["provenance"]["runtime_s"]
        out["reused"] += rec["reused"]
        out["computed_s"] += 0 if rec["reused"] else rec["provenance"]["runtime_s"]
        out.setdefault("_reps", {}).setdefault(arch, []).append(rec["values"])
        out.setdefault("_time", {}).setdefault(arch, 0.0)
        out["_time"][arch] += rec["provenance"]["runtime_s"]
    for arch, reps in out.pop("_reps").items():
        g = np.array([r["gsc"] for r in reps])
        out["median"][arch] = {k: np.median(np.array([r[k] for r in reps]), 0).tolist()
                               for k in ("gsc", "preact_std", "sign_diversity")}
        out["q10"][arch] = np.quantile(g, 0.1, 0).tolist()
        out["q90"][arch] = np.quantile(g, 0.9, 0).tolist()
        rates = np.array([r["rate"] for r in reps])
        out["rates"][arch] = rates.tolist()
        out["rate"][arch] = float(rates.mean())
        out["rate_sd"][arch] = float(rates.std(ddof=1)) if len(rates) > 1 else 0.0
        out["gsc_input"][arch] = float(np.median(g[:, 0]))
        out["std_last"][arch] = out["median"][arch]["preact_std"][-1]
        out["sd_last"][arch] = out["median"][arch]["sign_diversity"][-1]
    out["explodes"] = {a: bool(out["rate"][a] > EXPLODE_RATE) for a in out["rate"]}
    rep_s = {a: t / n_rep for a, t in out.pop("_time").items()}
    out["replicate_s"] = rep_s
    out["projected_full_minutes"] = sum(rep_s.values()) * 100 * (10000 / s["n_points"]) / 60 \
        * len(ARCHS) / len(rep_s)
    calm = [a for a in ("relu", "layer-relu", "tanh") if a in out["median"]]
    if calm:
        out["nonexploding_std_collapsed"] = float(np.mean(
            [out["median"][a]["preact_std"][-1] < 0.5 * out["median"][a]["preact_std"][0]
             for a in calm]))
    return out


EXPLODE_RATE = 1.02  # a rate above this is "exploding" in our verdicts (spec's no-explosion band 0.97-1.03)


# --------------------------------------------------------------------------- E2: CIFAR-10
def cifar_tensors(data: dict, n_train: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattened, per-channel standardised training images (first ``n_train`` of a seeded permutation)."""
    x = data["x_train"].float().div_(255)
    mean, std = x.mean((0, 2, 3), keepdim=True), x.std((0, 2, 3), keepdim=True)
    x = ((x - mean) / std).flatten(1)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n_train]
    return x[perm].contiguous(), data["y_train"][perm].contiguous()


def train_cifar(arch: str, lr: float, epochs: int, x: torch.Tensor, y: torch.Tensor, *,
                depth: int = 51, width: int = 100, batch: int = 128, patience: int = 5,
                gsc_points: int = 1000, loss: str = "kl", seed: int = 0, device="cpu",
                checkpoint=None, measure: bool = True) -> dict:
    """Plain SGD on the MLP with the report's decay rule (lr /= 3 after ``patience`` epochs
    without a lower training error). Per epoch: training error, GSC(L, 0) on ``gsc_points``
    fixed training images with the training error layer, effective depth and the operator
    norm of each layer's weight change. ``checkpoint`` (a path) makes the run resumable.
    """
    from .results import load_checkpoint, save_checkpoint

    gen = torch.Generator().manual_seed(seed)
    model = make_mlp(arch, depth, width, d_in=x.shape[1], d_out=10, generator=gen).to(device)
    w0 = [lin.weight.detach().cpu().clone() for lin in model.linears]
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    hist = {"train_error": [], "gsc_L0": [], "eff_depth": [], "lr": [], "loss": []}
    state = {"epoch": 0, "best": float("inf"), "stale": 0, "lr": lr}
    ck = load_checkpoint(checkpoint) if checkpoint is not None else None
    if ck is not None:
        model.load_state_dict(ck["model"])
        w0, hist, state = ck["w0"], ck["hist"], ck["state"]
    criterion = kl_error if loss == "kl" else _cross_entropy_sum
    xg, yg = x[:gsc_points].to(device), y[:gsc_points].to(device)
    n = len(x) - len(x) % batch
    for epoch in range(state["epoch"], epochs):
        for group in opt.param_groups:
            group["lr"] = state["lr"]
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed * 1000 + epoch))[:n]
        wrong, total_loss = 0, 0.0
        model.train()
        for idx in perm.view(-1, batch):
            xb, yb = x[idx].to(device), y[idx].to(device)
            out = model(xb)
            l = criterion(out, yb) / len(yb)
            opt.zero_grad(set_to_none=True)
            l.backward()
            opt.step()
            wrong += int((out.argmax(1) != yb).sum())
            total_loss += l.item() * len(yb)
        err = wrong / n
        if not math.isfinite(total_loss):
            err = 1.0
        hist["train_error"].append(err)
        hist["loss"].append(total_loss / n)
        hist["lr"].append(state["lr"])
        if measure and math.isfinite(total_loss):
            c = gsc_curve(model, xg, yg, error=criterion, group=100)
            hist["gsc_L0"].append(float(c["gsc"][0]))
            hist["eff_depth"].append(effective_depth(weight_change(model, w0)["rho"]))
        else:
            hist["gsc_L0"].append(float("nan"))
            hist["eff_depth"].append(0)
        if err < state["best"] - 1e-12:
            state["best"], state["stale"] = err, 0
        else:
            state["stale"] += 1
            if state["stale"] >= patience:
                state["lr"], state["stale"] = state["lr"] / 3, 0
        state["epoch"] = epoch + 1
        if checkpoint is not None:
            save_checkpoint(checkpoint, {"model": model.state_dict(), "w0": w0, "hist": hist,
                                         "state": state})
        if not math.isfinite(total_loss):
            break
    wc = weight_change(model, w0)
    return {"arch": arch, "lr": lr, "hist": hist, "final_error": hist["train_error"][-1],
            "op_change": wc["op_change"], "rho": wc["rho"]}


def _cross_entropy_sum(out, y):
    """Categorical cross-entropy sum_b [logsumexp(o_b) - o_b[y_b]] (the report's proposal)."""
    picked = out.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    return (torch.logsumexp(out, -1) - picked).sum(-1)


cross_entropy_error = _cross_entropy_sum


def run_cifar(store, profile: str, seed: int, settings: dict, data: dict, device="cpu",
              progress=None) -> dict:
    """Paper Fig. 3 / report Fig. 4: learning-rate search, then training with GSC(L,0),
    effective depth and weight-change norms per epoch (experiment ``gsc_cifar``).

    Every (architecture, learning rate) search run and every final run is its own record;
    the final runs checkpoint each epoch, so an interrupted run resumes.
    """
    s = settings
    x, y = cifar_tensors(data, s["cifar_train"], seed)
    common = {"depth": s["cifar_depth"], "batch": s["cifar_batch"], "patience": s["cifar_patience"],
              "gsc_points": s["cifar_gsc_points"], "seed": seed, "n_train": s["cifar_train"],
              "data": data["source"]}
    search, final = {}, {}
    cells = [(a, lr) for a in s["cifar_archs"] for lr in s["cifar_lrs"]]
    for arch, lr in (progress(cells) if progress else cells):
        cfg = {"arch": arch, "lr": lr, "epochs": s["cifar_search_epochs"], "stage": "search", **common}
        rec = store.run("gsc_cifar_run", cfg, profile, seed, lambda: train_cifar(
            arch, lr, s["cifar_search_epochs"], x, y, depth=s["cifar_depth"], batch=s["cifar_batch"],
            patience=s["cifar_patience"], gsc_points=s["cifar_gsc_points"], seed=seed,
            device=device, measure=False), data_source=data["source"])
        search.setdefault(arch, {})[lr] = rec["values"]["final_error"]
    for arch in (progress(s["cifar_archs"]) if progress else s["cifar_archs"]):
        best_lr = min(search[arch], key=lambda lr: (search[arch][lr], lr))
        cfg = {"arch": arch, "lr": best_lr, "epochs": s["cifar_epochs"], "stage": "final", **common}
        ck = store.checkpoint_path("gsc_cifar_run", cfg, profile)
        rec = store.run("gsc_cifar_run", cfg, profile, seed, lambda: train_cifar(
            arch, best_lr, s["cifar_epochs"], x, y, depth=s["cifar_depth"], batch=s["cifar_batch"],
            patience=s["cifar_patience"], gsc_points=s["cifar_gsc_points"], seed=seed,
            device=device, checkpoint=ck), data_source=data["source"])
        if ck.exists():
            ck.unlink()
        final[arch] = rec["values"]
    logits = torch.randn(1000, 10, generator=torch.Generator().manual_seed(seed)) * 3
    labels = torch.randint(0, 10, (1000,), generator=torch.Generator().manual_seed(seed + 1))
    kl_ce = float((kl_error(logits, labels) - cross_entropy_error(logits, labels)).abs())
    return summarise_cifar(search, final, kl_ce, data["source"])


def summarise_cifar(search: dict, final: dict, kl_minus_ce: float, source: str) -> dict:
    """The ledger's quantities from the final training runs."""
    def finite(v):
        return [g for g in v if g == g and g > 0]
    towards, stable, later = [], [], []
    for run in final.values():
        g = finite(run["hist"]["gsc_L0"])
        if len(g) >= 2:
            towards.append(abs(math.log(g[-1])) < abs(math.log(g[0])))
            stable.append(0.5 <= g[-1] / g[0] <= 2)
        op = run["op_change"]
        half = len(op) // 2
        later.append(float(np.mean(op[half:])) > float(np.mean(op[:half])))
    return {
        "search": {a: {str(lr): e for lr, e in v.items()} for a, v in search.items()},
        "best_lr": {a: r["lr"] for a, r in final.items()},
        "hist": {a: r["hist"] for a, r in final.items()},
        "op_change": {a: r["op_change"] for a, r in final.items()},
        "final_error": {a: r["final_error"] for a, r in final.items()},
        "max_eff_depth": max(max(r["hist"]["eff_depth"]) for r in final.values()),
        "frac_gsc_towards_one": float(np.mean(towards)) if towards else float("nan"),
        "frac_gsc_stable": float(np.mean(stable)) if stable else float("nan"),
        "frac_later_layers_change_more": float(np.mean(later)),
        "frac_trained": float(np.mean([r["final_error"] < 0.8 for r in final.values()])),
        "kl_minus_ce": kl_minus_ce, "data_source": source,
    }


# --------------------------------------------------------------------------- figures
def plot_noise(summary: dict):
    """Three panels as paper Fig. 1 / report Fig. 2: GSC, pre-activation std, sign diversity."""
    import matplotlib.pyplot as plt
    from .plotting import arch_color

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for arch in summary["archs"]:
        med = summary["median"][arch]
        k = np.arange(1, len(med["gsc"]) + 1)
        axes[0].plot(k, med["gsc"], color=arch_color(arch), label=arch)
        axes[0].fill_between(k, summary["q10"][arch], summary["q90"][arch],
                             color=arch_color(arch), alpha=0.15, lw=0)
        j = np.arange(1, len(med["preact_std"]) + 1)
        axes[1].plot(j, med["preact_std"], color=arch_color(arch))
        axes[2].plot(j, med["sign_diversity"], color=arch_color(arch))
    axes[0].set(yscale="log", xlabel="linear layer (from input)", ylabel="GSC(k, 0)",
                title="(A) gradient scale coefficient")
    axes[1].set(xlabel="nonlinearity layer (from input)", ylabel="std over data",
                title="(B) pre-activation std")
    axes[2].set(xlabel="nonlinearity layer (from input)", ylabel="min(P,N)/(P+N)",
                title="(C) pre-activation sign diversity", ylim=(0, 0.52))
    axes[0].legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def plot_cifar(summary: dict):
    """Four panels as paper Fig. 3 / report Fig. 4 (B-E)."""
    import matplotlib.pyplot as plt
    from .plotting import arch_color

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for arch, h in summary["hist"].items():
        ep = np.arange(1, len(h["train_error"]) + 1)
        c = arch_color(arch)
        axes[0].plot(ep, h["train_error"], color=c, label=arch)
        axes[1].plot(ep, h["gsc_L0"], color=c)
        axes[2].plot(ep, h["eff_depth"], color=c)
        op = summary["op_change"][arch]
        axes[3].plot(np.arange(1, len(op) + 1), op, color=c)
    axes[0].set(xlabel="epoch", ylabel="training error", title="(B) classification error")
    axes[1].set(xlabel="epoch", yscale="log", title="(C) GSC(L, 0)")
    axes[2].set(xlabel="epoch", title="(D) effective depth")
    axes[3].set(xlabel="linear layer (from input)", yscale="log",
                title="(E) ||W(t) - W(0)||_op")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
