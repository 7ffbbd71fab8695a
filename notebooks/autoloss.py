# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # AutoLoss: learning discrete schedules for alternate optimization
#
# Paper {cite}`xu2019autoloss`; reproducibility report {cite}`kothari2019autoloss`.

# %% tags=["remove-cell"]
_before = set(globals())

# %% tags=["parameters"]
profile = "small"
seed = 0
device = "auto"
executor = "local"
address = ""

# %% tags=["remove-input"]
_new = set(globals()) - _before  # parameters, declared or injected
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from reprobook import book
from reprobook.autoloss import experiments as ex
from reprobook.autoloss import figures
from reprobook.autoloss.kernels import make_regression_data
from reprobook.autoloss.regression import OFFICIAL

run = book.start("autoloss", profile, seed, device, _new, executor, address)
display(Markdown(f"**Profile `{run.profile}`**, seed {run.seed}."))

# %% [markdown]
# ## Scope and claims
#
# AutoLoss trains a controller with REINFORCE to decide, step by step, which loss to optimise,
# and claims lower error than hand-crafted schedules and dense grid search on quadratic
# regression, MLP classification, GANs and NMT (paper Tables 1-3). The report reproduced the
# baselines and found the controller fragile (high variance, "not very robust in terms of
# hyperparameters", not lambda-independent). This chapter runs:
#
# - the **quadratic regression** (Table 1's first row, the lambda sweep of Fig. 1, the feature
#   ablation of Table 3);
# - the **MLP classification** (Table 1's second row) and the report's frozen random
#   controllers with raw and normalised features (its 30-80% spread);
# - a **sensitivity study** of the controller's hyperparameters on regression, which turns the
#   report's "not robust" into a measured ratio;
# - the **report's variants** side by side with the corrected controller: its sign error
#   (it descends the expected reward) on both tasks and its baseline-free controller on
#   classification and on the GAN;
# - the **MNIST GAN** (paper §5.2): a DCGAN under fixed D:G schedules and under an AutoLoss
#   controller trained online, scored by the inception score of our own MNIST classifier.
#
# - **transfer** (paper Table 2): the trained classification controllers on three other data
#   sets from the same generator.
#
# The NMT multi-task model and the GAN transfer experiments (sampled architectures, CIFAR-10)
# are not run in this build; their claims are listed with the reason at the end.
#
# ## Method
#
# We follow the official code (safpla/AutoLossRelease @ c3cdf97) where the paper is silent:
#
# | choice | regression (`config/reg`) | classification (`config/cls`) |
# |---|---|---|
# | data | `gen_reg_data.py` bit for bit: $w\sim U[-.5,.5]^{16}$, $x\sim U[-5,5]^{16}$, $y=x\cdot w+\mathcal N(0,2^2)$; five partitions of 200 rows | `gen_cls_data.py`: scikit-learn `make_classification` (32 features, 2 informative, 2 redundant, seed 1); partitions 200/1000/200/1000/1000 |
# | model | $f(x)=x\cdot w_1 + x^\top W_2 x/10$, no bias | MLP 32 → 32 ReLU → 2, truncated-normal weights (sd 0.1), biases 0.1 |
# | actions | 0: Adam step on the MSE, 1: on $\lambda\sum\lvert\theta\rvert$ ($\lambda=0.2$); **one Adam shared by both** (lr $5\cdot10^{-4}$) | 0: cross-entropy, 1: L1 over all variables ($\lambda=0.02$); one Adam (lr $10^{-3}$) |
# | validation | every 10 steps, best valid MSE kept, endurance 100 | every 10 steps, best valid **accuracy** kept, endurance 20 |
# | baselines | 20,000 steps, best valid_task checkpoint | 2,000 steps, best valid_task checkpoint |
# | controller | 5 features → 16 leaky-ReLU → 2, softmax(logits/2) | 6 features, same net |
# | reward | $20000/\text{best valid MSE}$, EMA baseline 0.8, clip ±20, shaping cap 20 × 1 | $-1000/\max(\text{acc},0.5)$, EMA 0.9, clip ±5, shaping cap 5 × 0.1 |
#
# DGS is the joint loss with $\lambda$ picked on valid_task from a log grid (the test-picked
# $\lambda$ is shown, labelled); S1-S3 use a threshold picked on valid_task; the 1:1
# alternation starts with L1 (`controller_designed`). AutoLoss controllers are trained on the
# ctrl partitions (the controller after the best episode is kept) and tested on fresh task
# models on the task partitions. Every method is scored on the **same test rows**, so AutoLoss is
# compared with each baseline by a paired bootstrap over those rows. Independent models
# (trials, grid points, controllers with different settings) run in lockstep as one tensor
# program.
#
# **Sensitivity.** Each setting changes one knob of the official regression controller and is
# trained for every controller seed side by side with the official one; its test MSE over
# (seed, trial) runs is summarised by median and IQR. The criterion for "not robust": the
# spread (max − min) of the medians over the hyperparameter settings exceeds the distance
# between the official setting's median and the best baseline, i.e. changing one
# hyperparameter moves the result more than AutoLoss differs from the best fixed schedule.
# **Feature normalisation** divides each state feature by its root mean square along a 1:1
# alternation run on the ctrl partitions.

# %% [markdown]
# ### What each profile can test
# `small` (CI) runs every experiment at smoke length. `medium` (≤ 90 min on 2 CPU cores) runs
# the fixed schedules at the official length with 10 trials (Table 1's baselines, Fig. 1's
# λ sweep, the noise floor, "overfitting without L1"), but trains the controllers for only a
# few episodes (5 × ≤ 5,000 steps on regression, 20 × 2,000 on classification, against the
# official 400 and thousands): every claim about the trained controller needs ≥ 100 or
# ≥ 300 episodes and stays *inconclusive* until `full`. Its GAN is a small DCGAN for 1,500
# steps (the paper's claims need the paper's DCGAN and ≥ 50,000 steps).
#
# Device: the GAN runs on the chapter's `device` (a GPU when one is present at `full`: the
# paper's DCGAN for 100,000 steps × 10 runs is hundreds of CPU hours). The regression and
# classification programs always run on the CPU with one thread: each lockstep step is a few
# small tensor operations on at most a few hundred lanes, where a GPU's launch cost would
# dominate (an expectation: we have not timed these programs on a GPU).

# %% tags=["remove-input"]
book.profiles_table("autoloss")

# %% [markdown]
# ## Results
#
# ### Quadratic regression (paper Table 1, Fig. 1)

# %%
rec = run.run("autoloss_regression")
reg = rec["values"]


# %% tags=["remove-input"]
def _table(v, order, paper, score, fmt, trials_key, extra):
    rows = {}
    for m in [m for m in order if m in v[score]]:
        ci = v["vs_autoloss"].get(m)
        trials = np.array(v[trials_key][m])
        rows[m] = {"picked": v["picked"].get(m, ""), "paper": paper.get(m, ""),
                   "report": "", "ours": f"{v[score][m]:{fmt}} ± {trials.std():{fmt}}",
                   **{k: f(m) for k, f in extra.items()},
                   "L1 steps": f"{v['l1_fraction'][m]:.2f}",
                   "AutoLoss − this [95% CI]": "" if ci is None else
                   f"{ci['diff']:+{fmt}} [{ci['lo']:+{fmt}}, {ci['hi']:+{fmt}}]"}
    return pd.DataFrame(rows).T


order = ["w-o-l1", "w-o-l1-trainval", "alternate", "dgs", "dgs-test-picked", "s1", "s2", "s3",
         "autoloss", "autoloss-terminal-only", "autoloss-report-sign", "autoloss-no-baseline"]
paper_reg = book.published("autoloss", r"^mse_minus_floor\.")  # from the ledger
paper_floor = book.reference("autoloss", "reg-noise-floor", "paper")  # paper App. A.2
t_reg = _table(reg, order, paper_reg, "mse_raw", ".3f", "mse_trials",
               {"− floor": lambda m: f"{reg['mse_minus_floor'][m]:.3f}",
                f"− {paper_floor}": lambda m: f"{reg['mse_raw'][m] - paper_floor:.3f}"})
t_reg = t_reg.rename(columns={"paper": f"paper (−{paper_floor})", "ours": "ours: test MSE"})
display(Markdown(
    f"Test MSE: mean ± sd over trials; the test rows' realised noise floor is "
    f"{reg['noise_floor_test']:.3f} (the paper's data: {paper_floor}). The report gives no numbers for "
    f"this table. Last column: paired bootstrap over the 200 test rows, negative = AutoLoss "
    f"better. `dgs-test-picked` chose λ on the test rows (optimistic, for reference only); "
    f"`autoloss-terminal-only` is the paper's reward without the official per-step shaping."),
    t_reg.drop(columns="report"))

# %% mystnb={"figure": {"caption": "Quadratic regression: left (paper Fig. 1), test MSE of dense grid search (DGS) against the L1 weight $\\lambda$, AutoLoss's test MSE at the $\\lambda$ it was trained with (diamonds) and the test rows' noise floor (dotted); right, the best validation MSE on the controller partitions per controller training episode, one line per controller (corrected, the report's sign, terminal reward only). AutoLoss beats the grid if its diamonds lie below the DGS curve, and a controller learns if its line falls over the episodes.", "name": "fig-autoloss-regression"}, "image": {"alt": "Two charts: test MSE against lambda on a logarithmic axis as a line with circles for DGS, diamonds for AutoLoss and a dotted horizontal noise-floor line; and best validation MSE against episode, one line per controller."}} tags=["remove-input"]
fig, ax = plt.subplots(1, 2, figsize=(11, 3.8))
figures.lambda_sweep(reg, "test MSE", "Fig. 1 (regression): MSE vs λ", ax=ax[0])
figures.controller_curves(reg, "best valid_ctrl MSE", ax=ax[1],
                          names={"autoloss", "autoloss-report-sign", "autoloss-terminal-only"})
plt.tight_layout()
plt.show()

# %% tags=["remove-input"]
abl = reg["ablation"]["mse_minus_floor"]
paper_t3 = book.published("autoloss", r"^ablation\.mse_minus_floor\.")
display(Markdown("Paper Table 3, feature ablation (regression MSE minus the noise floor; "
                 "ours: mean over controller seeds and trials):"),
        pd.DataFrame({"paper": paper_t3, "ours": {k: f"{abl[k]:.3f}" for k in paper_t3}}))
display(book.provenance(rec))

# %% [markdown]
# **Where our W/O L1 and S2 rows differ from the paper's.** A difference of data, scale or
# definition would move every row of Table 1 alike, and it does not. Divided by the test rows'
# noise floor, the rows that regularise (DGS, S1, S3) sit close to the paper's, while W/O L1 and
# S2 are far off (table below, from this run's record).
#
# - **W/O L1** is how Adam overfits this model. There are 200 training rows for 152 distinct
#   quadratic features, Adam moves every coefficient at the same rate, and the best-validation
#   checkpoint comes early and is already overfitted. The released code has no W/O L1 baseline
#   (`trainer.baseline` in safpla/AutoLossRelease @ c3cdf97 runs only the 1:1 alternation), so
#   the paper's number cannot be traced to code. The qualitative claim, that W/O L1 overfits,
#   holds more strongly in our run.
# - **S2** takes an L1 step when (λ‖θ‖₁ − L_val)/L_val exceeds its threshold. At the true
#   weights that statistic is well below −0.5 (computed below from the data generator and the
#   validation rows' noise floor), so only thresholds near it hold the model at the true L1
#   norm. The `medium` grid stops at −0.5, and validation picked that edge point
#   (below). The `full` grid includes −0.75.

# %% tags=["remove-input"]
floor_paper = book.published("autoloss", r"^noise_floor_test$")["noise_floor_test"]  # ledger
display(pd.DataFrame({m: {"ours: test MSE / noise floor": round(reg["mse_raw"][m] / reg["noise_floor_test"], 3),
                          "paper: (its MSE − floor + floor) / floor":
                              round((paper_reg[m] + floor_paper) / floor_paper, 3)}
                      for m in ("dgs", "s1", "s3", "s2", "w-o-l1") if m in reg["mse_raw"]}).T)
w_l1 = float(make_regression_data()["w"].abs().sum())  # the true weights' L1 norm
floor_valid = reg["noise_floor_partitions"][3]  # valid_task rows
display(Markdown(f"S2's statistic at the true weights: (λ‖w‖₁ − L_val)/L_val = "
                 f"({OFFICIAL['lam']} × {w_l1:.3f} − {floor_valid:.3f}) / {floor_valid:.3f} = "
                 f"{(OFFICIAL['lam'] * w_l1 - floor_valid) / floor_valid:+.2f}. S2's threshold "
                 f"picked on the validation rows: `{reg['picked'].get('s2')}`; the grid: "
                 f"{rec['config']['thresholds']}."))

# %% [markdown]
# ### MLP classification (paper Table 1)

# %%
rec_c = run.run("autoloss_classification")
cls = rec_c["values"]

# %% tags=["remove-input"]
paper_cls = book.published("autoloss", r"^error\.")
t_cls = _table(cls, order, paper_cls, "error", ".4f", "error_trials", {})
t_cls = t_cls.rename(columns={"paper": "paper: error", "ours": "ours: test error"})
display(Markdown(
    "Test error on the 1000 test rows: mean ± sd over trials. Last column: paired bootstrap "
    "over the test rows (0/1 errors averaged over trials), negative = AutoLoss better. "
    "`autoloss-report-sign` ascends the loss as the report's code does; "
    "`autoloss-no-baseline` uses the clipped raw reward (the report's GAN controller)."),
    t_cls.drop(columns="report"))
# %% mystnb={"figure": {"caption": "MLP classification: left, test error of dense grid search (DGS) against $\\lambda$ and AutoLoss's test error at its $\\lambda$ (diamonds); right, test accuracy of frozen, untrained random controllers with raw and with normalised features, one dot per controller seed, with the report's ranges shaded. The report found a wide spread with raw features and a narrow one with normalised features; compare the dots' spread with the shaded bands.", "name": "fig-autoloss-classification"}, "image": {"alt": "Two charts: test error against lambda on a logarithmic axis as a line with circles for DGS and diamonds for AutoLoss; and test accuracy of frozen controllers as jittered dots in two columns, raw and normalised features, with min and max ticks and two shaded horizontal bands."}} tags=["remove-input"]
fig, ax = plt.subplots(1, 2, figsize=(11, 3.6))
figures.lambda_sweep(cls, "test error", "classification: error vs λ", ax=ax[0])
figures.frozen_controllers(cls, ax=ax[1])
plt.tight_layout()
plt.show()

# %% tags=["remove-input"]
fr = cls["frozen"]
display(Markdown(
    f"Frozen random controllers ({rec_c['config']['frozen']} seeds): test accuracy "
    f"{fr['raw']['min']:.3f}-{fr['raw']['max']:.3f} with raw features (L1 steps "
    f"{fr['raw']['l1_fraction']:.2f}), {fr['normalised']['min']:.3f}-"
    f"{fr['normalised']['max']:.3f} with normalised features (L1 steps "
    f"{fr['normalised']['l1_fraction']:.2f}); the report: 30-80% and 72-78% on its own data."))
display(book.provenance(rec_c))

# %% [markdown]
# ### Transfer to other classification data (paper Table 2)
#
# The controllers trained above (data set 0, the official generator at seed 1) guide fresh
# task models on three other data sets; W/O L1 and DGS (λ picked on each set's validation
# partition) are trained there from scratch. The paper does not say how its three data sets
# were made: ours are `gen_cls_data.py` at seeds 2, 3 and 4 (an assumption, labelled).

# %% tags=["remove-input"]
tr = cls["transfer"]
t2 = figures.transfer_table(tr)
display(Markdown(f"Test error (mean over trials; AutoLoss: over the trained controllers too). "
                 f"DGS λ picked: {', '.join(tr['dgs_picked'].values())}. The paper's values "
                 "are in the verdict table below (claims `t2-*`)."), t2)

# %% [markdown]
# ### Sensitivity of the controller (regression)

# %% mystnb={"figure": {"caption": "Sensitivity of the regression controller: for each setting that changes one hyperparameter (blue) and each Table 3 feature ablation (orange, `drop:*`), the median (dot) and interquartile range (bar) of AutoLoss's test MSE over controller seeds and trials, single runs as small black dots; the official setting's IQR is shaded, the best baseline dashed and the noise floor dotted. AutoLoss is not robust in the report's sense if the medians spread further than the official median lies from the best baseline (the ratio below the figure).", "name": "fig-autoloss-sensitivity"}, "image": {"alt": "Horizontal interval plot with test MSE on the horizontal axis and one row per controller setting, each row a coloured bar with a dot and small black dots, a shaded vertical band, a dashed red vertical line and a dotted grey vertical line."}} tags=["remove-input"]
sens = reg["sensitivity"]
figures.sensitivity(reg)
plt.show()

# %% tags=["remove-input"]
st = pd.DataFrame({k: {"median": f"{v['median']:.3f}", "IQR": f"{v['iqr']:.3f}",
                       "per seed": ", ".join(f"{x:.3f}" for x in v["seed_means"])}
                   for k, v in sens["settings"].items()}).T
display(Markdown(
    f"Median and IQR of AutoLoss's test MSE over {sens['n_seeds']} controller seeds × "
    f"{rec['config']['trials']} trials per setting (`drop:*` rows are the Table 3 "
    f"ablations, left out of the spread). Spread of the medians over the hyperparameter "
    f"settings: **{sens['spread_of_medians']:.3f}** (best `{sens['best_setting']}`, worst "
    f"`{sens['worst_setting']}`); |official median − best baseline ({sens['best_baseline']}, "
    f"{sens['best_baseline_mse']:.3f})| = **{sens['gap_to_best_baseline']:.3f}**; ratio "
    f"**{sens['ratio']:.2f}** (criterion for \"not robust\": > 1)."), st)

# %% [markdown]
# ### The report's controller variants
#
# The report's controllers hand $C(R-B)\nabla\log\pi$ to a minimiser, so they descend the
# expected reward; its GAN controller has no baseline. Same seeds, same episodes budget:

# %% tags=["remove-input"]
var_rows = {}
for task, v in (("regression", reg), ("classification", cls)):
    score = v["mse_raw"] if task == "regression" else v["error"]
    for m in ("autoloss", "autoloss-report-sign", "autoloss-no-baseline"):
        if m in score:
            ci = v["vs_autoloss"].get(m)
            var_rows[(task, m)] = {"test MSE / test error": f"{score[m]:.4f}",
                                   "L1 steps": f"{v['l1_fraction'][m]:.2f}",
                                   "corrected − this [95% CI]": "" if ci is None else
                                   f"{ci['diff']:+.4f} [{ci['lo']:+.4f}, {ci['hi']:+.4f}]"}
display(pd.DataFrame(var_rows).T)

# %% [markdown]
# In the runs above the controllers barely train in the `medium` budget (a few episodes), so
# the two signs end alike and the table cannot show the bug.
#
# ### The report's sign error, shown by a run
#
# A run where the controller does learn: many short episodes of the regression task (official
# reward and shaping, normalised features) and a controller learning rate of 0.01, high enough
# for the policy to move in that budget; one controller per seed with the paper's sign and one
# with the report's, trained in one lockstep program and tested on fresh task models at the
# training horizon (`reprobook.autoloss.exp_sign`). The bug shows if the two signs move the
# share of L1 steps in opposite directions; it matters for the task if the report-sign
# controllers end with the higher test MSE, paired by seed.

# %%
from reprobook.autoloss import exp_sign_figures as sign_figures

sign = run.run("autoloss_sign")["values"]

# %% tags=["remove-input"] mystnb={"figure": {"caption": "Best validation MSE per episode, averaged over seeds, for controllers trained with the correct REINFORCE sign and with the report's. A falling curve means the controller learns to schedule the L1 steps; the report's sign makes it descend the expected reward.", "name": "fig-autoloss-sign"}, "image": {"alt": "Two lines of best validation MSE against training episode, one for the correct sign and one for the report's sign."}}
fig = sign_figures.plot_sign_curves(sign)
plt.show()

# %% tags=["remove-input"]
d = sign["report_minus_correct"]
display(sign_figures.sign_table(sign))
display(Markdown(
    f"{sign['seeds']} seeds, {sign['episodes']} episodes each. Report sign minus correct sign, "
    f"test MSE paired by seed: {d['mean']:+.3f} (95 % t interval {d['lo']:+.3f} to "
    f"{d['hi']:+.3f}); the correct sign is better for {sign['correct_wins']} of "
    f"{sign['seeds']} seeds. The verdicts (<a class='claim-id' href='#claim-report-sign-reverses-policy'><code>report-sign-reverses-policy</code></a>, <a class='claim-id' href='#claim-report-sign-bug'><code>report-sign-bug</code></a>) "
    "are in the table at the end."))

# %% [markdown]
# ### MNIST GAN: fixed D:G schedules vs AutoLoss (paper §5.2)
#
# **Method.** The official DCGAN (`models/gan.py`: $z\to$ linear $7\cdot7\cdot2C$ → ReLU →
# deconv 5×5/2 → ReLU → deconv 5×5/2 → tanh; D: two 5×5/2 convolutions with leaky ReLU and a
# linear logit; no batchnorm; $\mathcal N(0,0.02^2)$ init; non-saturating G loss, D loss
# (real CE + fake CE)/2; Adam β = (0.5, 0.999)). Width $C$, $\dim z$, learning rate and length
# are profile settings (the paper's: $C=64$, $\dim z=128$, lr $2\cdot10^{-4}$, batch 128). A
# **step** is one Adam update of either D or G; GAN $d{:}g$ repeats $d$ D updates then $g$ G
# updates. Every run starts from the same G and D weights and sees the same noise stream.
# The inception score uses **our own MNIST classifier** (paper §5.1.2 used the authors' CNN,
# on which real test images score 9.5), on a fixed set of generator samples rescaled from
# $[-1,1]$ to $[0,1]$, every `eval_every` steps. **AutoLoss** (paper §4.4) is a linear softmax
# policy over {G update, D update} (paper §5.1.2) on the four official features
# ($\log\lVert g_D\rVert/\lVert g_G\rVert$ of the latest normalised gradient norms, EMA of
# the G cost − 1, EMA of the D cost, IS − 8 rescaled to our classifier), trained online during
# the one GAN run: after every segment of $T$ = `eval_every` steps it gets the segment reward
# $R = C\,(P^{(t+T)}-P^{(t)})/((P^{(t)}-P^{(t-kT)})/k)$ ($k=1$, $C=1$, $10^{-3}$ added to the
# denominator as the report's code) for every step of the segment and takes one REINFORCE step
# (Adam, lr 0.02) with the EMA baseline (decay 0.9, clip ±20), or with the raw clipped reward
# (`autoloss-no-baseline`, the report's GAN controller). The schedules run one after another
# (not batched). The speed threshold is the paper's 8.6 rescaled to our classifier,
# $8.6\times\text{IS}_\text{real}/9.5$.

# %%
rec_g = run.run("autoloss_gan")
gv = rec_g["values"]

# %% mystnb={"figure": {"caption": "MNIST DCGAN (paper Sec. 5.2): inception score, computed with our own MNIST classifier, against update step for each fixed D:G schedule (thin dashed) and each AutoLoss controller trained online (thick solid), with the score of real test images (grey) and the paper's 8.6 threshold rescaled to our classifier (dotted). The speed claims compare the step at which each curve first reaches the dotted line; the paper says AutoLoss gets there before every fixed schedule.", "name": "fig-autoloss-gan"}, "image": {"alt": "Line chart with update step on the horizontal axis and inception score on the vertical axis, thin dashed lines for the fixed schedules, thick solid lines for the controllers, a grey horizontal line for real images and a dotted grey threshold line."}} tags=["remove-input"]
fig, ax = plt.subplots(figsize=(7, 4))
figures.gan_is_curves(gv, ax=ax)
plt.tight_layout()
plt.show()

# %% tags=["remove-input"]
clf_v = gv["classifier"]
display(Markdown(
    f"Our MNIST classifier: test accuracy **{clf_v['test_acc']:.4f}**, IS of the "
    f"{clf_v['n_test']} real test images **{clf_v['is_real']:.3f}** (paper: "
    f"{rec_g['config']['scale_real_is']} on the authors' classifier). Threshold IS "
    f"{gv['threshold_is']:.3f}; {rec_g['config']['steps']} steps per schedule "
    f"(profile `{run.profile}`: base filters {rec_g['config']['base_filters']}, z "
    f"{rec_g['config']['z_dim']}), one run each."),
    figures.gan_table(gv, book.published("autoloss", r"^is\.", "paper")))
display(book.provenance(rec_g))

# %% [markdown]
# ### Not run in this build

# %% tags=["remove-input"]
book.not_run_table("autoloss", run.profile)

# %% [markdown]
# ## What was easy
#
# The official code fixes what the paper leaves open (d = 16, λ, the model without bias, the
# data generators, the features and rewards), and both tasks are small enough to be written
# as batched closed-form forward and backward passes: hundreds of task models and dozens of
# controllers with different settings train as one program.
#
# ## What was difficult
#
# The official controller is not the paper's: it adds a per-step shaping reward to the clipped
# episode reward, uses hand-normalised features and keeps the controller of the best episode.
# Table 1's differences between methods are a few hundredths of MSE and a few thousandths of
# error in the paper; whether a difference of that size is real on one test set needs paired
# comparisons on the same rows (the bootstrap intervals in the tables above).
# The controller settings interact with the reward scale (C, clip, baseline decay): the
# official classification reward, −1000/acc, clipped to ±5, makes a baseline-free controller
# see a constant reward.
# The online GAN reward divides the last segment's IS gain by the previous one's: when the
# previous gain is near zero or negative (early training, or a dip) it explodes or flips sign,
# and the clip at ±`adv_clip` then decides the update (the share of clipped segment rewards in
# our runs is below); and a GAN run long enough to reach the paper's IS (tens of thousands of
# DCGAN steps per schedule) is beyond the small and medium profiles, whose GAN verdicts are
# therefore inconclusive.

# %% tags=["remove-input"]
_clip = rec_g["config"]["adv_clip"]
display(Markdown("Segment rewards beyond ±" + f"{_clip:g}" + " (clipped): " + "; ".join(
    f"{k} {sum(abs(r) > _clip for r in c['rewards'])} of {len(c['rewards'])}"
    for k, c in gv["controller"].items()) + "."))

# %% [markdown]
# ## Verdicts

# %% tags=["remove-input"]
table, tally = book.verdicts("autoloss", run.profile)
display(book.tally_markdown(tally))
table

# %% tags=["remove-cell"]
assert len(table) > 0
for key in ("mse_raw", "vs_autoloss", "sensitivity", "ablation"):
    assert key in reg, key
for key in ("error", "vs_autoloss", "frozen"):
    assert key in cls, key
for key in ("is", "curves", "classifier", "steps_to_threshold", "speedup_vs_1_1"):
    assert key in gv, key
assert all(np.isfinite(v) for v in gv["is"].values())
assert np.isfinite(gv["classifier"]["test_acc"]) and np.isfinite(gv["classifier"]["is_real"])
