"""pgbook.kl_estimators: k1, k2, k3 in value and in gradient, and kl_penalty's placements
(loss or reward, on-policy or from pi_old with or without the importance weight), each expected
gradient by exact enumeration over a categorical's outcomes against torch's own KLs (chapter
13's table), with the plausible wrong reading failing the same comparison."""

import math

import pytest
import torch
from torch.distributions import Categorical, kl_divergence

from pgbook.kl_estimators import (
    ESTIMATORS,
    PLACEMENTS,
    kl_k1,
    kl_k2,
    kl_k3,
    kl_k3_weight,
    kl_penalty,
    kl_weight,
)

D = torch.float64


# ---- the k3 estimator of KL(pi_theta || pi_ref) (chapter 9) ---------------------------------

def test_kl_k3_hand_values():
    logp = torch.tensor([math.log(0.5), math.log(0.2), math.log(0.3)], dtype=D)
    logp_ref = torch.tensor([math.log(0.25), math.log(0.2), math.log(0.6)], dtype=D)
    expected = torch.tensor([0.5 - math.log(0.5) - 1, 0.0, 2 - math.log(2) - 1], dtype=D)
    assert torch.allclose(kl_k3(logp, logp_ref), expected, atol=1e-15)


def test_kl_k3_nonnegative_and_ref_detached(gen):
    logp = torch.randn(100, dtype=D, generator=gen).requires_grad_(True)
    logp_ref = torch.randn(100, dtype=D, generator=gen).requires_grad_(True)
    k = kl_k3(logp, logp_ref)
    assert bool((k >= 0).all())
    k.sum().backward()
    assert logp_ref.grad is None
    rho = torch.exp(logp_ref.detach() - logp.detach())
    assert torch.allclose(logp.grad, 1 - rho, atol=1e-13)


def _random_categoricals(gen, n=6, batch=40):
    z = torch.randn(batch, n, dtype=D, generator=gen) * 1.5
    z_ref = torch.randn(batch, n, dtype=D, generator=gen) * 1.5
    return z, z_ref


def test_k3_mean_is_kl_theta_ref_exactly(gen):
    z, z_ref = _random_categoricals(gen)
    logp, logp_ref = torch.log_softmax(z, -1), torch.log_softmax(z_ref, -1)
    expected_k3 = (logp.exp() * kl_k3(logp, logp_ref)).sum(-1)
    kl = kl_divergence(Categorical(logits=z), Categorical(logits=z_ref))
    assert torch.allclose(expected_k3, kl, atol=1e-12)


def test_k3_gradient_as_implemented_is_grad_of_reverse_kl(gen):
    """E_{o~pi_theta}[grad k3(o)] with o fixed equals grad KL(pi_ref || pi_theta), and not
    grad KL(pi_theta || pi_ref)."""
    z, z_ref = _random_categoricals(gen)
    z = z.requires_grad_(True)
    logp, logp_ref = torch.log_softmax(z, -1), torch.log_softmax(z_ref, -1)
    probs = logp.exp().detach()  # the sampling distribution is not differentiated
    (g_k3,) = torch.autograd.grad((probs * kl_k3(logp, logp_ref)).sum(), z)
    ref = Categorical(logits=z_ref)
    (g_rev,) = torch.autograd.grad(kl_divergence(ref, Categorical(logits=z)).sum(), z)
    (g_fwd,) = torch.autograd.grad(kl_divergence(Categorical(logits=z), ref).sum(), z)
    assert torch.allclose(g_k3, g_rev, atol=1e-12)
    assert torch.allclose(g_k3, probs - torch.softmax(z_ref, -1), atol=1e-12)
    assert (g_k3 - g_fwd).abs().max() > 0.05


def test_kl_k3_bad_input():
    with pytest.raises(ValueError, match="shape mismatch"):
        kl_k3(torch.zeros(3, dtype=D), torch.zeros(4, dtype=D))
    with pytest.raises(ValueError, match="non-finite"):
        kl_k3(torch.zeros(3, dtype=D), torch.full((3,), float("nan"), dtype=D))
    with pytest.raises(ValueError, match="must not be empty"):
        kl_k3(torch.zeros(0, dtype=D), torch.zeros(0, dtype=D))



# ---- KL weights ---------------------------------------------------------------------------------

def test_kl_weights_hand_values():
    logp = torch.log(torch.tensor([0.5, 0.25], dtype=D))
    logp_ref = torch.log(torch.tensor([0.25, 0.5], dtype=D))
    assert torch.allclose(kl_k3_weight(logp, logp_ref), torch.tensor([0.5, -1.0], dtype=D))
    assert torch.allclose(kl_weight(logp, logp_ref),
                          torch.tensor([math.log(2), -math.log(2)], dtype=D))
    assert torch.equal(kl_k3_weight(logp, logp), torch.zeros(2, dtype=D))


def test_k3_gradient_is_the_reverse_kl_gradient(gen):
    z = torch.randn(6, dtype=D, generator=gen, requires_grad=True)
    z_ref = torch.randn(6, dtype=D, generator=gen)
    pi = torch.softmax(z.detach(), -1)
    score = torch.eye(6, dtype=D) - pi
    psi = kl_k3_weight(torch.log(pi), torch.log_softmax(z_ref, -1))
    (g_rev,) = torch.autograd.grad(kl_divergence(Categorical(logits=z_ref),
                                                 Categorical(logits=z)), z)
    (g_fwd,) = torch.autograd.grad(kl_divergence(Categorical(logits=z),
                                                 Categorical(logits=z_ref)), z)
    assert torch.allclose((pi * psi) @ score, g_rev, atol=1e-14)
    assert not torch.allclose((pi * psi) @ score, g_fwd, atol=1e-3)


def test_kl_weights_validate():
    with pytest.raises(ValueError, match="shape mismatch"):
        kl_weight(torch.zeros(2, dtype=D), torch.zeros(3, dtype=D))
    with pytest.raises(ValueError, match="must not be empty"):
        kl_k3_weight(torch.zeros(0, dtype=D), torch.zeros(0, dtype=D))


# ---- k1 and k2 ---------------------------------------------------------------------------------

def test_k1_k2_hand_values_and_ref_detached():
    logp = torch.log(torch.tensor([0.5, 0.25], dtype=D)).requires_grad_(True)
    logp_ref = torch.log(torch.tensor([0.25, 0.5], dtype=D)).requires_grad_(True)
    assert torch.allclose(kl_k1(logp, logp_ref), torch.tensor([math.log(2), -math.log(2)], dtype=D))
    assert torch.allclose(kl_k2(logp, logp_ref), torch.full((2,), math.log(2) ** 2 / 2, dtype=D))
    (kl_k1(logp, logp_ref).sum() + kl_k2(logp, logp_ref).sum()).backward()
    assert logp_ref.grad is None


def test_values_k1_k3_unbiased_k2_not(gen):
    z, z_ref = _random_categoricals(gen)
    logp, logp_ref = torch.log_softmax(z, -1), torch.log_softmax(z_ref, -1)
    pi = logp.exp()
    kl = kl_divergence(Categorical(logits=z), Categorical(logits=z_ref))
    for k in (kl_k1, kl_k3):
        assert torch.allclose((pi * k(logp, logp_ref)).sum(-1), kl, atol=1e-12)
    assert ((pi * kl_k2(logp, logp_ref)).sum(-1) - kl).abs().max() > 0.05


# ---- kl_penalty: the table of expected gradients (chapter 13) ----------------------------------

def _expected_gradients(gen, batch=40, n=6):
    """For each (estimator, placement, sampling): the exact expected gradient in pi_theta's
    logits z of the penalty, sum_o q(o) grad penalty(o), with q = pi_theta ("on") or pi_old
    ("old": without the weight; "IS": with logp_old given)."""
    z = (torch.randn(batch, n, dtype=D, generator=gen) * 1.5).requires_grad_(True)
    z_ref = torch.randn(batch, n, dtype=D, generator=gen) * 1.5
    z_old = z.detach() + torch.randn(batch, n, dtype=D, generator=gen) * 0.7
    logp, logp_ref, logp_old = (torch.log_softmax(x, -1) for x in (z, z_ref, z_old))
    q = {"on": logp.exp().detach(), "old": logp_old.exp(), "IS": logp_old.exp()}
    out = {}
    for est in ESTIMATORS:
        for place in PLACEMENTS:
            for sampling in q:
                term = kl_penalty(logp, logp_ref, estimator=est, placement=place,
                                  logp_old=logp_old if sampling == "IS" else None)
                (g,) = torch.autograd.grad((q[sampling] * term).sum(), z, retain_graph=True)
                out[(est, place, sampling)] = g
    pi, ref, old = Categorical(logits=z), Categorical(logits=z_ref), Categorical(logits=z_old)

    def grad(f):
        return torch.autograd.grad(f.sum(), z, retain_graph=True)[0]

    truth = {
        "0": torch.zeros_like(z),
        "KL(pi||ref)": grad(kl_divergence(pi, ref)),
        "KL(ref||pi)": grad(kl_divergence(ref, pi)),
        "-KL(old||pi)": -grad(kl_divergence(old, pi)),
        "E_pi[k2]": grad((logp.exp() * kl_k2(logp, logp_ref)).sum(-1)),
    }
    truth["E_pi[k2]-KL(pi||ref)"] = truth["E_pi[k2]"] - truth["KL(pi||ref)"]
    truth["KL(pi||ref)-KL(ref||pi)"] = truth["KL(pi||ref)"] - truth["KL(ref||pi)"]
    return out, truth


#: (estimator, placement, sampling) -> what its expected gradient is (chapter 13's table)
TABLE = {
    ("k1", "loss", "on"): "0",
    ("k1", "loss", "old"): "-KL(old||pi)",
    ("k1", "loss", "IS"): "KL(pi||ref)",
    ("k2", "loss", "on"): "KL(pi||ref)",
    ("k2", "loss", "IS"): "E_pi[k2]",
    ("k3", "loss", "on"): "KL(ref||pi)",
    ("k3", "loss", "IS"): "KL(pi||ref)",
    ("k1", "reward", "on"): "KL(pi||ref)",
    ("k1", "reward", "IS"): "KL(pi||ref)",
    ("k2", "reward", "on"): "E_pi[k2]-KL(pi||ref)",
    ("k2", "reward", "IS"): "E_pi[k2]-KL(pi||ref)",
    ("k3", "reward", "on"): "KL(pi||ref)-KL(ref||pi)",
    ("k3", "reward", "IS"): "KL(pi||ref)-KL(ref||pi)",
}


@pytest.fixture(scope="module")
def table():
    return _expected_gradients(torch.Generator().manual_seed(13))


@pytest.mark.parametrize("cell", sorted(TABLE))
def test_expected_gradient_of_each_placement(table, cell):
    out, truth = table
    assert torch.allclose(out[cell], truth[TABLE[cell]], atol=1e-12), cell
    # and it is none of the other candidates (each cell tells them apart)
    for name, value in truth.items():
        if name != TABLE[cell] and not torch.allclose(value, truth[TABLE[cell]], atol=1e-12):
            assert (out[cell] - value).abs().max() > 1e-3, (cell, name)


def test_the_popular_reading_fails_k3_in_the_loss_is_not_grad_kl_pi_ref(table):
    out, truth = table
    assert (out[("k3", "loss", "on")] - truth["KL(pi||ref)"]).abs().max() > 0.05
    assert (out[("k1", "loss", "on")] - truth["KL(pi||ref)"]).abs().max() > 0.05


def test_kl_penalty_bad_input():
    x = torch.zeros(3, dtype=D)
    with pytest.raises(ValueError, match="estimator"):
        kl_penalty(x, x, estimator="k4", placement="loss")
    with pytest.raises(ValueError, match="placement"):
        kl_penalty(x, x, estimator="k1", placement="advantage")
    with pytest.raises(ValueError, match="shape mismatch"):
        kl_penalty(x, x, estimator="k1", placement="loss", logp_old=torch.zeros(4, dtype=D))
