import dataclasses
import math

import matplotlib.pyplot as plt
import pytest
import torch

from pgbook import plot, table
from pgbook.mdp import TabularMDP

D = torch.float64
KEYS = [r.key for r in table.rows()]
WEIGHTED_HOLDING = [r.key for r in table.rows() if r.holds and r.weight is not None]


# ---- every row is what the book claims; a wrong weight is caught -----------------------------

@pytest.mark.parametrize("key", KEYS)
def test_row_autograd_as_claimed(key):
    rep = table.check(table.row(key), n=6, seed=3, sympy=False)
    assert rep.holds == rep.row.holds, rep
    assert rep.as_claimed
    if rep.row.holds:
        assert rep.error.max_abs_err < rep.row.atol
    else:  # a source form fails by a visible margin, not by rounding
        assert rep.error.max_abs_err > 1e-3


@pytest.mark.parametrize("key", KEYS)
def test_row_sympy_as_claimed(key):
    row = table.row(key)
    assert row.sympy is not None
    assert row.sympy() is row.holds


@pytest.mark.parametrize("key", WEIGHTED_HOLDING)
def test_wrong_weight_fails(key):
    row = table.row(key)
    wrong = dataclasses.replace(row, weight=lambda *case: 1.001 * row.weight(*case) + 1e-3)
    rep = table.check(wrong, n=6, sympy=False)
    assert not rep.holds and not rep.as_claimed


def test_wrong_dpg_closed_form_fails():
    row = table.row("dpg")
    wrong = dataclasses.replace(row, closed_form=lambda *case: 1.01 * row.closed_form(*case))
    assert not table.check(wrong, n=4, sympy=False).holds


def test_dropping_the_entropy_or_gamma_from_sac_fails():
    mdp, row = TabularMDP.default(), table.row("sac")
    no_gamma = dataclasses.replace(row, weight=lambda th, alpha, *_: table.a2c_weight(
        mdp.along_trajectories(table.soft_values(mdp, th, float(alpha))[0])
        - float(alpha) * mdp.action_log_probs(th)
        - mdp.along_trajectories(table.soft_values(mdp, th, float(alpha))[1])[:, :-1]))
    assert not table.check(no_gamma, n=4, sympy=False).holds


def test_render_is_deterministic_and_complete():
    reps = [table.check(table.row(k), n=4, sympy=False) for k in ("pg", "a2c-src")]
    text = table.render(reps)
    assert text == table.render([table.check(table.row(k), n=4, sympy=False)
                                 for k in ("pg", "a2c-src")])
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["row", "form", "n"]
    assert lines[2] == "PG theorem (0.6)" and lines[5] == "A2C (0.12)"
    assert lines[3].split()[0] == "pg" and "< 1e-11" in lines[3] and "holds" in lines[3]
    assert "fails" in lines[6] and lines[6].split()[-2:] == ["-", "yes"]
    assert lines[4].strip() == "Ψ = R(τ);  grad of J exact"
    assert max(len(line) for line in lines) <= 90


def test_check_and_lookup_validate():
    with pytest.raises(ValueError, match="n must be >= 1"):
        table.check(table.row("pg"), n=0)
    with pytest.raises(ValueError, match="seed"):
        table.check(table.row("pg"), seed=-1)
    with pytest.raises(ValueError, match="table.Row"):
        table.check("pg")
    with pytest.raises(ValueError, match="no row with key"):
        table.row("reinforce++")
    with pytest.raises(ValueError, match="non-empty list"):
        table.render([])


def test_keys_unique_and_source_rows_paired():
    assert len(set(KEYS)) == len(KEYS)
    for r in table.rows():
        if r.form == "source":
            assert any(o.algorithm == r.algorithm and o.holds for o in table.rows()), r.key


# ---- actor-critic and A2C weights ---------------------------------------------------------------

def test_actor_critic_weight_hand_values():
    q = torch.tensor([[1.0, 2.0, 4.0]], dtype=D)
    assert torch.equal(table.actor_critic_weight(q), q)
    assert torch.allclose(table.actor_critic_weight(q, gamma=0.5), torch.tensor([[1.0, 1, 1]],
                                                                                dtype=D))
    assert torch.equal(table.a2c_weight(q, gamma=0.5), table.actor_critic_weight(q, gamma=0.5))


def test_actor_critic_surrogate_gradient(gen):
    logits = torch.randn(4, 3, 2, dtype=D, generator=gen, requires_grad=True)
    actions = torch.randint(0, 2, (4, 3), generator=gen)
    logp = torch.log_softmax(logits, -1).gather(-1, actions[..., None])[..., 0]
    q = torch.randn(4, 3, dtype=D, generator=gen)
    (g,) = torch.autograd.grad(table.actor_critic(logp, q, gamma=0.9), logits)
    score = torch.nn.functional.one_hot(actions, 2).double() - torch.softmax(logits.detach(), -1)
    psi = q * 0.9 ** torch.arange(3, dtype=D)
    assert torch.allclose(g, score * psi[..., None] / 4, atol=1e-14)
    assert table.a2c(logp, q).item() == pytest.approx(table.actor_critic(logp, q).item())


@pytest.mark.parametrize("q, gamma, match", [
    (torch.zeros(3, dtype=D), None, "2 dimension"),
    (torch.zeros(2, 3, dtype=D), 1.5, "gamma must be <= 1"),
    (torch.zeros(0, 3, dtype=D), None, "must not be empty"),
])
def test_actor_critic_weight_validates(q, gamma, match):
    with pytest.raises(ValueError, match=match):
        table.actor_critic_weight(q, gamma=gamma)


# ---- soft values and SAC ----------------------------------------------------------------------

def test_soft_values_reduce_to_hard_values_at_alpha_zero(gen):
    mdp = TabularMDP.default()
    theta = mdp.random_theta(gen)
    Q, V_ = table.soft_values(mdp, theta, 0.0)
    assert torch.allclose(Q, mdp.q_values(theta), atol=1e-14)
    assert torch.allclose(V_, mdp.state_values(theta), atol=1e-14)
    assert table.soft_J(mdp, theta, 0.0).item() == pytest.approx(mdp.J(theta).item(), abs=1e-14)


def test_soft_J_is_J_plus_discounted_entropy_and_the_soft_value(gen):
    mdp = TabularMDP.default()
    theta, alpha = mdp.random_theta(gen, 2.0), 0.7
    pi = mdp.policy(theta)
    entropy = -(pi * torch.log(pi)).sum(-1)                                   # (S,)
    d = mdp.state_occupancy(theta)                                            # (T, S)
    discounted_entropy = sum(mdp.gamma**t * (d[t] * entropy).sum() for t in range(mdp.horizon))
    soft = table.soft_J(mdp, theta, alpha)
    assert soft.item() == pytest.approx((mdp.J(theta) + alpha * discounted_entropy).item(),
                                        abs=1e-13)
    V0 = table.soft_values(mdp, theta, alpha)[1][0]
    assert soft.item() == pytest.approx((mdp.initial * V0).sum().item(), abs=1e-13)


def test_soft_policy_gradient_weight_is_exact(gen):
    mdp = TabularMDP.default()
    for _ in range(5):
        theta, alpha = mdp.random_theta(gen, 3.0), 0.4
        theta_ = theta.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(table.soft_J(mdp, theta_, alpha), theta_)
        psi = table.soft_policy_gradient_weight(mdp, theta, alpha)
        assert torch.allclose(mdp.expected_score_weighted(theta, psi), g, atol=1e-13)


def test_soft_functions_validate():
    mdp = TabularMDP.default()
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        table.soft_J(mdp, torch.zeros(2, 2, dtype=D), -1.0)
    with pytest.raises(ValueError, match="theta must have shape"):
        table.soft_values(mdp, torch.zeros(3, 2, dtype=D), 0.1)
    with pytest.raises(ValueError, match="TabularMDP"):
        table.soft_J("mdp", torch.zeros(2, 2, dtype=D), 0.1)


def test_sac_policy_and_its_weight():
    q = torch.tensor([1.0, 3.0], dtype=D)
    logp = torch.tensor([-1.0, -2.0], dtype=D)
    assert table.sac_policy(q, logp, 0.5).item() == pytest.approx((1.5 + 4.0) / 2)
    w = torch.tensor([0.25, 0.75], dtype=D)
    assert table.sac_policy(q, logp, 0.5, weights=w).item() == pytest.approx(
        0.25 * 1.5 + 0.75 * 4.0)
    psi = table.sac_policy_weight(q, logp, 0.5, baseline=torch.tensor(1.0, dtype=D))
    assert torch.equal(psi, torch.tensor([0.5, 3.0], dtype=D))
    with pytest.raises(ValueError, match="sum to 1"):
        table.sac_policy(q, logp, 0.5, weights=torch.tensor([0.5, 0.6], dtype=D))
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        table.sac_policy_weight(q, logp, -0.1)
    with pytest.raises(ValueError, match="broadcast"):
        table.sac_policy_weight(q, logp, 0.1, baseline=torch.zeros(3, dtype=D))


# ---- KL weights ---------------------------------------------------------------------------------

def test_kl_weights_hand_values():
    logp = torch.log(torch.tensor([0.5, 0.25], dtype=D))
    logp_ref = torch.log(torch.tensor([0.25, 0.5], dtype=D))
    assert torch.allclose(table.kl_k3_weight(logp, logp_ref), torch.tensor([0.5, -1.0], dtype=D))
    assert torch.allclose(table.kl_weight(logp, logp_ref),
                          torch.tensor([math.log(2), -math.log(2)], dtype=D))
    assert torch.equal(table.kl_k3_weight(logp, logp), torch.zeros(2, dtype=D))


def test_k3_gradient_is_the_reverse_kl_gradient(gen):
    from torch.distributions import Categorical, kl_divergence
    z = torch.randn(6, dtype=D, generator=gen, requires_grad=True)
    z_ref = torch.randn(6, dtype=D, generator=gen)
    pi = torch.softmax(z.detach(), -1)
    score = torch.eye(6, dtype=D) - pi
    psi = table.kl_k3_weight(torch.log(pi), torch.log_softmax(z_ref, -1))
    (g_rev,) = torch.autograd.grad(kl_divergence(Categorical(logits=z_ref),
                                                 Categorical(logits=z)), z)
    (g_fwd,) = torch.autograd.grad(kl_divergence(Categorical(logits=z),
                                                 Categorical(logits=z_ref)), z)
    assert torch.allclose((pi * psi) @ score, g_rev, atol=1e-14)
    assert not torch.allclose((pi * psi) @ score, g_fwd, atol=1e-3)


def test_kl_weights_validate():
    with pytest.raises(ValueError, match="shape mismatch"):
        table.kl_weight(torch.zeros(2, dtype=D), torch.zeros(3, dtype=D))
    with pytest.raises(ValueError, match="must not be empty"):
        table.kl_k3_weight(torch.zeros(0, dtype=D), torch.zeros(0, dtype=D))


# ---- DPG ---------------------------------------------------------------------------------------

def test_dpg_gradient_hand_example():
    # mu_theta(s) = theta_0 + theta_1 s (m = 1, d = 2), Q(s, a) = -(a - 2)^2 at s = 3, theta = 0:
    # grad_theta mu = (1, 3), grad_a Q = -2 (0 - 2) = 4, so the DPG is (4, 12).
    jac = torch.tensor([[[1.0, 3.0]]], dtype=D)
    grad_a = torch.tensor([[4.0]], dtype=D)
    assert torch.equal(table.dpg_gradient(jac, grad_a), torch.tensor([4.0, 12.0], dtype=D))
    theta = torch.zeros(2, dtype=D, requires_grad=True)
    states = torch.tensor([[3.0]], dtype=D)
    actions = (theta[0] + theta[1] * states[:, :1])
    J = table.dpg(lambda s, a: -(a[:, 0] - 2) ** 2, states, actions)
    (g,) = torch.autograd.grad(J, theta)
    assert torch.equal(g, torch.tensor([4.0, 12.0], dtype=D))


def test_dpg_validates():
    with pytest.raises(ValueError, match="callable"):
        table.dpg(None, torch.zeros(2, 1, dtype=D), torch.zeros(2, 1, dtype=D))
    with pytest.raises(ValueError, match="same number"):
        table.dpg(lambda s, a: a[:, 0], torch.zeros(2, 1, dtype=D), torch.zeros(3, 1, dtype=D))
    with pytest.raises(ValueError, match="shape \\(2,\\)"):
        table.dpg(lambda s, a: a, torch.zeros(2, 1, dtype=D), torch.zeros(2, 1, dtype=D))
    with pytest.raises(ValueError, match="must be \\(B, m, d\\)"):
        table.dpg_gradient(torch.zeros(2, 1, 3, dtype=D), torch.zeros(2, 2, dtype=D))


# ---- diagram helpers (pgbook.plot) ---------------------------------------------------------------

def test_diagram_boxes_and_arrows():
    fig, ax = plot.diagram(4.0, 2.0)
    a = plot.box(ax, 1.0, 1.0, "policy $\\pi_\\theta$")
    b = plot.box(ax, 3.0, 1.0, "environment", color="#f3f3f3")
    assert (a.x, a.y, a.width) == (1.0, 1.0, 1.5)
    arr = plot.arrow(ax, a, b, "action", rad=0.2)
    plot.arrow(ax, (0.1, 0.1), b)
    assert arr in ax.patches and ax.get_xlim() == (0.0, 4.0)
    with pytest.raises(ValueError, match="width must be a positive"):
        plot.box(ax, 0.0, 0.0, "x", width=0)
    with pytest.raises(ValueError, match="Box or an"):
        plot.arrow(ax, a, "environment")
    with pytest.raises(ValueError, match="height must be a positive"):
        plot.diagram(3.0, -1.0)
    plt.close(fig)
