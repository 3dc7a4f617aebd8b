"""The gradient table's framework: a :class:`Row`, the :class:`Setting` its expectation lives in,
:func:`check` and :func:`render` (chapter 12, ``book/12_unified``).

Every stochastic-policy line of the source's closing table (section 1.8) has the form

    grad J(theta) = E[ sum_t grad_theta log pi_theta(a_t | s_t) * Psi_t ]        (eq-12-unified)

with its own weight Psi. A :class:`Row` holds one line: the objective J the algorithm
differentiates, the weight Psi, the :class:`Setting` that draws random float64 inputs and writes
E[sum grad log pi * Psi] with a closed-form score or an exact expectation, and the SymPy
identity of the chapter. :func:`check` compares autograd of J with that expression on every
input (:func:`pgbook.checks.compare_values`); :func:`render` prints the checked table as
fixed-width text (the full report), :func:`pgbook.table.verdicts.verdict_tables_html` draws it
as HTML for the book page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .. import _validate as V
from ..checks import ErrorReport, compare_values

__all__ = ["Row", "RowReport", "Setting", "check", "render"]


@dataclass(frozen=True)
class Setting:
    """Where a row's expectation lives: random inputs and E[sum grad log pi * Psi].

    ``cases(generator, n)`` returns n random cases and then the setting's fixed edge cases, each
    a tuple whose first entry is the float64 parameter theta that autograd differentiates.
    ``score_weighted(psi, *case)`` returns E[sum_t grad_theta log pi * Psi] (or its sample mean),
    shaped like theta, with the closed-form score or an exact expectation.
    """

    name: str
    description: str
    cases: Callable[[torch.Generator, int], list[tuple]]
    score_weighted: Callable[..., torch.Tensor]


@dataclass(frozen=True)
class Row:
    """One line of the gradient table.

    ``key``: short id; ``algorithm``; ``form``: "source" (the source's Psi as written), "book"
    (the corrected or completed Psi), "source = book", or another reading; ``psi``: the weight
    this row checks, in plain text, and ``against``: the J whose gradient it is compared with;
    ``psi_source``: the source's weight as written. ``objective(*case)``: scalar J, autograd in
    case[0]; ``weight(*case)``: Psi (None for rows without a weight, which give
    ``closed_form(*case)`` instead). ``holds``: whether the book claims the identity (the
    source's imprecise forms are expected to fail). ``sympy()``: True if the chapter's SymPy
    identity for this row has residual exactly 0, False if the residual is provably non-zero
    (None: no SymPy check). ``atol``, ``rtol``: the tolerance of the autograd check.
    ``reference(*case)``: Psi written out again from the row's formula with plain torch on the
    case (no pgbook objective or weight). When given, :func:`check` also compares autograd of J
    with E[sum grad log pi * reference] and ``weight`` with ``reference``, so a mistake made
    in both the objective and its weight (a flipped KL sign in ``grpo`` and ``grpo_weight``)
    fails the row instead of agreeing with itself.
    """

    key: str
    algorithm: str
    form: str
    psi: str
    against: str
    psi_source: str
    chapter: str
    setting: Setting
    objective: Callable[..., torch.Tensor]
    weight: Callable[..., torch.Tensor] | None
    holds: bool
    sympy: Callable[[], bool] | None = None
    closed_form: Callable[..., torch.Tensor] | None = None
    atol: float = 1e-11
    rtol: float = 0.0
    reference: Callable[..., torch.Tensor] | None = None

    def gradient(self, *case) -> torch.Tensor:
        """The right-hand side: E[sum grad log pi * Psi] in the row's setting (or the closed
        form of a row without a weight). Some settings differentiate inside (the exact
        expectation of :meth:`~pgbook.mdp.TabularMDP.expected_score_weighted`, grad_a Q), so
        this runs with grad enabled; the result is detached."""
        with torch.enable_grad():
            if self.weight is None:
                return self.closed_form(*case).detach()
            return self.setting.score_weighted(self.weight(*case), *case).detach()


@dataclass(frozen=True)
class RowReport:
    """The result of :func:`check`: the autograd comparison (``error``; ``max_rel_err`` over the
    cases with a non-negligible gradient) and the SymPy verdict of a row."""

    row: Row
    error: ErrorReport
    max_rel_err: float
    sympy: bool | None

    @property
    def holds(self) -> bool:
        """True if autograd of J matched E[grad log pi * Psi] on every case."""
        return self.error.passed

    @property
    def as_claimed(self) -> bool:
        """True if the numbers (and SymPy) agree with what the book claims about the row."""
        return self.holds == self.row.holds and self.sympy in (None, self.row.holds)

    def __str__(self) -> str:
        return render([self])


def check(row: Row, n: int = 200, *, seed: int = 0, sympy: bool = True) -> RowReport:
    """Check one row of (eq-12-unified): grad_theta J (autograd of ``row.objective`` in case[0])
    against ``row.gradient`` = E[sum_t grad log pi * Psi_t] on ``n`` random float64 cases
    (seeded) plus the setting's edge cases (:func:`pgbook.checks.compare_values`), and the
    SymPy identity if ``sympy``. A row with a ``reference`` is also compared with it (see
    :class:`Row`).

    Returns a :class:`RowReport`; raises nothing when the identity fails (a row of the source's
    form is expected to fail): compare ``report.holds`` with ``row.holds``, or read
    ``report.as_claimed``. The relative error is taken over the cases whose gradient is not
    negligible (max entry >= 1e-8): at nearly deterministic policies the gradient is ~1e-17 and
    both sides are rounding noise.
    """
    if not isinstance(row, Row):
        raise ValueError(f"row must be a table.Row, got {type(row).__name__}")
    n = V.positive_int(n, "n")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(sympy, bool):
        raise ValueError(f"sympy must be a bool, got {sympy!r}")
    autograd, closed, reference_got, reference_want = [], [], [], []
    for case in row.setting.cases(torch.Generator().manual_seed(seed), n):
        theta = case[0].detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(row.objective(theta, *case[1:]), theta)
        autograd.append(grad)
        closed.append(row.gradient(*case))
        if row.reference is not None:  # against the formula, not only the library's weight
            with torch.enable_grad():
                psi = row.reference(*case).detach()
                by_hand = row.setting.score_weighted(psi, *case).detach()
            reference_got.append(torch.cat([grad.reshape(-1), row.weight(*case).reshape(-1)]))
            reference_want.append(torch.cat([by_hand.reshape(-1), psi.reshape(-1)]))
    error = compare_values(autograd, closed, name=row.key, atol=row.atol, rtol=row.rtol,
                           verbose=False, raise_on_fail=False)
    if reference_got:  # report the worse of the two comparisons, case by case the same inputs
        by_hand = compare_values(reference_got, reference_want, name=f"{row.key} (Psi by hand)",
                                 atol=row.atol, rtol=row.rtol, verbose=False,
                                 raise_on_fail=False)
        if not by_hand.passed or (error.passed and by_hand.max_abs_err > error.max_abs_err):
            error = by_hand
    rel = [((a - e).abs().max() / e.abs().max()).item()
           for a, e in zip(autograd, closed, strict=True) if e.abs().max() >= 1e-8]
    verdict = row.sympy() if (sympy and row.sympy is not None) else None
    return RowReport(row, error, max(rel, default=0.0), verdict)


def _bucket(x: float, bound: float) -> str:
    """A deterministic rendering: '< bound' below it, else two significant digits."""
    return f"< {bound:.0e}" if x < bound else f"{x:.2g}"


def render(reports: list[RowReport]) -> str:
    """The gradient table as fixed-width text with rounded errors (deterministic for nbval),
    narrow enough for a book page (about 80 characters).

    Rows are grouped under their algorithm. Each row takes two lines: its key, form, number of
    cases, max abs and rel error of grad J - E[sum grad log pi * Psi] (below the row's
    tolerance shown as '< tol'), the autograd verdict (with the number of failing cases), the
    SymPy residual (0, != 0, or -) and whether all of it is what the book claims ('yes'/'NO');
    then the weight Psi and the J it is the gradient of.
    """
    if (not isinstance(reports, list | tuple) or not reports
            or not all(isinstance(r, RowReport) for r in reports)):
        raise ValueError("reports must be a non-empty list of RowReport (from check)")
    head = ("row", "form", "n", "abs err", "rel err", "autograd", "SymPy", "claimed")
    cells = []
    for rep in reports:
        r, e = rep.row, rep.error
        verdict = "holds" if rep.holds else f"fails {e.n_failed}/{e.n_cases}"
        sym = {None: "-", True: "0", False: "!= 0"}[rep.sympy]
        cells.append((r.key, r.form, str(e.n_cases), _bucket(e.max_abs_err, max(r.atol, 1e-12)),
                      _bucket(rep.max_rel_err, 1e-8), verdict, sym,
                      "yes" if rep.as_claimed else "NO"))
    widths = [max(len(x[i]) for x in [head, *cells]) for i in range(len(head))]
    fmt = "  " + " ".join(f"{{:{'>' if i in (2, 3, 4) else '<'}{w}}}"
                          for i, w in enumerate(widths))
    out = [fmt.format(*head), "  " + " ".join("-" * w for w in widths)]
    indent = " " * (3 + widths[0])
    group = None
    for rep, cell in zip(reports, cells, strict=True):
        if rep.row.algorithm != group:
            group = rep.row.algorithm
            out.append(group)
        out.append(fmt.format(*cell))
        out.append(f"{indent}Ψ = {rep.row.psi};  grad of {rep.row.against}")
    return "\n".join(line.rstrip() for line in out)
