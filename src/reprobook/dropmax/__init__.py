"""Lee, Lee, Kim, Yang & Hwang, "DropMax: Adaptive Variational Softmax" (NeurIPS 2018,
arXiv 1712.07834; ICLR 2018 submission "DropMax: Adaptive Stochastic Softmax"), and the
reproducibility report of Liu, Nagata & English.

``kernels`` holds the masked softmax (both modes), the relaxed and hard masks, the official
objective's terms, the test rules, sparsemax and sampled softmax; ``models`` the MNIST trunks
and classifiers; ``experiments`` the chapter's registered experiments, ``figures`` its tables and figures.
"""
from .kernels import (EPS, MODES, TAU, DropMax, bernoulli_kl, concrete_mask, dropmax_log_probs,
                      dropmax_mc_probs, dropmax_probs, dropmax_terms, random_mask,
                      sample_negatives, sampled_softmax_loss, sparsemax, sparsemax_loss)
from .models import TRUNKS, Classifier, glorot_, make_trunk

_MODELS = ["softmax", "sparsemax", "sparsemax-ce", "sampled-uniform", "sampled-learned",
           "random-class", "random-logit", "adaptive-class", "adaptive-logit", "report-class",
           "report-logit", "attention", "q-eq-p"]
# official run.py: batch 100, Adam 1e-3 (x0.1 at 1/3 and 2/3 of the steps), L2 1e-4, 200 epochs.
# Ours: retain 0.5 for random DropMax, 5 sampled negatives, alpha = 10 (the report's best).
_COMMON = {"trunk": "lenet", "batch": 100, "lr": 1e-3, "weight_decay": 1e-4, "retain": 0.5,
           "num_sampled": 5, "alpha": 10.0, "samples": [30, 100], "test_n": 10000}
# Nested by experiment name: each section is that experiment's config (reprobook.runner).
PROFILES = {
    "small": {
        "dropmax_mnist": {**_COMMON, "seeds": [0],
                          "sizes": {"1k": {"epochs": 20, "models": _MODELS},
                                    "5k": {"epochs": 1, "models": ["softmax", "adaptive-class"]}}},
        "dropmax_pathology": {**_COMMON, "seeds": [0], "code_seeds": [0], "epochs": 5,
                              "test_n": 2000}},
    # <= 90 min of a 2-core CPU: MNIST-1K at the official 200 epochs and 3 seeds for the
    # eight models of ICLR Table 1, the poster's DropMax and the report's failure (a run takes
    # ~2-4 min of one core here); the pathology runs at 20 epochs (the report code's kernel
    # with 3 seeds). The other five models, 5K and 55K at the official length need `full`.
    "medium": {
        "dropmax_mnist": {**_COMMON, "seeds": [0, 1, 2], "sizes": {"1k": {"epochs": 200, "models": [
            "softmax", "sparsemax", "sparsemax-ce", "sampled-uniform", "random-logit",
            "adaptive-logit", "random-class", "adaptive-class"]}}},
        "dropmax_pathology": {**_COMMON, "seeds": [0], "code_seeds": [0, 1, 2], "epochs": 20}},
    "full": {
        "dropmax_mnist": {**_COMMON, "seeds": [0, 1, 2],
                          "sizes": {s: {"epochs": 200, "models": _MODELS}
                                    for s in ("1k", "5k", "55k")}},
        "dropmax_pathology": {**_COMMON, "seeds": [0], "code_seeds": [0, 1, 2], "epochs": 200}},
}

__all__ = ["PROFILES", "EPS", "MODES", "TAU", "TRUNKS", "Classifier", "DropMax", "bernoulli_kl",
           "concrete_mask", "dropmax_log_probs", "dropmax_mc_probs", "dropmax_probs",
           "dropmax_terms", "glorot_", "make_trunk", "random_mask", "sample_negatives",
           "sampled_softmax_loss",
           "sparsemax", "sparsemax_loss"]
