"""The tabular MDP (pgbook.mdp): its enumeration, J and grad J of (0.1)-(0.2), sampling, the
exact expected score-weighted sum and per-trajectory estimates, and the exact values Q, V, A and
d_t of chapter 6, hard and soft (chapter 11), each against a brute-force or hand computation."""

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


# ---------------------------------------------------------------- per_trajectory_gradients
def _autograd_per_trajectory(theta, states, actions, psi):
    """Reference: for each trajectory i, autograd of sum_t Psi_{i,t} log pi_theta(a_t|s_t)."""
    out = []
    for i in range(actions.shape[0]):
        th = theta.detach().clone().requires_grad_(True)
        log_pi = torch.log_softmax(th, dim=-1)[states[i, :-1], actions[i]]
        (g,) = torch.autograd.grad((psi[i] * log_pi).sum(), th)
        out.append(g)
    return torch.stack(out)


def _small_mdp():
    """3 states, 2 actions, T = 2: S != A, so a row mix-up cannot pass by accident."""
    return TabularMDP(
        transitions=[[["1/2", "1/4", "1/4"], [0, "1/3", "2/3"]],
                     [["1/5", "4/5", 0], [1, 0, 0]],
                     [["1/3", "1/3", "1/3"], ["1/10", "1/10", "4/5"]]],
        rewards=[[1, -2], ["1/2", 0], [3, -1]], initial=["1/2", 0, "1/2"], horizon=2,
        gamma="4/5")


@pytest.mark.parametrize("which", ["default", "small", "bandit"])
def test_per_trajectory_gradients_match_autograd(mdp, gen, which):
    m = {"default": mdp, "small": _small_mdp(), "bandit": TabularMDP.bandit([1, -2, 3])}[which]
    n, T = len(m.trajectories), m.horizon
    table = m.trajectories
    for _ in range(10):
        theta = m.random_theta(gen, scale=3.0)
        psi = torch.randn(n, T, dtype=torch.float64, generator=gen)
        g = m.per_trajectory_gradients(theta, psi)
        assert g.shape == (n, m.n_states, m.n_actions) and g.dtype == torch.float64
        ref = _autograd_per_trajectory(theta, table.states, table.actions, psi)
        assert torch.allclose(g, ref, rtol=0, atol=1e-12)
        # one weight per trajectory, (N,), is the same weight at every step
        w = torch.randn(n, dtype=torch.float64, generator=gen)
        assert torch.equal(m.per_trajectory_gradients(theta, w),
                           m.per_trajectory_gradients(theta, w[:, None].expand(n, T)))
        # weighted by p(tau), they sum to the exact expectation
        p = m.trajectory_probs(theta)
        assert torch.allclose(torch.einsum("n,nsa->sa", p, g),
                              m.expected_score_weighted(theta, psi), rtol=0, atol=1e-12)
        # sampled trajectories
        batch = m.sample(theta, 40, gen)
        psi_b = torch.randn(40, T, dtype=torch.float64, generator=gen)
        ref_b = _autograd_per_trajectory(theta, batch.states, batch.actions, psi_b)
        assert torch.allclose(m.per_trajectory_gradients(theta, psi_b, batch), ref_b,
                              rtol=0, atol=1e-12)


def test_the_autograd_comparison_catches_a_wrong_score(mdp, gen):
    """The comparison above is not vacuous: scores without the -pi(.|s_t) term, or added into
    row a_t instead of row s_t, fail it."""
    table, n, T = mdp.trajectories, len(mdp.trajectories), mdp.horizon
    theta = mdp.random_theta(gen, scale=1.0)
    psi = torch.randn(n, T, dtype=torch.float64, generator=gen)
    ref = _autograd_per_trajectory(theta, table.states, table.actions, psi)
    s_t, a_t = table.states[:, :-1], table.actions
    one_hot = torch.nn.functional.one_hot(a_t, mdp.n_actions).to(torch.float64)
    pi = mdp.policy(theta)

    def scattered(rows, score):
        idx = rows[..., None].expand(n, T, mdp.n_actions)
        return torch.zeros(n, mdp.n_states, mdp.n_actions, dtype=torch.float64).scatter_add_(
            1, idx, score * psi[..., None])

    right = scattered(s_t, one_hot - pi[s_t])
    no_minus_pi = scattered(s_t, one_hot)
    wrong_row = scattered(a_t, one_hot - pi[s_t])
    assert torch.allclose(right, ref, rtol=0, atol=1e-12)
    assert torch.equal(right, mdp.per_trajectory_gradients(theta, psi))
    for wrong in (no_minus_pi, wrong_row):
        assert not torch.allclose(wrong, ref, rtol=0, atol=1e-12)
        assert (wrong - ref).abs().max() > 0.1


def test_per_trajectory_gradients_validate_their_arguments(mdp, gen):
    from pgbook.mdp import SampledTrajectories

    theta = torch.zeros(2, 2, dtype=torch.float64)
    n, T = len(mdp.trajectories), mdp.horizon
    psi = torch.ones(n, T, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"theta must have shape \(2, 2\)"):
        mdp.per_trajectory_gradients(torch.zeros(2, 3, dtype=torch.float64), psi)
    with pytest.raises(ValueError, match=r"psi must have shape \(128, 3\) or \(128,\)"):
        mdp.per_trajectory_gradients(theta, torch.ones(n, T + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="psi must have 1 or 2 dimension"):
        mdp.per_trajectory_gradients(theta, torch.ones(n, T, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="psi must be a torch.Tensor"):
        mdp.per_trajectory_gradients(theta, [1.0] * n)
    with pytest.raises(ValueError, match="psi must have a floating dtype"):
        mdp.per_trajectory_gradients(theta, torch.ones(n, T, dtype=torch.long))
    with pytest.raises(ValueError, match="trajectories must be a SampledTrajectories"):
        mdp.per_trajectory_gradients(theta, psi, mdp.trajectories)
    batch = mdp.sample(theta, 5, gen)
    with pytest.raises(ValueError, match=r"psi must have shape \(5, 3\) or \(5,\)"):
        mdp.per_trajectory_gradients(theta, psi, batch)
    short = SampledTrajectories(batch.states[:, :-1], batch.actions[:, :-1],
                                batch.rewards[:, :-1])
    with pytest.raises(ValueError, match=r"trajectories must hold int64 states"):
        mdp.per_trajectory_gradients(theta, torch.ones(5, dtype=torch.float64), short)
    bad = SampledTrajectories(batch.states, batch.actions + 2, batch.rewards)
    with pytest.raises(ValueError, match="actions in 0..1"):
        mdp.per_trajectory_gradients(theta, torch.ones(5, dtype=torch.float64), bad)


# ---- exact Q, V, A (chapter 6): hand values, conditional expectations, (0.10) and (0.12) ----

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


# ---- soft values (SAC, chapter 11) -----------------------------------------------------------

def test_soft_values_reduce_to_hard_values_at_alpha_zero(mdp, gen):
    theta = mdp.random_theta(gen)
    assert torch.equal(mdp.q_values(theta, alpha=0.0), mdp.q_values(theta))
    assert torch.equal(mdp.state_values(theta, alpha=0.0), mdp.state_values(theta))
    assert mdp.J(theta, alpha=0.0).item() == pytest.approx(mdp.J(theta).item(), abs=1e-14)
    assert mdp.state_values(theta, alpha=0.5)[0].sum() != mdp.state_values(theta)[0].sum()


def test_soft_J_is_J_plus_discounted_entropy_and_the_soft_value(mdp, gen):
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


def test_soft_q_is_the_reward_plus_the_next_soft_value(mdp, gen):
    """Q^soft_t(s, a) = sum_s' P(s'|s, a) [r + gamma V^soft_{t+1}(s')] (no entropy bonus of
    step t), V^soft_t(s) = sum_a pi (Q^soft_t - alpha log pi)."""
    theta, alpha = mdp.random_theta(gen, 2.0), 0.3
    Q, V = mdp.q_values(theta, alpha=alpha), mdp.state_values(theta, alpha=alpha)
    pi, log_pi = mdp.policy(theta), torch.log_softmax(theta, -1)
    assert torch.equal(V[-1], torch.zeros(2, dtype=F))
    for t in range(mdp.horizon):
        expected_q = torch.einsum("sap,sap->sa", mdp.P, mdp.R + mdp.gamma * V[t + 1])
        assert torch.allclose(Q[t], expected_q, atol=1e-14)
        assert torch.allclose(V[t], (pi * (Q[t] - alpha * log_pi)).sum(-1), atol=1e-14)


def test_soft_policy_gradient_weight_is_exact(mdp, gen):
    for _ in range(5):
        theta, alpha = mdp.random_theta(gen, 3.0), 0.4
        theta_ = theta.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(mdp.J(theta_, alpha=alpha), theta_)
        psi = mdp.soft_policy_gradient_weight(theta, alpha)
        assert psi.shape == (len(mdp.trajectories), mdp.horizon) and not psi.requires_grad
        assert torch.allclose(mdp.expected_score_weighted(theta, psi), g, atol=1e-13)
        # the source's Q - V, without -alpha log pi (and gamma^t), is not the soft gradient
        Q, V = mdp.q_values(theta, alpha=alpha), mdp.state_values(theta, alpha=alpha)
        source = mdp.along_trajectories(Q) - mdp.along_trajectories(V)[:, :-1]
        assert (mdp.expected_score_weighted(theta, source) - g).abs().max() > 1e-3


def test_soft_values_validate(mdp):
    theta = torch.zeros(2, 2, dtype=F)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        mdp.J(theta, alpha=-1.0)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        mdp.q_values(theta, alpha=-0.1)
    with pytest.raises(ValueError, match="alpha must be finite"):
        mdp.state_values(theta, alpha=float("nan"))
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        mdp.soft_policy_gradient_weight(theta, -1.0)
    with pytest.raises(ValueError, match="theta must have shape"):
        mdp.q_values(torch.zeros(3, 2, dtype=F), alpha=0.1)
    with pytest.raises(ValueError, match="theta must have shape"):
        mdp.soft_policy_gradient_weight(torch.zeros(3, 2, dtype=F), 0.1)


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
