"""Xu et al., "AutoLoss: Learning Discrete Schedules for Alternate Optimization" (ICLR 2019,
arXiv 1810.02442), and the reproducibility report of Kothari, Liu & Lavrov.

``kernels`` holds the data generators, the quadratic task model and L1 loss, the controller with
REINFORCE and its baseline, the rewards, the hand-crafted schedules and the inception score;
``engine`` the lockstep engine (many task models and controllers as one tensor program, official
protocol); ``regression`` and ``classification`` its two tasks; ``sensitivity`` the controller
settings and feature ablations; ``experiments`` the chapter's registered runs (``autoloss_regression``: Table 1
regression row, Fig. 1 sweep, Table 3, sensitivity; ``autoloss_classification``: Table 1
classification row, report variants, frozen random controllers; ``autoloss_gan``); ``gan`` the MNIST DCGAN with
fixed D:G schedules and the online controller (paper §4.4, §5.2); ``figures`` the plots.
Paper: arXiv 1810.02442 v1 (section numbers are v1's). Official code: safpla/AutoLossRelease @ c3cdf97.
"""
from .kernels import (L1_ACTION, MSE_ACTION, Controller, EMABaseline, final_reward,
                      handcrafted_action, inception_score, l1_penalty, make_classification_data,
                      make_regression_data, policy_loss, quadratic_predict, reinforce_step,
                      segment_reward, shaping_reward)

from .experiments import CLASSIFICATION, REGRESSION  # noqa: E402
from .gan import GAN, schedule_actions  # noqa: E402

# Nested by experiment name: each section is that experiment's config (reprobook.runner);
# autoloss_sign keeps its own (exp_sign.PROFILES).
PROFILES = {name: {"autoloss_regression": REGRESSION[name],
                   "autoloss_classification": CLASSIFICATION[name], "autoloss_gan": GAN[name]}
            for name in ("small", "medium", "full")}

__all__ = ["PROFILES", "L1_ACTION", "MSE_ACTION", "Controller", "EMABaseline", "final_reward",
           "handcrafted_action", "inception_score", "l1_penalty", "make_classification_data",
           "make_regression_data", "policy_loss", "quadratic_predict", "reinforce_step",
           "segment_reward", "shaping_reward", "GAN",
           "schedule_actions"]
