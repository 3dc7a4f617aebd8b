"""pgbook.symbolic: assert_identical, softmax and Gaussian scores, Gaussian expectations of
polynomials (the clip and its region-by-region proofs: tests/test_piecewise.py)."""

import pytest
import sympy as sp
import torch

from pgbook import symbolic as S
from pgbook.symbolic import gaussian_expectation


def test_assert_identical_passes_on_true_identity_and_returns_zero():
    x = sp.Symbol("x", real=True)
    assert S.assert_identical(sp.sin(x) ** 2 + sp.cos(x) ** 2, 1) == 0


def test_assert_identical_fails_and_prints_residual():
    x = sp.Symbol("x", real=True)
    with pytest.raises(AssertionError, match=r"doubling does not hold.*\n.*x"):
        S.assert_identical(2 * x, x, what="doubling")


def test_assert_identical_matrix_and_shape_errors():
    z = sp.symbols("z0:3", real=True)
    M = sp.Matrix(z)
    assert S.assert_identical(M, M) == sp.zeros(3, 1)
    with pytest.raises(AssertionError):
        S.assert_identical(M, M + sp.Matrix([0, 0, 1]))
    with pytest.raises(ValueError, match="shape mismatch"):
        S.assert_identical(M, sp.Matrix(z[:2]))
    with pytest.raises(ValueError, match="matrix with a scalar"):
        S.assert_identical(M, z[0])


_x, _y = sp.symbols("x y", real=True)
_p, _q = sp.symbols("p q", positive=True)
_z = sp.Symbol("z")  # complex: no assumptions


@pytest.mark.parametrize("lhs, rhs", [
    (sp.log(_x**2), 2 * sp.log(_x)),                    # false at x = -1: log 1 = 0 vs 2 pi i
    (sp.log(_x * _y), sp.log(_x) + sp.log(_y)),         # false at x = y = -1
    (sp.log(_x / _y), sp.log(_x) - sp.log(_y)),         # false at x = -1, y = 1
    (sp.sqrt(_x**2), _x),                               # false at x = -1
    (sp.log(sp.exp(_z)), _z),                           # false at z = 2 pi i
    (sp.sqrt(sp.exp(_z)), sp.exp(_z / 2)),              # false at z = 2 pi i: 1 vs -1
    (sp.log(_p - 1) + sp.log(_q - 1), sp.log((_p - 1) * (_q - 1))),  # p = q = 1/2: 2 pi i
    (sp.log(_x**3), 3 * sp.log(_x)),                    # false at x = -1: i pi vs 3 i pi
    (sp.Abs(_z) ** 2, _z**2),                           # true for real z, false at z = i
])
def test_checker_rejects_identities_that_need_assumptions_the_symbols_lack(lhs, rhs):
    """Each pair is equal only for positive (or real) arguments; with real or complex symbols
    the checker must not call it an identity (it used to, via expand_log(force=True))."""
    assert S.simplify_difference(lhs, rhs) != 0
    with pytest.raises(AssertionError, match="does not hold"):
        S.assert_identical(lhs, rhs)


@pytest.mark.parametrize("lhs, rhs", [
    (sp.log(_p**2), 2 * sp.log(_p)),
    (sp.log(_p * _q), sp.log(_p) + sp.log(_q)),
    (sp.log(_p / _q), sp.log(_p) - sp.log(_q)),
    (sp.sqrt(_p**2), _p),
    (sp.log(sp.exp(_x)), _x),
    (sp.sqrt(sp.exp(_x)), sp.exp(_x / 2)),
    (sp.log(sp.exp(_x) * _p), _x + sp.log(_p)),
    (sp.diff(sp.log(_p * sp.exp(_x) / (1 + sp.exp(_x))), _x), 1 / (1 + sp.exp(_x))),
])
def test_checker_proves_the_same_identities_for_positive_or_real_symbols(lhs, rhs):
    assert S.assert_identical(lhs, rhs) == 0


def test_checker_fast_path_still_decides_softmax_identities_quickly():
    import time
    z = sp.symbols("z0:5", real=True)
    start = time.perf_counter()
    for a in range(5):
        grad = sp.Matrix([sp.diff(S.softmax_log_prob(z, a), zi) for zi in z])
        S.assert_identical(grad, S.softmax_score(z, a))
    assert time.perf_counter() - start < 5.0  # the fast path, not sp.simplify (minutes)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_softmax_score_closed_form_is_exact(n):
    z = sp.symbols(f"z0:{n}", real=True)
    for a in range(n):
        grad = sp.Matrix([sp.diff(S.softmax_log_prob(z, a), zi) for zi in z])
        S.assert_identical(grad, S.softmax_score(z, a))


def test_softmax_score_detects_a_wrong_closed_form():
    z = sp.symbols("z0:3", real=True)
    grad = sp.Matrix([sp.diff(S.softmax_log_prob(z, 0), zi) for zi in z])
    wrong = sp.Matrix([1, 0, 0]) - S.softmax(z).applyfunc(lambda p: p**2)
    with pytest.raises(AssertionError):
        S.assert_identical(grad, wrong)


def test_softmax_sums_to_one():
    z = sp.symbols("z0:4", real=True)
    S.assert_identical(sum(S.softmax(z)), 1)


def test_gaussian_score_is_exact():
    x, mu, ls = sp.symbols("x mu ell", real=True)
    logp = S.gaussian_log_density(x, mu, ls)
    grad = sp.Matrix([sp.diff(logp, mu), sp.diff(logp, ls)])
    S.assert_identical(grad, S.gaussian_score(x, mu, ls))


@pytest.mark.parametrize("call, match", [
    (lambda: S.softmax([sp.Symbol("z")]), "at least 2"),
    (lambda: S.softmax_score(sp.symbols("a b"), 2), r"action must be an integer in \[0, 2\)"),
    (lambda: S.softmax_log_prob(sp.symbols("a b"), -1), "action"),
    (lambda: S.logit_symbols(0, 2), "n_states"),
    (lambda: S.softmax(sp.Matrix(2, 2, sp.symbols("a b c d"))), "vector"),
])
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---- Gaussian expectations of polynomials (chapters 10-12) -----------------------------------

def test_gaussian_expectation_gives_the_normal_moments():
    z = sp.Symbol("z", real=True)
    moments = [gaussian_expectation(z**j, z) for j in range(9)]
    assert moments == [1, 0, 1, 0, 3, 0, 15, 0, 105]  # (j - 1)!! for even j, 0 for odd j
    assert gaussian_expectation(sp.Integer(5), z) == 5


def test_gaussian_expectation_of_a_reparameterised_polynomial():
    z = sp.Symbol("z", real=True)
    mu, sigma, c = sp.symbols("mu sigma c", real=True)
    a = mu + sigma * z  # a ~ N(mu, sigma^2)
    S.assert_identical(gaussian_expectation(a, z), mu)
    S.assert_identical(gaussian_expectation(a**2, z), mu**2 + sigma**2)
    S.assert_identical(gaussian_expectation(-c * (a - 1) ** 2, z), -c * ((mu - 1) ** 2 + sigma**2))
    S.assert_identical(gaussian_expectation(a**4, z), mu**4 + 6 * mu**2 * sigma**2 + 3 * sigma**4)


def test_gaussian_expectation_matches_a_monte_carlo_estimate(gen):
    z = sp.Symbol("z", real=True)
    expr = 2 * z**4 - z**3 + sp.Rational(1, 2) * z**2 + 3 * z - 1
    exact = float(gaussian_expectation(expr, z))  # 2 * 3 + 1/2 - 1 = 5.5
    assert exact == 5.5
    samples = torch.randn(400_000, dtype=torch.float64, generator=gen)
    mc = sp.lambdify(z, expr, "math")(samples)
    assert abs(mc.mean().item() - exact) < 5 * mc.std().item() / len(mc) ** 0.5


def test_gaussian_expectation_bad_input():
    z = sp.Symbol("z", real=True)
    with pytest.raises(ValueError, match="polynomial in z"):
        gaussian_expectation(sp.exp(z), z)
    with pytest.raises(ValueError, match="polynomial in z"):
        gaussian_expectation(1 / z, z)
    with pytest.raises(ValueError, match="z must be a SymPy Symbol"):
        gaussian_expectation(z**2, "z")


def test_is_zero_is_exact_and_does_not_simplify():
    x = sp.Symbol("x", real=True)
    assert S.is_zero(sp.Integer(0)) and S.is_zero(sp.zeros(2, 2))
    assert not S.is_zero(sp.Matrix([0, x]))
    assert not S.is_zero(sp.sin(x) ** 2 + sp.cos(x) ** 2 - 1)  # 0 only once simplified
    with pytest.raises(ValueError, match="residual"):
        S.is_zero("0")
