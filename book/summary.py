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
# # Summary of verdicts
#
# Every claim of the five papers and reports, with the verdicts computed from our results
# (see [how this book works](method.md) for the rules). A claim gets one verdict against the
# paper and one against the report wherever both state it; the counts below use the primary
# verdict (against the paper where it states the claim, else against the report).

# %% tags=["parameters"]
profile = "small"

# %% tags=["remove-input"]
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML, Markdown, display

from reprobook import book, claims, pages
from reprobook.plotting import use_style
from reprobook.evidence import evidence_profile

book.show_whole_tables()
use_style()

evidence = {ch: evidence_profile(ch, profile) for ch in book.CHAPTERS}
tables = {ch: book.evaluate(ch, evidence[ch]) for ch in book.CHAPTERS}
shown = {ch: book.with_profiles(t) for ch, t in tables.items()}
counts = pd.DataFrame({ch: claims.counts(t) for ch, t in tables.items()}).T
counts["claims"] = counts.sum(axis=1)
counts.insert(0, "evidence", pd.Series(evidence))
own = pd.DataFrame({ch: claims.counts(t, published=False) for ch, t in tables.items()}).T
own["claims"] = own.sum(axis=1)
display(Markdown(f"Build profile: `{profile}`. Each chapter uses the strongest committed "
                 "evidence (column `evidence`, and the chapter's header); a verdict computed at "
                 "a profile too short to test a claim reads *inconclusive at* that profile. "
                 "The tally counts the claims that the paper or the report published; our own "
                 "checks (hypotheses, controls, rows with only a third-party reference) are "
                 "counted apart, below, and never as reproductions of a paper."))
display(book.legend())

# %% tags=["remove-input"]
fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
left = pd.Series(0, index=counts.index)
for v in claims.VERDICTS:
    ax.barh([f"{ch} ({evidence[ch]})" for ch in counts.index], counts[v], left=left,
            color=book.COLOURS[v], label=v)
    left += counts[v]
ax.invert_yaxis()
ax.set_xlabel("claims")
ax.legend(ncol=6, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)
ax.set_title("Verdicts per chapter (published claims, primary verdict)")
plt.show()

# %% tags=["remove-input"]
by_column = pd.concat({col: pd.DataFrame({ch: claims.counts(t, col) for ch, t in tables.items()}).T
                       for col in ("verdict vs paper", "verdict vs report")}, axis=1)
display(Markdown("Counts per verdict column (a claim appears under each source that states it):"))
total = counts.copy()
total.loc["all chapters"] = total.drop(columns="evidence").sum()
total.loc["all chapters", "evidence"] = "–"
display(total)
display(by_column)
display(Markdown("Our own checks (no value published by the paper or the report):"))
display(own)

# %% [markdown]
# ## Every claim
#
# One table of all claims of the five ledgers: type in the box to search, pick a chapter,
# a verdict or a profile to filter, click a column title to sort. Headline claims (★) come
# first; each id links to the claim's row in its chapter, where its sources, conditions and
# the record it was judged on are.

# %% tags=["remove-input"]
display(HTML(pages.explorer_html(shown)))

# %% [markdown]
# ## Downloads

# %% tags=["remove-input"]
files = pages.write_downloads(shown)
display(HTML("<ul>" + "".join(f'<li><a href="../downloads/{path}">{label}</a></li>'
                              for label, path in files.items()) + "</ul>"
             "<p>The verdicts files hold one row per claim: both verdicts, ours, the published "
             "numbers and their sources, the profile, the record (commit) and the key it was "
             "read from. Each record a verdict was read from (the data behind the chapters' "
             "tables and figures, with its provenance) is under <code>downloads/records/</code>, "
             "linked from the explorer's rows; all records are in the repository's "
             "<code>results/</code> folder.</p>"))

# %% tags=["remove-cell"]
assert total.loc["all chapters", "claims"] + own["claims"].sum() == sum(len(t) for t in tables.values())
