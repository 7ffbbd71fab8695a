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
# # Execution status
#
# How each chapter of this build ran: profile, runtime, hardware, package versions, commit.

# %% tags=["parameters"]
profile = "small"

# %% tags=["remove-input"]
import os
from pathlib import Path

import pandas as pd

from reprobook import book, status

executed = Path(os.environ.get("REPRO_EXECUTED", Path.cwd().parent / "_build" / "executed"))
status.chapter_table(executed / "notebooks", list(book.CHAPTERS))

# %% [markdown]
# ## Environment

# %% tags=["remove-input"]
status.environment_table()

# %% tags=["remove-cell"]
assert len(status.chapter_table(executed / "notebooks", list(book.CHAPTERS))) == len(book.CHAPTERS)
