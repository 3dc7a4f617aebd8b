"""sb3-contrib 2.9.2's TRPO against pgbook.trust_region (pgbook.libraries.sb3_trpo): each
agreement holds to its derived rounding bound, and each wrong variant fails the same check."""

from __future__ import annotations

import pytest

pytest.importorskip("sb3_contrib")

from pgbook.libraries import sb3_trpo  # noqa: E402


@pytest.mark.parametrize("iters", [5, 10, 20])
def test_conjugate_gradient_agrees(iters):
    r = sb3_trpo.compare_conjugate_gradient(iters=iters)
    assert r.passed, (r.max_error, r.tolerance)
    assert r.max_error < 1e-14
    # after dim = 20 iterations both are close to the exact solve
    if iters == 20:
        assert r.extra["library_vs_exact"] < 1e-4


@pytest.mark.parametrize("variant", ["zero_init", "no_residual_update"])
def test_conjugate_gradient_wrong_variants_fail(variant):
    r = sb3_trpo.compare_conjugate_gradient(variant=variant)
    assert not r.passed
    assert r.max_error > 1e3 * r.tolerance


def test_hvp_agrees_at_theta_old():
    r = sb3_trpo.compare_hessian_vector_product(moved=0.0)
    assert r.passed, (r.max_error, r.tolerance)
    assert r.extra["cg_damping"] == 0.1


@pytest.mark.parametrize(("moved", "variant"),
                         [(0.0, "undamped"), (0.5, "correct"), (0.1, "correct")])
def test_hvp_wrong_claims_fail(moved, variant):
    """Dropping the damping fails; so does the claim that KL(new||old) and KL(old||new) have
    the same Hessian away from theta_old."""
    r = sb3_trpo.compare_hessian_vector_product(moved=moved, variant=variant)
    assert not r.passed
    assert r.max_error > 1e3 * r.tolerance


@pytest.mark.parametrize("seed", [0, 1])
def test_trpo_step_agrees(seed):
    r = sb3_trpo.compare_trpo_step(seed=seed)
    assert r.passed, (r.max_error, r.tolerance)
    assert r.extra["library_success"] == 1.0
    # sb3 logs KL(new || old) of the accepted step; pgbook recomputes it
    assert abs(r.extra["library_kl"] - r.extra["kl_new_old"]) < 1e-12
    assert r.extra["kl_old_new"] <= 0.01


@pytest.mark.parametrize("variant", ["zero_init", "unscaled", "no_normalize"])
def test_trpo_step_wrong_variants_fail(variant):
    r = sb3_trpo.compare_trpo_step(variant=variant)
    assert not r.passed
    assert r.max_error > 1e3 * r.tolerance


@pytest.mark.parametrize(("fn", "kwargs", "arg"), [
    (sb3_trpo.compare_conjugate_gradient, dict(dim=1), "dim"),
    (sb3_trpo.compare_conjugate_gradient, dict(iters=0), "iters"),
    (sb3_trpo.compare_conjugate_gradient, dict(condition=0.5), "condition"),
    (sb3_trpo.compare_conjugate_gradient, dict(variant="wrong"), "variant"),
    (sb3_trpo.compare_hessian_vector_product, dict(moved=-1.0), "moved"),
    (sb3_trpo.compare_hessian_vector_product, dict(n_states=0), "n_states"),
    (sb3_trpo.compare_hessian_vector_product, dict(variant="x"), "variant"),
    (sb3_trpo.compare_trpo_step, dict(n_steps=1), "n_steps"),
    (sb3_trpo.compare_trpo_step, dict(target_kl=0.0), "target_kl"),
    (sb3_trpo.compare_trpo_step, dict(variant="x"), "variant"),
])
def test_bad_input(fn, kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        fn(**kwargs)


def test_trpo_step_undamped_library_fails_cleanly(monkeypatch):
    """A library HVP without damping (whose line search then rejects every trial: a zero step)
    must give a failing comparison, not a ZeroDivisionError from a zero tolerance."""
    from sb3_contrib.common.utils import flat_grad
    from sb3_contrib.trpo.trpo import TRPO

    def undamped(self, params, grad_kl, vector, retain_graph=True):
        return flat_grad((grad_kl * vector).sum(), params, retain_graph=retain_graph)

    monkeypatch.setattr(TRPO, "hessian_vector_product", undamped)
    c = sb3_trpo.compare_trpo_step()
    assert not c.passed and c.ratio > 1
