"""Numeric checks used by every chapter: autograd against a closed form, exact value
comparisons, finite differences, and Monte-Carlo confidence intervals.

Each check returns a small report that prints the worst error it saw, and raises
``AssertionError`` (with the report) when a tolerance is broken, so a chapter cell both shows
its numbers and fails loudly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch

from . import _validate as V

__all__ = [
    "ErrorReport",
    "IntervalReport",
    "compare_gradients",
    "compare_values",
    "confidence_interval",
    "covers",
    "exact_log",
    "finite_difference_check",
]


@dataclass(frozen=True)
class ErrorReport:
    """The worst absolute and relative error over a set of compared cases.

    A case passes when ``max|actual - expected| <= atol + rtol * max|expected|`` (the
    ``torch.allclose`` rule taken over the whole case); the relative error of a case is
    ``max|actual - expected| / max|expected|`` (reported as 0 when both are exactly 0).
    """

    name: str
    n_cases: int
    max_abs_err: float
    max_rel_err: float
    atol: float
    rtol: float
    n_failed: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a string, got {type(self.name).__name__}")
        V.positive_int(self.n_cases, "n_cases", minimum=0)
        V.positive_int(self.n_failed, "n_failed", minimum=0)
        if self.n_failed > self.n_cases:
            raise ValueError(f"n_failed ({self.n_failed}) must be <= n_cases ({self.n_cases})")
        for field in ("max_abs_err", "max_rel_err", "atol", "rtol"):
            V.number(getattr(self, field), field, low=0.0, finite=not field.startswith("max"))

    @property
    def passed(self) -> bool:
        return self.n_failed == 0

    def __str__(self) -> str:
        verdict = "OK" if self.passed else f"FAILED in {self.n_failed} case(s)"
        return (f"{self.name}: {self.n_cases} cases, max abs err {self.max_abs_err:.1e}, "
                f"max rel err {self.max_rel_err:.1e} (atol {self.atol:.0e}, "
                f"rtol {self.rtol:.0e}): {verdict}")

    def rounded(self) -> str:
        """A deterministic one-liner for nbval: errors shown only as below/above tolerance."""
        return f"{self.name}: {self.n_cases} cases, {'OK' if self.passed else 'FAILED'}"


def _accumulate(name, pairs, atol, rtol, verbose, raise_on_fail) -> ErrorReport:
    atol = V.number(atol, "atol", low=0.0)
    rtol = V.number(rtol, "rtol", low=0.0)
    V.flag(verbose, "verbose")
    V.flag(raise_on_fail, "raise_on_fail")
    n = failed = 0
    max_abs = max_rel = 0.0
    for actual, expected in pairs:
        if actual.shape != expected.shape:
            raise ValueError(f"{name}: case {n} has shape {tuple(actual.shape)} but the "
                             f"expected value has shape {tuple(expected.shape)}")
        actual, expected = actual.detach().double(), expected.detach().double()
        err = (actual - expected).abs().max().item() if actual.numel() else 0.0
        err = err if math.isfinite(err) else math.inf  # a nan gradient is as wrong as it gets
        scale = expected.abs().max().item() if expected.numel() else 0.0
        rel = err / scale if scale > 0 else (0.0 if err == 0 else math.inf)
        if err > atol + rtol * scale:
            failed += 1
        max_abs, max_rel = max(max_abs, err), max(max_rel, rel)
        n += 1
    if n == 0:
        raise ValueError(f"{name}: no cases to compare")
    report = ErrorReport(name, n, max_abs, max_rel, atol, rtol, failed)
    if verbose:
        print(report)
    if raise_on_fail and not report.passed:
        raise AssertionError(str(report))
    return report


def compare_values(actual: Sequence[torch.Tensor] | torch.Tensor,
                   expected: Sequence[torch.Tensor] | torch.Tensor, *, name: str = "values",
                   atol: float = 1e-12, rtol: float = 1e-10, verbose: bool = True,
                   raise_on_fail: bool = True) -> ErrorReport:
    """Compare tensors (or equally long sequences of tensors, one per case).

    Every value must be finite: nan or inf can never be close to anything, so they are
    refused with ``ValueError`` (naming ``actual[i]`` or ``expected[i]``) rather than reported.
    """
    if isinstance(actual, torch.Tensor):
        actual, expected = [actual], [expected]
    for arg, values in (("actual", actual), ("expected", expected)):
        if isinstance(values, str) or not isinstance(values, Sequence):
            raise ValueError(f"{name}: actual and expected must be two tensors or two "
                             f"sequences of tensors, {arg} is a {type(values).__name__}")
        for i, value in enumerate(values):
            V.tensor(value, f"{name}: {arg}[{i}]")
    if len(actual) != len(expected):
        raise ValueError(f"{name}: {len(actual)} actual values but {len(expected)} expected")
    return _accumulate(name, zip(actual, expected, strict=True), atol, rtol, verbose,
                       raise_on_fail)


def compare_gradients(objective: Callable[..., torch.Tensor],
                      closed_form: Callable[..., torch.Tensor],
                      cases: Iterable[Sequence[torch.Tensor]], *, wrt: int = 0,
                      name: str = "autograd vs closed form", atol: float = 1e-12,
                      rtol: float = 1e-10, verbose: bool = True,
                      raise_on_fail: bool = True) -> ErrorReport:
    """Autograd of a scalar ``objective(*case)`` w.r.t. ``case[wrt]`` against
    ``closed_form(*case)``, over every case (each a tuple of float64 tensors).

    Give many random cases plus the edge cases that matter (ties, boundaries, zeros).
    """
    if not callable(objective) or not callable(closed_form):
        raise ValueError("objective and closed_form must be callables")

    def pairs():
        for i, case in enumerate(cases):
            if not isinstance(case, tuple | list) or not 0 <= wrt < len(case):
                raise ValueError(f"{name}: cases[{i}] must be a tuple with an argument at "
                                 f"position wrt={wrt}")
            args = list(case)
            x = V.tensor(args[wrt], f"{name}: cases[{i}][{wrt}]")
            if x.dtype != torch.float64:
                raise ValueError(f"{name}: cases[{i}][{wrt}] must be float64, got {x.dtype}")
            args[wrt] = x.detach().clone().requires_grad_(True)
            value = objective(*args)
            if not isinstance(value, torch.Tensor) or value.numel() != 1:
                raise ValueError(f"{name}: objective must return a scalar tensor")
            (grad,) = torch.autograd.grad(value, args[wrt])
            with torch.no_grad():
                expected = closed_form(*[a.detach() if isinstance(a, torch.Tensor) else a
                                         for a in args])
            yield grad, expected

    return _accumulate(name, pairs(), atol, rtol, verbose, raise_on_fail)


def finite_difference_check(fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor],
                            *, eps: float = 1e-6, atol: float = 1e-7, rtol: float = 1e-5) -> bool:
    """``torch.autograd.gradcheck`` on float64 inputs: autograd vs central differences."""
    if not callable(fn):
        raise ValueError(f"fn must be a callable, got {type(fn).__name__}")
    if isinstance(inputs, torch.Tensor) or not isinstance(inputs, Sequence) or not inputs:
        raise ValueError("inputs must be a non-empty sequence of float64 tensors")
    eps = V.number(eps, "eps", low=0.0, low_open=True)
    atol = V.number(atol, "atol", low=0.0)
    rtol = V.number(rtol, "rtol", low=0.0)
    for i, x in enumerate(inputs):
        V.tensor(x, f"inputs[{i}]")
        if x.dtype != torch.float64:
            raise ValueError(f"inputs[{i}] must be float64 for finite differences, got {x.dtype}")
    inputs = tuple(x.detach().clone().requires_grad_(True) for x in inputs)
    return torch.autograd.gradcheck(fn, inputs, eps=eps, atol=atol, rtol=rtol)


@dataclass(frozen=True)
class IntervalReport:
    """Per-component Monte-Carlo means, confidence half-widths and whether they cover."""

    mean: torch.Tensor
    half_width: torch.Tensor
    exact: torch.Tensor
    level: float
    n_samples: int

    def __post_init__(self) -> None:
        for field in ("mean", "half_width", "exact"):
            V.tensor(getattr(self, field), field)
        V.same_shape(mean=self.mean, half_width=self.half_width, exact=self.exact)
        V.number(self.level, "level", low=0.0, high=1.0, low_open=True, high_open=True)
        V.positive_int(self.n_samples, "n_samples", minimum=2)

    @property
    def covered(self) -> torch.Tensor:
        return (self.mean - self.exact).abs() <= self.half_width

    @property
    def all_covered(self) -> bool:
        return bool(self.covered.all())

    def __str__(self) -> str:
        lines = [f"{self.level:.0%} confidence intervals from {self.n_samples} samples:",
                 f"{'component':>10} {'exact':>10} {'estimate':>10} {'± half-width':>13} covers"]
        flat = zip(self.exact.flatten().tolist(), self.mean.flatten().tolist(),
                   self.half_width.flatten().tolist(), self.covered.flatten().tolist(),
                   strict=True)
        for i, (e, m, h, c) in enumerate(flat):
            lines.append(f"{i:>10} {e:>10.4f} {m:>10.4f} {h:>13.4f} {'yes' if c else 'NO'}")
        return "\n".join(lines)


def confidence_interval(samples: torch.Tensor, level: float = 0.99) -> tuple[torch.Tensor,
                                                                            torch.Tensor]:
    """Mean and normal-approximation half-width z_{(1+level)/2} * s / sqrt(n) over dim 0."""
    V.tensor(samples, "samples")
    level = V.number(level, "level", low=0.0, high=1.0, low_open=True, high_open=True)
    n = samples.shape[0] if samples.dim() else 0
    if n < 2:
        raise ValueError(f"samples must have at least 2 rows along dim 0, got {n}")
    z = torch.special.ndtri(torch.tensor((1 + level) / 2, dtype=torch.float64)).item()
    samples = samples.double()
    return samples.mean(0), z * samples.std(0, unbiased=True) / math.sqrt(n)


def covers(samples: torch.Tensor, exact: torch.Tensor, *, level: float = 0.99,
           simultaneous: bool = True, verbose: bool = True,
           raise_on_fail: bool = True) -> IntervalReport:
    """Check that the confidence interval of the mean of ``samples`` covers ``exact``.

    With ``simultaneous=True`` each of the k components gets level 1 - (1 - level)/k
    (Bonferroni), so *all* intervals cover together with probability >= ``level``.
    """
    V.tensor(exact, "exact")
    V.tensor(samples, "samples")
    level = V.number(level, "level", low=0.0, high=1.0, low_open=True, high_open=True)
    for flag, name in ((simultaneous, "simultaneous"), (verbose, "verbose"),
                       (raise_on_fail, "raise_on_fail")):
        V.flag(flag, name)
    if tuple(samples.shape[1:]) != tuple(exact.shape):
        raise ValueError(f"samples must have shape (n, *{tuple(exact.shape)}), "
                         f"got {tuple(samples.shape)}")
    k = max(exact.numel(), 1)
    per_component = 1 - (1 - level) / k if simultaneous else level
    mean, half = confidence_interval(samples, per_component)
    report = IntervalReport(mean, half, exact.double(), level, int(samples.shape[0]))
    if verbose:
        print(report)
    if raise_on_fail and not report.all_covered:
        raise AssertionError(f"exact value outside the confidence interval\n{report}")
    return report


def exact_log(values: torch.Tensor) -> torch.Tensor:
    """log of each entry of ``values``, nudged by a few ulps where needed so that
    ``torch.exp(exact_log(values)) == values`` holds exactly, entry by entry.

    For edge cases on a boundary: a log-ratio whose ratio is *exactly* 1 - eps or 1 + eps
    (chapters 8 and 9). Raises ``ValueError`` for an empty tensor, for entries that are not
    positive and finite, and for an entry with no such log within 64 ulps of ``torch.log``
    (exp is not onto the floats: some values are hit by no log at all).
    """
    V.tensor(values, "values", nonempty=True)
    if not bool((values > 0).all()):
        raise ValueError("values must be positive")
    out = torch.log(values)
    flat_out, flat_values = out.view(-1), values.reshape(-1)
    for i in range(flat_out.numel()):
        for _ in range(64):
            e = torch.exp(flat_out[i])
            if e == flat_values[i]:
                break
            toward = torch.tensor(math.inf if e < flat_values[i] else -math.inf, dtype=out.dtype)
            flat_out[i] = torch.nextafter(flat_out[i], toward)
        else:
            raise ValueError(f"no {out.dtype} log of {flat_values[i].item()!r} within 64 ulps")
    return out

