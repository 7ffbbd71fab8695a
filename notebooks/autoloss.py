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
# # AutoLoss: learning discrete schedules for alternate optimization
#
# Paper {cite}`xu2019autoloss`; reproducibility report {cite}`kothari2019autoloss`. Spec: `shared/specs/autoloss.md`.

# %% tags=["remove-cell"]
_before = set(globals())

# %% tags=["parameters"]
profile = "small"
seed = 0
device = "auto"

# %% tags=["remove-input"]
_new = set(globals()) - _before  # parameters, declared or injected
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from reprobook import book
from reprobook.autoloss import experiments as ex

run = book.start("autoloss", profile, seed, device, _new)
store = book.store()
display(Markdown(f"**Profile `{run.profile}`**, seed {run.seed}."))

# %% [markdown]
# ## Scope and claims
#
# AutoLoss trains a controller with REINFORCE to decide, step by step, which loss to optimise,
# and claims lower error than hand-crafted schedules and dense grid search on quadratic
# regression, MLP classification, GANs and NMT (paper Tables 1-3). The report reproduced the
# baselines and found the controller fragile (high variance, not lambda-independent). This
# version of the chapter runs the **quadratic regression** (Table 1's first row and the lambda
# sweep of Fig. 1); the other tasks are listed as not run below.
#
# ## Method
#
# We follow the official code (safpla/AutoLossRelease @ c3cdf97) where the paper is silent:
#
# | choice | ours (official) | where |
# |---|---|---|
# | data | `gen_reg_data.py` bit for bit: $w\sim U[-.5,.5]^{16}$, $x\sim U[-5,5]^{16}$, $y=x\cdot w+\mathcal N(0,2^2)$; five partitions of 200 rows | `make_regression_data` |
# | model | $f(x)=x\cdot w_1 + x^\top W_2 x/10$, no bias; $w_1\sim N(0,.1^2)$, $W_2\sim N(0,.01^2)$ | `quadratic_predict`, `Lanes.reset` |
# | losses and actions | action 0: an Adam step on the MSE, action 1: on $\lambda\sum\lvert\theta\rvert$ ($\lambda=0.2$); **one Adam shared by both** (TF form, lr $5\cdot10^{-4}$, full batch) | `Lanes.step` |
# | validation | every 10 steps; the best-validation parameters are tested | `Lanes.validate` |
# | baselines | 20,000 steps on train_task, best valid_task checkpoint; DGS: joint loss, $\lambda$ from a log grid picked on valid_task; S1-S3: threshold picked on valid_task; 1:1 alternation starts with L1 | `run_fixed` |
# | controller | 5 official state features → 16 leaky-ReLU → 2, softmax(logits/2), Adam $10^{-3}$ | `Controller` |
# | controller training | per episode a fresh model on train_ctrl, early stopping on valid_ctrl (100 checks); reward $20000/\text{best valid MSE}$, EMA baseline (0.8), advantage clipped to ±20 and added to the per-step shaping reward; the controller after the best episode is kept | `train_controllers` |
# | AutoLoss test | each controller guides fresh models on train_task for 20,000 steps; best valid_task checkpoint | `test_controllers` |
#
# Every method is scored on the **same 200 test rows**: a 200-row test MSE has a standard error
# of about 0.4, far above Table 1's differences, so AutoLoss is compared with each baseline by a
# paired bootstrap over the rows. Independent models (trials, grid points, controller seeds)
# run in lockstep as one tensor program.

# %% tags=["remove-input"]
settings = pd.Series({k: (v if not isinstance(v, list) or len(v) < 8 else f"{len(v)} values")
                      for k, v in run["regression"].items()}, name=run.profile).to_frame()
display(Markdown("Profile settings of the regression experiment (`full`: the official budget):"),
        settings)

# %% [markdown]
# ## Results
#
# ### Quadratic regression (paper Table 1, Fig. 1)

# %%
rec = ex.run_regression(store, run.profile, run.seed, run["regression"])
reg = rec["values"]

# %% tags=["remove-input"]
order = ["w-o-l1", "w-o-l1-trainval", "alternate", "dgs", "dgs-test-picked", "s1", "s2", "s3",
         "autoloss", "autoloss-terminal-only", "autoloss-report-sign"]
paper = {"w-o-l1": .790, "s1": .086, "s2": .096, "s3": .095, "dgs": .086, "autoloss": .070}
rows = {}
for m in [m for m in order if m in reg["mse_raw"]]:
    ci = reg["vs_autoloss"].get(m)
    trials = np.array(reg["mse_trials"][m])
    rows[m] = {"picked": reg["picked"].get(m, ""), "paper (−3.94)": paper.get(m, ""),
               "test MSE": f"{reg['mse_raw'][m]:.3f} ± {trials.std():.3f}",
               "− floor": f"{reg['mse_minus_floor'][m]:.3f}", "− 3.94": f"{reg['mse'][m]:.3f}",
               "L1 steps": f"{reg['l1_fraction'][m]:.2f}",
               "AutoLoss − this [95% CI]": "" if ci is None else
               f"{ci['diff']:+.3f} [{ci['lo']:+.3f}, {ci['hi']:+.3f}]"}
display(Markdown(
    f"Test MSE: mean ± sd over trials; the test rows' realised noise floor is "
    f"{reg['noise_floor_test']:.3f} (the paper's data: 3.94). Last column: paired bootstrap "
    f"over the 200 test rows, negative = AutoLoss better. `dgs-test-picked` chose lambda on "
    f"the test rows (optimistic, for reference only)."), pd.DataFrame(rows).T)

# %% tags=["remove-input"]
fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
lams = np.array([float(k) for k in reg["dgs_sweep"]])
ax[0].semilogx(lams, [v["test"] for v in reg["dgs_sweep"].values()], "o-", label="DGS (test)")
ax[0].semilogx(lams, [v["valid"] for v in reg["dgs_sweep"].values()], "s--", alpha=.6,
               label="DGS (valid_task)")
sw = {float(k): np.mean(v) for k, v in reg["autoloss_sweep"].items()}
ax[0].semilogx(sorted(sw), [sw[k] for k in sorted(sw)], "D-", label="AutoLoss (test)")
ax[0].axhline(reg["noise_floor_test"], color="gray", lw=.8, ls=":", label="test noise floor")
ax[0].set(xlabel="λ", ylabel="MSE", title="Fig. 1 (regression): MSE vs λ")
ax[0].legend(fontsize=8)
curves = np.array(reg["controller"]["episode_best_valid"])
for i, lane in enumerate(reg["controller"]["lanes"]):
    ax[1].plot(curves[:, i], lw=1, label=f"{lane['name']} λ={lane['lam']:g} s{lane['seed']}")
ax[1].set(xlabel="episode", ylabel="best valid_ctrl MSE", title="controller training")
ax[1].legend(fontsize=6)
plt.tight_layout()
plt.show()
display(book.provenance(rec))

# %% [markdown]
# ### Not run yet
#
# The MLP classification, the feature ablation, the sensitivity study, the GAN and NMT rows are
# not implemented in this version of the chapter; their claims read **not run** with the reason.

# %% tags=["remove-input"]
book.not_run_table("autoloss", run.profile)

# %% [markdown]
# ## What was easy
#
# The official code fixes what the paper leaves open (d = 16, λ = 0.2, the model without bias,
# the data generator), and the regression task is linear in its parameters, so its gradients
# can be written out and hundreds of models trained in one program.
#
# ## What was difficult
#
# The official controller is not the paper's: it adds a per-step shaping reward to the clipped
# episode reward, uses hand-normalised features and keeps the controller of the best episode.
# Table 1's differences between methods (0.01-0.02 MSE) are far below the sampling error of
# one 200-row test set, which only paired comparisons on the same rows can resolve.
#
# ## Verdicts

# %% tags=["remove-input"]
table, tally = book.verdicts("autoloss", run.profile)
display(Markdown(" · ".join(f"**{k}**: {v}" for k, v in tally.items())))
table

# %% tags=["remove-cell"]
assert len(table) > 0
