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
# # Summary of verdicts
#
# Every claim of the five papers and reports, with the verdict computed from our results
# (see [how this book works](method.md) for the rules).

# %% tags=["parameters"]
profile = "small"

# %% tags=["remove-input"]
import pandas as pd
from IPython.display import Markdown, display

from reprobook import book, claims

book.show_whole_tables()

tables = {ch: book.verdicts(ch, profile, columns=None)[0] for ch in book.CHAPTERS}
counts = pd.DataFrame({ch: claims.counts(t) for ch, t in tables.items()}).T
counts["claims"] = counts.sum(axis=1)
counts.loc["all chapters"] = counts.sum()
display(Markdown(f"Build profile: `{profile}` (committed full-profile results are used where present)."))
counts

# %% [markdown]
# ## Every claim

# %% tags=["remove-input"]
for ch, t in tables.items():
    display(Markdown(f"### {ch}"))
    display(t[["id", "claim", "paper", "report", "ours", "verdict", "why not run"]])

# %% tags=["remove-cell"]
assert counts.loc["all chapters", "claims"] == sum(len(t) for t in tables.values())
