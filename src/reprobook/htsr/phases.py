"""The 5+1 phases of training (Random-like ... Heavy-Tailed, Rank-collapse) as explicit rules.

Martin & Mahoney (ICML 2019, arXiv 1901.08276) define the phases visually from the ESD
(their phase table, recalled here and unverified: the paper body could not be read); the thresholds of :data:`PHASE_RULES` are ours.
"""
from __future__ import annotations

import re

from .mp import MPFit
from .spectra import Spectrum

PHASES = ("Random-like", "Bleeding-out", "Bulk+Spikes", "Bulk-decay", "Heavy-Tailed",
          "Rank-collapse")

PHASE_RULES = """\
Our operational version of the paper's visual 5+1 phases (thresholds ours), applied in order,
with f = spikes / M the share of eigenvalues above the TW-corrected MP edge and R = MP soft rank:
1. Rank-collapse: at least 10% of the eigenvalues are numerically zero.
2. Heavy-Tailed: the MP fit fails, or f > 15%, or (R < 0.1 and f > 5%): no sensible bulk.
3. Random-like: no spike.
4. Bleeding-out: R >= 0.85 (eigenmass just above the edge, no gap).
5. Bulk+Spikes: f <= 5% (a few separated spikes).
6. Bulk-decay: otherwise (5-15% of the mass above the edge).
"""


def phase(spec: Spectrum, mp: MPFit, n_zero: int) -> str:
    """The phase label of :data:`PHASE_RULES`."""
    M = len(spec.evals)
    f = mp.spikes / M
    if n_zero / M >= 0.1:
        return "Rank-collapse"
    if not mp.ok or f > 0.15 or (mp.soft_rank < 0.1 and f > 0.05):
        return "Heavy-Tailed"
    if mp.spikes == 0:
        return "Random-like"
    if mp.soft_rank >= 0.85:
        return "Bleeding-out"
    return "Bulk+Spikes" if f <= 0.05 else "Bulk-decay"


def normalize_phase(label: str) -> str:
    """Map the report's spellings ('Bulk Decay', 'Random-like') onto :data:`PHASES`."""
    key = re.sub(r"[^a-z+]", "", str(label).lower())
    for p in PHASES:
        if re.sub(r"[^a-z+]", "", p.lower()) == key:
            return p
    raise ValueError(f"unknown phase label {label!r}; phases: {', '.join(PHASES)}")

