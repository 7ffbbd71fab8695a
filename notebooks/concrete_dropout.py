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

from reprobook import book

run = book.start("concrete_dropout", profile, seed, device, _new)

# %% [markdown]
# ## Scope and claims
#
# Concrete Dropout learns dropout probabilities by gradient descent through a continuous relaxation of the Bernoulli mask, and claims accuracy matching hand-tuned dropout (MNIST, UCI, CamVid segmentation) and sensible learned rates (falling with data). The report reproduced MNIST, UCI, segmentation and RL, and extended it to LSTMs (SST, grapheme-to-phoneme).
#
# ## Method
#
# Not implemented yet. MNIST, the UCI splits and SST are here (`reprobook.data`); CamVid and the Kaggle grapheme-to-phoneme set are not available offline, so those claims will stay not run.
#
# ## Results
#
# No experiment of this chapter has run: every claim below reads **not run**, with the reason.

# %% tags=["remove-input"]
book.not_run_table("concrete_dropout", run.profile)

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
table, tally = book.verdicts("concrete_dropout", run.profile)
display(Markdown(" · ".join(f"**{k}**: {v}" for k, v in tally.items())))
table

# %% tags=["remove-cell"]
assert len(table) > 0
