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
# # DropMax: adaptive stochastic softmax
#
# Paper {cite}`lee2018dropmax`; reproducibility report {cite}`liu2017dropmax`. Spec: `shared/specs/`.

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

run = book.start("dropmax", profile, seed, device, _new)

# %% [markdown]
# ## Scope and claims
#
# DropMax randomly drops non-target classes from the softmax with learned, input-dependent retain probabilities, and claims lower MNIST-1K/5K/55K test error than softmax, sampled softmax and sparsemax (ICLR Table 1), most of all with little data. The report re-implemented it in Keras, proposed dropping classes instead of logits, and found the same relative ordering with much lower absolute errors.
#
# ## Method
#
# Not implemented yet. MNIST is here (`reprobook.data.load_mnist`); the DropMax layer, its baselines and the MNIST runs are the next issue of this chapter.
#
# ## Results
#
# No experiment of this chapter has run: every claim below reads **not run**, with the reason.

# %% tags=["remove-input"]
book.not_run_table("dropmax", run.profile)

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
table, tally = book.verdicts("dropmax", run.profile)
display(Markdown(" · ".join(f"**{k}**: {v}" for k, v in tally.items())))
table

# %% tags=["remove-cell"]
assert len(table) > 0
