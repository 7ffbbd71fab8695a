# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Concrete Dropout
#
# Paper {cite}`gal2017concrete`; reproducibility report {cite}`likhosherstov2018concrete`. Spec: `shared/specs/`.

# %% tags=["remove-cell"]
_before = set(globals())

# %% tags=["parameters"]
profile = "small"
seed = 0
device = "auto"

# %% tags=["remove-input"]
_new = set(globals()) - _before  # parameters, declared or injected
from IPython.display import Markdown, display

import pandas as pd

from reprobook import book
from reprobook import concrete_dropout as cd
from reprobook.concrete_dropout import experiments as cdx

run = book.start("concrete_dropout", profile, seed, device, _new)
store = book.store()

# %% [markdown]
# ## Scope and claims
#
# Concrete Dropout learns one dropout probability $p$ per layer by gradient descent through a
# continuous (Concrete) relaxation of the Bernoulli mask, and claims that the learned rates are
# sensible (they fall as data grow, shallow layers get small $p$) and that the resulting models
# match hand-tuned or grid-searched dropout in accuracy and uncertainty (synthetic regression,
# UCI, MNIST, CamVid segmentation, model-based RL). The report reproduced UCI, MNIST,
# segmentation and RL and extended the method to LSTMs. This chapter now runs the synthetic
# regression of paper §5.1 and the UCI study of §5.2 (with the report's MAP-EM ablation);
# MNIST, RL and SST-2 follow, CamVid and grapheme-to-phoneme have no data offline.
#
# ## Method
#
# For layer $l$ with input dimensionality $K$ (the number of independent Bernoulli variables
# per example), prior length-scale $l$, precision $\tau$ and $N$ training points, the
# objective adds per layer (paper Eq. 3, in the reference code's constants
# `weight_regularizer` $=l^2/(\tau N)$ and `dropout_regularizer` $=2/(\tau N)$)
#
# $$\frac{l^2}{\tau N}\,\frac{\lVert W\rVert^2}{1-p}\;-\;\frac{2}{\tau N}\,K\,\mathcal H(p),
#   \qquad \mathcal H(p)=-p\log p-(1-p)\log(1-p).$$
#
# The paper writes $(1-p)\lVert M\rVert^2$; with inverted dropout the stored kernel is
# $W=(1-p)M$, which gives $\lVert W\rVert^2/(1-p)$ (maintainer, ConcreteDropout issues #1, #3).
# The mask is the relaxed keep mask $1-\tilde z$,
# $\tilde z=\sigma\big((\log\tfrac{p+\epsilon}{1-p+\epsilon}+\log\tfrac{u+\epsilon}{1-u+\epsilon})/t\big)$,
# $u\sim\mathcal U(0,1)$, $t=0.1$ (spatial: $t=2/3$), $\epsilon=10^{-7}$, and the layer sees
# $x\odot(1-\tilde z)/(1-p)$. Kernels: `reprobook.concrete_dropout` (`concrete_mask`,
# `concrete_regularizer`, `ConcreteDropout` for Linear, spatial Conv2d and LSTM inputs,
# `predictive_moments`, `gaussian_mc_log_likelihood`), tested against closed forms, quadrature
# and scipy in `tests/test_concrete_dropout.py`.
#
# | choice | ours | reference code / paper |
# |---|---|---|
# | $K$ | layer input dim (channels for spatial conv) | Keras `input_shape[-1]`; TF port `prod(input_shape[1:])`; PyTorch port `x[0].numel()` |
# | weight penalty | kernel only | Keras/TF kernel only; PyTorch port all parameters (biases too) |
# | entropy | `entr` (exact at $p\in\{0,1\}$) | `p log p` without $\epsilon$ (the $\epsilon$ enters the mask only) |
# | test log-likelihood | per point: mean of $\operatorname{logsumexp}_t\log\mathcal N-\log T$ | notebooks: logsumexp of the *joint* log-likelihood, divided by $N$ |
# | epistemic variance | population variance over the $T$ samples | same (`np.var`) |
# | repeated runs | stacked weights, one batched program | a Python loop |

# %% tags=["remove-input"]
display(Markdown("Profile settings (`full` is the reference notebook's scale and 1000 MC samples for UCI):"),
        pd.DataFrame({k: pd.Series({kk: str(vv) for kk, vv in run[k].items()}) for k in ("synthetic", "uci")}))

# %% [markdown]
# ## Results
#
# ### Experiment 1 — synthetic heteroscedastic regression (paper §5.1)
#
# $y=2x+8+\varepsilon$, $x,\varepsilon\sim\mathcal N(0,1)$, three hidden ReLU layers, mean and
# log-variance heads, every layer wrapped (5 learned $p$'s), loss
# $\overline{e^{-s}(y-\mu)^2+s}$ plus the regularisers with $l=10^{-4}$, $\tau=1$. Every
# (N, repetition) run trains at once with stacked weights; run $r$ takes the notebook's
# epochs$\times\lceil N/20\rceil$ Adam steps, each on 20 indices drawn with replacement from its
# own data, and is frozen at its last step while longer runs go on.

# %%
syn_rec = cdx.synthetic_experiment(store, run.profile, run.seed, run.settings, device=run.device)
syn = syn_rec["values"]
fig = cdx.plot_synthetic(syn)

# %% tags=["remove-input"]
rows = {}
for n in syn["sizes"]:
    k = str(n)
    rows[n] = {"RMSE": syn["rmse"][k], "test LL": syn["ll"][k],
               "aleatoric std": syn["aleatoric_std"][k], "epistemic std": syn["epistemic_std"][k],
               **{f"p {name}": syn["p"][name][k] for name in cdx.LAYERS},
               "notebook p h1-h2": cdx.NOTEBOOK_P[n][1], "notebook epistemic": cdx.NOTEBOOK_STD[n][1]}
display(pd.DataFrame(rows).T.round(3))

# %% [markdown]
# The learned $p$ follow the notebook: the input layer's $p$ stays near 0.07 at every $N$
# while the hidden layers fall from about 0.4 at $N=10$ to below 0.1 at $N=10{,}000$, and the
# epistemic std falls with $N$. A caveat the notebook does not state: with Adam at learning
# rate $10^{-3}$, $p_{\text{logit}}$ moves by at most about $10^{-3}$ per step, so from
# $p_0=0.1$ the notebook's 1000–2000 steps cannot take $p$ beyond about 0.45. Trained for
# 10,000 steps at $N=10$, our hidden-layer $p$ reach 0.47–0.50 (the entropy term's optimum
# 0.5, the weight term being negligible at $l=10^{-4}$): the small-$N$ values of the figure are
# step-limited, not converged.

# %% [markdown]
# ### Experiment 2 — UCI regression (paper §5.2, report §3.1)
#
# Boston, kin8nm and wine-red, the 20 standard splits of Gal & Ghahramani (2016) trained
# together (stacked weights, `reprobook.train.fit`); two hidden layers of 50 ReLU units and the
# mean head, each wrapped (3 $p$'s), one learned noise variance per split, $l=10^{-2}$,
# inputs and targets standardised on each training split, results in the original units with
# MC dropout at test. The paper's own UCI numbers are only in its figures (not retrieved); we
# compare with grid-searched MC dropout (DropoutUncertaintyExps readme, "original" column).

# %%
uci_rec = cdx.uci_experiment(store, run.profile, run.seed, run.settings, device=run.device)
uci = uci_rec["values"]
fig = cdx.plot_uci(uci)

# %% tags=["remove-input"]
MC_DROPOUT = {"boston": (2.97, -2.46), "kin8nm": (0.10, 0.95), "wine-red": (0.62, -0.93)}
display(pd.DataFrame({name: {
    "RMSE": f"{v['rmse']:.3f} ± {v['rmse_se']:.3f}", "MC dropout RMSE": MC_DROPOUT[name][0],
    "test LL": f"{v['ll']:.3f} ± {v['ll_se']:.3f}", "MC dropout LL": MC_DROPOUT[name][1],
    **{f"p {k}": f"{v['p'][k]:.3f} ± {v['p_sd'][k]:.3f}" for k in cdx.UCI_LAYERS},
    "splits with the modal p ordering": v["pattern_fraction"],
    "train s": v["train_s"]} for name, v in uci["sets"].items()}).T)

# %% [markdown]
# ± is the standard error over the 20 splits for RMSE and LL, the standard deviation over
# splits for $p$. On every set $p$ increases with depth in every split and the first layer's
# $p$ is near 0, as the MLSALT4 replication read the paper's figure; the report saw no stable
# pattern on Boston, which we do not find.
#
# **The report's MAP-EM alternation** (its notebook: per epoch one Adam pass over weights and
# $p$, one over $\tau$; then a third pass over the $p$'s alone at learning rate 0.1), run with
# its 30 epochs of batch 200 and random initial $p\in[0.05,0.5]$:

# %% tags=["remove-input"]
display(pd.DataFrame({(name, k): {"mean |p - p_init|": r["dp"], **{f"p {l}": r["p"][l] for l in cdx.UCI_LAYERS}}
                      for name, d in uci["map_em"].items() for k, r in d.items()}).T.round(4))

# %% [markdown]
# Two passes leave $p$ where it started because Boston gives 3 Adam steps per pass and epoch
# (90 in all, each moving $p_{\text{logit}}$ by at most $10^{-3}$), not because of the
# alternation; the $p$-only pass at learning rate 0.1 moves it. The report's code also adds the
# Gamma log-prior of $\tau$ to the loss it minimises (the wrong sign), puts a ReLU on the
# regression output, uses unstandardised data and KFold splits instead of the standard 20;
# our runs use none of these.
#
# ## Not run yet
#
# MNIST (3 × 512 MLP; spatial concrete dropout on conv nets), CartPole RL and SST-2 LSTMs are
# the next phase of this chapter; CamVid and the grapheme-to-phoneme set are not available
# offline. Their claims read **not run** below.
#
# ## What was easy
#
# The kernels: the regulariser and mask are a few lines, and each has a closed-form oracle
# ($P(\tilde z>1/2)=p$ at every temperature, the mask mean by quadrature, the regulariser's
# minimiser in $p$).
#
# ## What was difficult
#
# - The paper text beyond the abstract was not available; the UCI architecture, epochs and
#   length-scale are our choices (spec §3.9), and the paper's UCI numbers were not retrieved.
# - The reference code's conventions differ between its Keras, TF and PyTorch versions ($K$,
#   biases in the penalty, the test log-likelihood); the table under Method lists ours.
# - The small-$N$ dropout rates of the reference notebook are limited by its number of Adam
#   steps, which makes "converged $p$" depend on the optimiser budget.
#
# ## Verdicts

# %% tags=["remove-input"]
table, tally = book.verdicts("concrete_dropout", run.profile)
display(Markdown(" · ".join(f"**{k}**: {v}" for k, v in tally.items())))
table

# %% tags=["remove-cell"]
# Smoke checks run by nbval and by every build.
assert len(table) > 0
assert set(syn["p"]) == set(cdx.LAYERS) and len(syn["sizes"]) >= 3
assert all(0 < p < 1 for layer in syn["p"].values() for p in layer.values())
assert set(uci["sets"]) == set(run["uci"]["sets"])
assert all(abs(v["ll"]) < 10 for v in uci["sets"].values())
assert (tally.drop("not run", errors="ignore") > 0).any(), "the chapter must produce verdicts"
