"""Gal, Hron & Kendall, "Concrete Dropout" (NeurIPS 2017, arXiv 1705.07832), and the
reproducibility report of Likhosherstov & de la Fuente (seed 002).

``kernels`` holds the relaxed mask, the regulariser of paper Eq. 3, the ConcreteDropout
wrapper (Linear, spatial Conv2d, LSTM inputs) and MC-dropout inference; ``experiments``
the chapter's runs. Spec: shared/specs/concrete_dropout.md.
"""
from .kernels import (ConcreteDropout, bernoulli_entropy, concrete_mask, concrete_regularization,
                      concrete_regularizer, dropout_probabilities, gaussian_mc_log_likelihood,
                      predictive_moments)

_SIZES = [10, 25, 50, 100, 1000, 10000]  # reference notebook
_EPOCHS = [2000, 1000, 500, 200, 20, 2]  # its epochs per size (1000-2000 Adam steps each)
PROFILES = {
    "small": {
        "synthetic": {"sizes": _SIZES, "epochs": _EPOCHS, "reps": 2, "width": 64,
                      "lengthscale": 1e-4, "batch": 20, "val_size": 1000, "samples": 20,
                      "lr": 1e-3},
        "uci": {"sets": ["boston", "kin8nm", "wine-red"], "splits": 20, "width": 50, "depth": 2,
                "epochs": {"boston": 100, "kin8nm": 8, "wine-red": 30}, "batch": 32,
                "lr": 3e-3, "lengthscale": 1e-2, "samples": 50,
                # the report's MAP-EM alternation (its epochs and batch 200; KFold -> standard splits)
                "map_em_sets": ["boston"], "map_em_epochs": {"boston": 30},
                "map_em_batch": 200},
    },
    "full": {
        "synthetic": {"sizes": _SIZES, "epochs": _EPOCHS, "reps": 3, "width": 1024,
                      "lengthscale": 1e-4, "batch": 20, "val_size": 1000, "samples": 20,
                      "lr": 1e-3},
        "uci": {"sets": ["boston", "kin8nm", "wine-red"], "splits": 20, "width": 50, "depth": 2,
                "epochs": {"boston": 400, "kin8nm": 100, "wine-red": 400}, "batch": 32,
                "lr": 1e-3, "lengthscale": 1e-2, "samples": 1000,
                "map_em_sets": ["boston", "kin8nm", "wine-red"],
                "map_em_epochs": {"boston": 30, "kin8nm": 100, "wine-red": 30}, "map_em_batch": 200},
    },
}

__all__ = ["PROFILES", "ConcreteDropout", "bernoulli_entropy", "concrete_mask",
           "concrete_regularization", "concrete_regularizer", "dropout_probabilities",
           "gaussian_mc_log_likelihood", "predictive_moments"]
