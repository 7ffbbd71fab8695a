"""The Concrete Dropout chapter's experiments in one namespace (``cdx`` in the notebook and
tests). The code lives by concern: ``models`` (stacked-weight regression nets, shared helpers),
``synthetic`` (paper §5.1), ``uci`` (paper §5.2, report §3.1), ``mnist`` (paper §5.3, report
§3.2: the 3 x 512 MLP, its tuned-dropout baseline, data sizes, regularisers, the spatial conv
net) ``sst`` (report §3.5.2: LSTM inputs on SST-2) ``rl`` (report §3.4: CartPole REINFORCE) and ``mbrl`` (paper §5.5:
model-based CartPole, p of a Concrete-dropout dynamics model vs the data collected).
"""
from .models import StackedRegressionNet, heteroscedastic_loss, mc_predict, spearman
from .synthetic import (LAYERS, NOTEBOOK_P, NOTEBOOK_STD, plot_synthetic, run_synthetic,
                        synthetic_data, synthetic_experiment)
from .mnist import (MNIST_LAYERS, SpatialConvNet, StackedMLPClassifier, convergence_epoch,
                    mnist_arrays, mnist_experiment, plot_mnist, run_mnist, run_mnist_width,
                    run_spatial)
from .mbrl import (MBRL_LAYERS, StackedDynamicsNet, mbrl_experiment, plot_mbrl, run_mbrl)
from .rl import (VARIANTS, cartpole_reset, cartpole_step, discounted_returns, plot_rl,
                 reinforce_loss, rl_experiment, run_cartpole)
from .sst import SSTClassifier, encode_sst, plot_sst, run_sst, sst_experiment, train_sst
from .uci import (MC_DROPOUT, UCI_LAYERS, UCI_SETS, grid_match_fraction, plot_uci, run_map_em, run_uci, uci_experiment,
                  uci_splits)

_spearman = spearman  # the name of phase 1

__all__ = ["MBRL_LAYERS", "StackedDynamicsNet", "mbrl_experiment", "plot_mbrl", "run_mbrl",
           "VARIANTS", "cartpole_reset", "cartpole_step", "discounted_returns", "plot_rl",
           "reinforce_loss", "rl_experiment", "run_cartpole", "MC_DROPOUT", "MNIST_LAYERS", "SSTClassifier", "SpatialConvNet", "StackedMLPClassifier",
           "convergence_epoch", "encode_sst", "grid_match_fraction", "mnist_arrays",
           "mnist_experiment", "plot_mnist", "plot_sst", "run_mnist", "run_mnist_width",
           "run_spatial", "run_sst", "sst_experiment", "train_sst", "LAYERS", "NOTEBOOK_P", "NOTEBOOK_STD", "StackedRegressionNet", "UCI_LAYERS",
           "UCI_SETS", "heteroscedastic_loss", "mc_predict", "plot_synthetic", "plot_uci",
           "run_map_em", "run_synthetic", "run_uci", "spearman", "synthetic_data",
           "synthetic_experiment", "uci_experiment", "uci_splits"]
