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
