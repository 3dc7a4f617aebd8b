"""The SymPy side of the book: policies, score functions, and exact identity checks.

Chapter 1 (``book/01_policies``) derives the score functions below; every derivation chapter
ends its symbolic part with :func:`assert_identical`, which passes only if the difference of
the two sides simplifies to exactly 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

__all__ = [
    "assert_identical",
    "gaussian_log_density",
    "gaussian_score",
    "logit_symbols",
    "simplify_difference",
    "softmax",
    "softmax_log_prob",
    "softmax_score",
]


def logit_symbols(n_states: int, n_actions: int, name: str = "theta") -> sp.Matrix:
    """A matrix of real symbols theta[s, a], the logits of a tabular softmax policy."""
    for value, label in ((n_states, "n_states"), (n_actions, "n_actions")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value!r}")
    return sp.Matrix(n_states, n_actions,
                     lambda s, a: sp.Symbol(f"{name}_{s}{a}", real=True))


def _logit_vector(logits) -> list[sp.Expr]:
    if isinstance(logits, sp.MatrixBase):
        if min(logits.shape) != 1:
            raise ValueError(f"logits must be a vector, got a matrix of shape {logits.shape}")
        logits = list(logits)
    if not isinstance(logits, Sequence) or len(logits) < 2:
        raise ValueError("logits must be a sequence of at least 2 SymPy expressions")
    return [sp.sympify(z) for z in logits]


def _action_index(a, n: int) -> int:
    if isinstance(a, bool) or not isinstance(a, int) or not 0 <= a < n:
        raise ValueError(f"action must be an integer in [0, {n}), got {a!r}")
    return a


def softmax(logits) -> sp.Matrix:
    r"""pi(a) = exp(z_a) / sum_b exp(z_b), as a column vector (chapter 1)."""
    z = _logit_vector(logits)
    denom = sum(sp.exp(zb) for zb in z)
    return sp.Matrix([sp.exp(za) / denom for za in z])


def softmax_log_prob(logits, a: int) -> sp.Expr:
    r"""log pi(a) = z_a - log sum_b exp(z_b)."""
    z = _logit_vector(logits)
    a = _action_index(a, len(z))
    return z[a] - sp.log(sum(sp.exp(zb) for zb in z))


def softmax_score(logits, a: int) -> sp.Matrix:
    r"""Closed form of the softmax score: grad_z log pi(a) = e_a - pi (chapter 1).

    ``e_a`` is the one-hot vector of the action; ``pi`` the softmax of the logits.
    """
    z = _logit_vector(logits)
    a = _action_index(a, len(z))
    one_hot = sp.Matrix([1 if b == a else 0 for b in range(len(z))])
    return one_hot - softmax(z)


def gaussian_log_density(x, mu, log_sigma) -> sp.Expr:
    r"""log N(x; mu, sigma^2) with sigma = exp(log_sigma):
    -(x - mu)^2 / (2 sigma^2) - log sigma - log(2 pi) / 2."""
    x, mu, log_sigma = map(sp.sympify, (x, mu, log_sigma))
    sigma = sp.exp(log_sigma)
    return -(x - mu) ** 2 / (2 * sigma**2) - log_sigma - sp.log(2 * sp.pi) / 2


def gaussian_score(x, mu, log_sigma) -> sp.Matrix:
    r"""Closed form of the Gaussian score (chapter 1), as the column (d/dmu, d/dlog_sigma):

    d/dmu log N = (x - mu) / sigma^2,    d/dlog_sigma log N = (x - mu)^2 / sigma^2 - 1.
    """
    x, mu, log_sigma = map(sp.sympify, (x, mu, log_sigma))
    sigma2 = sp.exp(2 * log_sigma)
    return sp.Matrix([(x - mu) / sigma2, (x - mu) ** 2 / sigma2 - 1])


def _exp_atoms_to_symbols(expr: sp.Expr) -> sp.Expr:
    """Replace every exp(linear combination of symbols) by a product of positive symbols.

    exp(a*x + b*y) becomes X**a * Y**b with X = exp(x), Y = exp(y) positive. This is an exact
    change of variables (exp is a bijection onto the positive reals), and it turns softmax
    expressions into rational functions, which ``sp.cancel`` decides quickly and exactly.
    """
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
            elif isinstance(sym, sp.Symbol) and c.is_Rational:
                if sym not in base:
                    base[sym] = sp.Symbol(f"_exp_{sym.name}", positive=True)
                term *= base[sym] ** c
            else:
                break
        else:
            replacements[e] = term
    return expr.xreplace(replacements)


def simplify_difference(lhs, rhs):
    """Simplify ``lhs - rhs`` as far as SymPy can; returns a scalar or a Matrix."""
    diff = sp.sympify(lhs) - sp.sympify(rhs)
    if isinstance(diff, sp.MatrixBase):
        return diff.applyfunc(lambda e: simplify_difference(e, 0))
    if diff == 0:
        return sp.Integer(0)
    fast = sp.cancel(sp.together(_exp_atoms_to_symbols(sp.expand_log(diff, force=True))))
    if fast == 0:
        return sp.Integer(0)
    return sp.simplify(diff)


def assert_identical(lhs, rhs, *, what: str = "identity") -> sp.Expr:
    """Pass iff ``lhs - rhs`` simplifies to exactly 0 (elementwise for matrices).

    Returns the residual (``0``, or a zero matrix). On failure raises ``AssertionError`` that
    prints the non-zero residual, so a wrong derivation shows where it goes wrong.
    """
    lhs_s, rhs_s = sp.sympify(lhs), sp.sympify(rhs)
    lhs_is_m = isinstance(lhs_s, sp.MatrixBase)
    if lhs_is_m != isinstance(rhs_s, sp.MatrixBase):
        raise ValueError(f"{what}: cannot compare a matrix with a scalar")
    if lhs_is_m and lhs_s.shape != rhs_s.shape:
        raise ValueError(f"{what}: shape mismatch {lhs_s.shape} vs {rhs_s.shape}")
    residual = simplify_difference(lhs_s, rhs_s)
    nonzero = (any(e != 0 for e in residual) if isinstance(residual, sp.MatrixBase)
               else residual != 0)
    if nonzero:
        raise AssertionError(f"{what} does not hold: lhs - rhs simplifies to\n{residual}")
    return residual
