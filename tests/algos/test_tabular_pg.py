"""Exact and sampled gradient ascent on the tabular MDP (chapters 0-3)."""

import pytest
import torch

from pgbook.algos import tabular_pg
from pgbook.mdp import TabularMDP


@pytest.mark.parametrize("estimator", ["exact", "sampled"])
def test_gradient_ascent_improves_J(estimator):
    mdp = TabularMDP.default()
    h = tabular_pg.train(mdp, tabular_pg.Config(estimator=estimator, iterations=60, lr=1.0))
    assert len(h.J) == 61 and h.J[-1] > h.J[0] + 0.3
    assert len(h.grad_norm) == 60 and h.theta.shape == (2, 2)
    assert h.J[-1] == pytest.approx(mdp.J(h.theta).item(), abs=1e-12)


def test_exact_ascent_is_monotone_for_small_steps():
    mdp = TabularMDP.default()
    h = tabular_pg.train(mdp, tabular_pg.Config(iterations=50, lr=0.2))
    assert all(b >= a - 1e-12 for a, b in zip(h.J, h.J[1:], strict=False))


def test_sampled_training_is_deterministic_per_seed():
    mdp = TabularMDP.default()
    cfg = tabular_pg.Config(estimator="sampled", iterations=20, seed=3)
    assert tabular_pg.train(mdp, cfg).J == tabular_pg.train(mdp, cfg).J


def test_weightings_match_their_exact_counterparts_in_expectation():
    """gamma^t G_t is the exact weighting; G_t alone is not (chapter 3)."""
    mdp = TabularMDP.default()
    theta = torch.zeros(2, 2, dtype=torch.float64)
    grads = {}
    for weighting in ("return", "discounted_reward_to_go", "reward_to_go"):
        h = tabular_pg.train(mdp, tabular_pg.Config(estimator="sampled", weighting=weighting,
                                                    iterations=1, lr=1.0, batch_size=40000))
        grads[weighting] = h.theta - theta  # lr = 1: the step is the estimate
    exact = mdp.grad_J(theta)
    assert (grads["return"] - exact).abs().max() < 0.03
    assert (grads["discounted_reward_to_go"] - exact).abs().max() < 0.02
    assert (grads["reward_to_go"] - exact).abs().max() > 0.02


RIGHT = ("return", "discounted_reward_to_go")
WRONG = ("reward_to_go", "undiscounted_return", "first_step_return")
P_STAR = 0.7703  # pi(0|0) of the optimal policy of TabularMDP.default() (chapter 3)
J_DET = 1.24115  # J of the best deterministic policy of TabularMDP.default() (chapter 3)


def test_step_weights_shapes_and_negative_controls():
    rewards = torch.tensor([[1.0, 2.0, 4.0]], dtype=torch.float64)
    R = 1 + 0.5 * 2 + 0.25 * 4
    w = {name: tabular_pg.step_weights(rewards, 0.5, name) for name in RIGHT + WRONG}
    assert w["return"].tolist() == [R]
    assert w["undiscounted_return"].tolist() == [7.0]
    assert w["first_step_return"].tolist() == [[R, 0.0, 0.0]]
    assert w["discounted_reward_to_go"].tolist() == [[R, 0.5 * 2 + 0.25 * 4, 0.25 * 4]]
    assert w["reward_to_go"].tolist() == [[R, 2 + 0.5 * 4, 4.0]]
    with pytest.raises(ValueError, match="weighting"):
        tabular_pg.step_weights(rewards, 0.5, "returns")
    with pytest.raises(ValueError, match="weighting"):
        tabular_pg.Config(weighting="returns")
    with pytest.raises(ValueError, match="estimator"):
        tabular_pg.Config(estimator="mean")


def test_expected_estimator_is_grad_J_only_for_the_exact_weightings():
    mdp = TabularMDP.default()
    theta = torch.zeros(2, 2, dtype=torch.float64)
    exact = mdp.grad_J(theta)
    for weighting in RIGHT + WRONG:
        h = tabular_pg.train(mdp, tabular_pg.Config(estimator="expected", weighting=weighting,
                                                    iterations=1, lr=1.0))
        error = (h.theta - theta - exact).abs().max().item()
        assert (error < 1e-12) == (weighting in RIGHT), (weighting, error)


def test_noise_free_target_rejects_the_wrong_weightings():
    """Chapter 3's noise-free target |pi(0|0) - p*| < 0.02: right 0.770, wrong 0.666 / 0.915 /
    0.999."""
    mdp = TabularMDP.default()
    for weighting in RIGHT + WRONG:
        h = tabular_pg.train(mdp, tabular_pg.Config(estimator="expected", weighting=weighting,
                                                    lr=10.0, iterations=600))
        pi_00 = mdp.policy(h.theta)[0, 0].item()
        assert (abs(pi_00 - P_STAR) < 0.02) == (weighting in RIGHT), (weighting, pi_00)


@pytest.mark.slow
def test_sampled_target_over_seeds():
    """Chapter 3's sampled target J > J_det (300 steps, lr 1, 1024 trajectories per step):
    met by R(tau) and gamma^t G_t, missed by the first-step-only score, on seeds 0-3."""
    mdp = TabularMDP.default()
    for seed in range(4):
        for weighting in RIGHT + ("first_step_return",):
            h = tabular_pg.train(mdp, tabular_pg.Config(
                estimator="sampled", weighting=weighting, lr=1.0, iterations=300,
                batch_size=1024, seed=seed))
            assert (h.J[-1] > J_DET) == (weighting in RIGHT), (seed, weighting, h.J[-1])
