"""Gradients explode - Deep networks are shallow (Philipp, Song & Carbonell, 2018, arXiv
1712.05577), reproduced after the report of Flynn, Cann & Tasker.

The package:

- :mod:`.models` -- the seven MLPs (ReLU, layer-/batch-ReLU, tanh, layer-/batch-tanh, SeLU),
  normalisation without parameters, the paper's initialisation (as the report describes it);
- :mod:`.kernels` -- the gradient scale coefficient GSC(k, 0) (paper's definition, quoted in
  report §2), pre-activation std and sign diversity, the per-layer growth rate of exploding
  gradients;
- :mod:`.depth` -- effective depth from operator-norm or GSC-weighted residual sizes
  (report §2), threshold ``tau`` a parameter;
- :mod:`.experiments` -- the profiles, Experiment 1 (Gaussian noise, paper Fig. 1) and its
  ablations, and the chapter's three registered experiments;
- :mod:`.cifar` -- Experiment 2, CIFAR-10 training on :func:`reprobook.train.fit` (paper Fig. 3);
- :mod:`.figures` -- the chapter's plots and tables.
"""
from .cifar import (DivideOnPlateau, StopWhenDiverged, cifar_cell, cifar_cells, cifar_tensors,
                    summarise_cifar, summarise_extras, train_cifar)
from .depth import (TAU, effective_depth, effective_depths, elementary_symmetric, gsc_weighted_rho,
                    layer_io_norms, operator_norm, weight_change)
from .experiments import (ARCHS_TRAINED, PROFILES, ablation_cells, gaussian_data, gpu_over_cpu,
                          matmul_flops, noise_cell, noise_cells, noise_replicate, summarise_ablation,
                          summarise_noise, time_matmul, time_report_scale)
from .figures import ablation_table, cifar_table, noise_table, plot_cifar, plot_noise, tau_table
from .kernels import (_act_backward, _act_forward, _cross_entropy_sum, _frozen, _norm_backward,
                      aggregate, cross_entropy_error, dot_error, fast_layer_stats, growth_rate,
                      gsc_curve, gsc_pointwise, kl_error, layer_stats, log_fit_r2, qm_norm,
                      quadratic_mean)
from .models import ACTS, ARCHS, MLP, Norm, make_mlp

__all__ = [name for name in dir() if not name.startswith("_")]
