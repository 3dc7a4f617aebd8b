import pytest

from pgbook.algos import tabular_pg
from pgbook.mdp import TabularMDP


@pytest.mark.parametrize("estimator", ["exact", "sampled"])
def test_gradient_ascent_improves_J(estimator):
    mdp = TabularMDP.default()
    h = tabular_pg.train(mdp, tabular_pg.Config(estimator=estimator, iterations=60, lr=1.0))
    assert len(h.J) == 61 and h.J[-1] > h.J[0] + 0.3


def test_exact_ascent_is_monotone_for_small_steps():
    mdp = TabularMDP.default()
    h = tabular_pg.train(mdp, tabular_pg.Config(iterations=50, lr=0.2))
    assert all(b >= a - 1e-12 for a, b in zip(h.J, h.J[1:], strict=False))


def test_sampled_training_is_deterministic_per_seed():
    mdp = TabularMDP.default()
    cfg = tabular_pg.Config(estimator="sampled", iterations=20, seed=3)
    assert tabular_pg.train(mdp, cfg).J == tabular_pg.train(mdp, cfg).J


@pytest.mark.parametrize("field, value, match", [
    ("estimator", "magic", "estimator"), ("weighting", "x", "weighting"), ("lr", 0.0, "lr"),
    ("iterations", 0, "iterations"), ("batch_size", 1.5, "batch_size"), ("seed", -1, "seed"),
])
def test_config_validation(field, value, match):
    cfg = tabular_pg.Config(**{field: value})
    with pytest.raises(ValueError, match=match):
        tabular_pg.train(TabularMDP.default(), cfg)
    with pytest.raises(ValueError, match="TabularMDP"):
        tabular_pg.train("not an mdp")


def test_weightings_match_their_exact_counterparts_in_expectation():
    """gamma^t G_t is the exact weighting; G_t alone is not (chapter 3)."""
    import torch

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
