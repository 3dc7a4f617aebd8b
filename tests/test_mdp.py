import pytest
import sympy as sp
import torch

from pgbook.mdp import TabularMDP
from pgbook.returns import reward_to_go
from pgbook.symbolic import assert_identical


@pytest.fixture(scope="module")
def mdp():
    return TabularMDP.default()


def test_default_is_small_and_complete(mdp):
    assert (mdp.n_states, mdp.n_actions, mdp.horizon) == (2, 2, 3)
    assert len(mdp.trajectories) == 2 * (2 * 2) ** 3
    assert sum(mdp.trajectories.dynamics_prob_exact) == 2 ** 3  # one per action sequence


def test_trajectory_probabilities_sum_to_one(mdp, gen):
    for _ in range(20):
        theta = mdp.random_theta(gen, scale=3.0)
        assert abs(mdp.trajectory_probs(theta).sum().item() - 1) < 1e-12


def test_symbolic_probabilities_sum_to_one_exactly(mdp):
    assert_identical(sp.Add(*mdp.trajectory_probs_sym(mdp.theta_symbols())), 1)


def test_symbolic_and_torch_J_agree(mdp, gen):
    theta_s = mdp.theta_symbols()
    J = sp.lambdify(list(theta_s), mdp.J_sym(theta_s), "math")
    for _ in range(30):
        theta = mdp.random_theta(gen, scale=2.0)
        assert abs(J(*theta.flatten().tolist()) - mdp.J(theta).item()) < 1e-12


def test_uniform_policy_value_is_exact_rational(mdp):
    J0 = mdp.J_sym(sp.zeros(2, 2))
    assert J0.is_Rational
    assert float(J0) == pytest.approx(mdp.J(torch.zeros(2, 2, dtype=torch.float64)).item(),
                                      abs=1e-14)


def test_grad_J_matches_finite_differences(mdp, gen):
    theta = mdp.random_theta(gen)
    grad = mdp.grad_J(theta)
    h = 1e-6
    for s in range(2):
        for a in range(2):
            e = torch.zeros_like(theta)
            e[s, a] = h
            fd = (mdp.J(theta + e) - mdp.J(theta - e)) / (2 * h)
            assert abs(fd.item() - grad[s, a].item()) < 1e-8


def test_score_form_with_gamma_t_equals_grad_and_without_it_does_not(mdp, gen):
    theta = mdp.random_theta(gen)
    R = mdp.returns()
    rtg_t = reward_to_go(mdp.trajectories.rewards, mdp.gamma, discount_from_start=True)
    rtg = reward_to_go(mdp.trajectories.rewards, mdp.gamma)
    g = mdp.grad_J(theta)
    assert torch.allclose(mdp.expected_score_weighted(theta, R), g, atol=1e-13)
    assert torch.allclose(mdp.expected_score_weighted(theta, rtg_t), g, atol=1e-13)
    assert (mdp.expected_score_weighted(theta, rtg) - g).abs().max() > 1e-3


def test_sampling_frequencies_match_exact_probabilities(mdp):
    gen = torch.Generator().manual_seed(0)
    theta = torch.tensor([[0.3, -0.2], [1.0, 0.0]], dtype=torch.float64)
    n = 20000
    batch = mdp.sample(theta, n, gen)
    # empirical frequency of the first action in state 0 at t = 0 vs pi(0|0)
    at_s0 = batch.states[:, 0] == 0
    freq = (batch.actions[at_s0, 0] == 0).double().mean().item()
    p = mdp.policy(theta)[0, 0].item()
    se = (p * (1 - p) / at_s0.sum().item()) ** 0.5
    assert abs(freq - p) < 4 * se
    # Monte-Carlo J within 4 standard errors of the exact J
    R = (batch.rewards * mdp.gamma ** torch.arange(3, dtype=torch.float64)).sum(1)
    assert abs(R.mean().item() - mdp.J(theta).item()) < 4 * R.std().item() / n**0.5


def test_bandit_is_a_one_step_mdp():
    b = TabularMDP.bandit([1, 2, "1/2"])
    assert len(b.trajectories) == 3
    theta = torch.zeros(1, 3, dtype=torch.float64)
    assert b.J(theta).item() == pytest.approx(3.5 / 3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(transitions=[[["1/2", "2/5"]], [[0, 1]]], rewards=[[1], [1]], initial=[1, 0],
          horizon=1, gamma=1),
     r"transitions\[0\]\[0\] must be a probability vector"),
    (dict(transitions=[[[1]]], rewards=[[1]], initial=[1], horizon=0, gamma=1), "horizon"),
    (dict(transitions=[[[1]]], rewards=[[1]], initial=[1], horizon=1, gamma="3/2"), "gamma"),
    (dict(transitions=[[[1]]], rewards=[[1]], initial=["1/2"], horizon=1, gamma=1), "initial"),
    (dict(transitions=[[[1]]], rewards=[[1, 2]], initial=[1], horizon=1, gamma=1), "rewards"),
    (dict(transitions=[[[1, 0]], [[0, 1]]], rewards=[[1], [1]], initial=[1], horizon=1,
          gamma=1), "initial must have shape"),
    (dict(transitions=[[[1]]], rewards=[[object()]], initial=[1], horizon=1, gamma=1),
     "numbers"),
])
def test_construction_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TabularMDP(**kwargs)


def test_theta_and_psi_are_validated(mdp):
    with pytest.raises(ValueError, match=r"theta must have shape \(2, 2\)"):
        mdp.J(torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="floating"):
        mdp.J(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="non-finite"):
        mdp.J(torch.full((2, 2), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="psi must have shape"):
        mdp.expected_score_weighted(torch.zeros(2, 2, dtype=torch.float64),
                                    torch.zeros(5, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="n must be"):
        mdp.sample(torch.zeros(2, 2, dtype=torch.float64), 0)
