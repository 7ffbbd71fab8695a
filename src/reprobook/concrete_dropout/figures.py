"""Concrete Dropout chapter tables drawn from the records' values (never computed here, never
hashed: a change here stales no evidence). The older plots live beside their experiments."""
from __future__ import annotations


def grid_table(v: dict):
    """``cd_grid_search_timing``: per set, the Concrete run and each grid point (test LL, RMSE,
    training seconds), then the grid's total time and the speed-up."""
    import pandas as pd
    rows = {}
    for name, s in v["sets"].items():
        rows[(name, "Concrete (learned p)")] = s["concrete"]
        for p, g in s["grid"].items():
            rows[(name, f"fixed p = {p}")] = g
        rows[(name, "grid search, all points")] = {"train_s": s["grid_s"]}
    table = pd.DataFrame(rows).T[["ll", "rmse", "train_s"]]
    table.columns = ["test LL", "test RMSE", "training time (s)"]
    speed = pd.DataFrame({n: {"speed-up (grid time / Concrete time)": s["speedup"],
                              "best grid p": s["grid_best_p"],
                              "best grid LL minus Concrete LL": s["grid_best_minus_concrete_ll"],
                              "Concrete's largest learned p": max(s["concrete"]["p"].values())}
                          for n, s in v["sets"].items()}).T
    table = table.astype(float).round(3)
    return table.astype(object).where(table.notna(), "—"), speed.astype(float).round(4)
