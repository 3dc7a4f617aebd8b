"""The exact side of the tabular MDP (pgbook.mdp_exact): reading numbers as rationals, and the
SymPy twins of Q, V, A, d_t, p(tau) and the expected score-weighted sum, each against torch and
against the forms (0.10) and (0.12)."""

import pytest
import sympy as sp
import torch

from pgbook.mdp import TabularMDP
from pgbook.mdp_exact import check_value_table, exact_to_torch, nested_depth, read_exact
from pgbook.symbolic import assert_identical

F = torch.float64


@pytest.fixture(scope="module")
def mdp():
    return TabularMDP.default()


@pytest.fixture(scope="module")
def u_coords():
    u = sp.symbols("u_0 u_1", positive=True)
    return u, sp.Matrix([[u[0], 1 - u[0]], [u[1], 1 - u[1]]])


def test_read_exact_keeps_the_printed_decimal():
    assert read_exact(0.1, "x") == sp.Rational(1, 10)  # not the binary float 0.1000000000000000055
    assert read_exact("3/7", "x") == sp.Rational(3, 7)
    with pytest.raises(ValueError, match="x must contain rational numbers"):
        read_exact(sp.sqrt(2), "x")
    with pytest.raises(ValueError, match="x must contain numbers"):
        read_exact(None, "x")


def test_helpers_on_small_tables():
    assert nested_depth([[[1], [2]]]) == 3 and nested_depth(5) == 0
    t = exact_to_torch({(0, 1): sp.Rational(1, 4), (0, 0): sp.Integer(1)}, (1, 2))
    assert t.dtype == F and t.tolist() == [[1.0, 0.25]]
    assert check_value_table((4, 2), 3, 2, 2) == (4, 2)
    with pytest.raises(ValueError, match="values must have shape"):
        check_value_table((3, 3), 3, 2, 2)


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
    J_enum = sp.expand(sum(p * R for p, R in zip(mdp.trajectory_probs_of(pi_u),
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


def test_trajectory_probs_of_a_policy_matrix(mdp, gen, u_coords):
    u, pi_u = u_coords
    probs = mdp.trajectory_probs_of(pi_u)
    assert len(probs) == len(mdp.trajectories)
    assert_identical(sp.Add(*probs), 1)
    theta = mdp.random_theta(gen, scale=2.0)
    point = dict(zip(u, mdp.policy(theta)[:, 0].tolist(), strict=True))
    numeric = torch.tensor([float(p.subs(point)) for p in probs], dtype=F)
    assert torch.allclose(numeric, mdp.trajectory_probs(theta), atol=1e-13)
    with pytest.raises(ValueError, match="pi must be a SymPy Matrix"):
        mdp.trajectory_probs_of([[1, 0], [0, 1]])


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
