"""The objectives and weights the table's rows use, from pgbook.objectives and TabularMDP
(moved here from the old tests/test_table.py when the table stopped re-exporting them)."""

import math

import pytest
import torch
from torch.distributions import Categorical, kl_divergence

from pgbook.mdp import TabularMDP
from pgbook.objectives import (
    a2c,
    a2c_weight,
    actor_critic,
    actor_critic_weight,
    dpg,
    dpg_gradient,
    kl_k3_weight,
    kl_weight,
    sac_policy,
    sac_policy_weight,
)

D = torch.float64


# ---- actor-critic and A2C weights ---------------------------------------------------------------

def test_actor_critic_weight_hand_values():
    q = torch.tensor([[1.0, 2.0, 4.0]], dtype=D)
    assert torch.equal(actor_critic_weight(q), q)
    assert torch.allclose(actor_critic_weight(q, gamma=0.5), torch.tensor([[1.0, 1, 1]], dtype=D))
    assert torch.equal(a2c_weight(q, gamma=0.5), actor_critic_weight(q, gamma=0.5))


def test_actor_critic_surrogate_gradient(gen):
    logits = torch.randn(4, 3, 2, dtype=D, generator=gen, requires_grad=True)
    actions = torch.randint(0, 2, (4, 3), generator=gen)
    logp = torch.log_softmax(logits, -1).gather(-1, actions[..., None])[..., 0]
    q = torch.randn(4, 3, dtype=D, generator=gen)
    (g,) = torch.autograd.grad(actor_critic(logp, q, gamma=0.9), logits)
    score = torch.nn.functional.one_hot(actions, 2).double() - torch.softmax(logits.detach(), -1)
    psi = q * 0.9 ** torch.arange(3, dtype=D)
    assert torch.allclose(g, score * psi[..., None] / 4, atol=1e-14)
    assert a2c(logp, q).item() == pytest.approx(actor_critic(logp, q).item())


@pytest.mark.parametrize("q, gamma, match", [
    (torch.zeros(3, dtype=D), None, "2 dimension"),
    (torch.zeros(2, 3, dtype=D), 1.5, "gamma must be <= 1"),
    (torch.zeros(0, 3, dtype=D), None, "must not be empty"),
])
def test_actor_critic_weight_validates(q, gamma, match):
    with pytest.raises(ValueError, match=match):
        actor_critic_weight(q, gamma=gamma)


# ---- soft values and SAC ----------------------------------------------------------------------

def test_soft_values_reduce_to_hard_values_at_alpha_zero(gen):
    mdp = TabularMDP.default()
    theta = mdp.random_theta(gen)
    Q, V_ = mdp.q_values(theta, alpha=0.0), mdp.state_values(theta, alpha=0.0)
    assert torch.allclose(Q, mdp.q_values(theta), atol=1e-14)
    assert torch.allclose(V_, mdp.state_values(theta), atol=1e-14)
    assert mdp.J(theta, alpha=0.0).item() == pytest.approx(mdp.J(theta).item(), abs=1e-14)


def test_soft_J_is_J_plus_discounted_entropy_and_the_soft_value(gen):
    mdp = TabularMDP.default()
    theta, alpha = mdp.random_theta(gen, 2.0), 0.7
    pi = mdp.policy(theta)
    entropy = -(pi * torch.log(pi)).sum(-1)                                   # (S,)
    d = mdp.state_occupancy(theta)                                            # (T, S)
    discounted_entropy = sum(mdp.gamma**t * (d[t] * entropy).sum() for t in range(mdp.horizon))
    soft = mdp.J(theta, alpha=alpha)
    assert soft.item() == pytest.approx((mdp.J(theta) + alpha * discounted_entropy).item(),
                                        abs=1e-13)
    V0 = mdp.state_values(theta, alpha=alpha)[0]
    assert soft.item() == pytest.approx((mdp.initial * V0).sum().item(), abs=1e-13)


def test_soft_policy_gradient_weight_is_exact(gen):
    mdp = TabularMDP.default()
    for _ in range(5):
        theta, alpha = mdp.random_theta(gen, 3.0), 0.4
        theta_ = theta.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(mdp.J(theta_, alpha=alpha), theta_)
        psi = mdp.soft_policy_gradient_weight(theta, alpha)
        assert torch.allclose(mdp.expected_score_weighted(theta, psi), g, atol=1e-13)


def test_soft_functions_validate():
    mdp = TabularMDP.default()
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        mdp.J(torch.zeros(2, 2, dtype=D), alpha=-1.0)
    with pytest.raises(ValueError, match="theta must have shape"):
        mdp.q_values(torch.zeros(3, 2, dtype=D), alpha=0.1)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        mdp.soft_policy_gradient_weight(torch.zeros(2, 2, dtype=D), -0.1)


def test_sac_policy_and_its_weight():
    q = torch.tensor([1.0, 3.0], dtype=D)
    logp = torch.tensor([-1.0, -2.0], dtype=D)
    assert sac_policy(q, logp, 0.5).item() == pytest.approx((1.5 + 4.0) / 2)
    w = torch.tensor([0.25, 0.75], dtype=D)
    assert sac_policy(q, logp, 0.5, weights=w).item() == pytest.approx(0.25 * 1.5 + 0.75 * 4.0)
    psi = sac_policy_weight(q, logp, 0.5, baseline=torch.tensor(1.0, dtype=D))
    assert torch.equal(psi, torch.tensor([0.5, 3.0], dtype=D))
    with pytest.raises(ValueError, match="sum to 1"):
        sac_policy(q, logp, 0.5, weights=torch.tensor([0.5, 0.6], dtype=D))
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        sac_policy_weight(q, logp, -0.1)
    with pytest.raises(ValueError, match="broadcast"):
        sac_policy_weight(q, logp, 0.1, baseline=torch.zeros(3, dtype=D))


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


# ---- DPG ---------------------------------------------------------------------------------------

def test_dpg_gradient_hand_example():
    # mu_theta(s) = theta_0 + theta_1 s (m = 1, d = 2), Q(s, a) = -(a - 2)^2 at s = 3, theta = 0:
    # grad_theta mu = (1, 3), grad_a Q = -2 (0 - 2) = 4, so the DPG is (4, 12).
    jac = torch.tensor([[[1.0, 3.0]]], dtype=D)
    grad_a = torch.tensor([[4.0]], dtype=D)
    assert torch.equal(dpg_gradient(jac, grad_a), torch.tensor([4.0, 12.0], dtype=D))
    theta = torch.zeros(2, dtype=D, requires_grad=True)
    states = torch.tensor([[3.0]], dtype=D)
    actions = (theta[0] + theta[1] * states[:, :1])
    J = dpg(lambda s, a: -(a[:, 0] - 2) ** 2, states, actions)
    (g,) = torch.autograd.grad(J, theta)
    assert torch.equal(g, torch.tensor([4.0, 12.0], dtype=D))


def test_dpg_validates():
    with pytest.raises(ValueError, match="callable"):
        dpg(None, torch.zeros(2, 1, dtype=D), torch.zeros(2, 1, dtype=D))
    with pytest.raises(ValueError, match="same number"):
        dpg(lambda s, a: a[:, 0], torch.zeros(2, 1, dtype=D), torch.zeros(3, 1, dtype=D))
    with pytest.raises(ValueError, match="shape \\(2,\\)"):
        dpg(lambda s, a: a, torch.zeros(2, 1, dtype=D), torch.zeros(2, 1, dtype=D))
    with pytest.raises(ValueError, match="must be \\(B, m, d\\)"):
        dpg_gradient(torch.zeros(2, 1, 3, dtype=D), torch.zeros(2, 2, dtype=D))
