"""The claims ledger: every number and conclusion of the papers and reports, as data.

Ledger files live in ``reprobook/ledger/<chapter>.yaml``. A claim names its sources
(``paper_source``, ``report_source``), the published values (``paper``, ``report``), where
our number comes from (``ours: {experiment, key}``, a dotted path into a results record's
``values``) and a ``check`` that turns our number into a verdict. Verdicts are computed
here and nowhere else:

- ``reproduced``, ``partly``, ``not reproduced``: from the check;
- ``not run``: no result for that experiment exists (the claim's ``not_run_reason`` says why).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources

import pandas as pd
import yaml

VERDICTS = ("reproduced", "partly", "not reproduced", "not run")
CHAPTERS = ("dropmax", "autoloss", "concrete_dropout", "gsc", "htsr")


@dataclass
class Claim:
    id: str
    chapter: str
    statement: str
    paper_source: str | None = None
    paper: object = None
    report_source: str | None = None
    report: object = None
    ours: dict | None = None
    check: dict | None = None
    not_run_reason: str | None = None
    note: str | None = None
    extra: dict = field(default_factory=dict)


def load_ledger(chapter: str) -> list[Claim]:
    text = resources.files("reprobook.ledger").joinpath(f"{chapter}.yaml").read_text()
    doc = yaml.safe_load(text)
    claims = []
    for raw in doc["claims"]:
        known = {k: raw.pop(k) for k in list(raw) if k in Claim.__dataclass_fields__}
        claims.append(Claim(chapter=chapter, **known, extra=raw))
    ids = [c.id for c in claims]
    if len(ids) != len(set(ids)):
        raise ValueError(f"duplicate claim ids in ledger {chapter}")
    return claims


def lookup(values: dict, key: str):
    """Follow a dotted key (``rate.layer-tanh``) through nested dicts."""
    cur = values
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _num(x):
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def judge(check: dict, ours, claim: Claim) -> str:
    """Turn our value into a verdict according to ``check``.

    Kinds: ``greater``/``less`` (threshold; optional ``partly`` threshold),
    ``between`` (``lo``, ``hi``), ``close`` (to ``target`` = paper | report | a number, with
    ``rtol`` or ``atol`` for reproduced and ``partly_rtol``/``partly_atol`` for partly),
    ``true`` (a boolean result), ``fraction`` (share of true values: >= ``min`` reproduced,
    >= ``partly`` partly).
    """
    kind = check["kind"]
    if kind == "true":
        return "reproduced" if bool(ours) else "not reproduced"
    if kind == "fraction":
        frac = float(ours)
        if frac >= check["min"]:
            return "reproduced"
        return "partly" if frac >= check.get("partly", 1.1) else "not reproduced"
    x = _num(ours)
    if x is None or math.isnan(x):
        return "not reproduced"
    if kind == "greater":
        if x > check["value"]:
            return "reproduced"
        return "partly" if "partly" in check and x > check["partly"] else "not reproduced"
    if kind == "less":
        if x < check["value"]:
            return "reproduced"
        return "partly" if "partly" in check and x < check["partly"] else "not reproduced"
    if kind == "between":
        if check["lo"] <= x <= check["hi"]:
            return "reproduced"
        plo, phi = check.get("partly_lo"), check.get("partly_hi")
        if plo is not None and plo <= x <= phi:
            return "partly"
        return "not reproduced"
    if kind == "close":
        target = check.get("target", "paper")
        t = getattr(claim, target) if isinstance(target, str) else target
        t = _num(t)
        if t is None:
            raise ValueError(f"claim {claim.id}: close-check target {target!r} is not a number")
        err = abs(x - t)
        tol = check.get("atol", abs(t) * check.get("rtol", 0.0))
        ptol = check.get("partly_atol", abs(t) * check.get("partly_rtol", 0.0))
        if err <= tol:
            return "reproduced"
        return "partly" if err <= ptol else "not reproduced"
    raise ValueError(f"claim {claim.id}: unknown check kind {kind!r}")


def evaluate(claims: list[Claim], results: dict[str, dict]) -> pd.DataFrame:
    """One row per claim with our value and its verdict.

    ``results`` maps experiment name to a results record (or to its ``values`` dict with a
    ``profile`` key); experiments missing from it make their claims ``not run``.
    """
    rows = []
    for c in claims:
        ours, verdict, prov = None, "not run", ""
        if c.ours and c.check and c.ours.get("experiment") in results:
            rec = results[c.ours["experiment"]]
            values = rec.get("values", rec)
            ours = lookup(values, c.ours["key"])
            if ours is not None:
                verdict = judge(c.check, ours, c)
                prov = f"{rec.get('profile', '?')} @ {str(rec.get('provenance', {}).get('commit', '?'))[:8]}"
        rows.append({"id": c.id, "claim": c.statement, "paper": _fmt(c.paper),
                     "paper source": c.paper_source or "", "report": _fmt(c.report),
                     "report source": c.report_source or "", "ours": _fmt(ours),
                     "verdict": verdict, "run": prov,
                     "why not run": (c.not_run_reason or "experiment not run in this build")
                     if verdict == "not run" else ""})
    return pd.DataFrame(rows)


def _fmt(v):
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def counts(table: pd.DataFrame) -> pd.Series:
    return table["verdict"].value_counts().reindex(list(VERDICTS), fill_value=0)
