"""Exact Q, V, A of the tabular MDP (chapter 6): hand-computed values, conditional expectations
over the enumeration, the forms (0.10) and (0.12), SymPy against torch, bad input."""

import pytest
import sympy as sp
import torch

from pgbook.mdp import TabularMDP
from pgbook.returns import reward_to_go
from pgbook.symbolic import assert_identical

F = torch.float64


@pytest.fixture(scope="module")
def mdp():
    return TabularMDP.default()


@pytest.fixture(scope="module")
def u_coords():
    u = sp.symbols("u_0 u_1", positive=True)
    return u, sp.Matrix([[u[0], 1 - u[0]], [u[1], 1 - u[1]]])


def test_hand_computed_values_at_the_uniform_policy(mdp):
    theta = torch.zeros(2, 2, dtype=F)
    Q, V = mdp.q_values(theta), mdp.state_values(theta)
    assert Q.shape == (3, 2, 2) and V.shape == (4, 2)
    # last step: Q_2(s, a) = r(s, a); V_2 = mean over the two actions
    assert torch.allclose(Q[2], torch.tensor([[1.0, 1.5], [-1.0, 0.0]], dtype=F), atol=1e-15)
    assert torch.allclose(V[2], torch.tensor([1.25, -0.5], dtype=F), atol=1e-15)
    assert V[3].tolist() == [0.0, 0.0]
    # Q_1(0, 0) = 1 + 0.9 (4/5 * 5/4 + 1/5 * (-1/2)) = 1.81
    assert Q[1, 0, 0].item() == pytest.approx(1.81, abs=1e-14)
    # Q_1(1, 1) = 0 + 0.9 (1/10 * 5/4 + 9/10 * (-1/2)) = -0.2925
    assert Q[1, 1, 1].item() == pytest.approx(-0.2925, abs=1e-14)
    A = mdp.advantages(theta)
    assert torch.allclose(A[2], torch.tensor([[-0.25, 0.25], [-0.5, 0.5]], dtype=F), atol=1e-15)


def test_bandit_values():
    bandit = TabularMDP.bandit([1, 3, -2])
    theta = torch.tensor([[0.0, 1.0, -1.0]], dtype=F)
    pi = torch.softmax(theta[0], -1)
    Q, V, A = bandit.q_values(theta), bandit.state_values(theta), bandit.advantages(theta)
    assert Q[0, 0].tolist() == [1.0, 3.0, -2.0]
    assert V[0, 0].item() == pytest.approx((pi * torch.tensor([1.0, 3.0, -2.0], dtype=F)).sum())
    assert torch.allclose(A[0, 0], Q[0, 0] - V[0, 0], atol=1e-15)


def _conditional_means(mdp, theta):
    """E[G_t | s_t = s] and E[G_t | s_t = s, a_t = a] by brute force over the enumeration."""
    table, T, S, A = mdp.trajectories, mdp.horizon, mdp.n_states, mdp.n_actions
    p = mdp.trajectory_probs(theta)
    G = reward_to_go(table.rewards, mdp.gamma)
    V = torch.full((T, S), float("nan"), dtype=F)
    Q = torch.full((T, S, A), float("nan"), dtype=F)
    for t in range(T):
        for s in range(S):
            w = p * (table.states[:, t] == s)
            if w.sum() > 0:
                V[t, s] = (w * G[:, t]).sum() / w.sum()
            for a in range(A):
                w = p * (table.states[:, t] == s) * (table.actions[:, t] == a)
                if w.sum() > 0:
                    Q[t, s, a] = (w * G[:, t]).sum() / w.sum()
    return Q, V


def test_values_are_conditional_expected_rewards_to_go(mdp, gen):
    for _ in range(20):
        theta = mdp.random_theta(gen, scale=2.0)
        Q_brute, V_brute = _conditional_means(mdp, theta)
        assert torch.allclose(mdp.q_values(theta), Q_brute, atol=1e-12)
        assert torch.allclose(mdp.state_values(theta)[:-1], V_brute, atol=1e-12)
        assert mdp.J(theta).item() == pytest.approx(
            (mdp.initial * mdp.state_values(theta)[0]).sum().item(), abs=1e-12)


def test_advantages_have_zero_policy_mean(mdp, gen):
    theta = mdp.random_theta(gen, scale=3.0)
    A = mdp.advantages(theta)
    assert (mdp.policy(theta)[None] * A).sum(-1).abs().max() < 1e-13
    assert A.abs().max() > 0.1  # ... but are not zero themselves


def test_values_are_differentiable_and_give_grad_J(mdp, gen):
    theta = mdp.random_theta(gen).requires_grad_(True)
    J = (mdp.initial * mdp.state_values(theta)[0]).sum()
    (g,) = torch.autograd.grad(J, theta)
    assert torch.allclose(g, mdp.grad_J(theta.detach()), atol=1e-13)


def test_forms_0_10_and_0_12_equal_grad_J_only_with_gamma_t(mdp, gen):
    for _ in range(10):
        theta = mdp.random_theta(gen, scale=2.0)
        grad = mdp.grad_J(theta)
        for table in (mdp.q_values(theta), mdp.advantages(theta)):
            psi = mdp.along_trajectories(table, discount_from_start=True)
            assert torch.allclose(mdp.expected_score_weighted(theta, psi), grad, atol=1e-13)
            psi_no_gamma = mdp.along_trajectories(table)
            gap = (mdp.expected_score_weighted(theta, psi_no_gamma) - grad).abs().max()
            assert gap > 1e-4  # gamma = 9/10 < 1: dropping gamma^t changes the expectation


def test_occupancy_matches_the_enumeration(mdp, gen):
    theta = mdp.random_theta(gen, scale=2.0)
    d = mdp.state_occupancy(theta)
    p = mdp.trajectory_probs(theta)
    states = mdp.trajectories.states
    brute = torch.stack([torch.stack([(p * (states[:, t] == s)).sum() for s in range(2)])
                         for t in range(mdp.horizon)])
    assert torch.allclose(d, brute, atol=1e-14)
    assert torch.allclose(d.sum(-1), torch.ones(mdp.horizon, dtype=F), atol=1e-14)


def test_along_trajectories_reads_the_right_entries(mdp):
    table = mdp.trajectories
    T, S, A = mdp.horizon, mdp.n_states, mdp.n_actions
    q = torch.arange(T * S * A, dtype=F).reshape(T, S, A)
    out = mdp.along_trajectories(q)
    i = 37
    s, a = table.states[i].tolist(), table.actions[i].tolist()
    assert out.shape == (len(table), T)
    assert out[i].tolist() == [q[t, s[t], a[t]].item() for t in range(T)]
    v = torch.arange((T + 1) * S, dtype=F).reshape(T + 1, S)
    out_v = mdp.along_trajectories(v, discount_from_start=True)
    assert out_v.shape == (len(table), T + 1)
    assert out_v[i].tolist() == pytest.approx([0.9**t * v[t, s[t]].item() for t in range(T + 1)])
    assert mdp.along_trajectories(v[:T]).shape == (len(table), T)


def test_sympy_values_match_torch(mdp, gen, u_coords):
    u, pi_u = u_coords
    Q_s, V_s, A_s = mdp.q_values_sym(pi_u), mdp.state_values_sym(pi_u), mdp.advantages_sym(pi_u)
    d_s = mdp.state_occupancy_sym(pi_u)
    assert Q_s.shape == (3, 2, 2) and V_s.shape == (4, 2) and d_s.shape == (3, 2)
    fns = [sp.lambdify(u, sp.Array(x).tolist(), "math") for x in (Q_s, V_s, A_s, d_s)]
    for _ in range(10):
        theta = mdp.random_theta(gen, scale=2.0)
        point = mdp.policy(theta)[:, 0].tolist()
        for fn, ref in zip(fns, (mdp.q_values(theta), mdp.state_values(theta),
                                 mdp.advantages(theta), mdp.state_occupancy(theta)), strict=True):
            assert torch.allclose(torch.tensor(fn(*point), dtype=F), ref, atol=1e-13)


def test_sympy_values_in_logits_at_a_rational_point(mdp):
    # logits (0, log 3) and (log 2, 0): pi(.|0) = (1/4, 3/4), pi(.|1) = (2/3, 1/3)
    theta = sp.Matrix([[0, sp.log(3)], [sp.log(2), 0]])
    Q_logits = mdp.q_values_sym(mdp.policy_sym(theta))
    R = sp.Rational
    Q_rational = mdp.q_values_sym(sp.Matrix([[R(1, 4), R(3, 4)], [R(2, 3), R(1, 3)]]))
    assert_identical(sp.Matrix(sp.flatten(Q_logits)), sp.Matrix(sp.flatten(Q_rational)))
    assert all(x.is_Rational for x in sp.flatten(Q_rational)), "rational policy, rational Q"


def test_sympy_forms_0_10_and_0_12(mdp, u_coords):
    u, pi_u = u_coords
    V_s = mdp.state_values_sym(pi_u)
    J = sp.expand(sum(mdp.initial_exact[(s,)] * V_s[0, s] for s in range(2)))
    J_enum = sp.expand(sum(p * R for p, R in zip(mdp._trajectory_probs_pi(pi_u),
                                                  mdp.returns_exact(), strict=True)))
    assert_identical(J, J_enum)
    # d/dtheta[s, 0] = u_s (1 - u_s) d/du_s = -d/dtheta[s, 1]
    grad = sp.Matrix(2, 2, lambda s, a: (1 - 2 * a) * J.diff(u[s]) * u[s] * (1 - u[s]))
    for table in (mdp.q_values_sym(pi_u), mdp.advantages_sym(pi_u)):
        psi = mdp.along_trajectories_sym(table, discount_from_start=True)
        assert_identical(grad, mdp.expected_score_weighted_sym(pi_u, psi))
    psi = mdp.along_trajectories_sym(mdp.q_values_sym(pi_u))  # no gamma^t: not the gradient
    with pytest.raises(AssertionError, match="does not hold"):
        assert_identical(grad, mdp.expected_score_weighted_sym(pi_u, psi))


def test_expected_score_weighted_sym_matches_torch(mdp, gen, u_coords):
    u, pi_u = u_coords
    c = sp.symbols("c_0:3")
    psi = [[c[t] * (i % 5) for t in range(3)] for i in range(len(mdp.trajectories))]
    expr = mdp.expected_score_weighted_sym(pi_u, psi)
    fn = sp.lambdify((*u, *c), expr.tolist(), "math")
    theta = mdp.random_theta(gen)
    cs = [0.3, -1.2, 2.0]
    psi_t = torch.tensor([[cs[t] * (i % 5) for t in range(3)]
                          for i in range(len(mdp.trajectories))], dtype=F)
    expected = mdp.expected_score_weighted(theta, psi_t)
    got = torch.tensor(fn(*mdp.policy(theta)[:, 0].tolist(), *cs), dtype=F)
    assert torch.allclose(got, expected, atol=1e-13)
    # one weight per trajectory is broadcast over the steps
    same = mdp.expected_score_weighted_sym(pi_u, [p[0] for p in psi])
    assert_identical(same, mdp.expected_score_weighted_sym(pi_u, [[p[0]] * 3 for p in psi]))


@pytest.mark.parametrize("values, match", [
    (torch.zeros(3, 2, dtype=F), None),
    (torch.zeros(2, 2, 2, dtype=F), "values must have shape"),
    (torch.zeros(5, 2, dtype=F), "values must have shape"),
    (torch.zeros(3, 2, 2, dtype=torch.long), "floating"),
    ([[0.0]], "torch.Tensor"),
])
def test_along_trajectories_bad_input(mdp, values, match):
    if match is None:
        assert mdp.along_trajectories(values).shape == (128, 3)
        return
    with pytest.raises(ValueError, match=match):
        mdp.along_trajectories(values)


def test_symbolic_bad_input(mdp, u_coords):
    _, pi_u = u_coords
    with pytest.raises(ValueError, match="pi must be a SymPy Matrix"):
        mdp.q_values_sym(sp.Matrix([[1, 0]]))
    with pytest.raises(ValueError, match="pi must be a SymPy Matrix"):
        mdp.state_occupancy_sym([[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="SymPy Array"):
        mdp.along_trajectories_sym([[0] * 3] * 128)
    with pytest.raises(ValueError, match="values must have shape"):
        mdp.along_trajectories_sym(sp.Array([[0] * 2] * 2))
    with pytest.raises(ValueError, match="128 rows"):
        mdp.expected_score_weighted_sym(pi_u, [0] * 5)
    with pytest.raises(ValueError, match=r"psi\[0\] must have 3 entries"):
        mdp.expected_score_weighted_sym(pi_u, [[0, 0]] * 128)
    with pytest.raises(ValueError, match="theta must have shape"):
        mdp.q_values(torch.zeros(3, 2, dtype=F))
