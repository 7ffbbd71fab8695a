"""The one training loop of the project: minibatch SGD over in-memory tensors.

Every chapter trains through :func:`fit`. The data set lives on the device as tensors; each
epoch draws one seeded permutation; per-step losses are summed on the device (one host
synchronisation per epoch, none per step); measurements are taken by an ``on_epoch``
callback; learning-rate schedules and early stopping are small objects; a checkpoint saved
after every epoch lets an interrupted run resume exactly where it stopped (model, optimiser,
schedules, early-stopping state, history and the global RNG state).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from .results import load_checkpoint, save_checkpoint


def default_shuffle_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch``'s permutation (the rule of the first HT-SR loop)."""
    return seed * 100003 + epoch


# ----------------------------------------------------------------------------- schedules
class Schedule:
    """A learning-rate rule. ``epoch_end`` runs after every epoch, ``step_end`` after every
    optimiser step; both change ``opt.param_groups[*]["lr"]`` in place."""

    def epoch_end(self, epoch: int, opt, hist: dict) -> None:  # noqa: D401
        pass

    def step_end(self, step: int, opt) -> None:
        pass

    def state_dict(self) -> dict:
        return dict(self.__dict__)

    def load_state_dict(self, state: dict) -> None:
        self.__dict__.update(state)


def _scale_lr(opt, factor: float) -> None:
    for group in opt.param_groups:
        group["lr"] *= factor


@dataclass
class EpochDecay(Schedule):
    """``lr <- gamma * lr`` after every epoch (HT-SR's Keras schedule, gamma = 0.95)."""

    gamma: float

    def epoch_end(self, epoch, opt, hist):
        _scale_lr(opt, self.gamma)


@dataclass
class StepDecay(Schedule):
    """``lr <- gamma * lr`` when the epoch (``unit="epoch"``) or the optimiser step
    (``unit="step"``) count reaches each milestone (DropMax: x0.1 at 1/3 and 2/3 of the steps)."""

    milestones: Sequence[int]
    gamma: float = 0.1
    unit: str = "epoch"

    def __post_init__(self):
        if self.unit not in ("epoch", "step"):
            raise ValueError(f"StepDecay unit must be 'epoch' or 'step', not {self.unit!r}")
        self.milestones = sorted(int(m) for m in self.milestones)

    def epoch_end(self, epoch, opt, hist):
        if self.unit == "epoch" and epoch + 1 in self.milestones:
            _scale_lr(opt, self.gamma)

    def step_end(self, step, opt):
        if self.unit == "step" and step + 1 in self.milestones:
            _scale_lr(opt, self.gamma)


@dataclass
class Plateau(Schedule):
    """``lr <- factor * lr`` after ``patience`` epochs without a new best of ``metric``
    (GSC report: divide by 3 when the training error stopped falling)."""

    metric: str = "loss"
    factor: float = 1 / 3
    patience: int = 5
    mode: str = "min"
    best: float | None = None
    wait: int = 0

    def epoch_end(self, epoch, opt, hist):
        value = float(hist[self.metric][-1])
        if _better(value, self.best, self.mode):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            _scale_lr(opt, self.factor)
            self.wait = 0


def _better(value: float, best: float | None, mode: str) -> bool:
    if value != value:  # NaN is never better
        return False
    return best is None or (value < best if mode == "min" else value > best)


@dataclass
class EarlyStopping:
    """Stop when ``metric`` (a key of ``hist``, e.g. an ``on_epoch`` measurement) has not
    improved for ``patience`` epochs (``None``: never stop, only keep the best weights).
    With ``restore_best`` the model ends with the weights of its best epoch."""

    metric: str
    mode: str = "min"
    patience: int | None = None
    restore_best: bool = True
    best: float | None = None
    best_epoch: int | None = None
    best_state: dict | None = field(default=None, repr=False)

    def update(self, epoch: int, model, hist: dict) -> bool:
        """Record this epoch; return True when training should stop."""
        value = float(hist[self.metric][-1])
        if _better(value, self.best, self.mode):
            self.best, self.best_epoch = value, epoch
            self.best_state = copy.deepcopy(model.state_dict())
        return self.patience is not None and epoch - (self.best_epoch or 0) >= self.patience

    def state_dict(self) -> dict:
        return dict(self.__dict__)

    def load_state_dict(self, state: dict) -> None:
        self.__dict__.update(state)


# ----------------------------------------------------------------------------- the loop
def _as_list(schedule) -> list:
    if schedule is None:
        return []
    return list(schedule) if isinstance(schedule, (list, tuple)) else [schedule]


def fit(model, tensors: Sequence[torch.Tensor], loss_fn: Callable, opt, *, epochs: int,
        batch: int, seed: int = 0, device="cpu", schedule=None,
        on_epoch: Callable | None = None, on_step: Callable | None = None,
        early_stopping: EarlyStopping | None = None, checkpoint: Path | str | None = None,
        progress: Callable | None = None,
        shuffle_seed: Callable[[int, int], int] = default_shuffle_seed) -> dict:
    """Train ``model`` for ``epochs`` epochs of minibatches of ``batch`` rows of ``tensors``.

    ``loss_fn(model, *batch_tensors)`` returns the scalar loss, or ``(loss, logs)`` with
    ``logs`` a dict of scalar tensors; ``hist[name]`` is then the size-weighted mean of each
    over the epoch. ``on_epoch(epoch, model) -> dict`` adds measurements to ``hist``.
    Returns the history: ``loss``, the logs, ``lr``, ``epoch_s``, the measurements,
    ``epochs_run``, ``best_epoch`` and ``stopped_early``.
    """
    if batch < 1 or epochs < 0:
        raise ValueError(f"batch must be >= 1 and epochs >= 0 (got batch={batch}, epochs={epochs})")
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError("fit: all tensors must have the same length")
    schedules = _as_list(schedule)
    hist: dict = {"loss": [], "lr": [], "epoch_s": []}
    start, step = 0, 0
    ck = load_checkpoint(Path(checkpoint)) if checkpoint is not None else None
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        for s, state in zip(schedules, ck["schedules"]):
            s.load_state_dict(state)
        if early_stopping is not None and ck.get("early_stopping") is not None:
            early_stopping.load_state_dict(ck["early_stopping"])
        torch.set_rng_state(ck["rng"])
        hist, start, step = ck["hist"], ck["epoch"], ck["step"]
    model.to(device).train()
    data = [t.to(device) for t in tensors]  # the whole set on the device: no per-batch copies
    stopped = hist.get("stopped_early", False)
    epochs_iter = range(start, epochs) if not stopped else range(0)
    for epoch in (progress(epochs_iter) if progress else epochs_iter):
        t0 = time.perf_counter()
        g = torch.Generator().manual_seed(shuffle_seed(seed, epoch))
        perm = torch.randperm(n, generator=g).to(device)
        total = torch.zeros((), device=device, dtype=torch.float64)
        sums: dict[str, torch.Tensor] = {}
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            out = loss_fn(model, *(t[idx] for t in data))
            loss, logs = out if isinstance(out, tuple) else (out, {})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            w = len(idx)
            total += loss.detach().double() * w  # summed on the device: no host sync per step
            for k, v in logs.items():
                sums[k] = sums.get(k, 0) + v.detach().double() * w
            if on_step is not None:
                on_step(step, loss.detach())
            for s in schedules:
                s.step_end(step, opt)
            step += 1
        hist["loss"].append(total.item() / n)
        for k, v in sums.items():
            hist.setdefault(k, []).append(float(v) / n)
        hist["lr"].append(opt.param_groups[0]["lr"])
        if on_epoch is not None:
            for k, v in (on_epoch(epoch, model) or {}).items():
                hist.setdefault(k, []).append(v)
            model.train()  # the callback may have switched to eval mode
        for s in schedules:
            s.epoch_end(epoch, opt, hist)
        stop = early_stopping.update(epoch, model, hist) if early_stopping is not None else False
        hist["epoch_s"].append(time.perf_counter() - t0)
        hist["stopped_early"] = bool(stop)
        if checkpoint is not None:
            save_checkpoint(Path(checkpoint), {
                "model": model.state_dict(), "opt": opt.state_dict(), "hist": hist,
                "epoch": epoch + 1, "step": step, "schedules": [s.state_dict() for s in schedules],
                "early_stopping": early_stopping.state_dict() if early_stopping else None,
                "rng": torch.get_rng_state()})
        if stop:
            break
    if early_stopping is not None and early_stopping.restore_best and early_stopping.best_state:
        model.load_state_dict(early_stopping.best_state)
    hist["epochs_run"] = len(hist["loss"])
    hist["best_epoch"] = early_stopping.best_epoch if early_stopping is not None else None
    hist.setdefault("stopped_early", False)
    return hist
