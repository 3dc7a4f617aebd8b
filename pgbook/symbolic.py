"""The SymPy side of the book: policies, score functions, and exact identity checks.

Chapter 1 derives the score functions below; every derivation chapter ends its symbolic part
with :func:`assert_identical`, which passes only if the difference of the two sides simplifies
to exactly 0 by steps that the symbols' assumptions (real, positive) justify. Identities that
hold region by region (PPO's clip) are :mod:`pgbook.piecewise`."""

from __future__ import annotations

import sympy as sp

from . import _validate as V

__all__ = ["assert_identical", "is_zero", "gaussian_expectation", "gaussian_log_density",
           "gaussian_score", "logit_symbols", "simplify_difference", "softmax", "softmax_log_prob",
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
