"""What every trainer in :mod:`pgbook.algos` does the same way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def isolated_run(seed: int, dtype: torch.dtype = torch.float32) -> Iterator[None]:
    """Run a trainer reproducibly, whatever the caller's global torch state.

    Inside: torch's global RNG is forked and seeded with ``seed`` (the caller's random stream is
    left untouched), and the default dtype is ``dtype``, so networks are built and trained the
    same way even when a chapter has switched to float64 for its exact checks. Both are
    restored on exit.
    """
    previous = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_default_dtype(dtype)
        try:
            yield
        finally:
            torch.set_default_dtype(previous)
