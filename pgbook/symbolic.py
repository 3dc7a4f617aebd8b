"""The SymPy side of the book: policies, score functions, and exact identity checks.

Chapter 1 derives the score functions below; every derivation chapter ends its symbolic part
with :func:`assert_identical`, which passes only if the difference of the two sides simplifies
to exactly 0 by steps that the symbols' assumptions (real, positive) justify."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sympy as sp
from sympy.core.relational import Relational

from . import _validate as V

__all__ = ["ClipDerivativeProof", "Region", "assert_identical", "assert_piecewise_identical",
           "is_zero", "clip", "decide_branches", "derivative_on_region", "gaussian_expectation",
           "gaussian_log_density", "gaussian_score", "logit_symbols", "not_clip",
           "one_sided_derivatives", "ppo_clip_objective", "ppo_clip_regions",
           "prove_clip_derivative", "simplify_difference", "softmax", "softmax_log_prob",
           "softmax_score"]


def logit_symbols(n_states: int, n_actions: int, name: str = "theta") -> sp.Matrix:
    """A matrix of real symbols theta[s, a], the logits of a tabular softmax policy."""
    V.positive_int(n_states, "n_states"), V.positive_int(n_actions, "n_actions")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    return sp.Matrix(n_states, n_actions,
                     lambda s, a: sp.Symbol(f"{name}_{s}{a}", real=True))


def softmax(logits) -> sp.Matrix:
    r"""pi(a) = exp(z_a) / sum_b exp(z_b), as a column vector (chapter 1)."""
    z = V.expression_vector(logits, "logits", min_len=2)
    denom = sum(sp.exp(zb) for zb in z)
    return sp.Matrix([sp.exp(za) / denom for za in z])


def softmax_log_prob(logits, a: int) -> sp.Expr:
    r"""log pi(a) = z_a - log sum_b exp(z_b)."""
    z = V.expression_vector(logits, "logits", min_len=2)
    a = V.index(a, len(z), "action")
    return z[a] - sp.log(sum(sp.exp(zb) for zb in z))


def softmax_score(logits, a: int) -> sp.Matrix:
    r"""Closed form of the softmax score: grad_z log pi(a) = e_a - pi (chapter 1).

    ``e_a`` is the one-hot vector of the action; ``pi`` the softmax of the logits.
    """
    z = V.expression_vector(logits, "logits", min_len=2)
    a = V.index(a, len(z), "action")
    one_hot = sp.Matrix([1 if b == a else 0 for b in range(len(z))])
    return one_hot - softmax(z)


def gaussian_log_density(x, mu, log_sigma) -> sp.Expr:
    r"""log N(x; mu, sigma^2) with sigma = exp(log_sigma):
    -(x - mu)^2 / (2 sigma^2) - log sigma - log(2 pi) / 2."""
    x, mu, log_sigma = V.expressions(x=x, mu=mu, log_sigma=log_sigma)
    sigma = sp.exp(log_sigma)
    return -(x - mu) ** 2 / (2 * sigma**2) - log_sigma - sp.log(2 * sp.pi) / 2


def gaussian_score(x, mu, log_sigma) -> sp.Matrix:
    r"""Closed form of the Gaussian score (chapter 1), as the column (d/dmu, d/dlog_sigma):

    d/dmu log N = (x - mu) / sigma^2,    d/dlog_sigma log N = (x - mu)^2 / sigma^2 - 1.
    """
    x, mu, log_sigma = V.expressions(x=x, mu=mu, log_sigma=log_sigma)
    sigma2 = sp.exp(2 * log_sigma)
    return sp.Matrix([(x - mu) / sigma2, (x - mu) ** 2 / sigma2 - 1])


def gaussian_expectation(expr, z: sp.Symbol) -> sp.Expr:
    """E over z ~ N(0, 1) of ``expr``, a polynomial in z, exactly: each power z^j is replaced
    by its moment E[z^j] = (j - 1)!! for even j and 0 for odd j. Reparameterised Gaussian
    expectations (a = mu + sigma z) of polynomial critics in chapters 10-12 reduce to this.
    Raises ``ValueError`` if ``expr`` is not a polynomial in ``z``."""
    if not isinstance(z, sp.Symbol):
        raise ValueError(f"z must be a SymPy Symbol, got {type(z).__name__}")
    try:
        poly = sp.Poly(sp.expand(expr), z)
    except sp.PolynomialError:
        raise ValueError(f"expr must be a polynomial in {z}, got {expr}") from None
    return sp.Add(*(coef * (sp.factorial2(j - 1) if j % 2 == 0 else 0)
                    for (j,), coef in poly.terms()))


def _exp_atoms_to_symbols(expr: sp.Expr) -> sp.Expr:
    """Replace every exp(rational combination of *real* symbols) by a product of positive
    symbols: exp(a*x + b*y) becomes X**a * Y**b with X = exp(x), Y = exp(y) positive.

    Exact for real x (exp maps the reals onto the positive reals); it makes softmax expressions
    rational, which ``sp.cancel`` decides fast. Complex z is left alone (exp(z/2) != sqrt(exp(z))
    at z = 2 pi i)."""
    exps = [e for e in expr.atoms(sp.exp)]
    if not exps:
        return expr
    base: dict[sp.Symbol, sp.Symbol] = {}
    replacements = {}
    for e in exps:
        arg = sp.expand(e.args[0])
        coeffs = arg.as_coefficients_dict()
        term = sp.Integer(1)
        for sym, c in coeffs.items():
            if sym == 1:
                term *= sp.exp(c)
            elif isinstance(sym, sp.Symbol) and sym.is_real and c.is_Rational:
                if sym not in base:
                    base[sym] = sp.Symbol(f"_exp_{sym.name}", positive=True)
                term *= base[sym] ** c
            else:
                break
        else:
            replacements[e] = term
    return expr.xreplace(replacements)


def simplify_difference(lhs, rhs):
    """Simplify ``lhs - rhs`` as far as SymPy can; returns a scalar or a Matrix. Each step is
    sound under the symbols' assumptions: ``expand_log`` without ``force`` (log(p q) = log p +
    log q needs p, q > 0: chapters declare probabilities, ratios and sigma positive), exp of a
    real symbol as a positive symbol, ``cancel``, ``simplify``. So log(x**2) - 2 log(x) for
    real x, or sqrt(x**2) - x, stays non-zero."""
    lhs, rhs = V.expression(lhs, "lhs", scalar=False), V.expression(rhs, "rhs", scalar=False)
    if getattr(lhs, "shape", ()) != getattr(rhs, "shape", ()):
        raise ValueError(f"lhs and rhs must have one shape, got {getattr(lhs, 'shape', ())} "
                         f"and {getattr(rhs, 'shape', ())}")
    diff = lhs - rhs
    if isinstance(diff, sp.MatrixBase):
        return diff.applyfunc(lambda e: simplify_difference(e, 0))
    if diff == 0:
        return sp.Integer(0)
    fast = sp.cancel(sp.together(_exp_atoms_to_symbols(sp.expand_log(diff))))
    if fast == 0:
        return sp.Integer(0)
    return sp.simplify(diff)


def is_zero(residual) -> bool:
    """True iff ``residual`` (a SymPy scalar or matrix, e.g. from :func:`simplify_difference`)
    is exactly 0 in every entry. No simplification is done here: a residual that is 0 only
    after simplifying is not 0."""
    residual = V.expression(residual, "residual", scalar=False)
    entries = residual if isinstance(residual, sp.MatrixBase) else [residual]
    return all(entry == 0 for entry in entries)


def assert_identical(lhs, rhs, *, what: str = "identity") -> sp.Expr:
    """Pass iff ``lhs - rhs`` simplifies to exactly 0 (elementwise for matrices).

    Returns the residual (``0``, or a zero matrix). On failure raises ``AssertionError`` that
    prints the non-zero residual, so a wrong derivation shows where it goes wrong.
    """
    lhs_s, rhs_s = V.expression(lhs, "lhs", scalar=False), V.expression(rhs, "rhs", scalar=False)
    lhs_is_m = isinstance(lhs_s, sp.MatrixBase)
    if lhs_is_m != isinstance(rhs_s, sp.MatrixBase):
        raise ValueError(f"{what}: cannot compare a matrix with a scalar (lhs and rhs)")
    if lhs_is_m and lhs_s.shape != rhs_s.shape:
        raise ValueError(f"{what}: shape mismatch, lhs {lhs_s.shape} vs rhs {rhs_s.shape}")
    residual = simplify_difference(lhs_s, rhs_s)
    if not is_zero(residual):
        raise AssertionError(f"{what} does not hold: lhs - rhs simplifies to\n{residual}")
    return residual


# --------------------------------------------------------------------------------------------
# Piecewise identities (chapter 8): the clip, PPO-Clip's objective, the source's 1_not-clip.
# --------------------------------------------------------------------------------------------


def clip(x, low, high) -> sp.Piecewise:
    """clip(x, low, high) = low if x < low, high if x > high, x otherwise (a Piecewise)."""
    x, low, high = V.expressions(x=x, low=low, high=high)
    if (high - low).is_negative:
        raise ValueError(f"high must be >= low, got low = {low}, high = {high}")
    return sp.Piecewise((low, x < low), (high, x > high), (x, True))


def ppo_clip_objective(r, A, eps) -> sp.Expr:
    r"""One sample of the PPO-Clip objective (section 1.8; chapter 8):

        min( r A, clip(r, 1 - eps, 1 + eps) A ).
    """
    r, A, eps = V.expressions(r=r, A=A, eps=eps)
    return sp.Min(r * A, clip(r, 1 - eps, 1 + eps) * A)


def not_clip(r, A, eps) -> sp.Piecewise:
    r"""The source's indicator 1_not-clip(r, A) of section 1.8, as a Piecewise (chapter 8):

        1 if (A >= 0 and r <= 1 + eps) or (A < 0 and r >= 1 - eps), else 0.

    :func:`prove_clip_derivative` proves that d/dr :func:`ppo_clip_objective` = 1_not-clip * A
    on each of the six open regions, and gives the one-sided derivatives at r = 1 +- eps.
    """
    r, A, eps = V.expressions(r=r, A=A, eps=eps)
    condition = (sp.And(A >= 0, r <= 1 + eps)) | (sp.And(A < 0, r >= 1 - eps))
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


def ppo_clip_regions(r: sp.Symbol, A: sp.Symbol, eps: sp.Symbol) -> list[Region]:
    r"""The regions of (r, A) for 0 < eps < 1 and r > 0 (chapter 8): the six open regions
    A > 0 or A < 0, times r below, inside or above [1 - eps, 1 + eps], and the line A = 0
    (where the objective is 0 for every r). With the boundaries r = 1 +- eps they cover the
    domain.

    Parametrisation, with positive symbols e, u and a: eps = e / (1 + e) covers (0, 1);
    r = (1 - eps) / (1 + u) covers (0, 1 - eps); r = 1 - eps + 2 eps u / (1 + u) covers
    (1 - eps, 1 + eps); r = (1 + eps)(1 + u) covers (1 + eps, oo) (and r = u all of (0, oo)
    on A = 0); A = a covers (0, oo) and A = -a covers (-oo, 0). ``along`` is u.

    (A = 0 is split off because there r A = clip(r) A = 0 ties for every r, so the branch of
    the min is undecidable and irrelevant; the source's "A >= 0" covers it.)
    """
    _ = V.symbol(r, "r"), V.symbol(A, "A"), V.symbol(eps, "eps")
    e, u = sp.Symbol("e", positive=True), sp.Symbol("u", positive=True)
    a = sp.Symbol("a", positive=True)
    eps_of_e = e / (1 + e)
    r_in = {
        "r < 1-eps": ((1 - eps_of_e) / (1 + u), (r > 0) & (r < 1 - eps)),
        "1-eps < r < 1+eps": (1 - eps_of_e + 2 * eps_of_e * u / (1 + u),
                              (r > 1 - eps) & (r < 1 + eps)),
        "r > 1+eps": ((1 + eps_of_e) * (1 + u), r > 1 + eps),
    }
    regions = []
    for a_name, a_value, a_cond in (("A > 0", a, A > 0), ("A < 0", -a, A < 0)):
        for r_name, (r_value, r_cond) in r_in.items():
            regions.append(Region(
                name=f"{a_name}, {r_name}",
                condition=a_cond & r_cond & (eps > 0) & (eps < 1),
                substitution={eps: eps_of_e, r: r_value, A: a_value},
                along=u,
            ))
    regions.append(Region(name="A = 0", condition=sp.Eq(A, 0) & (r > 0) & (eps > 0) & (eps < 1),
                          substitution={eps: eps_of_e, r: u, A: sp.Integer(0)}, along=u))
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
    ``boundaries``: (A's sign, "1-eps" or "1+eps") -> (left, right) derivative in r.
    ``indicator_at_boundaries``: the same keys -> 1_not-clip * A at the boundary point.
    """

    regions: dict[str, sp.Expr]
    derivatives: dict[str, sp.Expr]
    boundaries: dict[tuple[str, str], tuple[sp.Expr, sp.Expr]]
    indicator_at_boundaries: dict[tuple[str, str], sp.Expr]

    def __str__(self) -> str:
        lines = ["d/dr min(rA, clip(r,1-eps,1+eps)A) - 1_not-clip*A, by region:"]
        lines += [f"  {name:28s} derivative {self.derivatives[name]!s:>3}, residual {res}"
                  for name, res in self.regions.items()]
        lines.append("at the boundaries (left, right derivative; 1_not-clip*A there):")
        for key, (left, right) in self.boundaries.items():
            lines.append(f"  {key[0]:6s} r = {key[1]:5s}: left {left!s:>3}, right {right!s:>3};"
                         f" indicator*A = {self.indicator_at_boundaries[key]}")
        return "\n".join(lines)


def prove_clip_derivative(r: sp.Symbol | None = None, A: sp.Symbol | None = None,
                          eps: sp.Symbol | None = None) -> ClipDerivativeProof:
    r"""Prove d/dr min(r A, clip(r, 1-eps, 1+eps) A) = 1_not-clip(r, A) A on the six open
    regions of :func:`ppo_clip_regions` (and on A = 0), and compute the one-sided derivatives
    at r = 1 - eps and r = 1 + eps for A > 0 and A < 0 (chapter 8). The derivatives are
    reported in the original symbols (A, eps).

    The derivative on each region is that of the function itself
    (:func:`derivative_on_region`), compared with the indicator by
    :func:`assert_piecewise_identical`. Raises ``AssertionError`` if any region fails.
    """
    r = r if r is not None else sp.Symbol("r", positive=True)
    A = A if A is not None else sp.Symbol("A", real=True)
    eps = eps if eps is not None else sp.Symbol("epsilon", positive=True)
    _ = V.symbol(r, "r"), V.symbol(A, "A"), V.symbol(eps, "eps")
    objective = ppo_clip_objective(r, A, eps)
    indicator_times_A = not_clip(r, A, eps) * A
    regions = ppo_clip_regions(r, A, eps)
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
        for label, point in (("1-eps", 1 - eps), ("1+eps", 1 + eps)):
            left, right = one_sided_derivatives(objective, r, point, width=eps, substitution=sub)
            boundaries[(sign, label)] = (_in_original_symbols(left, sub),
                                         _in_original_symbols(right, sub))
            indicator_at[(sign, label)] = _in_original_symbols(decide_branches(
                indicator_times_A.subs(sub).subs(r, sp.sympify(point).subs(sub))), sub)
    return ClipDerivativeProof(residuals, derivatives, boundaries, indicator_at)
