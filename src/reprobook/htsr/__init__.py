"""Heavy-tailed self-regularization (Martin & Mahoney, ICML 2019, arXiv 1901.08276; long
version arXiv 1810.01075), reproduced after Pratama's report (2019): the spectra of weight
matrices read with random matrix theory.

The package:

- :mod:`.spectra` -- the ESD of ``W^T W`` (conv layers: the authors' per-slice ESDs), stable
  rank, rank loss, KS distance between two ESDs;
- :mod:`.mp` -- the Marchenko-Pastur law (report eq. (1)) and its fit, spikes above the
  Tracy-Widom edge, the MP soft rank;
- :mod:`.powerlaw` -- the power-law tail (report eq. (2)) and the best-fit distribution;
- :mod:`.phases` -- the 5+1 phases of the paper (its Table 1 and Fig. 2) as explicit rules
  (thresholds ours);
- :mod:`.analysis` -- :func:`analyze`: one row per layer of a model, state_dict or matrix;
- :mod:`.models` -- MiniAlexNet and LeNet5 as the authors built them
  (CalculatedContent/ImplicitSelfRegularization @ 4268440);
- :mod:`.experiments` -- LeNet5, the MiniAlexNet batch-size sweep and its fixed-steps control,
  the profiles, the summaries the ledger's claims read (registered experiments);
- :mod:`.pretrained` -- AlexNet and other pretrained networks (registered experiments);
- :mod:`.figures` -- the chapter's plots and tables;
- :mod:`.cli` -- ``python -m reprobook.htsr FILE``.

Units: eigenvalues are those of the unnormalised ``W^T W`` (what the authors' code and
WeightWatcher use) unless ``normalize=True`` asks for ``X = W^T W / N``. alpha, the stable
rank and the soft rank do not depend on this; sigma and lambda do.
"""
from .analysis import (LAYER_KEYS, LAYER_TYPES, _layer_values, analyze, describe, layer_values,
                       summary, time_analysis, weight_matrices)
from .cli import load_weights_file, main
from .experiments import (FC_SHAPES, PROFILES, fixed_steps_data, mass_above_edge,
                          minialexnet_data, spikes_pct, summarise_minialexnet, train_minialexnet)
from .figures import (fixed_steps_table, plot_alpha_histograms, plot_esd, plot_fixed_steps,
                      plot_sweep_esds, plot_sweep_metrics, plot_tail, speed_table, sweep_table)
from .models import (LeNet5, MiniAlexNet, accuracy, cifar_crops, classification_loss,
                     glorot_normal_keras_, mse_softmax_loss, train)
from .mp import MPFit, fit_mp, mp_density, mp_edges, mp_sv_density, triangular_kde
from .phases import PHASE_RULES, PHASES, normalize_phase, phase
from .powerlaw import PowerLawFit, best_distribution, fit_powerlaw, ks_scan
from .pretrained import (ALEXNET_FC, PRETRAINED, WeightsError, load_safetensors,
                         pretrained_weights)
from .spectra import Spectrum, esd, ks_distance, rank_loss, rank_tolerance, stable_rank

__all__ = [name for name in dir() if not name.startswith("_")] + ["_layer_values"]
