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
# # reprobook
#
# The executable reproduction book for five machine-learning reproducibility reports. Each
# chapter reruns a paper's experiments from one command, offline, puts the numbers the paper
# and the reproducibility report published beside ours, and computes a verdict for each claim
# of its ledger: one against the paper and one against the report where both state it.

# %% tags=["parameters"]
profile = "small"

# %% tags=["remove-input"]
from IPython.display import HTML, Markdown, display

from reprobook import book

display(Markdown("## Does it reproduce?\n\nThe central claims of each paper and report (the "
                 "ones their abstracts and conclusions make), judged on the strongest evidence "
                 "committed for each chapter; ★ marks them in the chapters' verdict tables."))
display(HTML(book.cards_html(profile)))

# %% [markdown]
# ## The chapters
#
# | chapter | paper | reproducibility report |
# |---|---|---|
# | [DropMax](../notebooks/dropmax.ipynb) | {cite}`lee2018dropmax` | {cite}`liu2017dropmax` |
# | [AutoLoss](../notebooks/autoloss.ipynb) | {cite}`xu2019autoloss` | {cite}`kothari2019autoloss` |
# | [Concrete Dropout](../notebooks/concrete_dropout.ipynb) | {cite}`gal2017concrete` | {cite}`likhosherstov2018concrete` |
# | [Gradients explode](../notebooks/gsc.ipynb) | {cite}`philipp2018gradients` | {cite}`flynn2019gsc` |
# | [Heavy-tailed self-regularization](../notebooks/htsr.ipynb) | {cite}`martin2019traditional` | {cite}`pratama2019htsr` |
#
# Every number labelled *ours* was computed by the code of this repository in the build that
# rendered this page, or loaded from a committed results file with its provenance. The
# [summary](summary.ipynb) has every claim of the five ledgers in one searchable table, with downloads (a verdict is
# *inconclusive* where the run was too short, or the network did not train, to test the claim), and the
# [execution status](status.ipynb) page says how, where and how long each chapter ran.

# %% [markdown]
# ## Reading a chapter
#
# Every chapter has the same sections: **scope and claims**, **method**, **results** (tables
# with the paper's, the report's and our numbers, and figures), **what was easy**, **what was
# difficult**, and **verdicts**. See [how this book works](method.md) for the verdict rules,
# profiles and provenance.
#
# ## Rerunning a chapter
#
# ```bash
# make venv                                          # pinned virtual environment in .venv
# .venv/bin/papermill notebooks/gsc.ipynb out.ipynb -p profile full
# .venv/bin/python -m reprobook.cli run gsc --profile full   # same, output in _build/executed
# ```

