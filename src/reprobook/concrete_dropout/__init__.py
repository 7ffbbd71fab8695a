"""Gal, Hron & Kendall, "Concrete Dropout" (NeurIPS 2017, arXiv 1705.07832), and the
reproducibility report of Likhosherstov & de la Fuente.

``kernels`` holds the relaxed mask, the regulariser of paper Eq. 3, the ConcreteDropout
wrapper (Linear, spatial Conv2d, LSTM inputs) and MC-dropout inference; ``experiments``
gathers the chapter's runs (``models``, ``synthetic``, ``uci``, ``mnist``, ``sst``, ``rl``). Reference code: yaringal/ConcreteDropout @ 0cb396d.
"""
from .kernels import (ConcreteDropout, bernoulli_entropy, concrete_mask, concrete_regularization,
                      concrete_regularizer, dropout_probabilities, gaussian_mc_log_likelihood,
                      predictive_moments)
from .mbrl import MBRL

_SIZES = [10, 25, 50, 100, 1000, 10000]  # reference notebook
_EPOCHS = [2000, 1000, 500, 200, 20, 2]  # its epochs per size (1000-2000 Adam steps each)
_SYN = {"sizes": _SIZES, "epochs": _EPOCHS, "lengthscale": 1e-4, "batch": 20, "val_size": 1000,
        "samples": 20, "lr": 1e-3}
_UCI = {"sets": ["boston", "kin8nm", "wine-red"], "splits": 20, "width": 50, "depth": 2,
        "batch": 32, "lengthscale": 1e-2, "map_em_batch": 200, "control_p": 1e-6}
_UCI_FULL = dict(_UCI, epochs={"boston": 400, "kin8nm": 100, "wine-red": 400}, lr=1e-3,
                 samples=1000, map_em_sets=["boston", "kin8nm", "wine-red"],
                 map_em_epochs={"boston": 30, "kin8nm": 100, "wine-red": 30})
_BASELINES = [[0.0, 0.0], [0.1, 0.25], [0.2, 0.5]]  # our dropout grid (p_input, p_hidden)
_MNIST = {"depth": 3, "batch": 128, "lr": 1e-3, "lengthscale2": 1e-2, "baselines": _BASELINES,
          "reg_lengthscale2": [1e-4, 1.0]}
_SST = {"batch": 64, "lr": 1e-3}  # report: batch 64, Adam
# Nested by experiment name: each section is that experiment's config (reprobook.runner).
PROFILES = {
    # the whole chapter <= 4.5 min on 2 CPU cores: every experiment at smoke length
    "small": {
        "cd_synthetic": dict(_SYN, reps=2, width=64),
        "cd_uci": dict(_UCI, epochs={"boston": 100, "kin8nm": 8, "wine-red": 30}, lr=3e-3,
                    samples=50, map_em_sets=["boston"], map_em_epochs={"boston": 30}),
        "cd_mnist": dict(_MNIST, sizes=[1000, 2000, 4000], width=128, epochs=2, val=2000,
                      test=2000),
        "cd_mnist_spatial": {"train": 1500, "test": 1000, "epochs": 2, "channels": [4, 8], "hidden": 64,
                    "batch": 128, "lr": 1e-3},
        "cd_sst": dict(_SST, emb=32, hidden=32, epochs=2, batch=256),
        "cd_rl": {"episodes": 20, "seeds": 2, "max_steps": 200},
        "cd_mbrl": MBRL["small"],
    },
    # the most informative run in ~90 min of a 2-core CPU: UCI at the reference lengths, the
    # 3 x 512 MLP on up to 50k images for 10 epochs, SST at the report's sizes for 10 epochs,
    # REINFORCE for 500 episodes x 3 seeds, the model-based agent over 8 stages; the spatial
    # net only as a smoke run (its claims need 60k images x 20 epochs: `full`)
    "medium": {
        "cd_synthetic": dict(_SYN, reps=3, width=512),
        "cd_uci": dict(_UCI_FULL, samples=100),
        "cd_mnist": dict(_MNIST, sizes=[10000, 25000, 50000], width=512, epochs=10, val=10000,
                      test=10000),
        "cd_mnist_spatial": {"train": 5000, "test": 5000, "epochs": 3, "channels": [32, 64],
                    "hidden": 128, "batch": 128, "lr": 1e-3},
        "cd_sst": dict(_SST, emb=100, hidden=256, epochs=10),
        "cd_rl": {"episodes": 500, "seeds": 3, "max_steps": 200},
        "cd_mbrl": MBRL["medium"],
    },
    # paper / report scale (a GPU is welcome)
    "full": {
        "cd_synthetic": dict(_SYN, reps=3, width=1024),
        "cd_uci": _UCI_FULL,
        "cd_mnist": dict(_MNIST, sizes=[5000, 10000, 20000, 30000, 40000, 50000], width=512,
                      epochs=100, val=10000, test=10000),
        "cd_mnist_width": {"widths": [128, 256, 512, 1024, 2048], "n": 50000, "epochs": 100},
        "cd_mnist_spatial": {"train": 60000, "test": 10000, "epochs": 20, "channels": [32, 64],
                    "hidden": 128, "batch": 128, "lr": 1e-3},
        "cd_sst": dict(_SST, emb=100, hidden=256, epochs=20),
        "cd_rl": {"episodes": 1000, "seeds": 10, "max_steps": 200},
        "cd_mbrl": MBRL["full"],
    },
}

__all__ = ["PROFILES", "ConcreteDropout", "bernoulli_entropy", "concrete_mask",
           "concrete_regularization", "concrete_regularizer", "dropout_probabilities",
           "gaussian_mc_log_likelihood", "predictive_moments"]
