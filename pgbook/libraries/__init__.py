r"""The libraries readers train with, called on the book's inputs (the appendix).

One module per library, each importing its library only when called, so that ``import
pgbook`` never needs them (``pip install pgbook[libraries]``; requirements.txt pins the
versions the appendix was checked with):

* :mod:`pgbook.libraries.sb3`: Stable-Baselines3's ``RolloutBuffer`` GAE, its
  ``collect_rollouts`` time-limit bootstrap, and the gradient of ``PPO.train()``;
* :mod:`pgbook.libraries.sb3_trpo`: sb3-contrib's TRPO (conjugate gradient, Hessian-vector
  product, the accepted step);
* :mod:`pgbook.libraries.trl_grpo`: TRL's ``GRPOTrainer`` loss for each ``loss_type`` on a
  language model built from a config (nothing is downloaded), and its group advantages;
* :mod:`pgbook.libraries.trl_logps`: the same loss code handed log-probabilities: the
  expected gradient of its KL term by enumeration, and the loss as a conformance
  ``loss_fn``.

Each function returns the library's numbers next to pgbook's reference on the same inputs,
with the max error, so that the appendix and ``tests/libraries`` assert the agreement and
show a wrong variant failing.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

__all__ = ["Agreement", "torch_defaults"]


@dataclass(frozen=True)
class Agreement:
    """A library's numbers next to pgbook's on the same inputs: ``max_error`` is
    max |library - pgbook| (entrywise), ``passed`` is max_error <= ``tolerance`` (the bound
    the comparison derives); ``extra`` holds further measured numbers, by name."""

    name: str
    library: torch.Tensor
    pgbook: torch.Tensor
    max_error: float
    tolerance: float
    extra: dict = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, library: torch.Tensor, pgbook: torch.Tensor, tolerance: float,
           **extra) -> Agreement:
        """The record of ``library`` against ``pgbook`` (same shape) under ``tolerance``."""
        error = (library - pgbook).abs().max().item()
        return cls(name, library.detach(), pgbook.detach(), error, float(tolerance), extra)

    @property
    def ratio(self) -> float:
        """The max error over the tolerance: passed iff <= 1 (0 for an exact match, inf for a
        nonzero error against a zero tolerance, e.g. a step scale of 0)."""
        if self.max_error == 0.0:
            return 0.0
        if self.tolerance <= 0.0:
            return math.inf
        return self.max_error / self.tolerance

    @property
    def passed(self) -> bool:
        return self.ratio <= 1.0

    def __str__(self) -> str:
        mark = "agrees" if self.passed else "DISAGREES"
        return (f"{self.name}: {mark}, max error {self.max_error:.1e} "
                f"(tolerance {self.tolerance:.1e})")


def torch_defaults(fn: Callable) -> Callable:
    """Run ``fn`` under torch's own default dtype, float32: the setting a library's user
    has, and the one the libraries are written for (SB3 builds its networks in the default
    dtype and feeds them float32 observations; TRL's ``nanstd`` divides its counts in it).
    The chapters switch the default to float64 (:func:`pgbook.chapter.setup`); the caller's
    default is restored afterwards. Every public function of this subpackage that calls a
    library is wrapped."""
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {type(fn).__name__}")

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float32)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_default_dtype(previous)

    return wrapper
