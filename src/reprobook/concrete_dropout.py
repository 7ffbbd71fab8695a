"""Gal, Hron & Kendall, "Concrete Dropout" (NeurIPS 2017).

Kernels not written yet: the chapter lists the ledger's claims as "not run".
Spec: shared/specs/concrete_dropout.md.
"""
PROFILES = {"small": {}, "full": {}}
