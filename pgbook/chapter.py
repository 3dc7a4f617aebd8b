"""The first call of every chapter: one seed, one thread count, one dtype, one figure style.

Every chapter starts with ``pgbook.chapter.setup()``. The book's convention is float64 for every
tensor a chapter builds (its exact checks compare against rounding-level tolerances); the
trainers in :mod:`pgbook.algos` build and train their networks in float32 whatever the caller's
default (:func:`pgbook.algos.run.training_run`), so a chapter never converts by hand.
"""

from __future__ import annotations

import torch

from . import _validate as V
from . import seed_everything
from .plot import use_style

__all__ = ["setup"]


def setup(seed: int = 0, *, threads: int = 1) -> torch.Generator:
    """Seed everything (:func:`pgbook.seed_everything`), use ``threads`` torch threads (1 by
    default: results then do not depend on the machine's core count), make float64 torch's
    default dtype and switch on the book's figure style (:func:`pgbook.plot.use_style`).
    Returns the seeded ``torch.Generator`` of :func:`pgbook.seed_everything`."""
    V.positive_int(threads, "threads")
    generator = seed_everything(seed)
    torch.set_num_threads(threads)
    torch.set_default_dtype(torch.float64)
    use_style()
    return generator
