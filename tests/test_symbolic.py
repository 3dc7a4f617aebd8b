import pytest
import sympy as sp

from pgbook import symbolic as S


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
