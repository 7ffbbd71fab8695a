"""Profiles and notebook parameters, defined once and checked strictly.

Every chapter declares ``PROFILES = {"small": {...}, "medium": {...}, "full": {...}}`` in its
package. ``small`` runs the whole chapter in <= 5 minutes on 2 CPU cores (CI and nbval run
it); ``medium`` is the most informative run that fits in 90 minutes of that CPU; ``full`` is
the paper's scale (a GPU is welcome). Anything else is an error that lists the valid names.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import numpy as np
import torch

PROFILE_NAMES = ("small", "medium", "full")
NOTEBOOK_PARAMETERS = ("profile", "seed", "device")


class ParameterError(ValueError):
    """An unknown profile, parameter or device was asked for."""


def resolve_profile(profiles: dict, profile: str) -> dict:
    """Return the settings of ``profile`` or raise a ParameterError naming the valid ones."""
    if profile not in profiles:
        raise ParameterError(
            f"unknown profile {profile!r}; valid profiles: {', '.join(sorted(profiles))}"
        )
    return dict(profiles[profile])


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; ``cpu``/``cuda``/``cuda:N`` are taken as is."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ParameterError(f"unknown device {device!r}; use auto, cpu or cuda[:N]") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device {device!r} asked for, but CUDA is not available here")
    return dev


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def check_parameters(names: set[str], allowed=NOTEBOOK_PARAMETERS) -> None:
    """Fail if a notebook got a parameter it does not declare (papermill only warns)."""
    unknown = sorted(n for n in names if not n.startswith("_") and n not in allowed)
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join(unknown)}; valid parameters: {', '.join(allowed)}"
        )


@dataclass
class Run:
    """What a chapter needs to know about this execution."""

    chapter: str
    profile: str
    seed: int
    device: torch.device
    settings: dict = field(default_factory=dict)
    requested: str = ""  # the profile asked for; ``profile`` may be larger (committed evidence)

    def __getitem__(self, key):
        return self.settings[key]


def setup(chapter: str, profiles: dict, profile: str = "small", seed: int = 0,
          device: str = "auto", new_names: set[str] | None = None) -> Run:
    """Validate the notebook parameters, seed every RNG and return the run settings.

    ``new_names`` are the global names that appeared between the notebook's first cell
    and this call: the declared parameters plus whatever papermill injected.
    """
    if new_names is not None:
        check_parameters(new_names)
    settings = resolve_profile(profiles, profile)
    dev = resolve_device(device)
    seed_everything(int(seed))
    os.environ.setdefault("REPRO_PROFILE", profile)
    return Run(chapter=chapter, profile=profile, seed=int(seed), device=dev, settings=settings)
