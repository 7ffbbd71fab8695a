"""Martin & Mahoney, "Traditional and Heavy-Tailed Self Regularization in Neural Network Models".

Kernels not written yet: the chapter lists the ledger's claims as "not run".
Spec: shared/specs/htsr.md.
"""
PROFILES = {"small": {}, "full": {}}
