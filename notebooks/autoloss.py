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
# Paper {cite}`xu2019autoloss`; reproducibility report {cite}`kothari2019autoloss`. Spec: `shared/specs/`.

# %% tags=["remove-cell"]
_before = set(globals())

# %% tags=["parameters"]
profile = "small"
seed = 0
device = "auto"

# %% tags=["remove-input"]
_new = set(globals()) - _before  # parameters, declared or injected
from IPython.display import Markdown, display

from reprobook import book

run = book.start("autoloss", profile, seed, device, _new)

# %% [markdown]
# ## Scope and claims
#
# AutoLoss trains a controller with REINFORCE to decide, step by step, which loss to optimise, and claims lower error than hand-crafted schedules and dense grid search on quadratic regression, MLP classification, GANs and NMT (paper Tables 1-3). The report reproduced the baselines and found the controller fragile (high variance, not lambda-independent).
#
# ## Method
#
# Not implemented yet. The synthetic regression and classification tasks need no data; MNIST is here for the GAN. The NMT task needs WMT data, which is not available offline.
#
# ## Results
#
# No experiment of this chapter has run: every claim below reads **not run**, with the reason.

# %% tags=["remove-input"]
book.not_run_table("autoloss", run.profile)

# %% [markdown]
# ## What was easy
#
# Recording the paper's and the report's numbers as data (the ledger).
#
# ## What was difficult
#
# Nothing has been attempted yet beyond the ledger.
#
# ## Verdicts

# %% tags=["remove-input"]
table, tally = book.verdicts("autoloss", run.profile)
display(Markdown(" · ".join(f"**{k}**: {v}" for k, v in tally.items())))
table

# %% tags=["remove-cell"]
assert len(table) > 0
