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
# # Execution status
#
# How each chapter of this build ran: profile, runtime, hardware, package versions, commit.

# %% tags=["parameters"]
profile = "small"

# %% tags=["remove-input"]
import os
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from reprobook import book, status

executed = Path(os.environ.get("REPRO_EXECUTED", Path.cwd().parent / "_build" / "executed"))
status.chapter_table(executed / "notebooks", list(book.CHAPTERS))

# %% [markdown]
# *Evidence* says where each chapter's verdicts, figures and tables come from: this build's
# own run, or records committed under `results/` at a larger profile (`medium`, `full`).
# A committed record is *stale* when the code that wrote it has changed since; its verdicts
# are marked as such in the chapter.
#
# ## Speed
#
# Ratios written by `make bench` (time of our code over a plain PyTorch or matrix-product
# reference on the same tensors, on the machine named in each row).

# %% tags=["remove-input"]
bench = status.bench_table()
bench if bench is not None else Markdown("`make bench` has not been run on this commit: no "
                                         "committed `results/bench.json`.")

# %% [markdown]
# ## The paper-scale plan
#
# What the `full` profile would cost: every cell of each registered experiment with its
# projected time, from a timed short slice of that cell (`python -m reprobook.cli plan all
# --profile full --out results/plan/full.json`).

# %% tags=["remove-input"]
planned = status.plan_table("full")
if planned is None:
    display(Markdown("No committed plan of `full` (`results/plan/full.json`)."))
else:
    display(Markdown(planned[1]))
    display(planned[0].style.format({"hours": "{:,.2f}", "memory_gb": "{:.1f}"}, na_rep="—"))

# %% [markdown]
# ## Environment

# %% tags=["remove-input"]
status.environment_table()

# %% tags=["remove-cell"]
assert len(status.chapter_table(executed / "notebooks", list(book.CHAPTERS))) == len(book.CHAPTERS)
