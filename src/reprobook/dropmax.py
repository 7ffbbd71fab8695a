"""Lee et al., "DropMax: Adaptive Stochastic Softmax" (ICLR 2018 submission / NeurIPS 2018).

Kernels not written yet: the chapter lists the ledger's claims as "not run".
Spec: shared/specs/dropmax.md.
"""
PROFILES = {"small": {}, "full": {}}
