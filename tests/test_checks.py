"""pgbook.checks: autograd against closed forms, value comparisons, finite differences,
confidence intervals and their coverage, exact_log."""

import pytest
import torch

from pgbook import checks


def _cases(gen, n=50):
    return [(torch.randn(4, dtype=torch.float64, generator=gen),) for _ in range(n)]


def test_compare_gradients_passes_for_correct_closed_form(gen):
    rep = checks.compare_gradients(lambda x: (x**3).sum(), lambda x: 3 * x**2, _cases(gen),
                                   verbose=False)
    assert rep.passed and rep.n_cases == 50 and rep.max_abs_err < 1e-12


def test_compare_gradients_fails_for_wrong_closed_form(gen):
    with pytest.raises(AssertionError, match="FAILED"):
        checks.compare_gradients(lambda x: (x**3).sum(), lambda x: 3 * x**2 + 1e-6,
                                 _cases(gen), verbose=False)
    rep = checks.compare_gradients(lambda x: (x**3).sum(), lambda x: 3 * x**2 * 1.001,
                                   _cases(gen), verbose=False, raise_on_fail=False)
    assert not rep.passed and rep.n_failed > 0 and rep.max_rel_err == pytest.approx(
        1e-3 / 1.001, rel=1e-6)


def test_compare_gradients_validates(gen):
    with pytest.raises(ValueError, match="float64"):
        checks.compare_gradients(lambda x: x.sum(), lambda x: torch.ones_like(x),
                                 [(torch.ones(2),)], verbose=False)
    with pytest.raises(ValueError, match="no cases"):
        checks.compare_gradients(lambda x: x.sum(), lambda x: x, [], verbose=False)
    with pytest.raises(ValueError, match="scalar"):
        checks.compare_gradients(lambda x: x, lambda x: x, _cases(gen, 1), verbose=False)
    with pytest.raises(ValueError, match="shape"):
        checks.compare_gradients(lambda x: x.sum(), lambda x: x[:2], _cases(gen, 1),
                                 verbose=False)


def test_compare_values_and_report_text():
    rep = checks.compare_values(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-14]),
                                name="twins", verbose=False)
    assert rep.passed and "twins: 1 cases" in str(rep) and rep.rounded() == "twins: 1 cases, OK"
    with pytest.raises(ValueError, match="2 actual values but 1 expected"):
        checks.compare_values([torch.ones(1), torch.ones(1)], [torch.ones(1)])


def test_finite_difference_check():
    x = torch.randn(3, dtype=torch.float64)
    assert checks.finite_difference_check(lambda v: (v.sin() * v).sum(), [x])
    with pytest.raises(ValueError, match="float64"):
        checks.finite_difference_check(lambda v: v.sum(), [torch.ones(2)])


def test_confidence_interval_coverage_is_near_nominal():
    gen = torch.Generator().manual_seed(0)
    reps, n, hits = 400, 200, 0
    for _ in range(reps):
        s = torch.randn(n, dtype=torch.float64, generator=gen) * 2 + 1
        mean, half = checks.confidence_interval(s, 0.9)
        hits += int(abs(mean.item() - 1) <= half.item())
    # 90% nominal; binomial sd = sqrt(0.09 / 400) = 0.015
    assert abs(hits / reps - 0.9) < 4 * 0.015


def test_covers_detects_a_biased_estimate():
    gen = torch.Generator().manual_seed(0)
    s = torch.randn(5000, 3, dtype=torch.float64, generator=gen)
    assert checks.covers(s, torch.zeros(3), verbose=False).all_covered
    with pytest.raises(AssertionError, match="outside"):
        checks.covers(s, torch.tensor([0.0, 0.0, 0.2], dtype=torch.float64), verbose=False)
    with pytest.raises(ValueError, match="samples must have shape"):
        checks.covers(s, torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="level"):
        checks.confidence_interval(s, 1.0)


def test_exact_log_inverts_exp_bit_for_bit(gen):
    r = torch.tensor([0.8, 1.2, 0.5, 1.0, 1.5, 0.9, 1.1, 1.999], dtype=torch.float64)
    out = checks.exact_log(r)
    assert out.dtype == r.dtype and out.shape == r.shape
    assert torch.equal(torch.exp(out), r)
    assert torch.allclose(out, torch.log(r), rtol=0, atol=1e-12)  # a few ulps from log at most
    # exp is not onto the floats (about 1 value in 1000 near 2 is hit by no float64 log, and
    # which ones depends on the CPU's exp), so the ratios are drawn in exp's image.
    many = torch.exp(torch.rand(3, 400, dtype=torch.float64, generator=gen) * 1.4 - 0.7)
    assert torch.equal(torch.exp(checks.exact_log(many)), many)
    single = torch.exp(torch.rand(2000, generator=gen) * 1.4 - 0.7)
    assert torch.equal(torch.exp(checks.exact_log(single)), single)
    assert not torch.equal(torch.exp(torch.log(single)), single)  # torch.log alone misses some


def test_exact_log_leaves_its_input_alone_and_validates():
    r = torch.tensor([0.8, 1.2], dtype=torch.float64)
    before = r.clone()
    checks.exact_log(r)
    assert torch.equal(r, before)
    with pytest.raises(ValueError, match="values must be positive"):
        checks.exact_log(torch.tensor([1.0, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="values must be positive"):
        checks.exact_log(torch.tensor([-1.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="non-finite"):
        checks.exact_log(torch.tensor([float("inf")], dtype=torch.float64))
    with pytest.raises(ValueError, match="torch.Tensor"):
        checks.exact_log([0.8, 1.2])
    # far from 1, float64 exp skips most values: there is no exact log to find
    with pytest.raises(ValueError, match="within 64 ulps"):
        checks.exact_log(torch.tensor([1e-300], dtype=torch.float64))


@pytest.mark.parametrize("scale", [0.0, 2.0])
def test_the_tolerance_is_atol_plus_rtol_times_the_scale_exactly(scale):
    """An error 1% above atol + rtol * max|expected| fails and 1% below passes, so a tolerance
    loosened by any factor above 1.01 (the mutation suite's checker-tolerance-loosened) is caught;
    every other test here uses errors far from the boundary."""
    atol, rtol = 1e-12, 1e-10
    expected = torch.full((3,), scale, dtype=torch.float64)
    limit = atol + rtol * scale
    for factor, passes in ((0.99, True), (1.01, False)):
        actual = expected.clone()
        actual[1] += factor * limit
        rep = checks.compare_values(actual, expected, atol=atol, rtol=rtol, verbose=False,
                                    raise_on_fail=False)
        assert rep.passed is passes and rep.n_failed == (0 if passes else 1)
    with pytest.raises(AssertionError, match="FAILED"):
        checks.compare_values(expected + 1.01 * limit, expected, atol=atol, rtol=rtol,
                              verbose=False)
