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
# # Heavy-tailed self-regularization
#
# Paper {cite}`martin2019traditional`; reproducibility report {cite}`pratama2019htsr`. Spec: `shared/specs/`.

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

run = book.start("htsr", profile, seed, device, _new)

# %% [markdown]
# ## Scope and claims
#
# The paper analyses the empirical spectral density (ESD) of layer weight matrices with random matrix theory, names 5+1 phases of training from Random-like to Heavy-Tailed, and claims that smaller batches drive MiniAlexNet's FC layers to heavier-tailed ESDs and better generalisation. The report reproduced LeNet5, pretrained AlexNet and the MiniAlexNet batch-size sweep.
#
# ## Method
#
# Not implemented yet. MNIST and CIFAR-10 (JPEG copy) are here; the pretrained ImageNet AlexNet weights are not available offline, so the AlexNet claims will stay not run.
#
# ## Results
#
# No experiment of this chapter has run: every claim below reads **not run**, with the reason.

# %% tags=["remove-input"]
book.not_run_table("htsr", run.profile)

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
table, tally = book.verdicts("htsr", run.profile)
display(Markdown(" · ".join(f"**{k}**: {v}" for k, v in tally.items())))
table

# %% tags=["remove-cell"]
assert len(table) > 0
