"""Xu et al., "AutoLoss: Learning Discrete Schedules for Alternate Optimization" (ICLR 2019).

Kernels not written yet: the chapter lists the ledger's claims as "not run".
Spec: shared/specs/autoloss.md.
"""
PROFILES = {"small": {}, "full": {}}
