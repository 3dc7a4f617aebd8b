"""Argument checks shared by every public pgbook function.

Each helper raises ``ValueError`` with a message that names the argument and the problem,
so a reader who passes a wrong shape or an out-of-range constant learns what to fix.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch


def all_finite(x: torch.Tensor) -> bool:
    """True iff every entry of the floating tensor ``x`` is finite (no nan, no inf).

    Cheap enough for the networks' forward passes: one sum (nan and inf propagate into it)
    and one ``item``; only when the sum is not finite are the entries checked one by one (a
    sum of finite values can overflow to inf).
    Inside ``torch.func.vmap`` values cannot be read (``item`` is not batchable): there the
    check is skipped and True returned, so the networks stay usable under vmap (chapter 5).
    """
    try:
        total = x.detach().sum().item()
    except RuntimeError:  # a batched tensor inside torch.func.vmap
        return True
    return math.isfinite(total) or bool(torch.isfinite(x).all())


def tensor(x, name: str, *, ndim: int | Sequence[int] | None = None, floating: bool = True,
           finite: bool = True, nonempty: bool = False) -> torch.Tensor:
    """Check that ``x`` is a tensor with the expected number of dimensions, dtype and values
    (finite if floating and ``finite``; at least one entry with ``nonempty``)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimension(s), "
                             f"got shape {tuple(x.shape)}")
    if floating and not x.is_floating_point():
        raise ValueError(f"{name} must have a floating dtype, got {x.dtype}")
    if nonempty and x.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    if finite and x.is_floating_point() and not all_finite(x):
        raise ValueError(f"{name} contains non-finite values (nan or inf)")
    return x


def int_tensor(x, name: str, *, ndim: int | Sequence[int] | None = None) -> torch.Tensor:
    """Check that ``x`` is a tensor of an integer dtype (not bool, not floating)."""
    tensor(x, name, ndim=ndim, floating=False)
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise ValueError(f"{name} must have an integer dtype, got {x.dtype}")
    return x


def mask(x, name: str, *, ndim: int | Sequence[int] | None = None) -> torch.Tensor:
    """Check that ``x`` is a bool tensor or holds only 0 and 1; return it as bool."""
    tensor(x, name, ndim=ndim, floating=False, finite=False)
    if x.dtype != torch.bool:
        if not bool(((x == 0) | (x == 1)).all()):
            raise ValueError(f"{name} must be boolean or hold only 0 and 1")
        x = x != 0
    return x


def same_shape(**tensors: torch.Tensor) -> None:
    """Check that all given tensors share one shape."""
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{n}{s}" for n, s in shapes.items())
        raise ValueError(f"shape mismatch: {listed} must all have the same shape")


def number(x, name: str, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False, finite: bool = True) -> float:
    """Check that ``x`` is a finite real number in the interval given by ``low``/``high``.

    Accepted: ints, floats, other ``numbers.Real`` (Fraction, NumPy and SymPy numbers) and
    one-element real torch tensors. Refused: bools (``True`` is not a discount), strings
    (``"0.2"`` is not a clip range), complex numbers, NaN and inf. With ``finite=False``,
    NaN and inf pass (a loss logged before the first update, an infinite error); inf is
    still held to ``low``/``high``, NaN is not.
    """
    if isinstance(x, torch.Tensor):
        if x.numel() != 1 or x.dtype == torch.bool or x.is_complex():
            raise ValueError(f"{name} must be a real number, got a tensor of shape "
                             f"{tuple(x.shape)} and dtype {x.dtype}")
        x = x.item()
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {type(x).__name__} {x!r}")
    x = float(x)
    if finite and not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x}")
    if low is not None and (x < low or (low_open and x == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {x}")
    if high is not None and (x > high or (high_open and x == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {x}")
    return x


def flag(x, name: str) -> bool:
    """Check that ``x`` is a bool (a string such as "no" would count as True)."""
    if not isinstance(x, bool):
        raise ValueError(f"{name} must be a bool (True or False), got {x!r}")
    return x


def choice(x, name: str, options):
    """Check that ``x`` is one of ``options`` (same type and value: 1 is not True, "1" not
    1); returns it."""
    if not any(type(x) is type(o) and x == o for o in options):
        raise ValueError(f"{name} must be one of {tuple(options)}, got {x!r}")
    return x


def generator(x, name: str = "generator"):
    """Check that ``x`` is None or a ``torch.Generator``."""
    if x is not None and not isinstance(x, torch.Generator):
        raise ValueError(f"{name} must be a torch.Generator or None, got {type(x).__name__}")
    return x


def index(x, n: int, name: str) -> int:
    """Check that ``x`` is an integer in [0, n)."""
    if isinstance(x, bool) or not isinstance(x, numbers.Integral) or not 0 <= x < n:
        raise ValueError(f"{name} must be an integer in [0, {n}), got {x!r}")
    return int(x)


def positive_int(x, name: str, *, minimum: int = 1) -> int:
    """Check that ``x`` is an integer >= ``minimum``."""
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {type(x).__name__} {x!r}")
    x = int(x)
    if x < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {x}")
    return x


# ---- SymPy arguments (pgbook.symbolic); SymPy is imported only when these run ----------------

def expression(x, name: str, *, scalar: bool = True):
    """``x`` as a SymPy object; ``ValueError`` naming ``name`` for strings (SymPy would parse
    "low" into a new symbol), objects SymPy cannot read, and matrices where a scalar belongs."""
    import sympy as sp

    if isinstance(x, str):
        raise ValueError(f"{name} must be a SymPy expression or a number, got the string {x!r}")
    try:
        value = sp.sympify(x, strict=True)
    except (sp.SympifyError, TypeError):
        raise ValueError(f"{name} must be a SymPy expression or a number, got "
                         f"{type(x).__name__}") from None
    if scalar and (not isinstance(value, sp.Expr) or isinstance(value, sp.MatrixBase)):
        raise ValueError(f"{name} must be a scalar SymPy expression, got {type(value).__name__}")
    return value


def expressions(**values) -> list:
    """:func:`expression` of each keyword argument, in order."""
    return [expression(x, name) for name, x in values.items()]


def expression_vector(x, name: str, *, min_len: int = 1) -> list:
    """A SymPy vector (a 1-column or 1-row Matrix) or a sequence of expressions, as a list."""
    import sympy as sp

    if isinstance(x, sp.MatrixBase):
        if min(x.shape) != 1:
            raise ValueError(f"{name} must be a vector, got a matrix of shape {x.shape}")
        x = list(x)
    if isinstance(x, str) or not isinstance(x, Sequence) or len(x) < min_len:
        raise ValueError(f"{name} must be a sequence of at least {min_len} SymPy expressions")
    return [expression(e, name) for e in x]


def symbol(x, name: str):
    """Check that ``x`` is a SymPy Symbol."""
    import sympy as sp

    if not isinstance(x, sp.Symbol):
        raise ValueError(f"{name} must be a SymPy Symbol, got {x!r}")
    return x


def clip_bounds(eps, eps_high=None) -> tuple[float, float]:
    """The clip range [1 - eps, 1 + eps_high] of PPO and GRPO: eps in (0, 1), eps_high > 0
    (None: eps_high = eps, the symmetric clip). DAPO's clip-higher is eps = 0.2, eps_high = 0.28.
    Returns (eps, eps_high) as floats."""
    eps = number(eps, "eps", low=0.0, high=1.0, low_open=True, high_open=True)
    if eps_high is None:
        return eps, eps
    return eps, number(eps_high, "eps_high", low=0.0, low_open=True)
