"""Argument checks shared by every public pgbook function.

Each helper raises ``ValueError`` with a message that names the argument and the problem,
so a reader who passes a wrong shape or an out-of-range constant learns what to fix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def tensor(x, name: str, *, ndim: int | Sequence[int] | None = None, floating: bool = True,
           finite: bool = True) -> torch.Tensor:
    """Check that ``x`` is a tensor with the expected number of dimensions, dtype and values."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimension(s), "
                             f"got shape {tuple(x.shape)}")
    if floating and not x.is_floating_point():
        raise ValueError(f"{name} must have a floating dtype, got {x.dtype}")
    if finite and x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains non-finite values (nan or inf)")
    return x


def same_shape(**tensors: torch.Tensor) -> None:
    """Check that all given tensors share one shape."""
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{n}{s}" for n, s in shapes.items())
        raise ValueError(f"shape mismatch: {listed} must all have the same shape")


def number(x, name: str, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False) -> float:
    """Check that ``x`` is a finite real number in the interval given by ``low``/``high``."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        try:
            x = float(x)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a real number, got {type(x).__name__}") from None
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x}")
    if low is not None and (x < low or (low_open and x == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {x}")
    if high is not None and (x > high or (high_open and x == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {x}")
    return x


def positive_int(x, name: str, *, minimum: int = 1) -> int:
    """Check that ``x`` is an integer >= ``minimum``."""
    if isinstance(x, bool) or not isinstance(x, int):
        raise ValueError(f"{name} must be an integer, got {type(x).__name__}")
    if x < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {x}")
    return x
