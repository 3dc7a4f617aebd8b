"""Piecewise identities, proved region by region (chapters 8 and 13): the clip, PPO-Clip's
objective, the source's 1_not-clip, and the prover they need.

A piecewise identity is true when it holds on every region of a partition. Each
:class:`Region` carries a parametrisation by positive symbols that lands inside the region
(checked) and covers it (the caller's claim), so that on it every branch of a ``Piecewise``,
``Min`` or ``Max`` is decided (:func:`decide_branches`) and the identity reduces to an exact
0 by :func:`pgbook.symbolic.simplify_difference`. :func:`prove_clip_derivative` proves
d/dr min(r A, clip(r, 1 - eps, 1 + eps_high) A) = 1_not-clip(r, A) A on the six open regions
and gives the one-sided derivatives at the two bounds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sympy as sp
from sympy.core.relational import Relational

from . import _validate as V
from .symbolic import simplify_difference

__all__ = ["ClipDerivativeProof", "Region", "assert_piecewise_identical", "clip", "decide_branches",
           "derivative_on_region", "not_clip", "one_sided_derivatives", "ppo_clip_objective",
           "ppo_clip_regions", "prove_clip_derivative"]


def clip(x, low, high) -> sp.Piecewise:
    """clip(x, low, high) = low if x < low, high if x > high, x otherwise (a Piecewise)."""
    x, low, high = V.expressions(x=x, low=low, high=high)
    if (high - low).is_negative:
        raise ValueError(f"high must be >= low, got low = {low}, high = {high}")
    return sp.Piecewise((low, x < low), (high, x > high), (x, True))


def ppo_clip_objective(r, A, eps, eps_high=None) -> sp.Expr:
    r"""One sample of the PPO-Clip objective (section 1.8; chapter 8), with the upper bound
    1 + eps_high (eps_high = eps unless given; DAPO's clip-higher, chapter 13):

        min( r A, clip(r, 1 - eps, 1 + eps_high) A ).
    """
    r, A, eps, top = V.expressions(r=r, A=A, eps=eps, eps_high=eps if eps_high is None
                                   else eps_high)
    return sp.Min(r * A, clip(r, 1 - eps, 1 + top) * A)


def not_clip(r, A, eps, eps_high=None) -> sp.Piecewise:
    r"""The source's indicator 1_not-clip(r, A) of section 1.8, as a Piecewise (chapter 8):

        1 if (A >= 0 and r <= 1 + eps_high) or (A < 0 and r >= 1 - eps), else 0,

    with eps_high = eps unless given. :func:`prove_clip_derivative` proves that d/dr
    :func:`ppo_clip_objective` = 1_not-clip * A on each of the six open regions, and gives
    the one-sided derivatives at the two bounds.
    """
    r, A, eps, top = V.expressions(r=r, A=A, eps=eps, eps_high=eps if eps_high is None
                                   else eps_high)
    condition = (sp.And(A >= 0, r <= 1 + top)) | (sp.And(A < 0, r >= 1 - eps))
    return sp.Piecewise((sp.Integer(1), condition), (sp.Integer(0), True))


@dataclass(frozen=True)
class Region:
    """A region of a piecewise identity, and a parametrisation that covers it.

    ``condition`` is the region in the original symbols (e.g. ``(A >= 0) & (r < 1 - eps)``);
    ``substitution`` maps each original symbol to an expression in new symbols whose SymPy
    assumptions (positive, nonnegative) make every point of the image satisfy ``condition``,
    and which reaches every point of the region as they range over their domains (that it is
    onto is the caller's claim; that it lands inside the region is checked).
    ``along`` is the new symbol that moves the variable one differentiates by (optional;
    needed by :func:`derivative_on_region`).
    """

    name: str
    condition: sp.Basic
    substitution: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)
    along: sp.Symbol | None = None

    def __post_init__(self) -> None:
        if not isinstance(V.expression(self.condition, "condition", scalar=False),
                          sp.logic.boolalg.Boolean) or not isinstance(self.substitution, Mapping):
            raise ValueError("condition must be a SymPy condition, substitution a mapping")
        _ = self.along is None or V.symbol(self.along, "along")


def _sign_candidates(expr: sp.Expr):
    yield expr
    yield sp.expand(expr)
    yield sp.factor(sp.together(expr))
    yield sp.simplify(expr)


def _decide_relational(rel: Relational):
    """True/False if the sign of lhs - rhs follows from the symbols' assumptions, else None."""
    if not isinstance(rel, Relational):
        return None
    for d in _sign_candidates(rel.lhs - rel.rhs):
        verdicts = {
            "==": (d.is_zero, d.is_nonzero), "!=": (d.is_nonzero, d.is_zero),
            ">=": (d.is_nonnegative, d.is_negative), "<=": (d.is_nonpositive, d.is_positive),
            ">": (d.is_positive, d.is_nonpositive), "<": (d.is_negative, d.is_nonnegative),
        }[rel.rel_op]
        if verdicts[0]:
            return sp.true
        if verdicts[1]:
            return sp.false
    return None


def decide_branches(expr, *, max_rounds: int = 10):
    """Rewrite Min/Max as Piecewise and settle every condition whose truth follows from the
    symbols' assumptions, so the Piecewise collapses to the branch that applies.

    A relation ``lhs < rhs`` is decided by the sign of ``lhs - rhs`` (tried as given,
    expanded, factored and simplified). Conditions that stay undecided are left in place.
    """
    expr = V.expression(expr, "expr", scalar=False)
    V.positive_int(max_rounds, "max_rounds")
    for _ in range(max_rounds):
        expr = expr.rewrite(sp.Piecewise) if expr.has(sp.Min, sp.Max) else expr
        decided = {}
        for rel in expr.atoms(Relational):
            verdict = _decide_relational(rel)
            if verdict is not None:
                decided[rel] = verdict
        if not decided:
            break
        expr = expr.xreplace(decided)
    return sp.piecewise_fold(expr) if expr.has(sp.Piecewise) else expr


def _check_regions(regions) -> list[Region]:
    if isinstance(regions, Region) or not isinstance(regions, Sequence) or not regions:
        raise ValueError("regions must be a non-empty sequence of Region objects")
    for region in regions:
        if not isinstance(region, Region):
            raise ValueError(f"regions must contain Region objects, got {type(region).__name__}")
    return list(regions)


def _in_region(expr, region: Region, what: str):
    """``expr`` on ``region``: substituted, with every branch decided (else AssertionError)."""
    inside = decide_branches(sp.sympify(region.condition).subs(region.substitution))
    if inside is not sp.true:
        raise AssertionError(f"{what}: the parametrisation of region '{region.name}' does not "
                             f"provably satisfy its condition {region.condition}; "
                             f"it reduces to {inside}")
    value = decide_branches(sp.sympify(expr).subs(region.substitution))
    if value.has(sp.Piecewise):
        raise AssertionError(f"{what}: cannot decide which branch applies in region "
                             f"'{region.name}'; left with {value}")
    return value


def assert_piecewise_identical(lhs, rhs, regions: Sequence[Region], *,
                               what: str = "identity") -> dict[str, sp.Expr]:
    """Prove ``lhs == rhs`` region by region (DESIGN.md section 4).

    On each :class:`Region`, both sides are substituted with its parametrisation, their
    branches are decided (:func:`decide_branches`), and the difference must simplify to
    exactly 0 (:func:`simplify_difference`). Returns ``{region name: residual}`` (all 0).
    Raises ``AssertionError`` naming the region, both sides there and the residual when the
    identity fails, when a parametrisation leaves its region, or when a branch cannot be
    decided. That the regions cover the domain is the caller's claim.
    """
    residuals = {}
    for region in _check_regions(regions):
        left, right = _in_region(lhs, region, what), _in_region(rhs, region, what)
        residual = simplify_difference(left, right)
        if residual != 0:
            raise AssertionError(f"{what} does not hold in region '{region.name}' "
                                 f"({region.condition}):\n  lhs = {left}\n  rhs = {right}\n"
                                 f"  lhs - rhs = {residual}")
        residuals[region.name] = residual
    return residuals


def derivative_on_region(expr, x: sp.Symbol, region: Region) -> sp.Expr:
    """d expr / dx on an open region, in the region's parameters.

    On the region ``expr`` equals a branch-free expression f(u, ...) once x = x(u, ...) is
    substituted (``u = region.along``), so by the chain rule d expr/dx = (df/du) / (dx/du).
    This differentiates the function itself on the region, not SymPy's branch-wise derivative
    of a Piecewise.
    """
    V.symbol(x, "x")
    if not isinstance(region, Region):
        raise ValueError(f"region must be a Region, got {type(region).__name__}")
    if region.along is None:
        raise ValueError(f"region '{region.name}' has no 'along' parameter")
    if x not in region.substitution:
        raise ValueError(f"region '{region.name}' does not parametrise {x}")
    f = _in_region(expr, region, f"d/d{x} on region '{region.name}'")
    dx = sp.diff(region.substitution[x], region.along)
    if simplify_difference(dx, 0) == 0:
        raise ValueError(f"{x} does not move along {region.along} in region '{region.name}'")
    return sp.simplify(sp.diff(f, region.along) / dx)


def one_sided_derivatives(expr, x: sp.Symbol, point, *, width,
                          substitution: Mapping[sp.Symbol, sp.Expr] | None = None
                          ) -> tuple[sp.Expr, sp.Expr]:
    """The left and right derivatives of ``expr`` in ``x`` at ``x = point``:

        left  = lim_{h -> 0+} (f(point) - f(point - h)) / h,
        right = lim_{h -> 0+} (f(point + h) - f(point)) / h.

    The step is h = width * k / (1 + k) with k > 0, so 0 < h < width: ``width`` must be a
    positive expression such that no other breakpoint of ``expr`` lies within it of
    ``point``; then every branch is decided for all k and the limit is k -> 0+.
    ``substitution`` parametrises the other symbols (as in :class:`Region`).
    """
    V.symbol(x, "x")
    width = V.expression(width, "width")
    if width.is_positive is False:
        raise ValueError(f"width must be positive, got {width}")
    sub = dict(substitution or {})
    k = sp.Symbol("k_step", positive=True)
    h = sp.sympify(width).subs(sub) * k / (1 + k)
    point = sp.sympify(point).subs(sub)

    def at(value):
        f = decide_branches(sp.sympify(expr).subs(sub).subs(x, value))
        if f.has(sp.Piecewise):
            raise AssertionError(f"one-sided derivative at {x} = {point}: cannot decide the "
                                 f"branch; left with {f}")
        return f

    f0 = at(point)
    left = sp.limit((f0 - at(point - h)) / h, k, 0, "+")
    right = sp.limit((at(point + h) - f0) / h, k, 0, "+")
    return sp.simplify(left), sp.simplify(right)


def ppo_clip_regions(r: sp.Symbol, A: sp.Symbol, eps: sp.Symbol,
                     eps_high: sp.Symbol | None = None) -> list[Region]:
    r"""The regions of (r, A) for 0 < eps < 1 (and eps_high > 0) and r > 0 (chapter 8): the six
    open regions A > 0 or A < 0, times r below, inside or above [1 - eps, 1 + eps_high]
    (eps_high = eps unless given), and the line A = 0 (where the objective is 0 for every r).
    With the bounds r = 1 - eps, 1 + eps_high they cover the domain.

    Parametrisation, with positive symbols e, u and a: eps = e / (1 + e) covers (0, 1)
    (eps_high, a positive symbol, stands for itself); r = (1 - eps) / (1 + u) covers
    (0, 1 - eps); r = 1 - eps + (eps + eps_high) u / (1 + u) covers (1 - eps, 1 + eps_high);
    r = (1 + eps_high)(1 + u) covers (1 + eps_high, oo) (and r = u all of (0, oo) on A = 0);
    A = a covers (0, oo) and A = -a covers (-oo, 0). ``along`` is u.

    (A = 0 is split off because there r A = clip(r) A = 0 ties for every r, so the branch of
    the min is undecidable and irrelevant; the source's "A >= 0" covers it.)
    """
    _ = V.symbol(r, "r"), V.symbol(A, "A"), V.symbol(eps, "eps")
    e, u = sp.Symbol("e", positive=True), sp.Symbol("u", positive=True)
    a = sp.Symbol("a", positive=True)
    eps_of_e = e / (1 + e)
    if eps_high is None:
        top, top_value, hi = eps, eps_of_e, "1+eps"
    else:
        if not (isinstance(eps_high, sp.Symbol) and eps_high.is_positive):
            raise ValueError(f"eps_high must be a positive SymPy symbol, got {eps_high!r}")
        top, top_value, hi = eps_high, eps_high, "1+eps_high"
    r_in = {
        "r < 1-eps": ((1 - eps_of_e) / (1 + u), (r > 0) & (r < 1 - eps)),
        f"1-eps < r < {hi}": (1 - eps_of_e + (eps_of_e + top_value) * u / (1 + u),
                              (r > 1 - eps) & (r < 1 + top)),
        f"r > {hi}": ((1 + top_value) * (1 + u), r > 1 + top),
    }
    eps_in = {eps: eps_of_e} if eps_high is None else {eps: eps_of_e, eps_high: eps_high}
    regions = []
    for a_name, a_value, a_cond in (("A > 0", a, A > 0), ("A < 0", -a, A < 0)):
        for r_name, (r_value, r_cond) in r_in.items():
            regions.append(Region(
                name=f"{a_name}, {r_name}",
                condition=a_cond & r_cond & (eps > 0) & (eps < 1) & (top > 0),
                substitution={**eps_in, r: r_value, A: a_value},
                along=u,
            ))
    regions.append(Region(name="A = 0", condition=sp.Eq(A, 0) & (r > 0) & (eps > 0) & (eps < 1),
                          substitution={**eps_in, r: u, A: sp.Integer(0)}, along=u))
    return regions


def _in_original_symbols(expr, substitution: Mapping[sp.Symbol, sp.Expr]) -> sp.Expr:
    """Undo each substitution x -> g(p) that has a single parameter p: p = g^{-1}(x)."""
    expr = sp.sympify(expr)
    for original, value in substitution.items():
        params = sp.sympify(value).free_symbols
        if len(params) == 1:
            (p,) = params
            solutions = sp.solve(sp.Eq(value, original), p)
            if len(solutions) == 1:
                expr = expr.subs(p, solutions[0])
    return sp.simplify(expr)


@dataclass(frozen=True)
class ClipDerivativeProof:
    """What :func:`prove_clip_derivative` established.

    ``regions``: region name -> residual of d/dr objective - 1_not-clip * A (all 0).
    ``derivatives``: region name -> d/dr objective on that region.
    ``boundaries``: (A's sign, "1-eps" or "1+eps" / "1+eps_high") -> (left, right) derivative.
    ``indicator_at_boundaries``: the same keys -> 1_not-clip * A at the boundary point.
    """

    regions: dict[str, sp.Expr]
    derivatives: dict[str, sp.Expr]
    boundaries: dict[tuple[str, str], tuple[sp.Expr, sp.Expr]]
    indicator_at_boundaries: dict[tuple[str, str], sp.Expr]

    def __str__(self) -> str:
        lines = ["d/dr min(rA, clip(r, 1-eps, 1+eps_high)A) - 1_not-clip*A, by region:"]
        lines += [f"  {name:28s} derivative {self.derivatives[name]!s:>3}, residual {res}"
                  for name, res in self.regions.items()]
        lines.append("at the boundaries (left, right derivative; 1_not-clip*A there):")
        for key, (left, right) in self.boundaries.items():
            lines.append(f"  {key[0]:6s} r = {key[1]:5s}: left {left!s:>3}, right {right!s:>3};"
                         f" indicator*A = {self.indicator_at_boundaries[key]}")
        return "\n".join(lines)


def prove_clip_derivative(r: sp.Symbol | None = None, A: sp.Symbol | None = None,
                          eps: sp.Symbol | None = None,
                          eps_high: sp.Symbol | None = None) -> ClipDerivativeProof:
    r"""Prove d/dr min(r A, clip(r, 1-eps, 1+eps_high) A) = 1_not-clip(r, A) A on the six open
    regions of :func:`ppo_clip_regions` (and on A = 0), and compute the one-sided derivatives
    at r = 1 - eps and r = 1 + eps_high for A > 0 and A < 0 (chapters 8 and 13; eps_high = eps
    unless given, a positive symbol). The derivatives are reported in the original symbols.

    The derivative on each region is that of the function itself
    (:func:`derivative_on_region`), compared with the indicator by
    :func:`assert_piecewise_identical`. Raises ``AssertionError`` if any region fails.
    """
    r = r if r is not None else sp.Symbol("r", positive=True)
    A = A if A is not None else sp.Symbol("A", real=True)
    eps = eps if eps is not None else sp.Symbol("epsilon", positive=True)
    _ = V.symbol(r, "r"), V.symbol(A, "A"), V.symbol(eps, "eps")
    objective = ppo_clip_objective(r, A, eps, eps_high)
    indicator_times_A = not_clip(r, A, eps, eps_high) * A
    regions = ppo_clip_regions(r, A, eps, eps_high)
    top, hi = (eps, "1+eps") if eps_high is None else (eps_high, "1+eps_high")
    derivatives, residuals = {}, {}
    for region in regions:
        d = derivative_on_region(objective, r, region)
        derivatives[region.name] = _in_original_symbols(d, region.substitution)
        # The derivative is an expression in the region's parameters; compare it there.
        residuals.update(assert_piecewise_identical(
            d, indicator_times_A, [region], what="d/dr PPO-Clip objective = 1_not-clip * A"))
    boundaries, indicator_at = {}, {}
    for region in (regions[0], regions[3]):  # one per sign of A: their eps and A substitutions
        sub = {s: v for s, v in region.substitution.items() if s is not r}
        sign = region.name.split(",")[0]
        for label, point in (("1-eps", 1 - eps), (hi, 1 + top)):
            left, right = one_sided_derivatives(objective, r, point, width=(eps + top) / 2,
                                                substitution=sub)
            boundaries[(sign, label)] = (_in_original_symbols(left, sub),
                                         _in_original_symbols(right, sub))
            indicator_at[(sign, label)] = _in_original_symbols(decide_branches(
                indicator_times_A.subs(sub).subs(r, sp.sympify(point).subs(sub))), sub)
    return ClipDerivativeProof(residuals, derivatives, boundaries, indicator_at)
