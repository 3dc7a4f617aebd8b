"""What every chapter calls: ``setup()`` first (one seed, one thread count, one dtype, one
figure style), and ``verdict()`` for the one visible line of each check.

Every chapter starts with ``pgbook.chapter.setup()``. The book's convention is float64 for every
tensor a chapter builds (its exact checks compare against rounding-level tolerances); the
trainers in :mod:`pgbook.algos` build and train their networks in float32 whatever the caller's
default (:func:`pgbook.algos.run.training_run`), so a chapter never converts by hand.
"""

from __future__ import annotations

import textwrap

import torch

from . import _validate as V
from . import seed_everything
from .checks import ErrorReport, IntervalReport
from .plot import use_style

__all__ = ["setup", "show", "verdict"]


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


def show(*reports: object, width: int = 86) -> None:
    """Print each check's full report (its ``str``), wrapped at ``width`` columns so it fits
    the book's code column; the hidden cell of a check shows it behind the verdict."""
    V.positive_int(width, "width")
    for report in reports:
        for line in str(report).splitlines() or [""]:
            print(textwrap.fill(line, width, subsequent_indent="    ") if line else line)


def verdict(claim: str | ErrorReport, holds: bool | ErrorReport | IntervalReport | None = None,
            detail: str = "") -> None:
    """Print the one line a reader sees for a check, ``✓ claim (detail)``, and fail loudly
    (``AssertionError``, the line starting with ✗) when the claim does not hold.

    ``claim`` is the statement checked: a string, or an :class:`~pgbook.checks.ErrorReport`
    (then ``holds`` is omitted; the claim is the report's name, the detail its number of
    cases). ``holds`` is a bool, an ``ErrorReport`` (its ``passed``) or an
    :class:`~pgbook.checks.IntervalReport` (its ``all_covered``; the detail then names the
    level and the number of samples). A negative control states what must fail, e.g.
    ``verdict("the inside-only indicator is rejected", not wrong_report.passed)``. The line
    holds no floating-point numbers unless ``detail`` puts them there, so it can be a checked
    output of nbval; the full report belongs in the (hidden) cell that computed it.
    """
    if isinstance(claim, ErrorReport):
        if holds is not None:
            raise ValueError("holds must be omitted when claim is an ErrorReport")
        claim, holds, detail = claim.name, claim.passed, detail or f"{claim.n_cases} cases"
    if not isinstance(claim, str) or not claim.strip():
        raise ValueError(f"claim must be a non-empty string or an ErrorReport, got {claim!r}")
    if not isinstance(detail, str):
        raise ValueError(f"detail must be a string, got {type(detail).__name__}")
    if isinstance(holds, ErrorReport):
        holds, detail = holds.passed, detail or f"{holds.n_cases} cases"
    elif isinstance(holds, IntervalReport):
        detail = detail or f"{holds.level:.0%} intervals, {holds.n_samples:,} samples"
        holds = holds.all_covered
    elif not isinstance(holds, bool):
        raise ValueError("holds must be a bool, an ErrorReport or an IntervalReport, got "
                         f"{type(holds).__name__}")
    line = f"{'✓' if holds else '✗'} {claim}" + (f" ({detail})" if detail else "")
    print(line)
    if not holds:
        raise AssertionError(line)
